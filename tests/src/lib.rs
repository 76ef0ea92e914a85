//! An Ollama stand-in for conductor's tests: a real HTTP/1.1 server on `127.0.0.1:0` that speaks
//! Ollama's protocol with the shapes recorded from a real Ollama 0.24.0 (`tests/fixtures/`, taken
//! from `shared/ollama/`): chunked `application/x-ndjson` streams, the same JSON field order, the
//! same error bodies and status codes, the Host-header guard, model loading, eviction and
//! `/api/ps` residency.
//!
//! Each test scripts it (answers, residency numbers, delays, chunking, faults) and reads back the
//! requests it received. It never needs Ollama or a GPU.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use conductor_tests::{Reply, StandIn, Chunking};
//! let ollama = StandIn::start().await;
//! ollama.push_reply(Reply::tokens(&["Hel", "lo"]).chunking(Chunking::SplitEvery(3)));
//! // ... point the client at ollama.host() ...
//! assert_eq!(ollama.requests_to("/api/chat").len(), 0);
//! # }
//! ```

// A test fixture may panic when the machine cannot give it a loopback socket.
#![allow(clippy::missing_panics_doc, clippy::expect_used)]

mod http;
mod time;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Notify;

pub use http::RecordedRequest;

/// How the stand-in cuts a streamed body into HTTP chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunking {
    /// One line per chunk, as a real Ollama sends.
    PerLine,
    /// `n` lines packed into each chunk.
    Packed(usize),
    /// Chunks of `n` bytes, cutting lines (and UTF-8 characters) anywhere.
    SplitEvery(usize),
    /// The whole body in one chunk.
    Whole,
}

/// Something that goes wrong on purpose.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// An HTTP error status with this body (JSON `{"error": ...}` when `json` is true), sent
    /// instead of the answer.
    Status {
        /// The status code.
        status: u16,
        /// The error message (or raw body when not JSON).
        body: String,
        /// Send it as `{"error": body}` with `application/json`.
        json: bool,
    },
    /// After `after` token lines, an `{"error": msg}` line inside the 200 stream, then the end.
    ErrorLine {
        /// Token lines before the error.
        after: usize,
        /// Ollama's message.
        message: String,
    },
    /// After `after` token lines, close the connection without the final line or chunk.
    Drop {
        /// Token lines before the drop.
        after: usize,
    },
    /// After `after` token lines, send this raw text as a line.
    Malformed {
        /// Token lines before it.
        after: usize,
        /// The raw line (a newline is added).
        line: String,
    },
    /// After `after` token lines, send nothing for `stall`, then continue.
    Stall {
        /// Token lines before the stall.
        after: usize,
        /// How long.
        stall: Duration,
    },
    /// Read the request and never answer, holding the connection open until the client
    /// leaves: a hung server, or something that is not Ollama.
    NoResponse,
    /// Send the head of a `200` JSON response announcing a body, then nothing more.
    NoBody,
    /// A `200` chunked `application/x-ndjson` response without a single line, as a proxy
    /// that lost the upstream answer may send.
    EmptyBody,
}

/// Ollama's statistics on the final line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// ns
    pub total_duration: u64,
    /// ns
    pub load_duration: u64,
    /// tokens
    pub prompt_eval_count: u64,
    /// ns
    pub prompt_eval_duration: u64,
    /// ns; `eval_count` is the number of token lines.
    pub eval_duration: u64,
}

impl Default for Stats {
    /// The numbers of the recorded `21_chat_stream_keepalive`.
    fn default() -> Self {
        Self {
            total_duration: 7_234_290,
            load_duration: 1_582_398,
            prompt_eval_count: 62,
            prompt_eval_duration: 1_556_725,
            eval_duration: 3_023_922,
        }
    }
}

/// A scripted answer to one `/api/chat` or `/api/generate` request.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The answer, token by token.
    pub tokens: Vec<String>,
    /// Thinking tokens sent before the answer.
    pub thinking: Vec<String>,
    /// `done_reason` of the final line.
    pub done_reason: String,
    /// Statistics of the final line.
    pub stats: Stats,
    /// How the body is cut into chunks.
    pub chunking: Chunking,
    /// Delay before the response head (a model load).
    pub first_byte_delay: Duration,
    /// Delay between chunks.
    pub chunk_delay: Duration,
    /// A fault to inject.
    pub fault: Option<Fault>,
}

