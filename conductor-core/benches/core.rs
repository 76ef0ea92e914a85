//! Benchmarks of the hot paths: composing the system message, and decoding Ollama's NDJSON
//! stream into events. Each has a baseline measured in the same run, so the figures can be read
//! as ratios on a noisy machine.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use conductor_core::backend::decode_chat_stream;
use conductor_core::{ChatEvent, PersonalityCatalog, compose};
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
                        if let Ok(ChatEvent::Content(_)) = event {
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

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = composition, decoder
}
criterion_main!(benches);
