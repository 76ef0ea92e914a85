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

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod host;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tracing::{debug, warn};

use super::{
    Backend, ChatRequest, ChatStream, Completion, DoneReason, GenerationStats, LoadReport,
    LoadRequest, LocalModel, ModelDetails, ModelFamily, ModelServer, PullProgress, PullStream,
    RunningModel, ServerVersion, StreamEvent,
};
use crate::error::{Credentials, Error, NOT_TLS_REASON, Result, TimeoutPhase};
use crate::ndjson::{LineDecoder, excerpt};
pub use host::{DEFAULT_HOST, OllamaHost, Secret, redact_address};

/// How long to wait for Ollama, per phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing the TCP (and TLS) connection.
    pub connect: Duration,
    /// From sending a request that may load a model (chat, load, unload, pull) to its first
    /// byte: covers loading the model, so it is long.
    pub load: Duration,
    /// Between two reads of a streaming answer once it has started; also the wait for the
    /// answer of a request that loads nothing (`/api/tags`, `/api/show`, `/api/ps`,
    /// `/api/version`) and for the rest of any body that is not streamed.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            load: Duration::from_secs(300),
            idle: Duration::from_secs(60),
        }
    }
}

/// Bounded retries for a busy server (HTTP 429 and 503), with exponential backoff and jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 disables retrying).
    pub max_retries: u32,
    /// Delay before the first retry; doubled each time.
    pub base_delay: Duration,
    /// Upper bound of one delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `retry` (0-based): full backoff with ±50% jitter, so that
    /// many clients turned away together do not come back together.
    #[must_use]
    pub fn delay(&self, retry: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.max_delay);
        exp.mul_f64(0.5 + fastrand::f64() * 0.5)
    }
}

/// Builds an [`OllamaBackend`].
#[derive(Debug, Clone)]
pub struct OllamaBackendBuilder {
    host: OllamaHost,
    token: Option<Secret>,
    ca_certificates: Vec<Vec<u8>>,
    timeouts: Timeouts,
    retry: RetryPolicy,
}

impl OllamaBackendBuilder {
    /// A bearer token sent as `Authorization` (for an Ollama behind an authenticating proxy).
    #[must_use]
    pub fn token(mut self, token: Option<Secret>) -> Self {
        self.token = token;
        self
    }

    /// Trusts this PEM certificate (authority) for `https://` hosts, besides the public roots:
    /// for an Ollama behind a proxy with an internal or self-signed certificate.
    #[must_use]
    pub fn ca_certificate(mut self, pem: Vec<u8>) -> Self {
        self.ca_certificates.push(pem);
        self
    }

