//! What a backend answers: the stream's events, why it stopped, and the server's statistics.

use std::fmt;
use std::time::Duration;

/// One event of a backend's streaming chat answer (the item of a
/// [`ChatStream`](super::ChatStream)).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StreamEvent {
    /// More of the answer.
    Content(String),
    /// More of the model's thinking.
    Thinking(String),
    /// The answer is complete; the server's statistics.
    Done(Completion),
}

/// Why Ollama stopped generating.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DoneReason {
    /// The model finished (end of sequence or a stop word).
    Stop,
    /// `num_predict` or the context limit was reached.
    Length,
    /// A load-only request finished loading.
    Load,
    /// An unload request finished.
    Unload,
    /// Anything else Ollama may say, verbatim.
    Other(String),
}

impl DoneReason {
    /// Parses Ollama's `done_reason` string.
    #[must_use]
    pub fn parse(s: &str) -> Self {
        match s {
            "stop" => Self::Stop,
            "length" => Self::Length,
            "load" => Self::Load,
            "unload" => Self::Unload,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Ollama's spelling.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
            Self::Load => "load",
            Self::Unload => "unload",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for DoneReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The final event of an answer: why it stopped and Ollama's statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// Why generation stopped; `None` when the server did not say (old servers).
    pub done_reason: Option<DoneReason>,
    /// Ollama's timing and token counts.
    pub stats: GenerationStats,
}

/// Ollama's statistics for one request (fields it leaves out are zero).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GenerationStats {
    /// Wall time of the whole request on the server.
    pub total_duration: Duration,
    /// Time spent loading (or checking) the model.
    pub load_duration: Duration,
    /// Tokens in the prompt (all of them, cached or not).
    pub prompt_eval_count: u64,
    /// Time spent evaluating the prompt; small when the prompt cache hit.
    pub prompt_eval_duration: Duration,
    /// Tokens generated.
    pub eval_count: u64,
    /// Time spent generating.
    pub eval_duration: Duration,
}

impl GenerationStats {
    /// Decode speed as Ollama measures it (`eval_count / eval_duration`), if measurable.
    #[must_use]
    pub fn tokens_per_second(&self) -> Option<f64> {
        rate(self.eval_count, self.eval_duration)
    }

    /// Prompt-evaluation speed, if measurable.
    #[must_use]
    pub fn prompt_tokens_per_second(&self) -> Option<f64> {
        rate(self.prompt_eval_count, self.prompt_eval_duration)
    }
}

fn rate(count: u64, over: Duration) -> Option<f64> {
    let secs = over.as_secs_f64();
    #[allow(clippy::cast_precision_loss)] // token counts are far below 2^52
    (count > 0 && secs > 0.0).then(|| count as f64 / secs)
}
