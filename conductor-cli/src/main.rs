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

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command};
use crate::exit::Failure;

fn main() -> ExitCode {
    // `COMPLETE=bash conductor ...`: the shell asks for completions (or the script that asks).
    match clap_complete::CompleteEnv::with_factory(Cli::command)
        .bin("conductor")
        .completer("conductor")
        .try_complete(std::env::args_os(), std::env::current_dir().ok().as_deref())
    {
        Ok(true) => return ExitCode::SUCCESS,
        Ok(false) => {}
        // Nothing useful can be shown in the middle of a shell's completion: fail quietly.
        Err(_) => return ExitCode::from(exit::OTHER),
    }
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
    cli.check_flags_before()?;
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
    let flags = cli.flags();
    logging::init(flags.log.as_deref(), to_file)?;
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
    runtime.block_on(dispatch(&flags, cli.command))
}

async fn dispatch(global: &cli::GlobalArgs, command: Command) -> Result<ExitCode, Failure> {
    match command {
        Command::Ask(args) => commands::ask::run(global, args).await,
        Command::Chat(args) => commands::chat::run(global, args).await,
        Command::Gpu(command) => commands::gpu::run(global, command).await,
        Command::Doctor { .. } => commands::doctor::run(global).await,
        Command::Pull { name, .. } => commands::pull::run(global, &name).await,
        Command::Bench(args) => commands::bench::run(global, args).await,
        Command::Models(args) => commands::models::run(global, args.json).await,
        Command::Ps(args) => commands::ps::run(global, args.json).await,
        Command::Show(args) => commands::show::run(global, args).await,
        Command::Stop { model, .. } => commands::stop::run(global, &model).await,
        Command::Personality(command) => commands::personality::run(global, command),
        Command::Config(command) => commands::config::run(global, command),
        Command::Sessions(args) => commands::sessions::run(args),
        Command::Completions {
            shell,
            static_script,
        } => commands::complete::script(shell, static_script),
        Command::Measure { .. } | Command::RawChat { .. } => Ok(ExitCode::SUCCESS),
    }
}
