//! Ctrl+R: the shell's reverse search over earlier inputs; Alt+R and /retry send the last
//! question again.

use conductor_tui::app::{Action, App};
use conductor_tui::event::Event;
use crossterm::event::{Event as TermEvent, KeyCode};

use crate::common::*;

fn with_history(inputs: &[&str]) -> App {
    let mut app = app();
    for input in inputs {
        answer(&mut app, input, &["ok"]);
    }
    app
}

#[test]
fn ctrl_r_finds_the_newest_match_and_again_the_older_ones() {
    let mut app = with_history(&["cargo build", "what is rust?", "cargo test --all", "hello"]);
    app.update(Event::PastInputs(vec![
        "cargo run from yesterday".into(),
        "hello".into(),
    ]));
    type_text(&mut app, "draft");
    app.update(ctrl('r'));
    assert!(app.search.is_some());
    type_text(&mut app, "CARGO");
    assert_eq!(
        app.search_match(),
        Some("cargo test --all"),
        "newest first, any case"
    );
    app.update(ctrl('r'));
    assert_eq!(app.search_match(), Some("cargo build"));
    app.update(ctrl('r'));
    assert_eq!(
        app.search_match(),
        Some("cargo run from yesterday"),
        "then earlier conversations"
    );
    app.update(ctrl('r'));
    assert_eq!(app.search_match(), Some("cargo run from yesterday"));
    assert_eq!(app.status_hint.as_deref(), Some("no older match"));
    app.update(key(KeyCode::Down));
    assert_eq!(app.search_match(), Some("cargo build"));
    // Typing narrows the search and starts again from the newest.
    type_text(&mut app, " b");
    assert_eq!(app.search_match(), Some("cargo build"));
    assert_eq!(app.search_matches(), ["cargo build"]);
    assert_eq!(
        app.input.text(),
        "draft",
        "the input is untouched while searching"
    );
    app.update(key(KeyCode::Enter));
    assert!(app.search.is_none());
    assert_eq!(app.input.text(), "cargo build", "accepted into the input");
    assert!(app.take_actions().is_empty(), "not sent");
}

#[test]
fn esc_cancels_and_keeps_the_input() {
    let mut app = with_history(&["one", "two"]);
    type_text(&mut app, "my draft");
    app.update(ctrl('r'));
    type_text(&mut app, "on");
    assert_eq!(app.search_match(), Some("one"));
    app.update(key(KeyCode::Esc));
    assert!(app.search.is_none());
    assert_eq!(app.input.text(), "my draft");
    assert!(
        app.take_actions().is_empty(),
        "Esc in the search stops nothing else"
    );
}

#[test]
fn no_match_and_no_history_are_said() {
    let mut app = app();
    app.update(ctrl('r'));
    assert!(app.search.is_none());
    assert_eq!(
        app.status_hint.as_deref(),
        Some("no earlier inputs to search yet")
    );

    let mut app = with_history(&["one"]);
    app.update(ctrl('r'));
    type_text(&mut app, "zzz");
    assert_eq!(app.search_match(), None);
    app.update(key(KeyCode::Enter));
    assert!(app.search.is_some(), "stays open");
    assert!(
        app.status_hint
            .as_deref()
            .unwrap()
            .contains("nothing matches")
    );
    app.update(key(KeyCode::Backspace));
    app.update(key(KeyCode::Backspace));
    app.update(key(KeyCode::Backspace));
    assert_eq!(app.search_match(), Some("one"));
}

#[test]
fn a_paste_goes_into_the_search() {
    let mut app = with_history(&["multi\nline input", "other"]);
    app.update(ctrl('r'));
    app.update(Event::Terminal(TermEvent::Paste("multi\nline".into())));
    assert_eq!(app.search.as_ref().unwrap().query, "multi line");
    assert_eq!(
        app.search_match(),
        Some("multi\nline input"),
        "a line break matches a space"
    );
    app.update(ctrl('u'));
    app.update(Event::Terminal(TermEvent::Paste("oth".into())));
    assert_eq!(app.search_match(), Some("other"));
}

#[test]
fn alt_r_and_slash_retry_send_the_last_question_again() {
    let mut app = app();
    submit(&mut app, "hello?");
    app.take_actions();
    app.update(worker(conductor_tui::worker::WorkerEvent::Rejected(
        conductor_core::Error::Unreachable {
            host: "http://127.0.0.1:11434".into(),
            reason: "connection refused".into(),
        },
    )));
    app.take_actions();
    app.update(alt('r'));
    assert!(app.take_actions().contains(&Action::Send("hello?".into())));
    assert!(app.input.is_empty(), "Alt+R types nothing");
    app.update(worker(conductor_tui::worker::WorkerEvent::Rejected(
        conductor_core::Error::Unreachable {
            host: "http://127.0.0.1:11434".into(),
            reason: "connection refused".into(),
        },
    )));
    app.take_actions();
    submit(&mut app, "/retry");
    assert!(app.take_actions().contains(&Action::Send("hello?".into())));
}

