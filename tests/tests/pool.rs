//! A pool of Ollama hosts against several stand-ins: placement, stickiness, failover before the
//! first token (never after it), and the residency guard of the host a request goes to.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Duration;

use conductor_core::backend::LoadRequest;
use conductor_core::gpu::Cause;
use conductor_core::{
    AnswerStream, Conductor, Error, GpuPolicy, OllamaHost, RunnerOptions, Settings, collect_answer,
};
use conductor_tests::{Fault, Reply, Residency, StandIn};

const MODEL: &str = "tiny";

fn settings(hosts: &[String], policy: GpuPolicy) -> Settings {
    let mut settings = Settings::defaults();
    settings.hosts = hosts.iter().map(|h| h.parse().unwrap()).collect();
    settings.host = settings.hosts[0].clone();
    settings.model = MODEL.into();
    settings.gpu_policy = policy;
    settings.retry.max_retries = 0;
    settings.timeouts.connect = Duration::from_secs(2);
    settings
}

fn pool(hosts: &[&StandIn], policy: GpuPolicy) -> Conductor {
    let hosts: Vec<String> = hosts.iter().map(|s| s.host()).collect();
    Conductor::from_settings(&settings(&hosts, policy)).unwrap()
}

/// Loads the model on a stand-in, so that its `/api/ps` lists it.
async fn preload(standin: &StandIn) {
    let backend = conductor_core::OllamaBackend::builder(standin.host().parse().unwrap())
        .build()
        .unwrap();
    conductor_core::ModelServer::load_model(
        &backend,
        LoadRequest {
            model: MODEL.into(),
            options: RunnerOptions::default(),
            keep_alive: None,
        },
    )
    .await
    .unwrap();
}

fn chats(standin: &StandIn) -> usize {
    standin.requests_to("/api/chat").len()
}

/// An address where nothing listens (connection refused).
async fn dead_host() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

#[tokio::test]
async fn conversations_spread_over_hosts_by_their_requests_in_flight() {
    let (a, b) = (StandIn::start().await, StandIn::start().await);
    preload(&a).await;
    preload(&b).await;
    let conductor = pool(&[&a, &b], GpuPolicy::Enforce);
    // Answers held open count as in flight, so each new conversation goes to the idler host.
    let mut held: Vec<AnswerStream> = Vec::new();
    for n in 0..6 {
        held.push(conductor.ask(&format!("question {n}")).await.unwrap());
    }
    assert_eq!((chats(&a), chats(&b)), (3, 3));
    let hosts = conductor.backend().pool().unwrap().hosts();
    assert_eq!(hosts[0].in_flight() + hosts[1].in_flight(), 6);
    drop(held);
    assert_eq!(hosts[0].in_flight() + hosts[1].in_flight(), 0);
}

#[tokio::test]
async fn a_conversation_goes_where_its_model_is_resident() {
    let (a, b) = (StandIn::start().await, StandIn::start().await);
    preload(&b).await;
    let conductor = pool(&[&a, &b], GpuPolicy::Enforce);
    conductor.ask_collect("hello").await.unwrap();
    assert_eq!((chats(&a), chats(&b)), (0, 1));
    // Nothing was loaded on the other host: no preload, no chat.
    assert!(a.requests_to("/api/generate").is_empty());
}

#[tokio::test]
async fn a_chat_stays_on_its_host_across_turns_even_when_it_gets_busier() {
    let (a, b) = (StandIn::start().await, StandIn::start().await);
    preload(&a).await;
    preload(&b).await;
    let conductor = pool(&[&a, &b], GpuPolicy::Enforce);
    let mut chat = conductor.chat();
    chat.send_collect("turn one").await.unwrap();
    let home = chat.pool_host().unwrap();
    let (home_host, other) = if home == 0 { (&a, &b) } else { (&b, &a) };
    // Other conversations make the chat's host the busier one.
    let mut held = Vec::new();
    for n in 0..3 {
        held.push(conductor.ask(&format!("other {n}")).await.unwrap());
    }
    let ps_before = home_host.requests_to("/api/ps").len();
    chat.send_collect("turn two").await.unwrap();
    chat.send_collect("turn three").await.unwrap();
    assert_eq!(chat.pool_host(), Some(home));
    let mine = |s: &StandIn| {
        s.requests_to("/api/chat")
            .iter()
            .filter(|r| r.messages().iter().any(|(_, text)| text == "turn one"))
            .count()
    };
    assert_eq!((mine(home_host), mine(other)), (3, 0));
    // A sticky turn is not placed again: no /api/ps poll (the host's guard has it cached).
    assert_eq!(home_host.requests_to("/api/ps").len(), ps_before);
}

