use super::*;

#[test]
fn location_counts_lines_and_characters() {
    let text = "a = 1\nbé = 2\n";
    let loc = FileLocation::at_offset("f.toml", text, text.find('=').unwrap_or(0));
    assert_eq!((loc.line, loc.column), (1, 3));
    let second = text.rfind('=').unwrap_or(0);
    let loc = FileLocation::at_offset("f.toml", text, second);
    assert_eq!((loc.line, loc.column), (2, 4));
    assert_eq!(loc.to_string(), "f.toml:2:4");
}

#[test]
fn incomplete_keeps_partial_and_root() {
    let err = Error::Incomplete {
        partial: "Hello wor".into(),
        source: Box::new(Error::Truncated),
    };
    assert_eq!(err.partial_answer(), Some("Hello wor"));
    assert!(matches!(err.root(), Error::Truncated));
    assert!(err.hint().is_some());
}

#[test]
fn https_to_plain_http_proposes_the_http_address() {
    let err = Error::Unreachable {
        host: "https://me:***@gpu-box.lan:11434".into(),
        reason: format!("{NOT_TLS_REASON} (received corrupt message)"),
    };
    let hint = err.hint().unwrap_or_default();
    assert!(hint.contains("use http://gpu-box.lan:11434 "), "{hint}");
}

#[test]
fn model_not_found_suggests_pull() {
    let err = Error::ModelNotFound {
        model: "qwen3:8b".into(),
    };
    assert_eq!(
        err.hint().as_deref(),
        Some("download it with `ollama pull qwen3:8b`")
    );
}
