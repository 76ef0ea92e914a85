//! The app state and its update function: events in, state changes and [`Action`]s out. No
//! rendering here (see [`crate::ui`]), and no I/O: the runtime in [`crate::run`] carries out
//! the actions (talks to the worker, the poller, the session saver).
//!
//! The state and its event dispatch live here; what it does with each kind of event lives
//! beside it: key handling and scrolling in `keys`, slash commands and asking in `commands`,
//! the pickers in `pickers`, reactions to the worker in `worker_events`, notices in `notices`,
//! saving and resuming the conversation in `sessions`, the entries of the conversation view in
//! `entries`; `/pull` in `pull`, `/policy` and the last residency verdict in `policy`, the
//! Ctrl+R history search in `search`, `/copy` and `/edit` in `tools`.

mod commands;
mod entries;
mod keys;
mod notices;
mod pickers;
mod policy;
mod pull;
mod search;
mod sessions;
mod tools;
mod worker_events;

use std::cell::Cell;
use std::time::Duration;

use conductor_core::backend::same_model;
use conductor_core::{GpuPolicy, Message, Processor};

pub use self::commands::{COMMANDS, KEYS};
pub use self::entries::{ChatEntry, Entry, EntryKind, MessageState};
pub use self::keys::View;
pub use self::notices::{Notice, NoticeLevel, diagnosis_notice};
pub use self::pickers::{Picker, PickerItem, PickerKind};
pub use self::policy::{Verdict, VerdictKind};
pub use self::pull::PullState;
pub use self::search::{HistorySearch, SEARCHED_BYTES, fold, match_span, searched_part};
use crate::event::{Event, FPS};
use crate::input::{Input, InputHistory};
use crate::residency::ResidencyState;
use crate::session::Session;

/// While an answer streams, the partial answer is saved at most this often (in ticks).
const STREAMING_SAVE_TICKS: u64 = 2 * FPS as u64;

/// A status-bar hint disappears after this many ticks (3 s) if no key clears it first.
const HINT_TICKS: u64 = 3 * FPS as u64;

/// What the status bar says about the running model and the chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppInfo {
    /// The Ollama address, as shown.
    pub host: String,
    /// The model.
    pub model: String,
    /// The personality.
    pub personality: String,
    /// The GPU policy.
    pub policy: GpuPolicy,
    /// Which kind of server answers: errors and hints name it (Ollama, or "the server").
    pub backend: conductor_core::BackendKind,
}

/// The GPU badge of the status bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Badge {
    /// Not known yet.
    Unknown,
    /// The model is not loaded (it loads with the next question).
    NotLoaded,
    /// Loaded; where, as `ollama ps` prints it.
    Loaded(Processor),
    /// Ollama cannot be reached.
    Unreachable,
}

impl Badge {
    /// The badge's text: `100% GPU`, `48%/52% CPU/GPU`, `100% CPU`, …
    #[must_use]
    pub fn label(&self) -> String {
        match self {
            Self::Unknown => "GPU ?".to_owned(),
            Self::NotLoaded => "not loaded".to_owned(),
            Self::Loaded(processor) => processor.to_string(),
            Self::Unreachable => "Ollama down".to_owned(),
        }
    }
}

/// What the chat is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Ready for a question.
    Idle,
    /// A question was sent; no answer yet (the model may be loading).
    Waiting,
    /// The answer is streaming in.
    Streaming,
}

