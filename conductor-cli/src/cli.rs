//! The command line, as clap sees it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use conductor_core::config::{ConfigLayer, ConfigSources, OllamaHost};
use conductor_core::{BackendKind, GpuPolicy};

const EXIT_CODES: &str = "\
Exit codes:
  0    success (also when the reader of stdout goes away, as with `| head`)
  1    the output could not be written (e.g. a full disk)
  2    usage error (bad flag or argument, unreadable input)
  3    the model is not fully on the GPU under the `enforce` policy, or GPU memory ran out
  4    Ollama unreachable, an HTTP error, or an answer cut short
  5    model not found on the server
  6    bad configuration or personality file
  130  interrupted by Ctrl-C (SIGINT); 143 by SIGTERM; 129 by SIGHUP";

/// Run a local assistant with a personality on Ollama, and prove it stays on the GPU.
// (Not in the doc comment, which is the help text.) The option groups ([`ServerArgs`],
// [`ModelArgs`], [`PersonalityArg`], [`CommonArgs`]) are accepted here, before the subcommand,
// and again after it by each subcommand they apply to; after the subcommand wins
// (see [`Cli::flags`]).
#[derive(Debug, Parser)]
#[command(name = "conductor", version, after_help = EXIT_CODES, max_term_width = 100)]
pub struct Cli {
    /// The option groups given before the subcommand.
    #[command(flatten)]
    pub before: AllFlags,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The options of this run: those given after the subcommand over those given before it.
    pub fn flags(&self) -> GlobalArgs {
        self.command.flags().or(self.before.flags())
    }
}

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

impl Command {
    /// True when the command was asked for JSON: then every outcome prints a JSON object.
    pub fn wants_json(&self) -> bool {
        match self {
            Self::Ask(args) => args.json,
            Self::Bench(args) => args.json,
            Self::Gpu(GpuCommand::Verify { json, .. } | GpuCommand::Status { json, .. }) => *json,
            Self::Config(ConfigCommand::Show { json, .. } | ConfigCommand::Path { json, .. }) => {
                *json
            }
            Self::Models(args) | Self::Ps(args) => args.json,
            Self::Show(args) => args.json,
            Self::Personality(PersonalityCommand::List { json, .. }) => *json,
            _ => false,
        }
    }

