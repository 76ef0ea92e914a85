//! Where the model lives, for the status bar's GPU badge: `/api/ps`, read when a model loads
//! (after an answer, a model switch or the start-up check) and every few seconds while idle.

use std::sync::Arc;
use std::time::Duration;

use conductor_core::{Backend, RunningModel};
use tokio::sync::watch;

use crate::event::{Event, EventSender};

/// How often residency is read while nothing else happens.
pub const IDLE_INTERVAL: Duration = Duration::from_secs(5);

/// One reading of residency for a model.
#[derive(Debug, Clone, PartialEq)]
pub struct ResidencyUpdate {
    /// The model it is about.
    pub model: String,
    /// What `/api/ps` said.
    pub state: ResidencyState,
}

/// What `/api/ps` said about a model.
#[derive(Debug, Clone, PartialEq)]
pub enum ResidencyState {
    /// Loaded, with its sizes (and so its processor split).
    Loaded(RunningModel),
    /// Not loaded right now (it loads with the next question).
    NotLoaded,
    /// Ollama could not be asked.
    Unreachable(String),
}

#[derive(Debug, Clone)]
struct Target {
    model: String,
    idle: bool,
    /// Bumped to ask for a reading now.
    nonce: u64,
}

/// Control of the residency poller.
#[derive(Debug)]
pub struct ResidencyPoller {
    tx: watch::Sender<Target>,
    task: tokio::task::JoinHandle<()>,
}

impl ResidencyPoller {
    /// Starts polling `backend` for `model`, sending readings to `events`.
    #[must_use]
    pub fn spawn(
        backend: Arc<dyn Backend>,
        model: &str,
        events: EventSender,
        interval: Duration,
    ) -> Self {
        let (tx, mut rx) = watch::channel(Target {
            model: model.to_owned(),
            idle: true,
            nonce: 0,
        });
        let task = tokio::spawn(async move {
            // A backend without the model-server capability reports no residency: no badge.
            let Some(server) = backend.model_server() else {
                return;
            };
            let mut last_nonce = u64::MAX;
            loop {
                let target = rx.borrow_and_update().clone();
                let asked = target.nonce != last_nonce;
                last_nonce = target.nonce;
                if target.idle || asked {
                    let state = match server.running_models().await {
                        Ok(models) => models
                            .into_iter()
                            .find(|m| m.is_model(&target.model))
                            .map_or(ResidencyState::NotLoaded, ResidencyState::Loaded),
                        Err(err) => ResidencyState::Unreachable(err.to_string()),
                    };
                    if events.is_closed() {
                        return;
                    }
                    events.send(Event::Residency(ResidencyUpdate {
                        model: target.model,
                        state,
                    }));
                }
                tokio::select! {
                    changed = rx.changed() => if changed.is_err() { return },
                    () = tokio::time::sleep(interval) => {}
                }
            }
        });
        Self { tx, task }
    }

    /// Follows another model from now on, reading its residency at once.
    pub fn set_model(&self, model: &str) {
        self.tx.send_modify(|t| {
            t.model = model.to_owned();
            t.nonce = t.nonce.wrapping_add(1);
        });
    }

    /// Polls every few seconds while idle; stops while an answer streams.
    pub fn set_idle(&self, idle: bool) {
        self.tx.send_if_modified(|t| {
            let changed = t.idle != idle;
            t.idle = idle;
            changed
        });
    }

    /// Reads residency now.
    pub fn refresh(&self) {
        self.tx.send_modify(|t| t.nonce = t.nonce.wrapping_add(1));
    }
}

impl Drop for ResidencyPoller {
    fn drop(&mut self) {
        self.task.abort();
    }
}