#[tokio::test]
async fn a_host_that_refuses_connections_is_skipped_and_rests() {
    let live = StandIn::start().await;
    live.reply_with(&["from", " live"]);
    let hosts = [dead_host().await, live.host()];
    let conductor = Conductor::from_settings(&settings(&hosts, GpuPolicy::Enforce)).unwrap();
    let answer = conductor.ask_collect("anyone?").await.unwrap();
    assert_eq!(answer.content, "from live");
    let pool = conductor.backend().pool().unwrap().hosts();
    let dead = pool[0].health();
    assert_eq!(dead.failures, 1);
    assert!(dead.resting_for.is_some(), "{dead:?}");
    assert!(dead.last_error.unwrap().contains("connection refused"));
    // While it rests it is not even polled: the next ask goes straight to the live host.
    let answer = conductor.ask_collect("again?").await.unwrap();
    assert_eq!(answer.content, "from live");
    assert_eq!(pool[0].health().failures, 1);
}

#[tokio::test]
async fn a_chat_moves_when_its_host_fails_between_turns() {
    let (a, b) = (StandIn::start().await, StandIn::start().await);
    preload(&a).await;
    preload(&b).await;
    let conductor = pool(&[&a, &b], GpuPolicy::Off);
    let mut chat = conductor.chat();
    chat.send_collect("turn one").await.unwrap();
    assert_eq!(chat.pool_host(), Some(0));
    // (Dropping a stand-in leaves its open keep-alive connections serving: refuse instead.)
    a.push_fault(
        "/api/chat",
        Fault::Status {
            status: 502,
            body: "bad gateway".into(),
            json: false,
        },
    );
    let answer = chat.send_collect("turn two").await.unwrap();
    assert!(answer.completion.is_some());
    assert_eq!(chat.pool_host(), Some(1));
    assert_eq!(chat.history().len(), 4);
}

#[tokio::test]
async fn a_host_answering_500_or_503_before_the_first_token_is_failed_over() {
    for status in [500, 503] {
        let (a, b) = (StandIn::start().await, StandIn::start().await);
        preload(&a).await;
        preload(&b).await;
        a.push_fault(
            "/api/chat",
            Fault::Status {
                status,
                body: "runner went away".into(),
                json: true,
            },
        );
        b.reply_with(&["from", " b"]);
        let conductor = pool(&[&a, &b], GpuPolicy::Enforce);
        let answer = conductor.ask_collect("hi").await.unwrap();
        assert_eq!(answer.content, "from b", "HTTP {status}");
        assert_eq!((chats(&a), chats(&b)), (1, 1), "HTTP {status}");
        let health = conductor.backend().pool().unwrap().hosts()[0].health();
        assert!(
            health.last_error.unwrap().contains(&status.to_string()),
            "HTTP {status}"
        );
    }
}

#[tokio::test]
async fn a_failure_after_the_first_token_is_the_answers_error_not_a_failover() {
    let (a, b) = (StandIn::start().await, StandIn::start().await);
    preload(&a).await;
    preload(&b).await;
    a.push_reply(Reply::tokens(&["par", "tial", " never"]).fault(Fault::Drop { after: 2 }));
    let conductor = pool(&[&a, &b], GpuPolicy::Enforce);
    let mut chat = conductor.chat();
    let turn = chat.send("hi").await.unwrap();
    let err = collect_answer(turn).await.unwrap_err();
    match &err {
        Error::Incomplete { partial, .. } => assert_eq!(partial, "partial"),
        other => panic!("expected an incomplete answer, got {other:?}"),
    }
    assert_eq!((chats(&a), chats(&b)), (1, 0));
    // The partial answer stays in the history, marked incomplete.
    assert_eq!(chat.history().len(), 2);
}

