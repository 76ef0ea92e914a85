//! The stand-in's state and the control API a test scripts it with.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::http::{self, RecordedRequest};
use crate::models::full_name;
use crate::{Fault, ModelFixture, Reply, Residency};

/// A model loaded now, as `/api/ps` lists it until it expires.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    pub(crate) name: String,
    pub(crate) runner_options: Value,
    pub(crate) expires: Option<SystemTime>,
    pub(crate) residency: Residency,
    pub(crate) context_length: u64,
}

/// Everything a test scripted and everything the server did since it started.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) models: Vec<ModelFixture>,
    pub(crate) residency: HashMap<String, Residency>,
    /// (model, option name, residency): used when the request sets that option.
    pub(crate) residency_if_option: Vec<(String, String, Residency)>,
    pub(crate) replies: VecDeque<Reply>,
    pub(crate) default_reply: Option<Reply>,
    pub(crate) faults: HashMap<String, VecDeque<Fault>>,
    pub(crate) loaded: Vec<Loaded>,
    pub(crate) requests: Vec<RecordedRequest>,
    pub(crate) version: String,
    pub(crate) pull_layers: Vec<(String, u64)>,
    /// Added to the first byte of every generation or load (Ollama's per-request overhead).
    pub(crate) request_delay: Duration,
}

/// What the server task and the [`StandIn`] handle share.
pub(crate) struct Shared {
    state: Mutex<State>,
    pub(crate) aborted: AtomicUsize,
    pub(crate) abort_notify: Notify,
    pub(crate) connections: AtomicUsize,
}

impl Shared {
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
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
