//! The loop of a running chat: events in, the app updated, its actions carried out by the
//! worker, the residency poller and the session saver; the screen drawn when something changed.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use conductor_core::backend::same_model;
use conductor_core::{Backend, Conductor, PersonalityCatalog, Role};

use crate::app::{Action, App, NoticeLevel};
use crate::editor::EditorError;
use crate::event::{Event, EventHandler, EventSender, FPS, PullUpdate};
use crate::lock::{LockError, SessionLock};
use crate::residency::{IDLE_INTERVAL, ResidencyPoller};
use crate::session::{SaveRequest, Saver, SessionStore};
use crate::terminal::TerminalGuard;
use crate::ui;
use crate::worker::{self, Command, WorkerHandle};

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

/// The longest the model list behind `/model NAME` may take.
const LOOKUP_LIMIT: Duration = Duration::from_secs(30);
/// Conversations whose user messages Ctrl+R searches, newest first.
const PAST_SESSIONS: usize = 50;

/// The background pieces the actions talk to.
struct Runtime {
    worker: WorkerHandle,
    poller: ResidencyPoller,
    saver: Option<Saver>,
    store: Option<SessionStore>,
    backend: Arc<dyn Backend>,
    catalog: PersonalityCatalog,
    events: EventSender,
    /// The `/pull` in progress: its model and its task.
    pull: Option<(String, tokio::task::AbortHandle)>,
}

impl Runtime {
    fn dispatch(&mut self, action: Action, app: &App) {
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
                    let models = backend.models().await.map_err(|e| e.to_string());
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
            Action::Rename { id, name } => {
                let events = self.events.clone();
                let Some(store) = self.store.clone() else {
                    let result = Err("no data directory to save conversations in".into());
                    return events.send(Event::Renamed { id, result });
                };
                tokio::task::spawn_blocking(move || {
                    let result = store.check_name(&name, &id).map(|()| name);
                    let result = result.map_err(|e| e.to_string());
                    events.send(Event::Renamed { id, result });
                });
            }
            Action::RefreshResidency => self.poller.refresh(),
            Action::SetIdle(idle) => self.poller.set_idle(idle),
            Action::SetPolicy(policy) => self.worker.send(Command::SetPolicy(policy)),
            Action::CheckModel(model) => {
                let backend = Arc::clone(&self.backend);
                let events = self.events.clone();
                tokio::spawn(async move {
                    let found = match tokio::time::timeout(LOOKUP_LIMIT, backend.models()).await {
                        Ok(Ok(models)) => Ok(models.iter().any(|m| same_model(&m.name, &model))),
                        Ok(Err(err)) => Err(err.to_string()),
                        Err(_) => Err(format!(
                            "the server did not list its models within {} s",
                            LOOKUP_LIMIT.as_secs()
                        )),
                    };
                    events.send(Event::ModelLookup { model, found });
                });
            }
            Action::Pull(model) => {
                let backend = Arc::clone(&self.backend);
                let events = self.events.clone();
                let name = model.clone();
                let task = tokio::spawn(async move {
                    let update = crate::pull::pull(backend.as_ref(), &name, &events).await;
                    events.send(Event::Pull {
                        model: name,
                        update,
                    });
                });
                self.pull = Some((model, task.abort_handle()));
            }
            Action::CancelPull => {
                if let Some((model, task)) = self.pull.take() {
                    // Dropping the stream closes the connection: the server stops downloading.
                    task.abort();
                    self.events.send(Event::Pull {
                        model,
                        update: PullUpdate::Cancelled,
                    });
                }
            }
            // Carried out by the loop, which owns the terminal.
            Action::Copy { .. } | Action::Edit(_) => {}
        }
    }
}

/// The user's messages of the newest saved conversations, oldest first, for Ctrl+R.
fn past_inputs(store: &SessionStore) -> Vec<String> {
    let Ok(list) = store.list() else {
        return Vec::new();
    };
    let mut inputs = Vec::new();
    for summary in list.iter().take(PAST_SESSIONS).rev() {
        if let Ok(session) = store.load(&summary.id) {
            inputs.extend(
                session
                    .messages
                    .into_iter()
                    .filter(|m| m.role == Role::User)
                    .map(|m| m.message.content),
            );
        }
    }
    inputs
}

