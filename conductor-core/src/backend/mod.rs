//! The model server seen from conductor: the [`Backend`] trait (one streaming chat method),
//! the optional [`ModelServer`] capability, and the types they speak.
//!
//! None of these types come from an HTTP client or from ollama-rs: a backend can be swapped
//! (the Ollama one, a scripted fake in tests, one of your own) without touching personalities
//! or frontends.

mod kind;
mod models;
pub(crate) mod ollama;
mod openai;
pub mod pool;
mod request;
mod response;
mod server;

use std::fmt;
use std::pin::Pin;

use async_trait::async_trait;
use futures::{Stream, StreamExt};

pub use kind::BackendKind;
pub use models::{
    LoadReport, LoadRequest, LocalModel, ModelDetails, ModelFamily, Processor, PullProgress,
    RunningModel, ServerVersion, same_model,
};
pub use ollama::{
    OllamaBackend, OllamaBackendBuilder, OllamaHost, RetryPolicy, Secret, Timeouts,
    decode_chat_stream,
};
pub use openai::{
    KvCacheUsage, OpenAiBackend, OpenAiBackendBuilder, ServerProps, ServerReports,
    decode_sse_chat_stream, parse_metrics, parse_props,
};
pub use pool::{PoolBackend, PoolHost};
pub use request::{ChatRequest, KeepAlive, Message, Role, RunnerOptions};
pub use response::{Completion, DoneReason, GenerationStats, StreamEvent};
pub use server::{ModelServer, PullStream};

use crate::error::{Error, Result};

/// A backend's stream of chat events: content and thinking deltas, then one
/// [`StreamEvent::Done`].
///
/// Dropping the stream aborts the request (the HTTP connection is closed).
pub type ChatStream = Pin<Box<dyn Stream<Item = Result<StreamEvent>> + Send>>;

/// A chat backend: what conductor needs to talk to a model.
///
/// One method is required, [`Backend::chat`], the streaming primitive; the non-streaming answer
/// is that stream collected ([`collect_answer`]). The rest is optional: metadata with defaults,
/// and [`Backend::model_server`] for a backend that also manages its models (Ollama does).
/// Object-safe: hold it as `Arc<dyn Backend>`.
#[async_trait]
pub trait Backend: Send + Sync + fmt::Debug {
    /// Starts a chat completion and returns its stream of events.
    ///
    /// Errors that happen before the first byte (unreachable, 404, busy) are returned here;
    /// errors after that arrive as items of the stream.
    async fn chat(&self, request: ChatRequest) -> Result<ChatStream>;

    /// Where this backend sends requests, for messages and logs (never contains credentials).
    fn endpoint(&self) -> String {
        "custom".into()
    }

    /// True when the server runs on this machine, so local GPU probes describe it.
    fn is_local(&self) -> bool {
        false
    }

    /// The model-server capability (list, load, residency, pull), when this backend has it.
    fn model_server(&self) -> Option<&dyn ModelServer> {
        None
    }

    /// The pool of hosts behind this backend, when it is one ([`pool::PoolBackend`]): the
    /// conversation layer then places each conversation on one host, keeps it there across
    /// turns, and admits it with that host's residency guard.
    fn pool(&self) -> Option<&pool::PoolBackend> {
        None
    }

    /// What a server without residency reports does say about itself (an OpenAI-compatible
    /// server's `/metrics` and `/props`), read best effort; `None` for a backend that has no
    /// such reports to read. Evidence only: it never says where a model runs.
    async fn server_reports(&self) -> Option<ServerReports> {
        None
    }

    /// The models the server offers, for `models` commands and pickers.
    ///
    /// Provided: the model server's list when there is one. A backend without a model server
    /// that can still list its models (an OpenAI-compatible server's `/v1/models`) overrides it.
    ///
    /// # Errors
    /// [`Error::Unsupported`] when the backend cannot list models; else backend errors.
    async fn models(&self) -> Result<Vec<LocalModel>> {
        match self.model_server() {
            Some(server) => server.list_models().await,
            None => Err(Error::Unsupported {
                capability: "a model list",
                endpoint: self.endpoint(),
            }),
        }
    }
}

