//! `conductor chat`: the terminal chat UI (conductor-tui) over the configured conductor.

use std::process::ExitCode;

use conductor_core::Conductor;
use conductor_tui::{ChatOptions, TuiError};

use crate::cli::{ChatArgs, GlobalArgs};
use crate::commands::load_config;
use crate::exit::Failure;

/// Runs the command.
pub async fn run(global: &GlobalArgs, args: ChatArgs) -> Result<ExitCode, Failure> {
    if let Some(name) = &args.session {
        conductor_core::session::validate_name(name).map_err(|e| Failure::Usage(e.to_string()))?;
    }
    let config = load_config(global)?;
    // Before the conductor is built: a script without a terminal hears that first.
    if !conductor_tui::has_terminal() {
        return Err(not_a_terminal());
    }
    let conductor = Conductor::from_settings(&config.settings)?;
    let options = ChatOptions {
        resume: args.resume,
        session: args.session,
        sessions_dir: args.sessions_dir,
        backend: config.settings.backend,
        // The flag is the chat's own: it outranks CONDUCTOR_THEME and [chat] theme.
        theme: args.theme.map_or(config.settings.theme, Into::into),
    };
    match conductor_tui::run(conductor, options).await {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(TuiError::NotATerminal) => Err(not_a_terminal()),
        Err(err) => Err(Failure::other(err.to_string())),
    }
}

fn not_a_terminal() -> Failure {
    Failure::Usage(
        "`conductor chat` needs a terminal (stdin and stdout); in scripts use `conductor ask`"
            .into(),
    )
}