    /// Timeouts per phase.
    #[must_use]
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Retry policy for busy servers.
    #[must_use]
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Builds the backend (no request is sent yet).
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] when the token cannot be a header value, when both a token and
    /// a password in the address are given (both would be the `Authorization` header), or the
    /// HTTP client cannot be built (no TLS roots).
    pub fn build(self) -> Result<OllamaBackend> {
        if self.token.is_some() && self.host.has_credentials() {
            return Err(Error::InvalidRequest(
                "both a token and a user name in the Ollama address: keep one, since both would \
                 be sent as the Authorization header"
                    .into(),
            ));
        }
        let credentials = if self.token.is_some() {
            Credentials::Token
        } else if self.host.has_credentials() {
            Credentials::Password
        } else {
            Credentials::None
        };
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = &self.token {
            let mut value =
                reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                    .map_err(|_| {
                        Error::InvalidRequest(
                            "the Ollama token contains characters not allowed in an HTTP header"
                                .into(),
                        )
                    })?;
            // Marked sensitive so that no HTTP-level debug output ever prints it.
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let mut http = reqwest::Client::builder();
        for pem in &self.ca_certificates {
            let certificate = reqwest::Certificate::from_pem(pem).map_err(|err| {
                Error::InvalidRequest(format!("the CA certificate is not valid PEM: {err}"))
            })?;
            http = http.add_root_certificate(certificate);
        }
        let http = http
            .user_agent(concat!("conductor/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .connect_timeout(self.timeouts.connect)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|err| Error::InvalidRequest(format!("cannot build HTTP client: {err}")))?;
        Ok(OllamaBackend {
            inner: Arc::new(Inner {
                host: self.host,
                http,
                credentials,
                timeouts: self.timeouts,
                retry: self.retry,
            }),
        })
    }
}

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
enum Wait {
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
    /// Starts building a backend for `host`.
    #[must_use]
    pub fn builder(host: OllamaHost) -> OllamaBackendBuilder {
        OllamaBackendBuilder {
            host,
            token: None,
            ca_certificates: Vec::new(),
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
        }
    }

    /// The host this backend talks to.
    #[must_use]
    pub fn host(&self) -> &OllamaHost {
        &self.inner.host
    }

    fn url(&self, path: &str) -> String {
        self.inner.host.join(path)
    }

    /// Sends a request to `endpoint` (an API path such as `/api/ps`), retrying 429/503 with
    /// backoff, and turns HTTP errors into [`Error`]s. Connecting is bounded by the connect
    /// timeout, the wait for the response head by the load or idle timeout (`wait`).
    async fn send(
        &self,
        endpoint: &'static str,
        wait: Wait,
        model: Option<&str>,
        build: impl Fn(&reqwest::Client, String) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response> {
        let retry = self.inner.retry;
        let url = self.url(endpoint);
        let (phase, budget) = match wait {
            Wait::Load => (TimeoutPhase::Load, self.inner.timeouts.load),
            Wait::Response => (TimeoutPhase::Response, self.inner.timeouts.idle),
        };
        // The connect timeout runs inside reqwest; the head budget starts after it.
        let budget = budget.saturating_add(self.inner.timeouts.connect);
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let started = Instant::now();
            let mut request = build(&self.inner.http, url.clone());
            if let Some((user, password)) = self.inner.host.basic_auth() {
                // reqwest marks this header sensitive; the URL itself never holds the password.
                request = request.basic_auth(user, password);
            }
            let sent = tokio::time::timeout(budget, request.send()).await;
            let response = match sent {
                Err(_) => {
                    return Err(Error::Timeout {
                        endpoint: endpoint.to_owned(),
                        phase,
                        after: budget.saturating_sub(self.inner.timeouts.connect),
                    });
                }
                Ok(Err(err)) => return Err(self.transport_error(&err, endpoint)),
                Ok(Ok(response)) => response,
            };
            let status = response.status().as_u16();
            debug!(
                endpoint,
                status,
                attempt,
                elapsed_ms = elapsed_ms(started),
                "ollama response head"
            );
            if response.status().is_success() {
                return Ok(response);
            }
            let retry_after = retry_after(&response);
            let message = error_message(response).await;
            if matches!(status, 429 | 503) {
                if attempt <= retry.max_retries {
                    let delay = retry_after.unwrap_or_else(|| retry.delay(attempt - 1));
                    warn!(status, attempt, delay_ms = delay.as_millis() as u64, %message, "ollama busy; retrying");
                    tokio::time::sleep(delay).await;
                    continue;
                }
                return Err(Error::Busy {
                    status,
                    attempts: attempt,
                    message,
                });
            }
            if status == 401 {
                return Err(Error::Unauthorized {
                    host: self.inner.host.to_string(),
                    credentials: self.inner.credentials,
                    message,
                });
            }
            return Err(http_error(status, message, model));
        }
    }

    fn transport_error(&self, err: &reqwest::Error, endpoint: &str) -> Error {
        if err.is_timeout() {
            // reqwest's own timer: only the connect timeout is set on the client.
            return Error::Timeout {
                endpoint: endpoint.to_owned(),
                phase: TimeoutPhase::Connect,
                after: self.inner.timeouts.connect,
            };
        }
        let reason = root_cause(err);
        if err.is_connect() || err.is_builder() {
            let reason = if self.inner.host.url().scheme() == "https" && speaks_no_tls(err) {
                format!("{NOT_TLS_REASON} ({reason})")
            } else {
                reason
            };
            Error::Unreachable {
                host: self.inner.host.to_string(),
                reason,
            }
        } else {
            Error::ConnectionLost { reason }
        }
    }

    /// Reads a whole (small) JSON body; waiting longer than the idle timeout for it is an error.
    async fn read_json<T: for<'de> Deserialize<'de>>(
        &self,
        response: reqwest::Response,
        endpoint: &'static str,
    ) -> Result<T> {
        let body = tokio::time::timeout(self.inner.timeouts.idle, response.bytes())
            .await
            .map_err(|_| Error::Timeout {
                endpoint: endpoint.to_owned(),
                phase: TimeoutPhase::Body,
                after: self.inner.timeouts.idle,
            })?
            .map_err(|err| Error::ConnectionLost {
                reason: root_cause(&err),
            })?;
        if body.trim_ascii().is_empty() {
            return Err(Error::EmptyResponse {
                endpoint: endpoint.to_owned(),
            });
        }
        serde_json::from_slice(&body).map_err(|err| Error::Protocol {
            reason: err.to_string(),
            line: excerpt(&body),
        })
    }
}

/// True when a TLS handshake failed because the server answered in something other than TLS
/// (a plain-HTTP server answers a ClientHello with `HTTP/1.1 400`, which rustls reads as a
/// record of an unknown type). Told by words: rustls is not a direct dependency.
fn speaks_no_tls(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(err) = current {
        let text = err.to_string();
        if text.contains("InvalidContentType") || text.contains("UnknownProtocolVersion") {
            return true;
        }
        current = err.source();
    }
    false
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
        Ok(decode_chat_stream(bytes, self.inner.timeouts.idle))
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
        let info: ollama_rs::models::ModelInfo = self.read_json(response, "/api/show").await?;
        Ok(ModelDetails {
            parameters: ModelDetails::parse_parameters(&info.parameters),
            modelfile: info.modelfile,
            template: info.template,
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
        Ok(decode_pull_stream(
            response.bytes_stream(),
            self.inner.timeouts.idle,
        ))
    }
}

/// Decodes Ollama's NDJSON chat stream from raw byte chunks into [`StreamEvent`]s.
///
/// Public so the decoding stage can be exercised and measured on its own (replaying recorded
/// traffic). Lines may be split anywhere across chunks. An `{"error": ...}` line becomes
/// [`Error::Server`], a line that is not JSON [`Error::Protocol`], a body without any line
/// [`Error::EmptyResponse`], an end without the final `done` line [`Error::Truncated`], and
/// `idle` without a byte [`Error::Timeout`].
pub fn decode_chat_stream<S, E>(body: S, idle: Duration) -> ChatStream
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin + 'static,
    E: std::error::Error + 'static,
{
    let state = DecodeState {
        body,
        decoder: LineDecoder::new(),
        pending: VecDeque::new(),
        phase: Phase::Streaming,
        truncated: false,
        lines: 0,
        idle,
    };
    Box::pin(futures::stream::unfold(state, DecodeState::next_event))
}

enum Phase {
    Streaming,
    /// The final line arrived: read the (empty) rest so the connection can be reused.
    Draining,
    Finished,
}

struct DecodeState<S> {
    body: S,
    decoder: LineDecoder,
    pending: VecDeque<StreamEvent>,
    phase: Phase,
    truncated: bool,
    /// Lines decoded: none at all is no answer, not an answer cut short.
    lines: usize,
    idle: Duration,
}

impl<S, E> DecodeState<S>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin + 'static,
    E: std::error::Error + 'static,
{
    async fn next_event(mut self) -> Option<(Result<StreamEvent>, Self)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some((Ok(event), self));
            }
            match self.phase {
                Phase::Finished if self.truncated => {
                    self.truncated = false;
                    let err = if self.lines == 0 {
                        Error::EmptyResponse {
                            endpoint: "/api/chat".to_owned(),
                        }
                    } else {
                        Error::Truncated
                    };
                    return Some((Err(err), self));
                }
                Phase::Finished => return None,
                Phase::Draining => {
                    // Bounded: a server that keeps the body open gets the connection dropped.
                    let drain = async { while let Some(Ok(_)) = self.body.next().await {} };
                    let _ = tokio::time::timeout(Duration::from_millis(250), drain).await;
                    self.phase = Phase::Finished;
                    return None;
                }
                Phase::Streaming => {}
            }
            match self.decoder.next_line() {
                Err(_) => {
                    return self.fail(Error::Protocol {
                        reason: format!(
                            "a line longer than {} MiB without a newline",
                            crate::ndjson::MAX_LINE_BYTES >> 20
                        ),
                        line: String::new(),
                    });
                }
                Ok(Some(line)) => {
                    if let Err(err) = self.decode_line(&line) {
                        return self.fail(err);
                    }
                    continue;
                }
                Ok(None) => {}
            }
            match tokio::time::timeout(self.idle, self.body.next()).await {
                Err(_) => {
                    let idle = self.idle;
                    return self.fail(Error::Timeout {
                        endpoint: "/api/chat".to_owned(),
                        phase: TimeoutPhase::Stream,
                        after: idle,
                    });
                }
                Ok(Some(Ok(chunk))) => self.decoder.push(&chunk),
                Ok(Some(Err(err))) => {
                    return self.fail(Error::ConnectionLost {
                        reason: chain_root(&err),
                    });
                }
                Ok(None) => {
                    // End of body: a last line without its newline still counts.
                    if let Some(rest) = self.decoder.finish()
                        && let Err(err) = self.decode_line(&rest)
                    {
                        return self.fail(err);
                    }
                    if matches!(self.phase, Phase::Streaming) {
                        // No final line: hand out what did arrive, then report the truncation.
                        self.phase = Phase::Finished;
                        self.truncated = true;
                    }
                }
            }
        }
    }

    fn fail(mut self, err: Error) -> Option<(Result<StreamEvent>, Self)> {
        self.phase = Phase::Finished;
        Some((Err(err), self))
    }

    fn decode_line(&mut self, line: &[u8]) -> Result<()> {
        self.lines += 1;
        let wire: WireLine<'_> = serde_json::from_slice(line).map_err(|err| Error::Protocol {
            reason: err.to_string(),
            line: excerpt(line),
        })?;
        if let Some(message) = wire.error {
            return Err(Error::Server {
                message: message.into_owned(),
            });
        }
        if let Some(message) = wire.message {
            if let Some(thinking) = message.thinking.filter(|t| !t.is_empty()) {
                self.pending
                    .push_back(StreamEvent::Thinking(thinking.into_owned()));
            }
            if !message.content.is_empty() {
                self.pending
                    .push_back(StreamEvent::Content(message.content.into_owned()));
            }
        }
        if wire.done {
            self.pending.push_back(StreamEvent::Done(Completion {
                done_reason: wire.done_reason.map(|r| DoneReason::parse(&r)),
                stats: GenerationStats {
                    total_duration: Duration::from_nanos(wire.total_duration),
                    load_duration: Duration::from_nanos(wire.load_duration),
                    prompt_eval_count: wire.prompt_eval_count,
                    prompt_eval_duration: Duration::from_nanos(wire.prompt_eval_duration),
                    eval_count: wire.eval_count,
                    eval_duration: Duration::from_nanos(wire.eval_duration),
                },
            }));
            self.phase = Phase::Draining;
        }
        Ok(())
    }
}

