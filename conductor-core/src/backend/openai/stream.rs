//! The `/chat/completions` stream: SSE events (`chat.completion.chunk` objects, then
//! `[DONE]`) turned into [`StreamEvent`]s.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use serde::Deserialize;

use super::sse::{SseDecoder, SseEvent};
use crate::backend::ollama::http::{drain, next_chunk};
use crate::backend::{ChatStream, Completion, DoneReason, GenerationStats, StreamEvent};
use crate::error::{Error, Result};
use crate::ndjson::{MAX_LINE_BYTES, excerpt};

/// The API path the stream comes from, for errors.
pub(super) const ENDPOINT: &str = "/chat/completions";

/// Decodes an OpenAI-compatible SSE chat stream from raw byte chunks into [`StreamEvent`]s.
///
/// Public so the decoding stage can be exercised on its own (replaying recorded traffic).
/// Events may be split anywhere across chunks. `choices[0].delta.content` becomes
/// [`StreamEvent::Content`], `reasoning_content` (or `reasoning`) [`StreamEvent::Thinking`];
/// `finish_reason` and `usage` make the final [`StreamEvent::Done`], sent at `data: [DONE]`.
/// An `event: error` or an `{"error": ...}` payload becomes [`Error::Server`], data that is not
/// JSON [`Error::Protocol`], a body without any event [`Error::EmptyResponse`], an end without
/// `[DONE]` or a `finish_reason` [`Error::Truncated`], and `idle` without a byte
/// [`Error::Timeout`].
pub fn decode_sse_chat_stream<S, E>(body: S, idle: Duration) -> ChatStream
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin + 'static,
    E: std::error::Error + 'static,
{
    let state = State {
        body,
        decoder: SseDecoder::default(),
        pending: VecDeque::new(),
        end: None,
        phase: Phase::Streaming,
        finish: None,
        usage: Usage::default(),
        events: 0,
        idle,
    };
    Box::pin(futures::stream::unfold(state, State::next_item))
}

#[derive(PartialEq, Eq)]
enum Phase {
    Streaming,
    /// `[DONE]` arrived: read the (empty) rest so the connection can be reused.
    Draining,
    Finished,
}

struct State<S> {
    body: S,
    decoder: SseDecoder,
    pending: VecDeque<StreamEvent>,
    /// Handed out after `pending`, then the stream ends.
    end: Option<Error>,
    phase: Phase,
    finish: Option<String>,
    usage: Usage,
    /// Data events seen: none at all is no answer, not an answer cut short.
    events: usize,
    idle: Duration,
}

