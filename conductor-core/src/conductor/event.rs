//! The conversation layer's events: what a backend streams, plus the residency guard's notices.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;

use crate::backend::{Completion, StreamEvent};
use crate::error::Result;
use crate::gpu::{Diagnosis, FixReport};

/// One event of an answer as [`Conductor`](crate::Conductor) and [`Chat`](crate::Chat) give it.
///
/// The backend's own events ([`StreamEvent`]) pass through unchanged; the guard's notices come
/// first, before any of the answer.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ChatEvent {
    /// More of the answer.
    Content(String),
    /// More of the model's thinking.
    Thinking(String),
    /// The answer is complete; the server's statistics.
    Done(Completion),
    /// Sent first under the `warn` policy: the model is not fully on the GPU, and why. Also sent
    /// once, under any checking policy, when the backend does not report residency at all.
    Warning(Arc<Diagnosis>),
    /// Sent first under the `fix` policy when the guard changed options to make the model fit.
    Fixed(Arc<FixReport>),
}

impl From<StreamEvent> for ChatEvent {
    fn from(event: StreamEvent) -> Self {
        match event {
            StreamEvent::Content(text) => Self::Content(text),
            StreamEvent::Thinking(text) => Self::Thinking(text),
            StreamEvent::Done(completion) => Self::Done(completion),
        }
    }
}

/// The part of the answer an event carries; the guard's notices carry none. This is what lets
/// [`collect_answer`](crate::collect_answer) collect either layer's stream.
impl From<ChatEvent> for Option<StreamEvent> {
    fn from(event: ChatEvent) -> Self {
        match event {
            ChatEvent::Content(text) => Some(StreamEvent::Content(text)),
            ChatEvent::Thinking(text) => Some(StreamEvent::Thinking(text)),
            ChatEvent::Done(completion) => Some(StreamEvent::Done(completion)),
            ChatEvent::Warning(_) | ChatEvent::Fixed(_) => None,
        }
    }
}

/// An answer streaming through the conversation layer: the guard's notices, then the backend's
/// events. Dropping it aborts the request.
pub type AnswerStream = Pin<Box<dyn Stream<Item = Result<ChatEvent>> + Send>>;
