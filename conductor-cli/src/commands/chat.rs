//! `conductor chat`: the terminal chat UI (conductor-tui).

use std::process::ExitCode;

use conductor_tui::{ChatOptions, TuiError};

use crate::cli::{ChatArgs, GlobalArgs};
use crate::commands::load_config;
use crate::exit::Failure;

/// Runs the command.
pub async fn run(global: &GlobalArgs, args: ChatArgs) -> Result<ExitCode, Failure> {
    let config = load_config(global)?;
    let options = ChatOptions {
        resume: args.resume,
        ..ChatOptions::default()
    };
    match conductor_tui::run(config.settings, options).await {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(TuiError::Core(err)) => Err(Failure::Core(err)),
        Err(TuiError::NotATerminal) => Err(Failure::Usage(
            "`conductor chat` needs a terminal (stdin and stdout); in scripts use `conductor ask`"
                .into(),
        )),
        Err(err) => Err(Failure::other(err.to_string())),
    }
}
