//! Replays every input the fuzzers kept (`fuzz/corpus/<target>/`) and every input that once
//! crashed one (`fuzz/artifacts/<target>/`) through the same code, so CI re-checks them on
//! stable Rust without libFuzzer. The fuzz targets themselves are in `fuzz/fuzz_targets/`
//! (see docs/fuzzing.md); this test keeps their central properties.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use conductor_core::backend::decode_chat_stream;
use conductor_core::config::{ConfigLayer, OllamaHost, format_duration, parse_duration};
use conductor_core::ndjson::LineDecoder;
use conductor_core::{Error, KeepAlive, Personality, collect_answer};

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut found = Vec::new();
    for dir in ["corpus", "artifacts"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_file() {
                found.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    found.sort();
    found
}

/// Lines as the decoder returns them, split into `chunk` bytes at a time.
fn lines(input: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    let mut decoder = LineDecoder::new();
    let mut out = Vec::new();
    for piece in input.chunks(chunk.max(1)) {
        decoder.push(piece);
        while let Ok(Some(line)) = decoder.next_line() {
            out.push(line.to_vec());
        }
    }
    if let Some(rest) = decoder.finish() {
        out.push(rest.to_vec());
    }
    out
}

#[test]
fn ndjson_decoder_corpus() {
    let inputs = inputs("ndjson_decoder");
    for (path, input) in &inputs {
        if input.len() > conductor_core::ndjson::MAX_LINE_BYTES {
            continue;
        }
        let whole = lines(input, input.len());
        for chunk in [1, 3, 64] {
            assert_eq!(
                lines(input, chunk),
                whole,
                "{} at chunk {chunk}",
                path.display()
            );
        }
    }
    println!("{} inputs replayed", inputs.len());
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Answer(String, String, bool),
    Failed(String, Option<String>),
}

fn decode(runtime: &tokio::runtime::Runtime, body: &[u8], chunk: usize) -> Outcome {
    let chunks: Vec<Result<Bytes, std::io::Error>> = body
        .chunks(chunk.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    runtime.block_on(async {
        let stream = decode_chat_stream(futures::stream::iter(chunks), Duration::from_secs(5));
        match collect_answer(stream).await {
            Ok(answer) => {
                Outcome::Answer(answer.content, answer.thinking, answer.completion.is_some())
            }
            Err(err) => {
                let _ = err.hint();
                Outcome::Failed(render(&err), err.partial_answer().map(str::to_owned))
            }
        }
    })
}

fn render(err: &Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(" / ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[test]
fn chat_stream_corpus() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let inputs = inputs("chat_stream");
    for (path, input) in &inputs {
        // The target's layout: two control bytes, then the body.
        let body = input.get(2..).unwrap_or_default();
        let whole = decode(&runtime, body, body.len());
        if let Outcome::Answer(_, _, done) = &whole {
            assert!(done, "{}: an answer without its final line", path.display());
        }
        if let Outcome::Failed(_, Some(partial)) = &whole {
            assert!(!partial.is_empty(), "{}", path.display());
        }
        for chunk in [1, 7] {
            assert_eq!(
                decode(&runtime, body, chunk),
                whole,
                "{} at chunk {chunk}",
                path.display()
            );
        }
    }
    println!("{} inputs replayed", inputs.len());
}

#[test]
fn personality_toml_corpus() {
    let inputs = inputs("personality_toml");
    for (path, input) in &inputs {
        let text = String::from_utf8_lossy(input);
        match Personality::from_toml(Path::new("/fuzz/x.toml"), &text) {
            Ok(p) => {
                let once = conductor_core::compose(&p, Some("extra"));
                assert_eq!(
                    once,
                    conductor_core::compose(&p, Some("extra")),
                    "{}",
                    path.display()
                );
            }
            Err(err) => {
                let shown = err.to_string();
                assert!(!shown.is_empty());
                let _ = err.hint();
            }
        }
    }
    println!("{} inputs replayed", inputs.len());
}

#[test]
fn config_toml_corpus() {
    let inputs = inputs("config_toml");
    for (path, input) in &inputs {
        let text = String::from_utf8_lossy(input);
        let Ok(layer) = ConfigLayer::from_toml(Path::new("/fuzz/conductor.toml"), &text) else {
            continue;
        };
        if let Some(host) = &layer.ollama.host {
            let shown = host.to_string();
            let again = OllamaHost::parse(&shown).unwrap_or_else(|e| {
                panic!("{}: {shown:?} does not read back: {e}", path.display())
            });
            assert_eq!(
                again.join("/api/chat"),
                host.join("/api/chat"),
                "{}",
                path.display()
            );
        }
        if let Some(KeepAlive::For(d)) = layer.keep_alive {
            assert_eq!(
                parse_duration(&format_duration(d)),
                Ok(d),
                "{}",
                path.display()
            );
        }
        for d in [
            layer.ollama.connect_timeout,
            layer.ollama.load_timeout,
            layer.ollama.idle_timeout,
        ]
        .into_iter()
        .flatten()
        {
            assert_eq!(
                parse_duration(&format_duration(d.0)),
                Ok(d.0),
                "{}",
                path.display()
            );
        }
    }
    println!("{} inputs replayed", inputs.len());
}
