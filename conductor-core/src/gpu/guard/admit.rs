//! Admission: from the cache, from `/api/ps` when the model is resident, else by loading and
//! checking; and the verdict under the policy.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tracing::{Instrument, debug, info, info_span, warn};

use super::check::unknown;
use super::{
    Admission, AdmissionBasis, FixReport, ResidencyGuard, ResidencyReport, merge_sampling,
};
use crate::backend::{ChatRequest, KeepAlive, RunnerOptions, RunningModel};
use crate::error::{Error, Result};
use crate::gpu::diagnose::{Cause, Diagnosis};
use crate::gpu::fixes::RememberedFix;
use crate::gpu::policy::GpuPolicy;

/// Room left for the answer when adopting a loaded context.
const ANSWER_ROOM_TOKENS: u64 = 1024;

impl ResidencyGuard {
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

    pub(super) async fn admit_sized(
        &self,
        model: &str,
        options: &RunnerOptions,
        keep_alive: Option<KeepAlive>,
        prompt_bytes: usize,
    ) -> Result<Admission> {
        if self.policy() == GpuPolicy::Off {
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
        let span = info_span!("gpu_check", model, policy = %self.policy());
        async {
            // What to send: the request, or under `fix` the options remembered to fit for it.
            let mut remembered = (self.policy() == GpuPolicy::Fix)
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
    pub(super) fn unreported(&self, model: &str, options: &RunnerOptions) -> Admission {
        let first = !self.unreported_noticed.swap(true, Ordering::Relaxed);
        if first {
            info!(model, policy = %self.policy(), "residency not reported by this backend; admitted unchecked");
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
    pub(super) async fn trained_context(&self, model: &str, running: &RunningModel) -> Option<u64> {
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

    pub(super) fn void_fix(&self, model: &str, fix: &RememberedFix) -> Option<RememberedFix> {
        info!(
            model,
            "the model changed since its fix was remembered; forgetting the fix"
        );
        if let Err(err) = self.fixes.forget(Some(&fix.model)) {
            warn!(%err, "cannot update the remembered GPU fixes");
        }
        None
    }

    pub(super) fn remembered_report(&self, fix: RememberedFix) -> FixReport {
        FixReport {
            model: fix.model,
            changes: fix.changes,
            options: fix.options,
            remembered: true,
            saved_in: self.fixes.path().map(ToOwned::to_owned),
        }
    }

    pub(super) async fn decide(
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
            match self.policy() {
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
}

/// The runner options to send: the request's, or a remembered fix's in their place.
pub(super) fn sending(requested: &RunnerOptions, fix: Option<&RememberedFix>) -> RunnerOptions {
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
pub(super) fn adopt(
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
