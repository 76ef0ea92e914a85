//! Plain data types of the [`Backend`](super::Backend) API.

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

/// Family facts Ollama reports for a model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelFamily {
    /// File format, e.g. `gguf`.
    #[serde(default)]
    pub format: String,
    /// Architecture family, e.g. `llama`.
    #[serde(default)]
    pub family: String,
    /// Parameter count as Ollama prints it, e.g. `3.2B`.
    #[serde(default)]
    pub parameter_size: String,
    /// Quantization, e.g. `Q4_K_M`.
    #[serde(default)]
    pub quantization_level: String,
}

/// A model present on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalModel {
    /// Its name with tag, e.g. `llama3.2:3b`.
    pub name: String,
    /// Size on disk in bytes.
    pub size: u64,
    /// When it was last modified, as Ollama reports it (RFC 3339).
    pub modified_at: String,
}

/// A model loaded in memory, with where it lives (`/api/ps`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningModel {
    /// Its name with tag, e.g. `llama3.2:3b`.
    pub name: String,
    /// Bytes the loaded model uses in all: weights, KV cache and compute buffers.
    pub size: u64,
    /// The part of `size` in GPU memory, as Ollama estimates it.
    pub size_vram: u64,
    /// The context length really in use (num_ctx after clamping); `None` on old servers.
    pub context_length: Option<u64>,
    /// When Ollama will unload it (RFC 3339 as sent), if it said.
    pub expires_at: Option<String>,
    /// Content digest of the model.
    pub digest: String,
    /// Family facts.
    pub details: ModelFamily,
}

impl RunningModel {
    /// Ollama's own rule for "100% GPU": every byte of the load is in VRAM.
    #[must_use]
    pub fn is_fully_resident(&self) -> bool {
        self.size > 0 && self.size_vram >= self.size
    }

    /// The share of the load Ollama places in VRAM, 0.0..=1.0.
    ///
    /// For a partial load this overstates the truth: `size_vram` counts Ollama's compute-graph
    /// estimate as GPU memory (on an H100, "28% GPU" was 0 of 29 layers).
    #[must_use]
    pub fn gpu_fraction(&self) -> f64 {
        if self.size == 0 {
            return 0.0;
        }
        #[allow(clippy::cast_precision_loss)] // byte counts well below 2^52
        (self.size_vram.min(self.size) as f64 / self.size as f64)
    }

    /// True when this is `model` (`tiny` and `tiny:latest` are the same model).
    #[must_use]
    pub fn is_model(&self, model: &str) -> bool {
        same_model(&self.name, model)
    }

    /// The PROCESSOR column exactly as `ollama ps` prints it.
    #[must_use]
    pub fn processor(&self) -> Processor {
        Processor::from_sizes(self.size, self.size_vram)
    }
}

/// True when two model names denote the same model, as Ollama reads names: a missing tag means
/// `latest`, and case does not matter (`Llama3.2` = `llama3.2:latest`).
#[must_use]
pub fn same_model(a: &str, b: &str) -> bool {
    fn full(name: &str) -> String {
        let name = name.trim().to_lowercase();
        // A tag is after the last ':' that follows the last '/' (a registry may have a port).
        let tagged = name
            .rsplit_once('/')
            .map_or(name.as_str(), |(_, last)| last)
            .contains(':');
        if tagged {
            name
        } else {
            format!("{name}:latest")
        }
    }
    full(a) == full(b)
}

/// Where a loaded model runs, as `ollama ps` shows it in its PROCESSOR column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processor {
    /// `100% GPU`.
    Gpu,
    /// `100% CPU`.
    Cpu,
    /// `cpu%/gpu% CPU/GPU`.
    Split {
        /// Percent on the CPU.
        cpu_percent: u8,
        /// Percent on the GPU.
        gpu_percent: u8,
    },
}

impl Processor {
    /// Ollama's rule (cmd/cmd.go): all in VRAM → GPU, none → CPU, else the rounded split.
    #[must_use]
    pub fn from_sizes(size: u64, size_vram: u64) -> Self {
        if size_vram == 0 {
            Self::Cpu
        } else if size_vram >= size {
            Self::Gpu
        } else {
            #[allow(clippy::cast_precision_loss)]
            let cpu = ((size - size_vram) as f64 / size as f64 * 100.0).round();
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // 0..=100
            let cpu_percent = cpu.clamp(0.0, 100.0) as u8;
            Self::Split {
                cpu_percent,
                gpu_percent: 100 - cpu_percent,
            }
        }
    }
}

impl fmt::Display for Processor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Gpu => f.write_str("100% GPU"),
            Self::Cpu => f.write_str("100% CPU"),
            Self::Split {
                cpu_percent,
                gpu_percent,
            } => write!(f, "{cpu_percent}%/{gpu_percent}% CPU/GPU"),
        }
    }
}

