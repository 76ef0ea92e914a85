//! conductor-core: run a local assistant with a personality on Ollama, at full GPU speed.
//!
//! The personality is composed at runtime and injected as the system message of every request,
//! so one stock model serves every personality and stays loaded; the composed text is
//! byte-stable from turn to turn so Ollama's prompt cache reuses it.
//!
//! # Example
//!
//! ```
//! use conductor_core::{Conductor, Settings, collect_answer};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> conductor_core::Result<()> {
//! # let ollama = conductor_tests::StandIn::start().await;
//! # ollama.reply_with(&["Hello", " from", " Yollayah!"]);
//!
//! let mut settings = Settings::defaults();          // llama3.2:3b, yollayah, 127.0.0.1:11434
//! # settings.host = ollama.host().parse().map_err(conductor_core::Error::InvalidRequest)?;
//! let conductor = Conductor::from_settings(&settings)?;
//!
//! // One question, streamed:
//! let answer = collect_answer(conductor.ask("Say hello").await?).await?;
//! assert_eq!(answer.content, "Hello from Yollayah!");
//!
//! // A conversation: the personality stays first and byte-identical on every turn.
//! let mut chat = conductor.chat();
//! chat.send_collect("Hi!").await?;
//! chat.send_collect("And again?").await?;
//! assert_eq!(chat.history().len(), 4);
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! - [`backend`]: the [`Backend`] trait (one required method: the streaming chat primitive,
//!   yielding [`StreamEvent`]s), the optional [`ModelServer`] capability (models, residency,
//!   pulls), and [`OllamaBackend`], which has both, with our own line-buffered NDJSON decoding;
//!   [`OpenAiBackend`] speaks to OpenAI-compatible servers (vLLM, llama-server, ...) over SSE,
//!   chat and model lists only.
//!   `examples/custom_backend.rs` implements a backend in a few dozen lines.
//! - [`personality`]: personalities as strict TOML files; [`compose`]: the pure function that
//!   turns one into the system message.
//! - [`gpu`]: the GPU-residency guard: `/api/ps` and NVML, the policy, the diagnosis.
//! - [`Conductor`] and [`Chat`]: the facade an application holds; [`ChatEvent`]: the
//!   conversation layer's events (the backend's, plus the guard's notices).
//! - [`config`]: defaults, file, environment and flags merged into [`Settings`]; it imports
//!   every other module and none imports it.
//! - [`session`]: saved conversations: atomic, user-only files, found by id, prefix or name,
//!   one window at a time per conversation.
//! - [`error`]: typed errors with hints; [`duration`]: durations for people; [`text`]: server
//!   text made safe for a terminal.
//!
//! The library never prints and knows nothing of terminals: it returns values and emits
//! `tracing` events (the prompt text only at `trace` level).

pub mod backend;
pub mod compose;
mod conductor;
pub mod config;
pub mod duration;
pub mod error;
pub mod files;
pub mod gpu;
pub mod ndjson;
pub mod personality;
pub mod session;
pub mod text;

pub use backend::{
    Answer, Backend, BackendKind, ChatRequest, ChatStream, Completion, DoneReason, GenerationStats,
    KeepAlive, Message, ModelServer, OllamaBackend, OpenAiBackend, Processor, Role, RunnerOptions,
    RunningModel, StreamEvent, TokenTiming, collect_answer,
};
pub use backend::{OllamaHost, Secret};
pub use compose::compose;
pub use conductor::{AnswerStream, Chat, ChatEvent, Conductor, RequestDefaults, Turn};
pub use config::{LoadedConfig, Settings};
pub use error::{Error, Result};
pub use gpu::GpuPolicy;
pub use personality::{Personality, PersonalityCatalog, PersonalityName};
pub use session::{Session, SessionError, SessionMessage, SessionStore};

/// The README's code examples, compiled as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
