//! conductor-tui: the terminal chat UI of conductor, a thin client of `conductor-core`.
//!
//! [`run`] takes validated [`Settings`] and runs the chat until the user quits: answers stream
//! in as they are generated, the status bar shows the host, model, personality, the live GPU
//! badge (`100% GPU` green, `48%/52% CPU/GPU` amber, `100% CPU` red) and the figures of the last
//! answer, and every conversation is saved as it goes.
//!
//! ```no_run
//! use conductor_core::{LoadedConfig, config::ConfigSources};
//! use conductor_tui::{ChatOptions, run};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let settings = LoadedConfig::load(ConfigSources::default())?.settings;
//! run(settings, ChatOptions { resume: true, ..ChatOptions::default() }).await?;
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
//! - [`ui`]: rendering from `&App`; [`markdown`]: markdown to wrapped lines, cached per message.
//! - [`worker`]: the task that owns the [`conductor_core::Chat`] and streams answers.
//! - [`residency`]: `/api/ps` polling for the GPU badge.
//! - [`session`]: conversations saved atomically with user-only permissions; [`lock`]: one
//!   window per conversation.
//! - [`input`]: the multi-line input box and input history.
//! - [`logfile`]: the user-only log file.
//!
//! The terminal is set up with `ratatui::try_init` (raw mode, alternate screen, a panic hook
//! that restores the terminal) plus mouse capture, bracketed paste and, where the terminal
//! supports it, the keyboard protocol that reports Shift+Enter. Nothing is printed while the
//! terminal is in raw mode: log with `tracing` to a file, never to stderr.

#![deny(missing_docs)]

pub mod app;
pub mod event;
pub mod input;
pub mod lock;
pub mod logfile;
pub mod markdown;
pub mod residency;
pub mod session;
pub mod ui;
pub mod worker;

use std::io::{IsTerminal, stdout};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use conductor_core::{Backend, Conductor, PersonalityCatalog, Settings};
use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    KeyboardEnhancementFlags, PopKeyboardEnhancementFlags, PushKeyboardEnhancementFlags,
};
use crossterm::execute;

use crate::app::{Action, App, AppInfo, NoticeLevel};
use crate::event::{Event, EventHandler, EventSender, FPS};
use crate::lock::{LockError, SessionLock};
use crate::residency::{IDLE_INTERVAL, ResidencyPoller};
use crate::session::{SaveRequest, Saver, SessionStore};
use crate::worker::{Command, WorkerHandle};

/// How the chat starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatOptions {
    /// Continue the most recently saved conversation (`conductor chat --resume`).
    pub resume: bool,
    /// Where sessions are saved; `None`: `<data dir>/conductor/sessions`.
    pub sessions_dir: Option<PathBuf>,
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
    /// The conductor could not be built from the settings (e.g. an unknown personality).
    #[error(transparent)]
    Core(#[from] conductor_core::Error),
}

/// Runs the chat UI until the user quits.
///
/// Builds the [`Conductor`] from `settings` (errors before the terminal is touched), takes over
/// the terminal, and always restores it, on errors and panics too.
///
/// # Errors
/// [`TuiError::NotATerminal`] without a TTY; [`TuiError::Core`] when the settings cannot be
/// used (e.g. the personality does not exist); [`TuiError::Terminal`] when the terminal fails.
pub async fn run(settings: Settings, options: ChatOptions) -> Result<(), TuiError> {
    if !stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(TuiError::NotATerminal);
    }
    let conductor = Conductor::from_settings(&settings)?;
    let info = AppInfo {
        host: settings.host.to_string(),
        model: settings.model.clone(),
        personality: settings.personality.to_string(),
        policy: settings.gpu_policy,
    };
    let store = match &options.sessions_dir {
        Some(dir) => Ok(SessionStore::new(dir)),
        None => SessionStore::default_location(),
    };
    let mut app = App::new(info);
    app.system.clone_from(&settings.system);
    let store = match store {
        Ok(store) => {
            if options.resume {
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

    let guard = TerminalGuard::enter().map_err(TuiError::Terminal)?;
    let result = event_loop(app, conductor, store, guard).await;
    result.map_err(TuiError::Terminal)
}

/// Restores the terminal when dropped (the panic hook covers panics).
struct TerminalGuard {
    terminal: ratatui::DefaultTerminal,
}

impl TerminalGuard {
    fn enter() -> std::io::Result<Self> {
        install_panic_hook();
        // After our hook, so that ratatui's runs first on a panic (it restores the terminal,
        // then calls ours, which undoes the extras).
        let terminal = ratatui::try_init()?;
        let guard = Self { terminal };
        execute!(stdout(), EnableMouseCapture, EnableBracketedPaste)?;
        if matches!(
            crossterm::terminal::supports_keyboard_enhancement(),
            Ok(true)
        ) {
            // Tells Shift+Enter from Enter in terminals that speak the kitty protocol.
            execute!(
                stdout(),
                PushKeyboardEnhancementFlags(KeyboardEnhancementFlags::DISAMBIGUATE_ESCAPE_CODES)
            )?;
        }
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        undo_extras();
        let _ = ratatui::try_restore();
    }
}

fn undo_extras() {
    let _ = execute!(
        stdout(),
        PopKeyboardEnhancementFlags,
        DisableBracketedPaste,
        DisableMouseCapture
    );
}

fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        undo_extras();
        previous(info);
    }));
}

