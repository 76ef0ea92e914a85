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
