//! The one event channel of the UI: terminal input, ticks, the chat worker's stream events,
//! residency updates and the results of background jobs all arrive here, in order.
//!
//! As in ratatui's event-driven templates, a task reads crossterm's `EventStream` and ticks at
//! `1 / FPS` seconds; every other producer holds an [`EventSender`].

use std::path::PathBuf;
use std::time::Duration;

use crossterm::event::{Event as TermEvent, EventStream};
use futures::StreamExt;
use tokio::sync::mpsc;

use conductor_core::backend::{LocalModel, PullProgress};

use crate::editor::EditorError;
use crate::residency::ResidencyUpdate;
use crate::session::{Session, SessionSummary};
use crate::worker::WorkerEvent;

/// Frames per second: the tick rate, and the most often the screen is redrawn.
pub const FPS: f64 = 60.0;

/// Something the app reacts to.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// Time passed (1 / [`FPS`] seconds): animate, redraw what changed.
    Tick,
    /// A key, a paste, the mouse, a resize.
    Terminal(TermEvent),
    /// The chat worker: the answer streaming in, its end, errors, applied settings.
    Worker(WorkerEvent),
    /// Where the model is loaded, from `/api/ps`.
    Residency(ResidencyUpdate),
    /// The local models, for the `/model` picker (or why they could not be listed).
    Models(Result<Vec<LocalModel>, String>),
    /// The personalities, for the `/personality` picker: (name, description).
    Personalities(Vec<(String, String)>),
    /// The saved sessions, for the `/sessions` picker.
    Sessions(Result<Vec<SessionSummary>, String>),
    /// A session read from disk, to resume.
    SessionLoaded(Result<Session, String>),
    /// The name a session may take (checked to be free), or why not.
    Renamed {
        /// The session.
        id: String,
        /// Its new name, or why it cannot have it.
        result: Result<String, String>,
    },
    /// Another session took this one's name first (checked when it was first saved under it):
    /// the conversation was saved without the name.
    NameRefused {
        /// The session.
        id: String,
        /// The name it did not get.
        name: String,
        /// Why, naming the session that has it.
        reason: String,
    },
    /// A session was saved there (when asked to tell), or could not be saved.
    Saved(Result<PathBuf, String>),
    /// Whether a model asked for by `/model NAME` is on the server (`Err`: it could not be
    /// asked).
    ModelLookup {
        /// The model asked for.
        model: String,
        /// True when the server has it.
        found: Result<bool, String>,
    },
    /// A `/pull` progressed, ended or failed.
    Pull {
        /// The model being pulled.
        model: String,
        /// What happened.
        update: PullUpdate,
    },
    /// Text was sent to the terminal's clipboard (OSC 52), or could not be.
    Copied {
        /// What was copied, for the notice (`the last answer`, `code block 2`).
        what: String,
        /// Its length in characters.
        chars: usize,
        /// Sent inside tmux (which needs a setting to pass it on).
        tmux: bool,
        /// Whether the sequence could be written.
        result: Result<(), String>,
    },
    /// The editor of `/edit` (Ctrl+X Ctrl+E) returned: the new input, or why there is none.
    Edited(Result<String, EditorError>),
    /// The user's messages of earlier conversations, oldest first, for Ctrl+R.
    PastInputs(Vec<String>),
    /// The process was asked to stop (SIGTERM, SIGHUP): save and leave.
    Terminate,
}

/// How a `/pull` goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullUpdate {
    /// A progress line from the server.
    Progress(PullProgress),
    /// The model is on the server now.
    Done,
    /// The pull failed (the reason).
    Failed(String),
    /// Stopped with Esc.
    Cancelled,
}

/// A handle to send events into the channel; cheap to clone.
#[derive(Debug, Clone)]
pub struct EventSender {
    tx: mpsc::UnboundedSender<Event>,
}

impl EventSender {
    /// Sends an event; a closed channel (the UI has quit) drops it.
    pub fn send(&self, event: Event) {
        let _ = self.tx.send(event);
    }

