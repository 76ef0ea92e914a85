//! The GPU-residency guard against the stand-in, on the numbers recorded on a real H100
//! (`tests/fixtures/h100/`: `/api/ps` bodies and NVML snapshots taken beside a real Ollama).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use conductor_core::gpu::{
    Cause, DeviceView, FixStore, GpuDevice, GpuPolicy, GpuProbe, MinFraction, RECHECK_AFTER,
    Remedy, RemoteProbe, ResidencyGuard, ScriptedProbe, SettingSource,
};
use conductor_core::{
    Backend, ChatEvent, Conductor, Error, KeepAlive, OllamaBackend, PersonalityCatalog,
    RequestDefaults, RunnerOptions,
};
use conductor_tests::{Residency, StandIn};
use futures::StreamExt;

const LOAD_131K: u64 = 25_712_097_280;

fn nvml(tag: &str) -> DeviceView {
    let json = match tag {
        "a01" => include_str!("../fixtures/h100/a01.nvml.json"),
        "b01" => include_str!("../fixtures/h100/b01.nvml.json"),
        "c01" => include_str!("../fixtures/h100/c01.nvml.json"),
        "d03" => include_str!("../fixtures/h100/d03.nvml.json"),
        "d05" => include_str!("../fixtures/h100/d05.nvml.json"),
        "d07" => include_str!("../fixtures/h100/d07.nvml.json"),
        "a07" => include_str!("../fixtures/h100/a07.after_unload.nvml.json"),
        other => panic!("no fixture {other}"),
    };
    ScriptedProbe::view_from_recording(json).unwrap()
}

fn backend(ollama: &StandIn) -> Arc<dyn Backend> {
    Arc::new(
        OllamaBackend::builder(ollama.host().parse().unwrap())
            .build()
            .unwrap(),
    )
}

fn guard(ollama: &StandIn, probe: impl GpuProbe + 'static, policy: GpuPolicy) -> ResidencyGuard {
    ResidencyGuard::new(backend(ollama), Arc::new(probe), policy, MinFraction::FULL)
}

