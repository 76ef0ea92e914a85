//! The chat as a session: saved while streaming and on exit, resumed, copied, damaged files.

use conductor_core::Message;
use conductor_tui::app::{Action, EntryKind, MessageState, NoticeLevel};
use conductor_tui::event::Event;
use conductor_tui::session::Session;
use conductor_tui::worker::WorkerEvent;
use crossterm::event::KeyCode;

use crate::common::*;

#[test]
fn a_streaming_answer_is_saved_every_two_seconds() {
    let mut app = app();
    submit(&mut app, "long");
    app.update(worker(WorkerEvent::Accepted));
    app.take_actions();
    app.update(worker(WorkerEvent::Content("a".into())));
    for _ in 0..119 {
        app.update(Event::Tick);
    }
    assert!(app.take_actions().is_empty());
    app.update(Event::Tick);
    assert_eq!(app.take_actions(), [Action::Save { announce: false }]);
    let saved = app.session_snapshot();
    assert_eq!(saved.messages.len(), 2);
    assert!(
        saved.messages[1].incomplete,
        "in flight: saved as incomplete"
    );
}

#[test]
fn terminate_while_streaming_saves_the_partial_answer() {
    let mut app = app();
    submit(&mut app, "q");
    app.update(worker(WorkerEvent::Accepted));
    app.update(worker(WorkerEvent::Content("partial".into())));
    app.take_actions();
    app.update(Event::Terminate);
    let actions = app.take_actions();
    assert!(actions.contains(&Action::Cancel));
    assert!(actions.contains(&Action::Save { announce: false }));
    assert!(app.should_quit);
    assert_eq!(messages(&app)[1].2, MessageState::Stopped);
}

#[test]
fn resume_shows_the_session_and_hands_it_to_the_worker() {
    let mut app = app();
    let mut session = Session::new("llama3.2:3b", "sage");
    let mut partial = Message::assistant("half");
    partial.incomplete = true;
    session.messages = vec![
        Message::user("q1").into(),
        Message::assistant("a1").into(),
        Message::user("q2").into(),
        partial.into(),
    ];
    session.system = Some("be brief".into());
    app.resume(session.clone());
    assert_eq!(
        messages(&app)
            .iter()
            .map(|m| m.2.clone())
            .collect::<Vec<_>>(),
        [
            MessageState::Sent,
            MessageState::Complete,
            MessageState::Sent,
            MessageState::Stopped
        ]
    );
    assert_eq!(app.session.id, session.id, "it goes on in the same file");
    assert_eq!(app.conversation(), session.messages);
    assert_eq!(
        app.take_actions(),
        [Action::Restore {
            history: session.history(),
            personality: "sage".into(),
            system: Some("be brief".into()),
        }]
    );
    // Its questions are in the input history.
    app.update(key(KeyCode::Up));
    assert_eq!(app.input.text(), "q2");
}

#[test]
fn a_conversation_open_in_another_window_continues_as_a_copy() {
    let mut app = app();
    let mut saved = Session::new("llama3.2:3b", "yollayah");
    saved.messages = vec![Message::user("q").into(), Message::assistant("a").into()];
    app.resume(saved.clone());
    app.take_actions();
    app.continue_as_copy(Some(4242));
    assert_ne!(app.session.id, saved.id);
    let snapshot = app.session_snapshot();
    assert_eq!(snapshot.id, app.session.id);
    assert_eq!(snapshot.messages, saved.messages);
    let (level, title) = notices(&app).pop().unwrap();
    assert_eq!(level, NoticeLevel::Warning);
    assert!(
        title.contains("pid 4242") && title.contains("new conversation"),
        "{title}"
    );
    // The user's turns go on into the copy.
    answer(&mut app, "more", &["yes"]);
    assert_eq!(app.session_snapshot().messages.len(), 4);
}

#[test]
fn damaged_sessions_are_reported_where_they_went() {
    let mut app = app();
    app.report_set_aside(&[conductor_tui::session::SetAside {
        from: "/s/20260105-000000-dddd.json".into(),
        to: Some("/s/20260105-000000-dddd.damaged-20260106T100000Z.json".into()),
        reason: "EOF while parsing an object at line 1 column 38".into(),
    }]);
    let EntryKind::Notice(notice) = app.entries[0].kind() else {
        panic!("a notice");
    };
    assert_eq!(notice.level, NoticeLevel::Warning);
    assert!(
        notice.title.contains("moved aside, not deleted"),
        "{}",
        notice.title
    );
    assert!(
        notice.body[0].contains("20260105-000000-dddd.damaged-20260106T100000Z.json"),
        "{:?}",
        notice.body
    );
}