/// Figures of the last answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnswerStats {
    /// Decode speed, as Ollama measured it.
    pub tokens_per_second: Option<f64>,
    /// Time to the first token, as the user waited for it.
    pub ttft: Option<Duration>,
}
/// Something the runtime must do for the app.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Action {
    /// Ask this.
    Send(String),
    /// Stop the answer (or check) in progress.
    Cancel,
    /// Switch personality.
    SwitchPersonality(String),
    /// Switch model (and check it).
    SetModel(String),
    /// Set or clear the extra system text.
    SetSystem(Option<String>),
    /// Forget the conversation (a new session starts).
    Clear,
    /// Save the session now; `announce` shows where.
    Save {
        /// Tell the user where it went.
        announce: bool,
    },
    /// List the personalities (answered by [`Event::Personalities`]).
    ListPersonalities,
    /// List the local models (answered by [`Event::Models`]).
    ListModels,
    /// List the saved sessions (answered by [`Event::Sessions`]).
    ListSessions,
    /// Read a saved session (answered by [`Event::SessionLoaded`]).
    OpenSession(String),
    /// Check that this name is free for the session (answered by [`Event::Renamed`]).
    Rename {
        /// The session.
        id: String,
        /// Its new name.
        name: String,
    },
    /// Give the worker a resumed conversation.
    Restore {
        /// Its messages.
        history: Vec<Message>,
        /// Its personality.
        personality: String,
        /// Its extra system text.
        system: Option<String>,
    },
    /// Read residency now.
    RefreshResidency,
    /// Poll residency (idle) or not (an answer is streaming).
    SetIdle(bool),
    /// Ask the server whether it has this model (answered by [`Event::ModelLookup`]); `/model
    /// NAME` switches only to a model that is there.
    CheckModel(String),
    /// Download a model through the server (progress arrives as [`Event::Pull`]).
    Pull(String),
    /// Stop the download in progress.
    CancelPull,
    /// Put `text` on the terminal's clipboard (answered by [`Event::Copied`]).
    Copy {
        /// The text.
        text: String,
        /// What it is, for the confirmation.
        what: String,
    },
    /// Hand the terminal to the user's editor with this text (answered by [`Event::Edited`]).
    Edit(String),
    /// Change the GPU policy of this chat (and check the model under it).
    SetPolicy(GpuPolicy),
}

/// The whole state of the chat UI.
#[derive(Debug)]
pub struct App {
    /// Host, model, personality, policy.
    pub info: AppInfo,
    /// Extra system text (`/system`).
    pub system: Option<String>,
    /// The conversation view.
    pub entries: Vec<Entry>,
    /// The input box.
    pub input: Input,
    /// Earlier inputs.
    pub history: InputHistory,
    /// The GPU badge.
    pub badge: Badge,
    /// Figures of the last answer.
    pub stats: Option<AnswerStats>,
    /// What the chat is doing.
    pub phase: Phase,
    /// True while the start-up (or model-switch) check runs.
    pub checking: bool,
    /// The open picker.
    pub picker: Option<Picker>,
    /// The session this conversation is saved as: id and creation time.
    pub session: Session,
    /// The question Alt+R (`/retry`) sends again.
    pub retry: Option<String>,
    /// A short message for the status bar (cleared by the next key, when the answer ends, or
    /// after a few seconds).
    pub status_hint: Option<String>,
    /// The outcome of the last residency check, for `/policy`.
    pub verdict: Option<Verdict>,
    /// The `/pull` in progress.
    pub pull: Option<PullState>,
    /// The open Ctrl+R history search.
    pub search: Option<HistorySearch>,
    /// The user's messages of earlier conversations, oldest first (Ctrl+R searches them after
    /// this conversation's inputs).
    pub past_inputs: Vec<String>,
    /// `past_inputs` folded for the search (see `search`), made once when they arrive.
    past_folded: Vec<String>,
    /// Set when the app should end.
    pub should_quit: bool,
    /// Ticks seen.
    pub ticks: u64,
    /// The pinned first visible line; `None` follows the end of the conversation.
    pub scroll: Option<usize>,
    /// The view at the last frame.
    pub view: Cell<View>,
    last_warning: Option<String>,
    last_save_error: Option<String>,
    /// The tick at which `status_hint` goes.
    hint_until: u64,
    /// The notice that waits for the outcome of a check (after `/model`, `/policy`).
    check_notice: Option<policy::CheckNotice>,
    ctrl_c_armed: bool,
    /// Ctrl+X was pressed: Ctrl+E next opens the editor (as in bash).
    ctrl_x_armed: bool,
    dirty: bool,
    unsaved_since: Option<u64>,
    actions: Vec<Action>,
}

impl App {
    /// A fresh chat.
    #[must_use]
    pub fn new(info: AppInfo) -> Self {
        let session = Session::new(&info.model, &info.personality);
        Self {
            info,
            system: None,
            entries: Vec::new(),
            input: Input::default(),
            history: InputHistory::default(),
            badge: Badge::Unknown,
            stats: None,
            phase: Phase::Idle,
            checking: false,
            picker: None,
            session,
            retry: None,
            status_hint: None,
            verdict: None,
            pull: None,
            search: None,
            past_inputs: Vec::new(),
            past_folded: Vec::new(),
            should_quit: false,
            ticks: 0,
            scroll: None,
            view: Cell::new(View::default()),
            last_warning: None,
            last_save_error: None,
            hint_until: 0,
            check_notice: None,
            ctrl_c_armed: false,
            ctrl_x_armed: false,
            dirty: true,
            unsaved_since: None,
            actions: Vec::new(),
        }
    }