impl<S, E> State<S>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin + 'static,
    E: std::error::Error + 'static,
{
    async fn next_item(mut self) -> Option<(Result<StreamEvent>, Self)> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some((Ok(item), self));
            }
            if let Some(err) = self.end.take() {
                self.phase = Phase::Finished;
                return Some((Err(err), self));
            }
            match self.phase {
                Phase::Finished => return None,
                Phase::Draining => {
                    drain(&mut self.body).await;
                    self.phase = Phase::Finished;
                    return None;
                }
                Phase::Streaming => {}
            }
            match self.decoder.next_event() {
                Err(_) => {
                    self.end = Some(Error::Protocol {
                        reason: format!(
                            "an event longer than {} MiB without its end",
                            MAX_LINE_BYTES >> 20
                        ),
                        line: String::new(),
                    });
                    continue;
                }
                Ok(Some(event)) => {
                    self.event(&event);
                    continue;
                }
                Ok(None) => {}
            }
            match next_chunk(&mut self.body, self.idle, ENDPOINT).await {
                Err(err) => self.end = Some(err),
                Ok(Some(chunk)) => self.decoder.push(&chunk),
                Ok(None) => {
                    if let Some(event) = self.decoder.finish() {
                        self.event(&event);
                    }
                    if self.phase == Phase::Streaming && self.end.is_none() {
                        self.phase = Phase::Finished;
                        if self.finish.is_some() {
                            // Finished by the model; only the `[DONE]` marker is missing.
                            self.done();
                        } else if self.events == 0 {
                            self.end = Some(Error::EmptyResponse {
                                endpoint: ENDPOINT.to_owned(),
                            });
                        } else {
                            self.end = Some(Error::Truncated);
                        }
                    }
                }
            }
        }
    }

    fn event(&mut self, event: &SseEvent) {
        self.events += 1;
        if let Err(err) = self.decode(event) {
            self.end = Some(err);
        }
    }

    fn decode(&mut self, event: &SseEvent) -> Result<()> {
        let data = event.data.trim_ascii();
        if event.event.as_deref() == Some("error") {
            return Err(Error::Server {
                message: error_text(data),
            });
        }
        if data == b"[DONE]" {
            self.done();
            self.phase = Phase::Draining;
            return Ok(());
        }
        let chunk: Chunk<'_> = serde_json::from_slice(data).map_err(|err| Error::Protocol {
            reason: err.to_string(),
            line: excerpt(data),
        })?;
        if let Some(error) = chunk.error {
            return Err(Error::Server {
                message: error.into_message(),
            });
        }
        if let Some(choice) = chunk.choices.into_iter().find(|c| c.index == 0) {
            if let Some(delta) = choice.delta {
                if let Some(thinking) = delta.reasoning_content.or(delta.reasoning)
                    && !thinking.is_empty()
                {
                    self.pending
                        .push_back(StreamEvent::Thinking(thinking.into_owned()));
                }
                if let Some(content) = delta.content.filter(|c| !c.is_empty()) {
                    self.pending
                        .push_back(StreamEvent::Content(content.into_owned()));
                }
            }
            if let Some(reason) = choice.finish_reason {
                self.finish = Some(reason.into_owned());
            }
        }
        if let Some(usage) = chunk.usage {
            self.usage = usage;
        }
        Ok(())
    }

    fn done(&mut self) {
        self.pending.push_back(StreamEvent::Done(Completion {
            done_reason: self.finish.as_deref().map(DoneReason::parse),
            stats: GenerationStats {
                prompt_eval_count: self.usage.prompt_tokens,
                eval_count: self.usage.completion_tokens,
                // The API reports no durations: left zero, so no server-side rate is claimed.
                ..GenerationStats::default()
            },
        }));
    }
}

/// The message of an `event: error`: its JSON `error`/`message`, else the text.
fn error_text(data: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Wrapped<'a> {
        #[serde(borrow)]
        error: Option<ErrorPayload<'a>>,
        #[serde(borrow)]
        message: Option<Cow<'a, str>>,
    }
    match serde_json::from_slice::<Wrapped<'_>>(data) {
        Ok(Wrapped {
            error: Some(error), ..
        }) => error.into_message(),
        Ok(Wrapped {
            message: Some(message),
            ..
        }) => message.into_owned(),
        _ if data.is_empty() => "(no message)".to_owned(),
        _ => excerpt(data),
    }
}

/// One `chat.completion.chunk`. Unknown fields are ignored: servers add their own.
#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow, default)]
    choices: Vec<Choice<'a>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(borrow, default)]
    error: Option<ErrorPayload<'a>>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default)]
    index: u32,
    #[serde(borrow, default)]
    delta: Option<Delta<'a>>,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    /// DeepSeek, vLLM and SGLang's name for the model's thinking.
    #[serde(borrow, default)]
    reasoning_content: Option<Cow<'a, str>>,
    /// Newer vLLM's and Ollama's `/v1` name for it.
    #[serde(borrow, default)]
    reasoning: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

/// `{"error": {"message": ...}}` or `{"error": "..."}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum ErrorPayload<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    Object {
        #[serde(borrow, default)]
        message: Cow<'a, str>,
    },
}

impl ErrorPayload<'_> {
    fn into_message(self) -> String {
        match self {
            Self::Text(text) | Self::Object { message: text } if !text.is_empty() => {
                text.into_owned()
            }
            _ => "(no message)".to_owned(),
        }
    }
}
