//! What the guard diagnoses on the recorded H100 numbers: each cause of a partial or CPU load.

use conductor_core::gpu::{
    Cause, DeviceView, GpuDevice, GpuPolicy, Remedy, ScriptedProbe, SettingSource,
};
use conductor_core::{Error, RunnerOptions};
use conductor_tests::{Residency, StandIn};

use super::common::*;

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