    /// True once the UI has stopped listening.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// The receiving end, owned by the UI loop.
#[derive(Debug)]
pub struct EventHandler {
    tx: mpsc::UnboundedSender<Event>,
    rx: mpsc::UnboundedReceiver<Event>,
    reader: Option<tokio::task::JoinHandle<()>>,
    /// Listens for SIGINT, SIGTERM and SIGHUP; kept while the reader is stopped for the
    /// editor, so that a signal then is not lost.
    signals: Option<tokio::task::JoinHandle<()>>,
}

impl EventHandler {
    /// A channel with no producers yet (for tests and for the bench).
    #[must_use]
    pub fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            tx,
            rx,
            reader: None,
            signals: None,
        }
    }

    /// Starts reading the terminal and ticking at `fps`; also turns SIGINT, SIGTERM and SIGHUP
    /// into [`Event::Terminate`]. Needs a tokio runtime. After [`EventHandler::stop_terminal`]
    /// SIGTERM and SIGHUP are still listened for, SIGINT is not (see `TerminateSignals`).
    ///
    /// The signal handlers are in place when this returns (not when the task first runs): from
    /// then on a signal saves and restores the terminal instead of killing the process with
    /// the terminal still in the alternate screen.
    pub fn start_terminal(&mut self, fps: f64) {
        if self.signals.is_none() {
            let signals = TerminateSignals::outside();
            let tx = self.tx.clone();
            self.signals = Some(tokio::spawn(async move {
                tokio::select! {
                    _ = tx.closed() => {}
                    () = signals.recv() => {
                        let _ = tx.send(Event::Terminate);
                    }
                }
            }));
        }
        let tx = self.tx.clone();
        let period = Duration::from_secs_f64(1.0 / fps.max(1.0));
        let interrupt = TerminateSignals::interrupt();
        self.reader = Some(tokio::spawn(async move {
            let mut reader = EventStream::new();
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut interrupt = std::pin::pin!(interrupt.recv());
            loop {
                let event = tokio::select! {
                    _ = tx.closed() => break,
                    _ = tick.tick() => Event::Tick,
                    () = &mut interrupt => Event::Terminate,
                    read = reader.next() => match read {
                        Some(Ok(event)) => Event::Terminal(event),
                        Some(Err(err)) => {
                            tracing::warn!(error = %err, "terminal read failed");
                            Event::Terminate
                        }
                        None => Event::Terminate,
                    },
                };
                let stop = matches!(event, Event::Terminate);
                if tx.send(event).is_err() || stop {
                    break;
                }
            }
        }));
    }

    /// Stops reading the terminal (and ticking) until [`EventHandler::start_terminal`] is
    /// called again: while an editor owns the terminal, its keys must reach the editor.
    pub async fn stop_terminal(&mut self) {
        if let Some(reader) = self.reader.take() {
            reader.abort();
            // Wait for the reader to be dropped, so crossterm's reading thread is told to stop
            // before the editor starts.
            let _ = tokio::time::timeout(Duration::from_secs(1), reader).await;
        }
    }

    /// A sender for producers.
    #[must_use]
    pub fn sender(&self) -> EventSender {
        EventSender {
            tx: self.tx.clone(),
        }
    }

    /// Waits for the next event.
    pub async fn next(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// The next event if one is waiting.
    pub fn try_next(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }
}

impl Default for EventHandler {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for EventHandler {
    fn drop(&mut self) {
        if let Some(reader) = self.reader.take() {
            reader.abort();
        }
        if let Some(signals) = self.signals.take() {
            signals.abort();
        }
    }
}

/// The signals that end the UI the way `/quit` does. Raw mode turns Ctrl+C into a key, so a
/// SIGINT comes from outside (`kill -INT`), as SIGTERM does; SIGHUP is a closed terminal.
struct TerminateSignals {
    #[cfg(unix)]
    signals: Vec<tokio::signal::unix::Signal>,
    /// Elsewhere only Ctrl+C is known: the interrupt.
    #[cfg(not(unix))]
    ctrl_c: bool,
}

impl TerminateSignals {
    /// SIGTERM and SIGHUP: listened for as long as the UI runs, the editor's time included.
    #[cfg(unix)]
    fn outside() -> Self {
        use tokio::signal::unix::SignalKind;
        Self::register(&[SignalKind::terminate(), SignalKind::hangup()])
    }

    /// SIGINT: listened for only while the UI owns the terminal. While an editor runs in a
    /// terminal in cooked mode, Ctrl+C sends SIGINT to this process too, and it is meant for
    /// the editor.
    #[cfg(unix)]
    fn interrupt() -> Self {
        Self::register(&[tokio::signal::unix::SignalKind::interrupt()])
    }

    #[cfg(unix)]
    fn register(kinds: &[tokio::signal::unix::SignalKind]) -> Self {
        use tokio::signal::unix::signal;
        let signals = kinds
            .iter()
            .copied()
            .filter_map(|kind| match signal(kind) {
                Ok(signal) => Some(signal),
                Err(err) => {
                    tracing::warn!(error = %err, ?kind, "cannot listen for a signal");
                    None
                }
            })
            .collect();
        Self { signals }
    }

    #[cfg(not(unix))]
    fn outside() -> Self {
        Self { ctrl_c: false }
    }

    #[cfg(not(unix))]
    fn interrupt() -> Self {
        Self { ctrl_c: true }
    }

    /// Resolves when any of the signals arrives.
    #[cfg(unix)]
    async fn recv(mut self) {
        if self.signals.is_empty() {
            return std::future::pending().await;
        }
        let waits = self
            .signals
            .iter_mut()
            .map(|signal| Box::pin(signal.recv()));
        let _ = futures::future::select_all(waits).await;
    }

    #[cfg(not(unix))]
    async fn recv(self) {
        if self.ctrl_c {
            let _ = tokio::signal::ctrl_c().await;
        } else {
            std::future::pending::<()>().await;
        }
    }
}