#[test]
fn accepting_a_match_keeps_the_draft_one_up_away() {
    let mut app = with_history(&["one", "two"]);
    type_text(&mut app, "my unsent draft");
    app.update(ctrl('r'));
    type_text(&mut app, "on");
    app.update(key(KeyCode::Enter));
    assert_eq!(app.input.text(), "one");
    app.update(key(KeyCode::Up));
    assert_eq!(app.input.text(), "my unsent draft", "the draft is not lost");
    app.update(key(KeyCode::Down));
    assert_eq!(app.input.text(), "one");
    // An empty input leaves nothing in the history.
    app.input.take();
    let before = app.history.entries().len();
    app.update(ctrl('r'));
    type_text(&mut app, "tw");
    app.update(key(KeyCode::Enter));
    assert_eq!(app.input.text(), "two");
    assert_eq!(app.history.entries().len(), before);
}

/// The cells of the search box's row that shows `row_text`, and which of them are bold.
fn bold_part(app: &App, row_text: &str) -> String {
    let terminal = render(app, 60, 16);
    let buffer = terminal.backend().buffer();
    let area = buffer.area;
    // The box is at the bottom, below the conversation that shows the same texts.
    for y in (0..area.height).rev() {
        let row: String = (0..area.width)
            .map(|x| buffer[(x, y)].symbol().to_owned())
            .collect();
        if row.contains(row_text) {
            return (0..area.width)
                .map(|x| &buffer[(x, y)])
                .filter(|cell| cell.modifier.contains(ratatui::style::Modifier::BOLD))
                .map(|cell| cell.symbol().to_owned())
                .collect();
        }
    }
    panic!("no row shows {row_text:?}");
}

#[test]
fn the_match_is_highlighted_where_lower_case_changes_lengths() {
    // The Kelvin sign (3 bytes) folds to `k` (1 byte); `İ` (2 bytes) to `i̇` (3 bytes).
    let mut app = with_history(&["kelvin scale", "\u{212A}elvin sign", "İstanbul trip"]);
    app.update(ctrl('r'));
    type_text(&mut app, "\u{212A}el");
    assert_eq!(app.search_matches(), ["\u{212A}elvin sign", "kelvin scale"]);
    assert_eq!(bold_part(&app, "elvin sign"), "\u{212A}el");
    assert_eq!(bold_part(&app, "kelvin scale"), "kel");
    app.update(ctrl('u'));
    type_text(&mut app, "stan");
    assert_eq!(bold_part(&app, "trip"), "stan");
    app.update(ctrl('u'));
    type_text(&mut app, "i̇stan");
    assert_eq!(bold_part(&app, "trip"), "İstan");
}

#[test]
fn match_spans_are_byte_ranges_of_the_original_text() {
    use conductor_tui::app::match_span;
    assert_eq!(match_span("a \u{212A}elvin", "kel"), Some((2, 7)));
    assert_eq!(match_span("a kelvin", "\u{212A}EL"), Some((2, 5)));
    // Half of `İ`'s folded form still covers the whole character.
    assert_eq!(match_span("İx", "i"), Some((0, 2)));
    assert_eq!(match_span("line\nbreak", "e b"), Some((3, 6)));
    assert_eq!(match_span("abc", ""), None);
    assert_eq!(match_span("abc", "z"), None);
}

#[test]
fn fifty_huge_inputs_keep_keys_and_frames_quick() {
    use std::time::{Duration, Instant};
    // 50 earlier messages of 1 MiB each (`ask -f` with a large file), the match at the start.
    let inputs: Vec<String> = (0..50)
        .map(|i| format!("needle {i} {}", "haystack line\n".repeat(75_000)))
        .collect();
    let mut app = app();
    app.update(Event::PastInputs(inputs));
    app.update(ctrl('r'));
    let started = Instant::now();
    type_text(&mut app, "needle 4");
    let keys = started.elapsed();
    assert_eq!(app.search_match_count(), 11, "needle 4 and needle 40 to 49");
    let started = Instant::now();
    for _ in 0..20 {
        render(&app, 100, 30);
    }
    let frames = started.elapsed() / 20;
    // Scanning the 50 MiB at every key or frame takes tens of milliseconds even optimised;
    // the folded 4 KiB copies take well under one (generous bounds for a debug build).
    assert!(keys / 8 < Duration::from_millis(20), "{keys:?} for 8 keys");
    assert!(frames < Duration::from_millis(50), "{frames:?} a frame");
    // Past the searched part nothing matches.
    app.update(ctrl('u'));
    type_text(&mut app, "haystack line haystack");
    assert_eq!(app.search_match_count(), 50);
    let deep = format!("{} deep", "x".repeat(5000));
    app.update(key(KeyCode::Esc));
    app.update(Event::PastInputs(vec![deep]));
    app.update(ctrl('r'));
    type_text(&mut app, "deep");
    assert_eq!(
        app.search_match_count(),
        0,
        "only the first 4 KiB are searched"
    );
}
