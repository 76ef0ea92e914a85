//! Looking: preload and read `/api/ps` and the local GPUs, find the runner that serves a model,
//! and explain a model that is not on the GPU.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::{ResidencyGuard, ResidencyReport};
use crate::backend::{
    KeepAlive, LoadRequest, ModelDetails, ModelServer, RunnerOptions, RunningModel,
};
use crate::error::Result;
use crate::gpu::diagnose::{Cause, Diagnosis, Evidence, diagnose};
use crate::gpu::probe::DeviceView;

/// How long a preload keeps a model that the request will unload (`keep_alive 0`).
const PRELOAD_FOR_UNLOAD: Duration = Duration::from_secs(30);

impl ResidencyGuard {
    /// Looks at `/api/ps` again after a slow first byte (see [`RECHECK_AFTER`](super::RECHECK_AFTER)): the runner that
    /// answered is loaded by then, so this describes the very load that produced the answer.
    /// `None` when the model still meets the policy; else the diagnosis (and the cached verdict
    /// is forgotten). `sent` are the options the request carried.
    ///
    /// # Errors
    /// Backend errors.
    pub async fn recheck(&self, model: &str, sent: &RunnerOptions) -> Result<Option<Diagnosis>> {
        if self.backend.model_server().is_none() {
            return Ok(None);
        }
        let running = self.find_serving(model).await?;
        if running.as_ref().is_some_and(|r| self.meets_policy(r)) {
            return Ok(None);
        }
        self.invalidate(model);
        warn!(
            model,
            "the model was reloaded for this request and is not fully on the GPU"
        );
        let device = self.snapshot().await;
        Ok(Some(
            self.explain(model, running.as_ref(), sent, &device).await,
        ))
    }

    /// Preloads `model` with `options`, reads `/api/ps` and the local GPUs, and diagnoses when
    /// the model is not resident. Does not look at the cache or the policy.
    ///
    /// # Errors
    /// Backend errors (unreachable, model not found).
    pub async fn check(
        &self,
        model: &str,
        options: &RunnerOptions,
        keep_alive: Option<KeepAlive>,
    ) -> Result<ResidencyReport> {
        self.check_with(model, options, keep_alive, true).await
    }

    /// [`ResidencyGuard::check`]; NVML is asked only for a diagnosis unless `device` is set.
    pub(super) async fn check_with(
        &self,
        model: &str,
        options: &RunnerOptions,
        keep_alive: Option<KeepAlive>,
        device: bool,
    ) -> Result<ResidencyReport> {
        let server = self.backend.server()?;
        let started = Instant::now();
        if device {
            // The device view will be wanted: start the driver while the model loads.
            let probe = Arc::clone(&self.probe);
            drop(tokio::task::spawn_blocking(move || probe.warm_up()));
        }
        // `keep_alive 0` asks Ollama to unload after the request: a preload with it would
        // unload before the look. The preload keeps the model briefly; the request itself,
        // sent with 0, unloads it after answering.
        let preload_keep_alive = match keep_alive {
            Some(KeepAlive::For(d)) if d.is_zero() => Some(KeepAlive::For(PRELOAD_FOR_UNLOAD)),
            other => other,
        };
        let load = LoadRequest {
            model: model.to_owned(),
            options: options.clone(),
            keep_alive: preload_keep_alive,
        };
        let load_time = match server.load_model(load.clone()).await {
            Ok(report) => report.elapsed,
            Err(err) if err.is_gpu_memory_failure() => {
                let device = self.snapshot().await;
                let diagnosis = self
                    .explain_failed_load(model, options, &err, &device)
                    .await;
                return Ok(ResidencyReport {
                    model: model.to_owned(),
                    running: None,
                    device,
                    resident: false,
                    diagnosis: Some(diagnosis),
                    load_time: started.elapsed(),
                    check_time: started.elapsed(),
                });
            }
            Err(err) => return Err(err),
        };
        let mut running = self.find_serving(model).await?;
        if running.is_none() {
            // Evicted between the load and the look (another client): one more try.
            debug!("model absent from /api/ps after load; loading again");
            server.load_model(load).await?;
            running = self.find_serving(model).await?;
        }
        let resident = running.as_ref().is_some_and(|r| self.meets_policy(r));
        let device = if device || !resident {
            self.snapshot().await
        } else {
            DeviceView::NoNvml {
                reason: "not asked: the model is fully on the GPU".into(),
            }
        };
        let diagnosis = if resident {
            None
        } else {
            Some(
                self.explain(model, running.as_ref(), options, &device)
                    .await,
            )
        };
        let report = ResidencyReport {
            model: model.to_owned(),
            running,
            device,
            resident,
            diagnosis,
            load_time,
            check_time: started.elapsed(),
        };
        info!(
            resident = report.resident,
            processor = report.running.as_ref().map(|r| r.processor().to_string()),
            check_ms = report.check_time.as_millis() as u64,
            "residency checked"
        );
        Ok(report)
    }

