//! The app state driven by scripted events: keys, stream chunks, errors. No terminal, no
//! network: the actions it asks for are checked instead.

use std::sync::Arc;
use std::time::Duration;

use conductor_core::{Error, GpuPolicy, Message, Processor, Role};
use conductor_tui::app::{
    Action, App, Badge, EntryKind, MessageState, NoticeLevel, Phase, PickerKind,
};
use conductor_tui::event::Event;
use conductor_tui::residency::{ResidencyState, ResidencyUpdate};
use conductor_tui::session::Session;
use conductor_tui::worker::WorkerEvent;
use crossterm::event::{Event as TermEvent, KeyCode, KeyModifiers, MouseEventKind};

use crate::common::*;

fn messages(app: &App) -> Vec<(Role, String, MessageState)> {
    app.entries
        .iter()
        .filter_map(|e| e.message())
        .map(|m| (m.role, m.content.clone(), m.state.clone()))
        .collect()
}

fn notices(app: &App) -> Vec<(NoticeLevel, String)> {
    app.entries
        .iter()
        .filter_map(|e| match e.kind() {
            EntryKind::Notice(n) => Some((n.level, n.title.clone())),
            EntryKind::Message(_) => None,
        })
        .collect()
}

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
fn ollama_down_is_said_in_place_and_alt_r_retries() {
    let mut app = app();
    submit(&mut app, "hello?");
    app.take_actions();
    app.update(worker(WorkerEvent::Rejected(Error::Unreachable {
        host: "http://127.0.0.1:11434".into(),
        reason: "connection refused".into(),
    })));
    assert_eq!(app.badge, Badge::Unreachable);
    assert!(!app.busy());
    assert!(matches!(messages(&app)[0].2, MessageState::NotSent(_)));
    let notices = notices(&app);
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].0, NoticeLevel::Error);
    assert!(
        notices[0].1.contains("cannot reach Ollama"),
        "{}",
        notices[0].1
    );
    assert!(app.conversation().is_empty(), "the question never got in");

    app.update(alt('r'));
    assert!(app.take_actions().contains(&Action::Send("hello?".into())));
    assert_eq!(
        messages(&app),
        [
            (Role::User, "hello?".into(), MessageState::Pending),
            (Role::Assistant, String::new(), MessageState::Streaming),
        ],
        "retried in place: the failed attempt and its notice are replaced"
    );
}

#[test]
fn connection_lost_mid_answer_keeps_the_partial_answer() {
    let mut app = app();
    submit(&mut app, "tell me");
    app.update(worker(WorkerEvent::Accepted));
    app.update(worker(WorkerEvent::Content("Once upon".into())));
    app.update(worker(WorkerEvent::Failed(Error::ConnectionLost {
        reason: "connection reset".into(),
    })));
    let m = messages(&app);
    assert_eq!(m[1].1, "Once upon");
    assert!(matches!(m[1].2, MessageState::Interrupted(_)));
    assert_eq!(notices(&app)[0].0, NoticeLevel::Error);
    assert!(app.conversation()[1].incomplete);
    app.take_actions();
    app.update(alt('r'));
    assert!(app.take_actions().contains(&Action::Send("tell me".into())));
}

#[test]
fn enforce_shows_the_diagnosis_and_fix_instead_of_answering() {
    let mut app = app();
    submit(&mut app, "hi");
    app.update(worker(WorkerEvent::Rejected(Error::NotResident(Box::new(
        context_diagnosis(),
    )))));
    assert_eq!(
        app.badge,
        Badge::Loaded(Processor::Split {
            cpu_percent: 72,
            gpu_percent: 28
        })
    );
    let notice = app
        .entries
        .iter()
        .find_map(|e| match e.kind() {
            EntryKind::Notice(n) => Some(n.clone()),
            EntryKind::Message(_) => None,
        })
        .unwrap();
    assert_eq!(notice.level, NoticeLevel::Error);
    assert!(notice.title.contains("Not answering"), "{}", notice.title);
    assert!(
        notice.body[0].contains("72%/28% CPU/GPU"),
        "{:?}",
        notice.body
    );
    assert!(notice.hint.unwrap().contains("num_ctx"));
    assert!(messages(&app).iter().all(|m| m.0 == Role::User));
}

