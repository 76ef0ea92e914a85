use super::*;

fn text(lines: &[Line<'_>]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
        .collect()
}

#[test]
fn wraps_words_and_breaks_long_ones() {
    let lines = render_plain("the quick brown fox jumps", 10, Style::new());
    assert_eq!(text(&lines), ["the quick", "brown fox", "jumps"]);
    let lines = render_plain("abcdefghijklmnop", 6, Style::new());
    assert_eq!(text(&lines), ["abcdef", "ghijkl", "mnop"]);
}

#[test]
fn wide_characters_count_twice() {
    let lines = render_plain("日本語のテキスト", 8, Style::new());
    assert_eq!(text(&lines), ["日本語の", "テキスト"]);
}

#[test]
fn inline_styles() {
    let code = Style::new().fg(ratatui::style::Color::LightYellow);
    let runs = inline(
        "a **bold** and *it* and `x*y` and snake_case_name",
        Style::new(),
        code,
    );
    let bold = runs.iter().find(|(t, _)| t == "bold").map(|(_, s)| *s);
    assert_eq!(bold.map(|s| s.add_modifier), Some(Modifier::BOLD));
    let it = runs.iter().find(|(t, _)| t == "it").map(|(_, s)| *s);
    assert_eq!(it.map(|s| s.add_modifier), Some(Modifier::ITALIC));
    assert!(runs.iter().any(|(t, s)| t == "x*y" && s.fg == code.fg));
    assert!(runs.iter().any(|(t, _)| t.contains("snake_case_name")));
}

#[test]
fn unclosed_markers_stay_literal() {
    let runs = inline("2 * 3 and **not closed", Style::new(), Style::new());
    let all: String = runs.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(all, "2 * 3 and **not closed");
}

#[test]
fn blocks() {
    let md = "# Title\n\nSome text.\n\n- one\n- two long item here\n\n```rust\nfn main() {}\n```\n\n> quoted\n\n---";
    let lines = render_markdown(md, 16, Style::new());
    assert_eq!(
        text(&lines),
        [
            "Title",
            "",
            "Some text.",
            "",
            "• one",
            "• two long item",
            "  here",
            "",
            "╭─ rust ",
            "│ fn main() {}",
            "╰─",
            "",
            "▎ quoted",
            "",
            "────────────────",
        ]
    );
}

#[test]
fn unclosed_fence_is_an_open_code_block() {
    let lines = render_markdown("```\nlet x = 1;", 20, Style::new());
    assert_eq!(text(&lines), ["╭─", "│ let x = 1;"]);
}

#[test]
fn control_characters_are_dropped() {
    let lines = render_plain("a\u{1b}[31mb", 20, Style::new());
    assert_eq!(text(&lines), ["a[31mb"]);
}

#[test]
fn cache_renders_once_per_width_and_version() {
    let cache = RenderCache::default();
    let mut calls = 0;
    for _ in 0..3 {
        cache.height(10, 1, || {
            calls += 1;
            vec![Line::from("x")]
        });
    }
    assert_eq!(calls, 1);
    cache.height(11, 1, || {
        calls += 1;
        Vec::new()
    });
    assert_eq!(calls, 2);
}
