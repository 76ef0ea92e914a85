//! What the status bar (and the notices that go with it) says must stay true: hints go when
//! they no longer hold, the figures are the current model's, a model switch says where the new
//! model runs, a missing model is not switched to, and the "more lines" marker hides no text.

use std::sync::Arc;
use std::time::Duration;

use conductor_core::gpu::AdmissionBasis;
use conductor_core::{Error, GpuPolicy};
use conductor_tui::app::{Action, App, Badge, EntryKind, NoticeLevel, VerdictKind};
use conductor_tui::event::{Event, FPS};
use conductor_tui::worker::WorkerEvent;
use crossterm::event::KeyCode;

use crate::common::*;

fn notice_titles(app: &App) -> Vec<(NoticeLevel, String)> {
    app.entries
        .iter()
        .filter_map(|e| match e.kind() {
            EntryKind::Notice(n) => Some((n.level, n.title.clone())),
            EntryKind::Message(_) => None,
        })
        .collect()
}

fn ticks(app: &mut App, seconds: f64) {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    for _ in 0..(seconds * FPS) as u64 {
        app.update(Event::Tick);
    }
}

fn status_line(app: &App) -> String {
    screen(&render(app, 100, 20))
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned()
}

/// A switch to `model` as the worker reports it.
fn switched(app: &mut App, model: &str) {
    app.update(worker(WorkerEvent::ModelChanged(model.into())));
    app.take_actions();
}

fn ready(model: &str, basis: AdmissionBasis) -> Event {
    worker(WorkerEvent::Ready {
        model: model.into(),
        warning: None,
        fixed: None,
        basis: Some(basis),
    })
}

#[test]
fn still_answering_goes_when_the_answer_ends() {
    let mut app = app();
    submit(&mut app, "one");
    app.update(worker(WorkerEvent::Accepted));
    submit(&mut app, "two");
    assert!(status_line(&app).contains("still answering: Esc stops it"));
    app.update(worker(WorkerEvent::Content("done".into())));
    app.update(worker(WorkerEvent::Finished {
        completion: completion(10, 100),
        ttft: None,
        elapsed: Duration::from_millis(100),
    }));
    assert_eq!(app.status_hint, None);
    assert!(
        !status_line(&app).contains("still answering"),
        "{}",
        status_line(&app)
    );
    assert_eq!(app.input.text(), "two", "the unsent input is kept");
}

#[test]
fn a_hint_goes_after_a_few_seconds() {
    let mut app = app();
    submit(&mut app, "one");
    submit(&mut app, "two");
    assert!(app.status_hint.is_some());
    ticks(&mut app, 2.0);
    assert!(app.status_hint.is_some(), "still there after 2 s");
    ticks(&mut app, 1.5);
    assert_eq!(app.status_hint, None, "gone after 3 s");
    assert!(app.take_dirty(), "and the bar is redrawn");
}

#[test]
fn the_figures_go_with_the_model_and_come_back_after_its_first_answer() {
    let mut app = app();
    answer(&mut app, "hi", &["hello"]);
    assert!(status_line(&app).contains("50.0 tok/s"));
    switched(&mut app, "qwen3:8b");
    let bar = status_line(&app);
    assert!(!bar.contains("tok/s") && !bar.contains("TTFT"), "{bar}");
    assert_eq!(app.stats, None);
    answer(&mut app, "and you?", &["me too"]);
    let bar = status_line(&app);
    assert!(
        bar.contains("qwen3:8b") && bar.contains("50.0 tok/s") && bar.contains("TTFT 180 ms"),
        "{bar}"
    );
}

#[test]
fn a_switch_says_where_the_new_model_runs() {
    let mut app = app();
    switched(&mut app, "qwen3:8b");
    assert!(app.checking);
    assert_eq!(
        notice_titles(&app),
        [(
            NoticeLevel::Info,
            "Model: qwen3:8b (checking where it runs…)".to_owned()
        )]
    );
    app.update(ready("qwen3:8b", AdmissionBasis::Checked));
    assert!(!app.checking);
    assert_eq!(
        notice_titles(&app),
        [(NoticeLevel::Info, "Model: qwen3:8b: on the GPU".to_owned())],
        "the waiting notice is replaced by the outcome"
    );
    assert!(app.take_actions().contains(&Action::RefreshResidency));
    assert_eq!(app.verdict.as_ref().unwrap().kind, VerdictKind::Resident);

    // Under warn: said, with the diagnosis below.
    let mut app = App::new(info(GpuPolicy::Warn));
    switched(&mut app, "llama3.2:3b");
    app.update(worker(WorkerEvent::Ready {
        model: "llama3.2:3b".into(),
        warning: Some(Arc::new(context_diagnosis())),
        fixed: None,
        basis: Some(AdmissionBasis::Checked),
    }));
    let titles = notice_titles(&app);
    assert_eq!(titles.len(), 2, "{titles:?}");
    assert_eq!(titles[0].0, NoticeLevel::Warning);
    assert!(titles[0].1.contains("answering anyway"), "{titles:?}");
    assert!(titles[1].1.starts_with("Warning:"), "{titles:?}");
    assert_eq!(app.badge.label(), "72%/28% CPU/GPU");

    // Under enforce, refused: said, with the diagnosis and the fix.
    let mut app = crate::common::app();
    switched(&mut app, "llama3.2:3b");
    app.update(worker(WorkerEvent::NotReady {
        model: "llama3.2:3b".into(),
        error: Error::NotResident(Box::new(context_diagnosis())),
    }));
    let titles = notice_titles(&app);
    assert_eq!(titles[0].0, NoticeLevel::Error);
    assert!(
        titles[0].1.contains("questions will be refused"),
        "{titles:?}"
    );
    assert!(titles[1].1.contains("not fully on the GPU"), "{titles:?}");

    // Policy off: not checked, and said so.
    let mut app = App::new(info(GpuPolicy::Off));
    switched(&mut app, "qwen3:8b");
    app.update(ready("qwen3:8b", AdmissionBasis::Unchecked));
    assert_eq!(
        notice_titles(&app)[0].1,
        "Model: qwen3:8b: not checked (GPU policy: off)"
    );

    // Ollama down during the check: the notice says the check failed.
    let mut app = crate::common::app();
    switched(&mut app, "qwen3:8b");
    app.update(worker(WorkerEvent::NotReady {
        model: "qwen3:8b".into(),
        error: Error::Unreachable {
            host: "http://127.0.0.1:11434".into(),
            reason: "connection refused".into(),
        },
    }));
    let titles = notice_titles(&app);
    assert!(
        titles[0].1.starts_with("Model: qwen3:8b: check failed"),
        "{titles:?}"
    );
    assert_eq!(app.badge, Badge::Unreachable);
}