#[tokio::test]
async fn the_guard_checks_the_host_the_request_goes_to_and_names_it() {
    let (a, b) = (StandIn::start().await, StandIn::start().await);
    // Not loaded anywhere; on `b`, listed first, it would load partly on the CPU.
    b.set_residency(MODEL, Residency::split(4_000_000_000, 1_000_000_000));
    let conductor = pool(&[&b, &a], GpuPolicy::Enforce);
    let err = conductor.ask_collect("hi").await.unwrap_err();
    let Error::NotResident(diagnosis) = &err else {
        panic!("expected NotResident, got {err:?}");
    };
    assert_ne!(diagnosis.cause, Cause::NotReported);
    let host = OllamaHost::parse(&b.host()).unwrap().to_string();
    assert!(
        diagnosis.notes.iter().any(|n| n.contains(&host)),
        "{:?}",
        diagnosis.notes
    );
    // The check loaded and looked at `b` only; nothing was generated anywhere.
    assert!(!b.requests_to("/api/ps").is_empty());
    assert!(a.requests_to("/api/generate").is_empty());
    assert_eq!((chats(&a), chats(&b)), (0, 0));
    // A resident host is admitted as usual.
    preload(&a).await;
    let conductor = pool(&[&b, &a], GpuPolicy::Enforce);
    conductor.ask_collect("hi").await.unwrap();
    assert_eq!(chats(&a), 1);
}

#[tokio::test]
async fn the_pool_as_a_model_server_lists_every_host() {
    let (a, b) = (StandIn::start().await, StandIn::start().await);
    preload(&b).await;
    b.remove_model("llama3.2:3b");
    let conductor = pool(&[&a, &b], GpuPolicy::Enforce);
    let server = conductor.backend().server().unwrap();
    let running = server.running_models().await.unwrap();
    assert_eq!(running.len(), 1);
    let models = server.list_models().await.unwrap();
    assert_eq!(
        models
            .iter()
            .filter(|m| m.name.starts_with("llama3.2"))
            .count(),
        1
    );
    assert!(conductor.backend().endpoint().starts_with("pool of 2"));
}

/// The cost of placing a conversation grows with the pool: one `/api/ps` per host, polled
/// `FAN_OUT` (16) at a time. A hundred stand-ins: one poll each,
/// the conversation lands on the one host where the model is resident, and a second turn polls
/// nothing. (docs/scale-out.md has the arithmetic.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placing_a_conversation_on_100_hosts_polls_each_once_and_a_turn_polls_none() {
    let mut hosts = Vec::new();
    for _ in 0..100 {
        hosts.push(StandIn::start().await);
    }
    preload(&hosts[57]).await;
    let refs: Vec<&StandIn> = hosts.iter().collect();
    let conductor = pool(&refs, GpuPolicy::Enforce);
    let mut chat = conductor.chat();
    let started = std::time::Instant::now();
    chat.send_collect("hello").await.unwrap();
    let placed_in = started.elapsed();
    assert_eq!(chat.pool_host(), Some(57));
    let polls: usize = hosts.iter().map(|h| h.requests_to("/api/ps").len()).sum();
    // One poll per host to place it, plus the chosen host's guard (one /api/ps, cached after).
    assert_eq!(polls, 101);
    let started = std::time::Instant::now();
    chat.send_collect("again").await.unwrap();
    let turn = started.elapsed();
    let after: usize = hosts.iter().map(|h| h.requests_to("/api/ps").len()).sum();
    assert_eq!(after, polls);
    eprintln!(
        "100 hosts: placed in {} ms ({polls} /api/ps), next turn {} ms (none)",
        placed_in.as_millis(),
        turn.as_millis()
    );
}
