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

/// The text of `lines`, without styles.
fn texts(lines: &[Line<'_>]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
        .collect()
}

/// Asserts that `tail_rendered` is `whole`. The line being written in an open code block is
/// highlighted from a process-wide cache, approximately between steps (see `highlight`), and
/// tests running beside this one use that cache too: so with colours on, styles are compared
/// only where the text ends a line, the text everywhere.
fn assert_same(tail_rendered: &[Line<'_>], whole: &[Line<'_>], text: &str, context: &str) {
    if text.ends_with('\n') || theme::active_kind() == ThemeKind::Mono {
        assert_eq!(tail_rendered, whole, "{context}, after {text:?}");
    } else {
        assert_eq!(
            texts(tail_rendered),
            texts(whole),
            "{context}, after {text:?}"
        );
    }
}

/// Markdown that streams in: every construct, blank runs, fences that open, close, nearly close
/// (a partial closing line that becomes something else) and stay open, a block past the caps.
fn streaming_samples() -> Vec<String> {
    let long_code: String = (0..60)
        .map(|i| format!("    let value_{i} = compute({i}, \"text {i}\"); // note {i}\n"))
        .collect();
    vec![
        "Here:\n\n```rust\nfn add(a: u32) -> u32 {\n    a + 1\n}\n```\n\nAnd after.\n".into(),
        "# Title\n\nSome *text* with `code` and **bold** that wraps around the edge of a narrow \
         view.\n\n\n\n- one\n- two\n  - nested\n1. first\n2. second\n\n> quoted\n> more\n\n---\n\
         tail"
            .into(),
        "```python\nprint(1)\n``\n```python\nx = 2\n```\n~~~\nplain ~~~ block\n~~~~\n\n```\n"
            .into(),
        format!("Long:\n\n```rust\nfn big() {{\n{long_code}}}\n```\nDone.\r\nCRLF line\r\n"),
        "text\n\n\n\n".into(),
        "```sh\necho a\n```".into(),
        "\n\n\nlate start\n```rust\nlet unclosed = 1;\n".into(),
    ]
}

#[test]
fn rendering_only_the_tail_of_a_growing_text_gives_the_same_lines() {
    use conductor_tui::markdown::{Resume, render_markdown_into};
    for kind in [ThemeKind::Dark, ThemeKind::Mono] {
        theme::scoped(kind, || {
            for sample in streaming_samples() {
                for width in [24, 80] {
                    let mut out = Vec::new();
                    let mut resume = Resume::default();
                    let mut kept_any = false;
                    // Tokens of a few characters, and one character at a time near fences.
                    let ends: Vec<usize> = (1..=sample.len())
                        .filter(|&i| sample.is_char_boundary(i))
                        .collect();
                    for (n, &end) in ends.iter().enumerate() {
                        if n % 3 != 0 && end != sample.len() && !sample[..end].ends_with('`') {
                            continue;
                        }
                        let text = &sample[..end];
                        let kept =
                            render_markdown_into(text, width, Style::new(), &mut out, &mut resume);
                        kept_any |= kept > 0;
                        assert_same(
                            &out,
                            &render_markdown(text, width, Style::new()),
                            text,
                            &format!("{kind:?}, width {width}"),
                        );
                    }
                    assert!(
                        kept_any || sample.lines().count() < 3,
                        "never went on: {sample:?}"
                    );
                }
            }
        });
    }
}

#[test]
fn a_text_that_is_not_an_extension_is_rendered_from_the_start() {
    use conductor_tui::markdown::{Resume, render_markdown_into};
    let mut out = Vec::new();
    let mut resume = Resume::default();
    let first = "one\n\ntwo\n\nthree";
    render_markdown_into(first, 40, Style::new(), &mut out, &mut resume);
    let other = "uno\n\ndos\n";
    let kept = render_markdown_into(other, 40, Style::new(), &mut out, &mut resume);
    assert_eq!(kept, 0);
    assert_eq!(out, render_markdown(other, 40, Style::new()));
    // Another width starts over too.
    let kept = render_markdown_into(other, 10, Style::new(), &mut out, &mut resume);
    assert_eq!(kept, 0);
    assert_eq!(out, render_markdown(other, 10, Style::new()));
}

#[test]
fn a_streaming_answer_rendered_by_its_tail_matches_it_rendered_whole() {
    use conductor_tui::event::Event;
    use conductor_tui::ui::{StreamTail, entry_lines, entry_lines_into};
    use conductor_tui::worker::WorkerEvent;

    use crate::common::{app, submit, worker};
    let answer = "Think first.\n\n```rust\nfn a() {}\n```\n\nA line of prose.\n╭─ drawn like a \
                  frame\n\n```python\nprint(1)\nprint(2)\n```\n~~~\nopen till the end\nmore\n";
    for kind in [ThemeKind::Dark, ThemeKind::Mono] {
        theme::scoped(kind, || {
            for width in [30, 100] {
                let mut app = app();
                submit(&mut app, "go");
                app.update(worker(WorkerEvent::Accepted));
                app.update(worker(WorkerEvent::Thinking("weighing it up".into())));
                let mut lines = Vec::new();
                let mut tail: Option<StreamTail> = None;
                let ends: Vec<usize> = (1..=answer.len())
                    .filter(|&i| answer.is_char_boundary(i))
                    .collect();
                let mut sent = 0;
                for (n, &end) in ends.iter().enumerate() {
                    if n % 2 == 1 && end != answer.len() {
                        continue;
                    }
                    app.update(worker(WorkerEvent::Content(answer[sent..end].into())));
                    sent = end;
                    let entry = app.entries.last().unwrap();
                    entry_lines_into(entry, width, &mut lines, &mut tail);
                    assert_same(
                        &lines,
                        &entry_lines(entry, width),
                        &answer[..end],
                        &format!("{kind:?}, width {width}"),
                    );
                }
                assert!(tail.is_some(), "streaming keeps its tail");
                app.update(Event::Worker(WorkerEvent::Stopped));
                let entry = app
                    .entries
                    .iter()
                    .rev()
                    .find(|e| e.message().is_some())
                    .unwrap();
                entry_lines_into(entry, width, &mut lines, &mut tail);
                assert_eq!(lines, entry_lines(entry, width));
                assert!(tail.is_none(), "an answer that ended is rendered whole");
            }
        });
    }
}