/// `/copy`: the text to the terminal's clipboard, through the writer ratatui draws with.
fn copy(guard: &mut TerminalGuard, text: &str, what: String) -> Event {
    let tmux = crate::clipboard::in_tmux();
    let result = crate::clipboard::copy_to(guard.terminal.backend_mut(), text, tmux)
        .map_err(|err| err.to_string());
    Event::Copied {
        what,
        chars: text.chars().count(),
        tmux,
        result,
    }
}

/// An editor session of `/edit`: the terminal is the editor's until the task ends. The loop
/// keeps running meanwhile (worker events, saves, signals), drawing nothing.
struct Editing {
    /// The input the editor was given.
    seed: String,
    task: tokio::task::JoinHandle<Result<String, EditorError>>,
    /// Dropped (or sent) to stop the editor: the chat is ending.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// Ticks while the terminal reader (which ticks otherwise) is stopped: the streaming
    /// saves and the other timed work go on.
    tick: tokio::time::Interval,
}

/// The longest the end of a stopped editor is waited for (it gets SIGTERM, then SIGKILL).
const EDITOR_STOP_LIMIT: Duration = Duration::from_secs(5);

impl Editing {
    /// `/edit`: the terminal to the user's editor. The terminal reader stops first, so that
    /// the editor gets every key.
    async fn start(
        guard: &mut TerminalGuard,
        events: &mut EventHandler,
        text: String,
    ) -> Result<Self, EditorError> {
        events.stop_terminal().await;
        if let Err(err) = guard.suspend() {
            return Err(EditorError::Terminal(err));
        }
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let editor = crate::editor::editor_from_env();
        let seed = text.clone();
        let task = tokio::spawn(async move {
            let stopped = async {
                // Sent or dropped, it is the same: stop.
                let _ = stopped.await;
            };
            crate::editor::edit_until(&editor, &text, stopped).await
        });
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / FPS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        Ok(Self {
            seed,
            task,
            stop: Some(stop),
            tick,
        })
    }

    /// What the editor task returned.
    fn outcome(
        joined: Result<Result<String, EditorError>, tokio::task::JoinError>,
    ) -> Result<String, EditorError> {
        joined.unwrap_or_else(|err| Err(EditorError::Terminal(std::io::Error::other(err))))
    }

    /// The chat is ending: the editor is asked to stop and waited for (briefly), so that it
    /// leaves the terminal before it is restored.
    async fn stop(mut self) -> Result<String, EditorError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match tokio::time::timeout(EDITOR_STOP_LIMIT, &mut self.task).await {
            Ok(joined) => Self::outcome(joined),
            Err(_) => {
                self.task.abort();
                Err(EditorError::Terminal(std::io::Error::other(
                    "the editor did not stop",
                )))
            }
        }
    }
}

/// One event to the app. While the editor has the terminal, keys, pastes and mouse events
/// read before it took it are dropped: they were typed for the editor (or after the input was
/// handed to it), and must not send a question, stop the answer or change the input the
/// editor will replace. Resizes (the layout) and everything else go on.
fn apply(app: &mut App, event: Event, editing: bool) {
    if editing
        && let Event::Terminal(term) = &event
        && !matches!(term, crossterm::event::Event::Resize(..))
    {
        return;
    }
    app.update(event);
}

/// Takes everything already waiting (a burst of tokens) before drawing once, up to an action
/// that hands the terminal away (`/edit`): what follows it waits, and is dropped while the
/// editor runs (see [`apply`]).
fn apply_waiting(app: &mut App, events: &mut EventHandler, editing: bool) {
    for _ in 0..4096 {
        if app.hands_terminal_away() {
            return;
        }
        match events.try_next() {
            Some(event) => apply(app, event, editing),
            None => return,
        }
    }
}