impl Reply {
    /// An answer made of these tokens.
    #[must_use]
    pub fn tokens(tokens: &[&str]) -> Self {
        Self {
            tokens: tokens.iter().map(|t| (*t).to_owned()).collect(),
            thinking: Vec::new(),
            done_reason: "stop".to_owned(),
            stats: Stats::default(),
            chunking: Chunking::PerLine,
            first_byte_delay: Duration::ZERO,
            chunk_delay: Duration::ZERO,
            fault: None,
        }
    }

    /// An HTTP error instead of an answer, with Ollama's JSON error body.
    #[must_use]
    pub fn status(status: u16, message: &str) -> Self {
        Self::tokens(&[]).fault(Fault::Status {
            status,
            body: message.to_owned(),
            json: true,
        })
    }

    /// Sets the chunking.
    #[must_use]
    pub fn chunking(mut self, chunking: Chunking) -> Self {
        self.chunking = chunking;
        self
    }

    /// Sets the fault.
    #[must_use]
    pub fn fault(mut self, fault: Fault) -> Self {
        self.fault = Some(fault);
        self
    }

    /// Delays the response head (as a model load does).
    #[must_use]
    pub fn first_byte_delay(mut self, delay: Duration) -> Self {
        self.first_byte_delay = delay;
        self
    }

    /// Delays every chunk.
    #[must_use]
    pub fn chunk_delay(mut self, delay: Duration) -> Self {
        self.chunk_delay = delay;
        self
    }

    /// Thinking tokens before the answer.
    #[must_use]
    pub fn thinking(mut self, thinking: &[&str]) -> Self {
        self.thinking = thinking.iter().map(|t| (*t).to_owned()).collect();
        self
    }

    /// Sets `done_reason`.
    #[must_use]
    pub fn done_reason(mut self, reason: &str) -> Self {
        self.done_reason = reason.to_owned();
        self
    }

    /// Sets the statistics.
    #[must_use]
    pub fn stats(mut self, stats: Stats) -> Self {
        self.stats = stats;
        self
    }
}

/// Where a loaded model lives, as `/api/ps` will report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Residency {
    /// Total bytes of the load.
    pub size: u64,
    /// Bytes in VRAM.
    pub size_vram: u64,
    /// Context in use; `None` uses the request's num_ctx, else the Modelfile's, else 4096.
    pub context_length: Option<u64>,
    /// Leave the model out of `/api/ps` after loading (evicted at once).
    pub absent: bool,
}

impl Residency {
    /// Fully on the GPU.
    #[must_use]
    pub fn gpu(size: u64) -> Self {
        Self {
            size,
            size_vram: size,
            context_length: None,
            absent: false,
        }
    }

    /// `size_vram` of `size`.
    #[must_use]
    pub fn split(size: u64, size_vram: u64) -> Self {
        Self {
            size,
            size_vram,
            context_length: None,
            absent: false,
        }
    }

    /// With this context length reported.
    #[must_use]
    pub fn context(mut self, context_length: u64) -> Self {
        self.context_length = Some(context_length);
        self
    }

    /// Loads, then is missing from `/api/ps`.
    #[must_use]
    pub fn absent() -> Self {
        Self {
            size: 0,
            size_vram: 0,
            context_length: None,
            absent: true,
        }
    }
}

/// A model the stand-in knows: its `/api/show` body and its `/api/tags` entry.
#[derive(Debug, Clone)]
pub struct ModelFixture {
    /// Full name with tag, e.g. `tiny:latest`.
    pub name: String,
    /// The `/api/show` response body.
    pub show: Value,
    /// Size on disk for `/api/tags`.
    pub disk_size: u64,
    /// Digest for `/api/tags` and `/api/ps`.
    pub digest: String,
}

impl ModelFixture {
    /// A model from a recorded `/api/show` body.
    #[must_use]
    pub fn from_show(name: &str, show: &str, disk_size: u64, digest: &str) -> Self {
        Self {
            name: full_name(name),
            show: serde_json::from_str(show).unwrap_or(Value::Null),
            disk_size,
            digest: digest.to_owned(),
        }
    }

    /// The recorded CPU-machine model `tiny` (2 blocks, 196K parameters).
    #[must_use]
    pub fn tiny() -> Self {
        Self::from_show(
            "tiny",
            include_str!("../fixtures/cpu/show_tiny.json"),
            414_459,
            "f91d053d064cdd40ef0943dced13eb6b1d6518e8099c1cd3092742de6adad202",
        )
    }

