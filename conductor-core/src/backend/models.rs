//! What a [`ModelServer`](super::ModelServer) reports: models present and loaded, where they
//! live, their Modelfile facts, loads and pulls.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{KeepAlive, RunnerOptions};

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
    /// The Modelfile's `SYSTEM` text, if it has one. Ollama uses it only for a request whose
    /// first message is not a system message: conductor's composed personality replaces it.
    pub system: Option<String>,
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
}