/// Decodes `/api/pull` progress lines; an `{"error": ...}` line becomes [`Error::Server`], and a
/// stream that ends before `success` [`Error::Truncated`].
fn decode_pull_stream<S, E>(body: S, idle: Duration) -> PullStream
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin + 'static,
    E: std::error::Error + 'static,
{
    struct State<S> {
        body: S,
        decoder: LineDecoder,
        done: bool,
        lines: usize,
        idle: Duration,
    }
    let state = State {
        body,
        decoder: LineDecoder::new(),
        done: false,
        lines: 0,
        idle,
    };
    Box::pin(futures::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        loop {
            let line = match st.decoder.next_line() {
                Ok(Some(line)) => Some(line),
                Ok(None) => None,
                Err(_) => {
                    st.done = true;
                    let err = Error::Protocol {
                        reason: "an endless line".into(),
                        line: String::new(),
                    };
                    return Some((Err(err), st));
                }
            };
            if let Some(line) = line {
                st.lines += 1;
                let item = parse_pull_line(&line);
                // An error or `success` ends the pull.
                st.done = item.as_ref().map_or(true, PullProgress::is_success);
                return Some((item, st));
            }
            match tokio::time::timeout(st.idle, st.body.next()).await {
                Err(_) => {
                    st.done = true;
                    let idle = st.idle;
                    return Some((
                        Err(Error::Timeout {
                            endpoint: "/api/pull".to_owned(),
                            phase: TimeoutPhase::Stream,
                            after: idle,
                        }),
                        st,
                    ));
                }
                Ok(Some(Ok(chunk))) => st.decoder.push(&chunk),
                Ok(Some(Err(err))) => {
                    st.done = true;
                    return Some((
                        Err(Error::ConnectionLost {
                            reason: chain_root(&err),
                        }),
                        st,
                    ));
                }
                Ok(None) => {
                    st.done = true;
                    return match st.decoder.finish() {
                        Some(rest) => Some((parse_pull_line(&rest), st)),
                        None if st.lines == 0 => Some((
                            Err(Error::EmptyResponse {
                                endpoint: "/api/pull".to_owned(),
                            }),
                            st,
                        )),
                        None => Some((Err(Error::Truncated), st)),
                    };
                }
            }
        }
    }))
}

