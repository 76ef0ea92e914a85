//! Fuzzes `conductor_core::Personality::from_toml` (personality files, strict TOML) and
//! `compose`.
//!
//! The input is the file text (invalid UTF-8 is replaced lossily, as a frontend reading a file
//! with `from_utf8_lossy` would).
//!
//! Checked (panics if violated):
//! - nothing panics (parsing, error `Display`, `hint`, composing);
//! - every error is `PersonalityError::Parse` whose `FileLocation` names the path given, with a
//!   1-based line and column that lie inside the text;
//! - a personality that parses satisfies the documented rules: valid name, one-line non-empty
//!   description, non-empty prompt, no empty rule, boundary or example text, all trimmed;
//! - the path's file name check: parsing the same text as `<name>.toml` gives the same
//!   personality, and as `<other>.toml` an error;
//! - `compose` is deterministic and starts with the prompt.
#![no_main]

use std::path::{Path, PathBuf};

use conductor_core::Personality;
use conductor_core::error::PersonalityError;
use conductor_core::personality::PersonalityName;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fn check_error(err: &PersonalityError, path: &Path, text: &str) {
    let shown = err.to_string();
    let _ = format!("{err:?}");
    let _ = err.hint();
    match err {
        PersonalityError::Parse { location, message } => {
            common::check_location(location, message, &shown, path, text);
        }
        other => panic!("from_toml returned a non-Parse error: {other:?}"),
    }
}

fn check_personality(p: &Personality) {
    assert!(
        PersonalityName::new(p.name().as_str()).is_ok(),
        "invalid name accepted: {:?}",
        p.name()
    );
    let trimmed = |s: &str| s.trim() == s;
    assert!(!p.description().is_empty(), "empty description");
    assert!(!p.description().contains('\n'), "multi-line description");
    assert!(trimmed(p.description()), "untrimmed description");
    assert!(!p.prompt().is_empty(), "empty prompt");
    assert!(trimmed(p.prompt()), "untrimmed prompt");
    if let Some(tone) = p.tone() {
        assert!(!tone.is_empty() && trimmed(tone), "tone {tone:?}");
    }
    for item in p.rules().iter().chain(p.boundaries()) {
        assert!(!item.is_empty() && trimmed(item), "rule/boundary {item:?}");
    }
    for example in p.examples() {
        assert!(
            !example.user.is_empty() && trimmed(&example.user),
            "{example:?}"
        );
        assert!(
            !example.assistant.is_empty() && trimmed(&example.assistant),
            "{example:?}"
        );
    }
    let composed = conductor_core::compose(p, Some(" extra\r\ninstructions "));
    assert_eq!(
        composed,
        conductor_core::compose(p, Some(" extra\r\ninstructions ")),
        "compose is not deterministic"
    );
    assert!(
        composed.starts_with(p.prompt()),
        "composed text does not start with the prompt"
    );
    let _ = conductor_core::compose(p, None);
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();

    // No `.toml` extension: the name is not checked against the file name.
    let free = Path::new("fuzz");
    let parsed = Personality::from_toml(free, text);
    match &parsed {
        Ok(p) => {
            check_personality(p);
            let own = PathBuf::from(format!("dir/{}.toml", p.name()));
            match Personality::from_toml(&own, text) {
                Ok(same) => assert_eq!(&same, p, "{} parses differently", own.display()),
                Err(err) => panic!("{} refused: {err}", own.display()),
            }
            if p.name().as_str() != "zz-other" {
                let other = Path::new("dir/zz-other.toml");
                match Personality::from_toml(other, text) {
                    Ok(_) => panic!(
                        "a personality named {:?} accepted as zz-other.toml",
                        p.name()
                    ),
                    Err(err) => check_error(&err, other, text),
                }
            }
        }
        Err(err) => check_error(err, free, text),
    }

    // The path a built-in file has.
    let builtin = Path::new("personality/yollayah.toml");
    match Personality::from_toml(builtin, text) {
        Ok(p) => {
            check_personality(&p);
            assert_eq!(p.name().as_str(), "yollayah");
        }
        Err(err) => check_error(&err, builtin, text),
    }
});
