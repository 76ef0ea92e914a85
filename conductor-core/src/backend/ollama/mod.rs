//! The Ollama implementation of [`Backend`].
//!
//! Every request goes through one path ([`OllamaBackend::send`]) over one reqwest client (one
//! connection pool), so each has a connect timeout, a bounded wait for its answer, retries for
//! a busy server, the credentials, and errors that name the endpoint and the phase.
//! ollama-rs 0.3.6 supplies the response shapes of `/api/tags` and `/api/show`; its requests
//! are not used: they have no timeout (a server that accepts and never answers hangs them for
//! ever) and they drop the HTTP status of an error (a 401 could not be told from a 500). Its
//! chat stream is not used either: its items are `Result<_, ()>`, it prints bad lines with
//! `eprintln!` (which corrupts a terminal UI) and skips them, it loses a line split across two
//! network reads, and it does not expose `done_reason`. It has no `/api/ps` or `/api/version`.

mod client;
mod host;
pub(in crate::backend) mod http;
mod stream;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use super::{
    Backend, ChatRequest, ChatStream, LoadReport, LoadRequest, LocalModel, ModelDetails,
    ModelFamily, ModelServer, PullStream, RunningModel, ServerVersion,
};
use crate::error::{Credentials, Error, Result};

pub use client::{OllamaBackendBuilder, RetryPolicy, Timeouts};
pub use host::{DEFAULT_HOST, OllamaHost, Secret, redact_address};
pub use stream::decode_chat_stream;

/// A [`Backend`] that talks to an Ollama server over HTTP; also a [`ModelServer`].
///
/// Cheap to clone; clones share one connection pool.
#[derive(Clone)]
pub struct OllamaBackend {
    inner: Arc<Inner>,
}

struct Inner {
    host: OllamaHost,
    http: reqwest::Client,
    /// What every request carries, to tell "wants a token" from "token rejected" on a 401.
    credentials: Credentials,
    timeouts: Timeouts,
    retry: RetryPolicy,
}

/// What the wait for a response head is bounded by.
#[derive(Debug, Clone, Copy)]
pub(in crate::backend) enum Wait {
    /// The request may load a model first: [`Timeouts::load`].
    Load,
    /// The request loads nothing: [`Timeouts::idle`].
    Response,
}

impl fmt::Debug for OllamaBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Deliberately leaves out the client and its headers: they hold the token.
        f.debug_struct("OllamaBackend")
            .field("host", &self.inner.host.to_string())
            .field("timeouts", &self.inner.timeouts)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

impl OllamaBackend {
    /// The host this backend talks to.
    #[must_use]
    pub fn host(&self) -> &OllamaHost {
        &self.inner.host
    }

    /// The timeouts per phase (shared with the OpenAI-compatible backend's stream reader).
    pub(in crate::backend) fn timeouts(&self) -> Timeouts {
        self.inner.timeouts
    }
}

#[async_trait]
impl Backend for OllamaBackend {
    async fn chat(&self, request: ChatRequest) -> Result<ChatStream> {
        let mut body = json!({
            "model": request.model,
            "messages": request.messages.iter().map(|m| json!({"role": m.role, "content": m.content})).collect::<Vec<_>>(),
            "stream": true,
        });
        if !request.options.is_empty() {
            body["options"] = serde_json::to_value(&request.options)
                .map_err(|err| Error::InvalidRequest(err.to_string()))?;
        }
        if let Some(keep_alive) = request.keep_alive {
            body["keep_alive"] = keep_alive.to_json();
        }
        if let Some(think) = request.think {
            body["think"] = think.into();
        }
        let response = self
            .send(
                "/api/chat",
                Wait::Load,
                Some(&request.model),
                |http, url| http.post(url).json(&body),
            )
            .await?;
        let bytes = response.bytes_stream();
        Ok(stream::decode_chat_stream(bytes, self.inner.timeouts.idle))
    }

    fn endpoint(&self) -> String {
        self.inner.host.to_string()
    }

    fn is_local(&self) -> bool {
        self.inner.host.is_local()
    }

    fn model_server(&self) -> Option<&dyn ModelServer> {
        Some(self)
    }
}

