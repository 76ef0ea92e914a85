//! The app driven by keys and mouse: send, stop, edit, recall inputs, scroll, quit.

use std::time::Duration;

use conductor_core::{Message, Role};
use conductor_tui::app::{Action, MessageState, Phase};
use conductor_tui::event::Event;
use conductor_tui::worker::WorkerEvent;
use crossterm::event::{Event as TermEvent, KeyCode, KeyModifiers, MouseEventKind};

use crate::common::*;

#[test]
fn enter_sends_and_the_answer_streams_into_place() {
    let mut app = app();
    submit(&mut app, "Why is the sky blue?");
    assert_eq!(
        app.take_actions(),
        [
            Action::SetIdle(false),
            Action::Send("Why is the sky blue?".into())
        ]
    );
    assert!(app.input.is_empty());
    assert_eq!(app.phase, Phase::Waiting);
    assert_eq!(
        messages(&app),
        [
            (
                Role::User,
                "Why is the sky blue?".into(),
                MessageState::Pending
            ),
            (Role::Assistant, String::new(), MessageState::Streaming),
        ]
    );

    app.update(worker(WorkerEvent::Accepted));
    assert_eq!(app.take_actions(), [Action::Save { announce: false }]);
    for chunk in ["Ray", "leigh ", "scattering."] {
        app.update(worker(WorkerEvent::Content(chunk.into())));
    }
    assert_eq!(app.phase, Phase::Streaming);
    assert_eq!(messages(&app)[1].1, "Rayleigh scattering.");

    app.update(worker(WorkerEvent::Finished {
        completion: completion(50, 1_000),
        ttft: Some(Duration::from_millis(120)),
        elapsed: Duration::from_secs(1),
    }));
    assert_eq!(app.phase, Phase::Idle);
    assert_eq!(messages(&app)[1].2, MessageState::Complete);
    let stats = app.stats.unwrap();
    assert_eq!(stats.tokens_per_second, Some(50.0));
    assert_eq!(stats.ttft, Some(Duration::from_millis(120)));
    let actions = app.take_actions();
    assert!(actions.contains(&Action::Save { announce: false }));
    assert!(actions.contains(&Action::RefreshResidency));
    assert!(actions.contains(&Action::SetIdle(true)));
    assert_eq!(
        app.conversation(),
        [
            Message::user("Why is the sky blue?"),
            Message::assistant("Rayleigh scattering.")
        ]
    );
}

#[test]
fn esc_stops_the_answer_and_keeps_it_marked_stopped() {
    let mut app = app();
    submit(&mut app, "count");
    app.update(worker(WorkerEvent::Accepted));
    app.update(worker(WorkerEvent::Content("one two".into())));
    app.take_actions();
    app.update(key(KeyCode::Esc));
    assert_eq!(app.take_actions(), [Action::Cancel]);
    app.update(worker(WorkerEvent::Stopped));
    assert_eq!(
        messages(&app)[1],
        (Role::Assistant, "one two".into(), MessageState::Stopped)
    );
    assert_eq!(app.phase, Phase::Idle);
    let conversation = app.conversation();
    assert!(conversation[1].incomplete);
    assert_eq!(conversation[1].content, "one two");
}

#[test]
fn esc_before_the_first_token_withdraws_the_question() {
    let mut app = app();
    submit(&mut app, "hello");
    app.take_actions();
    app.update(key(KeyCode::Esc));
    assert_eq!(app.take_actions(), [Action::Cancel]);
    app.update(worker(WorkerEvent::Withdrawn));
    assert_eq!(
        messages(&app),
        [(
            Role::User,
            "hello".into(),
            MessageState::NotSent("cancelled".into())
        )]
    );
    assert!(app.conversation().is_empty());
    assert!(!app.busy());
}

#[test]
fn shift_or_alt_enter_makes_a_new_line() {
    let mut app = app();
    type_text(&mut app, "line one");
    app.update(key_with(KeyCode::Enter, KeyModifiers::SHIFT));
    type_text(&mut app, "line two");
    app.update(key_with(KeyCode::Enter, KeyModifiers::ALT));
    type_text(&mut app, "three");
    app.update(ctrl('j'));
    type_text(&mut app, "four");
    assert_eq!(app.input.text(), "line one\nline two\nthree\nfour");
    assert!(app.take_actions().is_empty());
    app.update(key(KeyCode::Enter));
    assert!(
        app.take_actions()
            .contains(&Action::Send("line one\nline two\nthree\nfour".into()))
    );
}

