//! A backend that implements only `chat` works through `Conductor`: the personality goes first,
//! a conversation keeps its history, and a residency guard admits it with residency "not
//! reported" (never a refusal) under `enforce`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::{Arc, Mutex};

use conductor_core::backend::{ChatRequest, ChatStream, Completion, StreamEvent};
use conductor_core::gpu::{
    AdmissionBasis, Cause, GpuPolicy, MinFraction, RemoteProbe, ResidencyGuard,
};
use conductor_core::{
    Backend, ChatEvent, Conductor, Error, GenerationStats, PersonalityCatalog, RequestDefaults,
    Role, RunnerOptions, collect_answer, compose,
};
use futures::StreamExt;

/// Answers "Hello there." and records what it was sent.
#[derive(Debug, Default)]
struct Canned {
    requests: Mutex<Vec<ChatRequest>>,
}

#[async_trait::async_trait]
impl Backend for Canned {
    async fn chat(&self, request: ChatRequest) -> conductor_core::Result<ChatStream> {
        self.requests.lock().unwrap().push(request);
        Ok(Box::pin(futures::stream::iter([
            Ok(StreamEvent::Content("Hello".into())),
            Ok(StreamEvent::Content(" there.".into())),
            Ok(StreamEvent::Done(Completion {
                done_reason: None,
                stats: GenerationStats::default(),
            })),
        ])))
    }
}

fn conductor(backend: &Arc<Canned>) -> Conductor {
    let personality = PersonalityCatalog::builtin().load("forge").unwrap();
    Conductor::new(
        Arc::clone(backend) as Arc<dyn Backend>,
        personality,
        RequestDefaults::for_model("canned"),
    )
}

fn guarded(backend: &Arc<Canned>, policy: GpuPolicy) -> Conductor {
    let guard = ResidencyGuard::new(
        Arc::clone(backend) as Arc<dyn Backend>,
        Arc::new(RemoteProbe),
        policy,
        MinFraction::FULL,
    );
    conductor(backend).with_guard(Arc::new(guard))
}

#[tokio::test]
async fn a_one_method_backend_answers_with_the_personality_first() {
    let backend = Arc::new(Canned::default());
    let conductor = conductor(&backend);
    assert!(conductor.backend().model_server().is_none());
    assert_eq!(conductor.backend().endpoint(), "custom");
    assert!(!conductor.backend().is_local());

    let answer = collect_answer(conductor.ask("Hi?").await.unwrap())
        .await
        .unwrap();
    assert_eq!(answer.content, "Hello there.");

    let forge = PersonalityCatalog::builtin().load("forge").unwrap();
    let requests = backend.requests.lock().unwrap().clone();
    let messages = &requests[0].messages;
    assert_eq!(requests[0].model, "canned");
    assert_eq!(messages[0].role, Role::System);
    assert_eq!(messages[0].content, compose(&forge, None));
    assert_eq!(messages[1].role, Role::User);
    assert_eq!(messages[1].content, "Hi?");
}

#[tokio::test]
async fn a_one_method_backend_carries_a_conversation() {
    let backend = Arc::new(Canned::default());
    let conductor = conductor(&backend);
    let mut chat = conductor.chat();
    chat.send_collect("One").await.unwrap();
    chat.send_collect("Two").await.unwrap();
    assert_eq!(chat.history().len(), 4);

    let requests = backend.requests.lock().unwrap().clone();
    let second: Vec<(Role, &str)> = requests[1]
        .messages
        .iter()
        .map(|m| (m.role, m.content.as_str()))
        .collect();
    assert_eq!(
        second[1..],
        [
            (Role::User, "One"),
            (Role::Assistant, "Hello there."),
            (Role::User, "Two")
        ]
    );
    // The personality is byte-identical on every turn.
    assert_eq!(requests[0].messages[0], requests[1].messages[0]);
    assert_eq!(requests[1].messages[0].role, Role::System);
}

#[tokio::test]
async fn under_enforce_a_backend_without_residency_is_admitted_with_one_notice() {
    let backend = Arc::new(Canned::default());
    let conductor = guarded(&backend, GpuPolicy::Enforce);

    let events: Vec<ChatEvent> = conductor
        .ask("Hi?")
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    let ChatEvent::Warning(notice) = &events[0] else {
        panic!("the first event is the notice: {events:?}");
    };
    assert_eq!(notice.cause, Cause::NotReported);
    assert!(
        notice.summary().contains("not reported"),
        "{}",
        notice.summary()
    );
    assert!(matches!(&events[1], ChatEvent::Content(t) if t == "Hello"));
    assert!(matches!(events.last(), Some(ChatEvent::Done(_))));

    // Said once: the next answers carry no notice, and nothing is refused.
    let mut chat = conductor.chat();
    let answer = chat.send_collect("Again").await.unwrap();
    assert_eq!(answer.content, "Hello there.");
    let mut again = conductor.ask("And again").await.unwrap();
    assert!(matches!(
        again.next().await,
        Some(Ok(ChatEvent::Content(_)))
    ));
    let admission = chat.admit().await.unwrap().unwrap();
    assert_eq!(admission.basis, AdmissionBasis::Unreported);
    assert!(admission.warning.is_none());
}

#[tokio::test]
async fn the_guard_never_claims_a_residency_it_cannot_see() {
    let backend = Arc::new(Canned::default());
    for policy in [GpuPolicy::Warn, GpuPolicy::Fix, GpuPolicy::Enforce] {
        let conductor = guarded(&backend, policy);
        let answer = conductor.ask_collect("Hi?").await.unwrap();
        assert_eq!(answer.content, "Hello there.", "{policy}");
    }
    // An explicit check needs a model server: it says so instead of inventing a verdict.
    let conductor = guarded(&backend, GpuPolicy::Enforce);
    let guard = conductor.guard().unwrap();
    let err = guard
        .check("canned", &RunnerOptions::default(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    assert!(matches!(
        conductor.backend().server(),
        Err(Error::Unsupported { .. })
    ));
}