/// Holds the lock of the session the app is saving, following it as it changes (a new
/// conversation, a resumed one), so that no two windows write the same file.
#[derive(Default)]
struct SessionLocks {
    held: Option<SessionLock>,
    /// The id whose lock could not be taken for a reason other than another window (told once).
    failed: Option<String>,
}

impl SessionLocks {
    /// Runs before the app's actions are carried out, so that no save of a session held by
    /// another window is ever queued.
    fn follow(&mut self, store: Option<&SessionStore>, app: &mut App) {
        let Some(store) = store else {
            return;
        };
        // A copy gets a fresh id, which is free unless ids collide: a few rounds at most.
        for _ in 0..4 {
            let id = app.session.id.clone();
            if self.held.as_ref().is_some_and(|l| l.id() == id) || self.failed.as_ref() == Some(&id)
            {
                return;
            }
            self.held = None;
            self.failed = None;
            match store.lock(&id) {
                Ok(lock) => {
                    self.held = Some(lock);
                    return;
                }
                Err(LockError::Held { pid, .. }) => app.continue_as_copy(pid),
                Err(err) => {
                    tracing::warn!(error = %err, "session not locked");
                    app.notice(
                        NoticeLevel::Warning,
                        "This conversation could not be locked: another window resuming it \
                         could overwrite it"
                            .into(),
                        vec![err.to_string()],
                        None,
                    );
                    self.failed = Some(id);
                    return;
                }
            }
        }
    }
}

/// The background pieces the actions talk to.
struct Runtime {
    worker: WorkerHandle,
    poller: ResidencyPoller,
    saver: Option<Saver>,
    store: Option<SessionStore>,
    backend: Arc<dyn Backend>,
    catalog: PersonalityCatalog,
    events: EventSender,
}