#[test]
fn warn_shows_a_warning_once_above_the_answer() {
    let mut app = App::new(info(GpuPolicy::Warn));
    let diagnosis = Arc::new(context_diagnosis());
    for question in ["one", "two"] {
        submit(&mut app, question);
        app.update(worker(WorkerEvent::Accepted));
        app.update(worker(WorkerEvent::Warning(Arc::clone(&diagnosis))));
        app.update(worker(WorkerEvent::Content("slow answer".into())));
        app.update(worker(WorkerEvent::Finished {
            completion: completion(10, 1_000),
            ttft: None,
            elapsed: Duration::from_secs(1),
        }));
    }
    let warnings: Vec<_> = notices(&app)
        .into_iter()
        .filter(|(l, _)| *l == NoticeLevel::Warning)
        .collect();
    assert_eq!(warnings.len(), 1, "the same diagnosis is shown once");
    // Order: question, warning, answer.
    assert!(matches!(app.entries[1].kind(), EntryKind::Notice(_)));
    assert_eq!(messages(&app)[1].1, "slow answer");
    assert!(matches!(app.badge, Badge::Loaded(Processor::Split { .. })));
}

#[test]
fn residency_updates_drive_the_badge() {
    let mut app = app();
    assert_eq!(app.badge, Badge::Unknown);
    let update = |model: &str, state| {
        Event::Residency(ResidencyUpdate {
            model: model.into(),
            state,
        })
    };
    app.update(update(
        "llama3.2:3b",
        ResidencyState::Loaded(running("llama3.2:3b", 100, 100)),
    ));
    assert_eq!(app.badge, Badge::Loaded(Processor::Gpu));
    app.update(update(
        "other:7b",
        ResidencyState::Loaded(running("other:7b", 100, 0)),
    ));
    assert_eq!(
        app.badge,
        Badge::Loaded(Processor::Gpu),
        "other models are ignored"
    );
    app.update(update(
        "llama3.2:3b",
        ResidencyState::Loaded(running("llama3.2:3b", 100, 52)),
    ));
    assert_eq!(app.badge.label(), "48%/52% CPU/GPU");
    app.update(update("llama3.2:3b", ResidencyState::NotLoaded));
    assert_eq!(app.badge, Badge::NotLoaded);
    app.update(update(
        "llama3.2:3b",
        ResidencyState::Unreachable("refused".into()),
    ));
    assert_eq!(app.badge, Badge::Unreachable);
}

#[test]
fn personality_picker_switches_and_keeps_the_conversation() {
    let mut app = app();
    answer(&mut app, "hi", &["hello"]);
    submit(&mut app, "/personality");
    assert_eq!(app.take_actions(), [Action::ListPersonalities]);
    app.update(Event::Personalities(vec![
        ("forge".into(), "terse engineer".into()),
        ("sage".into(), "patient tutor".into()),
        ("yollayah".into(), "the default".into()),
    ]));
    let picker = app.picker.as_ref().unwrap();
    assert_eq!(picker.kind, PickerKind::Personality);
    assert_eq!(picker.selected, 2, "the current one is selected");
    app.update(key(KeyCode::Up));
    app.update(key(KeyCode::Enter));
    assert!(app.picker.is_none());
    assert_eq!(
        app.take_actions(),
        [Action::SwitchPersonality("sage".into())]
    );
    app.update(worker(WorkerEvent::PersonalityChanged("sage".into())));
    assert_eq!(app.info.personality, "sage");
    assert_eq!(app.conversation().len(), 2, "the conversation is kept");
    assert!(notices(&app)[0].1.contains("from the next answer on"));
    // Typing filters.
    submit(&mut app, "/personality");
    app.update(Event::Personalities(vec![
        ("forge".into(), String::new()),
        ("sage".into(), String::new()),
    ]));
    type_text(&mut app, "forg");
    app.update(key(KeyCode::Enter));
    assert!(
        app.take_actions()
            .contains(&Action::SwitchPersonality("forge".into()))
    );
}

