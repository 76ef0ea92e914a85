//! The chat worker and the residency poller against the Ollama stand-in, and the app and the
//! worker together (the runtime's wiring, without a terminal).

use std::time::Duration;

use conductor_core::{Conductor, Error, GpuPolicy, Processor, Role, Settings};
use conductor_tests::{Fault, Reply, Residency, StandIn};
use conductor_tui::app::{Action, App, EntryKind, MessageState, NoticeLevel};
use conductor_tui::event::{Event, EventHandler};
use conductor_tui::residency::{ResidencyPoller, ResidencyState};
use conductor_tui::worker::{self, Command, WorkerEvent};

use crate::common::*;

pub const MODEL: &str = "llama3.2:3b";

fn settings(host: &str, policy: GpuPolicy) -> Settings {
    let mut settings = Settings::defaults();
    settings.host = host.parse().unwrap();
    settings.gpu_policy = policy;
    settings.model = MODEL.into();
    settings
}

pub fn conductor(ollama: &StandIn, policy: GpuPolicy) -> Conductor {
    Conductor::from_settings(&settings(&ollama.host(), policy)).unwrap()
}

/// The next worker event, within 10 s.
pub async fn next_worker_event(events: &mut EventHandler) -> WorkerEvent {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("an event within 10 s")
            .expect("the channel is open");
        if let Event::Worker(event) = event {
            return event;
        }
    }
}

/// Worker events until `stop` matches (included).
async fn until(events: &mut EventHandler, stop: fn(&WorkerEvent) -> bool) -> Vec<WorkerEvent> {
    let mut seen = Vec::new();
    loop {
        let event = next_worker_event(events).await;
        let done = stop(&event);
        seen.push(event);
        if done {
            return seen;
        }
    }
}

