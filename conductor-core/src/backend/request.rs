//! What a backend is asked: messages, runner options, keep-alive, the chat request.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::duration::{MAX_DURATION, format_duration, parse_duration};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions for the model: the composed personality.
    System,
    /// The person.
    User,
    /// The model.
    Assistant,
    /// A tool's result.
    Tool,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::System => "system",
            Self::User => "user",
            Self::Assistant => "assistant",
            Self::Tool => "tool",
        })
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// The text.
    pub content: String,
    /// True for an assistant reply that was cut short (cancelled, connection lost).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub incomplete: bool,
}

impl Message {
    /// A message with the given role and text.
    #[must_use]
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            incomplete: false,
        }
    }
    /// A system message.
    #[must_use]
    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }
    /// A user message.
    #[must_use]
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }
    /// An assistant message.
    #[must_use]
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }
}

/// How long Ollama keeps a model loaded after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepAlive {
    /// Never unload (`-1`).
    Forever,
    /// Unload after this long idle; zero unloads at once.
    For(Duration),
}

impl KeepAlive {
    /// The JSON value Ollama expects: a Go duration string, or -1.
    #[must_use]
    pub fn to_json(self) -> serde_json::Value {
        match self {
            Self::Forever => serde_json::Value::from(-1),
            Self::For(d) if d.subsec_nanos() == 0 => format!("{}s", d.as_secs()).into(),
            Self::For(d) => format!("{}ms", d.as_millis()).into(),
        }
    }
}

impl fmt::Display for KeepAlive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Forever => f.write_str("forever"),
            Self::For(d) => f.write_str(&format_duration(*d)),
        }
    }
}

impl FromStr for KeepAlive {
    type Err = String;

    /// Accepts what Ollama accepts: `10m`, `1h30m`, `300` (seconds), `-1`/`forever`, `0`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "forever" || s.starts_with('-') {
            return Ok(Self::Forever);
        }
        parse_duration(s).map(Self::For)
    }
}

impl Serialize for KeepAlive {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for KeepAlive {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Seconds(secs) if secs < 0 => Ok(Self::Forever),
            Raw::Seconds(secs) if Duration::from_secs(secs.unsigned_abs()) > MAX_DURATION => Err(
                serde::de::Error::custom("keep_alive is longer than ten years: use -1 for ever"),
            ),
            Raw::Seconds(secs) => Ok(Self::For(Duration::from_secs(secs.unsigned_abs()))),
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// Runner and sampling options sent with every request (Ollama's `options`).
///
/// Unset fields are left out, so Ollama and the Modelfile decide them. Changing a *runner*
/// option (`num_ctx`, `num_gpu`, `num_batch`, `num_thread`, `main_gpu`, `use_mmap`) makes Ollama
/// reload the model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunnerOptions {
    /// Context window in tokens. Ollama's own default on a large card is the model's maximum.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_ctx: Option<u32>,
    /// Number of **layers** to offload to the GPU (not a number of GPUs); 0 means CPU only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_gpu: Option<i32>,
    /// Maximum tokens to generate; -1 means no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_predict: Option<i32>,
    /// Prompt-processing batch size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_batch: Option<u32>,
    /// CPU threads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_thread: Option<u32>,
    /// GPU that holds the small tensors when a model is split.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub main_gpu: Option<u32>,
    /// Memory-map the weights.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_mmap: Option<bool>,
    /// Sampling temperature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Top-k sampling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    /// Min-p sampling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_p: Option<f64>,
    /// Repetition penalty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat_penalty: Option<f64>,
    /// Random seed, for reproducible answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// Stop sequences.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<Vec<String>>,
    /// Options conductor has no field for (`num_keep`, `mirostat`, ...), sent to Ollama as
    /// given. Set by `ask -o key=value`; never read from the config file, whose unknown keys
    /// stay errors (a typo there should not pass silently).
    #[serde(flatten, skip_deserializing)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl RunnerOptions {
    /// Fills every unset field from `lower` (self wins).
    #[must_use]
    pub fn or(self, lower: Self) -> Self {
        Self {
            num_ctx: self.num_ctx.or(lower.num_ctx),
            num_gpu: self.num_gpu.or(lower.num_gpu),
            num_predict: self.num_predict.or(lower.num_predict),
            num_batch: self.num_batch.or(lower.num_batch),
            num_thread: self.num_thread.or(lower.num_thread),
            main_gpu: self.main_gpu.or(lower.main_gpu),
            use_mmap: self.use_mmap.or(lower.use_mmap),
            temperature: self.temperature.or(lower.temperature),
            top_p: self.top_p.or(lower.top_p),
            top_k: self.top_k.or(lower.top_k),
            min_p: self.min_p.or(lower.min_p),
            repeat_penalty: self.repeat_penalty.or(lower.repeat_penalty),
            seed: self.seed.or(lower.seed),
            stop: self.stop.or(lower.stop),
            extra: {
                let mut extra = lower.extra;
                extra.extend(self.extra);
                extra
            },
        }
    }