#[test]
fn commands() {
    let mut app = app();
    submit(&mut app, "/personality sage");
    assert_eq!(
        app.take_actions(),
        [Action::SwitchPersonality("sage".into())]
    );
    submit(&mut app, "/model qwen3:8b");
    assert_eq!(app.take_actions(), [Action::CheckModel("qwen3:8b".into())]);
    submit(&mut app, "/model");
    assert_eq!(app.take_actions(), [Action::ListModels]);
    submit(&mut app, "/system Answer in French.");
    assert_eq!(
        app.take_actions(),
        [Action::SetSystem(Some("Answer in French.".into()))]
    );
    submit(&mut app, "/system");
    assert_eq!(app.take_actions(), [Action::SetSystem(None)]);
    submit(&mut app, "/save");
    assert_eq!(app.take_actions(), [Action::Save { announce: true }]);
    submit(&mut app, "/sessions");
    assert_eq!(app.take_actions(), [Action::ListSessions]);
    submit(&mut app, "//not a command");
    assert!(
        app.take_actions()
            .contains(&Action::Send("/not a command".into()))
    );
    app.update(worker(WorkerEvent::Stopped));
    app.take_actions();
    submit(&mut app, "/frobnicate");
    assert!(app.take_actions().is_empty());
    assert!(
        notices(&app)
            .iter()
            .any(|(l, t)| *l == NoticeLevel::Error && t.contains("/frobnicate"))
    );
    submit(&mut app, "/help");
    assert!(notices(&app).iter().any(|(_, t)| t == "Help"));
    submit(&mut app, "/quit");
    assert!(app.should_quit);
}

#[test]
fn tab_completes_commands() {
    let mut app = app();
    type_text(&mut app, "/pers");
    app.update(key(KeyCode::Tab));
    assert_eq!(app.input.text(), "/personality ");
}

#[test]
fn clear_starts_a_new_session_and_saves_the_old() {
    let mut app = app();
    answer(&mut app, "hi", &["hello"]);
    let old = app.session.id.clone();
    submit(&mut app, "/clear");
    let actions = app.take_actions();
    assert_eq!(actions, [Action::Save { announce: false }, Action::Clear]);
    assert!(app.entries.is_empty());
    assert_ne!(app.session.id, old);
}

#[test]
fn model_picker_lists_local_models() {
    let mut app = app();
    submit(&mut app, "/model");
    app.take_actions();
    app.update(Event::Models(Ok(vec![
        conductor_core::backend::LocalModel {
            name: "llama3.2:3b".into(),
            size: 2_019_393_189,
            modified_at: String::new(),
        },
        conductor_core::backend::LocalModel {
            name: "qwen3:8b".into(),
            size: 5_225_388_164,
            modified_at: String::new(),
        },
    ])));
    let picker = app.picker.as_ref().unwrap();
    assert_eq!(picker.kind, PickerKind::Model);
    assert_eq!(picker.items[0].detail, "2.0 GB");
    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Enter));
    assert_eq!(app.take_actions(), [Action::SetModel("qwen3:8b".into())]);
    app.update(worker(WorkerEvent::ModelChanged("qwen3:8b".into())));
    assert_eq!(app.info.model, "qwen3:8b");
    assert_eq!(app.badge, Badge::Unknown);
}

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

#[test]
fn the_start_up_check_shows_the_diagnosis_before_any_question() {
    let mut app = app();
    app.checking = true;
    app.update(worker(WorkerEvent::NotReady {
        model: "llama3.2:3b".into(),
        error: Error::NotResident(Box::new(context_diagnosis())),
    }));
    assert!(!app.checking);
    let notices = notices(&app);
    assert_eq!(notices.len(), 1);
    assert!(
        notices[0].1.contains("questions will be refused"),
        "{}",
        notices[0].1
    );
    assert!(app.take_actions().contains(&Action::RefreshResidency));
    // Ollama down at start: said at once, with the fix.
    let mut app = crate::common::app();
    app.update(worker(WorkerEvent::NotReady {
        model: "llama3.2:3b".into(),
        error: Error::Unreachable {
            host: "http://127.0.0.1:11434".into(),
            reason: "connection refused".into(),
        },
    }));
    assert_eq!(app.badge, Badge::Unreachable);
    match app.entries[0].kind() {
        EntryKind::Notice(n) => assert!(n.hint.as_deref().unwrap().contains("ollama serve")),
        EntryKind::Message(_) => panic!("a notice"),
    }
}

