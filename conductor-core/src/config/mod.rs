//! Configuration: defaults, a TOML file, the environment and command-line flags.
//!
//! Each source is read into a [`ConfigLayer`] whose fields are all `Option`; layers are merged
//! with precedence flags > environment > file > defaults and validated once into [`Settings`].
//! Values are parsed into their types while a layer is read, so a bad value in the file is
//! reported with its file, line and column, and one from the environment names the variable.
//!
//! The file is `conductor.toml` in the platform config directory (`~/.config/conductor/` on
//! Linux), or the path in `CONDUCTOR_CONFIG`. Example:
//!
//! ```toml
//! model = "llama3.2:3b"
//! personality = "yollayah"
//! keep_alive = "30m"
//!
//! [options]          # runner options sent with every request
//! num_ctx = 8192
//!
//! [backend]
//! kind = "ollama"    # or "openai": an OpenAI-compatible server at ollama.host (…/v1)
//!
//! [ollama]
//! host = "127.0.0.1:11434"   # or a pool: hosts = ["gpu1:11434", "gpu2:11434"]
//! load_timeout = "5m"
//!
//! [gpu]
//! policy = "enforce"  # enforce | warn | fix | off
//!
//! [chat]
//! theme = "auto"      # auto | dark | light: the chat UI's colours
//! ```

mod chat;
mod conductor;
mod layer;
mod paths;
mod starter;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::backend::{BackendKind, KeepAlive, RetryPolicy, RunnerOptions, Timeouts};
use crate::error::{ConfigError, ReadProblem, read_small_file};
use crate::personality::PersonalityName;

// Types this module reads and validates but does not own, re-exported so that their old
// `config::` paths keep working.
pub use crate::backend::ollama::{DEFAULT_HOST, OllamaHost, Secret, redact_address};
pub use crate::duration::{HumanDuration, MAX_DURATION, format_duration, parse_duration};
pub use crate::gpu::{GpuPolicy, MinFraction};
pub use crate::personality::DEFAULT_PERSONALITY;
pub use chat::{ChatLayer, ThemeChoice};
pub use layer::{BackendLayer, ConfigLayer, GpuLayer, OllamaLayer};
pub use paths::{CandidateSource, ConfigCandidate, search_paths};
pub use starter::starter_file;

/// The model used when nothing else says.
pub const DEFAULT_MODEL: &str = "llama3.2:3b";
/// The largest config file read (1 MiB). A `conductor.toml` is a few hundred bytes; a larger
/// file is not one, and reading it whole is not worth the memory.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The environment variables conductor reads, with the setting each one feeds.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("OLLAMA_HOST", "ollama.host"),
    ("CONDUCTOR_OLLAMA_HOSTS", "ollama.hosts"),
    ("CONDUCTOR_OLLAMA_TOKEN", "ollama.token"),
    ("CONDUCTOR_BACKEND", "backend.kind"),
    ("CONDUCTOR_MODEL", "model"),
    ("CONDUCTOR_PERSONALITY", "personality"),
    ("CONDUCTOR_GPU_POLICY", "gpu.policy"),
    ("CONDUCTOR_THEME", "chat.theme"),
];

/// Where a setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Built in.
    Default,
    /// The config file.
    File(PathBuf),
    /// An environment variable.
    Env,
    /// A command-line flag (or the embedding program).
    Flag,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::File(path) => write!(f, "file {}", path.display()),
            Self::Env => f.write_str("environment"),
            Self::Flag => f.write_str("flag"),
        }
    }
}

/// The validated, effective configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Which kind of server `host` is: Ollama, or an OpenAI-compatible server.
    pub backend: BackendKind,
    /// Where Ollama listens (the first host of a pool); for [`BackendKind::OpenAi`], the
    /// server's base URL (`…/v1`).
    pub host: OllamaHost,
    /// A pool of Ollama hosts (`ollama.hosts`, two or more); empty for a single host.
    pub hosts: Vec<OllamaHost>,
    /// Bearer token for a proxied Ollama.
    pub token: Option<Secret>,
    /// Extra certificate authority (PEM file) for `https://` hosts.
    pub ca_cert: Option<PathBuf>,
    /// Timeouts per phase.
    pub timeouts: Timeouts,
    /// Retry policy for a busy server.
    pub retry: RetryPolicy,
    /// The model.
    pub model: String,
    /// The personality.
    pub personality: PersonalityName,
    /// Extra system text after the personality.
    pub system: Option<String>,
    /// How long the model stays loaded.
    pub keep_alive: Option<KeepAlive>,
    /// Ask thinking models to think.
    pub think: Option<bool>,
    /// Runner and sampling options.
    pub options: RunnerOptions,
    /// What to do when the model is not on the GPU.
    pub gpu_policy: GpuPolicy,
    /// The smallest GPU share accepted.
    pub gpu_min_fraction: MinFraction,
    /// Directories searched for personality files, lowest precedence first (the built-in
    /// personalities come before all of them).
    pub personality_dirs: Vec<PathBuf>,
    /// The chat UI's colours (`chat.theme`).
    pub theme: ThemeChoice,
}

