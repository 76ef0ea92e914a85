//! One source of configuration as a layer of `Option`s: the file, the environment, the
//! defaults; merged with [`ConfigLayer::combine`].

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::DEFAULT_MODEL;
use super::chat::ChatLayer;
use crate::backend::ollama::{OllamaHost, Secret, redact_address};
use crate::backend::{BackendKind, KeepAlive, RetryPolicy, RunnerOptions, Timeouts};
use crate::duration::HumanDuration;
use crate::error::{ConfigError, FileLocation};
use crate::gpu::{GpuPolicy, MinFraction};
use crate::personality::{DEFAULT_PERSONALITY, PersonalityName};

/// `[ollama]`: how to reach the server.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OllamaLayer {
    /// Server address, in any form `OLLAMA_HOST` accepts.
    pub host: Option<OllamaHost>,
    /// A pool of servers (see `docs/scale-out.md`); wins over `host` in the same layer. The
    /// address is decided by the highest layer that names one: `--host` or `OLLAMA_HOST` pin a
    /// single host over a pool in the file.
    pub hosts: Option<Vec<OllamaHost>>,
    /// Bearer token for a server behind an authenticating proxy.
    pub token: Option<Secret>,
    /// A PEM file of a certificate authority to trust for `https://` (an internal proxy).
    pub ca_cert: Option<PathBuf>,
    /// Connection timeout.
    pub connect_timeout: Option<HumanDuration>,
    /// Time allowed for the first byte of an answer (covers loading the model).
    pub load_timeout: Option<HumanDuration>,
    /// Time allowed between two reads of a streaming answer.
    pub idle_timeout: Option<HumanDuration>,
    /// Retries when Ollama answers 429 or 503.
    pub max_retries: Option<u32>,
}

/// `[backend]`: which protocol the server speaks.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendLayer {
    /// `ollama` (the default) or `openai` (an OpenAI-compatible server; `ollama.host` is then
    /// its base URL, e.g. `http://gpu-box:8000/v1`).
    pub kind: Option<BackendKind>,
}

/// `[gpu]`: the residency policy.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuLayer {
    /// `enforce`, `warn`, `fix` or `off`.
    pub policy: Option<GpuPolicy>,
    /// The smallest GPU share accepted (default 1.0: fully resident).
    pub min_fraction: Option<MinFraction>,
}

/// One source of configuration; every field optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigLayer {
    /// The model, e.g. `llama3.2:3b`.
    pub model: Option<String>,
    /// The personality name.
    pub personality: Option<PersonalityName>,
    /// Extra system text appended after the personality.
    pub system: Option<String>,
    /// How long Ollama keeps the model loaded (`30m`, `-1` for ever).
    pub keep_alive: Option<KeepAlive>,
    /// Ask thinking models to think.
    pub think: Option<bool>,
    /// More directories of personality files (later ones override earlier ones).
    pub personality_dirs: Option<Vec<PathBuf>>,
    /// Runner and sampling options sent with every request.
    #[serde(default)]
    pub options: RunnerOptions,
    /// Which kind of server.
    #[serde(default)]
    pub backend: BackendLayer,
    /// How to reach Ollama (or, with `backend.kind = "openai"`, the OpenAI-compatible server).
    #[serde(default)]
    pub ollama: OllamaLayer,
    /// The GPU-residency policy.
    #[serde(default)]
    pub gpu: GpuLayer,
    /// The chat UI.
    #[serde(default)]
    pub chat: ChatLayer,
}

impl ConfigLayer {
    /// Parses a config file's text; errors name `path`, line and column.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] for bad TOML, unknown fields, wrong types and invalid values.
    pub fn from_toml(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let mut layer: Self = toml::from_str(text).map_err(|err| ConfigError::Parse {
            location: FileLocation::of_toml_error(path, text, &err),
            message: err.message().to_owned(),
        })?;
        if let (Some(ca), Some(base)) = (&mut layer.ollama.ca_cert, path.parent())
            && ca.is_relative()
        {
            *ca = base.join(&*ca);
        }
        // Relative personality directories are relative to the file that names them.
        if let (Some(dirs), Some(base)) = (&mut layer.personality_dirs, path.parent()) {
            for dir in dirs.iter_mut() {
                if dir.is_relative() {
                    *dir = base.join(&*dir);
                }
            }
        }
        Ok(layer)
    }

