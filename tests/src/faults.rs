//! What a scripted answer is made of: the tokens, the statistics of the final line, how the body
//! is cut into chunks and what goes wrong on purpose.

use std::time::Duration;

/// How the stand-in cuts a streamed body into HTTP chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunking {
    /// One line per chunk, as a real Ollama sends.
    PerLine,
    /// `n` lines packed into each chunk.
    Packed(usize),
    /// Chunks of `n` bytes, cutting lines (and UTF-8 characters) anywhere.
    SplitEvery(usize),
    /// The whole body in one chunk.
    Whole,
}

/// Something that goes wrong on purpose.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// An HTTP error status with this body (JSON `{"error": ...}` when `json` is true), sent
    /// instead of the answer.
    Status {
        /// The status code.
        status: u16,
        /// The error message (or raw body when not JSON).
        body: String,
        /// Send it as `{"error": body}` with `application/json`.
        json: bool,
    },
    /// After `after` token lines, an `{"error": msg}` line inside the 200 stream, then the end.
    ErrorLine {
        /// Token lines before the error.
        after: usize,
        /// Ollama's message.
        message: String,
    },
    /// After `after` token lines, close the connection without the final line or chunk.
    Drop {
        /// Token lines before the drop.
        after: usize,
    },
    /// After `after` token lines, send this raw text as a line.
    Malformed {
        /// Token lines before it.
        after: usize,
        /// The raw line (a newline is added).
        line: String,
    },
    /// After `after` token lines, send nothing for `stall`, then continue.
    Stall {
        /// Token lines before the stall.
        after: usize,
        /// How long.
        stall: Duration,
    },
    /// Read the request and never answer, holding the connection open until the client
    /// leaves: a hung server, or something that is not Ollama.
    NoResponse,
    /// Send the head of a `200` JSON response announcing a body, then nothing more.
    NoBody,
    /// A `200` chunked `application/x-ndjson` response without a single line, as a proxy
    /// that lost the upstream answer may send.
    EmptyBody,
}

/// Ollama's statistics on the final line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// ns
    pub total_duration: u64,
    /// ns
    pub load_duration: u64,
    /// tokens
    pub prompt_eval_count: u64,
    /// ns
    pub prompt_eval_duration: u64,
    /// ns; `eval_count` is the number of token lines.
    pub eval_duration: u64,
}

impl Default for Stats {
    /// The numbers of the recorded `21_chat_stream_keepalive`.
    fn default() -> Self {
        Self {
            total_duration: 7_234_290,
            load_duration: 1_582_398,
            prompt_eval_count: 62,
            prompt_eval_duration: 1_556_725,
            eval_duration: 3_023_922,
        }
    }
}

/// A scripted answer to one `/api/chat` or `/api/generate` request.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The answer, token by token.
    pub tokens: Vec<String>,
    /// Thinking tokens sent before the answer.
    pub thinking: Vec<String>,
    /// `done_reason` of the final line.
    pub done_reason: String,
    /// Statistics of the final line.
    pub stats: Stats,
    /// How the body is cut into chunks.
    pub chunking: Chunking,
    /// Delay before the response head (a model load).
    pub first_byte_delay: Duration,
    /// Delay between chunks.
    pub chunk_delay: Duration,
    /// A fault to inject.
    pub fault: Option<Fault>,
}

impl Reply {
    /// An answer made of these tokens.
    #[must_use]
    pub fn tokens(tokens: &[&str]) -> Self {
        Self {
            tokens: tokens.iter().map(|t| (*t).to_owned()).collect(),
            thinking: Vec::new(),
            done_reason: "stop".to_owned(),
            stats: Stats::default(),
            chunking: Chunking::PerLine,
            first_byte_delay: Duration::ZERO,
            chunk_delay: Duration::ZERO,
            fault: None,
        }
    }

    /// An HTTP error instead of an answer, with Ollama's JSON error body.
    #[must_use]
    pub fn status(status: u16, message: &str) -> Self {
        Self::tokens(&[]).fault(Fault::Status {
            status,
            body: message.to_owned(),
            json: true,
        })
    }

    /// Sets the chunking.
    #[must_use]
    pub fn chunking(mut self, chunking: Chunking) -> Self {
        self.chunking = chunking;
        self
    }

    /// Sets the fault.
    #[must_use]
    pub fn fault(mut self, fault: Fault) -> Self {
        self.fault = Some(fault);
        self
    }

    /// Delays the response head (as a model load does).
    #[must_use]
    pub fn first_byte_delay(mut self, delay: Duration) -> Self {
        self.first_byte_delay = delay;
        self
    }

    /// Delays every chunk.
    #[must_use]
    pub fn chunk_delay(mut self, delay: Duration) -> Self {
        self.chunk_delay = delay;
        self
    }

    /// Thinking tokens before the answer.
    #[must_use]
    pub fn thinking(mut self, thinking: &[&str]) -> Self {
        self.thinking = thinking.iter().map(|t| (*t).to_owned()).collect();
        self
    }

    /// Sets `done_reason`.
    #[must_use]
    pub fn done_reason(mut self, reason: &str) -> Self {
        self.done_reason = reason.to_owned();
        self
    }

    /// Sets the statistics.
    #[must_use]
    pub fn stats(mut self, stats: Stats) -> Self {
        self.stats = stats;
        self
    }
}
