//! A pool of Ollama hosts as one [`Backend`]: [`PoolBackend`].
//!
//! A conversation goes to a host where its model is already resident (from `/api/ps`), else to
//! the healthiest, least busy host (requests in flight, counted here); a `Chat` stays on the
//! host of its first turn, where its prompt cache lives. A host that is down or refuses before
//! the first token (connection refused, a timeout, HTTP 5xx, busy after its retries, a model
//! missing there) is left for the next one, and rests for an increasing time
//! ([`Backoff`]); once an answer has begun, a failure is the stream's error, as with one host.
//!
//! Residency is a fact of one host: the conversation layer admits a request with the guard of
//! the host it will go to ([`ResidencyGuard::for_host`](crate::gpu::ResidencyGuard::for_host)),
//! and the model-management commands look at every host ([`PoolBackend::hosts`]).

mod health;
mod route;
mod server;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use futures::StreamExt;
use tracing::warn;

use super::{Backend, ChatRequest, ChatStream, ModelServer, OllamaBackend};
use crate::error::{Error, Result};

pub use health::{Backoff, HostHealth};
pub use route::{FAN_OUT, LOAD_COST, PS_TIMEOUT, Picked, Route};
pub use server::{HostUnload, loaded_names};

/// Several Ollama hosts behind one [`Backend`] and [`ModelServer`]; see the module
/// documentation. Cheap to clone; clones share the hosts' health and load counts.
#[derive(Clone)]
pub struct PoolBackend {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    members: Vec<Member>,
    backoff: Backoff,
    /// Taken while a host is chosen and its count raised, so that conversations starting
    /// together spread instead of all seeing the same idle host.
    picking: std::sync::Mutex<()>,
}

struct Member {
    backend: OllamaBackend,
    in_flight: AtomicUsize,
    health: health::Health,
}

impl fmt::Debug for PoolBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBackend")
            .field("hosts", &self.endpoints())
            .field("backoff", &self.inner.backoff)
            .finish_non_exhaustive()
    }
}

impl PoolBackend {
    /// A pool of these hosts, in order of preference when all else is equal.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] for an empty list.
    pub fn new(hosts: Vec<OllamaBackend>) -> Result<Self> {
        if hosts.is_empty() {
            return Err(Error::InvalidRequest(
                "a pool needs at least one host (ollama.hosts in conductor.toml, or \
                 CONDUCTOR_OLLAMA_HOSTS)"
                    .into(),
            ));
        }
        Ok(Self {
            inner: Arc::new(PoolInner {
                members: hosts
                    .into_iter()
                    .map(|backend| Member {
                        backend,
                        in_flight: AtomicUsize::new(0),
                        health: health::Health::default(),
                    })
                    .collect(),
                backoff: Backoff::default(),
                picking: std::sync::Mutex::new(()),
            }),
        })
    }

    /// With another backoff for failed hosts (before any request is sent).
    #[must_use]
    pub fn with_backoff(self, backoff: Backoff) -> Self {
        let members = match Arc::try_unwrap(self.inner) {
            Ok(inner) => inner.members,
            Err(shared) => shared
                .members
                .iter()
                .map(|m| Member {
                    backend: m.backend.clone(),
                    in_flight: AtomicUsize::new(0),
                    health: health::Health::default(),
                })
                .collect(),
        };
        Self {
            inner: Arc::new(PoolInner {
                members,
                backoff,
                picking: std::sync::Mutex::new(()),
            }),
        }
    }

    /// Every host, in configuration order.
    #[must_use]
    pub fn hosts(&self) -> Vec<PoolHost> {
        (0..self.inner.members.len())
            .map(|index| self.host(index))
            .collect()
    }

    /// The host at `index` (configuration order).
    pub(crate) fn host(&self, index: usize) -> PoolHost {
        PoolHost {
            pool: self.clone(),
            index,
        }
    }

    /// The number of hosts.
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.members.len()
    }

    /// Never true: a pool has at least one host.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.inner.members.is_empty()
    }

    fn endpoints(&self) -> Vec<String> {
        self.inner
            .members
            .iter()
            .map(|m| m.backend.endpoint())
            .collect()
    }

    fn member(&self, index: usize) -> &Member {
        &self.inner.members[index]
    }
}

/// One host of a pool: a [`Backend`] (and [`ModelServer`]) bound to it, sharing the pool's
/// count of requests in flight and its health record.
#[derive(Clone)]
pub struct PoolHost {
    pool: PoolBackend,
    index: usize,
}

