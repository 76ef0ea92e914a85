//! `/pull NAME`: progress in a notice that updates in place, Esc to stop, the switch when done;
//! and the download itself against the stand-in.

use std::sync::Arc;
use std::time::Duration;

use conductor_core::backend::PullProgress;
use conductor_core::{Backend, Conductor, GpuPolicy};
use conductor_tests::StandIn;
use conductor_tui::app::{Action, App, EntryKind, NoticeLevel};
use conductor_tui::event::{Event, EventHandler, PullUpdate};
use crossterm::event::KeyCode;

use crate::common::*;

fn notices(app: &App) -> Vec<(NoticeLevel, String)> {
    app.entries
        .iter()
        .filter_map(|e| match e.kind() {
            EntryKind::Notice(n) => Some((n.level, n.title.clone())),
            EntryKind::Message(_) => None,
        })
        .collect()
}

fn progress(status: &str, completed: u64, total: u64) -> Event {
    Event::Pull {
        model: "qwen3:8b".into(),
        update: PullUpdate::Progress(PullProgress {
            status: status.into(),
            digest: Some("sha256:6a0746a1ec1a".into()),
            total: Some(total),
            completed: Some(completed),
        }),
    }
}

#[test]
fn pull_progress_updates_one_notice_and_switches_when_done() {
    let mut app = app();
    submit(&mut app, "/pull qwen3:8b");
    assert_eq!(app.take_actions(), [Action::Pull("qwen3:8b".into())]);
    assert_eq!(
        notices(&app),
        [(NoticeLevel::Info, "Pulling qwen3:8b: starting".into())]
    );
    app.update(progress(
        "pulling 6a0746a1ec1a",
        1_200_000_000,
        4_900_000_000,
    ));
    assert_eq!(
        notices(&app),
        [(
            NoticeLevel::Info,
            "Pulling qwen3:8b: pulling 6a0746a1ec1a 1.2 GB of 4.9 GB (24%)".into()
        )],
        "one notice, updated in place"
    );
    // A second pull while one runs.
    submit(&mut app, "/pull gemma3");
    assert!(app.take_actions().is_empty());
    assert!(
        app.status_hint
            .as_deref()
            .unwrap()
            .contains("already pulling qwen3:8b")
    );

    app.update(Event::Pull {
        model: "qwen3:8b".into(),
        update: PullUpdate::Done,
    });
    assert_eq!(app.take_actions(), [Action::SetModel("qwen3:8b".into())]);
    assert_eq!(notices(&app)[0].1, "Pulled qwen3:8b: switching to it");
    assert!(app.pull.is_none());
}

#[test]
fn esc_stops_the_pull_and_failures_are_said() {
    let mut app = app();
    submit(&mut app, "/pull qwen3:8b");
    app.take_actions();
    app.update(key(KeyCode::Esc));
    assert_eq!(app.take_actions(), [Action::CancelPull]);
    app.update(Event::Pull {
        model: "qwen3:8b".into(),
        update: PullUpdate::Cancelled,
    });
    assert_eq!(
        notices(&app),
        [(NoticeLevel::Warning, "Pull of qwen3:8b stopped".into())]
    );
    assert!(app.take_actions().is_empty(), "no switch");
    assert_eq!(app.info.model, "llama3.2:3b");

    submit(&mut app, "/pull nosuch");
    app.take_actions();
    app.update(Event::Pull {
        model: "nosuch".into(),
        update: PullUpdate::Failed("pull model manifest: file does not exist".into()),
    });
    let (level, title) = notices(&app).pop().unwrap();
    assert_eq!(level, NoticeLevel::Error);
    assert_eq!(
        title,
        "Cannot pull nosuch: pull model manifest: file does not exist"
    );

    submit(&mut app, "/pull");
    assert!(app.take_actions().is_empty());
    assert!(
        notices(&app)
            .pop()
            .unwrap()
            .1
            .contains("/pull needs a model name")
    );
}

#[tokio::test]
async fn a_pull_streams_from_the_server() {
    let ollama = StandIn::start().await;
    ollama.set_pull_layers(&[("sha256:6a0746a1ec1aa", 4_000_000)]);
    let conductor = crate::worker::conductor(&ollama, GpuPolicy::Enforce);
    let mut events = EventHandler::new();
    let update = tokio::time::timeout(
        Duration::from_secs(10),
        conductor_tui::pull::pull(conductor.backend().as_ref(), "qwen3:8b", &events.sender()),
    )
    .await
    .unwrap();
    assert_eq!(update, PullUpdate::Done);
    let mut statuses = Vec::new();
    while let Some(event) = events.try_next() {
        if let Event::Pull {
            update: PullUpdate::Progress(p),
            ..
        } = event
        {
            statuses.push(p.status);
        }
    }
    assert_eq!(
        statuses.first().map(String::as_str),
        Some("pulling manifest")
    );
    assert_eq!(statuses.last().map(String::as_str), Some("success"));
    assert_eq!(ollama.requests_to("/api/pull").len(), 1);
}

#[tokio::test]
async fn a_failed_pull_and_a_server_without_pull_are_failures() {
    // The stand-in answers as an offline Ollama does.
    let ollama = StandIn::start().await;
    let conductor = crate::worker::conductor(&ollama, GpuPolicy::Enforce);
    let events = EventHandler::new();
    let update =
        conductor_tui::pull::pull(conductor.backend().as_ref(), "qwen3:8b", &events.sender()).await;
    let PullUpdate::Failed(reason) = update else {
        panic!("a failure, got {update:?}");
    };
    assert!(reason.contains("registry.ollama.ai"), "{reason}");

    // A backend without the model-server capability (an OpenAI-compatible server).
    let server = conductor_tests::OpenAiStandIn::start().await;
    let mut settings = conductor_core::Settings::defaults();
    settings.backend = conductor_core::BackendKind::OpenAi;
    settings.host = server.base().parse().unwrap();
    let backend: Arc<dyn Backend> =
        Arc::clone(Conductor::from_settings(&settings).unwrap().backend());
    let update = conductor_tui::pull::pull(backend.as_ref(), "x", &events.sender()).await;
    assert_eq!(
        update,
        PullUpdate::Failed("this server cannot download models".into())
    );
}