fn content(events: &[WorkerEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            WorkerEvent::Content(text) => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_turn_streams_and_lands_in_the_history() {
    let ollama = StandIn::start().await;
    ollama.reply_with(&["Hello", " there", "!"]);
    let mut events = EventHandler::new();
    let (handle, task) = worker::spawn(
        conductor(&ollama, GpuPolicy::Enforce).chat(),
        events.sender(),
    );
    handle.send(Command::Send("hi".into()));
    let seen = until(&mut events, |e| matches!(e, WorkerEvent::Finished { .. })).await;
    assert!(matches!(seen[0], WorkerEvent::Accepted));
    assert_eq!(content(&seen), "Hello there!");
    let Some(WorkerEvent::Finished {
        completion, ttft, ..
    }) = seen.last()
    else {
        panic!("finished last");
    };
    assert!(completion.stats.tokens_per_second().is_some());
    assert!(ttft.is_some());
    drop(handle);
    let chat = task.await.unwrap();
    assert_eq!(chat.history().len(), 2);
    assert_eq!(chat.history()[1].content, "Hello there!");
    assert!(!chat.history()[1].incomplete);
}

#[tokio::test]
async fn cancel_drops_the_stream_and_keeps_the_partial_answer() {
    let ollama = StandIn::start().await;
    let tokens: Vec<String> = (0..200).map(|i| format!("t{i} ")).collect();
    let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
    ollama.push_reply(Reply::tokens(&tokens).chunk_delay(Duration::from_millis(20)));
    let mut events = EventHandler::new();
    let (handle, task) = worker::spawn(
        conductor(&ollama, GpuPolicy::Enforce).chat(),
        events.sender(),
    );
    handle.send(Command::Send("count".into()));
    until(&mut events, |e| matches!(e, WorkerEvent::Content(_))).await;
    handle.send(Command::Cancel);
    let seen = until(&mut events, |e| matches!(e, WorkerEvent::Stopped)).await;
    assert!(
        seen.iter()
            .all(|e| matches!(e, WorkerEvent::Content(_) | WorkerEvent::Stopped))
    );
    assert!(
        ollama.wait_for_aborts(1, Duration::from_secs(5)).await,
        "the HTTP stream was closed"
    );
    drop(handle);
    let chat = task.await.unwrap();
    let last = chat.history().last().unwrap();
    assert_eq!(last.role, Role::Assistant);
    assert!(last.incomplete);
    assert!(last.content.starts_with("t0 "));
}

#[tokio::test]
async fn commands_wait_while_an_answer_streams() {
    let ollama = StandIn::start().await;
    ollama.push_reply(Reply::tokens(&["a", "b", "c"]).chunk_delay(Duration::from_millis(30)));
    let mut events = EventHandler::new();
    let (handle, _task) = worker::spawn(conductor(&ollama, GpuPolicy::Off).chat(), events.sender());
    handle.send(Command::Send("q".into()));
    handle.send(Command::SwitchPersonality("sage".into()));
    let seen = until(&mut events, |e| {
        matches!(e, WorkerEvent::PersonalityChanged(_))
    })
    .await;
    let finished = seen
        .iter()
        .position(|e| matches!(e, WorkerEvent::Finished { .. }))
        .expect("the answer finished first");
    assert_eq!(finished, seen.len() - 2, "switched after the answer");
    // The next request carries sage's system message, and the conversation.
    handle.send(Command::Send("again".into()));
    until(&mut events, |e| matches!(e, WorkerEvent::Finished { .. })).await;
    let chats = ollama.requests_to("/api/chat");
    let last = chats.last().unwrap().json.clone().unwrap();
    let messages = last["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "system");
    assert!(
        messages[0]["content"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("sage"),
        "{}",
        messages[0]["content"]
    );
    assert_eq!(messages.len(), 4, "system, q, answer, again");
}

#[tokio::test]
async fn an_unknown_personality_is_refused() {
    let ollama = StandIn::start().await;
    let mut events = EventHandler::new();
    let (handle, _task) = worker::spawn(conductor(&ollama, GpuPolicy::Off).chat(), events.sender());
    handle.send(Command::SwitchPersonality("nobody".into()));
    match next_worker_event(&mut events).await {
        WorkerEvent::CommandFailed(Error::Personality(_)) => {}
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn ollama_down_is_a_rejection() {
    // A port nothing listens on: bind one, then free it.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let conductor =
        Conductor::from_settings(&settings(&format!("127.0.0.1:{port}"), GpuPolicy::Enforce))
            .unwrap();
    let mut events = EventHandler::new();
    let (handle, _task) = worker::spawn(conductor.chat(), events.sender());
    handle.send(Command::Warm);
    match next_worker_event(&mut events).await {
        WorkerEvent::NotReady {
            error: Error::Unreachable { .. },
            ..
        } => {}
        other => panic!("expected unreachable, got {other:?}"),
    }
    handle.send(Command::Send("hello?".into()));
    match next_worker_event(&mut events).await {
        WorkerEvent::Rejected(Error::Unreachable { .. }) => {}
        other => panic!("expected unreachable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_dropped_connection_mid_answer_is_a_failure_with_the_partial_kept() {
    let ollama = StandIn::start().await;
    ollama.push_reply(
        Reply::tokens(&["Once ", "upon ", "a ", "time"]).fault(Fault::Drop { after: 2 }),
    );
    let mut events = EventHandler::new();
    let (handle, task) = worker::spawn(conductor(&ollama, GpuPolicy::Off).chat(), events.sender());
    handle.send(Command::Send("story".into()));
    let seen = until(&mut events, |e| matches!(e, WorkerEvent::Failed(_))).await;
    assert_eq!(content(&seen), "Once upon ");
    drop(handle);
    let chat = task.await.unwrap();
    assert!(chat.history()[1].incomplete);
    assert_eq!(chat.history()[1].content, "Once upon ");
}

#[tokio::test]
async fn enforce_refuses_a_model_partly_on_the_cpu() {
    let ollama = StandIn::start().await;
    ollama.set_residency(MODEL, Residency::split(25_712_097_280, 7_265_650_688));
    let mut events = EventHandler::new();
    let (handle, _task) = worker::spawn(
        conductor(&ollama, GpuPolicy::Enforce).chat(),
        events.sender(),
    );
    handle.send(Command::Warm);
    match next_worker_event(&mut events).await {
        WorkerEvent::NotReady {
            error: Error::NotResident(diagnosis),
            ..
        } => assert_eq!(
            diagnosis.processor(),
            Some(Processor::Split {
                cpu_percent: 72,
                gpu_percent: 28
            })
        ),
        other => panic!("expected not resident, got {other:?}"),
    }
    handle.send(Command::Send("hi".into()));
    assert!(matches!(
        next_worker_event(&mut events).await,
        WorkerEvent::Rejected(Error::NotResident(_))
    ));
    assert!(
        ollama.requests_to("/api/chat").iter().all(|r| r
            .json
            .as_ref()
            .is_none_or(|j| j["messages"].as_array().is_none_or(Vec::is_empty))),
        "no question reached the model"
    );
}

#[tokio::test]
async fn warn_answers_with_a_warning_first() {
    let ollama = StandIn::start().await;
    ollama.set_residency(MODEL, Residency::split(25_712_097_280, 7_265_650_688));
    ollama.reply_with(&["slow", " but", " here"]);
    let mut events = EventHandler::new();
    let (handle, _task) =
        worker::spawn(conductor(&ollama, GpuPolicy::Warn).chat(), events.sender());
    handle.send(Command::Warm);
    match next_worker_event(&mut events).await {
        WorkerEvent::Ready {
            warning: Some(_), ..
        } => {}
        other => panic!("expected a warning, got {other:?}"),
    }
    handle.send(Command::Send("hi".into()));
    let seen = until(&mut events, |e| matches!(e, WorkerEvent::Finished { .. })).await;
    assert!(seen.iter().any(|e| matches!(e, WorkerEvent::Warning(_))));
    assert_eq!(content(&seen), "slow but here");
}

#[tokio::test]
async fn restore_continues_a_saved_conversation() {
    let ollama = StandIn::start().await;
    ollama.reply_with(&["ok"]);
    let mut events = EventHandler::new();
    let (handle, task) = worker::spawn(conductor(&ollama, GpuPolicy::Off).chat(), events.sender());
    handle.send(Command::Restore {
        history: vec![
            conductor_core::Message::user("earlier"),
            conductor_core::Message::assistant("reply"),
        ],
        personality: Some("forge".into()),
        system: Some("Be brief.".into()),
    });
    let seen = until(&mut events, |e| matches!(e, WorkerEvent::Restored { .. })).await;
    assert!(matches!(&seen[0], WorkerEvent::PersonalityChanged(p) if p == "forge"));
    handle.send(Command::Send("next".into()));
    until(&mut events, |e| matches!(e, WorkerEvent::Finished { .. })).await;
    let request = ollama
        .requests_to("/api/chat")
        .last()
        .unwrap()
        .json
        .clone()
        .unwrap();
    let messages = request["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 4);
    assert_eq!(messages[1]["content"], "earlier");
    assert!(
        messages[0]["content"]
            .as_str()
            .unwrap()
            .contains("Be brief.")
    );
    drop(handle);
    assert_eq!(task.await.unwrap().history().len(), 4);
}

#[tokio::test]
async fn the_poller_reads_residency_for_the_badge() {
    let ollama = StandIn::start().await;
    ollama.set_residency(MODEL, Residency::split(100, 52));
    let conductor = conductor(&ollama, GpuPolicy::Off);
    let mut events = EventHandler::new();
    let poller = ResidencyPoller::spawn(
        std::sync::Arc::clone(conductor.backend()),
        MODEL,
        events.sender(),
        Duration::from_secs(3600),
    );
    assert_eq!(
        next_residency(&mut events).await.state,
        ResidencyState::NotLoaded
    );
    // Load it (as the worker's check does), then ask for a reading.
    conductor.chat().send_collect("hi").await.unwrap();
    poller.refresh();
    let update = next_residency(&mut events).await;
    match update.state {
        ResidencyState::Loaded(running) => {
            assert_eq!(running.processor().to_string(), "48%/52% CPU/GPU");
        }
        other => panic!("expected loaded, got {other:?}"),
    }
}

/// The app and the worker wired as the runtime wires them, against the stand-in: scripted keys
/// in, the screen state out.
#[tokio::test]
async fn app_and_worker_together() {
    let ollama = StandIn::start().await;
    ollama.reply_with(&["Rust ", "is ", "**fast**."]);
    let mut events = EventHandler::new();
    let (handle, _task) = worker::spawn(
        conductor(&ollama, GpuPolicy::Enforce).chat(),
        events.sender(),
    );
    let mut app = App::new(info(GpuPolicy::Enforce));
    let pump = |app: &mut App| {
        for action in app.take_actions() {
            match action {
                Action::Send(text) => handle.send(Command::Send(text)),
                Action::Cancel => handle.send(Command::Cancel),
                Action::SwitchPersonality(name) => handle.send(Command::SwitchPersonality(name)),
                _ => {}
            }
        }
    };
    submit(&mut app, "What is Rust?");
    pump(&mut app);
    drive(&mut app, &mut events, &pump).await;
    let answer = app.entries[1].message().unwrap();
    assert_eq!(answer.content, "Rust is **fast**.");
    assert_eq!(answer.state, MessageState::Complete);
    assert!(app.stats.is_some());
    let screen = screen(&render(&app, 60, 12));
    assert!(screen.contains("Rust is fast."), "{screen}");

    // Ollama goes away mid-answer: the UI says so in place, keeps the conversation and the
    // partial answer, and Alt+R asks again.
    ollama.push_reply(Reply::tokens(&["Half ", "an ", "answer"]).fault(Fault::Drop { after: 1 }));
    submit(&mut app, "Still there?");
    pump(&mut app);
    drive(&mut app, &mut events, &pump).await;
    let partial = app.entries[3].message().unwrap();
    assert_eq!(partial.content, "Half ");
    assert!(matches!(partial.state, MessageState::Interrupted(_)));
    assert!(app.entries.iter().any(|e| matches!(
        e.kind(),
        EntryKind::Notice(n) if n.level == NoticeLevel::Error
    )));
    assert_eq!(app.conversation().len(), 4, "the conversation is kept");
    app.update(alt('r'));
    pump(&mut app);
    drive(&mut app, &mut events, &pump).await;
    let last = app.entries.last().unwrap().message().unwrap();
    assert_eq!(last.content, "Rust is **fast**.");
    assert_eq!(last.state, MessageState::Complete);
}

async fn drive(app: &mut App, events: &mut EventHandler, pump: &impl Fn(&mut App)) {
    while app.busy() {
        let event = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .unwrap()
            .unwrap();
        app.update(event);
        pump(app);
    }
}

async fn next_residency(events: &mut EventHandler) -> conductor_tui::residency::ResidencyUpdate {
    match tokio::time::timeout(Duration::from_secs(10), events.next()).await {
        Ok(Some(Event::Residency(update))) => update,
        other => panic!("expected a residency update, got {other:?}"),
    }
}
