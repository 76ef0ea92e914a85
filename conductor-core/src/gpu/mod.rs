//! The GPU-residency guard: know, enforce and explain whether the model runs on the GPU.
//!
//! - **Residency from Ollama** (`/api/ps`): fully resident ⇔ `size_vram == size`, Ollama's own
//!   rule for "100% GPU".
//! - **The device view from NVML** ([`GpuProbe`]): GPUs, their memory and compute processes.
//!   For a partial load, the memory NVML measures for the Ollama runner is the truth: Ollama's
//!   `size_vram` counts its compute-graph estimate as GPU memory, so on an H100 "28% GPU" was
//!   0 of 29 layers.
//! - **Policy** ([`GpuPolicy`]): enforce (refuse to generate), warn, fix (reload with options that
//!   fit, then enforce) or off; see [`ResidencyGuard`].
//! - **Diagnosis** ([`Diagnosis`]): the most likely cause, with evidence and a concrete fix.

mod diagnose;
mod fixes;
mod guard;
mod policy;
mod probe;
mod remedy;

pub use diagnose::{
    Cause, Diagnosis, Evidence, LoadEstimate, SettingSource, VRAM_MARGIN, diagnose,
    diagnose_failed_load, gb, gib, kv_bytes_per_token, share_line, suggested_context,
};
pub use fixes::{FIXES_FILE, FixStore, RememberedFix};
pub use guard::{
    Admission, AdmissionBasis, FixReport, RECHECK_AFTER, ResidencyGuard, ResidencyReport,
};
pub use policy::{GpuPolicy, MinFraction};
pub use probe::{
    DeviceView, GpuDevice, GpuProbe, GpuProcess, NvmlProbe, RemoteProbe, ScriptedProbe,
};
pub use remedy::Remedy;