/// Settings plus the layers they came from, for `config show`.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The effective settings.
    pub settings: Settings,
    /// The config file that was read, if any.
    pub file: Option<PathBuf>,
    layers: Vec<(Origin, ConfigLayer)>,
}

/// One line of [`LoadedConfig::explain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingLine {
    /// The setting, as in the file (`ollama.host`).
    pub key: &'static str,
    /// Its effective value, secrets masked.
    pub value: String,
    /// Where it came from.
    pub origin: Origin,
}

/// Where and how to load the configuration.
#[derive(Debug, Clone, Default)]
pub struct ConfigSources {
    /// A config file given on the command line (overrides `CONDUCTOR_CONFIG`).
    pub config_file: Option<PathBuf>,
    /// Values from flags.
    pub flags: ConfigLayer,
    /// Skip the config file entirely (tests, `--no-config`).
    pub ignore_file: bool,
}

impl LoadedConfig {
    /// Loads from the real environment and the platform config directory.
    ///
    /// # Errors
    /// Any [`ConfigError`] of a source, or of validation.
    pub fn load(sources: ConfigSources) -> Result<Self, ConfigError> {
        Self::load_with(
            sources,
            &|name| std::env::var(name).ok(),
            dirs::config_dir(),
        )
    }

    /// Loads with an explicit environment and config directory (for tests and embedding).
    ///
    /// # Errors
    /// Any [`ConfigError`] of a source, or of validation.
    pub fn load_with(
        sources: ConfigSources,
        env: &dyn Fn(&str) -> Option<String>,
        config_dir: Option<PathBuf>,
    ) -> Result<Self, ConfigError> {
        let app_dir = config_dir.map(|dir| dir.join("conductor"));
        let explicit = sources.config_file.clone().or_else(|| {
            env("CONDUCTOR_CONFIG")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        let mut layers = vec![
            (Origin::Flag, sources.flags),
            (Origin::Env, ConfigLayer::from_env(env)?),
        ];
        let mut file = None;
        if !sources.ignore_file {
            let path = explicit
                .clone()
                .or_else(|| app_dir.as_ref().map(|d| d.join("conductor.toml")));
            if let Some(path) = path {
                match read_small_file(&path, MAX_FILE_BYTES) {
                    Ok(text) => {
                        layers.push((
                            Origin::File(path.clone()),
                            ConfigLayer::from_toml(&path, &text)?,
                        ));
                        file = Some(path);
                    }
                    // The default file is optional; a file named explicitly must exist.
                    Err(ReadProblem::Io(err))
                        if err.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {}
                    Err(ReadProblem::Io(source)) => return Err(ConfigError::Read { path, source }),
                    Err(ReadProblem::Refused(reason)) => {
                        return Err(ConfigError::Refused { path, reason });
                    }
                }
            }
        }
        layers.push((Origin::Default, ConfigLayer::defaults()));
        let merged = layers
            .iter()
            .rev()
            .fold(ConfigLayer::default(), |lower, (_, layer)| {
                layer.clone().combine(lower)
            });
        let mut personality_dirs: Vec<PathBuf> = app_dir
            .map(|d| d.join("personalities"))
            .into_iter()
            .collect();
        personality_dirs.extend(merged.personality_dirs.clone().unwrap_or_default());
        let settings = Settings::validate(merged, personality_dirs)?;
        Ok(Self {
            settings,
            file,
            layers,
        })
    }

    /// Every setting with its effective value and origin (secrets masked).
    #[must_use]
    pub fn explain(&self) -> Vec<SettingLine> {
        type Getter = fn(&ConfigLayer) -> Option<String>;
        let fields: &[(&'static str, Getter)] = &[
            ("model", |l| l.model.clone()),
            ("personality", |l| {
                l.personality.as_ref().map(ToString::to_string)
            }),
            ("system", |l| l.system.clone()),
            ("keep_alive", |l| l.keep_alive.map(|k| k.to_string())),
            ("think", |l| l.think.map(|t| t.to_string())),
            ("personality_dirs", |l| {
                l.personality_dirs.as_ref().map(|d| {
                    d.iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
            }),
            ("options", |l| {
                (!l.options.is_empty())
                    .then(|| serde_json::to_string(&l.options).unwrap_or_else(|_| "?".to_owned()))
            }),
            ("backend.kind", |l| l.backend.kind.map(|k| k.to_string())),
            ("ollama.host", |l| {
                l.ollama.host.as_ref().map(ToString::to_string)
            }),
            ("ollama.hosts", |l| {
                l.ollama.hosts.as_ref().map(|hosts| {
                    hosts
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                })
            }),
            ("ollama.token", |l| {
                l.ollama.token.as_ref().map(|_| "(set, hidden)".to_owned())
            }),
            ("ollama.connect_timeout", |l| {
                l.ollama.connect_timeout.map(|d| format_duration(d.0))
            }),
            ("ollama.load_timeout", |l| {
                l.ollama.load_timeout.map(|d| format_duration(d.0))
            }),
            ("ollama.idle_timeout", |l| {
                l.ollama.idle_timeout.map(|d| format_duration(d.0))
            }),
            ("ollama.max_retries", |l| {
                l.ollama.max_retries.map(|n| n.to_string())
            }),
            ("gpu.policy", |l| l.gpu.policy.map(|p| p.to_string())),
            ("gpu.min_fraction", |l| {
                l.gpu.min_fraction.map(|f| f.get().to_string())
            }),
            ("chat.theme", |l| l.chat.theme.map(|t| t.to_string())),
        ];
        fields
            .iter()
            .filter_map(|(key, get)| {
                self.layers.iter().find_map(|(origin, layer)| {
                    get(layer).map(|value| SettingLine {
                        key,
                        value,
                        origin: origin.clone(),
                    })
                })
            })
            .collect()
    }
}

impl Settings {
    /// Validates a merged layer. Fields the defaults always set are required here.
    fn validate(merged: ConfigLayer, personality_dirs: Vec<PathBuf>) -> Result<Self, ConfigError> {
        let defaults = ConfigLayer::defaults();
        let model = merged.model.unwrap_or_default();
        if model.trim().is_empty() || model.chars().any(char::is_whitespace) {
            return Err(ConfigError::Invalid {
                field: "model",
                value: model,
                origin: "configuration".into(),
                reason: "a model name such as llama3.2:3b, without spaces".into(),
            });
        }
        let secs = |d: Option<HumanDuration>, fallback: Duration| d.map_or(fallback, |d| d.0);
        let default_timeouts = Timeouts::default();
        let timeouts = Timeouts {
            connect: secs(merged.ollama.connect_timeout, default_timeouts.connect),
            load: secs(merged.ollama.load_timeout, default_timeouts.load),
            idle: secs(merged.ollama.idle_timeout, default_timeouts.idle),
        };
        for (field, value) in [
            ("ollama.connect_timeout", timeouts.connect),
            ("ollama.load_timeout", timeouts.load),
            ("ollama.idle_timeout", timeouts.idle),
        ] {
            if value.is_zero() {
                return Err(ConfigError::Invalid {
                    field,
                    value: "0".into(),
                    origin: "configuration".into(),
                    reason: "a timeout must be longer than zero".into(),
                });
            }
        }
        if let Some(num_ctx) = merged.options.num_ctx
            && num_ctx < 256
        {
            return Err(ConfigError::Invalid {
                field: "options.num_ctx",
                value: num_ctx.to_string(),
                origin: "configuration".into(),
                reason: "a context below 256 tokens cannot hold a personality; use e.g. 4096"
                    .into(),
            });
        }
        let (host, hosts) = layer::address(merged.ollama.host, merged.ollama.hosts)?;
        Ok(Self {
            backend: merged.backend.kind.unwrap_or_default(),
            host,
            hosts,
            token: merged.ollama.token,
            ca_cert: merged.ollama.ca_cert,
            timeouts,
            retry: RetryPolicy {
                max_retries: merged
                    .ollama
                    .max_retries
                    .unwrap_or(RetryPolicy::default().max_retries),
                ..RetryPolicy::default()
            },
            model,
            personality: merged
                .personality
                .or(defaults.personality)
                .unwrap_or_else(PersonalityName::default_name),
            system: merged.system.filter(|s| !s.trim().is_empty()),
            keep_alive: merged.keep_alive,
            think: merged.think,
            options: merged.options,
            gpu_policy: merged.gpu.policy.unwrap_or_default(),
            gpu_min_fraction: merged.gpu.min_fraction.unwrap_or(MinFraction::FULL),
            personality_dirs,
            theme: merged.chat.theme.unwrap_or_default(),
        })
    }

    /// Settings from defaults only (no file, no environment): a starting point for embedding.
    #[must_use]
    pub fn defaults() -> Self {
        match Self::validate(ConfigLayer::defaults(), Vec::new()) {
            Ok(settings) => settings,
            Err(_) => unreachable_defaults(),
        }
    }
}

#[allow(clippy::panic)] // the built-in defaults are valid, checked by a unit test
fn unreachable_defaults() -> Settings {
    panic!("built-in defaults are valid")
}
