//! Choosing a host: the sticky host of a conversation first; else hosts where the model is
//! resident, then the least busy, from one `/api/ps` per host polled in parallel (at most
//! [`FAN_OUT`] at a time, each bounded by [`PS_TIMEOUT`]); resting hosts last.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::StreamExt;

use super::{PoolBackend, PoolHost};
use crate::backend::{ChatStream, ModelServer};
use crate::error::Error;

/// A host without the model counts as this many requests busier than one with it resident: a
/// load costs seconds, so a resident host is preferred until it is this much busier.
pub const LOAD_COST: usize = 2;
/// Hosts polled at once when a conversation is placed.
pub const FAN_OUT: usize = 16;
/// The longest wait for one host's `/api/ps` while placing (Ollama answers it in about 1 ms).
pub const PS_TIMEOUT: Duration = Duration::from_secs(2);

/// The hosts to try for one conversation, best first; see [`PoolBackend::route`].
#[derive(Debug)]
pub struct Route {
    pool: PoolBackend,
    model: String,
    sticky: Option<usize>,
    /// Ranked hosts not tried yet; `None` until ranked (a sticky host that answers needs none).
    ranked: Option<VecDeque<Standing>>,
    tried: Vec<usize>,
}

/// A host chosen for a request, counted in flight until this (or the stream it
/// [holds](Picked::hold)) is dropped.
#[derive(Debug)]
pub struct Picked {
    host: PoolHost,
    ticket: Ticket,
}

#[derive(Debug)]
pub(super) struct Ticket {
    pool: PoolBackend,
    index: usize,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.pool
            .member(self.index)
            .in_flight
            .fetch_sub(1, Ordering::Relaxed);
    }
}

impl Picked {
    /// The chosen host.
    #[must_use]
    pub fn host(&self) -> &PoolHost {
        &self.host
    }

    /// Keeps the host counted in flight until `stream` ends or is dropped.
    #[must_use]
    pub fn hold(self, stream: ChatStream) -> ChatStream {
        let ticket = self.ticket;
        Box::pin(stream.map(move |event| {
            let _in_flight = &ticket;
            event
        }))
    }
}

impl PoolBackend {
    /// The hosts to try for a conversation about `model`, best first, computed lazily: a
    /// `sticky` host (the conversation's own) comes first unless it rests after a failure, and
    /// the others are ranked (one `/api/ps` each) only when it is not enough.
    #[must_use]
    pub fn route(&self, model: &str, sticky: Option<usize>) -> Route {
        Route {
            pool: self.clone(),
            model: model.to_owned(),
            sticky: sticky.filter(|&i| i < self.len()),
            ranked: None,
            tried: Vec::new(),
        }
    }

    fn pick(&self, index: usize) -> Picked {
        self.member(index).in_flight.fetch_add(1, Ordering::Relaxed);
        Picked {
            host: self.host(index),
            ticket: Ticket {
                pool: self.clone(),
                index,
            },
        }
    }
}

/// One host's standing when a conversation is placed.
#[derive(Debug)]
struct Standing {
    index: usize,
    /// From its `/api/ps`; `None` when it was not polled (resting) or the poll failed.
    resident: Option<bool>,
    failures: u32,
}

impl Route {
    /// The next host to try, counted in flight; `None` when every host has been tried.
    pub async fn next(&mut self) -> Option<Picked> {
        if let Some(index) = self.sticky.take()
            && !self.pool.member(index).health.resting(Instant::now())
        {
            self.tried.push(index);
            return Some(self.pool.pick(index));
        }
        if self.ranked.is_none() {
            self.ranked = Some(self.rank().await);
        }
        let ranked = self.ranked.as_mut()?;
        // Among the hosts polled fine, the cheapest now: the counts change as conversations
        // start together, so the choice and the count are one step under the lock.
        let _picking = self
            .pool
            .inner
            .picking
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let best = ranked
            .iter()
            .enumerate()
            .filter_map(|(at, s)| s.resident.map(|resident| (at, s, resident)))
            .min_by_key(|(_, s, resident)| {
                let busy = self.pool.member(s.index).in_flight.load(Ordering::Relaxed);
                let cost = busy + if *resident { 0 } else { LOAD_COST };
                (cost, !*resident, s.failures > 0, busy, s.index)
            })
            .map_or(0, |(at, _, _)| at);
        let index = ranked.remove(best)?.index;
        self.tried.push(index);
        Some(self.pool.pick(index))
    }

    /// Polls every untried host that is not resting; the hosts polled fine are chosen from by
    /// [`Route::next`], then come resting hosts (soonest back first), then hosts whose poll
    /// failed.
    async fn rank(&self) -> VecDeque<Standing> {
        let now = Instant::now();
        let (awake, mut resting): (Vec<usize>, Vec<usize>) = (0..self.pool.len())
            .filter(|i| !self.tried.contains(i))
            .partition(|&i| !self.pool.member(i).health.resting(now));
        let polled: Vec<(usize, Result<bool, Error>)> = futures::stream::iter(awake)
            .map(|index| {
                let host = self.pool.host(index);
                let model = self.model.clone();
                async move { (index, resident_on(&host, &model).await) }
            })
            .buffer_unordered(FAN_OUT)
            .collect()
            .await;
        let mut fine = Vec::new();
        let mut failed = Vec::new();
        for (index, result) in polled {
            match result {
                Ok(resident) => fine.push(Standing {
                    index,
                    resident: Some(resident),
                    failures: self.pool.member(index).health.failures(),
                }),
                Err(err) => {
                    self.pool.host(index).failed(&err);
                    failed.push(index);
                }
            }
        }
        fine.sort_by_key(|s| s.index);
        resting.sort_by_key(|&i| (self.pool.member(i).health.rest_ends(), i));
        failed.sort_unstable();
        let unpolled = |index| Standing {
            index,
            resident: None,
            failures: 0,
        };
        fine.into_iter()
            .chain(resting.into_iter().map(unpolled))
            .chain(failed.into_iter().map(unpolled))
            .collect()
    }
}

/// Whether `model` is loaded fully on the GPU of `host`, by its `/api/ps`.
async fn resident_on(host: &PoolHost, model: &str) -> Result<bool, Error> {
    let running = tokio::time::timeout(PS_TIMEOUT, host.backend().running_models())
        .await
        .map_err(|_| Error::Timeout {
            endpoint: "/api/ps".into(),
            phase: crate::error::TimeoutPhase::Response,
            after: PS_TIMEOUT,
        })??;
    Ok(running
        .iter()
        .any(|r| r.is_model(model) && r.is_fully_resident()))
}
