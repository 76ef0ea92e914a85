//! `conductor-tui`: the chat UI as a program of its own (`conductor chat` runs the same thing).
//!
//! `main` parses a few flags, loads the configuration like `conductor` does (flags >
//! environment > config file > defaults), calls [`conductor_tui::run`], and prints an error
//! only after the terminal is restored.

// The binary prints usage and errors, never while the UI owns the terminal.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use conductor_core::config::{ConfigLayer, ConfigSources, OllamaHost};
use conductor_core::{Error, GpuPolicy, LoadedConfig, PersonalityName};
use conductor_tui::{ChatOptions, TuiError};

const USAGE: &str = "\
conductor-tui: chat with a local assistant on Ollama, and see that it stays on the GPU.

Usage: conductor-tui [OPTIONS]

Options:
      --resume              continue the last conversation
      --host <HOST>         Ollama address [env: OLLAMA_HOST] [default: 127.0.0.1:11434]
  -m, --model <MODEL>       model [env: CONDUCTOR_MODEL] [default: llama3.2:3b]
  -p, --personality <NAME>  personality [env: CONDUCTOR_PERSONALITY] [default: yollayah]
      --gpu-policy <POLICY> enforce | warn | fix | off [env: CONDUCTOR_GPU_POLICY]
      --num-ctx <TOKENS>    context window sent with every request
      --config <FILE>       config file [env: CONDUCTOR_CONFIG]
      --sessions-dir <DIR>  where conversations are saved [default: <data dir>/conductor/sessions]
  -h, --help                this help
  -V, --version             the version

Logging: CONDUCTOR_LOG=debug (a level or tracing directives) writes to CONDUCTOR_LOG_FILE
(default <data dir>/conductor/tui.log); nothing is ever written to the terminal.

Exit codes: 0 success, 1 terminal error, 2 usage, 4 Ollama, 5 model not found, 6 configuration.";

struct Args {
    sources: ConfigSources,
    options: ChatOptions,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut sources = ConfigSources::default();
    let mut options = ChatOptions::default();
    let mut flags = ConfigLayer::default();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            "-V" | "--version" => {
                println!("conductor-tui {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            "--resume" => options.resume = true,
            "--host" => flags.ollama.host = Some(OllamaHost::parse(&value()?)?),
            "-m" | "--model" => flags.model = Some(value()?),
            "-p" | "--personality" => {
                flags.personality =
                    Some(PersonalityName::new(&value()?).map_err(|e| e.to_string())?);
            }
            "--gpu-policy" => flags.gpu.policy = Some(value()?.parse::<GpuPolicy>()?),
            "--num-ctx" => {
                flags.options.num_ctx = Some(
                    value()?
                        .parse()
                        .map_err(|_| "--num-ctx takes a number of tokens".to_owned())?,
                );
            }
            "--config" => sources.config_file = Some(PathBuf::from(value()?)),
            "--sessions-dir" => options.sessions_dir = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    sources.flags = flags;
    Ok(Some(Args { sources, options }))
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => return ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("conductor-tui: {message}\n\nTry 'conductor-tui --help'.");
            return ExitCode::from(2);
        }
    };
    init_logging();
    let settings = match LoadedConfig::load(args.sources) {
        Ok(config) => config.settings,
        Err(err) => {
            eprintln!("conductor-tui: {err}");
            return ExitCode::from(6);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("conductor-tui: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(conductor_tui::run(settings, args.options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("conductor-tui: {err}");
            if let TuiError::Core(core) = &err
                && let Some(hint) = core.hint()
            {
                eprintln!("  hint: {hint}");
            }
            ExitCode::from(exit_code(&err))
        }
    }
}

fn exit_code(err: &TuiError) -> u8 {
    match err {
        TuiError::Core(core) => match core.root() {
            Error::ModelNotFound { .. } => 5,
            Error::NotResident(_) => 3,
            Error::Config(_) | Error::Personality(_) | Error::InvalidRequest(_) => 6,
            _ => 4,
        },
        _ => 1,
    }
}

/// Logs to a file when `CONDUCTOR_LOG` asks for it: never to the terminal the UI draws on.
fn init_logging() {
    let Ok(filter) = std::env::var("CONDUCTOR_LOG") else {
        return;
    };
    let path = std::env::var_os("CONDUCTOR_LOG_FILE")
        .map(PathBuf::from)
        .or_else(|| dirs::data_dir().map(|d| d.join("conductor").join("tui.log")));
    let Some(path) = path else {
        return;
    };
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    else {
        return;
    };
    let directives = filter
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            if d.contains('=') {
                d.to_owned()
            } else {
                format!("conductor_core={d},conductor_tui={d}")
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    let filter = tracing_subscriber::EnvFilter::builder()
        .parse(format!("off,{directives}"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .try_init();
}
