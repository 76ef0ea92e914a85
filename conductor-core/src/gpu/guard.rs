//! The residency guard: admit a request only when its model is on the GPU, at no cost when it
//! already is.
//!
//! How a request is admitted (cheapest first):
//! 1. **Cached**: this process checked the same model and runner options within its
//!    keep-alive: nothing is sent.
//! 2. **Resident, from `/api/ps`** (about 1 ms locally): the model is loaded, fully on the GPU,
//!    with the context this request will use. When the request sets no `num_ctx`, the loaded
//!    context is adopted, so Ollama does not reload the model with its own default (on a large
//!    card that default is the model's maximum: a 14 GiB KV cache for a 3B model). No preload,
//!    no NVML.
//! 3. **Loaded and checked**: otherwise a load is coming anyway (seconds): conductor preloads with
//!    the request's options, reads `/api/ps`, and only when the model is not fully on the GPU
//!    asks NVML, `/api/show` and `/api/tags` why.
//!
//! A first byte slower than [`RECHECK_AFTER`] may mean Ollama reloaded the model for this very
//! request (another client changed it in between): the conversation layer looks at `/api/ps`
//! once more before it shows anything ([`ResidencyGuard::recheck`]).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{Instrument, debug, info, info_span, warn};

use crate::backend::{
    Backend, ChatRequest, KeepAlive, LoadRequest, ModelDetails, ModelServer, RunnerOptions,
    RunningModel,
};
use crate::error::{Error, Result};
use crate::gpu::diagnose::{
    Cause, Diagnosis, Evidence, diagnose, diagnose_failed_load, suggested_context,
};
use crate::gpu::fixes::{FixStore, RememberedFix};
use crate::gpu::policy::{GpuPolicy, MinFraction};
use crate::gpu::probe::{DeviceView, GpuProbe};

/// A first byte slower than this may come from a reload: look at `/api/ps` again before showing
/// it. A warm answer's first byte takes 80-110 ms on an H100; a reload takes seconds.
pub const RECHECK_AFTER: Duration = Duration::from_millis(300);

/// How long a preload keeps a model that the request will unload (`keep_alive 0`).
const PRELOAD_FOR_UNLOAD: Duration = Duration::from_secs(30);

/// Room left for the answer when adopting a loaded context.
const ANSWER_ROOM_TOKENS: u64 = 1024;

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
    /// True when the fix was remembered from an earlier process and applied before loading
    /// (nothing was loaded with the options that did not fit).
    pub remembered: bool,
    /// Where the fix is remembered for later processes, if it could be written.
    pub saved_in: Option<PathBuf>,
}

/// How an admission was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdmissionBasis {
    /// The policy is `off`: nothing was checked.
    Unchecked,
    /// This process checked the same load recently.
    Cached,
    /// `/api/ps` showed the model loaded fully on the GPU with the options to be sent.
    Resident,
    /// The model was loaded with the options to be sent and checked.
    Checked,
    /// The backend reports no residency (it has no [`ModelServer`]): admitted unchecked under
    /// every policy, since refusing would claim a fact nobody measured.
    Unreported,
}

/// The guard's answer for one request: the options to send, and anything to tell the user.
#[derive(Debug, Clone, PartialEq)]
pub struct Admission {
    /// The options to send (the requested ones, with the loaded context adopted when none was
    /// asked for, or the fixed ones under `fix`).
    pub options: RunnerOptions,
    /// Under `warn`: why the model is not fully on the GPU.
    pub warning: Option<Arc<Diagnosis>>,
    /// Under `fix`: what was changed (reported on the check that changed it, and when a
    /// remembered fix is applied).
    pub fixed: Option<Arc<FixReport>>,
    /// How it was decided.
    pub basis: AdmissionBasis,
    /// The context of the resident load, adopted because the request set none.
    pub adopted_context: Option<u64>,
}

