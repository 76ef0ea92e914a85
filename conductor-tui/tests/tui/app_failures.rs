//! Failures and residency shown in place: server down, lost stream, diagnoses, hostile text.

use std::sync::Arc;
use std::time::Duration;

use conductor_core::{Error, GpuPolicy, Processor, Role};
use conductor_tui::app::{Action, App, Badge, EntryKind, MessageState, NoticeLevel};
use conductor_tui::event::Event;
use conductor_tui::residency::{ResidencyState, ResidencyUpdate};
use conductor_tui::worker::WorkerEvent;

use crate::common::*;

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
