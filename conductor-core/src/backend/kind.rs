//! Which kind of server a backend talks to: [`BackendKind`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

/// The protocol of the server conductor talks to (`[backend] kind`, `CONDUCTOR_BACKEND`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BackendKind {
    /// Ollama's own API (`/api/chat`, `/api/ps`, ...): chat plus model management and residency.
    #[default]
    Ollama,
    /// An OpenAI-compatible server (`/v1/chat/completions`, `/v1/models`): vLLM, SGLang,
    /// llama.cpp's `llama-server`, TGI, LM Studio, Ollama's own `/v1`. Chat and model lists only.
    OpenAi,
}

impl BackendKind {
    /// The name used in configuration: `ollama` or `openai`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ollama => "ollama",
            Self::OpenAi => "openai",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BackendKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ollama" => Ok(Self::Ollama),
            "openai" => Ok(Self::OpenAi),
            other => Err(format!(
                "unknown backend {other:?}: use ollama or openai (an OpenAI-compatible server)"
            )),
        }
    }
}

impl<'de> Deserialize<'de> for BackendKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}
