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
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod admit;
mod check;
mod fix;
#[cfg(test)]
mod tests;

use crate::backend::{Backend, KeepAlive, RunnerOptions, RunningModel};
use crate::gpu::diagnose::Diagnosis;
use crate::gpu::fixes::FixStore;
use crate::gpu::policy::{GpuPolicy, MinFraction};
use crate::gpu::probe::{DeviceView, GpuProbe};

/// A first byte slower than this may come from a reload: look at `/api/ps` again before showing
/// it. A warm answer's first byte takes 80-110 ms on an H100; a reload takes seconds.
pub const RECHECK_AFTER: Duration = Duration::from_millis(300);

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

impl FixReport {
    /// The `[options]` lines of conductor.toml that make the fix part of the configuration,
    /// e.g. `num_ctx = 16384` (the runner options a fix changes).
    #[must_use]
    pub fn config_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(n) = self.options.num_ctx {
            lines.push(format!("num_ctx = {n}"));
        }
        if let Some(n) = self.options.num_gpu {
            lines.push(format!("num_gpu = {n}"));
        }
        lines
    }
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
    /// The backend reports no residency (it has no [`ModelServer`](crate::backend::ModelServer)): admitted unchecked under
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
    /// Changed at run time by [`ResidencyGuard::set_policy`] (a chat's `/policy`).
    policy: Mutex<GpuPolicy>,
    min_fraction: MinFraction,
    fixes: FixStore,
    cache: Mutex<Vec<CacheEntry>>,
    /// One check at a time: concurrent first requests wait for it instead of each preloading.
    checking: tokio::sync::Mutex<()>,
    /// The "residency not reported" notice was given (it is given once per guard).
    unreported_noticed: AtomicBool,
    /// The guards of single hosts made by [`ResidencyGuard::for_host`], by endpoint.
    hosts: Mutex<Vec<(String, Arc<ResidencyGuard>)>>,
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
            policy: Mutex::new(policy),
            min_fraction,
            fixes,
            cache: Mutex::new(Vec::new()),
            checking: tokio::sync::Mutex::new(()),
            unreported_noticed: AtomicBool::new(false),
            hosts: Mutex::new(Vec::new()),
        }
    }

    /// The guard of one host of a pool: the same policy, minimum share and fix file, the
    /// fixes keyed by that host, its own cache; the local GPU probe only for a host on this
    /// machine. Made once per host and kept, so its cache lasts as this guard's does.
    #[must_use]
    pub fn for_host(&self, backend: Arc<dyn Backend>) -> Arc<ResidencyGuard> {
        let endpoint = backend.endpoint();
        let mut hosts = self
            .hosts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, guard)) = hosts.iter().find(|(e, _)| *e == endpoint) {
            return Arc::clone(guard);
        }
        let probe: Arc<dyn GpuProbe> = if backend.is_local() {
            Arc::clone(&self.probe)
        } else {
            Arc::new(crate::gpu::probe::RemoteProbe)
        };
        let fixes = match self.fixes.path() {
            Some(path) => FixStore::new(path, endpoint.clone()),
            None => FixStore::disabled(endpoint.clone()),
        };
        let guard = Arc::new(
            Self::new(backend, probe, self.policy(), self.min_fraction).with_fix_store(fixes),
        );
        hosts.push((endpoint, Arc::clone(&guard)));
        guard
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
        *self
            .policy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Changes the policy from the next request on, for the guards of a pool's hosts too (a
    /// chat's `/policy`). Verdicts cached under the old policy are forgotten: a model admitted
    /// with a warning under `warn` is checked again under `enforce`.
    pub fn set_policy(&self, policy: GpuPolicy) {
        *self
            .policy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = policy;
        self.cache().clear();
        let hosts = self
            .hosts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (_, host) in hosts.iter() {
            host.set_policy(policy);
        }
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
    pub(super) fn meets_policy(&self, running: &RunningModel) -> bool {
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

    pub(super) fn remember(
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
}

/// Two option sets load the model the same way (only runner options matter).
pub(super) fn runner_options_equal(a: &RunnerOptions, b: &RunnerOptions) -> bool {
    a.runner_only() == b.runner_only()
}

/// The admitted runner options with this request's sampling options.
pub(super) fn merge_sampling(admitted: &RunnerOptions, request: &RunnerOptions) -> RunnerOptions {
    admitted.runner_only().or(request.clone())
}

fn seconds_until(rfc3339: &str) -> Option<Duration> {
    let at: jiff::Timestamp = rfc3339.parse().ok()?;
    let now = jiff::Timestamp::now();
    let span = at.duration_since(now);
    Duration::try_from(span).ok()
}