#[test]
fn paste_keeps_newlines() {
    let mut app = app();
    app.update(Event::Terminal(TermEvent::Paste(
        "fn main() {\r\n}\n".into(),
    )));
    assert_eq!(app.input.text(), "fn main() {\n}\n");
}

#[test]
fn up_and_down_recall_earlier_inputs() {
    let mut app = app();
    answer(&mut app, "first", &["1"]);
    answer(&mut app, "second", &["2"]);
    type_text(&mut app, "draft");
    app.update(key(KeyCode::Up));
    assert_eq!(app.input.text(), "second");
    app.update(key(KeyCode::Up));
    assert_eq!(app.input.text(), "first");
    app.update(key(KeyCode::Down));
    assert_eq!(app.input.text(), "second");
    app.update(key(KeyCode::Down));
    assert_eq!(app.input.text(), "draft");
}

#[test]
fn up_moves_inside_a_multi_line_input_before_recalling() {
    let mut app = app();
    answer(&mut app, "old", &["x"]);
    type_text(&mut app, "a");
    app.update(ctrl('j'));
    type_text(&mut app, "b");
    app.update(key(KeyCode::Up));
    assert_eq!(app.input.text(), "a\nb", "first Up moves to line one");
    app.update(key(KeyCode::Up));
    assert_eq!(app.input.text(), "old", "second Up recalls");
}

#[test]
fn enter_while_answering_does_not_send() {
    let mut app = app();
    submit(&mut app, "one");
    app.take_actions();
    submit(&mut app, "two");
    assert!(app.take_actions().is_empty());
    assert_eq!(app.input.text(), "two", "the input is kept");
    assert!(app.status_hint.as_deref().unwrap_or("").contains("Esc"));
}

#[test]
fn ctrl_c_stops_then_clears_then_quits() {
    let mut app = app();
    submit(&mut app, "q");
    app.take_actions();
    app.update(ctrl('c'));
    assert_eq!(app.take_actions(), [Action::Cancel]);
    app.update(worker(WorkerEvent::Withdrawn));
    type_text(&mut app, "draft");
    app.update(ctrl('c'));
    assert!(app.input.is_empty());
    app.update(ctrl('c'));
    assert!(
        !app.should_quit,
        "the first Ctrl+C on an empty input only warns"
    );
    app.update(ctrl('c'));
    assert!(app.should_quit);
}

#[test]
fn scrolling_with_keys_and_wheel() {
    let mut app = app();
    for i in 0..30 {
        answer(&mut app, &format!("question {i}"), &["answer"]);
    }
    render(&app, 60, 20);
    let view = app.view.get();
    assert!(view.total > view.height);
    assert_eq!(view.top, view.max_top(), "follows the end");
    app.update(key(KeyCode::PageUp));
    let page = view.height - 2;
    assert_eq!(app.scroll, Some(view.max_top() - page));
    app.update(wheel(MouseEventKind::ScrollDown));
    assert_eq!(app.scroll, Some(view.max_top() - page + 3));
    app.update(key(KeyCode::PageDown));
    assert_eq!(app.scroll, None, "back at the end: following again");
    app.update(key_with(KeyCode::Home, KeyModifiers::CONTROL));
    assert_eq!(app.scroll, Some(0));
    let terminal = render(&app, 60, 20);
    assert!(screen(&terminal).starts_with("You\n  question 0"));
    app.update(key(KeyCode::Esc));
    assert_eq!(app.scroll, None, "Esc when idle jumps to the end");
}

#[test]
fn a_pinned_view_stays_put_while_the_answer_grows() {
    let mut app = app();
    for i in 0..20 {
        answer(&mut app, &format!("question {i}"), &["answer"]);
    }
    render(&app, 60, 20);
    app.update(key(KeyCode::PageUp));
    let pinned = app.scroll;
    submit(&mut app, "more");
    app.update(worker(WorkerEvent::Accepted));
    // Sending jumps to the end...
    assert_eq!(app.scroll, None);
    render(&app, 60, 20);
    app.update(key(KeyCode::PageUp));
    let pinned_again = app.scroll;
    assert!(pinned.is_some() && pinned_again.is_some());
    let before = screen(&render(&app, 60, 20));
    // ...but reading back while it streams is not disturbed.
    for _ in 0..50 {
        app.update(worker(WorkerEvent::Content("more text\n".into())));
    }
    let after = screen(&render(&app, 60, 20));
    let conversation = |s: &str| s.lines().take(14).collect::<Vec<_>>().join("\n");
    assert_eq!(conversation(&before), conversation(&after));
}
