//! The pool as one [`ModelServer`]: what the model commands see without asking host by host.
//!
//! Lists are the union over the hosts that answer; loads and pulls go to every host, unloads
//! to the hosts that have the model loaded;
//! `show` and `version` come from the first host that answers. Residency is a fact of one host:
//! the guard and `gpu verify` look at each host ([`PoolBackend::hosts`]).

use std::time::Duration;

use async_trait::async_trait;
use futures::{StreamExt, future};

use super::{PoolBackend, PoolHost};
use crate::backend::{
    LoadReport, LoadRequest, LocalModel, ModelDetails, ModelServer, OllamaBackend, PullStream,
    RunningModel, ServerVersion,
};
use crate::error::{Error, Result};

impl PoolBackend {
    fn backends(&self) -> Vec<OllamaBackend> {
        self.inner
            .members
            .iter()
            .map(|m| m.backend.clone())
            .collect()
    }
}

/// What [`PoolBackend::unload_by_host`] did on one host.
#[derive(Debug)]
pub enum HostUnload {
    /// The host did not answer `/api/ps`: nothing was tried there.
    Unreachable(Error),
    /// The names under which the model was loaded there, each with its unload's outcome
    /// (none: the model was not loaded there).
    Tried(Vec<(String, Result<()>)>),
}

impl PoolBackend {
    /// Unloads `model` on each host that reports it loaded (`/api/ps`, all hosts at once),
    /// each loaded name once per host; hosts that do not have it loaded are left alone. What
    /// happened on every host, in configuration order.
    pub async fn unload_by_host(&self, model: &str) -> Vec<(PoolHost, HostUnload)> {
        let hosts = self.hosts();
        let answers = future::join_all(hosts.iter().map(|h| h.backend().running_models())).await;
        let unloads = hosts.iter().zip(answers).map(|(host, answer)| async move {
            match answer {
                Err(err) => HostUnload::Unreachable(err),
                Ok(running) => {
                    let mut tried = Vec::new();
                    for name in loaded_names(&running, model) {
                        let result = host.backend().unload_model(&name).await;
                        tried.push((name, result));
                    }
                    HostUnload::Tried(tried)
                }
            }
        });
        let outcomes = future::join_all(unloads).await;
        hosts.into_iter().zip(outcomes).collect()
    }
}

/// The names under which `model` is loaded in `running` (one host's `/api/ps`), each once:
/// what to unload on that host.
#[must_use]
pub fn loaded_names(running: &[RunningModel], model: &str) -> Vec<String> {
    let mut names: Vec<String> = running
        .iter()
        .filter(|m| m.is_model(model))
        .map(|m| m.name.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The answers of the hosts that gave one; the first error when none did.
fn answered<T>(results: Vec<Result<T>>) -> Result<Vec<T>> {
    let mut first_error = None;
    let mut answers = Vec::new();
    for result in results {
        match result {
            Ok(answer) => answers.push(answer),
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
    }
    match first_error {
        Some(err) if answers.is_empty() => Err(err),
        _ => Ok(answers),
    }
}

#[async_trait]
impl ModelServer for PoolBackend {
    /// The models present on any host that answers (once each, first host's entry).
    async fn list_models(&self) -> Result<Vec<LocalModel>> {
        let backends = self.backends();
        let lists = answered(future::join_all(backends.iter().map(|b| b.list_models())).await)?;
        let mut models: Vec<LocalModel> = Vec::new();
        for model in lists.into_iter().flatten() {
            if !models.iter().any(|m| m.name == model.name) {
                models.push(model);
            }
        }
        Ok(models)
    }

    /// The models loaded on every host that answers, host after host (a model loaded on two
    /// hosts is listed twice; [`PoolBackend::hosts`] tells them apart).
    async fn running_models(&self) -> Result<Vec<RunningModel>> {
        let backends = self.backends();
        let lists = answered(future::join_all(backends.iter().map(|b| b.running_models())).await)?;
        Ok(lists.into_iter().flatten().collect())
    }

    async fn show_model(&self, model: &str) -> Result<ModelDetails> {
        let mut last = None;
        for backend in self.backends() {
            match backend.show_model(model).await {
                Ok(details) => return Ok(details),
                Err(err) => last = Some(err),
            }
        }
        Err(last.unwrap_or_else(|| super::no_host(self)))
    }

    /// Loads the model on every host, in parallel; the first failure is the error.
    async fn load_model(&self, request: LoadRequest) -> Result<LoadReport> {
        let backends = self.backends();
        let reports =
            future::join_all(backends.iter().map(|b| b.load_model(request.clone()))).await;
        let mut combined = LoadReport {
            elapsed: Duration::ZERO,
            loaded: false,
        };
        for report in reports {
            let report = report?;
            combined.elapsed = combined.elapsed.max(report.elapsed);
            combined.loaded |= report.loaded;
        }
        Ok(combined)
    }

    /// Unloads the model on the hosts that report it loaded (see
    /// [`PoolBackend::unload_by_host`]). An error when no host answered, or when an unload
    /// failed (the first such failure, after every host was tried).
    async fn unload_model(&self, model: &str) -> Result<()> {
        let mut first_unreachable = None;
        let mut reached = false;
        let mut first_failure = None;
        for (_, outcome) in self.unload_by_host(model).await {
            match outcome {
                HostUnload::Unreachable(err) => {
                    first_unreachable.get_or_insert(err);
                }
                HostUnload::Tried(names) => {
                    reached = true;
                    for (_, result) in names {
                        if let Err(err) = result {
                            first_failure.get_or_insert(err);
                        }
                    }
                }
            }
        }
        match (first_failure, first_unreachable) {
            (Some(err), _) => Err(err),
            (None, Some(err)) if !reached => Err(err),
            _ => Ok(()),
        }
    }

    async fn version(&self) -> Result<ServerVersion> {
        let mut last = None;
        for backend in self.backends() {
            match backend.version().await {
                Ok(version) => return Ok(version),
                Err(err) => last = Some(err),
            }
        }
        Err(last.unwrap_or_else(|| super::no_host(self)))
    }

    /// Pulls the model on every host, one after another, as one stream of progress.
    async fn pull_model(&self, model: &str) -> Result<PullStream> {
        let mut backends = self.backends().into_iter();
        let Some(first) = backends.next() else {
            return Err(super::no_host(self));
        };
        let head = first.pull_model(model).await?;
        let model = model.to_owned();
        let rest = futures::stream::iter(backends.collect::<Vec<_>>())
            .then(move |backend| {
                let model = model.clone();
                async move { backend.pull_model(&model).await }
            })
            .flat_map(|started| match started {
                Ok(stream) => stream,
                Err(err) => Box::pin(futures::stream::once(async { Err::<_, Error>(err) })),
            });
        Ok(Box::pin(head.chain(rest)))
    }
}
