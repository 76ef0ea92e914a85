//! Against a real Ollama: what the stand-in cannot show (its reload rules, its per-request
//! delay, its own error wordings). They run when `CONDUCTOR_TEST_OLLAMA` names a server with the
//! models of `shared/real-ollama/setup.sh` (`tiny`, `tiny-det`; CI starts one when it can), and
//! say they skipped otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;
use std::time::Duration;

use conductor_core::backend::LoadRequest;
use conductor_core::gpu::{Cause, DeviceView, GpuPolicy, GpuProbe, MinFraction, ResidencyGuard};
use conductor_core::{
    Backend, ChatEvent, Conductor, Error, OllamaBackend, PersonalityCatalog, RequestDefaults,
    RunnerOptions,
};
use futures::StreamExt;

/// One test at a time: they load and unload models on one shared server.
static SERVER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn real() -> Option<String> {
    match std::env::var("CONDUCTOR_TEST_OLLAMA") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!(
                "skipped: set CONDUCTOR_TEST_OLLAMA (e.g. from shared/real-ollama/setup.sh) to run against a real Ollama"
            );
            None
        }
    }
}

fn backend(url: &str) -> Arc<dyn Backend> {
    Arc::new(
        OllamaBackend::builder(url.parse().unwrap())
            .build()
            .unwrap(),
    )
}

/// This machine has no GPU; the probe says so the way NVML would without a driver.
#[derive(Debug)]
struct NoDriver;

impl GpuProbe for NoDriver {
    fn snapshot(&self) -> DeviceView {
        DeviceView::NoNvml {
            reason: "no NVIDIA driver on this test machine".into(),
        }
    }
}

fn conductor(url: &str, model: &str, policy: GpuPolicy, options: RunnerOptions) -> Conductor {
    let backend = backend(url);
    let guard = ResidencyGuard::new(
        Arc::clone(&backend),
        Arc::new(NoDriver),
        policy,
        MinFraction::FULL,
    );
    let mut defaults = RequestDefaults::for_model(model);
    defaults.options = options;
    Conductor::new(
        backend,
        PersonalityCatalog::builtin().load("forge").unwrap(),
        defaults,
    )
    .with_guard(Arc::new(guard))
}

async fn loaded_context(backend: &Arc<dyn Backend>, model: &str) -> Option<u64> {
    backend
        .server()
        .unwrap()
        .running_models()
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.is_model(model))
        .and_then(|m| m.context_length)
}

fn ctx(n: u32) -> RunnerOptions {
    RunnerOptions {
        num_ctx: Some(n),
        num_predict: Some(4),
        ..RunnerOptions::default()
    }
}

/// Ollama reloads a model whose runner options differ, and a request without `num_ctx` counts
/// as different from a load with one: so conductor adopts the loaded context when none is set.
#[tokio::test]
async fn real_reload_rules_and_context_adoption() {
    let Some(url) = real() else { return };
    let _one_at_a_time = SERVER.lock().await;
    let backend = backend(&url);
    backend
        .server()
        .unwrap()
        .unload_model("tiny")
        .await
        .unwrap();
    backend
        .server()
        .unwrap()
        .load_model(LoadRequest {
            model: "tiny".into(),
            options: ctx(3072),
            keep_alive: None,
        })
        .await
        .unwrap();
    assert_eq!(loaded_context(&backend, "tiny").await, Some(3072));

    // Asking without num_ctx adopts 3072 (below the model's trained 8192): no reload. This
    // machine has no GPU, so the guard is told any GPU share will do (`min_fraction` 0): the
    // load counts as admitted, as a GPU one would.
    let backend_for_guard = self::backend(&url);
    let guard = ResidencyGuard::new(
        Arc::clone(&backend_for_guard),
        Arc::new(NoDriver),
        GpuPolicy::Enforce,
        MinFraction::new(0.0).unwrap(),
    );
    let adopting = Conductor::new(
        backend_for_guard,
        PersonalityCatalog::builtin().load("forge").unwrap(),
        RequestDefaults::for_model("tiny"),
    )
    .with_guard(Arc::new(guard));
    let answer = adopting.ask_collect("hi").await.unwrap();
    assert_eq!(
        loaded_context(&backend, "tiny").await,
        Some(3072),
        "not reloaded"
    );
    println!(
        "adopted context: load_duration {:?} on a loaded model",
        answer.completion.unwrap().stats.load_duration
    );

    // Another explicit context reloads it, as Ollama's rule says.
    let other = conductor(&url, "tiny", GpuPolicy::Warn, ctx(2048));
    other.ask_collect("hi").await.unwrap();
    assert_eq!(loaded_context(&backend, "tiny").await, Some(2048));
}