fn parse_pull_line(line: &[u8]) -> Result<PullProgress> {
    #[derive(Deserialize)]
    struct Wire {
        #[serde(default)]
        status: String,
        digest: Option<String>,
        total: Option<u64>,
        completed: Option<u64>,
        error: Option<String>,
    }
    let wire: Wire = serde_json::from_slice(line).map_err(|err| Error::Protocol {
        reason: err.to_string(),
        line: excerpt(line),
    })?;
    if let Some(message) = wire.error {
        return Err(Error::Server { message });
    }
    Ok(PullProgress {
        status: wire.status,
        digest: wire.digest,
        total: wire.total,
        completed: wire.completed,
    })
}

/// One line of `/api/chat` output. Unknown fields are ignored: Ollama adds fields over time.
#[derive(Deserialize)]
struct WireLine<'a> {
    #[serde(borrow, default)]
    message: Option<WireMessage<'a>>,
    #[serde(default)]
    done: bool,
    #[serde(borrow, default)]
    done_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    total_duration: u64,
    #[serde(default)]
    load_duration: u64,
    #[serde(default)]
    prompt_eval_count: u64,
    #[serde(default)]
    prompt_eval_duration: u64,
    #[serde(default)]
    eval_count: u64,
    #[serde(default)]
    eval_duration: u64,
    #[serde(borrow, default)]
    error: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct WireMessage<'a> {
    #[serde(borrow, default)]
    content: Cow<'a, str>,
    #[serde(borrow, default)]
    thinking: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ErrorBody<'a> {
    #[serde(borrow)]
    error: Cow<'a, str>,
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