    /// A recorded H100 model with llama3.2:3b's shapes: `m3b`, `m3b-numgpu1`, `m3b-cpu`,
    /// `m3b-ctx` or `m3b-4k`.
    #[must_use]
    pub fn h100(name: &str) -> Self {
        let show = match name {
            "m3b-numgpu1" => include_str!("../fixtures/h100/show_m3b-numgpu1.json"),
            "m3b-cpu" => include_str!("../fixtures/h100/show_m3b-cpu.json"),
            "m3b-ctx" => include_str!("../fixtures/h100/show_m3b-ctx.json"),
            "m3b-4k" => include_str!("../fixtures/h100/show_m3b-4k.json"),
            _ => include_str!("../fixtures/h100/show_m3b.json"),
        };
        Self::from_show(
            name,
            show,
            3_421_000_000,
            "6cbce2a43654afdb0a8426621d55440d38a26690774c9d2531d981ed3c0ee223",
        )
    }

    /// A model with llama3.2:3b's shapes under another name (e.g. `llama3.2:3b` itself).
    #[must_use]
    pub fn llama_3b(name: &str) -> Self {
        let mut model = Self::h100("m3b");
        model.name = full_name(name);
        model
    }

    fn details(&self) -> Value {
        let mut details = self
            .show
            .get("details")
            .cloned()
            .unwrap_or_else(|| json!({}));
        if let Some(obj) = details.as_object_mut() {
            obj.insert("parent_model".into(), json!(""));
        }
        details
    }

    fn parameter(&self, key: &str) -> Option<String> {
        let text = self.show.get("parameters")?.as_str()?;
        text.lines().find_map(|line| {
            let (k, v) = line.trim().split_once(char::is_whitespace)?;
            (k == key).then(|| v.trim().to_owned())
        })
    }
}

/// `tiny` → `tiny:latest`.
fn full_name(name: &str) -> String {
    if name.contains(':') {
        name.to_owned()
    } else {
        format!("{name}:latest")
    }
}

#[derive(Debug, Clone)]
struct Loaded {
    name: String,
    runner_options: Value,
    expires: Option<SystemTime>,
    residency: Residency,
    context_length: u64,
}

#[derive(Debug, Default)]
struct State {
    models: Vec<ModelFixture>,
    residency: HashMap<String, Residency>,
    /// (model, option name, residency): used when the request sets that option.
    residency_if_option: Vec<(String, String, Residency)>,
    replies: VecDeque<Reply>,
    default_reply: Option<Reply>,
    faults: HashMap<String, VecDeque<Fault>>,
    loaded: Vec<Loaded>,
    requests: Vec<RecordedRequest>,
    version: String,
    pull_layers: Vec<(String, u64)>,
    /// Added to the first byte of every generation or load (Ollama's per-request overhead).
    request_delay: Duration,
}

pub(crate) struct Shared {
    state: Mutex<State>,
    aborted: AtomicUsize,
    abort_notify: Notify,
    connections: AtomicUsize,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not take the server down with a poisoned lock.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The stand-in server. Dropping it stops accepting connections.
pub struct StandIn {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
    scheme: &'static str,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StandIn {
    /// Starts a stand-in on `127.0.0.1:0` knowing `tiny`, `llama3.2:3b` and the recorded H100
    /// models, every one loading fully on the GPU unless scripted otherwise.
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// Like [`StandIn::start`], serving HTTPS with a fresh self-signed certificate for
    /// `localhost` and `127.0.0.1`. Returns the certificate (PEM) for the client to trust.
    pub async fn start_tls() -> (Self, String) {
        let cert = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .expect("generate a self-signed certificate");
        let pem = cert.cert.pem();
        let key = rustls_pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
        let config = tokio_rustls::rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .expect("a TLS server configuration");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        (Self::start_with(0, Some(acceptor)).await, pem)
    }

    /// Like [`StandIn::start`], on a chosen port (0: any free one).
    pub async fn start_on(port: u16) -> Self {
        Self::start_with(port, None).await
    }

    async fn start_with(port: u16, tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local addr");
        let mut state = State {
            version: "0.24.0".to_owned(),
            ..State::default()
        };
        state.models.push(ModelFixture::tiny());
        state.models.push(ModelFixture::llama_3b("llama3.2:3b"));
        for name in ["m3b", "m3b-numgpu1", "m3b-cpu", "m3b-ctx", "m3b-4k"] {
            state.models.push(ModelFixture::h100(name));
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            aborted: AtomicUsize::new(0),
            abort_notify: Notify::new(),
            connections: AtomicUsize::new(0),
        });
        let scheme = if tls.is_some() { "https" } else { "http" };
        let task = tokio::spawn(http::serve(listener, Arc::clone(&shared), tls));
        Self {
            addr,
            shared,
            task,
            scheme,
        }
    }