impl dyn Backend {
    /// The model-server capability, or [`Error::Unsupported`] naming this backend: for the
    /// commands that cannot do without it.
    ///
    /// # Errors
    /// [`Error::Unsupported`] when the backend has no model server.
    pub fn server(&self) -> Result<&dyn ModelServer> {
        self.model_server().ok_or_else(|| Error::Unsupported {
            capability: "model management",
            endpoint: self.endpoint(),
        })
    }
}

/// A complete answer: the stream collected.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answer {
    /// The assistant's text.
    pub content: String,
    /// The model's thinking, when it was asked to think and did.
    pub thinking: String,
    /// Ollama's final statistics. `None` only for an answer that never finished.
    pub completion: Option<Completion>,
}

/// Collects a chat stream into an [`Answer`]: a backend's [`ChatStream`], or any stream whose
/// events carry [`StreamEvent`]s (the conversation layer's, whose notices carry none).
///
/// When the stream fails midway, the error is [`Error::Incomplete`] and carries what had
/// arrived, so nothing the assistant wrote is lost.
///
/// # Errors
/// The first error of the stream, wrapped in [`Error::Incomplete`] when some text had arrived.
pub async fn collect_answer<S, E>(mut stream: S) -> Result<Answer>
where
    S: Stream<Item = Result<E>> + Unpin,
    E: Into<Option<StreamEvent>>,
{
    let mut answer = Answer::default();
    while let Some(event) = stream.next().await {
        match event.map(Into::into) {
            Ok(Some(StreamEvent::Content(text))) => answer.content.push_str(&text),
            Ok(Some(StreamEvent::Thinking(text))) => answer.thinking.push_str(&text),
            Ok(Some(StreamEvent::Done(completion))) => answer.completion = Some(completion),
            Ok(None) => {}
            Err(err) => return Err(incomplete(answer.content, err)),
        }
    }
    if answer.completion.is_none() {
        return Err(incomplete(answer.content, Error::Truncated));
    }
    Ok(answer)
}

/// Client-side timing of an answer: when its tokens arrived.
///
/// Ollama's own tokens/s (`eval_count / eval_duration`) leaves out the network and the client;
/// on an H100 tokens reached the client at ~240/s while Ollama reported 344/s. This measures
/// what the user sees.
#[derive(Debug, Clone, Copy)]
pub struct TokenTiming {
    started: std::time::Instant,
    first: Option<std::time::Duration>,
    last: Option<std::time::Duration>,
    tokens: u64,
}

impl TokenTiming {
    /// Starts the clock (just before sending the request).
    #[must_use]
    pub fn start() -> Self {
        Self {
            started: std::time::Instant::now(),
            first: None,
            last: None,
            tokens: 0,
        }
    }

    /// Records one content token arriving now.
    pub fn token(&mut self) {
        let now = self.started.elapsed();
        self.first.get_or_insert(now);
        self.last = Some(now);
        self.tokens += 1;
    }

    /// Time to first token.
    #[must_use]
    pub fn ttft(&self) -> Option<std::time::Duration> {
        self.first
    }

    /// Tokens received.
    #[must_use]
    pub fn tokens(&self) -> u64 {
        self.tokens
    }

    /// Time since the start.
    #[must_use]
    pub fn elapsed(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// Tokens per second as they arrived, between the first and the last token.
    #[must_use]
    pub fn tokens_per_second(&self) -> Option<f64> {
        let span = self.last?.checked_sub(self.first?)?.as_secs_f64();
        #[allow(clippy::cast_precision_loss)] // token counts are far below 2^52
        (self.tokens > 1 && span > 0.0).then(|| (self.tokens - 1) as f64 / span)
    }
}

/// Wraps `err` with the partial answer, unless nothing had arrived.
pub(crate) fn incomplete(partial: String, err: Error) -> Error {
    if partial.is_empty() || matches!(err, Error::Incomplete { .. }) {
        err
    } else {
        Error::Incomplete {
            partial,
            source: Box::new(err),
        }
    }
}