    /// True when no option is set (the `options` object is then left out of the request).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Only the options that decide how the model is loaded; a change in these reloads it.
    #[must_use]
    pub fn runner_only(&self) -> Self {
        Self {
            num_ctx: self.num_ctx,
            num_gpu: self.num_gpu,
            num_batch: self.num_batch,
            num_thread: self.num_thread,
            main_gpu: self.main_gpu,
            use_mmap: self.use_mmap,
            ..Self::default()
        }
    }
}

/// A chat request as conductor sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// The model name, e.g. `llama3.2:3b`.
    pub model: String,
    /// The conversation; conductor always puts the personality first, as a system message.
    pub messages: Vec<Message>,
    /// Runner and sampling options.
    pub options: RunnerOptions,
    /// How long the model stays loaded afterwards; `None` leaves Ollama's default.
    pub keep_alive: Option<KeepAlive>,
    /// Ask a thinking model to think (`Some(true)`), not to (`Some(false)`), or leave it.
    pub think: Option<bool>,
}

impl ChatRequest {
    /// A request for `model` with these messages and no options.
    #[must_use]
    pub fn new(model: impl Into<String>, messages: Vec<Message>) -> Self {
        Self {
            model: model.into(),
            messages,
            options: RunnerOptions::default(),
            keep_alive: None,
            think: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive_serializes_as_ollama_expects() {
        assert_eq!(KeepAlive::Forever.to_json(), serde_json::json!(-1));
        assert_eq!(
            KeepAlive::For(Duration::from_secs(600)).to_json(),
            serde_json::json!("600s")
        );
        assert_eq!(
            "10m".parse::<KeepAlive>(),
            Ok(KeepAlive::For(Duration::from_secs(600)))
        );
        assert_eq!("-1".parse::<KeepAlive>(), Ok(KeepAlive::Forever));
        assert_eq!("0".parse::<KeepAlive>(), Ok(KeepAlive::For(Duration::ZERO)));
    }

    #[test]
    fn options_serialize_only_what_is_set() {
        let options = RunnerOptions {
            num_ctx: Some(4096),
            temperature: Some(0.7),
            ..RunnerOptions::default()
        };
        let json = serde_json::to_string(&options).unwrap_or_default();
        assert_eq!(json, r#"{"num_ctx":4096,"temperature":0.7}"#);
    }

    #[test]
    fn extra_options_are_sent_but_never_read_from_a_file() {
        let mut options = RunnerOptions {
            num_ctx: Some(4096),
            ..RunnerOptions::default()
        };
        options.extra.insert("mirostat".into(), 2.into());
        let json = serde_json::to_string(&options).unwrap_or_default();
        assert_eq!(json, r#"{"num_ctx":4096,"mirostat":2}"#);
        let merged = options.clone().or(RunnerOptions::default());
        assert_eq!(merged.extra.get("mirostat"), Some(&2.into()));
        assert!(toml::from_str::<RunnerOptions>("mirostat = 2").is_err());
    }
}