#[test]
fn esc_during_the_switch_check_says_it_stopped() {
    let mut app = app();
    switched(&mut app, "qwen3:8b");
    app.update(key(KeyCode::Esc));
    assert_eq!(app.take_actions(), [Action::Cancel]);
    assert!(!app.checking);
    assert_eq!(
        notice_titles(&app),
        [(
            NoticeLevel::Warning,
            "Model: qwen3:8b: check stopped".to_owned()
        )]
    );
}

#[test]
fn model_name_is_looked_up_before_switching() {
    let mut app = app();
    submit(&mut app, "/model qwen3:8b");
    assert_eq!(app.take_actions(), [Action::CheckModel("qwen3:8b".into())]);
    assert!(status_line(&app).contains("looking for qwen3:8b"));

    // Not there: the model stays, and /pull is offered.
    app.update(Event::ModelLookup {
        model: "qwen3:8b".into(),
        found: Ok(false),
    });
    assert!(app.take_actions().is_empty(), "no switch");
    assert_eq!(app.info.model, "llama3.2:3b");
    let EntryKind::Notice(notice) = app.entries.last().unwrap().kind() else {
        panic!("a notice");
    };
    assert_eq!(
        notice.title,
        "Model qwen3:8b is not on the server: still using llama3.2:3b"
    );
    assert!(
        notice.hint.as_deref().unwrap().contains("/pull qwen3:8b"),
        "{notice:?}"
    );

    // There: switched.
    submit(&mut app, "/model qwen3:8b");
    app.take_actions();
    app.update(Event::ModelLookup {
        model: "qwen3:8b".into(),
        found: Ok(true),
    });
    assert_eq!(app.take_actions(), [Action::SetModel("qwen3:8b".into())]);

    // The server cannot be asked: not switched, and said why.
    app.update(Event::ModelLookup {
        model: "gemma3".into(),
        found: Err("cannot reach Ollama".into()),
    });
    assert!(app.take_actions().is_empty());
    let (level, title) = notice_titles(&app).pop().unwrap();
    assert_eq!(level, NoticeLevel::Error);
    assert!(
        title.contains("Cannot tell whether gemma3 is on the server"),
        "{title}"
    );

    // The model in use: nothing to do.
    submit(&mut app, "/model llama3.2:3b");
    assert!(app.take_actions().is_empty());
    assert!(status_line(&app).contains("already llama3.2:3b"));
}

#[test]
fn the_more_lines_marker_hides_no_text() {
    let mut app = app();
    for i in 0..30 {
        answer(
            &mut app,
            &format!("question {i}"),
            &[&format!("answer {i}")],
        );
    }
    render(&app, 60, 20);
    app.update(key(KeyCode::PageUp));
    let text = screen(&render(&app, 60, 20));
    let view = app.view.get();
    assert!(view.top < view.max_top(), "pinned above the end");
    let rows: Vec<&str> = text.lines().collect();
    // The conversation fills the rows above the input box; its last row is drawn in full.
    let last_conversation_row = rows[view.height - 1];
    assert!(
        !last_conversation_row.contains("more lines"),
        "{last_conversation_row:?}\n{text}"
    );
    // The marker sits in the input box's top border.
    let border = rows[view.height];
    assert!(border.starts_with("╭ Message"), "{text}");
    assert!(border.contains("more lines · Ctrl+End"), "{text}");
    // Every line of the visible range is on screen: the one at the bottom too.
    let mut all = String::new();
    for entry in &app.entries {
        for line in conductor_tui::ui::entry_lines(entry, 60) {
            all.push_str(&line.to_string());
            all.push('\n');
        }
        all.push('\n');
    }
    let expected: Vec<&str> = all.lines().collect();
    assert_eq!(
        last_conversation_row.trim_end(),
        expected[view.top + view.height - 1].trim_end()
    );
}