/// The missing model a 404 names. Decided by the status and the route, not by one wording:
/// Ollama 0.24 says `model 'x' not found` from most handlers and
/// `model "x" not found, try pulling it first` from the scheduler. A 404 from a route about a
/// model is a missing model whatever its words; a router's `404 page not found` (an unknown
/// path: an old server or a proxy) is not.
fn missing_model(status: u16, message: &str, model: Option<&str>) -> Option<String> {
    if status != 404 || message.contains("page not found") {
        return None;
    }
    let quoted = message.strip_prefix("model ").and_then(|rest| {
        let quote = rest.chars().next().filter(|c| *c == '\'' || *c == '"')?;
        let inner = &rest[quote.len_utf8()..];
        inner.find(quote).map(|end| inner[..end].to_owned())
    });
    quoted.or_else(|| model.map(str::to_owned))
}

fn http_error(status: u16, message: String, model: Option<&str>) -> Error {
    if let Some(model) = missing_model(status, &message, model) {
        return Error::ModelNotFound { model };
    }
    let message = if message.is_empty() {
        match status {
            403 => "forbidden (empty body)".to_owned(),
            _ => "(no message)".to_owned(),
        }
    } else {
        message
    };
    Error::Http { status, message }
}

/// Ollama's message from an error response: the `error` field of a JSON body, else the text.
async fn error_message(response: reqwest::Response) -> String {
    let body = match tokio::time::timeout(Duration::from_secs(10), response.bytes()).await {
        Ok(Ok(body)) => body,
        _ => return String::new(),
    };
    serde_json::from_slice::<ErrorBody<'_>>(&body)
        .map_or_else(|_| excerpt(body.trim_ascii()), |b| b.error.into_owned())
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?;
    let secs: u64 = value.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs.min(30)))
}

