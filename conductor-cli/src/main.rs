//! `conductor`: a thin command line over conductor-core.
//!
//! `main` parses, calls [`run`], maps the typed error to a documented exit code and prints it
//! once, with its hint, on stderr. Only answers (or JSON) go to stdout.

// The binary's job is to print.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod cli;
mod commands;
mod exit;
mod logging;
mod output;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::exit::Failure;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let _ = err.print();
            return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2));
        }
    };
    let json = cli.command.wants_json();
    match run(cli) {
        Ok(code) => code,
        Err(Failure::Closed) => ExitCode::SUCCESS,
        Err(failure) => {
            // `--json` answers on stdout whatever happened; a command that already printed its
            // own object (with the partial answer) says so by `Failure::Reported`.
            if json && !matches!(failure, Failure::Reported(_)) {
                let object = serde_json::json!({ "error": failure.json() });
                if let Err(Failure::Closed) = output::write_out(format_args!("{object:#}\n")) {
                    return failure.exit_code();
                }
            }
            output::print_failure(&failure);
            failure.exit_code()
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, Failure> {
    // The bench's helpers run bare: no logging, no shared runtime.
    match &cli.command {
        Command::Measure { command } => return commands::bench::measure_main(command),
        Command::RawChat {
            protocol,
            url,
            body_file,
        } => {
            return commands::bench::raw_chat_main((*protocol).into(), url, body_file);
        }
        _ => {}
    }
    // The chat UI owns the terminal: its logs go to a file, never to stderr.
    let to_file = matches!(cli.command, Command::Chat(_));
    logging::init(cli.global.log.as_deref(), to_file)?;
    // One thread does for a command's few requests (less start-up, CPU and memory per run);
    // the chat UI's input, rendering and requests run side by side on two.
    let runtime = if to_file {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
    .map_err(|err| Failure::other(format!("cannot start the async runtime: {err}")))?;
    runtime.block_on(dispatch(cli))
}

async fn dispatch(cli: Cli) -> Result<ExitCode, Failure> {
    let global = &cli.global;
    match cli.command {
        Command::Ask(args) => commands::ask::run(global, args).await,
        Command::Chat(args) => commands::chat::run(global, args).await,
        Command::Gpu(command) => commands::gpu::run(global, command).await,
        Command::Doctor => commands::doctor::run(global).await,
        Command::Pull { name } => commands::pull::run(global, &name).await,
        Command::Bench(args) => commands::bench::run(global, args).await,
        Command::Models => commands::models::run(global).await,
        Command::Personality(command) => commands::personality::run(global, command),
        Command::Config(command) => commands::config::run(global, command),
        Command::Sessions(args) => commands::sessions::run(args),
        Command::Completions { shell } => commands::completions(shell),
        Command::Measure { .. } | Command::RawChat { .. } => Ok(ExitCode::SUCCESS),
    }
}