    /// The address, as `http://127.0.0.1:PORT` (`https://` when serving TLS).
    #[must_use]
    pub fn host(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The socket address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every chat/generate request without a queued reply answers with these tokens.
    pub fn reply_with(&self, tokens: &[&str]) {
        self.shared.state().default_reply = Some(Reply::tokens(tokens));
    }

    /// Every chat/generate request without a queued reply gets this reply.
    pub fn set_default_reply(&self, reply: Reply) {
        self.shared.state().default_reply = Some(reply);
    }

    /// Queues a reply for the next chat/generate request that generates.
    pub fn push_reply(&self, reply: Reply) {
        self.shared.state().replies.push_back(reply);
    }

    /// Queues a fault for the next request to `path` (any route, e.g. `/api/ps`).
    pub fn push_fault(&self, path: &str, fault: Fault) {
        self.shared
            .state()
            .faults
            .entry(path.to_owned())
            .or_default()
            .push_back(fault);
    }

    /// Adds (or replaces) a model.
    pub fn add_model(&self, model: ModelFixture) {
        let mut state = self.shared.state();
        state.models.retain(|m| m.name != model.name);
        state.models.push(model);
    }

    /// Removes a model (requests for it then get 404).
    pub fn remove_model(&self, name: &str) {
        let name = full_name(name);
        self.shared.state().models.retain(|m| m.name != name);
    }

    /// Scripts where `model` lands when it loads.
    pub fn set_residency(&self, model: &str, residency: Residency) {
        self.shared
            .state()
            .residency
            .insert(full_name(model), residency);
    }

    /// Scripts where `model` lands when a request sets the runner option `option` (e.g. a
    /// smaller `num_ctx` that fits): the latest matching rule wins over [`Self::set_residency`].
    pub fn set_residency_if_option(&self, model: &str, option: &str, residency: Residency) {
        self.shared.state().residency_if_option.push((
            full_name(model),
            option.to_owned(),
            residency,
        ));
    }

    /// Delays the first byte of every `/api/chat` and `/api/generate` response, loads
    /// included, as a real Ollama does: on an H200 every such request spent 73-108 ms in
    /// `load_duration`, even with the model loaded.
    pub fn set_request_delay(&self, delay: Duration) {
        self.shared.state().request_delay = delay;
    }

    /// Unloads everything, as if the server restarted or evicted the models.
    pub fn evict_all(&self) {
        self.shared.state().loaded.clear();
    }

    /// Scripts the layers `/api/pull` reports (digest, total bytes).
    pub fn set_pull_layers(&self, layers: &[(&str, u64)]) {
        self.shared.state().pull_layers =
            layers.iter().map(|(d, n)| ((*d).to_owned(), *n)).collect();
    }

    /// Every request received, in order.
    #[must_use]
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.state().requests.clone()
    }

