//! Fuzzes `conductor_core::backend::decode_chat_stream` + `collect_answer` (Ollama's NDJSON chat
//! stream, as recorded from `/api/chat`).
//!
//! Input layout: byte 0 picks the chunk size (bits 0-5: 1..=64) and whether the body ends with a
//! transport error instead of a clean end (bit 7); byte 1 seeds a random chunking (empty chunks
//! included); the rest is the response body.
//!
//! Checked (panics if violated):
//! - nothing panics (decoding, collecting, error `Display`, `hint`, `root`, `source` chain);
//! - the body decoded as one chunk, in fixed-size chunks and in random chunks gives identical
//!   results: the same `Answer` (content, thinking, completion), or errors of the same kind
//!   with the same message and the same partial answer;
//! - an `Ok` answer always has a completion; an error that carries a partial answer never
//!   carries an empty one.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use conductor_core::backend::decode_chat_stream;
use conductor_core::{Answer, Error, collect_answer};
use libfuzzer_sys::fuzz_target;
use tokio::runtime::Runtime;

/// One current-thread runtime per process (building one per input costs more than decoding).
fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime")
    })
}

/// What we compare between chunkings.
#[derive(Debug, PartialEq)]
enum Outcome {
    Answer(Answer),
    Failed {
        kind: std::mem::Discriminant<Error>,
        root_kind: std::mem::Discriminant<Error>,
        message: String,
        partial: Option<String>,
    },
}

/// Renders an error every way a frontend would, checking it does not panic.
fn render(err: &Error) -> String {
    let message = err.to_string();
    let _ = format!("{err:?}");
    let _ = err.hint();
    let _ = err.root().to_string();
    let mut source = std::error::Error::source(err);
    let mut depth = 0;
    while let Some(cause) = source {
        let _ = cause.to_string();
        source = cause.source();
        depth += 1;
        assert!(depth < 16, "source chain too deep");
    }
    message
}

/// A tiny deterministic PRNG (xorshift32) for chunk schedules.
fn chunk_sizes(seed: u8) -> impl FnMut() -> usize {
    let mut x = 0x9E37_79B9 ^ u32::from(seed).wrapping_mul(0x0101_0101) | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        (x % 33) as usize
    }
}

fn decode(body: &[u8], mut chunk_len: impl FnMut() -> usize, broken: bool) -> Outcome {
    let mut chunks: Vec<Result<Bytes, std::io::Error>> = Vec::new();
    let mut offset = 0;
    while offset < body.len() {
        let end = offset.saturating_add(chunk_len()).min(body.len());
        chunks.push(Ok(Bytes::copy_from_slice(&body[offset..end])));
        offset = end;
    }
    if broken {
        chunks.push(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset by peer",
        )));
    }
    let stream = decode_chat_stream(futures::stream::iter(chunks), Duration::from_secs(3600));
    match runtime().block_on(collect_answer(stream)) {
        Ok(answer) => {
            assert!(answer.completion.is_some(), "Ok answer without completion");
            Outcome::Answer(answer)
        }
        Err(err) => {
            let message = render(&err);
            let partial = err.partial_answer().map(str::to_owned);
            if let Some(partial) = &partial {
                assert!(
                    !partial.is_empty(),
                    "Incomplete with an empty partial answer"
                );
            }
            Outcome::Failed {
                kind: std::mem::discriminant(&err),
                root_kind: std::mem::discriminant(err.root()),
                message,
                partial,
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (control, body) = match data {
        [a, b, rest @ ..] => ([*a, *b], rest),
        _ => return,
    };
    let broken = control[0] & 0x80 != 0;
    let whole = decode(body, || usize::MAX, broken);

    let size = usize::from(control[0] & 0x3f) + 1;
    let fixed = decode(body, || size, broken);
    assert_eq!(whole, fixed, "one chunk vs chunks of {size}");

    let random = decode(body, chunk_sizes(control[1]), broken);
    assert_eq!(
        whole, random,
        "one chunk vs random chunks (seed {})",
        control[1]
    );
});
