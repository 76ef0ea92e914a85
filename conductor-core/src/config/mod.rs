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
//! [ollama]
//! host = "127.0.0.1:11434"
//! load_timeout = "5m"
//!
//! [gpu]
//! policy = "enforce"  # enforce | warn | fix | off
//! ```

mod conductor;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::backend::{KeepAlive, RetryPolicy, RunnerOptions, Timeouts};
use crate::error::{ConfigError, FileLocation, ReadProblem, read_small_file};
use crate::personality::PersonalityName;

// Types this module reads and validates but does not own, re-exported so that their old
// `config::` paths keep working.
pub use crate::backend::ollama::{DEFAULT_HOST, OllamaHost, Secret, redact_address};
pub use crate::duration::{HumanDuration, MAX_DURATION, format_duration, parse_duration};
pub use crate::gpu::{GpuPolicy, MinFraction};
pub use crate::personality::DEFAULT_PERSONALITY;

/// The model used when nothing else says.
pub const DEFAULT_MODEL: &str = "llama3.2:3b";
/// The largest config file read (1 MiB). A `conductor.toml` is a few hundred bytes; a larger
/// file is not one, and reading it whole is not worth the memory.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The environment variables conductor reads, with the setting each one feeds.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("OLLAMA_HOST", "ollama.host"),
    ("CONDUCTOR_OLLAMA_TOKEN", "ollama.token"),
    ("CONDUCTOR_MODEL", "model"),
    ("CONDUCTOR_PERSONALITY", "personality"),
    ("CONDUCTOR_GPU_POLICY", "gpu.policy"),
];