impl Admission {
    fn unchecked(options: &RunnerOptions) -> Self {
        Self {
            options: options.clone(),
            warning: None,
            fixed: None,
            basis: AdmissionBasis::Unchecked,
            adopted_context: None,
        }
    }
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
/// See the module documentation for how a request is admitted; a resident model costs one
/// `/api/ps` per process, and a steady chat pays nothing after its first turn.
#[derive(Debug)]
pub struct ResidencyGuard {
    backend: Arc<dyn Backend>,
    probe: Arc<dyn GpuProbe>,
    policy: GpuPolicy,
    min_fraction: MinFraction,
    fixes: FixStore,
    cache: Mutex<Vec<CacheEntry>>,
    /// One check at a time: concurrent first requests wait for it instead of each preloading.
    checking: tokio::sync::Mutex<()>,
    /// The "residency not reported" notice was given (it is given once per guard).
    unreported_noticed: AtomicBool,
}

impl ResidencyGuard {
    /// A guard over `backend`, looking at GPUs through `probe` (only to explain a model that is
    /// not fully on the GPU, or when asked by [`ResidencyGuard::check`]). Fixes are remembered
    /// for the life of the guard; see [`ResidencyGuard::with_fix_store`] to keep them longer.
    #[must_use]
    pub fn new(
        backend: Arc<dyn Backend>,
        probe: Arc<dyn GpuProbe>,
        policy: GpuPolicy,
        min_fraction: MinFraction,
    ) -> Self {
        let fixes = FixStore::disabled(backend.endpoint());
        Self {
            backend,
            probe,
            policy,
            min_fraction,
            fixes,
            cache: Mutex::new(Vec::new()),
            checking: tokio::sync::Mutex::new(()),
            unreported_noticed: AtomicBool::new(false),
        }
    }

