//! The option groups a subcommand may take, and the merged view of them the commands read.
//!
//! Each group is a clap `Args` struct. A subcommand flattens the bundle of groups that apply
//! to it ([`AllFlags`], [`ServerFlags`], [`PersonalityFlags`], [`CommonFlags`]); [`crate::cli::Cli`]
//! flattens [`AllFlags`] before the subcommand. [`GlobalArgs`] is the merge: after the
//! subcommand over before it.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use conductor_core::config::{ConfigLayer, ConfigSources, OllamaHost};
use conductor_core::{BackendKind, GpuPolicy};

/// Which server to talk to.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Server")]
pub struct ServerArgs {
    /// Which server: ollama, or openai (an OpenAI-compatible server such as vLLM; give its base
    /// URL with --host, e.g. http://gpu-box:8000/v1) [env: CONDUCTOR_BACKEND] [default: ollama]
    #[arg(long, value_enum, value_name = "KIND")]
    pub backend: Option<BackendArg>,
    /// Ollama address (any form OLLAMA_HOST accepts), or the base URL of an OpenAI-compatible
    /// server [env: OLLAMA_HOST]
    // Parsed in `sources`, not by clap: clap quotes a rejected value whole, and an address may
    // hold a password.
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
}

/// Which model, and how it is loaded.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Model")]
pub struct ModelArgs {
    /// Model to use [env: CONDUCTOR_MODEL] [default: llama3.2:3b]
    #[arg(short, long, value_name = "MODEL", value_parser = non_empty,
          add = clap_complete::engine::ArgValueCompleter::new(crate::commands::complete::models))]
    pub model: Option<String>,
    /// What to do when the model is not fully on the GPU [env: CONDUCTOR_GPU_POLICY]
    #[arg(long, value_enum, value_name = "POLICY")]
    pub gpu_policy: Option<PolicyArg>,
    /// Context window in tokens (num_ctx) sent with every request
    #[arg(long, value_name = "TOKENS", value_parser = clap::value_parser!(u32).range(1..))]
    pub num_ctx: Option<u32>,
    /// How long Ollama keeps the model loaded: 10m, 1h, -1 (forever), 0 (unload at once)
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub keep_alive: Option<String>,
}

/// Which personality.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Personality")]
pub struct PersonalityArg {
    /// Personality to use [env: CONDUCTOR_PERSONALITY] [default: yollayah]
    #[arg(short, long, value_name = "NAME",
          add = clap_complete::engine::ArgValueCompleter::new(crate::commands::complete::personalities))]
    pub personality: Option<String>,
}

/// Where the configuration comes from and what is logged.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Configuration")]
pub struct CommonArgs {
    /// Config file to read instead of the default [env: CONDUCTOR_CONFIG]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log filter: component=level pairs over backend, gpu, config, chat, cli, and prompts (the
    /// text you ask, logged only when named: 'debug,prompts=trace') [env: CONDUCTOR_LOG]
    #[arg(long, value_name = "FILTER")]
    pub log: Option<String>,
}

/// Every group: for the commands that talk to a model (ask, chat, gpu, doctor, bench, config
/// show), and before the subcommand.
#[derive(Debug, Clone, Default, Args)]
pub struct AllFlags {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub personality: PersonalityArg,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Server and configuration: for the commands about the server's models (models, ps, show,
/// stop, pull).
#[derive(Debug, Clone, Default, Args)]
pub struct ServerFlags {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Personality and configuration: for `personality list|show`.
#[derive(Debug, Clone, Default, Args)]
pub struct PersonalityFlags {
    #[command(flatten)]
    pub personality: PersonalityArg,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Configuration only: for `config path|init`.
#[derive(Debug, Clone, Default, Args)]
pub struct CommonFlags {
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Which option groups a subcommand takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Groups {
    /// `--backend`, `--host`.
    pub server: bool,
    /// `-m`, `--gpu-policy`, `--num-ctx`, `--keep-alive`.
    pub model: bool,
    /// `-p`.
    pub personality: bool,
    /// `--config`, `--log`.
    pub common: bool,
}

impl Groups {
    /// Every group ([`AllFlags`]).
    pub const ALL: Self = Self {
        server: true,
        model: true,
        personality: true,
        common: true,
    };
    /// [`ServerFlags`].
    pub const SERVER: Self = Self {
        server: true,
        model: false,
        personality: false,
        common: true,
    };
    /// [`PersonalityFlags`].
    pub const PERSONALITY: Self = Self {
        server: false,
        model: false,
        personality: true,
        common: true,
    };
    /// [`CommonFlags`].
    pub const COMMON: Self = Self {
        server: false,
        model: false,
        personality: false,
        common: true,
    };
    /// None at all.
    pub const NONE: Self = Self {
        server: false,
        model: false,
        personality: false,
        common: false,
    };

    /// The flags of these groups, as the help spells them.
    pub fn flag_names(self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.server {
            names.extend(["--backend", "--host"]);
        }
        if self.model {
            names.extend(["-m/--model", "--gpu-policy", "--num-ctx", "--keep-alive"]);
        }
        if self.personality {
            names.push("-p/--personality");
        }
        if self.common {
            names.extend(["--config", "--log"]);
        }
        names
    }
}

impl AllFlags {
    /// As the merged view.
    pub fn flags(&self) -> GlobalArgs {
        GlobalArgs::from_groups(
            Some(&self.server),
            Some(&self.model),
            Some(&self.personality),
            Some(&self.common),
        )
    }

