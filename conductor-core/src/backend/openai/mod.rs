//! A [`Backend`] for OpenAI-compatible servers: vLLM, SGLang, llama.cpp's `llama-server`, TGI,
//! LM Studio, Ollama's own `/v1`.
//!
//! `POST {base}/chat/completions` with `stream: true` and `stream_options.include_usage`, read
//! as Server-Sent Events (`sse.rs`, `stream.rs`); `GET {base}/models` for the model list. The
//! base URL includes the API prefix: `http://gpu-box:8000/v1`.
//!
//! Requests go through the same path as the Ollama backend's (one reqwest client, a connect
//! timeout, a bounded wait for the first byte that covers a model load, retries with backoff
//! for 429 and 503, the bearer token, errors that name the endpoint and the phase), so the
//! errors and exit codes are the same.
//!
//! Such a server does not manage models the way Ollama does and does not report where a model
//! runs: this backend has no [`ModelServer`](super::ModelServer), and the residency guard says
//! "not reported" rather than guess. What such a server does report about itself (vLLM's
//! KV-cache gauge on `/metrics`, llama-server's `/props`) is read as evidence (`reports.rs`).

mod reports;
mod sse;
mod stream;
#[cfg(test)]
mod tests;

use std::fmt;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::debug;

use super::ollama::{OllamaBackend, OllamaBackendBuilder, Wait};
use super::{Backend, ChatRequest, ChatStream, LocalModel, OllamaHost, RetryPolicy, Secret};
use super::{RunnerOptions, Timeouts};
use crate::error::Result;

pub use reports::{KvCacheUsage, ServerProps, ServerReports, parse_metrics, parse_props};
pub use stream::decode_sse_chat_stream;

/// A [`Backend`] that talks to an OpenAI-compatible server over HTTP.
///
/// Cheap to clone; clones share one connection pool.
#[derive(Clone)]
pub struct OpenAiBackend {
    /// The HTTP path shared with the Ollama backend: client, timeouts, retries, credentials.
    transport: OllamaBackend,
}

impl fmt::Debug for OpenAiBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiBackend")
            .field("base", &self.transport.host().to_string())
            .finish_non_exhaustive()
    }
}

/// Builds an [`OpenAiBackend`].
#[derive(Debug, Clone)]
pub struct OpenAiBackendBuilder {
    inner: OllamaBackendBuilder,
}

impl OpenAiBackend {
    /// A builder for a server whose API lives at `base` (e.g. `http://gpu-box:8000/v1`).
    #[must_use]
    pub fn builder(base: OllamaHost) -> OpenAiBackendBuilder {
        OpenAiBackendBuilder {
            inner: OllamaBackend::builder(base),
        }
    }

    /// The base URL requests go under.
    #[must_use]
    pub fn base(&self) -> &OllamaHost {
        self.transport.host()
    }
}

impl OpenAiBackendBuilder {
    /// A bearer token sent as `Authorization` (vLLM's `--api-key`, a gateway's key).
    #[must_use]
    pub fn token(mut self, token: Option<Secret>) -> Self {
        self.inner = self.inner.token(token);
        self
    }

    /// Trusts this PEM certificate (authority) for `https://` servers, besides the public roots.
    #[must_use]
    pub fn ca_certificate(mut self, pem: Vec<u8>) -> Self {
        self.inner = self.inner.ca_certificate(pem);
        self
    }

    /// Timeouts per phase, as for Ollama.
    #[must_use]
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.inner = self.inner.timeouts(timeouts);
        self
    }

    /// Retry policy for busy servers (429, 503).
    #[must_use]
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.inner = self.inner.retry(retry);
        self
    }

    /// Builds the backend (no request is sent yet).
    ///
    /// # Errors
    /// [`Error::InvalidRequest`](crate::Error::InvalidRequest) as for
    /// [`OllamaBackendBuilder::build`].
    pub fn build(self) -> Result<OpenAiBackend> {
        Ok(OpenAiBackend {
            transport: self.inner.build()?,
        })
    }
}