/// The chat ended with the editor open: where what the user wrote is kept, if anywhere. An
/// editor that exited in time returns its text, which is not lost either: unless it is the
/// seed unchanged, it is written to a kept file.
fn kept_at_the_end(outcome: Result<String, EditorError>, seed: &str) -> Option<PathBuf> {
    match outcome {
        Ok(text) if text == seed || text.trim().is_empty() => None,
        Ok(text) => match crate::editor::keep_text(&text) {
            Ok(path) => Some(path),
            Err(err) => {
                tracing::warn!(error = %err, "the text of the editor could not be kept");
                None
            }
        },
        Err(err) => match err.kept() {
            Some(kept) => {
                tracing::warn!(
                    path = %kept.path.display(),
                    "the chat ended during /edit; the text written is kept"
                );
                Some(kept.path.clone())
            }
            None => {
                tracing::info!(error = %err, "the chat ended during /edit");
                None
            }
        },
    }
}

/// The terminal back from the editor: reading and drawing again.
fn take_back_terminal(guard: &mut TerminalGuard, events: &mut EventHandler) -> std::io::Result<()> {
    let resumed = guard.resume();
    events.start_terminal(FPS);
    resumed
}

pub(crate) async fn event_loop(
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
    let mut runtime = Runtime {
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
        pull: None,
    };
    if let Some(store) = runtime.store.clone() {
        let events = runtime.events.clone();
        tokio::task::spawn_blocking(move || events.send(Event::PastInputs(past_inputs(&store))));
    }
    // Check (and load) the model at once: the badge, and any diagnosis, show before the first
    // question.
    runtime.worker.send(Command::Warm);
    app.checking = true;

    // A little under one tick, so that a tick arriving a hair early still draws.
    let frame = Duration::from_secs_f64(0.75 / FPS);
    let mut last_draw: Option<Instant> = None;
    let mut result = Ok(());
    let mut locks = SessionLocks::default();
    let mut editing: Option<Editing> = None;
    loop {
        locks.follow(runtime.store.as_ref(), &mut app);
        for action in app.take_actions() {
            match action {
                // The editor has the terminal: no sequence may reach it (nor can a key have
                // asked for this; it is refused in case anything else ever does).
                Action::Copy { what, text } if editing.is_some() => app.update(Event::Copied {
                    what,
                    chars: text.chars().count(),
                    tmux: false,
                    result: Err("the editor has the terminal".into()),
                }),
                Action::Copy { text, what } => {
                    let event = copy(&mut guard, &text, what);
                    app.update(event);
                }
                Action::Edit(_) if editing.is_some() => {}
                Action::Edit(text) => match Editing::start(&mut guard, &mut events, text).await {
                    Ok(started) => editing = Some(started),
                    Err(err) => {
                        let resumed = take_back_terminal(&mut guard, &mut events);
                        app.update(Event::Edited(Err(err)));
                        if let Err(err) = resumed {
                            result = Err(err);
                            app.quit();
                        }
                    }
                },
                action => runtime.dispatch(action, &app),
            }
        }
        if app.should_quit {
            break;
        }
        // Nothing is drawn while the editor has the terminal; what changed meanwhile is drawn
        // once it is back.
        if editing.is_none() && last_draw.is_none_or(|t| t.elapsed() >= frame) && app.take_dirty() {
            if let Err(err) = guard.terminal.draw(|f| ui::draw(f, &app)) {
                result = Err(err);
                break;
            }
            last_draw = Some(Instant::now());
        }
        let next = match &mut editing {
            Some(open) => tokio::select! {
                joined = &mut open.task => {
                    editing = None;
                    let resumed = take_back_terminal(&mut guard, &mut events);
                    app.update(Event::Edited(Editing::outcome(joined)));
                    if let Err(err) = resumed {
                        result = Err(err);
                        app.quit();
                    }
                    continue;
                }
                event = events.next() => event,
                _ = open.tick.tick() => Some(Event::Tick),
            },
            None => events.next().await,
        };
        let Some(event) = next else {
            break;
        };
        apply(&mut app, event, editing.is_some());
        apply_waiting(&mut app, &mut events, editing.is_some());
    }
    // Ending with the editor open (SIGTERM, SIGHUP): it is stopped first, keeping what it
    // wrote in its file, so that the terminal is restored after it, not under it.
    let kept = match editing.take() {
        Some(open) => {
            let seed = open.seed.clone();
            kept_at_the_end(open.stop().await, &seed)
        }
        None => None,
    };
    for action in app.take_actions() {
        runtime.dispatch(action, &app);
    }
    // Give the terminal back first, then finish the background work.
    drop(guard);
    // The terminal is the shell's again: the one place the UI writes to stderr, so that the
    // user learns where the text of the editor went.
    if let Some(path) = kept {
        let _ = writeln!(
            std::io::stderr(),
            "conductor: the chat ended while the editor was open; what you wrote is kept in {}",
            path.display()
        );
    }
    drop(events);
    runtime.worker.send(Command::Cancel);
    let Runtime {
        worker,
        saver,
        pull,
        ..
    } = runtime;
    if let Some((_, task)) = pull {
        task.abort();
    }
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
    use crate::app::AppInfo;
    use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};

    fn app() -> App {
        App::new(AppInfo {
            host: "http://127.0.0.1:11434".into(),
            model: "llama3.2:3b".into(),
            personality: "yollayah".into(),
            policy: conductor_core::GpuPolicy::Enforce,
            backend: conductor_core::BackendKind::Ollama,
        })
    }

    fn key(code: KeyCode, modifiers: KeyModifiers) -> Event {
        Event::Terminal(TermEvent::Key(KeyEvent::new(code, modifiers)))
    }

    fn typed(events: &EventSender, text: &str) {
        for c in text.chars() {
            events.send(key(KeyCode::Char(c), KeyModifiers::NONE));
        }
    }

    /// Keys read in the same burst as Ctrl+X Ctrl+E neither change the input the editor was
    /// given nor send it; the ones still queued when the editor runs are dropped, while a
    /// resize and the chat's own events still arrive.
    #[tokio::test]
    async fn keys_after_the_editor_was_asked_for_do_not_reach_the_chat() {
        let mut app = app();
        let mut events = EventHandler::new();
        let sender = events.sender();
        typed(&sender, "draft");
        sender.send(key(KeyCode::Char('x'), KeyModifiers::CONTROL));
        sender.send(key(KeyCode::Char('e'), KeyModifiers::CONTROL));
        typed(&sender, " more");
        sender.send(key(KeyCode::Enter, KeyModifiers::NONE));
        sender.send(key(KeyCode::Esc, KeyModifiers::NONE));

        let first = events.try_next().unwrap();
        apply(&mut app, first, false);
        apply_waiting(&mut app, &mut events, false);
        assert_eq!(app.input.text(), "draft", "the input the editor is given");
        assert!(app.hands_terminal_away());
        assert_eq!(app.take_actions(), [Action::Edit("draft".into())]);

        // The editor runs: what was read before it took the terminal is dropped.
        sender.send(Event::Terminal(TermEvent::Resize(80, 20)));
        sender.send(Event::Edited(Ok("from the editor".into())));
        apply_waiting(&mut app, &mut events, true);
        assert!(events.try_next().is_none(), "all taken");
        assert_eq!(app.input.text(), "from the editor");
        assert!(
            app.take_actions().is_empty(),
            "nothing sent, nothing stopped"
        );
    }

    #[test]
    fn the_text_of_an_editor_that_returned_as_the_chat_ended_is_kept() {
        let path = kept_at_the_end(Ok("my reply".into()), "seed").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "my reply\n");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            kept_at_the_end(Ok("seed".into()), "seed"),
            None,
            "unchanged"
        );
        assert_eq!(kept_at_the_end(Ok(" \n".into()), "seed"), None, "emptied");
        assert_eq!(
            kept_at_the_end(Err(EditorError::NotFound("vi".into())), "seed"),
            None
        );
    }
}