/// `[ollama]`: how to reach the server.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OllamaLayer {
    /// Server address, in any form `OLLAMA_HOST` accepts.
    pub host: Option<OllamaHost>,
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
    /// How to reach Ollama.
    #[serde(default)]
    pub ollama: OllamaLayer,
    /// The GPU-residency policy.
    #[serde(default)]
    pub gpu: GpuLayer,
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
        layer.ollama.token = get("CONDUCTOR_OLLAMA_TOKEN").map(Secret::new);
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
        Ok(layer)
    }

    /// Fills every unset field from `lower`; `self` wins.
    #[must_use]
    pub fn combine(self, lower: Self) -> Self {
        Self {
            model: self.model.or(lower.model),
            personality: self.personality.or(lower.personality),
            system: self.system.or(lower.system),
            keep_alive: self.keep_alive.or(lower.keep_alive),
            think: self.think.or(lower.think),
            personality_dirs: self.personality_dirs.or(lower.personality_dirs),
            options: self.options.or(lower.options),
            ollama: OllamaLayer {
                host: self.ollama.host.or(lower.ollama.host),
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
        }
    }

    /// The built-in defaults as a layer.
    #[must_use]
    pub fn defaults() -> Self {
        let timeouts = Timeouts::default();
        Self {
            model: Some(DEFAULT_MODEL.to_owned()),
            personality: PersonalityName::new(DEFAULT_PERSONALITY).ok(),
            ollama: OllamaLayer {
                host: Some(OllamaHost::default()),
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
            ..Self::default()
        }
    }
}

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
    /// Where Ollama listens.
    pub host: OllamaHost,
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
            ("ollama.host", |l| {
                l.ollama.host.as_ref().map(ToString::to_string)
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
        Ok(Self {
            host: merged.ollama.host.unwrap_or_default(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn a_bad_address_in_the_environment_is_quoted_without_its_password() {
        let err = ConfigLayer::from_env(&env(&[("OLLAMA_HOST", "http://me:hunter2@bad host")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("OLLAMA_HOST") && !err.contains("hunter2"),
            "{err}"
        );
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn precedence_is_flags_then_env_then_file_then_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "model = \"from-file\"\npersonality = \"tutor\"\n[ollama]\nhost = \"file-host:1\"\n",
        )
        .unwrap();
        let sources = ConfigSources {
            config_file: Some(file.clone()),
            flags: ConfigLayer {
                model: Some("from-flag".into()),
                ..ConfigLayer::default()
            },
            ignore_file: false,
        };
        let loaded = LoadedConfig::load_with(
            sources,
            &env(&[("CONDUCTOR_MODEL", "from-env"), ("OLLAMA_HOST", "env-host")]),
            None,
        )
        .unwrap();
        let s = &loaded.settings;
        assert_eq!(s.model, "from-flag");
        assert_eq!(s.host.to_string(), "http://env-host:11434");
        assert_eq!(s.personality.as_str(), "tutor");
        assert_eq!(s.gpu_policy, GpuPolicy::Enforce);
        let lines = loaded.explain();
        let origin = |key: &str| {
            lines
                .iter()
                .find(|l| l.key == key)
                .map(|l| l.origin.clone())
        };
        assert_eq!(origin("model"), Some(Origin::Flag));
        assert_eq!(origin("ollama.host"), Some(Origin::Env));
        assert_eq!(origin("personality"), Some(Origin::File(file)));
        assert_eq!(origin("gpu.policy"), Some(Origin::Default));
    }

    #[test]
    fn defaults_without_any_source() {
        let loaded = LoadedConfig::load_with(ConfigSources::default(), &env(&[]), None).unwrap();
        assert_eq!(loaded.settings.model, DEFAULT_MODEL);
        assert_eq!(loaded.settings.personality.as_str(), DEFAULT_PERSONALITY);
        assert_eq!(loaded.settings.host.to_string(), "http://127.0.0.1:11434");
        assert_eq!(Settings::defaults().model, DEFAULT_MODEL);
    }

    #[test]
    fn file_errors_name_file_line_and_column() {
        let path = Path::new("/etc/conductor.toml");
        let err =
            ConfigLayer::from_toml(path, "model = \"x\"\n[gpu]\npolicy = \"maybe\"\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("/etc/conductor.toml:3:10: "), "{text}");
        assert!(text.contains("enforce"), "{text}");

        let err = ConfigLayer::from_toml(path, "modle = \"x\"\n").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/etc/conductor.toml:1:1: unknown field `modle`"),
            "{err}"
        );

        let err = ConfigLayer::from_toml(path, "[options]\nnum_ctx = \"big\"\n").unwrap_err();
        assert!(
            err.to_string().starts_with("/etc/conductor.toml:2:11: "),
            "{err}"
        );

        let err = ConfigLayer::from_toml(path, "[ollama]\nhost = \"ftp://x\"\n").unwrap_err();
        assert!(err.to_string().contains("unsupported scheme"), "{err}");

        let err = ConfigLayer::from_toml(path, "[gpu]\nmin_fraction = 1.5\n").unwrap_err();
        assert!(err.to_string().contains("between 0.0 and 1.0"), "{err}");

        let err = ConfigLayer::from_toml(path, "personality = \"../etc/passwd\"\n").unwrap_err();
        assert!(
            err.to_string().contains("invalid personality name"),
            "{err}"
        );
    }

    #[test]
    fn env_errors_name_the_variable() {
        let err = ConfigLayer::from_env(&env(&[("OLLAMA_HOST", "x:notaport")])).unwrap_err();
        assert!(
            err.to_string().contains("environment variable OLLAMA_HOST"),
            "{err}"
        );
        let err =
            ConfigLayer::from_env(&env(&[("CONDUCTOR_GPU_POLICY", "sometimes")])).unwrap_err();
        assert!(err.to_string().contains("CONDUCTOR_GPU_POLICY"), "{err}");
    }

    #[test]
    fn an_explicit_config_file_must_exist() {
        let sources = ConfigSources {
            config_file: Some(PathBuf::from("/nonexistent/conductor.toml")),
            ..ConfigSources::default()
        };
        let err = LoadedConfig::load_with(sources, &env(&[]), None).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }));
    }

    #[test]
    fn token_never_shows() {
        let loaded = LoadedConfig::load_with(
            ConfigSources::default(),
            &env(&[("CONDUCTOR_OLLAMA_TOKEN", "sk-very-secret")]),
            None,
        )
        .unwrap();
        let debug = format!("{:?}", loaded);
        assert!(!debug.contains("sk-very-secret"));
        let explained = format!("{:?}", loaded.explain());
        assert!(!explained.contains("sk-very-secret"));
        assert_eq!(
            loaded.settings.token.as_ref().map(Secret::expose),
            Some("sk-very-secret")
        );
    }
}