    /// The option groups given after the subcommand (none for the commands that take none).
    pub fn flags(&self) -> GlobalArgs {
        match self {
            Self::Ask(args) => args.flags.flags(),
            Self::Chat(args) => args.flags.flags(),
            Self::Bench(args) => args.flags.flags(),
            Self::Doctor { flags } => flags.flags(),
            Self::Gpu(
                GpuCommand::Verify { flags, .. }
                | GpuCommand::Status { flags, .. }
                | GpuCommand::Forget { flags, .. },
            )
            | Self::Config(ConfigCommand::Show { flags, .. }) => flags.flags(),
            Self::Models(args) | Self::Ps(args) => args.flags.flags(),
            Self::Show(args) => args.flags.flags(),
            Self::Stop { flags, .. } | Self::Pull { flags, .. } => flags.flags(),
            Self::Personality(
                PersonalityCommand::List { flags, .. } | PersonalityCommand::Show { flags, .. },
            ) => flags.flags(),
            Self::Config(ConfigCommand::Path { flags, .. } | ConfigCommand::Init { flags, .. }) => {
                flags.flags()
            }
            Self::Completions { .. } | Self::Measure { .. } | Self::RawChat { .. } => {
                GlobalArgs::default()
            }
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ask one question; the answer streams to stdout
    #[command(
        after_help = "Examples:\n  conductor ask \"What is a monad?\"\n  git diff | conductor ask \"review this\"\n  conductor ask -f src/main.rs -f Cargo.toml \"why does this not build?\"\n  conductor ask -o temperature=0.2 -o stop=END \"list three colours, then END\"\n  conductor ask --json -p forge \"fastest way to reverse a list in Python\""
    )]
    Ask(AskArgs),
    /// Open the terminal chat UI
    Chat(ChatArgs),
    /// Check where the model runs (GPU residency)
    #[command(subcommand)]
    Gpu(GpuCommand),
    /// Check everything conductor depends on, with a fix for each problem
    Doctor {
        #[command(flatten)]
        flags: AllFlags,
    },
    /// List local models, marking the running ones with where they run
    #[command(visible_aliases = ["ls", "list"])]
    Models(ListArgs),
    /// List the models loaded now, with where they run and until when (like `ollama ps`)
    Ps(ListArgs),
    /// Show a model: architecture, size, context, capabilities, Modelfile parameters
    Show(ShowArgs),
    /// Unload a model now (like `ollama stop`)
    Stop {
        /// Model name, e.g. llama3.2:3b
        #[arg(add = clap_complete::engine::ArgValueCompleter::new(crate::commands::complete::models))]
        model: String,
        #[command(flatten)]
        flags: ServerFlags,
    },
    /// Download a model through Ollama, with progress
    Pull {
        /// Model name, e.g. llama3.2:3b
        name: String,
        #[command(flatten)]
        flags: ServerFlags,
    },
    /// Measure time to first token, tokens/s, prompt-cache effect and conductor's overhead
    Bench(BenchArgs),
    /// List personalities or show one
    #[command(subcommand)]
    Personality(PersonalityCommand),
    /// Show the effective configuration, where it is read from, or write a starter file
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print the shell script that completes conductor's commands, flags, personalities and
    /// models
    #[command(
        after_help = "Install (the script asks conductor for candidates as you type, so it stays current):\n  bash: echo 'source <(conductor completions bash)' >> ~/.bashrc\n  zsh:  echo 'source <(conductor completions zsh)' >> ~/.zshrc\n  fish: conductor completions fish > ~/.config/fish/completions/conductor.fish\nThe same script comes from `COMPLETE=bash conductor` (any shell name)."
    )]
    Completions {
        /// The shell
        shell: clap_complete::Shell,
        /// A fixed script of commands and flags that never runs conductor while completing
        /// (no personality or model names)
        #[arg(long = "static")]
        static_script: bool,
    },
    /// (bench) Run a command, time its first output byte, report CPU and peak RSS as JSON
    #[command(name = "__measure", hide = true)]
    Measure {
        /// The command and its arguments
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// (bench) The minimal client: POST BODY_FILE to URL, print the streamed content
    #[command(name = "__raw-chat", hide = true)]
    RawChat {
        /// The protocol of the stream: Ollama's NDJSON or OpenAI's SSE
        #[arg(long, value_enum, default_value = "ollama")]
        protocol: BackendArg,
        /// The /api/chat (or, for openai, /chat/completions) URL
        url: String,
        /// The JSON request body
        body_file: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct AskArgs {
    /// The question; `-` or nothing reads it from stdin (stdin is appended when both are given)
    #[arg(value_name = "PROMPT")]
    pub prompt: Vec<String>,
    /// Extra system instructions, sent after the personality
    #[arg(short, long, value_name = "TEXT")]
    pub system: Option<String>,
    /// Attach a text file (repeatable; at most 256 KiB each, 1 MiB in all): sent before the
    /// question, in a fenced block headed by its path
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub files: Vec<PathBuf>,
    /// A model option for this request (repeatable): -o temperature=0.2 -o num_ctx=8192; each
    /// -o stop=TEXT adds one stop string; unknown keys go to Ollama as given
    /// (true/false, numbers, else strings)
    #[arg(short = 'o', long = "option", value_name = "KEY=VALUE")]
    pub options: Vec<String>,
    /// Send no personality (only --system text, if any)
    #[arg(long)]
    pub no_personality: bool,
    /// Ask a thinking model to think (its thinking goes to stderr)
    #[arg(long)]
    pub think: bool,
    /// Print one JSON object with the answer and metrics instead of streaming text
    #[arg(long)]
    pub json: bool,
    /// After the answer, print time to first token, tokens/s and PROCESSOR on stderr
    #[arg(short, long)]
    pub verbose: bool,
    #[command(flatten)]
    pub flags: AllFlags,
}

#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Continue the most recent conversation
    #[arg(long)]
    pub resume: bool,
    /// Where conversations are saved [default: <data dir>/conductor/sessions]
    #[arg(long, value_name = "DIR")]
    pub sessions_dir: Option<PathBuf>,
    #[command(flatten)]
    pub flags: AllFlags,
}

/// `models`/`ls`/`list` and `ps`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print as JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub flags: ServerFlags,
}