    /// Remembers fixes in `store`, so later processes send options that fit at once.
    #[must_use]
    pub fn with_fix_store(mut self, store: FixStore) -> Self {
        self.fixes = store;
        self
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

    /// The store of remembered fixes.
    #[must_use]
    pub fn fixes(&self) -> &FixStore {
        &self.fixes
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Vec<CacheEntry>> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// True when `running` meets the policy's minimum GPU share.
    fn meets_policy(&self, running: &RunningModel) -> bool {
        if self.min_fraction.get() >= 1.0 {
            running.is_fully_resident()
        } else {
            running.gpu_fraction() >= self.min_fraction.get()
        }
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
        admission.basis = AdmissionBasis::Cached;
        Some(admission)
    }

    /// Forgets the verdict for `model` (all options), so the next request checks again.
    pub fn invalidate(&self, model: &str) {
        self.cache()
            .retain(|e| !crate::backend::same_model(&e.model, model));
    }

    /// Admits a request for `model` with `options` under the policy (see the module
    /// documentation): from the cache, from `/api/ps` when the model is resident, else by
    /// loading and checking.
    ///
    /// # Errors
    /// [`Error::NotResident`] under `enforce` (and `fix` when fixing failed); backend errors.
    pub async fn admit(
        &self,
        model: &str,
        options: &RunnerOptions,
        keep_alive: Option<KeepAlive>,
    ) -> Result<Admission> {
        self.admit_sized(model, options, keep_alive, 0).await
    }

    /// Admits `request` (as [`ResidencyGuard::admit`]); its prompt's size keeps a loaded context
    /// too small for it from being adopted.
    ///
    /// # Errors
    /// As [`ResidencyGuard::admit`].
    pub async fn admit_request(&self, request: &ChatRequest) -> Result<Admission> {
        let prompt_bytes = request.messages.iter().map(|m| m.content.len()).sum();
        self.admit_sized(
            &request.model,
            &request.options,
            request.keep_alive,
            prompt_bytes,
        )
        .await
    }

    async fn admit_sized(
        &self,
        model: &str,
        options: &RunnerOptions,
        keep_alive: Option<KeepAlive>,
        prompt_bytes: usize,
    ) -> Result<Admission> {
        if self.policy == GpuPolicy::Off {
            return Ok(Admission::unchecked(options));
        }
        if self.backend.model_server().is_none() {
            return Ok(self.unreported(model, options));
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
            // What to send: the request, or under `fix` the options remembered to fit for it.
            let mut remembered = (self.policy == GpuPolicy::Fix)
                .then(|| self.fixes.find(model, options))
                .flatten();
            let running = self.find_running(model).await?;
            if let (Some(fix), Some(running)) = (&remembered, &running)
                && fix.digest != running.digest
            {
                remembered = self.void_fix(model, fix);
            }
            let wanted = sending(options, remembered.as_ref());
            let trained = match running.as_ref() {
                Some(r) if wanted.num_ctx.is_none() && self.meets_policy(r) => {
                    self.trained_context(model, r).await
                }
                _ => None,
            };
            if let Some(running) = running.as_ref().filter(|r| self.meets_policy(r))
                && let Some((sent, adopted_context)) =
                    adopt(&wanted, running, prompt_bytes, trained)
            {
                debug!(
                    context = running.context_length,
                    adopted = adopted_context.is_some(),
                    "admitted from /api/ps: resident"
                );
                let admission = Admission {
                    options: merge_sampling(&sent, options),
                    warning: None,
                    fixed: remembered.map(|f| Arc::new(self.remembered_report(f))),
                    basis: AdmissionBasis::Resident,
                    adopted_context,
                };
                self.remember(model, options, &admission, Some(running), keep_alive);
                return Ok(admission);
            }
            let mut report = self.check_with(model, &wanted, keep_alive, false).await?;
            if let (Some(fix), Some(running)) = (&remembered, &report.running)
                && fix.digest != running.digest
            {
                // The model changed since the fix: judge the request as asked.
                remembered = self.void_fix(model, fix);
                report = self.check_with(model, options, keep_alive, false).await?;
            }
            self.decide(model, options, keep_alive, report, remembered)
                .await
        }
        .instrument(span)
        .await
    }

    /// The admission for a backend that reports no residency: the request as asked, with a
    /// notice the first time, so the user knows the policy could not be applied.
    fn unreported(&self, model: &str, options: &RunnerOptions) -> Admission {
        let first = !self.unreported_noticed.swap(true, Ordering::Relaxed);
        if first {
            info!(model, policy = %self.policy, "residency not reported by this backend; admitted unchecked");
        }
        Admission {
            options: options.clone(),
            warning: first.then(|| {
                Arc::new(Diagnosis {
                    model: model.to_owned(),
                    running: None,
                    runner_gpu_memory: None,
                    cause: Cause::NotReported,
                    notes: Vec::new(),
                })
            }),
            fixed: None,
            basis: AdmissionBasis::Unreported,
            adopted_context: None,
        }
    }

    /// The model's trained context length: remembered by digest, else from `/api/show` (once
    /// per model and machine).
    async fn trained_context(&self, model: &str, running: &RunningModel) -> Option<u64> {
        if let Some(context) = self.fixes.trained_context(&running.digest) {
            return Some(context);
        }
        let context = self
            .backend
            .model_server()?
            .show_model(model)
            .await
            .ok()?
            .trained_context_length()?;
        if !running.digest.is_empty()
            && let Err(err) = self.fixes.record_trained_context(&running.digest, context)
        {
            debug!(%err, "cannot remember the trained context");
        }
        Some(context)
    }

    fn void_fix(&self, model: &str, fix: &RememberedFix) -> Option<RememberedFix> {
        info!(
            model,
            "the model changed since its fix was remembered; forgetting the fix"
        );
        if let Err(err) = self.fixes.forget(Some(&fix.model)) {
            warn!(%err, "cannot update the remembered GPU fixes");
        }
        None
    }

    fn remembered_report(&self, fix: RememberedFix) -> FixReport {
        FixReport {
            model: fix.model,
            changes: fix.changes,
            options: fix.options,
            remembered: true,
            saved_in: self.fixes.path().map(ToOwned::to_owned),
        }
    }

    async fn decide(
        &self,
        model: &str,
        options: &RunnerOptions,
        keep_alive: Option<KeepAlive>,
        report: ResidencyReport,
        remembered: Option<RememberedFix>,
    ) -> Result<Admission> {
        let sent = sending(options, remembered.as_ref());
        let mut admission = Admission {
            options: merge_sampling(&sent, options),
            warning: None,
            fixed: remembered.map(|f| Arc::new(self.remembered_report(f))),
            basis: AdmissionBasis::Checked,
            adopted_context: None,
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
                    let (fixed, fixed_report) = self
                        .fix(model, &sent, options, keep_alive, diagnosis)
                        .await?;
                    admission.options = merge_sampling(&fixed.options, options);
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
    /// resident or nothing can be changed. A fix that works is remembered for `requested`.
    async fn fix(
        &self,
        model: &str,
        from: &RunnerOptions,
        requested: &RunnerOptions,
        keep_alive: Option<KeepAlive>,
        diagnosis: Diagnosis,
    ) -> Result<(FixReport, ResidencyReport)> {
        let mut current = from.runner_only();
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
                Cause::OutOfMemory {
                    num_ctx,
                    source,
                    max_fitting: Some(max_fitting),
                    ..
                } => {
                    let new = suggested_context(*max_fitting);
                    current.num_ctx = Some(u32::try_from(new).unwrap_or(u32::MAX));
                    let was = num_ctx.map_or_else(|| "?".to_owned(), |c| c.to_string());
                    format!("num_ctx {was} (from {source}; the GPU ran out of memory) → {new}")
                }
                _ => return Err(Error::NotResident(Box::new(diagnosis))),
            };
            info!(%change, "fixing residency");
            changes.push(change);
            let report = self.check_with(model, &current, keep_alive, false).await?;
            if report.resident {
                let saved_in = self.save_fix(requested, &current, &changes, &report);
                let fixed = FixReport {
                    model: model.to_owned(),
                    changes,
                    options: current,
                    remembered: false,
                    saved_in,
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

    fn save_fix(
        &self,
        requested: &RunnerOptions,
        options: &RunnerOptions,
        changes: &[String],
        report: &ResidencyReport,
    ) -> Option<PathBuf> {
        let path = self.fixes.path()?.to_owned();
        let running = report.running.as_ref()?;
        let fix = RememberedFix {
            host: self.fixes.host().to_owned(),
            model: running.name.clone(),
            digest: running.digest.clone(),
            requested: requested.runner_only(),
            options: options.runner_only(),
            changes: changes.to_vec(),
            recorded_at: jiff::Timestamp::now().to_string(),
        };
        match self.fixes.record(fix) {
            Ok(()) => Some(path),
            Err(err) => {
                warn!(path = %path.display(), %err, "cannot remember the GPU fix");
                None
            }
        }
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

    /// Looks at `/api/ps` again after a slow first byte (see [`RECHECK_AFTER`]): the runner that
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

    /// Explains a load that failed because GPU memory ran out ([`Error::is_gpu_memory_failure`]),
    /// as a residency failure with what holds the VRAM and a context that fits.
    pub async fn explain_load_failure(
        &self,
        model: &str,
        sent: &RunnerOptions,
        error: &Error,
    ) -> Diagnosis {
        self.invalidate(model);
        let device = self.snapshot().await;
        self.explain_failed_load(model, sent, error, &device).await
    }

    async fn explain_failed_load(
        &self,
        model: &str,
        sent: &RunnerOptions,
        error: &Error,
        device: &DeviceView,
    ) -> Diagnosis {
        let (show, weights) = self.model_facts(model).await;
        diagnose_failed_load(
            &Evidence {
                model,
                running: None,
                show: show.as_ref(),
                options: sent,
                weights,
                device,
            },
            &error.root().to_string(),
        )
    }

    /// Runs a fix for a load that failed for want of GPU memory, under the `fix` policy: the
    /// admission to retry with. Under other policies, or when nothing can be changed, the error
    /// is [`Error::NotResident`] with the diagnosis.
    ///
    /// # Errors
    /// [`Error::NotResident`]; backend errors.
    pub async fn fix_load_failure(
        &self,
        model: &str,
        requested: &RunnerOptions,
        sent: &RunnerOptions,
        keep_alive: Option<KeepAlive>,
        error: &Error,
    ) -> Result<Admission> {
        let diagnosis = self.explain_load_failure(model, sent, error).await;
        if self.policy != GpuPolicy::Fix {
            return Err(Error::NotResident(Box::new(diagnosis)));
        }
        let _one_at_a_time = self.checking.lock().await;
        let (fixed, report) = self
            .fix(model, sent, requested, keep_alive, diagnosis)
            .await?;
        let admission = Admission {
            options: merge_sampling(&fixed.options, requested),
            warning: None,
            fixed: Some(Arc::new(fixed)),
            basis: AdmissionBasis::Checked,
            adopted_context: None,
        };
        self.remember(
            model,
            requested,
            &admission,
            report.running.as_ref(),
            keep_alive,
        );
        Ok(admission)
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
    async fn check_with(
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
    async fn snapshot(&self) -> DeviceView {
        let probe = Arc::clone(&self.probe);
        tokio::task::spawn_blocking(move || probe.snapshot())
            .await
            .unwrap_or(DeviceView::NoNvml {
                reason: "the GPU probe failed".into(),
            })
    }

    /// `/api/show` and the weights' size from `/api/tags`, both best effort.
    async fn model_facts(&self, model: &str) -> (Option<ModelDetails>, Option<u64>) {
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

    async fn explain(
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
    async fn find_running(&self, model: &str) -> Result<Option<RunningModel>> {
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
    async fn find_serving(&self, model: &str) -> Result<Option<RunningModel>> {
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

/// The runner options to send: the request's, or a remembered fix's in their place.
fn sending(requested: &RunnerOptions, fix: Option<&RememberedFix>) -> RunnerOptions {
    match fix {
        Some(fix) => fix.options.runner_only().or(requested.clone()),
        None => requested.clone(),
    }
}

/// The options that use the resident load as it is, if `wanted` would not make Ollama reload
/// it: the same context; or, when none is asked for, the loaded one (adopted, and returned as
/// the second value) when it is smaller than the model's trained context `trained` and leaves
/// room for the prompt and an answer.
///
/// A loaded context equal to the trained one may be Ollama's own default clamped to it (on an
/// H200 the default is 262144, clamped to 131072), and Ollama compares the *requested* contexts:
/// sending 131072 to a runner loaded by default reloads it (measured). So that context is not
/// adopted: the request sends none, as the loader did. `/api/ps` does not report the other
/// runner options (`num_gpu`, `num_batch`, ...); a reload they cause shows as a slow first
/// byte, which [`ResidencyGuard::recheck`] covers.
fn adopt(
    wanted: &RunnerOptions,
    running: &RunningModel,
    prompt_bytes: usize,
    trained: Option<u64>,
) -> Option<(RunnerOptions, Option<u64>)> {
    match (wanted.num_ctx, running.context_length) {
        (Some(asked), Some(loaded)) => (u64::from(asked) == loaded).then(|| (wanted.clone(), None)),
        // A server too old to report its context: it cannot be compared.
        (Some(_), None) => None,
        (None, None) => Some((wanted.clone(), None)),
        (None, Some(loaded)) if trained.is_none_or(|t| loaded >= t) => Some((wanted.clone(), None)),
        (None, Some(loaded)) => {
            // A token is 3-4 bytes of English; count 3 so a long prompt is never cut.
            let needed = u64::try_from(prompt_bytes / 3).unwrap_or(u64::MAX) + ANSWER_ROOM_TOKENS;
            if loaded < needed {
                return None;
            }
            let mut options = wanted.clone();
            options.num_ctx = Some(u32::try_from(loaded).ok()?);
            Some((options, Some(loaded)))
        }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn running(context: Option<u64>) -> RunningModel {
        RunningModel {
            name: "m3b:latest".into(),
            size: 10,
            size_vram: 10,
            context_length: context,
            expires_at: None,
            digest: "d".into(),
            details: crate::backend::ModelFamily::default(),
        }
    }

    fn ctx(n: u32) -> RunnerOptions {
        RunnerOptions {
            num_ctx: Some(n),
            ..RunnerOptions::default()
        }
    }

    #[test]
    fn adopts_the_loaded_context_only_when_none_is_asked_and_the_prompt_fits() {
        let none = RunnerOptions::default();
        let trained = Some(131_072);
        let (options, adopted) = adopt(&none, &running(Some(8192)), 100, trained).unwrap();
        assert_eq!(options.num_ctx, Some(8192));
        assert_eq!(adopted, Some(8192));
        // The same context asked for: nothing adopted, nothing reloads.
        assert_eq!(
            adopt(&ctx(8192), &running(Some(8192)), 0, trained).unwrap(),
            (ctx(8192), None)
        );
        // Another context: Ollama would reload; no admission from /api/ps.
        assert!(adopt(&ctx(4096), &running(Some(8192)), 0, trained).is_none());
        // A loaded context too small for a 30 KB prompt is not adopted.
        assert!(adopt(&none, &running(Some(8192)), 30_000, trained).is_none());
        // The trained maximum may be Ollama's clamped default: sent as the loader sent it.
        assert_eq!(
            adopt(&none, &running(Some(131_072)), 0, trained).unwrap(),
            (none.clone(), None)
        );
        // Unknown trained context: nothing adopted.
        assert_eq!(
            adopt(&none, &running(Some(8192)), 0, None).unwrap(),
            (none.clone(), None)
        );
        // A server that does not report its context.
        assert!(adopt(&ctx(4096), &running(None), 0, trained).is_none());
        assert_eq!(
            adopt(&none, &running(None), 0, trained).unwrap(),
            (none, None)
        );
    }

    #[test]
    fn a_remembered_fix_replaces_runner_options_and_keeps_sampling() {
        let requested = RunnerOptions {
            temperature: Some(0.3),
            ..RunnerOptions::default()
        };
        let fix = RememberedFix {
            host: "h".into(),
            model: "m".into(),
            digest: "d".into(),
            requested: RunnerOptions::default(),
            options: ctx(16384),
            changes: Vec::new(),
            recorded_at: String::new(),
        };
        let sent = sending(&requested, Some(&fix));
        assert_eq!(sent.num_ctx, Some(16384));
        assert_eq!(sent.temperature, Some(0.3));
        assert_eq!(sending(&requested, None), requested);
    }
}
