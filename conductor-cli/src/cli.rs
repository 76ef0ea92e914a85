//! The command line, as clap sees it.

pub mod flags;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use flags::{
    AllFlags, BackendArg, CommonFlags, GlobalArgs, Groups, PersonalityFlags, ServerFlags,
};

const EXIT_CODES: &str = "\
Exit codes:
  0    success (also when the reader of stdout goes away, as with `| head`)
  1    the output could not be written (e.g. a full disk)
  2    usage error (bad flag or argument, unreadable input, or a command the backend cannot do:
       ps/stop/show/pull on an OpenAI-compatible server)
  3    the model is not fully on the GPU under the `enforce` policy, or GPU memory ran out
  4    Ollama unreachable, an HTTP error, or an answer cut short
  5    model not found on the server
  6    bad configuration or personality file
  130  interrupted by Ctrl-C (SIGINT); 143 by SIGTERM; 129 by SIGHUP";

/// Run a local assistant with a personality on Ollama, and prove it stays on the GPU.
// (Not in the doc comment, which is the help text.) The option groups (see `flags`) are
// accepted here, before the subcommand, and again after it by each subcommand they apply to;
// after the subcommand wins (see [`Cli::flags`]).
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

    /// Refuses an option given before the subcommand that the subcommand does not take (as
    /// clap refuses it after): `conductor -m x ps` is the usage error `ps -m x` is.
    ///
    /// # Errors
    /// [`Failure::Usage`] naming the first such flag, the subcommand and what it takes.
    pub fn check_flags_before(&self) -> Result<(), crate::exit::Failure> {
        let (name, groups) = self.command.groups();
        let Some(flag) = self.before.outside(groups).into_iter().next() else {
            return Ok(());
        };
        let takes = groups.flag_names();
        let takes = if takes.is_empty() {
            "it takes none of the global options".to_owned()
        } else {
            format!("it takes {}", takes.join(", "))
        };
        Err(crate::exit::Failure::Usage(format!(
            "{flag} does not apply to `conductor {name}` ({takes})"
        )))
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
            Self::Sessions(args) => args.wants_json(),
            _ => false,
        }
    }

    /// The subcommand's name (with its parent's, as `gpu verify`) and the option groups it
    /// takes: the same ones after it as before it.
    pub fn groups(&self) -> (&'static str, Groups) {
        match self {
            Self::Ask(_) => ("ask", Groups::ALL),
            Self::Chat(_) => ("chat", Groups::ALL),
            Self::Bench(_) => ("bench", Groups::ALL),
            Self::Doctor { .. } => ("doctor", Groups::ALL),
            Self::Gpu(GpuCommand::Verify { .. }) => ("gpu verify", Groups::ALL),
            Self::Gpu(GpuCommand::Status { .. }) => ("gpu status", Groups::ALL),
            Self::Gpu(GpuCommand::Forget { .. }) => ("gpu forget", Groups::ALL),
            Self::Config(ConfigCommand::Show { .. }) => ("config show", Groups::ALL),
            Self::Config(ConfigCommand::Path { .. }) => ("config path", Groups::COMMON),
            Self::Config(ConfigCommand::Init { .. }) => ("config init", Groups::COMMON),
            Self::Models(_) => ("models", Groups::SERVER),
            Self::Ps(_) => ("ps", Groups::SERVER),
            Self::Show(_) => ("show", Groups::SERVER),
            Self::Stop { .. } => ("stop", Groups::SERVER),
            Self::Pull { .. } => ("pull", Groups::SERVER),
            Self::Personality(PersonalityCommand::List { .. }) => {
                ("personality list", Groups::PERSONALITY)
            }
            Self::Personality(PersonalityCommand::Show { .. }) => {
                ("personality show", Groups::PERSONALITY)
            }
            Self::Sessions(_) => ("sessions", Groups::NONE),
            Self::Completions { .. } => ("completions", Groups::NONE),
            Self::Measure { .. } => ("__measure", Groups::NONE),
            Self::RawChat { .. } => ("__raw-chat", Groups::NONE),
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
            Self::Completions { .. }
            | Self::Sessions(_)
            | Self::Measure { .. }
            | Self::RawChat { .. } => GlobalArgs::default(),
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
    /// Saved conversations (chat and ask): list, show, export, rename, remove
    Sessions(SessionsArgs),
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
    #[command(flatten)]
    pub flags: AllFlags,
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
    /// Colours: follow the terminal's background, or force them [env: CONDUCTOR_THEME]
    /// [default: auto]
    #[arg(long, value_enum, value_name = "THEME")]
    pub theme: Option<ThemeArg>,
    #[command(flatten)]
    pub flags: AllFlags,
}

/// `chat --theme` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ThemeArg {
    /// Ask the terminal (COLORFGBG, then OSC 11); dark when it does not say
    Auto,
    /// Colours for a dark background
    Dark,
    /// Colours for a light background
    Light,
}

impl From<ThemeArg> for conductor_core::config::ThemeChoice {
    fn from(value: ThemeArg) -> Self {
        match value {
            ThemeArg::Auto => Self::Auto,
            ThemeArg::Dark => Self::Dark,
            ThemeArg::Light => Self::Light,
        }
    }
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
        /// Replace FILE if it exists
        #[arg(long, requires = "output")]
        force: bool,
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
        /// The sessions: ids, names, or id prefixes of at least 8 characters
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
