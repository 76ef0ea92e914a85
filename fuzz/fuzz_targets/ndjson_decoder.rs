//! Fuzzes `conductor_core::ndjson::LineDecoder` against a simple reference model.
//!
//! Input layout: byte 0 picks the chunk size (1..=64), byte 1 seeds the schedule of when
//! `next_line` is drained (after some pushes only, so bytes accumulate across pushes); the rest
//! is the byte stream.
//!
//! Checked (panics if violated):
//! - nothing panics;
//! - the lines returned (then `finish()`) equal the reference model: the input split at `\n`,
//!   one `\r` before each `\n` removed, empty and ASCII-whitespace-only lines dropped, and the
//!   unterminated tail returned by `finish()` unless it is whitespace only;
//! - the concatenation of the lines, each followed by `\n`, equals the input with blank lines
//!   and the `\r` before `\n` removed;
//! - the same bytes pushed as one chunk, in fixed-size chunks and in a random schedule give
//!   identical lines;
//! - `buffered()` is exactly the bytes after the last newline once `next_line` returns `None`;
//! - `excerpt` never panics and returns at most 200 characters plus an ellipsis.
#![no_main]

use conductor_core::ndjson::{LineDecoder, excerpt};
use libfuzzer_sys::fuzz_target;

/// The reference: complete lines, and what `finish()` returns.
fn reference(input: &[u8]) -> (Vec<Vec<u8>>, Option<Vec<u8>>) {
    let mut lines = Vec::new();
    let mut parts: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    // `split` always yields at least one part; the last one has no `\n` after it.
    let tail = parts.pop().unwrap_or_default();
    for part in parts {
        let part = part.strip_suffix(b"\r").unwrap_or(part);
        if !part.iter().all(u8::is_ascii_whitespace) {
            lines.push(part.to_vec());
        }
    }
    let tail = (!tail.iter().all(u8::is_ascii_whitespace)).then(|| tail.to_vec());
    (lines, tail)
}

/// The input with blank lines and the `\r` of each `\r\n` removed, every line ending in `\n`
/// (an unterminated, non-blank tail stays without one).
fn reference_text(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = input;
    while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
        let line = &rest[..pos];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if !line.iter().all(u8::is_ascii_whitespace) {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
        rest = &rest[pos + 1..];
    }
    if !rest.iter().all(u8::is_ascii_whitespace) {
        out.extend_from_slice(rest);
    }
    out
}

/// A tiny deterministic PRNG (xorshift32) for chunk schedules.
struct Rng(u32);

impl Rng {
    fn new(seed: u8) -> Self {
        Self(0x9E37_79B9 ^ u32::from(seed).wrapping_mul(0x0101_0101) | 1)
    }
    fn next(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }
}

/// Drains complete lines and checks `buffered()` against what has been pushed.
fn drain(decoder: &mut LineDecoder, pushed: &[u8], out: &mut Vec<Vec<u8>>) {
    loop {
        match decoder.next_line() {
            Ok(Some(line)) => {
                assert!(!line.is_empty(), "empty line returned");
                assert!(!line.contains(&b'\n'), "line contains a newline: {line:?}");
                out.push(line.to_vec());
            }
            Ok(None) => break,
            Err(err) => panic!("LineTooLong ({err:?}) on a {} byte input", pushed.len()),
        }
    }
    let after_last_newline = pushed
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(pushed.len(), |pos| pushed.len() - pos - 1);
    assert_eq!(
        decoder.buffered(),
        after_last_newline,
        "buffered() after draining {} pushed bytes",
        pushed.len()
    );
}

/// Decodes `input` pushed in the given chunks, draining after the chunks where `drain_now` says.
fn decode(
    input: &[u8],
    mut chunk_len: impl FnMut() -> usize,
    mut drain_now: impl FnMut() -> bool,
) -> (Vec<Vec<u8>>, Option<Vec<u8>>) {
    let mut decoder = LineDecoder::new();
    let mut lines = Vec::new();
    let mut offset = 0;
    while offset < input.len() {
        let end = offset.saturating_add(chunk_len()).min(input.len());
        decoder.push(&input[offset..end]);
        offset = end;
        if drain_now() {
            drain(&mut decoder, &input[..offset], &mut lines);
        }
    }
    drain(&mut decoder, input, &mut lines);
    let tail = decoder.finish().map(|b| b.to_vec());
    // After finish() the decoder is empty and reusable.
    assert_eq!(decoder.buffered(), 0, "buffered() after finish()");
    assert_eq!(decoder.next_line(), Ok(None), "next_line() after finish()");
    assert_eq!(decoder.finish(), None, "second finish()");
    (lines, tail)
}

fuzz_target!(|data: &[u8]| {
    let (control, input) = match data {
        [a, b, rest @ ..] => ([*a, *b], rest),
        _ => return,
    };
    let expected = reference(input);

    // One chunk, draining at the end.
    let whole = decode(input, || usize::MAX, || true);
    assert_eq!(whole, expected, "one chunk differs from the reference");

    // Fixed-size chunks, draining after every push.
    let size = usize::from(control[0] & 0x3f) + 1;
    let fixed = decode(input, || size, || true);
    assert_eq!(
        fixed, expected,
        "chunks of {size} differ from the reference"
    );

    // Random chunk sizes (empty chunks included) and random drain points.
    let mut rng = Rng::new(control[1]);
    let mut sizes = Rng::new(control[0]);
    let random = decode(
        input,
        || (sizes.next() % 17) as usize,
        || rng.next().is_multiple_of(3),
    );
    assert_eq!(
        random, expected,
        "random chunking differs from the reference"
    );

    // The concatenation property.
    let mut text = Vec::new();
    for line in &whole.0 {
        text.extend_from_slice(line);
        text.push(b'\n');
    }
    if let Some(tail) = &whole.1 {
        text.extend_from_slice(tail);
    }
    assert_eq!(text, reference_text(input), "concatenated lines differ");

    // Error excerpts of every line.
    for line in whole.0.iter().chain(whole.1.iter()) {
        let short = excerpt(line);
        let chars = short.chars().count();
        assert!(chars <= 201, "excerpt has {chars} characters");
        if let Ok(text) = std::str::from_utf8(line)
            && text.chars().count() <= 200
        {
            assert_eq!(short, text, "a short valid line is its own excerpt");
        }
    }
});
