//! A conversation on a pool of hosts: placed on one host, kept there across turns (its prompt
//! cache lives there), admitted by that host's guard, moved to another host only when its own
//! fails before the first token.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use futures::StreamExt;
use tracing::{Instrument, Span, info};

use super::{AnswerStream, Chat};
use crate::backend::pool::{PoolBackend, fails_over, no_host};
use crate::backend::{Backend, ChatRequest};
use crate::error::{Error, Result};
use crate::gpu::Admission;

/// The pool host a conversation is bound to (by its index in the pool), once its first turn
/// was answered there. Copied with the [`Chat`] it belongs to.
#[derive(Debug, Default)]
pub(super) struct Binding(AtomicUsize);

const UNBOUND: usize = 0;

impl Binding {
    /// The bound host, if any.
    pub(super) fn get(&self) -> Option<usize> {
        self.0.load(Ordering::Relaxed).checked_sub(1)
    }

    pub(super) fn set(&self, index: usize) {
        self.0.store(index.saturating_add(1), Ordering::Relaxed);
    }

    pub(super) fn clear(&self) {
        self.0.store(UNBOUND, Ordering::Relaxed);
    }
}

impl Clone for Binding {
    fn clone(&self) -> Self {
        Self(AtomicUsize::new(self.0.load(Ordering::Relaxed)))
    }
}

impl Chat {
    /// The index, in the pool's configuration order, of the host this conversation is on;
    /// `None` before its first answer or when the backend is not a pool.
    #[must_use]
    pub fn pool_host(&self) -> Option<usize> {
        self.binding.get()
    }

    /// Places the request on a host of `pool` and sends it there; fails over to the next host
    /// while the failure is the host's and no token has arrived.
    pub(super) async fn start_pooled(
        &self,
        pool: &PoolBackend,
        request: ChatRequest,
        span: &Span,
        started: Instant,
    ) -> Result<AnswerStream> {
        let mut route = pool.route(&self.model, self.binding.get());
        let mut last = None;
        while let Some(picked) = route.next().instrument(span.clone()).await {
            let host: Arc<dyn Backend> = Arc::new(picked.host().clone());
            let guard = self
                .conductor
                .guard()
                .map(|g| g.for_host(Arc::clone(&host)));
            let result = self
                .start_on(
                    Arc::clone(&host),
                    guard,
                    request.clone(),
                    span.clone(),
                    started,
                )
                .await;
            match result {
                Ok(stream) => {
                    picked.host().succeeded();
                    if self.binding.get() != Some(picked.host().index()) {
                        info!(parent: span, host = %host.endpoint(), "conversation placed");
                    }
                    self.binding.set(picked.host().index());
                    // The host counts as busy until the answer ends or is dropped.
                    return Ok(stream
                        .map(move |event| {
                            let _in_flight = &picked;
                            event
                        })
                        .boxed());
                }
                Err(err) if fails_over(&err) => {
                    picked.host().failed(&err);
                    last = Some(err);
                }
                Err(err) => return Err(on_host(err, &host.endpoint(), pool.len())),
            }
        }
        Err(last.unwrap_or_else(|| no_host(pool)))
    }

    /// [`Chat::admit`] on a pool: the host the next turn will go to, bound to it.
    pub(super) async fn admit_pooled(
        &self,
        pool: &PoolBackend,
        request: &ChatRequest,
    ) -> Result<Option<Admission>> {
        let Some(guard) = self.conductor.guard() else {
            return Ok(None);
        };
        let mut route = pool.route(&self.model, self.binding.get());
        let mut last = None;
        while let Some(picked) = route.next().await {
            let host: Arc<dyn Backend> = Arc::new(picked.host().clone());
            match guard
                .for_host(Arc::clone(&host))
                .admit_request(request)
                .await
            {
                Ok(admission) => {
                    picked.host().succeeded();
                    self.binding.set(picked.host().index());
                    return Ok(Some(admission));
                }
                Err(err) if fails_over(&err) => {
                    picked.host().failed(&err);
                    last = Some(err);
                }
                Err(err) => return Err(on_host(err, &host.endpoint(), pool.len())),
            }
        }
        Err(last.unwrap_or_else(|| no_host(pool)))
    }
}

/// A residency verdict names the host it is about: in a pool, another host may be fine.
fn on_host(err: Error, endpoint: &str, hosts: usize) -> Error {
    match err {
        Error::NotResident(mut diagnosis) => {
            diagnosis
                .notes
                .push(format!("host: {endpoint} (one of {hosts} in ollama.hosts)"));
            Error::NotResident(diagnosis)
        }
        other => other,
    }
}
