//! The loop of a running chat: events in, the app updated, its actions carried out by the
//! worker, the residency poller and the session saver; the screen drawn when something changed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use conductor_core::{Backend, Conductor, PersonalityCatalog};

use crate::app::{Action, App, NoticeLevel};
use crate::event::{Event, EventHandler, EventSender, FPS};
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
        }
    }
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
