//! conductor-tui: the terminal chat UI of conductor, a thin client of `conductor-core`.
//!
//! [`run`] takes a [`Conductor`] and runs the chat until the user quits: answers stream in as
//! they are generated, the status bar shows the host, model, personality, the live GPU badge
//! (`100% GPU` green, `48%/52% CPU/GPU` amber, `100% CPU` red) and the figures of the last
//! answer, and every conversation is saved as it goes. `conductor chat` is this UI over the
//! conductor its settings describe; an application can run it over a backend of its own.
//!
//! ```no_run
//! use conductor_core::{Conductor, LoadedConfig, config::ConfigSources};
//! use conductor_tui::{ChatOptions, run};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let settings = LoadedConfig::load(ConfigSources::default())?.settings;
//! let conductor = Conductor::from_settings(&settings)?;
//! run(conductor, ChatOptions { resume: true, ..ChatOptions::default() }).await?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! As in ratatui's event-driven templates:
//!
//! - [`event`]: the one event channel: terminal input, ticks at `1 / FPS` s, the worker's
//!   stream events, residency updates, results of background jobs.
//! - [`app`]: the state and its update function (events in, actions out); no rendering, no I/O.
//! - [`ui`]: rendering from `&App`; [`markdown`]: markdown to wrapped lines, cached per message;
//!   [`highlight`]: syntax highlighting of code blocks, loaded on first use; [`theme`]: the
//!   dark, light and monochrome palettes, and how `auto` picks one.
//! - [`worker`]: the task that owns the [`conductor_core::Chat`] and streams answers.
//! - [`residency`]: `/api/ps` polling for the GPU badge.
//! - [`session`]: the saver thread over `conductor_core::session`'s store (conversations saved
//!   atomically with user-only permissions); [`lock`]: one window per conversation.
//! - [`input`]: the multi-line input box and input history.
//! - [`clipboard`]: `/copy` through the terminal (OSC 52); [`codeblocks`]: the numbered code
//!   blocks `/copy N` copies; [`editor`]: composing a message in `$VISUAL`/`$EDITOR`;
//!   [`pull`]: `/pull`, a model downloaded through the server.
//! - `runtime` (private): the loop that carries out the app's actions and draws;
//!   `terminal` (private): taking the terminal over and giving it back.
//!
//! The terminal is set up with `ratatui::try_init` (raw mode, alternate screen, a panic hook
//! that restores the terminal) plus mouse capture, bracketed paste and, where the terminal
//! supports it, the keyboard protocol that reports Shift+Enter. Nothing is printed while the
//! terminal is in raw mode: log with `tracing` to a file, never to stderr.

#![deny(missing_docs)]

pub mod app;
pub mod clipboard;
pub mod codeblocks;
pub mod editor;
pub mod event;
pub mod highlight;
pub mod input;
pub mod lock;
pub mod markdown;
pub mod pull;
pub mod residency;
pub mod session;
pub mod theme;
pub mod ui;
pub mod worker;

mod runtime;
mod terminal;

use std::io::{IsTerminal, stdout};
use std::path::PathBuf;

use conductor_core::config::ThemeChoice;
use conductor_core::{Conductor, GpuPolicy};

use crate::app::{App, AppInfo, NoticeLevel};
use crate::runtime::event_loop;
use crate::session::SessionStore;
use crate::terminal::TerminalGuard;

/// How the chat starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatOptions {
    /// Continue the most recently saved conversation (`conductor chat --resume`).
    pub resume: bool,
    /// Open the session with this id or name, or start one with this name
    /// (`conductor chat --session NAME`); takes precedence over `resume`.
    pub session: Option<String>,
    /// Where sessions are saved; `None`: `<data dir>/conductor/sessions`.
    pub sessions_dir: Option<PathBuf>,
    /// Which kind of server the conductor talks to, so errors name it (default: Ollama).
    pub backend: conductor_core::BackendKind,
    /// The colours: `auto` (the default) follows the terminal's background; `NO_COLOR`
    /// overrides any choice (see [`theme::detect`]).
    pub theme: ThemeChoice,
}

/// Why the chat UI could not run. Problems while it runs (Ollama down, a model not on the GPU)
/// are shown in the UI, not returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TuiError {
    /// stdin or stdout is not a terminal.
    #[error("the chat UI needs a terminal (stdin and stdout must be a TTY)")]
    NotATerminal,
    /// The terminal could not be set up or drawn on.
    #[error("terminal error: {0}")]
    Terminal(#[source] std::io::Error),
}

