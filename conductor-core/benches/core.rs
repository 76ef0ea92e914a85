//! Benchmarks of the hot paths: composing the system message, and decoding Ollama's NDJSON
//! stream into events. Each has a baseline measured in the same run, so the figures can be read
//! as ratios on a noisy machine.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use conductor_core::backend::decode_chat_stream;
use conductor_core::{PersonalityCatalog, StreamEvent, compose};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;

fn composition(c: &mut Criterion) {
    let mut group = c.benchmark_group("compose");
    for entry in PersonalityCatalog::builtin().list() {
        let personality = entry.personality.unwrap();
        let composed = compose(&personality, Some("Answer in English."));
        // Baseline: copying the finished text (the least any composition can cost).
        group.bench_function(BenchmarkId::new("baseline_clone", &entry.name), |b| {
            b.iter(|| black_box(composed.clone()));
        });
        group.bench_function(BenchmarkId::new("compose", &entry.name), |b| {
            b.iter(|| black_box(compose(black_box(&personality), Some("Answer in English."))));
        });
    }
    group.finish();
}

/// A recorded-shape stream of `tokens` content lines plus the final line.
fn stream_body(tokens: usize) -> Vec<u8> {
    let mut body = Vec::new();
    for i in 0..tokens {
        body.extend_from_slice(
            format!(
                "{{\"model\":\"m3b\",\"created_at\":\"2026-11-25T17:06:42.560498874Z\",\"message\":{{\"role\":\"assistant\",\"content\":\" tok{i}\"}},\"done\":false}}\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(b"{\"model\":\"m3b\",\"created_at\":\"2026-11-25T17:06:42.767014511Z\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"length\",\"total_duration\":352352227,\"load_duration\":98203252,\"prompt_eval_count\":515,\"prompt_eval_duration\":38236722,\"eval_count\":48,\"eval_duration\":143769702}\n");
    body
}

fn chunks_per_line(body: &[u8]) -> Vec<Bytes> {
    body.split_inclusive(|b| *b == b'\n')
        .map(Bytes::copy_from_slice)
        .collect()
}

fn chunks_every(body: &[u8], n: usize) -> Vec<Bytes> {
    body.chunks(n).map(Bytes::copy_from_slice).collect()
}

fn decoder(c: &mut Criterion) {
    const TOKENS: usize = 1_000;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let body = stream_body(TOKENS);
    let mut group = c.benchmark_group("stream_decode");
    group.throughput(Throughput::Elements(TOKENS as u64));
    // Baseline: parse each line into a generic JSON value, no events, no buffering.
    let lines = chunks_per_line(&body);
    group.bench_function("baseline_serde_value_per_line", |b| {
        b.iter(|| {
            let mut n = 0;
            for line in &lines {
                let value: serde_json::Value = serde_json::from_slice(line).unwrap();
                n += usize::from(value["message"]["content"].is_string());
            }
            black_box(n)
        });
    });
    for (name, chunks) in [
        ("per_line", chunks_per_line(&body)),
        ("split_every_7", chunks_every(&body, 7)),
        ("split_every_4096", chunks_every(&body, 4096)),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let input = futures::stream::iter(
                        chunks.clone().into_iter().map(Ok::<_, std::io::Error>),
                    );
                    let mut stream = decode_chat_stream(input, Duration::from_secs(60));
                    let mut tokens = 0usize;
                    while let Some(event) = stream.next().await {
                        if let Ok(StreamEvent::Content(_)) = event {
                            tokens += 1;
                        }
                    }
                    assert_eq!(tokens, TOKENS);
                    black_box(tokens)
                })
            });
        });
    }
    group.finish();
}

fn residency(c: &mut Criterion) {
    use conductor_core::gpu::{GpuPolicy, MinFraction, RemoteProbe, ResidencyGuard};
    use conductor_core::{Backend, OllamaBackend, RunnerOptions};
    use std::sync::Arc;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let standin = runtime.block_on(conductor_tests::StandIn::start());
    let backend: Arc<dyn Backend> = Arc::new(
        OllamaBackend::builder(standin.host().parse().unwrap())
            .build()
            .unwrap(),
    );
    let guard = ResidencyGuard::new(
        Arc::clone(&backend),
        Arc::new(RemoteProbe),
        GpuPolicy::Enforce,
        MinFraction::FULL,
    );
    let options = RunnerOptions::default();
    runtime
        .block_on(guard.admit("tiny", &options, None))
        .unwrap();

    let mut group = c.benchmark_group("residency");
    // Baseline: one HTTP round trip to the same local server.
    group.bench_function("baseline_version_round_trip", |b| {
        b.iter(|| {
            runtime
                .block_on(backend.server().unwrap().version())
                .unwrap()
        });
    });
    group.bench_function("check_load_and_ps", |b| {
        b.iter(|| {
            runtime
                .block_on(guard.check("tiny", &options, None))
                .unwrap()
        });
    });
    // The same check with the real NVML probe (on a machine without NVIDIA it answers "no NVML"
    // at once; on the GPU machine it reads devices and processes). NVML is initialised before.
    let nvml_guard = ResidencyGuard::new(
        Arc::clone(&backend),
        Arc::new(conductor_core::gpu::NvmlProbe),
        GpuPolicy::Enforce,
        MinFraction::FULL,
    );
    runtime
        .block_on(nvml_guard.check("tiny", &options, None))
        .unwrap();
    group.bench_function("check_load_ps_and_nvml", |b| {
        b.iter(|| {
            runtime
                .block_on(nvml_guard.check("tiny", &options, None))
                .unwrap()
        });
    });
    // Baseline for the cached path: an uncontended mutex lock and unlock.
    let mutex = std::sync::Mutex::new(0u64);
    group.bench_function("baseline_mutex", |b| {
        b.iter(|| {
            let mut n = mutex.lock().unwrap();
            *n += 1;
            black_box(*n)
        });
    });
    group.bench_function("cached_admission", |b| {
        b.iter(|| black_box(guard.cached(black_box("tiny"), &options).unwrap()));
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = composition, decoder, residency
}
criterion_main!(benches);
