//! The residency guard: check before generating, enforce the policy, cache the verdict.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{Instrument, debug, info, info_span, warn};

use crate::backend::{Backend, KeepAlive, LoadRequest, RunnerOptions, RunningModel};
use crate::config::{GpuPolicy, MinFraction};
use crate::error::{Error, Result};
use crate::gpu::diagnose::{Cause, Diagnosis, Evidence, diagnose, suggested_context};
use crate::gpu::probe::{DeviceView, GpuProbe};

/// Everything one check found.
#[derive(Debug, Clone, PartialEq)]
pub struct ResidencyReport {
    /// The model.
    pub model: String,
    /// `/api/ps` for it after the preload, if listed.
    pub running: Option<RunningModel>,
    /// The local device view (or why there is none).
    pub device: DeviceView,
    /// Whether the model meets the policy's minimum GPU fraction.
    pub resident: bool,
    /// Why not, when it is not.
    pub diagnosis: Option<Diagnosis>,
    /// How long the preload took (client-measured).
    pub load_time: Duration,
    /// How long the whole check took.
    pub check_time: Duration,
}

impl ResidencyReport {
    /// GPU memory the Ollama runner holds, by NVML.
    #[must_use]
    pub fn runner_gpu_memory(&self) -> Option<u64> {
        self.device.ollama_memory()
    }
}

/// What the guard changed under the `fix` policy.
#[derive(Debug, Clone, PartialEq)]
pub struct FixReport {
    /// The model.
    pub model: String,
    /// Each change, e.g. `num_ctx 131072 (Ollama's own default) → 16384`.
    pub changes: Vec<String>,
    /// The options now sent with every request for this model.
    pub options: RunnerOptions,
}

/// The guard's answer for one request: the options to send, and anything to tell the user.
#[derive(Debug, Clone, PartialEq)]
pub struct Admission {
    /// The options to send (the requested ones, or the fixed ones under `fix`).
    pub options: RunnerOptions,
    /// Under `warn`: why the model is not fully on the GPU.
    pub warning: Option<Arc<Diagnosis>>,
    /// Under `fix`: what was changed (reported once, on the check that changed it).
    pub fixed: Option<Arc<FixReport>>,
}

#[derive(Debug)]
struct CacheEntry {
    model: String,
    requested: RunnerOptions,
    admission: Admission,
    /// When Ollama will unload the model if nothing uses it; `None` for ever.
    expires: Option<Instant>,
    /// keep_alive window that each use renews.
    window: Option<Duration>,
}

/// Checks that a model is on the GPU before it generates, under a [`GpuPolicy`].
///
/// A check preloads the model with the options the requests will send (so nothing reloads
/// afterwards), reads `/api/ps`, and looks at the local GPUs through a [`GpuProbe`]. The verdict
/// is cached per model and runner options until the model's keep-alive would expire; each use
/// renews it, as each request renews Ollama's keep-alive. A steady chat pays one check.
#[derive(Debug)]
pub struct ResidencyGuard {
    backend: Arc<dyn Backend>,
    probe: Arc<dyn GpuProbe>,
    policy: GpuPolicy,
    min_fraction: MinFraction,
    cache: Mutex<Vec<CacheEntry>>,
    /// One check at a time: concurrent first requests wait for it instead of each preloading.
    checking: tokio::sync::Mutex<()>,
}

impl ResidencyGuard {
    /// A guard over `backend`, looking at GPUs through `probe`.
    #[must_use]
    pub fn new(
        backend: Arc<dyn Backend>,
        probe: Arc<dyn GpuProbe>,
        policy: GpuPolicy,
        min_fraction: MinFraction,
    ) -> Self {
        Self {
            backend,
            probe,
            policy,
            min_fraction,
            cache: Mutex::new(Vec::new()),
            checking: tokio::sync::Mutex::new(()),
        }
    }

    /// The policy.
    #[must_use]
    pub fn policy(&self) -> GpuPolicy {
        self.policy
    }

