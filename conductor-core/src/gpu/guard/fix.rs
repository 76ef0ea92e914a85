//! The `fix` policy: change the options the diagnosis points at, reload, check again, and
//! remember what worked; and loads that failed for want of GPU memory.

use std::sync::Arc;

use tracing::{info, warn};

use super::check::unknown;
use super::{
    Admission, AdmissionBasis, FixReport, ResidencyGuard, ResidencyReport, merge_sampling,
};
use crate::backend::{KeepAlive, RunnerOptions};
use crate::error::{Error, Result};
use crate::gpu::diagnose::{Cause, Diagnosis, Evidence, diagnose_failed_load, suggested_context};
use crate::gpu::fixes::RememberedFix;
use crate::gpu::policy::GpuPolicy;
use crate::gpu::probe::DeviceView;
use std::path::PathBuf;

impl ResidencyGuard {
    /// Applies what the diagnosis points at (a smaller context, no layer cap), reloads and
    /// checks again, up to twice; fails with the last diagnosis when the model still is not
    /// resident or nothing can be changed. A fix that works is remembered for `requested`.
    pub(super) async fn fix(
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

    pub(super) fn save_fix(
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
        if self.policy() != GpuPolicy::Fix {
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

    pub(super) async fn explain_failed_load(
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
}
