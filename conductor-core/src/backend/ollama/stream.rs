//! Ollama's streaming answers: one NDJSON stream reader, shared by `/api/chat` and `/api/pull`.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use serde::Deserialize;

use super::http::{drain, next_chunk};
use crate::backend::{
    ChatStream, Completion, DoneReason, GenerationStats, PullProgress, PullStream, StreamEvent,
};
use crate::error::{Error, Result};
use crate::ndjson::{LineDecoder, MAX_LINE_BYTES, excerpt};

/// Decodes Ollama's NDJSON chat stream from raw byte chunks into [`StreamEvent`]s.
///
/// Public so the decoding stage can be exercised and measured on its own (replaying recorded
/// traffic). Lines may be split anywhere across chunks. An `{"error": ...}` line becomes
/// [`Error::Server`], a line that is not JSON [`Error::Protocol`], a body without any line
/// [`Error::EmptyResponse`], an end without the final `done` line [`Error::Truncated`], and
/// `idle` without a byte [`Error::Timeout`].
pub fn decode_chat_stream<S, E>(body: S, idle: Duration) -> ChatStream
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin + 'static,
    E: std::error::Error + 'static,
{
    ndjson_stream(body, idle, "/api/chat", decode_chat_line)
}

/// Decodes `/api/pull` progress lines, with the same rules as [`decode_chat_stream`]; the last
/// line is `success`.
pub(super) fn decode_pull_stream<S, E>(body: S, idle: Duration) -> PullStream
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin + 'static,
    E: std::error::Error + 'static,
{
    ndjson_stream(body, idle, "/api/pull", |line, out| {
        let progress = parse_pull_line(line)?;
        let last = progress.is_success();
        out.push_back(progress);
        Ok(last)
    })
}

/// Reads an NDJSON body line by line, turning each complete line into items with `decode`,
/// which returns whether the line was the last one (`done`, `success`).
///
/// Lines may be split anywhere across chunks. Each wait for bytes is bounded by `idle`. An
/// error from `decode` ends the stream; so does a body that ends before the last line
/// ([`Error::EmptyResponse`] when it had no line at all, else [`Error::Truncated`], after the
/// items that did arrive). After the last line, the (empty) rest of the body is read briefly,
/// so that the connection can go back to the pool.
fn ndjson_stream<S, E, T, F>(
    body: S,
    idle: Duration,
    endpoint: &'static str,
    decode: F,
) -> Pin<Box<dyn Stream<Item = Result<T>> + Send>>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin + 'static,
    E: std::error::Error + 'static,
    T: Send + 'static,
    F: FnMut(&[u8], &mut VecDeque<T>) -> Result<bool> + Send + 'static,
{
    let state = LineStream {
        body,
        decoder: LineDecoder::new(),
        pending: VecDeque::new(),
        phase: Phase::Streaming,
        truncated: false,
        lines: 0,
        idle,
        endpoint,
        decode,
    };
    Box::pin(futures::stream::unfold(state, LineStream::next_item))
}

enum Phase {
    Streaming,
    /// The final line arrived: read the (empty) rest so the connection can be reused.
    Draining,
    Finished,
}

struct LineStream<S, T, F> {
    body: S,
    decoder: LineDecoder,
    pending: VecDeque<T>,
    phase: Phase,
    truncated: bool,
    /// Lines decoded: none at all is no answer, not an answer cut short.
    lines: usize,
    idle: Duration,
    endpoint: &'static str,
    decode: F,
}