impl fmt::Debug for PoolHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolHost")
            .field("host", &self.endpoint())
            .field("index", &self.index)
            .finish()
    }
}

impl PoolHost {
    /// Its position in the pool (configuration order).
    #[must_use]
    pub fn index(&self) -> usize {
        self.index
    }

    /// The host's own backend.
    #[must_use]
    pub fn backend(&self) -> &OllamaBackend {
        &self.pool.member(self.index).backend
    }

    /// Requests to it in flight from this process (conversations being placed or answered).
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.pool
            .member(self.index)
            .in_flight
            .load(Ordering::Relaxed)
    }

    /// What is known of its health.
    #[must_use]
    pub fn health(&self) -> HostHealth {
        self.pool.member(self.index).health.snapshot()
    }

    /// Records a failure that counts against the host (see [`fails_over`]): it rests.
    pub(crate) fn failed(&self, err: &Error) {
        let rest = self
            .pool
            .member(self.index)
            .health
            .failed(&self.pool.inner.backoff, err.to_string());
        warn!(host = %self.endpoint(), error = %err, rest_ms = rest.as_millis() as u64, "pool host failed; trying another");
    }

    /// Records a successful contact: the host is healthy again.
    pub(crate) fn succeeded(&self) {
        self.pool.member(self.index).health.succeeded();
    }
}

#[async_trait]
impl Backend for PoolHost {
    /// Sends to this host and waits for the first event, so that a host that fails before the
    /// first token returns the error here (and the pool can try another) rather than as the
    /// stream's first item.
    async fn chat(&self, request: ChatRequest) -> Result<ChatStream> {
        let mut stream = self.backend().chat(request).await?;
        match stream.next().await {
            Some(Err(err)) if fails_over(&err) => Err(err),
            first => Ok(Box::pin(futures::stream::iter(first).chain(stream))),
        }
    }

    fn endpoint(&self) -> String {
        self.backend().endpoint()
    }

    fn is_local(&self) -> bool {
        self.backend().is_local()
    }

    fn model_server(&self) -> Option<&dyn ModelServer> {
        Some(self.backend())
    }
}

#[async_trait]
impl Backend for PoolBackend {
    /// Places the request (resident host first, else the least busy healthy one) and fails
    /// over before the first token. Without a session, each request is placed anew; a
    /// [`Chat`](crate::Chat) keeps its host across turns.
    async fn chat(&self, request: ChatRequest) -> Result<ChatStream> {
        let mut route = self.route(&request.model, None);
        let mut last = None;
        while let Some(picked) = route.next().await {
            match picked.host().chat(request.clone()).await {
                Ok(stream) => {
                    picked.host().succeeded();
                    return Ok(picked.hold(stream));
                }
                Err(err) if fails_over(&err) => {
                    picked.host().failed(&err);
                    last = Some(err);
                }
                Err(err) => return Err(err),
            }
        }
        Err(last.unwrap_or_else(|| no_host(self)))
    }

    fn endpoint(&self) -> String {
        format!("pool of {} ({})", self.len(), self.endpoints().join(", "))
    }

    /// True when every host is on this machine.
    fn is_local(&self) -> bool {
        self.inner.members.iter().all(|m| m.backend.is_local())
    }

    fn model_server(&self) -> Option<&dyn ModelServer> {
        Some(self)
    }

    fn pool(&self) -> Option<&PoolBackend> {
        Some(self)
    }
}

/// The error when no host could even be tried (cannot happen with a non-empty pool).
pub(crate) fn no_host(pool: &PoolBackend) -> Error {
    Error::Unreachable {
        host: pool.endpoint(),
        reason: "no host to try".into(),
    }
}

/// True for a failure of the host rather than of the request, before any token: another host
/// may well answer. Unreachable, timed out, HTTP 5xx, busy through its retries, the connection
/// lost or the body empty or cut before the first token, an error line from the server, and a
/// model missing on this host. Not: a refused residency, bad credentials or a bad request.
#[must_use]
pub fn fails_over(err: &Error) -> bool {
    match err {
        Error::Unreachable { .. }
        | Error::Timeout { .. }
        | Error::Busy { .. }
        | Error::ConnectionLost { .. }
        | Error::EmptyResponse { .. }
        | Error::Truncated
        | Error::ModelNotFound { .. } => true,
        Error::Http { status, .. } => *status >= 500,
        Error::Server { .. } => !err.is_gpu_memory_failure(),
        _ => false,
    }
}
