//! `/policy`: the GPU policy and the last check shown; changed for this chat, with the check
//! under the new policy at once (the app alone, then the worker against the stand-in).

use std::sync::Arc;

use conductor_core::gpu::AdmissionBasis;
use conductor_core::{Error, GpuPolicy};
use conductor_tests::Residency;
use conductor_tui::app::{Action, App, EntryKind, Notice, NoticeLevel, VerdictKind};
use conductor_tui::event::EventHandler;
use conductor_tui::worker::{self, Command, WorkerEvent};

use crate::common::*;
use crate::worker::{MODEL, conductor, next_worker_event};

fn last_notice(app: &App) -> Notice {
    app.entries
        .iter()
        .rev()
        .find_map(|e| match e.kind() {
            EntryKind::Notice(n) => Some(n.clone()),
            EntryKind::Message(_) => None,
        })
        .expect("a notice")
}

#[test]
fn policy_shows_the_policy_and_the_last_check() {
    let mut app = app();
    submit(&mut app, "/policy");
    assert!(app.take_actions().is_empty());
    let notice = last_notice(&app);
    assert_eq!(notice.title, "GPU policy: enforce");
    assert_eq!(notice.body[1], "No check has finished yet.");
    assert!(
        notice
            .hint
            .unwrap()
            .contains("/policy enforce|warn|fix|off")
    );

    app.update(worker(WorkerEvent::NotReady {
        model: "llama3.2:3b".into(),
        error: Error::NotResident(Box::new(context_diagnosis())),
    }));
    submit(&mut app, "/policy");
    let notice = last_notice(&app);
    assert!(
        notice.body[1].starts_with("Last check of llama3.2:3b: refused: model 'llama3.2:3b'"),
        "{notice:?}"
    );
    assert!(notice.body[1].contains("72%/28% CPU/GPU"), "{notice:?}");
}

#[test]
fn policy_name_changes_it_and_a_refusal_shows_the_diagnosis_at_once() {
    let mut app = App::new(info(GpuPolicy::Warn));
    submit(&mut app, "/policy ENFORCE");
    assert_eq!(app.take_actions(), [Action::SetPolicy(GpuPolicy::Enforce)]);
    app.update(worker(WorkerEvent::PolicyChanged(GpuPolicy::Enforce)));
    assert_eq!(app.info.policy, GpuPolicy::Enforce);
    assert!(app.checking);
    assert_eq!(
        last_notice(&app).title,
        "GPU policy: enforce for this chat; llama3.2:3b (checking where it runs…)"
    );
    app.update(worker(WorkerEvent::NotReady {
        model: "llama3.2:3b".into(),
        error: Error::NotResident(Box::new(context_diagnosis())),
    }));
    let titles: Vec<(NoticeLevel, String)> = app
        .entries
        .iter()
        .filter_map(|e| match e.kind() {
            EntryKind::Notice(n) => Some((n.level, n.title.clone())),
            EntryKind::Message(_) => None,
        })
        .collect();
    assert_eq!(titles.len(), 2, "{titles:?}");
    assert_eq!(
        titles[0],
        (
            NoticeLevel::Error,
            "GPU policy: enforce for this chat; llama3.2:3b: not fully on the GPU: questions \
             will be refused (see below)"
                .into()
        )
    );
    let diagnosis = last_notice(&app);
    assert!(
        diagnosis.hint.unwrap().starts_with("fix:"),
        "the fix is shown"
    );
    assert!(matches!(
        app.verdict.as_ref().unwrap().kind,
        VerdictKind::Refused(_)
    ));
    assert!(
        screen(&render(&app, 100, 30)).contains("enforce"),
        "the status bar shows the new policy"
    );

    // Back to warn: the same diagnosis is shown again as a warning (not deduplicated away).
    app.update(worker(WorkerEvent::PolicyChanged(GpuPolicy::Warn)));
    app.update(worker(WorkerEvent::Ready {
        model: "llama3.2:3b".into(),
        warning: Some(Arc::new(context_diagnosis())),
        fixed: None,
        basis: Some(AdmissionBasis::Checked),
    }));
    assert!(last_notice(&app).title.starts_with("Warning:"));
}

#[test]
fn a_wrong_name_and_a_chat_without_guard_are_said() {
    let mut app = app();
    submit(&mut app, "/policy strict");
    assert!(app.take_actions().is_empty());
    let notice = last_notice(&app);
    assert_eq!(notice.level, NoticeLevel::Error);
    assert_eq!(
        notice.title,
        "Unknown GPU policy `strict`: expected one of: enforce, warn, fix, off"
    );
    app.update(worker(WorkerEvent::PolicyUnavailable));
    assert!(
        last_notice(&app)
            .title
            .contains("without a residency guard")
    );
    assert_eq!(app.info.policy, GpuPolicy::Enforce);
}

#[tokio::test]
async fn the_worker_changes_the_guard_policy_and_checks_again() {
    let ollama = conductor_tests::StandIn::start().await;
    ollama.set_residency(MODEL, Residency::split(25_712_097_280, 7_265_650_688));
    let mut events = EventHandler::new();
    let conductor = conductor(&ollama, GpuPolicy::Warn);
    let (handle, _task) = worker::spawn(conductor.chat(), events.sender());
    handle.send(Command::Warm);
    assert!(matches!(
        next_worker_event(&mut events).await,
        WorkerEvent::Ready {
            warning: Some(_),
            ..
        }
    ));
    // The warn verdict is cached; enforce must not reuse it.
    handle.send(Command::SetPolicy(GpuPolicy::Enforce));
    assert!(matches!(
        next_worker_event(&mut events).await,
        WorkerEvent::PolicyChanged(GpuPolicy::Enforce)
    ));
    assert!(matches!(
        next_worker_event(&mut events).await,
        WorkerEvent::NotReady {
            error: Error::NotResident(_),
            ..
        }
    ));
    assert_eq!(conductor.guard().unwrap().policy(), GpuPolicy::Enforce);
    handle.send(Command::SetPolicy(GpuPolicy::Off));
    assert!(matches!(
        next_worker_event(&mut events).await,
        WorkerEvent::PolicyChanged(GpuPolicy::Off)
    ));
    assert!(matches!(
        next_worker_event(&mut events).await,
        WorkerEvent::Ready {
            basis: Some(AdmissionBasis::Unchecked),
            warning: None,
            ..
        }
    ));

    // Without a guard: said so.
    let plain = conductor_core::Conductor::new(
        Arc::clone(conductor.backend()),
        conductor_core::PersonalityCatalog::builtin()
            .load("yollayah")
            .unwrap(),
        conductor_core::RequestDefaults::for_model(MODEL),
    );
    let (handle, _task) = worker::spawn(plain.chat(), events.sender());
    handle.send(Command::SetPolicy(GpuPolicy::Enforce));
    assert!(matches!(
        next_worker_event(&mut events).await,
        WorkerEvent::PolicyUnavailable
    ));
}
