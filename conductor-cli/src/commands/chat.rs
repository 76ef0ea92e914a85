//! `conductor chat`: the terminal chat UI (conductor-tui) over the configured conductor.

use std::process::ExitCode;

use conductor_core::Conductor;
use conductor_core::session::{SessionError, SessionStore, looks_like_id, validate_name};
use conductor_tui::{ChatOptions, TuiError};

use crate::cli::{ChatArgs, GlobalArgs};
use crate::commands::load_config;
use crate::exit::Failure;

/// Runs the command.
pub async fn run(global: &GlobalArgs, args: ChatArgs) -> Result<ExitCode, Failure> {
    if let Some(query) = &args.session {
        check_session_query(query, args.sessions_dir.as_deref())?;
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

/// `--session ID|NAME` before the UI starts: an id must name a saved session (a typo must not
/// start a new, unnamed conversation); anything else must be a valid name, for the session
/// that has it or the one it will start.
fn check_session_query(query: &str, sessions_dir: Option<&std::path::Path>) -> Result<(), Failure> {
    if !looks_like_id(query) {
        return validate_name(query).map_err(super::conversation::failure);
    }
    let store = match sessions_dir {
        Some(dir) => SessionStore::new(dir),
        None => SessionStore::default_location().map_err(super::conversation::failure)?,
    };
    match store.find_exact(query) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(super::conversation::failure(SessionError::NotFound(
            query.to_owned(),
        ))),
        Err(err) => Err(super::conversation::failure(err)),
    }
}

fn not_a_terminal() -> Failure {
    Failure::Usage(
        "`conductor chat` needs a terminal (stdin and stdout); in scripts use `conductor ask`"
            .into(),
    )
}
