//! The OpenAI backend's overhead against a raw client on the same `/v1/chat/completions` of a
//! real Ollama: time to first token and total, medians of interleaved runs. Ignored by default;
//! run with `CONDUCTOR_TEST_OLLAMA=http://127.0.0.1:11570 cargo test -p conductor-tests --test
//! openai_bench -- --ignored --nocapture`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
#![allow(clippy::print_stderr, clippy::cast_precision_loss)]

use std::time::{Duration, Instant};

use conductor_core::{Backend, ChatRequest, Message, OpenAiBackend, RunnerOptions, StreamEvent};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const RUNS: usize = 30;

fn request() -> ChatRequest {
    let mut request = ChatRequest::new(
        "tiny-det",
        vec![
            Message::system("You are brief."),
            Message::user("Count from one to ten."),
        ],
    );
    request.options = RunnerOptions {
        num_predict: Some(16),
        // Ollama's /v1 defaults temperature to 1.0: fixed here so both sides generate alike.
        temperature: Some(0.0),
        seed: Some(1),
        ..RunnerOptions::default()
    };
    request
}

/// One POST over a fresh connection, the same body as the backend's; the first token is the
/// first event with non-empty `content`, the end is `data: [DONE]`.
async fn raw(addr: &str, body: &str) -> (Duration, Duration) {
    let started = Instant::now();
    let mut socket = TcpStream::connect(addr).await.unwrap();
    socket.set_nodelay(true).unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(body.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let mut first = None;
    let mut buf = [0u8; 16384];
    loop {
        let n = socket.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed early");
        seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&seen);
        if first.is_none() && text.contains("\"content\":\"") && !text.contains("\"content\":\"\"}")
        {
            first = Some(started.elapsed());
        }
        if text.contains("data: [DONE]") {
            return (
                first.unwrap_or_else(|| started.elapsed()),
                started.elapsed(),
            );
        }
    }
}

async fn conductor(backend: &OpenAiBackend) -> (Duration, Duration) {
    let started = Instant::now();
    let mut stream = backend.chat(request()).await.unwrap();
    let mut first = None;
    let mut done = None;
    while let Some(event) = stream.next().await {
        match event.unwrap() {
            StreamEvent::Content(_) => {
                first.get_or_insert_with(|| started.elapsed());
            }
            // The answer is complete here (`[DONE]`), as for the raw client; what follows is
            // the bounded read of the body's end that lets the connection be reused.
            StreamEvent::Done(_) => done = Some(started.elapsed()),
            _ => {}
        }
    }
    let end = started.elapsed();
    if std::env::var_os("BENCH_VERBOSE").is_some() {
        eprintln!("done at {done:?}, stream end at {end:?}");
    }
    (first.unwrap_or(end), done.unwrap_or(end))
}

fn median(mut values: Vec<Duration>) -> f64 {
    values.sort();
    values[values.len() / 2].as_secs_f64() * 1e3
}

#[tokio::test]
#[ignore = "a benchmark against a real Ollama"]
async fn openai_backend_overhead_against_a_raw_client() {
    let Ok(url) = std::env::var("CONDUCTOR_TEST_OLLAMA") else {
        eprintln!("skipped: set CONDUCTOR_TEST_OLLAMA");
        return;
    };
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let backend = OpenAiBackend::builder(format!("{url}/v1").parse().unwrap())
        .build()
        .unwrap();
    let body = serde_json::json!({
        "model": "tiny-det",
        "messages": [{"role": "system", "content": "You are brief."}, {"role": "user", "content": "Count from one to ten."}],
        "stream": true,
        "stream_options": {"include_usage": true},
        "temperature": 0.0,
        "seed": 1,
        "max_tokens": 16,
    })
    .to_string();
    for _ in 0..3 {
        raw(&addr, &body).await;
        conductor(&backend).await;
    }
    let (mut raw_first, mut raw_total, mut our_first, mut our_total) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..RUNS {
        // Interleaved, alternating which goes first, so drift hits both alike.
        let (a, b) = if i % 2 == 0 {
            let a = raw(&addr, &body).await;
            (a, conductor(&backend).await)
        } else {
            let b = conductor(&backend).await;
            (raw(&addr, &body).await, b)
        };
        raw_first.push(a.0);
        raw_total.push(a.1);
        our_first.push(b.0);
        our_total.push(b.1);
    }
    let (rf, rt, of, ot) = (
        median(raw_first),
        median(raw_total),
        median(our_first),
        median(our_total),
    );
    eprintln!("runs: {RUNS} each, interleaved; medians");
    eprintln!("raw client:      ttft {rf:.2} ms, total {rt:.2} ms");
    eprintln!("OpenAiBackend:   ttft {of:.2} ms, total {ot:.2} ms");
    eprintln!(
        "ratio:           ttft {:.3}x, total {:.3}x",
        of / rf,
        ot / rt
    );
}
