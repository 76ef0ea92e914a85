//! Models loaded elsewhere or earlier: adoption, reloads, remembered fixes, runners killed.

use std::sync::Arc;
use std::time::Duration;

use conductor_core::gpu::{
    Cause, DeviceView, FixStore, GpuPolicy, MinFraction, RECHECK_AFTER, Remedy, RemoteProbe,
    ResidencyGuard, ScriptedProbe, SettingSource,
};
use conductor_core::{
    ChatEvent, Conductor, Error, PersonalityCatalog, RequestDefaults, RunnerOptions,
};
use conductor_tests::{Residency, StandIn};
use futures::StreamExt;

use super::common::*;

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
