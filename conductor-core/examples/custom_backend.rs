//! A backend of your own: implement one method, `chat`, and drive it through `Conductor` with a
//! personality. This one echoes the question; a real one would call its server.
//!
//! `cargo run -p conductor-core --example custom_backend -- "Is anyone there?"`

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;

use async_trait::async_trait;
use conductor_core::backend::{ChatRequest, ChatStream, Completion, DoneReason, StreamEvent};
use conductor_core::gpu::{GpuPolicy, MinFraction, RemoteProbe, ResidencyGuard};
use conductor_core::{
    Backend, ChatEvent, Conductor, GenerationStats, PersonalityCatalog, RequestDefaults, Role,
};
use futures::StreamExt;

/// Answers by echoing the last message, word by word.
#[derive(Debug)]
struct Echo;

#[async_trait]
impl Backend for Echo {
    async fn chat(&self, request: ChatRequest) -> conductor_core::Result<ChatStream> {
        let question = request.messages.last().map_or("", |m| m.content.as_str());
        let persona = request.messages.first().filter(|m| m.role == Role::System);
        let reply = format!(
            "You said: {question} (with {} bytes of personality first)",
            persona.map_or(0, |m| m.content.len())
        );
        let mut events: Vec<_> = reply
            .split_inclusive(' ')
            .map(|word| Ok(StreamEvent::Content(word.to_owned())))
            .collect();
        events.push(Ok(StreamEvent::Done(Completion {
            done_reason: Some(DoneReason::Stop),
            stats: GenerationStats::default(),
        })));
        Ok(Box::pin(futures::stream::iter(events)))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let question = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "Hello?".to_owned());
    let backend: Arc<dyn Backend> = Arc::new(Echo);
    let personality = PersonalityCatalog::builtin().load("forge")?;
    // Optional: a residency guard. Echo has no model server, so residency is "not reported":
    // the guard admits the request and says so once, even under `enforce`.
    let guard = ResidencyGuard::new(
        Arc::clone(&backend),
        Arc::new(RemoteProbe),
        GpuPolicy::Enforce,
        MinFraction::FULL,
    );
    let conductor = Conductor::new(backend, personality, RequestDefaults::for_model("echo"))
        .with_guard(Arc::new(guard));

    let mut answer = conductor.ask(&question).await?;
    while let Some(event) = answer.next().await {
        match event? {
            ChatEvent::Content(text) => print!("{text}"),
            ChatEvent::Warning(notice) => eprintln!("note: {}", notice.summary()),
            ChatEvent::Done(_) => println!(),
            _ => {}
        }
    }
    Ok(())
}
