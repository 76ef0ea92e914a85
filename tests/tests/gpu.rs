//! The GPU-residency guard against the stand-in, on the numbers recorded on a real H100
//! (`tests/fixtures/h100/`: `/api/ps` bodies and NVML snapshots taken beside a real Ollama).
//!
//! One test binary, split by theme into the modules beside this file (`gpu/`): what the
//! guard diagnoses, how each policy acts on it, and models already loaded by someone else.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

// Beside this file, not in `tests/`, where cargo would build each as a test binary of its own.
#[path = "gpu/common.rs"]
mod common;
#[path = "gpu/diagnosis.rs"]
mod diagnosis;
#[path = "gpu/loaded_models.rs"]
mod loaded_models;
#[path = "gpu/policies.rs"]
mod policies;