    /// The local device view, off the async threads (NVML calls block).
    pub(super) async fn snapshot(&self) -> DeviceView {
        let probe = Arc::clone(&self.probe);
        tokio::task::spawn_blocking(move || probe.snapshot())
            .await
            .unwrap_or(DeviceView::NoNvml {
                reason: "the GPU probe failed".into(),
            })
    }

    /// `/api/show` and the weights' size from `/api/tags`, both best effort.
    pub(super) async fn model_facts(&self, model: &str) -> (Option<ModelDetails>, Option<u64>) {
        let Some(server) = self.backend.model_server() else {
            return (None, None);
        };
        let (show, models) = tokio::join!(server.show_model(model), server.list_models());
        let weights = models
            .ok()
            .and_then(|m| {
                m.into_iter()
                    .find(|m| crate::backend::same_model(&m.name, model))
            })
            .map(|m| m.size);
        (show.ok(), weights)
    }

    pub(super) async fn explain(
        &self,
        model: &str,
        running: Option<&RunningModel>,
        options: &RunnerOptions,
        device: &DeviceView,
    ) -> Diagnosis {
        let (show, weights) = self.model_facts(model).await;
        diagnose(&Evidence {
            model,
            running,
            show: show.as_ref(),
            options,
            weights,
            device,
        })
    }

    /// `/api/ps`'s entry for `model`, by name.
    pub(super) async fn find_running(&self, model: &str) -> Result<Option<RunningModel>> {
        Ok(self
            .backend
            .server()?
            .running_models()
            .await?
            .into_iter()
            .find(|m| m.is_model(model)))
    }

    /// `/api/ps`'s entry serving `model` after loading it: by name, else the runner of its
    /// weights. Ollama keeps one runner per weights file, so a model made `FROM` another (a
    /// baked personality, a Modelfile with other parameters) is served by, and listed under,
    /// whichever of them loaded first (measured on Ollama 0.24: `tiny-det` listed as `tiny`).
    pub(super) async fn find_serving(&self, model: &str) -> Result<Option<RunningModel>> {
        let server: &dyn ModelServer = self.backend.server()?;
        let running = server.running_models().await?;
        if let Some(found) = running.iter().find(|m| m.is_model(model)) {
            return Ok(Some(found.clone()));
        }
        if running.is_empty() {
            return Ok(None);
        }
        let Ok(wanted) = server.show_model(model).await else {
            return Ok(None);
        };
        let Some(blob) = wanted.weights_blob() else {
            return Ok(None);
        };
        for candidate in running {
            let shares_weights = server
                .show_model(&candidate.name)
                .await
                .ok()
                .is_some_and(|show| show.weights_blob() == Some(blob));
            if shares_weights {
                debug!(model, listed_as = %candidate.name, "served by the runner of its weights");
                return Ok(Some(candidate));
            }
        }
        Ok(None)
    }
}

pub(super) fn unknown(model: &str, report: &ResidencyReport) -> Diagnosis {
    Diagnosis {
        model: model.to_owned(),
        running: report.running.clone(),
        runner_gpu_memory: report.runner_gpu_memory(),
        cause: if report.running.is_none() {
            Cause::NotLoaded
        } else {
            Cause::Unknown
        },
        notes: Vec::new(),
    }
}