/// `show MODEL`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Model name, e.g. llama3.2:3b
    #[arg(add = clap_complete::engine::ArgValueCompleter::new(crate::commands::complete::models))]
    pub model: String,
    /// Print as JSON
    #[arg(long, conflicts_with = "modelfile")]
    pub json: bool,
    /// Print the Modelfile instead
    #[arg(long)]
    pub modelfile: bool,
    #[command(flatten)]
    pub flags: ServerFlags,
}

#[derive(Debug, Subcommand)]
pub enum GpuCommand {
    /// Load the model, check residency, run a short generation: exit 0 if on the GPU, 3 if not
    Verify {
        /// Print the verdict as JSON
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        flags: AllFlags,
    },
    /// Show NVML devices, the running models with where they run, and remembered fixes
    Status {
        /// Print as JSON
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        flags: AllFlags,
    },
    /// Forget the GPU fixes remembered for this host (for MODEL, or all)
    Forget {
        /// Only this model's fix
        // Its own id: `model` is -m's.
        #[arg(id = "forget_model", value_name = "MODEL")]
        model: Option<String>,
        #[command(flatten)]
        flags: AllFlags,
    },
}

#[derive(Debug, Subcommand)]
pub enum PersonalityCommand {
    /// List the personalities found (and any that fail to parse)
    List {
        /// Print as JSON (entries that fail to parse carry their error)
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        flags: PersonalityFlags,
    },
    /// Print the composed system prompt exactly as sent
    Show {
        /// Personality name (default: the configured one)
        #[arg(add = clap_complete::engine::ArgValueCompleter::new(crate::commands::complete::personalities))]
        name: Option<String>,
        /// Extra system text, as --system would add it
        #[arg(short, long, value_name = "TEXT")]
        system: Option<String>,
        #[command(flatten)]
        flags: PersonalityFlags,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// The effective configuration and where each value came from
    Show {
        /// Print as JSON
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        flags: AllFlags,
    },
    /// Every path conductor reads or writes: config file candidates (in order, which exist,
    /// which is used), personality directories, state, sessions and logs
    Path {
        /// Print as JSON
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        flags: CommonFlags,
    },
    /// Write a commented starter conductor.toml (every key, commented out, with its default)
    Init {
        /// Where to write it [default: --config, CONDUCTOR_CONFIG, else the platform config
        /// file that `config path` lists first]
        #[arg(long, value_name = "FILE")]
        path: Option<PathBuf>,
        /// Replace an existing file
        #[arg(long)]
        force: bool,
        /// Print it on stdout instead of writing a file
        #[arg(long, conflicts_with_all = ["path", "force"])]
        print: bool,
        #[command(flatten)]
        flags: CommonFlags,
    },
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Runs per measurement
    #[arg(short = 'n', long, default_value_t = 5)]
    pub runs: u32,
    /// Tokens to generate per answer (num_predict)
    #[arg(long, default_value_t = 64)]
    pub tokens: i32,
    /// Print as JSON
    #[arg(long)]
    pub json: bool,
    /// What to measure: whole processes, one process, or both
    #[arg(long, value_enum, default_value_t = BenchPart::Both)]
    pub part: BenchPart,
    #[command(flatten)]
    pub flags: AllFlags,
}

/// `bench --part` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchPart {
    /// Whole `conductor ask` processes beside a minimal client and `ollama run`
    Processes,
    /// TTFT, tokens/s and the prompt cache inside one process
    InProcess,
    /// Both
    Both,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn the_command_line_is_consistent() {
        // clap checks a subcommand's arguments only when it is parsed: check them all here.
        Cli::command().debug_assert();
    }
}