/// True when stdin and stdout are both terminals, as [`run`] needs them. A caller that builds
/// its [`Conductor`] from settings asks first, so that a script without a terminal is told so
/// before any problem with the settings.
#[must_use]
pub fn has_terminal() -> bool {
    stdout().is_terminal() && std::io::stdin().is_terminal()
}

/// Runs the chat UI over `conductor` until the user quits.
///
/// The status bar shows the conductor's backend endpoint, model, personality and GPU policy
/// (`off` without a residency guard); extra system text in its request defaults is where the
/// conversation starts. Takes over the terminal, and always restores it, on errors and panics
/// too.
///
/// An application embeds the chat over a backend of its own:
///
/// ```no_run
/// use std::sync::Arc;
///
/// use conductor_core::{Backend, Conductor, PersonalityCatalog, RequestDefaults};
/// use conductor_tui::{ChatOptions, run};
///
/// async fn chat(backend: Arc<dyn Backend>) -> Result<(), Box<dyn std::error::Error>> {
///     let personality = PersonalityCatalog::builtin().load("yollayah")?;
///     let conductor = Conductor::new(backend, personality, RequestDefaults::for_model("my-model"));
///     run(conductor, ChatOptions::default()).await?;
///     Ok(())
/// }
/// ```
///
/// # Errors
/// [`TuiError::NotATerminal`] without a TTY (see [`has_terminal`]); [`TuiError::Terminal`]
/// when the terminal fails.
pub async fn run(conductor: Conductor, options: ChatOptions) -> Result<(), TuiError> {
    if !has_terminal() {
        return Err(TuiError::NotATerminal);
    }
    let info = AppInfo {
        host: conductor.backend().endpoint(),
        model: conductor.defaults().model.clone(),
        personality: conductor.personality().name().to_string(),
        policy: conductor
            .guard()
            .map_or(GpuPolicy::Off, |guard| guard.policy()),
        backend: options.backend,
    };
    let store = match &options.sessions_dir {
        Some(dir) => Ok(SessionStore::new(dir)),
        None => SessionStore::default_location(),
    };
    let mut app = App::new(info);
    app.system.clone_from(&conductor.defaults().system);
    let store = match store {
        Ok(store) => {
            if let Some(query) = &options.session {
                app.open_named(query, store.find_exact(query));
            } else if options.resume {
                match store.resume_latest() {
                    Ok(found) => {
                        app.report_set_aside(&found.set_aside);
                        match found.session {
                            Some(session) => app.resume(session),
                            None => app.notice(
                                NoticeLevel::Info,
                                "No saved conversation to resume: starting a new one".into(),
                                Vec::new(),
                                None,
                            ),
                        }
                    }
                    Err(err) => app.notice(
                        NoticeLevel::Warning,
                        format!("Cannot resume: {err}"),
                        Vec::new(),
                        None,
                    ),
                }
            }
            Some(store)
        }
        Err(err) => {
            app.notice(
                NoticeLevel::Warning,
                format!("Conversations will not be saved: {err}"),
                Vec::new(),
                None,
            );
            None
        }
    };

    // Before the terminal is taken over: the OSC 11 query needs its own raw-mode exchange,
    // and its answer must not reach the event loop. It blocks (up to seconds over SSH): not on
    // the runtime's worker.
    let choice = options.theme;
    let kind = tokio::task::spawn_blocking(move || theme::detect::detect(choice))
        .await
        .unwrap_or_else(|err| {
            tracing::debug!(%err, "theme detection failed: dark");
            theme::ThemeKind::Dark
        });
    theme::set_active(kind);
    let guard = TerminalGuard::enter().map_err(TuiError::Terminal)?;
    let result = event_loop(app, conductor, store, guard).await;
    result.map_err(TuiError::Terminal)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The caller may spawn the chat on a multi-threaded runtime.
    #[test]
    fn the_run_future_is_send() {
        fn is_send<T: Send>(_: &T) {}
        let conductor = Conductor::from_settings(&conductor_core::Settings::defaults()).unwrap();
        let future = run(conductor, ChatOptions::default());
        is_send(&future);
    }
}
