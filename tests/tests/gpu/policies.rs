//! How each policy acts on a diagnosis (off, warn, enforce, fix), the cached check, real NVML.

use std::sync::Arc;
use std::time::Duration;

use conductor_core::gpu::{Cause, DeviceView, GpuPolicy, GpuProbe, RemoteProbe, ScriptedProbe};
use conductor_core::{
    ChatEvent, Conductor, Error, KeepAlive, PersonalityCatalog, RequestDefaults, RunnerOptions,
};
use conductor_tests::{Residency, StandIn};
use futures::StreamExt;

use super::common::*;

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
