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

use conductor_core::backend::LocalModel;

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
    /// A session was saved there (when asked to tell), or could not be saved.
    Saved(Result<PathBuf, String>),
    /// The process was asked to stop (SIGTERM, SIGHUP): save and leave.
    Terminate,
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
        }
    }

    /// Starts reading the terminal and ticking at `fps`; also turns SIGINT, SIGTERM and SIGHUP
    /// into [`Event::Terminate`]. Needs a tokio runtime.
    ///
    /// The signal handlers are in place when this returns (not when the task first runs): from
    /// then on a signal saves and restores the terminal instead of killing the process with
    /// the terminal still in the alternate screen.
    pub fn start_terminal(&mut self, fps: f64) {
        let tx = self.tx.clone();
        let period = Duration::from_secs_f64(1.0 / fps.max(1.0));
        let signals = TerminateSignals::register();
        self.reader = Some(tokio::spawn(async move {
            let mut reader = EventStream::new();
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut terminate = std::pin::pin!(signals.recv());
            loop {
                let event = tokio::select! {
                    _ = tx.closed() => break,
                    _ = tick.tick() => Event::Tick,
                    () = &mut terminate => Event::Terminate,
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
    }
}

/// The signals that end the UI the way `/quit` does. Raw mode turns Ctrl+C into a key, so a
/// SIGINT comes from outside (`kill -INT`), as SIGTERM does; SIGHUP is a closed terminal.
struct TerminateSignals {
    #[cfg(unix)]
    signals: Vec<tokio::signal::unix::Signal>,
}

impl TerminateSignals {
    #[cfg(unix)]
    fn register() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        let signals = [
            SignalKind::interrupt(),
            SignalKind::terminate(),
            SignalKind::hangup(),
        ]
        .into_iter()
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
    fn register() -> Self {
        Self {}
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
        let _ = tokio::signal::ctrl_c().await;
    }
}