/// What `/api/show` says about a model: its Modelfile parameters and architecture.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelDetails {
    /// The Modelfile's `PARAMETER` lines, in order, as (name, value) with quotes removed.
    pub parameters: Vec<(String, String)>,
    /// The Modelfile text.
    pub modelfile: String,
    /// The prompt template.
    pub template: String,
    /// What the model can do, e.g. `completion`, `tools`, `thinking`.
    pub capabilities: Vec<String>,
    /// GGUF metadata (`general.architecture`, `<arch>.block_count`, ...).
    pub model_info: serde_json::Map<String, serde_json::Value>,
}

impl ModelDetails {
    /// Parses the `parameters` text of `/api/show` (`name<spaces>value` per line).
    #[must_use]
    pub fn parse_parameters(text: &str) -> Vec<(String, String)> {
        text.lines()
            .filter_map(|line| {
                let line = line.trim();
                let (name, value) = line.split_once(char::is_whitespace)?;
                let value = value.trim();
                let value = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value);
                Some((name.to_owned(), value.to_owned()))
            })
            .collect()
    }

    /// The first value of a Modelfile parameter, e.g. `parameter("num_ctx")`.
    #[must_use]
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `general.architecture`, e.g. `llama`.
    #[must_use]
    pub fn architecture(&self) -> Option<&str> {
        self.model_info.get("general.architecture")?.as_str()
    }

    /// An architecture-scoped integer, e.g. `arch_u64("block_count")` reads `llama.block_count`.
    #[must_use]
    pub fn arch_u64(&self, key: &str) -> Option<u64> {
        let arch = self.architecture()?;
        self.model_info.get(&format!("{arch}.{key}"))?.as_u64()
    }

    /// Transformer blocks (`<arch>.block_count`).
    #[must_use]
    pub fn block_count(&self) -> Option<u64> {
        self.arch_u64("block_count")
    }

    /// The weights file the model is made from (`sha256-…` in its `FROM` line). Ollama keeps one
    /// runner per weights file: models made `FROM` the same weights share it, and `/api/ps`
    /// lists it under whichever loaded it.
    #[must_use]
    pub fn weights_blob(&self) -> Option<&str> {
        self.modelfile
            .lines()
            .filter_map(|line| line.strip_prefix("FROM "))
            .find_map(|path| path.rfind("sha256").map(|at| path[at..].trim()))
    }

    /// The context length the model was trained for (`<arch>.context_length`).
    #[must_use]
    pub fn trained_context_length(&self) -> Option<u64> {
        self.arch_u64("context_length")
    }
}

/// A load (preload) request.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadRequest {
    /// The model.
    pub model: String,
    /// The runner options the following requests will send.
    pub options: RunnerOptions,
    /// How long to keep it loaded.
    pub keep_alive: Option<KeepAlive>,
}

/// What a load took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadReport {
    /// Wall time of the load request, measured by the client.
    pub elapsed: Duration,
    /// Ollama's `done_reason` said `load` (it did load or was already loaded).
    pub loaded: bool,
}

/// One progress line of a pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullProgress {
    /// Ollama's status text: `pulling manifest`, `pulling 6a0746a1ec1a`, `verifying sha256
    /// digest`, `writing manifest`, `success`.
    pub status: String,
    /// The layer being downloaded, if any.
    pub digest: Option<String>,
    /// The layer's size in bytes, if known.
    pub total: Option<u64>,
    /// Bytes of the layer downloaded so far.
    pub completed: Option<u64>,
}

impl PullProgress {
    /// True for the last line of a successful pull.
    #[must_use]
    pub fn is_success(&self) -> bool {
        self.status == "success"
    }
}

/// The server's version string, e.g. `0.24.0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerVersion(pub String);

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processor_matches_ollama_ps_on_recorded_h100_loads() {
        // (size, size_vram, what `ollama ps` printed) from shared/ollama/v0.24.0-h100.
        let cases = [
            (25_182_500_864, 25_182_500_864, "100% GPU"),
            (25_712_097_280, 7_909_500_928, "69%/31% CPU/GPU"),
            (18_446_446_592, 0, "100% CPU"),
            (25_712_097_280, 7_265_650_688, "72%/28% CPU/GPU"),
            (4_152_782_848, 4_152_782_848, "100% GPU"),
        ];
        for (size, vram, shown) in cases {
            assert_eq!(Processor::from_sizes(size, vram).to_string(), shown);
        }
    }

    #[test]
    fn parameters_parse_like_ollama_prints_them() {
        let text = "stop                           \"<|im_end|>\"\ntemperature                    0.7\nnum_ctx                        2048";
        let params = ModelDetails::parse_parameters(text);
        assert_eq!(
            params,
            vec![
                ("stop".to_owned(), "<|im_end|>".to_owned()),
                ("temperature".to_owned(), "0.7".to_owned()),
                ("num_ctx".to_owned(), "2048".to_owned()),
            ]
        );
    }

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
}