impl<S, E, T, F> LineStream<S, T, F>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin + 'static,
    E: std::error::Error + 'static,
    F: FnMut(&[u8], &mut VecDeque<T>) -> Result<bool>,
{
    async fn next_item(mut self) -> Option<(Result<T>, Self)> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some((Ok(item), self));
            }
            match self.phase {
                Phase::Finished if self.truncated => {
                    self.truncated = false;
                    let err = if self.lines == 0 {
                        Error::EmptyResponse {
                            endpoint: self.endpoint.to_owned(),
                        }
                    } else {
                        Error::Truncated
                    };
                    return Some((Err(err), self));
                }
                Phase::Finished => return None,
                Phase::Draining => {
                    drain(&mut self.body).await;
                    self.phase = Phase::Finished;
                    return None;
                }
                Phase::Streaming => {}
            }
            match self.decoder.next_line() {
                Err(_) => {
                    return self.fail(Error::Protocol {
                        reason: format!(
                            "a line longer than {} MiB without a newline",
                            MAX_LINE_BYTES >> 20
                        ),
                        line: String::new(),
                    });
                }
                Ok(Some(line)) => {
                    if let Err(err) = self.decode_line(&line) {
                        return self.fail(err);
                    }
                    continue;
                }
                Ok(None) => {}
            }
            match next_chunk(&mut self.body, self.idle, self.endpoint).await {
                Err(err) => return self.fail(err),
                Ok(Some(chunk)) => self.decoder.push(&chunk),
                Ok(None) => {
                    // End of body: a last line without its newline still counts.
                    if let Some(rest) = self.decoder.finish()
                        && let Err(err) = self.decode_line(&rest)
                    {
                        return self.fail(err);
                    }
                    if matches!(self.phase, Phase::Streaming) {
                        // No final line: hand out what did arrive, then report the truncation.
                        self.phase = Phase::Finished;
                        self.truncated = true;
                    }
                }
            }
        }
    }

    fn fail(mut self, err: Error) -> Option<(Result<T>, Self)> {
        self.phase = Phase::Finished;
        Some((Err(err), self))
    }

    fn decode_line(&mut self, line: &[u8]) -> Result<()> {
        self.lines += 1;
        if (self.decode)(line, &mut self.pending)? {
            self.phase = Phase::Draining;
        }
        Ok(())
    }
}

/// Decodes one `/api/chat` line into its events; true for the final (`done`) line.
fn decode_chat_line(line: &[u8], out: &mut VecDeque<StreamEvent>) -> Result<bool> {
    let wire: WireLine<'_> = serde_json::from_slice(line).map_err(|err| Error::Protocol {
        reason: err.to_string(),
        line: excerpt(line),
    })?;
    if let Some(message) = wire.error {
        return Err(Error::Server {
            message: message.into_owned(),
        });
    }
    if let Some(message) = wire.message {
        if let Some(thinking) = message.thinking.filter(|t| !t.is_empty()) {
            out.push_back(StreamEvent::Thinking(thinking.into_owned()));
        }
        if !message.content.is_empty() {
            out.push_back(StreamEvent::Content(message.content.into_owned()));
        }
    }
    if wire.done {
        out.push_back(StreamEvent::Done(Completion {
            done_reason: wire.done_reason.map(|r| DoneReason::parse(&r)),
            stats: GenerationStats {
                total_duration: Duration::from_nanos(wire.total_duration),
                load_duration: Duration::from_nanos(wire.load_duration),
                prompt_eval_count: wire.prompt_eval_count,
                prompt_eval_duration: Duration::from_nanos(wire.prompt_eval_duration),
                eval_count: wire.eval_count,
                eval_duration: Duration::from_nanos(wire.eval_duration),
            },
        }));
    }
    Ok(wire.done)
}

fn parse_pull_line(line: &[u8]) -> Result<PullProgress> {
    #[derive(Deserialize)]
    struct Wire {
        #[serde(default)]
        status: String,
        digest: Option<String>,
        total: Option<u64>,
        completed: Option<u64>,
        error: Option<String>,
    }
    let wire: Wire = serde_json::from_slice(line).map_err(|err| Error::Protocol {
        reason: err.to_string(),
        line: excerpt(line),
    })?;
    if let Some(message) = wire.error {
        return Err(Error::Server { message });
    }
    Ok(PullProgress {
        status: wire.status,
        digest: wire.digest,
        total: wire.total,
        completed: wire.completed,
    })
}

/// One line of `/api/chat` output. Unknown fields are ignored: Ollama adds fields over time.
#[derive(Deserialize)]
struct WireLine<'a> {
    #[serde(borrow, default)]
    message: Option<WireMessage<'a>>,
    #[serde(default)]
    done: bool,
    #[serde(borrow, default)]
    done_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    total_duration: u64,
    #[serde(default)]
    load_duration: u64,
    #[serde(default)]
    prompt_eval_count: u64,
    #[serde(default)]
    prompt_eval_duration: u64,
    #[serde(default)]
    eval_count: u64,
    #[serde(default)]
    eval_duration: u64,
    #[serde(borrow, default)]
    error: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct WireMessage<'a> {
    #[serde(borrow, default)]
    content: Cow<'a, str>,
    #[serde(borrow, default)]
    thinking: Option<Cow<'a, str>>,
}
