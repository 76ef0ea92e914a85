//! Shared helpers of the GPU tests: recorded NVML snapshots, guarded conductors, scripted probes.

use std::sync::Arc;

use conductor_core::gpu::{
    DeviceView, FixStore, GpuPolicy, GpuProbe, MinFraction, ResidencyGuard, ScriptedProbe,
};
use conductor_core::{
    Backend, Conductor, OllamaBackend, PersonalityCatalog, RequestDefaults, RunnerOptions,
};
use conductor_tests::{Residency, StandIn};

pub(crate) const LOAD_131K: u64 = 25_712_097_280;

pub(crate) fn nvml(tag: &str) -> DeviceView {
    let json = match tag {
        "a01" => include_str!("../../fixtures/h100/a01.nvml.json"),
        "b01" => include_str!("../../fixtures/h100/b01.nvml.json"),
        "c01" => include_str!("../../fixtures/h100/c01.nvml.json"),
        "d03" => include_str!("../../fixtures/h100/d03.nvml.json"),
        "d05" => include_str!("../../fixtures/h100/d05.nvml.json"),
        "d07" => include_str!("../../fixtures/h100/d07.nvml.json"),
        "a07" => include_str!("../../fixtures/h100/a07.after_unload.nvml.json"),
        other => panic!("no fixture {other}"),
    };
    ScriptedProbe::view_from_recording(json).unwrap()
}

pub(crate) fn backend(ollama: &StandIn) -> Arc<dyn Backend> {
    Arc::new(
        OllamaBackend::builder(ollama.host().parse().unwrap())
            .build()
            .unwrap(),
    )
}

pub(crate) fn guard(
    ollama: &StandIn,
    probe: impl GpuProbe + 'static,
    policy: GpuPolicy,
) -> ResidencyGuard {
    ResidencyGuard::new(backend(ollama), Arc::new(probe), policy, MinFraction::FULL)
}

/// A conductor for `model` speaking as Yollayah, guarded under `policy` with `probe`.
pub(crate) fn conductor_with(
    ollama: &StandIn,
    model: &str,
    probe: impl GpuProbe + 'static,
    policy: GpuPolicy,
) -> Conductor {
    Conductor::new(
        backend(ollama),
        PersonalityCatalog::builtin().load("yollayah").unwrap(),
        RequestDefaults::for_model(model),
    )
    .with_guard(Arc::new(guard(ollama, probe, policy)))
}

pub(crate) async fn diagnose(
    ollama: &StandIn,
    model: &str,
    residency: Residency,
    view: DeviceView,
) -> conductor_core::gpu::Diagnosis {
    ollama.set_residency(model, residency);
    let guard = guard(ollama, ScriptedProbe::new(view), GpuPolicy::Enforce);
    let report = guard
        .check(model, &RunnerOptions::default(), None)
        .await
        .unwrap();
    assert!(!report.resident);
    report.diagnosis.expect("a diagnosis when not resident")
}

#[derive(Debug)]
pub(crate) struct DeviceViewProbe(pub(crate) DeviceView);

impl GpuProbe for DeviceViewProbe {
    fn snapshot(&self) -> DeviceView {
        self.0.clone()
    }
}

/// Counts NVML snapshots, to prove a resident ask never touches the driver.
#[derive(Debug, Default)]
pub(crate) struct CountingProbe {
    view: Option<DeviceView>,
    snapshots: std::sync::atomic::AtomicUsize,
}

impl CountingProbe {
    pub(crate) fn with(view: DeviceView) -> Arc<Self> {
        Arc::new(Self {
            view: Some(view),
            snapshots: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    pub(crate) fn snapshots(&self) -> usize {
        self.snapshots.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl GpuProbe for CountingProbe {
    fn snapshot(&self) -> DeviceView {
        self.snapshots
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.view.clone().unwrap_or(DeviceView::Remote)
    }
}

pub(crate) fn guarded(
    ollama: &StandIn,
    model: &str,
    probe: Arc<dyn GpuProbe>,
    policy: GpuPolicy,
    store: Option<FixStore>,
) -> Conductor {
    let backend = backend(ollama);
    let mut guard = ResidencyGuard::new(Arc::clone(&backend), probe, policy, MinFraction::FULL);
    if let Some(store) = store {
        guard = guard.with_fix_store(store);
    }
    Conductor::new(
        backend,
        PersonalityCatalog::builtin().load("yollayah").unwrap(),
        RequestDefaults::for_model(model),
    )
    .with_guard(Arc::new(guard))
}

/// Another client (`ollama run`, an earlier conductor) loads `model` with this context.
pub(crate) async fn loaded_elsewhere(ollama: &StandIn, model: &str, num_ctx: u32) {
    backend(ollama)
        .server()
        .unwrap()
        .load_model(conductor_core::backend::LoadRequest {
            model: model.to_owned(),
            options: RunnerOptions {
                num_ctx: Some(num_ctx),
                ..RunnerOptions::default()
            },
            keep_alive: None,
        })
        .await
        .unwrap();
}