/// The CPU-only test machine: enforce refuses with the cause and how to choose the CPU; warn
/// answers after a warning; the guard never loads twice for it.
#[tokio::test]
async fn real_cpu_only_server_under_each_policy() {
    let Some(url) = real() else { return };
    let _one_at_a_time = SERVER.lock().await;
    let enforce = conductor(
        &url,
        "tiny-det",
        GpuPolicy::Enforce,
        RunnerOptions::default(),
    );
    let err = enforce.ask("hi").await.err().unwrap();
    let Error::NotResident(diagnosis) = &err else {
        panic!("{err:?}")
    };
    assert!(
        matches!(diagnosis.cause, Cause::NoGpu { .. }),
        "{:?}",
        diagnosis.cause
    );
    assert_eq!(diagnosis.processor().unwrap().to_string(), "100% CPU");
    assert!(
        diagnosis
            .remedies()
            .contains(&conductor_core::gpu::Remedy::ChooseCpu),
        "{}",
        diagnosis.fix()
    );

    let warn = conductor(&url, "tiny-det", GpuPolicy::Warn, RunnerOptions::default());
    let mut stream = warn.ask("hi").await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert!(matches!(first, ChatEvent::Warning(_)), "{first:?}");
    let mut done = None;
    while let Some(event) = stream.next().await {
        if let ChatEvent::Done(completion) = event.unwrap() {
            done = Some(completion);
        }
    }
    // tiny-det stops by length (num_predict 16 in its Modelfile) or at its end of text.
    let done = done.expect("a final event");
    assert!(done.stats.eval_count <= 16, "{done:?}");
}

/// Ollama's own words for a missing model reach the user as "model not found", from every
/// route conductor uses.
#[tokio::test]
async fn real_missing_model_wordings() {
    let Some(url) = real() else { return };
    let _one_at_a_time = SERVER.lock().await;
    let backend = backend(&url);
    let ghost = "no-such-model-here:7b";
    let chat = conductor(&url, ghost, GpuPolicy::Off, RunnerOptions::default())
        .ask("hi")
        .await
        .err()
        .unwrap();
    let show = backend
        .server()
        .unwrap()
        .show_model(ghost)
        .await
        .unwrap_err();
    let load = backend
        .server()
        .unwrap()
        .load_model(LoadRequest {
            model: ghost.into(),
            options: RunnerOptions::default(),
            keep_alive: None,
        })
        .await
        .unwrap_err();
    for err in [chat, show, load] {
        assert!(
            matches!(&err, Error::ModelNotFound { model } if model == ghost),
            "{err:?}"
        );
    }
}

/// Every generation or load costs a real Ollama some time even with the model loaded: the
/// reason a resident ask must not preload.
#[tokio::test]
async fn real_per_request_overhead_is_what_a_preload_would_add() {
    let Some(url) = real() else { return };
    let _one_at_a_time = SERVER.lock().await;
    let backend = backend(&url);
    let options = ctx(2048);
    let load = || LoadRequest {
        model: "tiny".into(),
        options: options.clone(),
        keep_alive: None,
    };
    backend.server().unwrap().load_model(load()).await.unwrap();
    let mut times = Vec::new();
    for _ in 0..5 {
        times.push(
            backend
                .server()
                .unwrap()
                .load_model(load())
                .await
                .unwrap()
                .elapsed,
        );
    }
    times.sort();
    let median = times[times.len() / 2];
    println!("a preload of a loaded model takes {median:?} (median of 5) on this server");
    assert!(median < Duration::from_secs(5));
}

/// Models made `FROM` the same weights share one runner, listed under whichever loaded first:
/// the guard finds the runner that serves the model, not a false "not loaded".
#[tokio::test]
async fn real_models_sharing_weights_share_a_runner() {
    let Some(url) = real() else { return };
    let _one_at_a_time = SERVER.lock().await;
    let backend = backend(&url);
    backend
        .server()
        .unwrap()
        .unload_model("tiny")
        .await
        .unwrap();
    backend
        .server()
        .unwrap()
        .unload_model("tiny-det")
        .await
        .unwrap();
    backend
        .server()
        .unwrap()
        .load_model(LoadRequest {
            model: "tiny".into(),
            options: RunnerOptions::default(),
            keep_alive: None,
        })
        .await
        .unwrap();
    let warn = conductor(&url, "tiny-det", GpuPolicy::Warn, RunnerOptions::default());
    let mut stream = warn.ask("hi").await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    let ChatEvent::Warning(diagnosis) = first else {
        panic!("{first:?}")
    };
    assert!(
        matches!(diagnosis.cause, Cause::NoGpu { .. }),
        "{:?}",
        diagnosis.cause
    );
    while stream.next().await.is_some() {}
}