    /// The probe.
    #[must_use]
    pub fn probe(&self) -> &Arc<dyn GpuProbe> {
        &self.probe
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Vec<CacheEntry>> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cached admission for `model` with these options, if still valid (renewing it).
    #[must_use]
    pub fn cached(&self, model: &str, options: &RunnerOptions) -> Option<Admission> {
        let now = Instant::now();
        let mut cache = self.cache();
        let entry = cache
            .iter_mut()
            .find(|e| e.model == model && runner_options_equal(&e.requested, options))?;
        if entry.expires.is_some_and(|t| t <= now) {
            return None;
        }
        if let Some(window) = entry.window {
            entry.expires = Some(now + window);
        }
        let mut admission = entry.admission.clone();
        // A fix is reported once, on the check that made it.
        entry.admission.fixed = None;
        admission.options = merge_sampling(&admission.options, options);
        Some(admission)
    }

    /// Forgets the verdict for `model` (all options), so the next request checks again.
    pub fn invalidate(&self, model: &str) {
        self.cache()
            .retain(|e| !crate::backend::same_model(&e.model, model));
    }

    /// Admits a request for `model` with `options` under the policy, checking only when the
    /// cached verdict is missing or stale.
    ///
    /// # Errors
    /// [`Error::NotResident`] under `enforce` (and `fix` when fixing failed); backend errors.
    pub async fn admit(
        &self,
        model: &str,
        options: &RunnerOptions,
        keep_alive: Option<KeepAlive>,
    ) -> Result<Admission> {
        if self.policy == GpuPolicy::Off {
            return Ok(Admission {
                options: options.clone(),
                warning: None,
                fixed: None,
            });
        }
        if let Some(admission) = self.cached(model, options) {
            return Ok(admission);
        }
        let _one_at_a_time = self.checking.lock().await;
        if let Some(admission) = self.cached(model, options) {
            return Ok(admission);
        }
        let span = info_span!("gpu_check", model, policy = %self.policy);
        async {
            let report = self.check(model, options, keep_alive).await?;
            let admission = self.decide(model, options, keep_alive, report).await?;
            Ok(admission)
        }
        .instrument(span)
        .await
    }

    async fn decide(
        &self,
        model: &str,
        options: &RunnerOptions,
        keep_alive: Option<KeepAlive>,
        report: ResidencyReport,
    ) -> Result<Admission> {
        let mut admission = Admission {
            options: options.clone(),
            warning: None,
            fixed: None,
        };
        let mut report = report;
        if !report.resident {
            let diagnosis = report
                .diagnosis
                .clone()
                .unwrap_or_else(|| unknown(model, &report));
            match self.policy {
                GpuPolicy::Off => {}
                GpuPolicy::Enforce => return Err(Error::NotResident(Box::new(diagnosis))),
                GpuPolicy::Warn => {
                    warn!(cause = ?diagnosis.cause, "model not fully on the GPU; generating anyway (warn)");
                    admission.warning = Some(Arc::new(diagnosis));
                }
                GpuPolicy::Fix => {
                    let (fixed, fixed_report) =
                        self.fix(model, options, keep_alive, diagnosis).await?;
                    admission.options = fixed.options.clone();
                    admission.fixed = Some(Arc::new(fixed));
                    report = fixed_report;
                }
            }
        }
        self.remember(
            model,
            options,
            &admission,
            report.running.as_ref(),
            keep_alive,
        );
        Ok(admission)
    }

    /// Applies what the diagnosis points at (a smaller context, no layer cap), reloads and
    /// checks again, up to twice; fails with the last diagnosis when the model still is not
    /// resident or nothing can be changed.
    async fn fix(
        &self,
        model: &str,
        options: &RunnerOptions,
        keep_alive: Option<KeepAlive>,
        diagnosis: Diagnosis,
    ) -> Result<(FixReport, ResidencyReport)> {
        let mut current = options.clone();
        let mut changes = Vec::new();
        let mut diagnosis = diagnosis;
        for _ in 0..2 {
            let change = match &diagnosis.cause {
                Cause::NumGpu {
                    num_gpu,
                    layers,
                    source,
                } => {
                    current.num_gpu = Some(i32::try_from(*layers).unwrap_or(i32::MAX));
                    format!("num_gpu {num_gpu} (from {source}) → {layers} (all layers)")
                }
                Cause::ContextTooLarge {
                    num_ctx,
                    source,
                    max_fitting,
                    ..
                } => {
                    let new = suggested_context(*max_fitting);
                    current.num_ctx = Some(u32::try_from(new).unwrap_or(u32::MAX));
                    format!("num_ctx {num_ctx} (from {source}) → {new}")
                }
                _ => return Err(Error::NotResident(Box::new(diagnosis))),
            };
            info!(%change, "fixing residency");
            changes.push(change);
            let report = self.check(model, &current, keep_alive).await?;
            if report.resident {
                let fixed = FixReport {
                    model: model.to_owned(),
                    changes,
                    options: current,
                };
                return Ok((fixed, report));
            }
            diagnosis = report
                .diagnosis
                .clone()
                .unwrap_or_else(|| unknown(model, &report));
        }
        Err(Error::NotResident(Box::new(diagnosis)))
    }

    fn remember(
        &self,
        model: &str,
        requested: &RunnerOptions,
        admission: &Admission,
        running: Option<&RunningModel>,
        keep_alive: Option<KeepAlive>,
    ) {
        let window = match keep_alive {
            Some(KeepAlive::Forever) => None,
            Some(KeepAlive::For(d)) => Some(d),
            None => running
                .and_then(|r| r.expires_at.as_deref())
                .and_then(seconds_until)
                .or(Some(Duration::from_secs(300))),
        };
        // An expiry centuries ahead means "for ever" (keep_alive -1).
        let window = window.filter(|w| *w < Duration::from_secs(10 * 365 * 86_400));
        let mut cache = self.cache();
        cache.retain(|e| !(e.model == model && runner_options_equal(&e.requested, requested)));
        let mut stored = admission.clone();
        stored.fixed = None;
        cache.push(CacheEntry {
            model: model.to_owned(),
            requested: requested.clone(),
            admission: stored,
            expires: window.map(|w| Instant::now() + w),
            window,
        });
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
        let started = Instant::now();
        let load = LoadRequest {
            model: model.to_owned(),
            options: options.clone(),
            keep_alive,
        };
        let load_time = self.backend.load_model(load.clone()).await?.elapsed;
        let mut running = self.find_running(model).await?;
        if running.is_none() {
            // Evicted between the load and the look (another client): one more try.
            debug!("model absent from /api/ps after load; loading again");
            self.backend.load_model(load).await?;
            running = self.find_running(model).await?;
        }
        let probe = Arc::clone(&self.probe);
        let device = tokio::task::spawn_blocking(move || probe.snapshot())
            .await
            .unwrap_or(DeviceView::NoNvml {
                reason: "the GPU probe failed".into(),
            });
        let resident = running.as_ref().is_some_and(|r| {
            if self.min_fraction.get() >= 1.0 {
                r.is_fully_resident()
            } else {
                r.gpu_fraction() >= self.min_fraction.get()
            }
        });
        let diagnosis = if resident {
            None
        } else {
            let (show, models) =
                tokio::join!(self.backend.show_model(model), self.backend.list_models());
            let weights = models
                .ok()
                .and_then(|m| {
                    m.into_iter()
                        .find(|m| crate::backend::same_model(&m.name, model))
                })
                .map(|m| m.size);
            let show = show.ok();
            Some(diagnose(&Evidence {
                model,
                running: running.as_ref(),
                show: show.as_ref(),
                options,
                weights,
                device: &device,
            }))
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

    async fn find_running(&self, model: &str) -> Result<Option<RunningModel>> {
        Ok(self
            .backend
            .running_models()
            .await?
            .into_iter()
            .find(|m| m.is_model(model)))
    }
}

fn unknown(model: &str, report: &ResidencyReport) -> Diagnosis {
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

/// Two option sets load the model the same way (only runner options matter).
fn runner_options_equal(a: &RunnerOptions, b: &RunnerOptions) -> bool {
    a.runner_only() == b.runner_only()
}

/// The admitted runner options with this request's sampling options.
fn merge_sampling(admitted: &RunnerOptions, request: &RunnerOptions) -> RunnerOptions {
    admitted.runner_only().or(request.clone())
}

fn seconds_until(rfc3339: &str) -> Option<Duration> {
    let at: jiff::Timestamp = rfc3339.parse().ok()?;
    let now = jiff::Timestamp::now();
    let span = at.duration_since(now);
    Duration::try_from(span).ok()
}