#[async_trait]
impl ModelServer for OllamaBackend {
    async fn list_models(&self) -> Result<Vec<LocalModel>> {
        #[derive(Deserialize)]
        struct Tags {
            models: Vec<ollama_rs::models::LocalModel>,
        }
        let response = self
            .send("/api/tags", Wait::Response, None, |http, url| http.get(url))
            .await?;
        let tags: Tags = self.read_json(response, "/api/tags").await?;
        Ok(tags
            .models
            .into_iter()
            .map(|m| LocalModel {
                name: m.name,
                size: m.size,
                modified_at: m.modified_at,
            })
            .collect())
    }

    async fn running_models(&self) -> Result<Vec<RunningModel>> {
        let response = self
            .send("/api/ps", Wait::Response, None, |http, url| http.get(url))
            .await?;
        let ps: PsResponse = self.read_json(response, "/api/ps").await?;
        Ok(ps
            .models
            .into_iter()
            .map(|m| RunningModel {
                name: m.name,
                size: m.size,
                size_vram: m.size_vram,
                context_length: m.context_length,
                expires_at: m.expires_at,
                digest: m.digest,
                details: m.details,
            })
            .collect())
    }

    async fn show_model(&self, model: &str) -> Result<ModelDetails> {
        let body = json!({ "model": model });
        let response = self
            .send("/api/show", Wait::Response, Some(model), |http, url| {
                http.post(url).json(&body)
            })
            .await?;
        let show: ShowResponse = self.read_json(response, "/api/show").await?;
        let info = show.info;
        Ok(ModelDetails {
            parameters: ModelDetails::parse_parameters(&info.parameters),
            modelfile: info.modelfile,
            template: info.template,
            system: show.system.filter(|text| !text.is_empty()),
            capabilities: info.capabilities,
            model_info: info.model_info,
        })
    }

    async fn load_model(&self, request: LoadRequest) -> Result<LoadReport> {
        let mut body = json!({ "model": request.model });
        if !request.options.is_empty() {
            body["options"] = serde_json::to_value(&request.options)
                .map_err(|err| Error::InvalidRequest(err.to_string()))?;
        }
        if let Some(keep_alive) = request.keep_alive {
            body["keep_alive"] = keep_alive.to_json();
        }
        let started = Instant::now();
        let response = self
            .send(
                "/api/generate",
                Wait::Load,
                Some(&request.model),
                |http, url| http.post(url).json(&body),
            )
            .await?;
        let answer: LoadResponse = self.read_json(response, "/api/generate").await?;
        if let Some(error) = answer.error {
            return Err(Error::Server { message: error });
        }
        Ok(LoadReport {
            elapsed: started.elapsed(),
            loaded: answer.done_reason.as_deref() == Some("load"),
        })
    }

    async fn unload_model(&self, model: &str) -> Result<()> {
        let body = json!({ "model": model, "keep_alive": 0 });
        let response = self
            .send("/api/generate", Wait::Load, Some(model), |http, url| {
                http.post(url).json(&body)
            })
            .await?;
        let answer: LoadResponse = self.read_json(response, "/api/generate").await?;
        match answer.error {
            Some(message) => Err(Error::Server { message }),
            None => Ok(()),
        }
    }

    async fn version(&self) -> Result<ServerVersion> {
        let response = self
            .send("/api/version", Wait::Response, None, |http, url| {
                http.get(url)
            })
            .await?;
        let version: VersionResponse = self.read_json(response, "/api/version").await?;
        Ok(ServerVersion(version.version))
    }

    async fn pull_model(&self, model: &str) -> Result<PullStream> {
        let body = json!({ "model": model, "stream": true });
        let response = self
            .send("/api/pull", Wait::Load, Some(model), |http, url| {
                http.post(url).json(&body)
            })
            .await?;
        Ok(stream::decode_pull_stream(
            response.bytes_stream(),
            self.inner.timeouts.idle,
        ))
    }
}

#[derive(Deserialize)]
struct LoadResponse {
    #[serde(default)]
    done_reason: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct VersionResponse {
    version: String,
}

#[derive(Deserialize)]
struct PsResponse {
    #[serde(default)]
    models: Vec<PsModel>,
}

#[derive(Deserialize)]
struct PsModel {
    name: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    digest: String,
    #[serde(default)]
    details: ModelFamily,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    size_vram: u64,
    #[serde(default)]
    context_length: Option<u64>,
}

/// `/api/show`'s answer: ollama-rs's `ModelInfo`, plus the Modelfile's `SYSTEM` text, which
/// it leaves out.
#[derive(serde::Deserialize)]
struct ShowResponse {
    #[serde(flatten)]
    info: ollama_rs::models::ModelInfo,
    #[serde(default)]
    system: Option<String>,
}