impl Runtime {
    fn dispatch(&self, action: Action, app: &App) {
        match action {
            Action::Send(text) => self.worker.send(Command::Send(text)),
            Action::Cancel => self.worker.send(Command::Cancel),
            Action::SwitchPersonality(name) => {
                self.worker.send(Command::SwitchPersonality(name));
            }
            Action::SetModel(model) => {
                self.poller.set_model(&model);
                self.worker.send(Command::SetModel(model));
                self.worker.send(Command::Warm);
            }
            Action::SetSystem(system) => self.worker.send(Command::SetSystem(system)),
            Action::Clear => self.worker.send(Command::Clear),
            Action::Restore {
                history,
                personality,
                system,
            } => self.worker.send(Command::Restore {
                history,
                personality: Some(personality),
                system,
            }),
            Action::Save { announce } => {
                let session = app.session_snapshot();
                match &self.saver {
                    // An empty conversation is not worth a file.
                    Some(_) if session.messages.is_empty() && !announce => {}
                    Some(saver) => saver.save(SaveRequest { session, announce }),
                    None if announce => self.events.send(Event::Saved(Err(
                        "no data directory to save conversations in".into(),
                    ))),
                    None => {}
                }
            }
            Action::ListPersonalities => {
                let catalog = self.catalog.clone();
                let events = self.events.clone();
                tokio::task::spawn_blocking(move || {
                    let list = catalog
                        .list()
                        .into_iter()
                        .map(|entry| {
                            let detail = match &entry.personality {
                                Ok(p) => p.description().to_owned(),
                                Err(err) => format!("(broken: {err})"),
                            };
                            (entry.name, detail)
                        })
                        .collect();
                    events.send(Event::Personalities(list));
                });
            }
            Action::ListModels => {
                let backend = Arc::clone(&self.backend);
                let events = self.events.clone();
                tokio::spawn(async move {
                    let models = match backend.server() {
                        Ok(server) => server.list_models().await,
                        Err(err) => Err(err),
                    }
                    .map_err(|e| e.to_string());
                    events.send(Event::Models(models));
                });
            }
            Action::ListSessions => {
                let events = self.events.clone();
                match self.store.clone() {
                    Some(store) => {
                        tokio::task::spawn_blocking(move || {
                            events.send(Event::Sessions(store.list().map_err(|e| e.to_string())));
                        });
                    }
                    None => events.send(Event::Sessions(Err("no data directory".into()))),
                }
            }
            Action::OpenSession(id) => {
                let events = self.events.clone();
                if let Some(store) = self.store.clone() {
                    tokio::task::spawn_blocking(move || {
                        events.send(Event::SessionLoaded(
                            store.load(&id).map_err(|e| e.to_string()),
                        ));
                    });
                }
            }
            Action::RefreshResidency => self.poller.refresh(),
            Action::SetIdle(idle) => self.poller.set_idle(idle),
        }
    }
}

async fn event_loop(
    mut app: App,
    conductor: Conductor,
    store: Option<SessionStore>,
    mut guard: TerminalGuard,
) -> std::io::Result<()> {
    let mut events = EventHandler::new();
    events.start_terminal(FPS);
    let sender = events.sender();
    let backend = Arc::clone(conductor.backend());
    let (worker, worker_task) = worker::spawn(conductor.chat(), sender.clone());
    let runtime = Runtime {
        worker,
        poller: ResidencyPoller::spawn(
            Arc::clone(&backend),
            &app.info.model,
            sender.clone(),
            IDLE_INTERVAL,
        ),
        saver: store.clone().map(|s| Saver::spawn(s, sender.clone())),
        store,
        backend,
        catalog: conductor.catalog().clone(),
        events: sender,
    };
    // Check (and load) the model at once: the badge, and any diagnosis, show before the first
    // question.
    runtime.worker.send(Command::Warm);
    app.checking = true;

    // A little under one tick, so that a tick arriving a hair early still draws.
    let frame = Duration::from_secs_f64(0.75 / FPS);
    let mut last_draw: Option<Instant> = None;
    let mut result = Ok(());
    let mut locks = SessionLocks::default();
    loop {
        locks.follow(runtime.store.as_ref(), &mut app);
        for action in app.take_actions() {
            runtime.dispatch(action, &app);
        }
        if app.should_quit {
            break;
        }
        if last_draw.is_none_or(|t| t.elapsed() >= frame) && app.take_dirty() {
            if let Err(err) = guard.terminal.draw(|f| ui::draw(f, &app)) {
                result = Err(err);
                break;
            }
            last_draw = Some(Instant::now());
        }
        let Some(event) = events.next().await else {
            break;
        };
        app.update(event);
        // Take everything already waiting (a burst of tokens) before drawing once.
        for _ in 0..4096 {
            match events.try_next() {
                Some(event) => app.update(event),
                None => break,
            }
        }
    }
    for action in app.take_actions() {
        runtime.dispatch(action, &app);
    }
    // Give the terminal back first, then finish the background work.
    drop(guard);
    drop(events);
    runtime.worker.send(Command::Cancel);
    let Runtime { worker, saver, .. } = runtime;
    drop(worker);
    let _ = tokio::time::timeout(Duration::from_secs(2), worker_task).await;
    if let Some(saver) = saver {
        let _ = tokio::task::spawn_blocking(move || saver.finish()).await;
    }
    // Only once the last save is written may another window take the conversation.
    drop(locks);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The caller may spawn the chat on a multi-threaded runtime.
    #[test]
    fn the_run_future_is_send() {
        fn is_send<T: Send>(_: &T) {}
        let future = run(Settings::defaults(), ChatOptions::default());
        is_send(&future);
    }
}