/// A conductor for `model` speaking as Yollayah, guarded under `policy` with `probe`.
fn conductor_with(
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

async fn diagnose(
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

#[tokio::test]
async fn fully_resident_passes_and_reports_the_runner() {
    let ollama = StandIn::start().await;
    ollama.set_residency("m3b", Residency::gpu(25_182_500_864).context(131_072));
    let guard = guard(&ollama, ScriptedProbe::new(nvml("a01")), GpuPolicy::Enforce);
    let report = guard
        .check("m3b", &RunnerOptions::default(), None)
        .await
        .unwrap();
    assert!(report.resident);
    assert!(report.diagnosis.is_none());
    assert_eq!(
        report.running.as_ref().unwrap().processor().to_string(),
        "100% GPU"
    );
    // NVML measured the runner at 18.7 GiB of the 25.2 GB Ollama counts (the graph estimate).
    let runner = report.runner_gpu_memory().unwrap();
    assert!(
        (19_000_000_000..21_000_000_000).contains(&runner),
        "{runner}"
    );
    assert!(
        guard
            .admit("m3b", &RunnerOptions::default(), None)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn num_gpu_1_in_the_modelfile() {
    let ollama = StandIn::start().await;
    let d = diagnose(
        &ollama,
        "m3b-numgpu1",
        Residency::split(LOAD_131K, 7_909_500_928).context(131_072),
        nvml("b01"),
    )
    .await;
    assert_eq!(
        d.cause,
        Cause::NumGpu {
            num_gpu: 1,
            layers: 29,
            source: SettingSource::Modelfile
        }
    );
    assert_eq!(d.processor().unwrap().to_string(), "69%/31% CPU/GPU");
    assert!(
        d.summary().contains("only 1 of its 29 layers"),
        "{}",
        d.summary()
    );
    assert!(
        d.summary().contains("num_gpu counts layers"),
        "{}",
        d.summary()
    );
    assert!(
        d.fix().contains("remove `PARAMETER num_gpu`"),
        "{}",
        d.fix()
    );
    assert_eq!(
        d.share_line().unwrap(),
        "Ollama reports 31% GPU; the runner holds 2.2 GiB of a 25.7 GB load: effectively CPU"
    );
}

#[tokio::test]
async fn num_gpu_0_in_the_modelfile_is_100_percent_cpu() {
    let ollama = StandIn::start().await;
    let d = diagnose(
        &ollama,
        "m3b-cpu",
        Residency::split(18_446_446_592, 0).context(131_072),
        nvml("c01"),
    )
    .await;
    assert_eq!(d.processor().unwrap().to_string(), "100% CPU");
    assert!(
        matches!(
            d.cause,
            Cause::NumGpu {
                num_gpu: 0,
                layers: 29,
                source: SettingSource::Modelfile
            }
        ),
        "{:?}",
        d.cause
    );
}

#[tokio::test]
async fn num_gpu_in_the_request_options_names_the_request() {
    let ollama = StandIn::start().await;
    ollama.set_residency(
        "m3b",
        Residency::split(LOAD_131K, 7_909_500_928).context(131_072),
    );
    let guard = guard(&ollama, ScriptedProbe::new(nvml("b01")), GpuPolicy::Enforce);
    let options = RunnerOptions {
        num_gpu: Some(1),
        ..RunnerOptions::default()
    };
    let report = guard.check("m3b", &options, None).await.unwrap();
    let d = report.diagnosis.unwrap();
    assert!(matches!(
        d.cause,
        Cause::NumGpu {
            num_gpu: 1,
            source: SettingSource::Request,
            ..
        }
    ));
    assert!(d.fix().contains("remove num_gpu from the options"));
}

#[tokio::test]
async fn ollamas_default_context_with_6_gb_free() {
    let ollama = StandIn::start().await;
    let d = diagnose(
        &ollama,
        "m3b",
        Residency::split(LOAD_131K, 7_265_650_688).context(131_072),
        nvml("d05"),
    )
    .await;
    assert_eq!(d.processor().unwrap().to_string(), "72%/28% CPU/GPU");
    let Cause::ContextTooLarge {
        num_ctx,
        source,
        kv_bytes,
        max_fitting,
    } = d.cause.clone()
    else {
        panic!("{:?}", d.cause);
    };
    assert_eq!(num_ctx, 131_072);
    assert_eq!(source, SettingSource::OllamaDefault);
    // 112 KiB per token: 14 GiB at 131072, as Ollama's own log said.
    assert_eq!(kv_bytes, 131_072 * 114_688);
    // num_ctx 4096 stayed 100% on the GPU with 6 GB free: the estimate must allow at least that.
    assert!((4096..40_000).contains(&max_fitting), "{max_fitting}");
    assert!(d.summary().contains("14.0 GiB KV cache"), "{}", d.summary());
    // The library says what to change as data, and words it without command-line flags.
    assert!(
        matches!(
            d.remedies()[..],
            [Remedy::SetContext { num_ctx: 8192, .. }, Remedy::FixPolicy]
        ),
        "{:?}",
        d.remedies()
    );
    assert!(
        d.fix().contains("num_ctx = 8192 under [options]"),
        "{}",
        d.fix()
    );
    assert!(
        !d.fix().contains("--"),
        "no CLI flags in the library: {}",
        d.fix()
    );
    assert!(
        d.notes.iter().any(|n| n.contains("Ollama chose 131072")),
        "{:?}",
        d.notes
    );
    assert!(
        d.notes
            .iter()
            .any(|n| n.contains("other processes hold") && n.contains("python3")),
        "{:?}",
        d.notes
    );
    assert!(
        d.notes.iter().any(|n| n.starts_with(
            "Ollama reports 28% GPU; the runner holds 1.6 GiB of a 25.7 GB load: effectively CPU"
        )),
        "{:?}",
        d.notes
    );
}

#[tokio::test]
async fn a_modelfile_context_names_the_modelfile() {
    let ollama = StandIn::start().await;
    let d = diagnose(
        &ollama,
        "m3b-ctx",
        Residency::split(LOAD_131K, 7_265_650_688).context(131_072),
        nvml("d03"),
    )
    .await;
    assert!(
        matches!(
            d.cause,
            Cause::ContextTooLarge {
                source: SettingSource::Modelfile,
                ..
            }
        ),
        "{:?}",
        d.cause
    );
    assert!(d.fix().contains("PARAMETER num_ctx"));
}

#[tokio::test]
async fn a_model_absent_from_ps_after_loading() {
    let ollama = StandIn::start().await;
    ollama.set_residency("m3b", Residency::absent());
    let guard = guard(&ollama, ScriptedProbe::new(nvml("a07")), GpuPolicy::Enforce);
    let err = guard
        .admit("m3b", &RunnerOptions::default(), None)
        .await
        .unwrap_err();
    let Error::NotResident(d) = err else {
        panic!("{err:?}")
    };
    assert_eq!(d.cause, Cause::NotLoaded);
    assert!(d.summary().contains("not loaded"));
    // It tried loading twice before concluding.
    assert_eq!(ollama.requests_to("/api/generate").len(), 2);
}

#[tokio::test]
async fn a_server_without_gpu_access_beside_an_idle_gpu() {
    let ollama = StandIn::start().await;
    let d = diagnose(
        &ollama,
        "m3b",
        Residency::split(18_446_446_592, 0).context(131_072),
        nvml("a07"),
    )
    .await;
    assert!(
        matches!(d.cause, Cause::NoGpuAccess { .. }),
        "{:?}",
        d.cause
    );
    assert!(
        d.summary().contains("without GPU access"),
        "{}",
        d.summary()
    );
    assert!(d.fix().contains("--gpus all"));
}

#[tokio::test]
async fn a_partial_load_beside_free_vram_and_no_runner_is_a_server_without_this_gpu() {
    // What the GPU machine showed: a server reporting 72%/28% while the local H100 had 70 GiB
    // free, another process held 8.5 GiB, and no Ollama process was on the card.
    let ollama = StandIn::start().await;
    let mut view = nvml("d05");
    if let DeviceView::Devices { gpus, .. } = &mut view {
        gpus[0].memory_free = 75_900_000_000;
        gpus[0].processes.retain(|p| !p.is_ollama());
        gpus[0].processes[0].used_memory = Some(9_133_000_000);
    }
    let d = diagnose(
        &ollama,
        "m3b",
        Residency::split(LOAD_131K, 7_265_650_688).context(131_072),
        view,
    )
    .await;
    assert!(
        matches!(d.cause, Cause::NoGpuAccess { .. }),
        "{:?}",
        d.cause
    );
}

#[tokio::test]
async fn no_nvidia_driver_here() {
    let ollama = StandIn::start().await;
    let view = DeviceView::NoNvml {
        reason: "the NVIDIA management library (libnvidia-ml) is not installed".into(),
    };
    let d = diagnose(
        &ollama,
        "tiny",
        Residency::split(2_375_680, 0).context(4096),
        view,
    )
    .await;
    assert!(
        matches!(&d.cause, Cause::NoGpu { reason } if reason.contains("libnvidia-ml")),
        "{:?}",
        d.cause
    );
}

#[tokio::test]
async fn a_remote_server_relies_on_ps_alone() {
    let ollama = StandIn::start().await;
    let d = diagnose(
        &ollama,
        "m3b",
        Residency::split(18_446_446_592, 0).context(131_072),
        DeviceView::Remote,
    )
    .await;
    assert_eq!(d.cause, Cause::NoGpuOnServer);
    assert!(d.runner_gpu_memory.is_none());
    // Partial on a remote server: Ollama's VRAM figure bounds the context that fits.
    ollama.evict_all();
    let d = diagnose(
        &ollama,
        "m3b",
        Residency::split(LOAD_131K, 7_265_650_688).context(131_072),
        DeviceView::Remote,
    )
    .await;
    assert!(
        matches!(
            d.cause,
            Cause::ContextTooLarge {
                source: SettingSource::OllamaDefault,
                ..
            }
        ),
        "{:?}",
        d.cause
    );
}

#[tokio::test]
async fn vram_held_by_another_process() {
    let ollama = StandIn::start().await;
    // m3b-4k (4.2 GB at num_ctx 4096) with a process holding all but ~1 GiB.
    let mut view = nvml("d05");
    if let DeviceView::Devices { gpus, .. } = &mut view {
        gpus[0].memory_free = 1 << 30;
        gpus[0].processes.retain(|p| !p.is_ollama());
    }
    let d = diagnose(
        &ollama,
        "m3b-4k",
        Residency::split(4_152_782_848, 1_000_000_000).context(4096),
        view,
    )
    .await;
    let Cause::VramHeldByOthers { held, processes } = &d.cause else {
        panic!("{:?}", d.cause)
    };
    assert!(*held > 70 << 30);
    assert!(
        processes[0].label().starts_with("python3"),
        "{:?}",
        processes
    );
    assert!(d.fix().contains("free the GPU"));
}

#[tokio::test]
async fn a_model_larger_than_the_card() {
    let ollama = StandIn::start().await;
    let view = DeviceView::Devices {
        driver: None,
        gpus: vec![GpuDevice {
            index: 0,
            name: "Small GPU".into(),
            memory_total: 2 << 30,
            memory_used: 0,
            memory_free: 2 << 30,
            utilization: Some(0),
            temperature: None,
            processes: vec![],
        }],
    };
    let d = diagnose(
        &ollama,
        "m3b-4k",
        Residency::split(4_152_782_848, 1_500_000_000).context(4096),
        view,
    )
    .await;
    assert!(
        matches!(d.cause, Cause::ModelTooLarge { .. }),
        "{:?}",
        d.cause
    );
}

#[tokio::test]
async fn the_check_is_cached_across_turns_and_renewed_on_change() {
    let ollama = StandIn::start().await;
    let conductor = conductor_with(&ollama, "tiny", RemoteProbe, GpuPolicy::Enforce);
    let mut chat = conductor.chat();
    for turn in 0..5 {
        chat.send_collect(&format!("turn {turn}")).await.unwrap();
    }
    // Not loaded: a look, a preload, a look; then four turns from the cache.
    let preloads = || ollama.requests_to("/api/generate").len();
    assert_eq!(preloads(), 1, "one check for five turns");
    assert_eq!(ollama.requests_to("/api/ps").len(), 2);

    // Other runner options: a different load, checked again.
    let guard = conductor.guard().unwrap();
    let options = RunnerOptions {
        num_ctx: Some(2048),
        ..RunnerOptions::default()
    };
    guard.admit("tiny", &options, None).await.unwrap();
    assert_eq!(preloads(), 2);
    assert_eq!(ollama.requests_to("/api/ps").len(), 4);
    // Sampling options do not change the load: still cached.
    let sampling = RunnerOptions {
        num_ctx: Some(2048),
        temperature: Some(0.1),
        ..RunnerOptions::default()
    };
    let admitted = guard.admit("tiny", &sampling, None).await.unwrap();
    assert_eq!(admitted.options.temperature, Some(0.1));
    assert_eq!(ollama.requests_to("/api/ps").len(), 4);

    // When its keep-alive expires, the model may be gone: checked again.
    let short = Some(KeepAlive::For(Duration::from_millis(150)));
    guard
        .admit("m3b", &RunnerOptions::default(), short)
        .await
        .unwrap();
    guard
        .admit("m3b", &RunnerOptions::default(), short)
        .await
        .unwrap();
    assert_eq!(preloads(), 3);
    tokio::time::sleep(Duration::from_millis(300)).await;
    guard
        .admit("m3b", &RunnerOptions::default(), short)
        .await
        .unwrap();
    assert_eq!(
        preloads(),
        4,
        "unloaded after its keep-alive: loaded and checked"
    );

    // Asked explicitly (tiny was evicted by m3b: loaded and checked again).
    guard.invalidate("tiny");
    let looks = ollama.requests_to("/api/ps").len();
    chat.send_collect("again").await.unwrap();
    assert_eq!(preloads(), 5);
    assert_eq!(ollama.requests_to("/api/ps").len(), looks + 2);
}

#[tokio::test]
async fn the_preload_sends_the_same_options_as_the_requests() {
    let ollama = StandIn::start().await;
    let mut defaults = RequestDefaults::for_model("tiny");
    defaults.options.num_ctx = Some(2048);
    defaults.keep_alive = Some(KeepAlive::For(Duration::from_secs(1800)));
    let conductor = Conductor::new(
        backend(&ollama),
        PersonalityCatalog::builtin().load("forge").unwrap(),
        defaults,
    )
    .with_guard(Arc::new(guard(&ollama, RemoteProbe, GpuPolicy::Enforce)));
    conductor.ask_collect("hi").await.unwrap();
    let preload = ollama
        .requests_to("/api/generate")
        .pop()
        .unwrap()
        .json
        .unwrap();
    let chat = ollama.requests_to("/api/chat").pop().unwrap().json.unwrap();
    assert_eq!(preload["options"], chat["options"]);
    assert_eq!(preload["keep_alive"], chat["keep_alive"]);
    // The same options: the stand-in (like Ollama) did not reload for the chat.
    assert_eq!(ollama.loaded_models(), vec!["tiny:latest".to_owned()]);
}

#[tokio::test]
async fn enforce_refuses_before_generating() {
    let ollama = StandIn::start().await;
    ollama.set_residency(
        "m3b-numgpu1",
        Residency::split(LOAD_131K, 7_909_500_928).context(131_072),
    );
    let conductor = conductor_with(
        &ollama,
        "m3b-numgpu1",
        ScriptedProbe::new(nvml("b01")),
        GpuPolicy::Enforce,
    );
    let err = conductor.ask("hi").await.err().unwrap();
    assert!(matches!(err, Error::NotResident(_)), "{err:?}");
    assert!(err.to_string().contains("69%/31% CPU/GPU"), "{err}");
    assert!(
        ollama.requests_to("/api/chat").is_empty(),
        "no generation under enforce"
    );
}

#[tokio::test]
async fn warn_generates_after_a_warning_event() {
    let ollama = StandIn::start().await;
    ollama.reply_with(&["still", " answered"]);
    ollama.set_residency(
        "m3b-numgpu1",
        Residency::split(LOAD_131K, 7_909_500_928).context(131_072),
    );
    let conductor = conductor_with(
        &ollama,
        "m3b-numgpu1",
        ScriptedProbe::new(nvml("b01")),
        GpuPolicy::Warn,
    );
    let mut stream = conductor.ask("hi").await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    let ChatEvent::Warning(d) = first else {
        panic!("{first:?}")
    };
    assert!(matches!(d.cause, Cause::NumGpu { .. }));
    let rest: Vec<_> = stream.collect().await;
    assert!(
        rest.iter()
            .any(|e| matches!(e, Ok(ChatEvent::Content(t)) if t == "still"))
    );
}

#[tokio::test]
async fn fix_shrinks_the_context_reloads_and_reports_exactly_what_changed() {
    let ollama = StandIn::start().await;
    ollama.set_residency(
        "m3b",
        Residency::split(LOAD_131K, 7_265_650_688).context(131_072),
    );
    ollama.set_residency_if_option("m3b", "num_ctx", Residency::gpu(4_152_782_848));
    let conductor = conductor_with(
        &ollama,
        "m3b",
        ScriptedProbe::new(nvml("d05")),
        GpuPolicy::Fix,
    );
    let mut chat = conductor.chat();
    let mut turn = chat.send("hi").await.unwrap();
    let first = turn.next().await.unwrap().unwrap();
    let ChatEvent::Fixed(fix) = first else {
        panic!("{first:?}")
    };
    assert_eq!(fix.changes.len(), 1);
    assert!(
        fix.changes[0].starts_with("num_ctx 131072 (from Ollama's own default) → "),
        "{:?}",
        fix.changes
    );
    let new_ctx = fix.options.num_ctx.unwrap();
    assert!((4096..=32_768).contains(&new_ctx), "{new_ctx}");
    while turn.next().await.is_some() {}
    drop(turn);
    // The generation and the next turns send the fixed context (no reload, no re-check).
    chat.send_collect("again").await.unwrap();
    for request in ollama.requests_to("/api/chat") {
        assert_eq!(
            request.json.unwrap()["options"]["num_ctx"],
            u64::from(new_ctx)
        );
    }
    assert_eq!(
        ollama.requests_to("/api/ps").len(),
        3,
        "a look, the check, the fix's re-check; then cached"
    );
}

#[tokio::test]
async fn fix_lifts_a_num_gpu_cap_from_the_modelfile() {
    let ollama = StandIn::start().await;
    ollama.set_residency(
        "m3b-numgpu1",
        Residency::split(LOAD_131K, 7_909_500_928).context(131_072),
    );
    ollama.set_residency_if_option(
        "m3b-numgpu1",
        "num_gpu",
        Residency::gpu(LOAD_131K).context(131_072),
    );
    let guard = guard(&ollama, ScriptedProbe::new(nvml("b01")), GpuPolicy::Fix);
    let admission = guard
        .admit("m3b-numgpu1", &RunnerOptions::default(), None)
        .await
        .unwrap();
    let fix = admission.fixed.unwrap();
    assert_eq!(
        fix.changes,
        vec!["num_gpu 1 (from the model's Modelfile) → 29 (all layers)".to_owned()]
    );
    assert_eq!(admission.options.num_gpu, Some(29));
}

#[tokio::test]
async fn fix_gives_up_with_the_diagnosis_when_nothing_can_change() {
    let ollama = StandIn::start().await;
    let guard = guard(
        &ollama,
        DeviceViewProbe(DeviceView::NoNvml {
            reason: "no driver".into(),
        }),
        GpuPolicy::Fix,
    );
    ollama.set_residency("tiny", Residency::split(2_375_680, 0).context(4096));
    let err = guard
        .admit("tiny", &RunnerOptions::default(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::NotResident(ref d) if matches!(d.cause, Cause::NoGpu { .. })),
        "{err:?}"
    );
}

#[derive(Debug)]
struct DeviceViewProbe(DeviceView);

impl GpuProbe for DeviceViewProbe {
    fn snapshot(&self) -> DeviceView {
        self.0.clone()
    }
}

#[tokio::test]
async fn off_does_not_check() {
    let ollama = StandIn::start().await;
    let guard = guard(&ollama, RemoteProbe, GpuPolicy::Off);
    guard
        .admit("tiny", &RunnerOptions::default(), None)
        .await
        .unwrap();
    assert!(ollama.requests_to("/api/ps").is_empty());
}

/// Runs the real NVML probe; skips cleanly where there is no NVIDIA driver.
#[test]
fn real_nvml_probe_when_available() {
    use conductor_core::gpu::NvmlProbe;
    match NvmlProbe.snapshot() {
        DeviceView::NoNvml { reason } => eprintln!("skipped: no NVML here ({reason})"),
        DeviceView::Devices { driver, gpus } => {
            println!("driver {driver:?}");
            for gpu in &gpus {
                println!(
                    "GPU {} {}: {} MiB total, {} MiB free, util {:?}%, {} processes",
                    gpu.index,
                    gpu.name,
                    gpu.memory_total >> 20,
                    gpu.memory_free >> 20,
                    gpu.utilization,
                    gpu.processes.len()
                );
                assert!(gpu.memory_total >= gpu.memory_free);
                for p in &gpu.processes {
                    println!("  {} {:?} MiB", p.label(), p.used_memory.map(|m| m >> 20));
                }
            }
        }
        DeviceView::Remote => unreachable!(),
    }
}

/// Counts NVML snapshots, to prove a resident ask never touches the driver.
#[derive(Debug, Default)]
struct CountingProbe {
    view: Option<DeviceView>,
    snapshots: std::sync::atomic::AtomicUsize,
}

impl CountingProbe {
    fn with(view: DeviceView) -> Arc<Self> {
        Arc::new(Self {
            view: Some(view),
            snapshots: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    fn snapshots(&self) -> usize {
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

fn guarded(
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
async fn loaded_elsewhere(ollama: &StandIn, model: &str, num_ctx: u32) {
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

#[tokio::test]
async fn a_resident_model_is_admitted_from_ps_without_a_preload_or_nvml() {
    let ollama = StandIn::start().await;
    loaded_elsewhere(&ollama, "m3b", 8192).await;
    let state = tempfile::tempdir().unwrap();
    let store = FixStore::new(state.path().join("gpu-fixes.json"), ollama.host());
    let probe = CountingProbe::with(nvml("a01"));
    let process = || {
        guarded(
            &ollama,
            "m3b",
            probe.clone(),
            GpuPolicy::Enforce,
            Some(store.clone()),
        )
    };
    // The first process on this machine learns the model's trained context (once per digest).
    let before = ollama.requests().len();
    process().ask_collect("hi").await.unwrap();
    let paths: Vec<String> = ollama.requests()[before..]
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(paths, ["/api/ps", "/api/show", "/api/chat"]);
    // Every later process: one look, then the answer.
    let before = ollama.requests().len();
    let answer = process().ask_collect("hi").await.unwrap();
    let paths: Vec<String> = ollama.requests()[before..]
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(paths, ["/api/ps", "/api/chat"], "one look, then the answer");
    assert_eq!(
        probe.snapshots(),
        0,
        "NVML is not touched for a resident model"
    );
    // No num_ctx was asked for: the loaded context is adopted, so Ollama does not reload.
    let chat = ollama.requests_to("/api/chat").pop().unwrap().json.unwrap();
    assert_eq!(chat["options"]["num_ctx"], 8192);
    let stats = answer.completion.unwrap().stats;
    assert!(
        stats.load_duration < Duration::from_millis(200),
        "reloaded: {stats:?}"
    );
}

#[tokio::test]
async fn a_model_loaded_with_another_context_is_loaded_and_checked() {
    let ollama = StandIn::start().await;
    loaded_elsewhere(&ollama, "m3b", 8192).await;
    let mut defaults = RequestDefaults::for_model("m3b");
    defaults.options.num_ctx = Some(4096);
    let probe = CountingProbe::with(nvml("a01"));
    let guard = ResidencyGuard::new(
        backend(&ollama),
        probe.clone(),
        GpuPolicy::Enforce,
        MinFraction::FULL,
    );
    let conductor = Conductor::new(
        backend(&ollama),
        PersonalityCatalog::builtin().load("forge").unwrap(),
        defaults,
    )
    .with_guard(Arc::new(guard));
    conductor.ask_collect("hi").await.unwrap();
    let preload = ollama
        .requests_to("/api/generate")
        .pop()
        .unwrap()
        .json
        .unwrap();
    assert_eq!(preload["options"]["num_ctx"], 4096, "loaded as asked");
    let chat = ollama.requests_to("/api/chat").pop().unwrap().json.unwrap();
    assert_eq!(chat["options"]["num_ctx"], 4096);
    assert_eq!(probe.snapshots(), 0, "resident after the load: no NVML");
}

#[tokio::test]
async fn a_loaded_context_too_small_for_the_prompt_is_not_adopted() {
    let ollama = StandIn::start().await;
    loaded_elsewhere(&ollama, "m3b", 2048).await;
    let conductor = guarded(
        &ollama,
        "m3b",
        Arc::new(RemoteProbe),
        GpuPolicy::Enforce,
        None,
    );
    let long_question = "why? ".repeat(2000); // ~10 KB: more than 2048 tokens leave room for
    conductor.ask_collect(&long_question).await.unwrap();
    let chat = ollama.requests_to("/api/chat").pop().unwrap().json.unwrap();
    assert!(chat["options"].get("num_ctx").is_none(), "{chat}");
    assert_eq!(
        ollama.requests_to("/api/generate").len(),
        2,
        "loaded and checked"
    );
}

#[tokio::test]
async fn a_slow_first_byte_from_a_reload_is_checked_before_anything_is_shown() {
    let ollama = StandIn::start().await;
    loaded_elsewhere(&ollama, "m3b", 8192).await;
    // The request's num_batch (not shown by /api/ps) makes Ollama reload it, onto the CPU.
    ollama.set_residency_if_option(
        "m3b",
        "num_batch",
        Residency::split(LOAD_131K, 7_265_650_688).context(8192),
    );
    ollama.set_default_reply(
        conductor_tests::Reply::tokens(&["cpu", " words"])
            .first_byte_delay(RECHECK_AFTER + Duration::from_millis(50)),
    );
    for policy in [GpuPolicy::Enforce, GpuPolicy::Warn] {
        let mut defaults = RequestDefaults::for_model("m3b");
        defaults.options.num_batch = Some(256);
        let guard = ResidencyGuard::new(
            backend(&ollama),
            Arc::new(ScriptedProbe::new(nvml("d05"))),
            policy,
            MinFraction::FULL,
        );
        // Resident with the same context: admitted from /api/ps.
        ollama.evict_all();
        loaded_elsewhere(&ollama, "m3b", 8192).await;
        let conductor = Conductor::new(
            backend(&ollama),
            PersonalityCatalog::builtin().load("forge").unwrap(),
            defaults,
        )
        .with_guard(Arc::new(guard));
        let result = conductor.ask("hi").await;
        match policy {
            GpuPolicy::Enforce => {
                let err = result.err().unwrap();
                assert!(matches!(err, Error::NotResident(_)), "{err:?}");
            }
            _ => {
                let mut stream = result.unwrap();
                let first = stream.next().await.unwrap().unwrap();
                assert!(matches!(first, ChatEvent::Warning(_)), "{first:?}");
                assert!(matches!(
                    stream.next().await.unwrap().unwrap(),
                    ChatEvent::Content(t) if t == "cpu"
                ));
            }
        }
    }
}

#[tokio::test]
async fn a_fast_first_byte_costs_no_second_look() {
    let ollama = StandIn::start().await;
    loaded_elsewhere(&ollama, "m3b", 8192).await;
    let conductor = guarded(
        &ollama,
        "m3b",
        Arc::new(RemoteProbe),
        GpuPolicy::Enforce,
        None,
    );
    let mut chat = conductor.chat();
    for turn in 0..3 {
        chat.send_collect(&format!("turn {turn}")).await.unwrap();
    }
    assert_eq!(ollama.requests_to("/api/ps").len(), 1);
    assert!(
        ollama.requests_to("/api/generate").len() == 1,
        "only the other client's load"
    );
}

#[tokio::test]
async fn a_fix_is_paid_once_and_remembered_across_processes() {
    let ollama = StandIn::start().await;
    let state = tempfile::tempdir().unwrap();
    let path = state.path().join("gpu-fixes.json");
    // Ollama's default context does not fit beside 6 GB free; any smaller num_ctx does.
    ollama.set_residency(
        "m3b",
        Residency::split(LOAD_131K, 7_265_650_688).context(131_072),
    );
    ollama.set_residency_if_option("m3b", "num_ctx", Residency::gpu(4_152_782_848));
    let store = || FixStore::new(&path, ollama.host());
    let process = || {
        guarded(
            &ollama,
            "m3b",
            Arc::new(ScriptedProbe::new(nvml("d05"))),
            GpuPolicy::Fix,
            Some(store()),
        )
    };

    // First process: loads at the default, diagnoses, fixes, remembers.
    let mut stream = process().ask("hi").await.unwrap();
    let ChatEvent::Fixed(fix) = stream.next().await.unwrap().unwrap() else {
        panic!("no fix reported")
    };
    while stream.next().await.is_some() {}
    assert!(!fix.remembered);
    assert_eq!(fix.saved_in.as_deref(), Some(path.as_path()));
    let fixed_ctx = fix.options.num_ctx.unwrap();
    let remembered = store().find("m3b", &RunnerOptions::default()).unwrap();
    assert_eq!(remembered.options.num_ctx, Some(fixed_ctx));
    assert_eq!(remembered.host, ollama.host());

    // Second process, model still loaded: admitted from /api/ps, no load at all.
    let loads = ollama.requests_to("/api/generate").len();
    process().ask_collect("again").await.unwrap();
    assert_eq!(ollama.requests_to("/api/generate").len(), loads);

    // Third process after the model was unloaded: loads once, with the options that fit.
    ollama.evict_all();
    let mut stream = process().ask("and again").await.unwrap();
    let ChatEvent::Fixed(fix) = stream.next().await.unwrap().unwrap() else {
        panic!("the remembered fix is reported")
    };
    assert!(fix.remembered);
    while stream.next().await.is_some() {}
    let new_loads = &ollama.requests_to("/api/generate")[loads..];
    assert_eq!(new_loads.len(), 1, "one load, no reload");
    assert_eq!(
        new_loads[0].json.as_ref().unwrap()["options"]["num_ctx"],
        u64::from(fixed_ctx)
    );
    for request in ollama.requests_to("/api/chat") {
        assert_eq!(
            request.json.unwrap()["options"]["num_ctx"],
            u64::from(fixed_ctx)
        );
    }

    // A re-created model (another digest) voids the fix.
    let mut changed = conductor_tests::ModelFixture::h100("m3b");
    changed.digest = "0".repeat(64);
    ollama.add_model(changed);
    ollama.evict_all();
    process().ask_collect("new model").await.unwrap();
    let fresh = store().find("m3b", &RunnerOptions::default()).unwrap();
    assert_eq!(
        fresh.digest,
        "0".repeat(64),
        "fixed again, for the new digest"
    );
}

#[tokio::test]
async fn a_runner_killed_by_gpu_memory_is_a_residency_failure() {
    let ollama = StandIn::start().await;
    let oom = || conductor_tests::Fault::Status {
        status: 500,
        body: "llama runner process has terminated: CUDA error: the resource allocation failed"
            .into(),
        json: true,
    };
    // Under enforce: exit-3 material, with the VRAM holders and a context that fits.
    ollama.push_fault("/api/generate", oom());
    let conductor = guarded(
        &ollama,
        "m3b",
        Arc::new(ScriptedProbe::new(nvml("d05"))),
        GpuPolicy::Enforce,
        None,
    );
    let err = conductor.ask("hi").await.err().unwrap();
    let Error::NotResident(d) = &err else {
        panic!("{err:?}")
    };
    let Cause::OutOfMemory {
        max_fitting: Some(max),
        source: SettingSource::OllamaDefault,
        num_ctx: Some(131_072),
        ..
    } = d.cause
    else {
        panic!("{:?}", d.cause)
    };
    assert!((2048..131_072).contains(&max), "{max}");
    assert!(d.summary().contains("ran out of memory"), "{}", d.summary());
    assert!(
        matches!(d.remedies()[0], Remedy::SetContext { .. }),
        "{:?}",
        d.remedies()
    );
    assert!(
        d.notes.iter().any(|n| n.contains("python3")),
        "{:?}",
        d.notes
    );

    // The same failure from the chat request itself (the model was evicted in between).
    ollama.push_fault("/api/chat", oom());
    loaded_elsewhere(&ollama, "m3b", 8192).await;
    let conductor = guarded(
        &ollama,
        "m3b",
        Arc::new(ScriptedProbe::new(nvml("d05"))),
        GpuPolicy::Enforce,
        None,
    );
    let err = conductor.ask("hi").await.err().unwrap();
    assert!(
        matches!(&err, Error::NotResident(d) if matches!(d.cause, Cause::OutOfMemory { .. })),
        "{err:?}"
    );

    // Under fix: loaded again with a context that fits, and answered.
    ollama.evict_all();
    ollama.push_fault("/api/generate", oom());
    let conductor = guarded(
        &ollama,
        "m3b",
        Arc::new(ScriptedProbe::new(nvml("d05"))),
        GpuPolicy::Fix,
        None,
    );
    let mut stream = conductor.ask("hi").await.unwrap();
    let ChatEvent::Fixed(fix) = stream.next().await.unwrap().unwrap() else {
        panic!("no fix")
    };
    assert!(
        fix.changes[0].contains("ran out of memory"),
        "{:?}",
        fix.changes
    );
    assert!(fix.options.num_ctx.is_some());
    let rest: Vec<_> = stream.collect().await;
    assert!(rest.iter().all(Result::is_ok), "{rest:?}");
}

#[tokio::test]
async fn without_nvml_ollamas_own_numbers_name_the_context_and_fix_it() {
    let ollama = StandIn::start().await;
    let no_nvml = DeviceView::NoNvml {
        reason: "the NVIDIA management library (libnvidia-ml) is not installed".into(),
    };
    let d = diagnose(
        &ollama,
        "m3b",
        Residency::split(LOAD_131K, 7_265_650_688).context(131_072),
        no_nvml.clone(),
    )
    .await;
    let Cause::ContextTooLarge {
        max_fitting,
        source: SettingSource::OllamaDefault,
        ..
    } = d.cause
    else {
        panic!("{:?}", d.cause)
    };
    assert!((4096..40_000).contains(&max_fitting), "{max_fitting}");
    let evidence = d.notes.iter().find(|n| n.starts_with("evidence:")).unwrap();
    assert!(evidence.contains("/api/ps"), "{evidence}");
    assert!(
        evidence.contains("KV cache 112 KiB per token"),
        "{evidence}"
    );
    assert!(evidence.contains("no NVML here"), "{evidence}");

    // And `fix` works on that evidence alone.
    ollama.evict_all();
    ollama.set_residency_if_option("m3b", "num_ctx", Residency::gpu(4_152_782_848));
    let guard = guard(&ollama, DeviceViewProbe(no_nvml), GpuPolicy::Fix);
    let admission = guard
        .admit("m3b", &RunnerOptions::default(), None)
        .await
        .unwrap();
    assert!(admission.fixed.is_some());
}

#[tokio::test]
async fn a_machine_without_a_gpu_says_how_to_choose_the_cpu() {
    let ollama = StandIn::start().await;
    let d = diagnose(
        &ollama,
        "tiny",
        Residency::split(2_375_680, 0).context(4096),
        DeviceView::NoNvml {
            reason: "no driver".into(),
        },
    )
    .await;
    assert_eq!(d.remedies(), [Remedy::InstallDriver, Remedy::ChooseCpu]);
    assert!(d.fix().contains("policy = \"off\""), "{}", d.fix());
}

#[tokio::test]
async fn a_loaded_context_equal_to_the_trained_one_is_sent_as_the_loader_sent_it() {
    // On a large card Ollama's default is the model's maximum (clamped); Ollama compares the
    // requested contexts, so sending the clamped value explicitly would reload the model.
    let ollama = StandIn::start().await;
    loaded_elsewhere(&ollama, "llama3.2:3b", 131_072).await;
    let conductor = guarded(
        &ollama,
        "llama3.2:3b",
        Arc::new(RemoteProbe),
        GpuPolicy::Enforce,
        None,
    );
    conductor.ask_collect("hi").await.unwrap();
    let chat = ollama.requests_to("/api/chat").pop().unwrap().json.unwrap();
    assert!(
        chat.get("options")
            .is_none_or(|o| o.get("num_ctx").is_none()),
        "{chat}"
    );
}