    /// The actions produced since the last call.
    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// True when something changed since the last frame; clears the flag.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// True while a question is out.
    #[must_use]
    pub fn busy(&self) -> bool {
        self.phase != Phase::Idle
    }

    /// Reacts to one event.
    pub fn update(&mut self, event: Event) {
        match event {
            Event::Tick => self.tick(),
            Event::Terminal(event) => self.terminal(event),
            Event::Worker(event) => self.worker(event),
            Event::Residency(update) => {
                if same_model(&update.model, &self.info.model) {
                    let badge = match update.state {
                        ResidencyState::Loaded(running) => Badge::Loaded(running.processor()),
                        ResidencyState::NotLoaded => Badge::NotLoaded,
                        ResidencyState::Unreachable(_) => Badge::Unreachable,
                    };
                    if badge != self.badge {
                        self.badge = badge;
                        self.dirty = true;
                    }
                }
            }
            Event::Models(Ok(models)) => self.models_listed(models),
            Event::Models(Err(err)) => self.notice(
                NoticeLevel::Error,
                format!("cannot list the models: {err}"),
                Vec::new(),
                None,
            ),
            Event::Personalities(list) => self.personalities_listed(list),
            Event::Sessions(Ok(list)) => self.sessions_listed(list),
            Event::Sessions(Err(err)) => self.notice(
                NoticeLevel::Error,
                format!("cannot list the sessions: {err}"),
                Vec::new(),
                None,
            ),
            Event::SessionLoaded(Ok(session)) => {
                if self.busy() {
                    self.hint("stop the answer first (Esc)");
                } else {
                    self.resume(session);
                }
            }
            Event::SessionLoaded(Err(err)) => self.notice(
                NoticeLevel::Error,
                format!("cannot open the session: {err}"),
                Vec::new(),
                None,
            ),
            Event::Renamed { id, result } => self.renamed(&id, result),
            Event::NameRefused { id, name, reason } => self.name_refused(&id, &name, &reason),
            Event::Saved(Ok(path)) => {
                self.last_save_error = None;
                self.notice(
                    NoticeLevel::Info,
                    format!("Saved to {}", path.display()),
                    Vec::new(),
                    None,
                );
            }
            Event::Saved(Err(err)) => {
                if self.last_save_error.as_ref() != Some(&err) {
                    self.notice(
                        NoticeLevel::Warning,
                        "The conversation could not be saved".to_owned(),
                        vec![err.clone()],
                        Some("check the permissions and free space of the data directory".into()),
                    );
                    self.last_save_error = Some(err);
                }
            }
            Event::ModelLookup { model, found } => self.model_looked_up(model, found),
            Event::Pull { model, update } => self.pull_update(&model, update),
            Event::Copied {
                what,
                chars,
                tmux,
                result,
            } => self.copied(&what, chars, tmux, result),
            Event::Edited(result) => self.edited(result),
            Event::PastInputs(inputs) => self.set_past_inputs(inputs),
            Event::Terminate => self.quit(),
        }
    }

    fn tick(&mut self) {
        self.ticks += 1;
        if self.status_hint.is_some() && self.ticks >= self.hint_until {
            self.status_hint = None;
            self.dirty = true;
        }
        if self.busy() || self.checking {
            // The spinner moves.
            self.dirty = true;
        }
        if self.phase == Phase::Streaming
            && self
                .unsaved_since
                .is_some_and(|since| self.ticks - since >= STREAMING_SAVE_TICKS)
        {
            self.save();
        }
    }

    fn save(&mut self) {
        self.unsaved_since = None;
        self.actions.push(Action::Save { announce: false });
    }

    fn hint(&mut self, text: &str) {
        self.status_hint = Some(text.to_owned());
        self.hint_until = self.ticks + HINT_TICKS;
        self.dirty = true;
    }
}
