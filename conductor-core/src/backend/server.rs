//! The model-server capability: what a backend that manages its own models can also do.

use std::fmt;
use std::pin::Pin;

use async_trait::async_trait;
use futures::Stream;

use super::{
    LoadReport, LoadRequest, LocalModel, ModelDetails, PullProgress, RunningModel, ServerVersion,
};
use crate::error::Result;

/// A stream of pull progress events, ending after `success`.
pub type PullStream = Pin<Box<dyn Stream<Item = Result<PullProgress>> + Send>>;

/// A server that lists, loads, unloads and pulls models and reports where they live.
///
/// A capability, not a requirement: a chat [`Backend`](super::Backend) offers it through
/// [`Backend::model_server`](super::Backend::model_server). The residency guard and the model
/// commands use it when it is there; without it, residency is "not reported by this backend".
#[async_trait]
pub trait ModelServer: Send + Sync + fmt::Debug {
    /// The models present on the server (`/api/tags`).
    async fn list_models(&self) -> Result<Vec<LocalModel>>;

    /// The models loaded in memory with their residency (`/api/ps`).
    async fn running_models(&self) -> Result<Vec<RunningModel>>;

    /// A model's Modelfile parameters and architecture facts (`/api/show`).
    async fn show_model(&self, model: &str) -> Result<ModelDetails>;

    /// Loads a model into memory with the given runner options, without generating.
    ///
    /// Send the same options the real requests will send: Ollama reloads a model whose runner
    /// options differ from the loaded ones.
    async fn load_model(&self, request: LoadRequest) -> Result<LoadReport>;

    /// Unloads a model from memory (`keep_alive: 0`).
    async fn unload_model(&self, model: &str) -> Result<()>;

    /// The server's version; doubles as a health check.
    async fn version(&self) -> Result<ServerVersion>;

    /// Downloads a model through the server (`/api/pull`), streaming its progress.
    /// Dropping the stream stops the download.
    async fn pull_model(&self, model: &str) -> Result<PullStream>;
}