    /// The requests received for `path`.
    #[must_use]
    pub fn requests_to(&self, path: &str) -> Vec<RecordedRequest> {
        self.shared
            .state()
            .requests
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// The names of the models loaded now.
    #[must_use]
    pub fn loaded_models(&self) -> Vec<String> {
        let now = SystemTime::now();
        self.shared
            .state()
            .loaded
            .iter()
            .filter(|l| l.expires.is_none_or(|e| e > now))
            .map(|l| l.name.clone())
            .collect()
    }

    /// Streams the client abandoned (closed the connection before the end).
    #[must_use]
    pub fn aborted_streams(&self) -> usize {
        self.shared.aborted.load(Ordering::SeqCst)
    }

    /// TCP connections accepted so far.
    #[must_use]
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` streams were abandoned, or `timeout` passes; true if they were.
    pub async fn wait_for_aborts(&self, n: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.abort_notify.notified();
            if self.aborted_streams() >= n {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.aborted_streams() >= n;
            }
        }
    }
}

/// What the router decided to send.
pub(crate) enum Response {
    /// A complete body.
    Full {
        status: u16,
        content_type: &'static str,
        body: Vec<u8>,
        extra_headers: Vec<(&'static str, String)>,
    },
    /// Nothing (`None`), or only a head announcing `length` bytes (`Some`), then silence
    /// until the client goes away.
    Silent {
        /// The announced body length, when a head is sent.
        head: Option<usize>,
    },
    /// A chunked NDJSON stream.
    Stream {
        lines: Vec<Vec<u8>>,
        reply: Box<Reply>,
        /// Index of the line after which a fault strikes.
        fault: Option<(usize, Fault)>,
    },
}

impl Response {
    fn json(status: u16, value: &Value) -> Self {
        Self::Full {
            status,
            content_type: "application/json; charset=utf-8",
            body: serde_json::to_vec(value).unwrap_or_default(),
            extra_headers: Vec::new(),
        }
    }

    fn error(status: u16, message: &str) -> Self {
        Self::json(status, &json!({ "error": message }))
    }

    fn text(status: u16, text: &str) -> Self {
        Self::Full {
            status,
            content_type: "text/plain; charset=utf-8",
            body: text.as_bytes().to_vec(),
            extra_headers: Vec::new(),
        }
    }

    fn from_fault(fault: &Fault) -> Option<Self> {
        match fault {
            Fault::Status { status, body, json } => Some(if *json {
                Response::error(*status, body)
            } else {
                Response::text(*status, body)
            }),
            Fault::NoResponse => Some(Response::Silent { head: None }),
            Fault::NoBody => Some(Response::Silent { head: Some(64) }),
            Fault::EmptyBody => Some(Response::Stream {
                lines: Vec::new(),
                reply: Box::new(Reply::tokens(&[])),
                fault: None,
            }),
            _ => None,
        }
    }
}

/// Routes one request, updating the model state, as Ollama 0.24.0 does.
pub(crate) fn route(shared: &Shared, request: &RecordedRequest) -> (Response, Duration) {
    let mut state = shared.state();
    state.requests.push(request.clone());
    let queued_fault = state
        .faults
        .get_mut(&request.path)
        .and_then(VecDeque::pop_front);
    if let Some(response) = queued_fault.as_ref().and_then(Response::from_fault) {
        return (response, Duration::ZERO);
    }
    let method = request.method.as_str();
    let route = |allowed: &'static str| {
        (method != allowed && !(allowed == "GET" && method == "HEAD")).then(|| Response::Full {
            status: 405,
            content_type: "text/plain",
            body: b"405 method not allowed".to_vec(),
            extra_headers: vec![("Allow", allowed.to_owned())],
        })
    };
    let response = match request.path.as_str() {
        "/" => route("GET").unwrap_or_else(|| Response::text(200, "Ollama is running")),
        "/api/version" => route("GET")
            .unwrap_or_else(|| Response::json(200, &json!({ "version": state.version }))),
        "/api/tags" => route("GET").unwrap_or_else(|| tags(&state)),
        "/api/ps" => route("GET").unwrap_or_else(|| ps(&mut state)),
        "/api/show" => route("POST").unwrap_or_else(|| show(&state, request)),
        "/api/chat" | "/api/generate" => {
            let chat = request.path == "/api/chat";
            let overhead = state.request_delay;
            return route("POST").map_or_else(
                || {
                    let (response, delay) = generate(&mut state, request, queued_fault, chat);
                    (response, delay + overhead)
                },
                |r| (r, Duration::ZERO),
            );
        }
        "/api/pull" => route("POST").unwrap_or_else(|| pull(&state, request)),
        "/api/create" => {
            route("POST").unwrap_or_else(|| Response::json(200, &json!({ "status": "success" })))
        }
        _ => Response::Full {
            status: 404,
            content_type: "text/plain",
            body: b"404 page not found".to_vec(),
            extra_headers: Vec::new(),
        },
    };
    (response, Duration::ZERO)
}

fn tags(state: &State) -> Response {
    let models: Vec<Value> = state
        .models
        .iter()
        .map(|m| {
            json!({
                "name": m.name, "model": m.name,
                "modified_at": "2026-11-25T16:47:51.330283511Z",
                "size": m.disk_size, "digest": m.digest, "details": m.details(),
            })
        })
        .collect();
    Response::json(200, &json!({ "models": models }))
}

fn ps(state: &mut State) -> Response {
    let now = SystemTime::now();
    state
        .loaded
        .retain(|l| l.expires.is_none_or(|e| e > now) && !l.residency.absent);
    let models: Vec<Value> = state
        .loaded
        .iter()
        .map(|l| {
            let model = state.models.iter().find(|m| m.name == l.name);
            let expires = l.expires.map_or_else(
                || "2319-03-07T16:35:46.005921383Z".to_owned(),
                time::rfc3339,
            );
            json!({
                "name": l.name, "model": l.name, "size": l.residency.size,
                "digest": model.map(|m| m.digest.clone()).unwrap_or_default(),
                "details": model.map(ModelFixture::details).unwrap_or_else(|| json!({})),
                "expires_at": expires, "size_vram": l.residency.size_vram,
                "context_length": l.context_length,
            })
        })
        .collect();
    Response::json(200, &json!({ "models": models }))
}

fn body_model(request: &RecordedRequest) -> Option<String> {
    let body = request.json.as_ref()?;
    body.get("model")
        .or_else(|| body.get("name"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn parse_body(request: &RecordedRequest) -> Result<&Value, Response> {
    request.json.as_ref().ok_or_else(|| {
        let message = if request.body.is_empty() || request.body_looks_truncated() {
            "unexpected EOF".to_owned()
        } else {
            "invalid character in JSON body".to_owned()
        };
        Response::error(400, &message)
    })
}

fn find_model<'a>(state: &'a State, name: &str) -> Option<&'a ModelFixture> {
    let full = full_name(name);
    state.models.iter().find(|m| m.name == full)
}

fn show(state: &State, request: &RecordedRequest) -> Response {
    if let Err(response) = parse_body(request) {
        return response;
    }
    let name = body_model(request).unwrap_or_default();
    match find_model(state, &name) {
        Some(model) => Response::json(200, &model.show),
        None => Response::error(404, &format!("model '{name}' not found")),
    }
}

const INTEGER_OPTIONS: &[&str] = &[
    "num_ctx",
    "num_gpu",
    "num_predict",
    "num_batch",
    "num_thread",
    "main_gpu",
    "top_k",
    "seed",
    "num_keep",
    "repeat_last_n",
];
const RUNNER_OPTIONS: &[&str] = &[
    "num_ctx",
    "num_gpu",
    "num_batch",
    "num_thread",
    "main_gpu",
    "use_mmap",
];

fn check_options(options: Option<&Value>) -> Result<Value, Response> {
    let mut runner = serde_json::Map::new();
    let Some(options) = options.and_then(Value::as_object) else {
        return Ok(Value::Object(runner));
    };
    for (key, value) in options {
        if INTEGER_OPTIONS.contains(&key.as_str()) && !value.is_i64() && !value.is_u64() {
            return Err(Response::error(
                500,
                &format!("option \"{key}\" must be of type integer"),
            ));
        }
        if RUNNER_OPTIONS.contains(&key.as_str()) {
            runner.insert(key.clone(), value.clone());
        }
    }
    Ok(Value::Object(runner))
}

fn keep_alive_expiry(value: Option<&Value>) -> Result<Option<Option<SystemTime>>, Response> {
    let now = SystemTime::now();
    let secs = match value {
        None | Some(Value::Null) => return Ok(Some(Some(now + Duration::from_secs(300)))),
        Some(Value::Number(n)) => n.as_f64().unwrap_or(300.0),
        Some(Value::String(s)) => match time::parse_go_duration(s) {
            Some(secs) => secs,
            None => {
                return Err(Response::error(
                    400,
                    &format!("time: invalid duration \"{s}\""),
                ));
            }
        },
        Some(_) => return Err(Response::error(400, "invalid keep_alive")),
    };
    if secs < 0.0 {
        Ok(Some(None))
    } else if secs == 0.0 {
        Ok(None)
    } else {
        Ok(Some(Some(now + Duration::from_secs_f64(secs))))
    }
}

/// `/api/chat` and `/api/generate`: load, unload, generate.
fn generate(
    state: &mut State,
    request: &RecordedRequest,
    queued_fault: Option<Fault>,
    chat: bool,
) -> (Response, Duration) {
    let body = match parse_body(request) {
        Ok(body) => body.clone(),
        Err(response) => return (response, Duration::ZERO),
    };
    let name = body_model(request).unwrap_or_default();
    let Some(model) = find_model(state, &name).cloned() else {
        return (
            Response::error(404, &format!("model '{name}' not found")),
            Duration::ZERO,
        );
    };
    let runner_options = match check_options(body.get("options")) {
        Ok(runner) => runner,
        Err(response) => return (response, Duration::ZERO),
    };
    let expiry = match keep_alive_expiry(body.get("keep_alive")) {
        Ok(expiry) => expiry,
        Err(response) => return (response, Duration::ZERO),
    };
    let created_at = time::rfc3339(SystemTime::now());
    let short = name.clone();
    let empty_line = |reason: &str| {
        let text = if chat {
            format!(
                r#"{{"model":{},"created_at":"{created_at}","message":{{"role":"assistant","content":""}},"done":true,"done_reason":"{reason}"}}"#,
                json!(short)
            )
        } else {
            format!(
                r#"{{"model":{},"created_at":"{created_at}","response":"","done":true,"done_reason":"{reason}"}}"#,
                json!(short)
            )
        };
        Response::Full {
            status: 200,
            content_type: "application/json; charset=utf-8",
            body: text.into_bytes(),
            extra_headers: Vec::new(),
        }
    };
    let prompt_empty = if chat {
        body.get("messages")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
    } else {
        body.get("prompt")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    };
    // keep_alive 0 with nothing to generate unloads; with a prompt, Ollama answers, then
    // unloads (the model is gone from /api/ps once the answer is sent).
    let Some(expires) = expiry.or_else(|| (!prompt_empty).then(|| Some(SystemTime::now()))) else {
        state.loaded.retain(|l| l.name != model.name);
        return (empty_line("unload"), Duration::ZERO);
    };
    if body.get("think").and_then(Value::as_bool) == Some(true) {
        let can_think = model
            .show
            .get("capabilities")
            .and_then(Value::as_array)
            .is_some_and(|c| c.iter().any(|v| v == "thinking"));
        if !can_think {
            let message = format!("\"{}\" does not support thinking", name);
            return (Response::error(400, &message), Duration::ZERO);
        }
    }
    // Load, or reload when runner options differ; loading one model evicts the others.
    let reloaded = !state
        .loaded
        .iter()
        .any(|l| l.name == model.name && l.runner_options == runner_options);
    let residency = state
        .residency_if_option
        .iter()
        .rev()
        .find(|(m, option, _)| *m == model.name && runner_options.get(option).is_some())
        .map(|(_, _, r)| *r)
        .or_else(|| state.residency.get(&model.name).copied())
        .unwrap_or_else(|| Residency::gpu(2_375_680));
    let context_length = residency
        .context_length
        .or_else(|| runner_options.get("num_ctx").and_then(Value::as_u64))
        .or_else(|| model.parameter("num_ctx").and_then(|v| v.parse().ok()))
        .unwrap_or(4096);
    state.loaded.retain(|l| l.name == model.name && !reloaded);
    if state.loaded.is_empty() {
        state.loaded.push(Loaded {
            name: model.name.clone(),
            runner_options,
            expires,
            residency,
            context_length,
        });
    } else if let Some(loaded) = state.loaded.first_mut() {
        loaded.expires = expires;
    }
    if prompt_empty {
        return (empty_line("load"), Duration::ZERO);
    }
    let mut reply = state
        .replies
        .pop_front()
        .or_else(|| state.default_reply.clone())
        .unwrap_or_else(|| Reply::tokens(&[" find", " go", " think"]));
    if let Some(fault) = queued_fault {
        reply.fault = Some(fault);
    }
    if let Some(response) = reply.fault.as_ref().and_then(Response::from_fault) {
        return (response, reply.first_byte_delay);
    }
    if reloaded && reply.stats.load_duration < 200_000_000 {
        reply.stats.load_duration = 297_000_000;
    }
    let lines = stream_lines(&short, chat, &reply);
    let stream = body.get("stream").and_then(Value::as_bool) != Some(false);
    let delay = reply.first_byte_delay;
    if !stream {
        let text = non_stream_body(&short, chat, &reply);
        return (
            Response::Full {
                status: 200,
                content_type: "application/json; charset=utf-8",
                body: text.into_bytes(),
                extra_headers: Vec::new(),
            },
            delay,
        );
    }
    let fault = reply.fault.clone().map(|f| {
        let after = match &f {
            Fault::ErrorLine { after, .. }
            | Fault::Drop { after }
            | Fault::Malformed { after, .. }
            | Fault::Stall { after, .. } => *after,
            Fault::Status { .. } | Fault::NoResponse | Fault::NoBody | Fault::EmptyBody => 0,
        };
        (after, f)
    });
    (
        Response::Stream {
            lines,
            reply: Box::new(reply),
            fault,
        },
        delay,
    )
}

fn token_line(model: &str, chat: bool, content: &str, thinking: bool) -> Vec<u8> {
    let created_at = time::rfc3339(SystemTime::now());
    let model = json!(model);
    let content = json!(content);
    let text = match (chat, thinking) {
        (true, false) => format!(
            r#"{{"model":{model},"created_at":"{created_at}","message":{{"role":"assistant","content":{content}}},"done":false}}"#
        ),
        (true, true) => format!(
            r#"{{"model":{model},"created_at":"{created_at}","message":{{"role":"assistant","content":"","thinking":{content}}},"done":false}}"#
        ),
        (false, false) => format!(
            r#"{{"model":{model},"created_at":"{created_at}","response":{content},"done":false}}"#
        ),
        (false, true) => format!(
            r#"{{"model":{model},"created_at":"{created_at}","response":"","thinking":{content},"done":false}}"#
        ),
    };
    let mut bytes = text.into_bytes();
    bytes.push(b'\n');
    bytes
}

fn final_fields(reply: &Reply) -> String {
    let s = &reply.stats;
    format!(
        r#""done":true,"done_reason":{},"total_duration":{},"load_duration":{},"prompt_eval_count":{},"prompt_eval_duration":{},"eval_count":{},"eval_duration":{}"#,
        json!(reply.done_reason),
        s.total_duration,
        s.load_duration,
        s.prompt_eval_count,
        s.prompt_eval_duration,
        reply.tokens.len(),
        s.eval_duration
    )
}

fn stream_lines(model: &str, chat: bool, reply: &Reply) -> Vec<Vec<u8>> {
    let mut lines: Vec<Vec<u8>> = reply
        .thinking
        .iter()
        .map(|t| token_line(model, chat, t, true))
        .chain(
            reply
                .tokens
                .iter()
                .map(|t| token_line(model, chat, t, false)),
        )
        .collect();
    let created_at = time::rfc3339(SystemTime::now());
    let model = json!(model);
    let last = if chat {
        format!(
            r#"{{"model":{model},"created_at":"{created_at}","message":{{"role":"assistant","content":""}},{}}}"#,
            final_fields(reply)
        )
    } else {
        format!(
            r#"{{"model":{model},"created_at":"{created_at}","response":"",{},"context":[259,349,286]}}"#,
            final_fields(reply)
        )
    };
    let mut last = last.into_bytes();
    last.push(b'\n');
    lines.push(last);
    lines
}

fn non_stream_body(model: &str, chat: bool, reply: &Reply) -> String {
    let created_at = time::rfc3339(SystemTime::now());
    let content = json!(reply.tokens.concat());
    let model = json!(model);
    if chat {
        format!(
            r#"{{"model":{model},"created_at":"{created_at}","message":{{"role":"assistant","content":{content}}},{}}}"#,
            final_fields(reply)
        )
    } else {
        format!(
            r#"{{"model":{model},"created_at":"{created_at}","response":{content},{}}}"#,
            final_fields(reply)
        )
    }
}

fn pull(state: &State, request: &RecordedRequest) -> Response {
    if let Err(response) = parse_body(request) {
        return response;
    }
    let name = body_model(request).unwrap_or_default();
    if state.pull_layers.is_empty() {
        // What a real Ollama without internet access answers (recorded 62_pull_offline).
        let repo = name.split(':').next().unwrap_or_default();
        let tag = name.split(':').nth(1).unwrap_or("latest");
        return Response::error(
            500,
            &format!(
                "pull model manifest: Get \"https://registry.ollama.ai/v2/library/{repo}/manifests/{tag}\": dial tcp: lookup registry.ollama.ai on 10.255.255.53:53: no such host"
            ),
        );
    }
    let mut lines = vec![br#"{"status":"pulling manifest"}"#.to_vec()];
    for (digest, total) in &state.pull_layers {
        for step in 0..=4u64 {
            let completed = total * step / 4;
            lines.push(
                format!(
                    r#"{{"status":"pulling {}","digest":"{digest}","total":{total},"completed":{completed}}}"#,
                    digest.trim_start_matches("sha256:").get(..12).unwrap_or(digest)
                )
                .into_bytes(),
            );
        }
    }
    for status in ["verifying sha256 digest", "writing manifest", "success"] {
        lines.push(format!(r#"{{"status":"{status}"}}"#).into_bytes());
    }
    for line in &mut lines {
        line.push(b'\n');
    }
    Response::Stream {
        lines,
        reply: Box::new(Reply::tokens(&[])),
        fault: None,
    }
}