/// The body of a `/chat/completions` request.
///
/// The options the API has are mapped (`temperature`, `top_p`, `seed`, `stop`, `num_predict` as
/// `max_tokens`); runner options (`num_ctx`, `num_gpu`, ...), `keep_alive` and `think` do not
/// exist there and are left out, with a debug log.
fn request_body(request: &ChatRequest) -> Value {
    let messages: Vec<Value> = request
        .messages
        .iter()
        .map(|m| json!({"role": m.role, "content": m.content}))
        .collect();
    let mut body = json!({
        "model": request.model,
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    let options = &request.options;
    if let Some(temperature) = options.temperature {
        body["temperature"] = temperature.into();
    }
    if let Some(top_p) = options.top_p {
        body["top_p"] = top_p.into();
    }
    if let Some(seed) = options.seed {
        body["seed"] = seed.into();
    }
    if let Some(stop) = options.stop.as_ref().filter(|s| !s.is_empty()) {
        body["stop"] = stop.clone().into();
    }
    if let Some(limit) = options.num_predict.filter(|n| *n >= 0) {
        body["max_tokens"] = limit.into();
    }
    let ignored = ignored_options(options, request);
    if !ignored.is_empty() {
        debug!(
            ignored = ignored.join(", "),
            "options an OpenAI-compatible server does not take; not sent"
        );
    }
    body
}

fn ignored_options(options: &RunnerOptions, request: &ChatRequest) -> Vec<String> {
    let mut ignored = OpenAiBackend::unsent_options(options);
    ignored.extend(
        [
            ("keep_alive", request.keep_alive.is_some()),
            ("think", request.think.is_some()),
        ]
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(name, _)| name.to_owned()),
    );
    ignored
}

impl OpenAiBackend {
    /// The names of the options set in `options` that this backend leaves out of its requests,
    /// because the OpenAI chat API has no such parameter: the runner options (`num_ctx`,
    /// `num_gpu`, ...), `top_k`, `min_p`, `repeat_penalty`, every key of
    /// [`RunnerOptions::extra`], and a negative `num_predict` (no limit: `max_tokens` is then
    /// left out). For a front end to say so.
    #[must_use]
    pub fn unsent_options(options: &RunnerOptions) -> Vec<String> {
        [
            ("num_ctx", options.num_ctx.is_some()),
            ("num_gpu", options.num_gpu.is_some()),
            ("num_batch", options.num_batch.is_some()),
            ("num_thread", options.num_thread.is_some()),
            ("main_gpu", options.main_gpu.is_some()),
            ("use_mmap", options.use_mmap.is_some()),
            ("top_k", options.top_k.is_some()),
            ("min_p", options.min_p.is_some()),
            ("repeat_penalty", options.repeat_penalty.is_some()),
            ("num_predict", options.num_predict.is_some_and(|n| n < 0)),
        ]
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(name, _)| name.to_owned())
        .chain(options.extra.keys().cloned())
        .collect()
    }
}

#[async_trait]
impl Backend for OpenAiBackend {
    async fn chat(&self, request: ChatRequest) -> Result<ChatStream> {
        let body = request_body(&request);
        let response = self
            .transport
            .send(
                stream::ENDPOINT,
                Wait::Load,
                Some(&request.model),
                |http, url| http.post(url).json(&body),
            )
            .await?;
        Ok(decode_sse_chat_stream(
            response.bytes_stream(),
            self.transport.timeouts().idle,
        ))
    }

    fn endpoint(&self) -> String {
        self.transport.host().to_string()
    }

    fn is_local(&self) -> bool {
        self.transport.host().is_local()
    }

    async fn server_reports(&self) -> Option<ServerReports> {
        Some(self.reports().await)
    }

    /// `GET {base}/models`: names only (`id`); sizes are not reported (0), the date is the
    /// `created` time when the server gives one.
    async fn models(&self) -> Result<Vec<LocalModel>> {
        #[derive(Deserialize)]
        struct List {
            #[serde(default)]
            data: Vec<Entry>,
        }
        #[derive(Deserialize)]
        struct Entry {
            id: String,
            #[serde(default)]
            created: Option<i64>,
        }
        let response = self
            .transport
            .send("/models", Wait::Response, None, |http, url| http.get(url))
            .await?;
        let list: List = self.transport.read_json(response, "/models").await?;
        Ok(list
            .data
            .into_iter()
            .map(|entry| LocalModel {
                name: entry.id,
                size: 0,
                modified_at: entry
                    .created
                    .and_then(|secs| jiff::Timestamp::from_second(secs).ok())
                    .map_or_else(String::new, |t| t.to_string()),
            })
            .collect())
    }
}
