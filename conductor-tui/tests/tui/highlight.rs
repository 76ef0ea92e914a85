//! Syntax highlighting of code blocks: coloured by language (keywords apart from names), plain
//! for unknown languages, correct while a block streams, plain past the caps.

use conductor_tui::highlight::{MAX_BLOCK_BYTES, MAX_LINE_BYTES};
use conductor_tui::markdown::render_markdown;
use conductor_tui::theme::{self, ThemeKind};
use ratatui::style::{Color, Style};
use ratatui::text::Line;

/// The style of the first span of `lines` whose text, trimmed, is `text` or starts a span
/// with it.
fn style_of(lines: &[Line<'_>], text: &str) -> Style {
    lines
        .iter()
        .flat_map(|l| &l.spans)
        .find(|s| s.content.trim_start().starts_with(text))
        .unwrap_or_else(|| panic!("no span starts with {text:?} in {lines:#?}"))
        .style
}

/// Renders `markdown` with the dark theme, 80 columns.
fn dark(markdown: &str) -> Vec<Line<'static>> {
    theme::scoped(ThemeKind::Dark, || {
        render_markdown(markdown, 80, Style::new())
    })
}

fn is_rgb(style: Style) -> bool {
    matches!(style.fg, Some(Color::Rgb(..)))
}

#[test]
fn rust_keywords_and_names_get_different_colours() {
    let lines = dark("```rust\nfn main() {\n    let total = 42;\n}\n```");
    let keyword = style_of(&lines, "fn");
    let function = style_of(&lines, "main");
    let binding = style_of(&lines, "let");
    let number = style_of(&lines, "42");
    assert!(is_rgb(keyword), "{keyword:?}");
    assert_eq!(keyword, binding, "both keywords");
    assert_ne!(keyword, function);
    assert_ne!(keyword, number);
    assert!(is_rgb(number));
}

#[test]
fn python_keywords_strings_and_names_differ() {
    let lines = dark("```py\ndef greet(name):\n    return \"hello \" + name\n```");
    let def = style_of(&lines, "def");
    let string = style_of(&lines, "\"hello");
    let ret = style_of(&lines, "return");
    assert!(is_rgb(def) && is_rgb(string) && is_rgb(ret));
    assert_ne!(def, string);
    // `name` in the body is a plain name: the terminal's own colour.
    let last = lines[2].spans.last().unwrap();
    assert_eq!(
        (last.content.trim(), last.style.fg),
        ("name", None),
        "{lines:#?}"
    );
}

#[test]
fn shell_aliases_are_highlighted_like_sh() {
    for lang in ["sh", "bash", "shell", "console"] {
        let lines = dark(&format!(
            "```{lang}\nif [ -f x ]; then echo \"found\"; fi\n```"
        ));
        let keyword = style_of(&lines, "if");
        let string = style_of(&lines, "\"found\"");
        assert!(is_rgb(keyword) && is_rgb(string), "{lang}: {lines:#?}");
        assert_ne!(keyword, string, "{lang}");
    }
}

#[test]
fn unknown_languages_and_plain_blocks_are_plain() {
    let code_style = theme::DARK.code_block;
    for fence in ["```klingon", "```", "```text", "~~~"] {
        let close = &fence[..3];
        let lines = dark(&format!("{fence}\nfn main() {{ let x = 1; }}\n{close}"));
        let body: Vec<_> = lines
            .iter()
            .filter(|l| l.spans.first().is_some_and(|s| s.content == "│ "))
            .collect();
        assert_eq!(body.len(), 1, "{fence}: {lines:#?}");
        assert_eq!(body[0].spans.len(), 2, "one plain run: {:?}", body[0]);
        assert_eq!(body[0].spans[1].style, code_style, "{fence}");
    }
}

#[test]
fn a_streaming_block_is_highlighted_as_it_grows() {
    let full = "Here:\n\n```rust\nfn add(a: u32) -> u32 {\n    a + 1\n}\n```";
    let mut last = Vec::new();
    // Every prefix, as the tokens arrive: the open block is highlighted, including the line
    // being written.
    for end in (1..=full.len()).filter(|&i| full.is_char_boundary(i)) {
        last = dark(&full[..end]);
    }
    let at_once = dark(full);
    assert_eq!(last, at_once);
    let open = dark("```rust\nfn add(a: u32) -> u32 {\n    let");
    assert!(is_rgb(style_of(&open, "fn")));
    assert_eq!(
        style_of(&open, "let"),
        style_of(&at_once, "fn"),
        "{open:#?}"
    );
}

#[test]
fn a_block_over_the_cap_is_plain_from_there_on() {
    let line = "let value = compute(1, 2, 3); // a line of about sixty bytes\n";
    let count = MAX_BLOCK_BYTES / line.len() + 10;
    let code = line.repeat(count);
    let lines = theme::scoped(ThemeKind::Dark, || {
        render_markdown(&format!("```rust\n{code}```"), 200, Style::new())
    });
    let body: Vec<_> = lines.iter().filter(|l| l.spans.len() > 1).collect();
    assert_eq!(body.len(), count);
    assert!(body[0].spans.len() > 3, "highlighted: {:?}", body[0]);
    let last = body[count - 1];
    assert_eq!(last.spans.len(), 2, "plain: {last:?}");
    assert_eq!(last.spans[1].style, theme::DARK.code_block);

    // One line too long to highlight: plain from it on, highlighted before it.
    let long = format!("let s = \"{}\";", "x".repeat(MAX_LINE_BYTES));
    let lines = dark(&format!("```rust\nlet a = 1;\n{long}\nlet b = 2;\n```"));
    let body: Vec<_> = lines.iter().filter(|l| l.spans.len() > 1).collect();
    assert!(body[0].spans.len() > 2, "{:?}", body[0]);
    let after = body.last().unwrap();
    assert_eq!(after.spans[1].content, "let b = 2;");
    assert_eq!(after.spans[1].style, theme::DARK.code_block);
}

#[test]
fn a_resize_rewraps_highlighted_lines_without_losing_colours() {
    let md = "```rust\nfn a_rather_long_function_name(argument: u32) -> u32 { argument }\n```";
    let wide = dark(md);
    let narrow = theme::scoped(ThemeKind::Dark, || render_markdown(md, 24, Style::new()));
    assert!(narrow.len() > wide.len());
    assert_eq!(style_of(&narrow, "fn"), style_of(&wide, "fn"));
    let text = |lines: &[Line<'_>]| -> String {
        lines
            .iter()
            .flat_map(|l| l.spans.iter().skip(1))
            .map(|s| s.content.as_ref())
            .collect()
    };
    assert_eq!(text(&narrow), text(&wide));
}

#[test]
fn control_characters_in_code_do_not_reach_the_terminal() {
    let lines = dark("```rust\nlet s = \"\u{1b}[2J\tx\";\n```");
    let all: String = lines
        .iter()
        .flat_map(|l| &l.spans)
        .map(|s| s.content.as_ref())
        .collect();
    assert!(!all.contains('\u{1b}') && !all.contains('\t'), "{all:?}");
    assert!(all.contains("[2J    x"), "{all:?}");
}