    /// The flags given here that belong to none of `groups`, as the help spells them.
    pub fn outside(&self, groups: Groups) -> Vec<&'static str> {
        let server = &self.server;
        let model = &self.model;
        let common = &self.common;
        [
            ("--backend", groups.server, server.backend.is_some()),
            ("--host", groups.server, server.host.is_some()),
            ("-m/--model", groups.model, model.model.is_some()),
            ("--gpu-policy", groups.model, model.gpu_policy.is_some()),
            ("--num-ctx", groups.model, model.num_ctx.is_some()),
            ("--keep-alive", groups.model, model.keep_alive.is_some()),
            (
                "-p/--personality",
                groups.personality,
                self.personality.personality.is_some(),
            ),
            ("--config", groups.common, common.config.is_some()),
            ("--log", groups.common, common.log.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, taken, given)| (given && !taken).then_some(name))
        .collect()
    }
}

impl ServerFlags {
    /// As the merged view.
    pub fn flags(&self) -> GlobalArgs {
        GlobalArgs::from_groups(Some(&self.server), None, None, Some(&self.common))
    }
}

impl PersonalityFlags {
    /// As the merged view.
    pub fn flags(&self) -> GlobalArgs {
        GlobalArgs::from_groups(None, None, Some(&self.personality), Some(&self.common))
    }
}

impl CommonFlags {
    /// As the merged view.
    pub fn flags(&self) -> GlobalArgs {
        GlobalArgs::from_groups(None, None, None, Some(&self.common))
    }
}

/// The options of one run, merged from before and after the subcommand: what the commands read.
#[derive(Debug, Clone, Default)]
pub struct GlobalArgs {
    /// `--backend`.
    pub backend: Option<BackendArg>,
    /// `--host`.
    pub host: Option<String>,
    /// `--model`.
    pub model: Option<String>,
    /// `--personality`.
    pub personality: Option<String>,
    /// `--gpu-policy`.
    pub gpu_policy: Option<PolicyArg>,
    /// `--num-ctx`.
    pub num_ctx: Option<u32>,
    /// `--keep-alive`.
    pub keep_alive: Option<String>,
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--log`.
    pub log: Option<String>,
}

/// `--backend` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BackendArg {
    /// Ollama's own API: chat, models, residency
    Ollama,
    /// An OpenAI-compatible server (/v1/chat/completions): chat and model lists; residency is
    /// not reported
    Openai,
}

impl From<BackendArg> for BackendKind {
    fn from(value: BackendArg) -> Self {
        match value {
            BackendArg::Ollama => Self::Ollama,
            BackendArg::Openai => Self::OpenAi,
        }
    }
}

/// `--gpu-policy` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PolicyArg {
    /// Refuse to generate unless the model is fully on the GPU (exit 3)
    Enforce,
    /// Generate, with a warning on stderr
    Warn,
    /// Reload with options that fit (smaller context, no layer cap), then enforce
    Fix,
    /// Do not check
    Off,
}

impl From<PolicyArg> for GpuPolicy {
    fn from(value: PolicyArg) -> Self {
        match value {
            PolicyArg::Enforce => Self::Enforce,
            PolicyArg::Warn => Self::Warn,
            PolicyArg::Fix => Self::Fix,
            PolicyArg::Off => Self::Off,
        }
    }
}

fn non_empty(value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(value.to_owned())
    }
}

impl GlobalArgs {
    /// The view of the groups a command has (a missing group sets nothing).
    fn from_groups(
        server: Option<&ServerArgs>,
        model: Option<&ModelArgs>,
        personality: Option<&PersonalityArg>,
        common: Option<&CommonArgs>,
    ) -> Self {
        let server = server.cloned().unwrap_or_default();
        let model = model.cloned().unwrap_or_default();
        let common = common.cloned().unwrap_or_default();
        Self {
            backend: server.backend,
            host: server.host,
            model: model.model,
            personality: personality.and_then(|p| p.personality.clone()),
            gpu_policy: model.gpu_policy,
            num_ctx: model.num_ctx,
            keep_alive: model.keep_alive,
            config: common.config,
            log: common.log,
        }
    }

    /// Fills every unset option from `lower`; `self` wins.
    #[must_use]
    pub fn or(self, lower: Self) -> Self {
        Self {
            backend: self.backend.or(lower.backend),
            host: self.host.or(lower.host),
            model: self.model.or(lower.model),
            personality: self.personality.or(lower.personality),
            gpu_policy: self.gpu_policy.or(lower.gpu_policy),
            num_ctx: self.num_ctx.or(lower.num_ctx),
            keep_alive: self.keep_alive.or(lower.keep_alive),
            config: self.config.or(lower.config),
            log: self.log.or(lower.log),
        }
    }

    /// The flags as a configuration layer (the highest-precedence one).
    pub fn sources(&self) -> Result<ConfigSources, crate::exit::Failure> {
        let mut flags = ConfigLayer::default();
        if let Some(host) = &self.host {
            flags.ollama.host = Some(OllamaHost::parse(host).map_err(|reason| {
                crate::exit::Failure::Usage(format!(
                    "invalid --host {:?}: {reason}",
                    conductor_core::config::redact_address(host)
                ))
            })?);
        }
        flags.backend.kind = self.backend.map(Into::into);
        flags.model = self.model.clone();
        if let Some(name) = &self.personality {
            flags.personality = Some(conductor_core::PersonalityName::new(name)?);
        }
        flags.gpu.policy = self.gpu_policy.map(Into::into);
        flags.options.num_ctx = self.num_ctx;
        if let Some(keep_alive) = &self.keep_alive {
            flags.keep_alive = Some(keep_alive.parse().map_err(|e| {
                crate::exit::Failure::Usage(format!("invalid --keep-alive {keep_alive:?}: {e}"))
            })?);
        }
        Ok(ConfigSources {
            config_file: self.config.clone(),
            flags,
            ignore_file: false,
        })
    }
}