    /// Reads the environment through `var` (so tests need not touch the process environment).
    /// Empty variables count as unset, as in Ollama.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the variable.
    pub fn from_env(var: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let invalid = |field, name: &str, value: String, reason: String| ConfigError::Invalid {
            field,
            value,
            origin: format!("environment variable {name}"),
            reason,
        };
        let mut layer = Self::default();
        if let Some(value) = get("OLLAMA_HOST") {
            layer.ollama.host = Some(OllamaHost::parse(&value).map_err(|reason| {
                invalid("ollama.host", "OLLAMA_HOST", redact_address(&value), reason)
            })?);
        }
        if let Some(value) = get("CONDUCTOR_OLLAMA_HOSTS") {
            let hosts = value
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(|h| {
                    OllamaHost::parse(h).map_err(|reason| {
                        invalid(
                            "ollama.hosts",
                            "CONDUCTOR_OLLAMA_HOSTS",
                            redact_address(h),
                            reason,
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            layer.ollama.hosts = Some(hosts);
        }
        layer.ollama.token = get("CONDUCTOR_OLLAMA_TOKEN").map(Secret::new);
        if let Some(value) = get("CONDUCTOR_BACKEND") {
            layer.backend.kind =
                Some(value.parse().map_err(|reason| {
                    invalid("backend.kind", "CONDUCTOR_BACKEND", value, reason)
                })?);
        }
        layer.model = get("CONDUCTOR_MODEL");
        if let Some(value) = get("CONDUCTOR_PERSONALITY") {
            layer.personality = Some(PersonalityName::new(&value).map_err(|err| {
                invalid(
                    "personality",
                    "CONDUCTOR_PERSONALITY",
                    value,
                    err.to_string(),
                )
            })?);
        }
        if let Some(value) = get("CONDUCTOR_GPU_POLICY") {
            layer.gpu.policy =
                Some(value.parse().map_err(|reason| {
                    invalid("gpu.policy", "CONDUCTOR_GPU_POLICY", value, reason)
                })?);
        }
        if let Some(value) = get("CONDUCTOR_THEME") {
            layer.chat.theme = Some(
                value
                    .parse()
                    .map_err(|reason| invalid("chat.theme", "CONDUCTOR_THEME", value, reason))?,
            );
        }
        Ok(layer)
    }

    /// Fills every unset field from `lower`; `self` wins.
    #[must_use]
    pub fn combine(self, lower: Self) -> Self {
        // The address is one setting: the higher layer that names a host or a pool decides.
        let (host, hosts) = if self.ollama.host.is_some() || self.ollama.hosts.is_some() {
            (self.ollama.host, self.ollama.hosts)
        } else {
            (lower.ollama.host, lower.ollama.hosts)
        };
        Self {
            model: self.model.or(lower.model),
            personality: self.personality.or(lower.personality),
            system: self.system.or(lower.system),
            keep_alive: self.keep_alive.or(lower.keep_alive),
            think: self.think.or(lower.think),
            personality_dirs: self.personality_dirs.or(lower.personality_dirs),
            options: self.options.or(lower.options),
            backend: BackendLayer {
                kind: self.backend.kind.or(lower.backend.kind),
            },
            ollama: OllamaLayer {
                host,
                hosts,
                token: self.ollama.token.or(lower.ollama.token),
                ca_cert: self.ollama.ca_cert.or(lower.ollama.ca_cert),
                connect_timeout: self.ollama.connect_timeout.or(lower.ollama.connect_timeout),
                load_timeout: self.ollama.load_timeout.or(lower.ollama.load_timeout),
                idle_timeout: self.ollama.idle_timeout.or(lower.ollama.idle_timeout),
                max_retries: self.ollama.max_retries.or(lower.ollama.max_retries),
            },
            gpu: GpuLayer {
                policy: self.gpu.policy.or(lower.gpu.policy),
                min_fraction: self.gpu.min_fraction.or(lower.gpu.min_fraction),
            },
            chat: self.chat.combine(lower.chat),
        }
    }

    /// The built-in defaults as a layer.
    #[must_use]
    pub fn defaults() -> Self {
        let timeouts = Timeouts::default();
        Self {
            model: Some(DEFAULT_MODEL.to_owned()),
            personality: PersonalityName::new(DEFAULT_PERSONALITY).ok(),
            backend: BackendLayer {
                kind: Some(BackendKind::default()),
            },
            ollama: OllamaLayer {
                host: Some(OllamaHost::default()),
                hosts: None,
                connect_timeout: Some(HumanDuration(timeouts.connect)),
                load_timeout: Some(HumanDuration(timeouts.load)),
                idle_timeout: Some(HumanDuration(timeouts.idle)),
                max_retries: Some(RetryPolicy::default().max_retries),
                token: None,
                ca_cert: None,
            },
            gpu: GpuLayer {
                policy: Some(GpuPolicy::default()),
                min_fraction: Some(MinFraction::FULL),
            },
            chat: ChatLayer {
                theme: Some(super::ThemeChoice::default()),
            },
            ..Self::default()
        }
    }
}

/// The address from the merged layer: a pool of two or more hosts (the first also as `host`),
/// or one host.
pub(super) fn address(
    host: Option<OllamaHost>,
    hosts: Option<Vec<OllamaHost>>,
) -> Result<(OllamaHost, Vec<OllamaHost>), ConfigError> {
    let Some(hosts) = hosts else {
        return Ok((host.unwrap_or_default(), Vec::new()));
    };
    let invalid = |value: String, reason: &str| ConfigError::Invalid {
        field: "ollama.hosts",
        value,
        origin: "configuration".into(),
        reason: reason.into(),
    };
    for (at, one) in hosts.iter().enumerate() {
        if hosts[..at].iter().any(|h| h.url() == one.url()) {
            return Err(invalid(
                one.to_string(),
                "listed twice: name each host of the pool once",
            ));
        }
    }
    match hosts.as_slice() {
        [] => Err(invalid(
            "[]".into(),
            "an empty pool: list hosts such as [\"gpu1:11434\", \"gpu2:11434\"], or use ollama.host",
        )),
        [one] => Ok((one.clone(), Vec::new())),
        [first, ..] => Ok((first.clone(), hosts.clone())),
    }
}
