//! The pool as one [`ModelServer`]: what the model commands see without asking host by host.
//!
//! Lists are the union over the hosts that answer; loads, unloads and pulls go to every host;
//! `show` and `version` come from the first host that answers. Residency is a fact of one host:
//! the guard and `gpu verify` look at each host ([`PoolBackend::hosts`]).

use std::time::Duration;

use async_trait::async_trait;
use futures::{StreamExt, future};

use super::PoolBackend;
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

    /// Unloads the model from every host; the first failure is the error.
    async fn unload_model(&self, model: &str) -> Result<()> {
        let backends = self.backends();
        for result in future::join_all(backends.iter().map(|b| b.unload_model(model))).await {
            result?;
        }
        Ok(())
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