#[test]
fn a_missing_model_is_known_by_its_variant_and_offers_pull() {
    // At start (or after /model): whatever Ollama's wording, the core says ModelNotFound.
    let mut app = app();
    app.checking = true;
    app.update(worker(WorkerEvent::NotReady {
        model: "qwen3:8b".into(),
        error: Error::ModelNotFound {
            model: "qwen3:8b".into(),
        },
    }));
    let EntryKind::Notice(notice) = app.entries[0].kind() else {
        panic!("a notice");
    };
    assert_eq!(notice.level, NoticeLevel::Error);
    assert!(
        notice.title.contains("qwen3:8b is not on the server"),
        "{}",
        notice.title
    );
    let hint = notice.hint.as_deref().unwrap();
    assert!(hint.contains("`ollama pull qwen3:8b`"), "{hint}");
    assert!(hint.contains("/model"), "{hint}");

    // On a question: the question is kept for Alt+R.
    let mut app = crate::common::app();
    submit(&mut app, "hello");
    app.update(worker(WorkerEvent::Rejected(Error::ModelNotFound {
        model: "llama3.2:3b".into(),
    })));
    assert!(matches!(messages(&app)[0].2, MessageState::NotSent(_)));
    let EntryKind::Notice(notice) = app.entries.last().unwrap().kind() else {
        panic!("a notice");
    };
    assert!(
        notice
            .hint
            .as_deref()
            .unwrap()
            .contains("ollama pull llama3.2:3b")
    );
    assert!(
        notice.body.iter().any(|l| l.contains("Alt+R")),
        "{notice:?}"
    );
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

/// Everything the server sends, hostile: the title change and screen clear of the issue.
const HOSTILE: &str = "x\u{1b}]0;pwned\u{7}\u{1b}[2Jy\u{9b}31m\r";

fn has_control(text: &str) -> bool {
    text.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
}

#[test]
fn server_text_reaches_the_screen_without_control_characters() {
    let mut app = app();
    app.checking = true;
    // A model name, an error body, an answer and a diagnosis note, all from the server.
    app.update(worker(WorkerEvent::NotReady {
        model: HOSTILE.into(),
        error: Error::ModelNotFound {
            model: HOSTILE.into(),
        },
    }));
    submit(&mut app, "hi");
    app.update(worker(WorkerEvent::Rejected(Error::Http {
        status: 500,
        message: format!("boom {HOSTILE}\nsecond line {HOSTILE}"),
    })));
    app.take_actions();
    answer(
        &mut app,
        "again",
        &["an answer ", HOSTILE, "\n```\ncode ", HOSTILE, "\n```"],
    );
    let mut diagnosis = context_diagnosis();
    diagnosis.model = HOSTILE.into();
    diagnosis.notes.push(HOSTILE.into());
    app.update(worker(WorkerEvent::Warning(Arc::new(diagnosis))));
    app.update(worker(WorkerEvent::ModelChanged(HOSTILE.into())));

    // What the UI builds for the terminal holds no control characters...
    for entry in &app.entries {
        for line in conductor_tui::ui::entry_lines(entry, 80) {
            for span in &line.spans {
                assert!(!has_control(&span.content), "{:?}", span.content);
            }
        }
    }
    // ...and neither does the screen: conversation, status bar, then the model picker.
    let check = |app: &App| {
        let terminal = render(app, 100, 60);
        for cell in terminal.backend().buffer().content.iter() {
            assert!(!has_control(cell.symbol()), "{:?}", cell.symbol());
        }
        screen(&terminal)
    };
    let shown = check(&app);
    assert!(shown.contains("x]0;pwned[2Jy31m"), "{shown}");
    submit(&mut app, "/model");
    app.take_actions();
    app.update(Event::Models(Ok(vec![
        conductor_core::backend::LocalModel {
            name: HOSTILE.into(),
            size: 1,
            modified_at: String::new(),
        },
    ])));
    let picker = app.picker.as_ref().unwrap();
    assert!(!has_control(&picker.items[0].label));
    // The value chosen is the server's name as it was: it is what the server knows.
    assert_eq!(picker.items[0].value, HOSTILE);
    check(&app);
}

#[test]
fn an_openai_compatible_server_down_is_not_called_ollama() {
    let mut info = info(GpuPolicy::Enforce);
    info.backend = conductor_core::BackendKind::OpenAi;
    let mut app = App::new(info);
    submit(&mut app, "hello?");
    app.take_actions();
    app.update(worker(WorkerEvent::Rejected(Error::Unreachable {
        host: "http://vllm-head:8000/v1".into(),
        reason: "connection refused".into(),
    })));
    let notices = notices(&app);
    assert_eq!(notices.len(), 1);
    assert!(!notices[0].1.contains("Ollama"), "{}", notices[0].1);
    assert!(
        notices[0].1.starts_with("The server is down"),
        "{}",
        notices[0].1
    );
}