fn root_cause(err: &reqwest::Error) -> String {
    chain_root(err)
}

/// The innermost cause of an error, in a few words ("connection refused").
fn chain_root(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        if let Some(io) = next.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind;
            let words = match io.kind() {
                ErrorKind::ConnectionRefused => Some("connection refused"),
                ErrorKind::ConnectionReset => Some("connection reset by the server"),
                ErrorKind::ConnectionAborted => Some("connection aborted"),
                ErrorKind::TimedOut => Some("timed out"),
                ErrorKind::UnexpectedEof => Some("the server closed the connection"),
                _ => None,
            };
            if let Some(words) = words {
                return words.to_owned();
            }
        }
        current = next;
    }
    let text = current.to_string();
    if text.contains("failed to lookup address") || text.contains("Name or service not known") {
        return format!("cannot resolve the host name: {text}");
    }
    text
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;
    use std::sync::Mutex;

    use super::*;

    /// Records every span and event field, at every level, as text.
    #[derive(Default)]
    struct Recorder(Arc<Mutex<String>>);

    struct Fields<'a>(&'a mut String);

    impl tracing::field::Visit for Fields<'_> {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
            let _ = writeln!(self.0, "{}={value:?}", field.name());
        }
    }

    impl tracing::Subscriber for Recorder {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            let mut text = self.0.lock().unwrap();
            span.record(&mut Fields(&mut text));
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
            let mut text = self.0.lock().unwrap();
            values.record(&mut Fields(&mut text));
        }
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            let mut text = self.0.lock().unwrap();
            event.record(&mut Fields(&mut text));
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    #[tokio::test]
    async fn no_log_line_holds_the_password_of_the_address() {
        let recorded = Arc::new(Mutex::new(String::new()));
        let _guard = tracing::subscriber::set_default(Recorder(Arc::clone(&recorded)));
        let ollama = conductor_tests::StandIn::start().await;
        ollama.push_reply(conductor_tests::Reply::status(503, "busy"));
        let host = ollama.host().replace("http://", "http://user:s3cret@");
        let backend = OllamaBackend::builder(host.parse().unwrap())
            .retry(RetryPolicy {
                max_retries: 1,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(1),
            })
            .build()
            .unwrap();
        backend.version().await.unwrap();
        let request = super::super::ChatRequest {
            model: "llama3.2:3b".into(),
            messages: vec![super::super::Message::user("hi")],
            options: super::super::RunnerOptions::default(),
            keep_alive: None,
            think: None,
        };
        // A retried 503 logs a warning; the answer logs its head.
        let stream = backend.chat(request).await.unwrap();
        super::super::collect_answer(stream).await.unwrap();
        let text = recorded.lock().unwrap().clone();
        assert!(text.contains("retrying"), "the logs were recorded: {text}");
        assert!(!text.contains("s3cret"), "{text}");
    }
}
