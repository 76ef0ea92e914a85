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
use conductor_core::text::strip_controls;
use conductor_core::{Conductor, Error, GpuPolicy, LoadedConfig, PersonalityName};
use conductor_tui::{ChatOptions, TuiError, logfile};

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
(default <data dir>/conductor/tui.log, user-only); nothing is ever written to the terminal.
Prompts are logged only when named: CONDUCTOR_LOG=debug,prompts=trace.

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
    if !conductor_tui::has_terminal() {
        eprintln!("conductor-tui: {}", TuiError::NotATerminal);
        return ExitCode::FAILURE;
    }
    let conductor = match Conductor::from_settings(&settings) {
        Ok(conductor) => conductor,
        Err(err) => {
            // An error can quote the server: its text must not drive the terminal.
            eprintln!("conductor-tui: {}", strip_controls(&err.to_string()));
            if let Some(hint) = err.hint() {
                eprintln!("  hint: {}", strip_controls(&hint));
            }
            return ExitCode::from(exit_code(&err));
        }
    };
    match runtime.block_on(conductor_tui::run(conductor, args.options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("conductor-tui: {err}");
            ExitCode::FAILURE
        }
    }
}

fn exit_code(core: &Error) -> u8 {
    match core.root() {
        Error::ModelNotFound { .. } => 5,
        Error::NotResident(_) => 3,
        Error::Config(_) | Error::Personality(_) | Error::InvalidRequest(_) => 6,
        _ => 4,
    }
}

/// Logs to a file when `CONDUCTOR_LOG` asks for it: never to the terminal the UI draws on.
fn init_logging() {
    let Ok(spec) = std::env::var("CONDUCTOR_LOG") else {
        return;
    };
    // Our own default location is ours to keep private; a file the user chose keeps its
    // directory as it is (the file itself is always made user-only).
    let (path, own_dir) = match std::env::var_os("CONDUCTOR_LOG_FILE") {
        Some(path) => (PathBuf::from(path), false),
        None => match logfile::default_path("tui.log") {
            Some(path) => (path, true),
            None => return,
        },
    };
    let Ok(file) = logfile::open(&path, own_dir) else {
        return;
    };
    let filter = tracing_subscriber::EnvFilter::builder()
        .parse(format!("off,{}", directives(&spec)))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .try_init();
}

/// `CONDUCTOR_LOG` as tracing directives: a plain level applies to conductor, `prompts=LEVEL`
/// to the user's prompts, anything else is a directive as written. The prompts are off unless
/// named: `conductor_core=trace` would otherwise match their target by prefix.
fn directives(spec: &str) -> String {
    let mut out = Vec::new();
    let mut prompts_named = false;
    for d in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        match d.split_once('=') {
            Some(("prompts", level)) => {
                prompts_named = true;
                out.push(format!("{}={level}", logfile::PROMPTS_TARGET));
            }
            Some((target, _)) => {
                prompts_named |= target.trim().starts_with(logfile::PROMPTS_TARGET);
                out.push(d.to_owned());
            }
            None => out.push(format!("conductor_core={d},conductor_tui={d}")),
        }
    }
    if !prompts_named {
        out.push(format!("{}=off", logfile::PROMPTS_TARGET));
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_are_logged_only_when_named() {
        assert_eq!(
            directives("debug"),
            "conductor_core=debug,conductor_tui=debug,conductor_core::prompts=off"
        );
        assert_eq!(
            directives("conductor_core=trace"),
            "conductor_core=trace,conductor_core::prompts=off"
        );
        assert_eq!(
            directives("trace,prompts=trace"),
            "conductor_core=trace,conductor_tui=trace,conductor_core::prompts=trace"
        );
        assert_eq!(
            directives("conductor_core::prompts=trace"),
            "conductor_core::prompts=trace"
        );
        // Every result is a filter tracing accepts.
        for spec in ["debug", "conductor_core=trace", "trace,prompts=trace", ""] {
            let parsed =
                tracing_subscriber::EnvFilter::builder().parse(format!("off,{}", directives(spec)));
            assert!(parsed.is_ok(), "{spec}: {parsed:?}");
        }
    }
}
