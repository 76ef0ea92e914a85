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
#[derive(Debug, Parser)]
#[command(name = "conductor", version, after_help = EXIT_CODES, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command understands.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Which server: ollama, or openai (an OpenAI-compatible server such as vLLM; give its base
    /// URL with --host, e.g. http://gpu-box:8000/v1) [env: CONDUCTOR_BACKEND] [default: ollama]
    #[arg(long, global = true, value_enum, value_name = "KIND")]
    pub backend: Option<BackendArg>,
    /// Ollama address (any form OLLAMA_HOST accepts), or the base URL of an OpenAI-compatible
    /// server [env: OLLAMA_HOST]
    // Parsed in `sources`, not by clap: clap quotes a rejected value whole, and an address may
    // hold a password.
    #[arg(long, global = true, value_name = "HOST")]
    pub host: Option<String>,
    /// Model to use [env: CONDUCTOR_MODEL] [default: llama3.2:3b]
    #[arg(short, long, global = true, value_name = "MODEL", value_parser = non_empty)]
    pub model: Option<String>,
    /// Personality to use [env: CONDUCTOR_PERSONALITY] [default: yollayah]
    #[arg(short, long, global = true, value_name = "NAME")]
    pub personality: Option<String>,
    /// What to do when the model is not fully on the GPU [env: CONDUCTOR_GPU_POLICY]
    #[arg(long, global = true, value_enum, value_name = "POLICY")]
    pub gpu_policy: Option<PolicyArg>,
    /// Context window in tokens (num_ctx) sent with every request
    #[arg(long, global = true, value_name = "TOKENS", value_parser = clap::value_parser!(u32).range(1..))]
    pub num_ctx: Option<u32>,
    /// How long Ollama keeps the model loaded: 10m, 1h, -1 (forever), 0 (unload at once)
    #[arg(
        long,
        global = true,
        value_name = "DURATION",
        allow_hyphen_values = true
    )]
    pub keep_alive: Option<String>,
    /// Config file to read instead of the default [env: CONDUCTOR_CONFIG]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log filter: component=level pairs over backend, gpu, config, chat, cli, and prompts (the
    /// text you ask, logged only when named: 'debug,prompts=trace') [env: CONDUCTOR_LOG]
    #[arg(long, global = true, value_name = "FILTER")]
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
            Self::Gpu(GpuCommand::Verify { json } | GpuCommand::Status { json }) => *json,
            Self::Config(ConfigCommand::Show { json }) => *json,
            Self::Sessions(args) => args.wants_json(),
            _ => false,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ask one question; the answer streams to stdout
    #[command(
        after_help = "Examples:\n  conductor ask \"What is a monad?\"\n  git diff | conductor ask \"review this\"\n  conductor ask --json -p forge \"fastest way to reverse a list in Python\""
    )]
    Ask(AskArgs),
    /// Open the terminal chat UI
    Chat(ChatArgs),
    /// Check where the model runs (GPU residency)
    #[command(subcommand)]
    Gpu(GpuCommand),
    /// Check everything conductor depends on, with a fix for each problem
    Doctor,
    /// List local models, marking the running ones with where they run
    Models,
    /// Download a model through Ollama, with progress
    Pull {
        /// Model name, e.g. llama3.2:3b
        name: String,
    },
    /// Measure time to first token, tokens/s, prompt-cache effect and conductor's overhead
    Bench(BenchArgs),
    /// List personalities or show one
    #[command(subcommand)]
    Personality(PersonalityCommand),
    /// Show the effective configuration
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Saved conversations (chat and ask): list, show, export, rename, remove
    Sessions(SessionsArgs),
    /// Print shell completions
    Completions {
        /// The shell
        shell: clap_complete::Shell,
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
    #[arg(long, value_name = "TEXT")]
    pub system: Option<String>,
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
    /// Continue the last `ask` conversation (its model and personality unless -m/-p are given)
    #[arg(short = 'c', long = "continue", conflicts_with = "session")]
    pub continue_last: bool,
    /// Continue session ID|NAME (an id prefix works; a chat one too); a NAME that matches none
    /// starts a conversation of that name
    #[arg(long, value_name = "ID|NAME")]
    pub session: Option<String>,
    /// Do not save this question and answer (every ask is saved, so that -c can continue it)
    #[arg(long)]
    pub no_save: bool,
    /// Where conversations are saved [default: <data dir>/conductor/sessions]
    #[arg(long, value_name = "DIR")]
    pub sessions_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Continue the most recent conversation
    #[arg(long)]
    pub resume: bool,
    /// Open the session with this id or name, or start a new conversation with this name
    #[arg(long, value_name = "NAME", conflicts_with = "resume")]
    pub session: Option<String>,
    /// Where conversations are saved [default: <data dir>/conductor/sessions]
    #[arg(long, value_name = "DIR")]
    pub sessions_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum GpuCommand {
    /// Load the model, check residency, run a short generation: exit 0 if on the GPU, 3 if not
    Verify {
        /// Print the verdict as JSON
        #[arg(long)]
        json: bool,
    },
    /// Show NVML devices, the running models with where they run, and remembered fixes
    Status {
        /// Print as JSON
        #[arg(long)]
        json: bool,
    },
    /// Forget the GPU fixes remembered for this host (for MODEL, or all)
    Forget {
        /// Only this model's fix
        model: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PersonalityCommand {
    /// List the personalities found (and any that fail to parse)
    List,
    /// Print the composed system prompt exactly as sent
    Show {
        /// Personality name (default: the configured one)
        name: Option<String>,
        /// Extra system text, as --system would add it
        #[arg(long, value_name = "TEXT")]
        system: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// The effective configuration and where each value came from
    Show {
        /// Print as JSON
        #[arg(long)]
        json: bool,
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

/// `conductor sessions`: the subcommand and the store it works on.
#[derive(Debug, Args)]
pub struct SessionsArgs {
    /// Where conversations are saved [default: <data dir>/conductor/sessions]
    #[arg(long, global = true, value_name = "DIR")]
    pub sessions_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: SessionsCommand,
}

impl SessionsArgs {
    /// True when the subcommand was asked for JSON.
    pub fn wants_json(&self) -> bool {
        matches!(
            self.command,
            SessionsCommand::List { json: true } | SessionsCommand::Show { json: true, .. }
        )
    }
}

/// `conductor sessions` subcommands. A session is named by its id, a unique prefix of its id,
/// or its name.
#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// List saved conversations, newest first (damaged files too)
    #[command(visible_alias = "ls")]
    List {
        /// Print as JSON
        #[arg(long)]
        json: bool,
    },
    /// Print a conversation, each answer headed by its model and personality
    Show {
        /// The session: id, id prefix or name
        #[arg(value_name = "ID|NAME")]
        session: String,
        /// Print the stored file as it is
        #[arg(long)]
        json: bool,
    },
    /// Export a conversation as Markdown
    Export {
        /// The session: id, id prefix or name
        #[arg(value_name = "ID|NAME")]
        session: String,
        /// Markdown (the only format, and the default)
        #[arg(long)]
        md: bool,
        /// Write to FILE (created user-only) instead of stdout
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Name a conversation (names are unique)
    Rename {
        /// The session: id, id prefix or name
        #[arg(value_name = "ID|NAME")]
        session: String,
        /// Its new name
        name: String,
    },
    /// Delete conversations
    #[command(visible_alias = "remove")]
    Rm {
        /// The sessions: ids, id prefixes or names
        #[arg(
            value_name = "ID|NAME",
            required_unless_present = "all",
            conflicts_with = "all"
        )]
        sessions: Vec<String>,
        /// Delete even a conversation open in a chat window (the window may save it again)
        #[arg(long)]
        force: bool,
        /// Delete every saved conversation (needs --yes)
        #[arg(long)]
        all: bool,
        /// Confirm --all
        #[arg(long, requires = "all")]
        yes: bool,
    },
}
