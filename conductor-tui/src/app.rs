//! The app state and its update function: events in, state changes and [`Action`]s out. No
//! rendering here (see [`crate::ui`]), and no I/O: the runtime in [`crate::run`] carries out
//! the actions (talks to the worker, the poller, the session saver).

use std::cell::Cell;
use std::time::Duration;

use conductor_core::backend::same_model;
use conductor_core::gpu::Diagnosis;
use conductor_core::text::one_line;
use conductor_core::{Error, GpuPolicy, Message, Processor, Role};
use crossterm::event::{
    Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEventKind,
};

use crate::event::{Event, FPS};
use crate::input::{Input, InputHistory};
use crate::markdown::RenderCache;
use crate::residency::ResidencyState;
use crate::session::{Session, SessionSummary, SetAside, shorten};
use crate::worker::WorkerEvent;

/// Lines scrolled by one turn of the mouse wheel.
const WHEEL_LINES: usize = 3;
/// While an answer streams, the partial answer is saved at most this often (in ticks).
const STREAMING_SAVE_TICKS: u64 = 2 * FPS as u64;

/// The commands, for `/help`.
pub const COMMANDS: &[(&str, &str)] = &[
    (
        "/personality [NAME]",
        "switch personality (no name: pick one)",
    ),
    ("/model [NAME]", "switch model (no name: pick a local one)"),
    (
        "/system [TEXT]",
        "extra system text after the personality (none: clear it)",
    ),
    (
        "/clear",
        "start a new conversation (the old one stays saved)",
    ),
    ("/save", "save now and show where"),
    ("/sessions", "list saved conversations and resume one"),
    ("/retry", "send the last question again (also Ctrl+R)"),
    ("/help", "this help"),
    (
        "/quit",
        "leave (also Ctrl+D on an empty input, or Ctrl+C twice)",
    ),
];

/// The keys, for `/help`.
pub const KEYS: &[(&str, &str)] = &[
    ("Enter", "send"),
    ("Shift+Enter, Alt+Enter, Ctrl+J", "new line"),
    (
        "Up / Down",
        "move in the input; on its first/last line, recall earlier inputs",
    ),
    (
        "Esc",
        "stop the answer (the partial answer stays, marked stopped)",
    ),
    ("PageUp / PageDown, wheel", "scroll the conversation"),
    ("Ctrl+Home / Ctrl+End", "top / bottom of the conversation"),
    ("Ctrl+R", "retry the last question"),
    ("Ctrl+C", "stop the answer; clear the input; quit"),
];

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

/// Where a message stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageState {
    /// A question on its way; not yet accepted.
    Pending,
    /// A question accepted into the conversation.
    Sent,
    /// The answer, still arriving.
    Streaming,
    /// A complete answer.
    Complete,
    /// An answer stopped with Esc; what arrived is kept.
    Stopped,
    /// An answer that broke off (the reason); what arrived is kept.
    Interrupted(String),
    /// A question that never reached the conversation (the reason).
    NotSent(String),
}

/// A user or assistant message as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatEntry {
    /// Who wrote it.
    pub role: Role,
    /// Who answered (the personality's name), for assistant messages.
    pub author: String,
    /// The text.
    pub content: String,
    /// The model's thinking, if it thought aloud (shown, not saved).
    pub thinking: String,
    /// Where it stands.
    pub state: MessageState,
}

/// How serious a notice is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeLevel {
    /// For information.
    Info,
    /// Something works, but not as it should (e.g. the model is partly on the CPU).
    Warning,
    /// Something failed.
    Error,
}

/// A message from conductor itself, shown in place in the conversation (never sent, never saved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// How serious.
    pub level: NoticeLevel,
    /// One line: what happened.
    pub title: String,
    /// More lines: the evidence.
    pub body: Vec<String>,
    /// What to do about it.
    pub hint: Option<String>,
}

/// What an entry of the conversation view is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A message of the conversation.
    Message(ChatEntry),
    /// A notice.
    Notice(Notice),
}

/// One entry of the conversation view, with its render cache.
#[derive(Debug, Clone)]
pub struct Entry {
    kind: EntryKind,
    version: u64,
    /// Wrapped lines, per width and version (see [`crate::markdown`]).
    pub cache: RenderCache,
}

impl Entry {
    /// A new entry.
    #[must_use]
    pub fn new(kind: EntryKind) -> Self {
        Self {
            kind,
            version: 0,
            cache: RenderCache::default(),
        }
    }

    /// What it is.
    #[must_use]
    pub fn kind(&self) -> &EntryKind {
        &self.kind
    }

    /// Changes it (and so invalidates its cached lines).
    pub fn kind_mut(&mut self) -> &mut EntryKind {
        self.version += 1;
        &mut self.kind
    }

    /// Bumped on every change.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The message, if this is one.
    #[must_use]
    pub fn message(&self) -> Option<&ChatEntry> {
        match &self.kind {
            EntryKind::Message(m) => Some(m),
            EntryKind::Notice(_) => None,
        }
    }

    fn message_mut(&mut self) -> Option<&mut ChatEntry> {
        match self.kind_mut() {
            EntryKind::Message(m) => Some(m),
            EntryKind::Notice(_) => None,
        }
    }
}

/// Which list a picker chooses from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickerKind {
    /// Personalities.
    Personality,
    /// Local models.
    Model,
    /// Saved sessions.
    Session,
}

impl PickerKind {
    /// The picker's title.
    #[must_use]
    pub fn title(self) -> &'static str {
        match self {
            Self::Personality => "Personality",
            Self::Model => "Model",
            Self::Session => "Resume a session",
        }
    }
}

/// One choice of a picker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickerItem {
    /// What choosing it selects (a name, an id).
    pub value: String,
    /// What is shown.
    pub label: String,
    /// Shown dimmed after the label.
    pub detail: String,
    /// The one in use now.
    pub current: bool,
}

/// A list to choose from, filtered by typing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picker {
    /// What it chooses.
    pub kind: PickerKind,
    /// Every choice.
    pub items: Vec<PickerItem>,
    /// Typed filter (case-insensitive substring of label or detail).
    pub filter: String,
    /// Index into [`Picker::visible`].
    pub selected: usize,
}

impl Picker {
    /// A picker with the current item selected.
    #[must_use]
    pub fn new(kind: PickerKind, items: Vec<PickerItem>) -> Self {
        let selected = items.iter().position(|i| i.current).unwrap_or(0);
        Self {
            kind,
            items,
            filter: String::new(),
            selected,
        }
    }

    /// The items that match the filter.
    #[must_use]
    pub fn visible(&self) -> Vec<&PickerItem> {
        let filter = self.filter.to_lowercase();
        self.items
            .iter()
            .filter(|i| {
                filter.is_empty()
                    || i.label.to_lowercase().contains(&filter)
                    || i.detail.to_lowercase().contains(&filter)
            })
            .collect()
    }

    fn chosen(&self) -> Option<String> {
        self.visible().get(self.selected).map(|i| i.value.clone())
    }

    fn step(&mut self, delta: isize) {
        let n = self.visible().len();
        if n == 0 {
            self.selected = 0;
            return;
        }
        let max = n - 1;
        self.selected = self.selected.saturating_add_signed(delta).min(max);
    }
}

/// Figures of the last answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnswerStats {
    /// Decode speed, as Ollama measured it.
    pub tokens_per_second: Option<f64>,
    /// Time to the first token, as the user waited for it.
    pub ttft: Option<Duration>,
}

/// The size of the conversation view at the last frame (set while rendering, read by
/// scrolling).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct View {
    /// Lines of the whole conversation at the current width.
    pub total: usize,
    /// Lines visible.
    pub height: usize,
    /// The first visible line.
    pub top: usize,
}

impl View {
    /// The top line when showing the end.
    #[must_use]
    pub fn max_top(&self) -> usize {
        self.total.saturating_sub(self.height)
    }
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
    /// The question Ctrl+R sends again.
    pub retry: Option<String>,
    /// A short message for the status bar (cleared by the next key).
    pub status_hint: Option<String>,
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
    ctrl_c_armed: bool,
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
            should_quit: false,
            ticks: 0,
            scroll: None,
            view: Cell::new(View::default()),
            last_warning: None,
            last_save_error: None,
            ctrl_c_armed: false,
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
            Event::Models(Ok(models)) => {
                let items = models
                    .into_iter()
                    .map(|m| PickerItem {
                        current: same_model(&m.name, &self.info.model),
                        detail: format_size(m.size),
                        label: m.name.clone(),
                        value: m.name,
                    })
                    .collect();
                self.open_picker(
                    PickerKind::Model,
                    items,
                    "No models on the server: `ollama pull llama3.2:3b` downloads one.",
                );
            }
            Event::Models(Err(err)) => self.notice(
                NoticeLevel::Error,
                format!("cannot list the models: {err}"),
                Vec::new(),
                None,
            ),
            Event::Personalities(list) => {
                let items = list
                    .into_iter()
                    .map(|(name, description)| PickerItem {
                        current: name == self.info.personality,
                        label: name.clone(),
                        value: name,
                        detail: description,
                    })
                    .collect();
                self.open_picker(PickerKind::Personality, items, "No personalities found.");
            }
            Event::Sessions(Ok(list)) => {
                let items = list
                    .into_iter()
                    .map(|s| session_item(&s, &self.session.id))
                    .collect();
                self.open_picker(PickerKind::Session, items, "No saved sessions yet.");
            }
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
            Event::Terminate => self.quit(),
        }
    }

    /// Continues a saved conversation: shows it and hands it to the worker.
    pub fn resume(&mut self, session: Session) {
        self.entries.clear();
        let author = session.personality.clone();
        for message in &session.messages {
            let state = match (message.role, message.incomplete) {
                (Role::Assistant, true) => MessageState::Stopped,
                (Role::Assistant, false) => MessageState::Complete,
                _ => MessageState::Sent,
            };
            if message.role == Role::User {
                self.history.push(&message.content);
            }
            self.entries.push(Entry::new(EntryKind::Message(ChatEntry {
                role: message.role,
                author: author.clone(),
                content: message.content.clone(),
                thinking: String::new(),
                state,
            })));
        }
        self.actions.push(Action::Restore {
            history: session.messages.clone(),
            personality: session.personality.clone(),
            system: session.system.clone(),
        });
        self.notice(
            NoticeLevel::Info,
            format!(
                "Resumed the conversation of {} ({} messages)",
                local_time(&session.created),
                session.messages.len()
            ),
            Vec::new(),
            None,
        );
        self.system.clone_from(&session.system);
        self.session = Session {
            messages: Vec::new(),
            ..session
        };
        self.scroll = None;
        self.retry = None;
    }

    /// The session is open in another window (`holder`, its pid when known): from now on this
    /// window saves the conversation under a new id, so that both windows keep their turns. The
    /// copy is written with the next save: a window that only reads adds no file.
    pub fn continue_as_copy(&mut self, holder: Option<u32>) {
        let old = self.session.id.clone();
        self.session = self.session.fork();
        let who = holder.map_or_else(
            || "another window".to_owned(),
            |pid| format!("another window (pid {pid})"),
        );
        self.notice(
            NoticeLevel::Warning,
            format!("This conversation is open in {who}: continuing it here as a new conversation"),
            vec![format!(
                "Both are kept: the other window goes on saving {old}, this one saves {}.",
                self.session.id
            )],
            None,
        );
    }

    /// Damaged session files that `--resume` moved aside: said, not hidden.
    pub fn report_set_aside(&mut self, set_aside: &[SetAside]) {
        if set_aside.is_empty() {
            return;
        }
        let mut body = Vec::new();
        for file in set_aside {
            let line = match &file.to {
                Some(to) => format!("{} → {}", file.from.display(), to.display()),
                None => format!("{} (left in place)", file.from.display()),
            };
            body.push(one_line(&line).into_owned());
            body.push(format!("  {}", one_line(&file.reason)));
        }
        let (what, verb) = if set_aside.len() == 1 {
            ("A saved conversation is damaged", "it was moved aside")
        } else {
            ("Saved conversations are damaged", "they were moved aside")
        };
        self.notice(
            NoticeLevel::Warning,
            format!("{what} and cannot be resumed; {verb}, not deleted"),
            body,
            Some("the newest readable conversation is resumed instead, if there is one".into()),
        );
    }

    /// The conversation as the chat holds it: what a saved session contains.
    #[must_use]
    pub fn conversation(&self) -> Vec<Message> {
        self.entries
            .iter()
            .filter_map(Entry::message)
            .filter_map(|m| {
                let incomplete = match &m.state {
                    MessageState::Sent | MessageState::Complete => false,
                    MessageState::Streaming
                    | MessageState::Stopped
                    | MessageState::Interrupted(_) => true,
                    MessageState::Pending | MessageState::NotSent(_) => return None,
                };
                if incomplete && m.content.is_empty() {
                    return None;
                }
                Some(Message {
                    role: m.role,
                    content: m.content.clone(),
                    incomplete,
                })
            })
            .collect()
    }

    /// The session to save now.
    #[must_use]
    pub fn session_snapshot(&self) -> Session {
        Session {
            updated: jiff::Timestamp::now().to_string(),
            model: self.info.model.clone(),
            personality: self.info.personality.clone(),
            system: self.system.clone(),
            messages: self.conversation(),
            ..self.session.clone()
        }
    }

    fn tick(&mut self) {
        self.ticks += 1;
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
        self.dirty = true;
    }

    /// Adds a notice at the end of the conversation.
    pub fn notice(
        &mut self,
        level: NoticeLevel,
        title: String,
        body: Vec<String>,
        hint: Option<String>,
    ) {
        self.push_notice(Notice {
            level,
            title,
            body,
            hint,
        });
    }

    fn push_notice(&mut self, notice: Notice) {
        self.entries.push(Entry::new(EntryKind::Notice(notice)));
        self.dirty = true;
    }

    fn open_picker(&mut self, kind: PickerKind, items: Vec<PickerItem>, empty: &str) {
        // Model names and session titles come from the server and from files: shown on one
        // line, without control characters; the value chosen stays as it was.
        let items: Vec<PickerItem> = items
            .into_iter()
            .map(|item| PickerItem {
                label: one_line(&item.label).into_owned(),
                detail: one_line(&item.detail).into_owned(),
                ..item
            })
            .collect();
        if items.is_empty() {
            self.notice(NoticeLevel::Info, empty.to_owned(), Vec::new(), None);
        } else {
            self.picker = Some(Picker::new(kind, items));
            self.dirty = true;
        }
    }

    // ---- terminal input ----

    fn terminal(&mut self, event: TermEvent) {
        match event {
            TermEvent::Key(key) if key.kind != KeyEventKind::Release => self.key(key),
            TermEvent::Paste(text) => {
                if let Some(picker) = &mut self.picker {
                    picker.filter.push_str(text.trim());
                    picker.selected = 0;
                } else {
                    self.input.insert_str(&text);
                }
                self.dirty = true;
            }
            TermEvent::Mouse(mouse) => match mouse.kind {
                MouseEventKind::ScrollUp => self.scroll_up(WHEEL_LINES),
                MouseEventKind::ScrollDown => self.scroll_down(WHEEL_LINES),
                _ => {}
            },
            TermEvent::Resize(..) => self.dirty = true,
            _ => {}
        }
    }

    fn key(&mut self, key: KeyEvent) {
        self.dirty = true;
        self.status_hint = None;
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let is_ctrl_c = ctrl && key.code == KeyCode::Char('c');
        if !is_ctrl_c {
            self.ctrl_c_armed = false;
        }
        if self.picker.is_some() {
            self.picker_key(key);
            return;
        }
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        let shift = key.modifiers.contains(KeyModifiers::SHIFT);
        match key.code {
            KeyCode::Char('c') if ctrl => self.ctrl_c(),
            KeyCode::Char('d') if ctrl && self.input.is_empty() => self.quit(),
            KeyCode::Char('r') if ctrl => self.retry(),
            KeyCode::Char('j') if ctrl => self.input.insert('\n'),
            KeyCode::Char('w') if ctrl => self.input.delete_word(),
            KeyCode::Char('u') if ctrl => self.input.delete_to_line_start(),
            KeyCode::Char('a') if ctrl => self.input.home(),
            KeyCode::Char('e') if ctrl => self.input.end(),
            KeyCode::Char('l') if ctrl => self.scroll = None,
            KeyCode::Char(c) if !ctrl => self.input.insert(c),
            KeyCode::Enter if alt || shift => self.input.insert('\n'),
            KeyCode::Enter => self.submit(),
            KeyCode::Esc => self.escape(),
            KeyCode::Backspace => self.input.backspace(),
            KeyCode::Delete => self.input.delete(),
            KeyCode::Left => self.input.left(),
            KeyCode::Right => self.input.right(),
            KeyCode::Home if ctrl => self.scroll = Some(0),
            KeyCode::End if ctrl => self.scroll = None,
            KeyCode::Home => self.input.home(),
            KeyCode::End => self.input.end(),
            KeyCode::Up if ctrl || shift => self.scroll_up(1),
            KeyCode::Down if ctrl || shift => self.scroll_down(1),
            KeyCode::Up => {
                if self.input.on_first_line() {
                    if let Some(text) = self.history.older(self.input.text()) {
                        let text = text.to_owned();
                        self.input.set(&text);
                    }
                } else {
                    self.input.up();
                }
            }
            KeyCode::Down => {
                if self.input.on_last_line() && self.history.browsing() {
                    if let Some(text) = self.history.newer() {
                        let text = text.to_owned();
                        self.input.set(&text);
                    }
                } else {
                    self.input.down();
                }
            }
            KeyCode::PageUp => self.scroll_up(self.page()),
            KeyCode::PageDown => self.scroll_down(self.page()),
            KeyCode::Tab => self.complete_command(),
            _ => {}
        }
    }

    fn picker_key(&mut self, key: KeyEvent) {
        let Some(picker) = &mut self.picker else {
            return;
        };
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Esc => self.picker = None,
            KeyCode::Char('c') if ctrl => self.picker = None,
            KeyCode::Up => picker.step(-1),
            KeyCode::Down => picker.step(1),
            KeyCode::PageUp => picker.step(-10),
            KeyCode::PageDown => picker.step(10),
            KeyCode::Home => picker.selected = 0,
            KeyCode::End => picker.step(isize::MAX),
            KeyCode::Backspace => {
                picker.filter.pop();
                picker.selected = 0;
            }
            KeyCode::Char(c) if !ctrl => {
                picker.filter.push(c);
                picker.selected = 0;
            }
            KeyCode::Enter => {
                let kind = picker.kind;
                let chosen = picker.chosen();
                self.picker = None;
                if let Some(value) = chosen {
                    self.choose(kind, value);
                }
            }
            _ => {}
        }
    }

    fn choose(&mut self, kind: PickerKind, value: String) {
        match kind {
            PickerKind::Personality if value == self.info.personality => {
                self.hint(&format!("already {value}"));
            }
            PickerKind::Personality => self.actions.push(Action::SwitchPersonality(value)),
            PickerKind::Model if same_model(&value, &self.info.model) => {
                self.hint(&format!("already {value}"));
            }
            PickerKind::Model => self.actions.push(Action::SetModel(value)),
            PickerKind::Session if value == self.session.id => {
                self.hint("that is this conversation");
            }
            PickerKind::Session if self.busy() => self.hint("stop the answer first (Esc)"),
            PickerKind::Session => self.actions.push(Action::OpenSession(value)),
        }
    }

    fn ctrl_c(&mut self) {
        if self.busy() {
            self.actions.push(Action::Cancel);
        } else if !self.input.is_empty() {
            self.input.take();
        } else if self.ctrl_c_armed {
            self.quit();
        } else {
            self.ctrl_c_armed = true;
            self.hint("press Ctrl+C again to quit");
        }
    }

    fn escape(&mut self) {
        if self.busy() {
            self.actions.push(Action::Cancel);
        } else if self.checking {
            self.checking = false;
            self.actions.push(Action::Cancel);
        } else if self.scroll.is_some() {
            self.scroll = None;
        }
    }

    fn page(&self) -> usize {
        self.view.get().height.saturating_sub(2).max(1)
    }

    /// Scrolls towards the start of the conversation.
    pub fn scroll_up(&mut self, lines: usize) {
        let view = self.view.get();
        let top = self.scroll.unwrap_or(view.max_top()).min(view.max_top());
        self.scroll = Some(top.saturating_sub(lines));
        self.dirty = true;
    }

    /// Scrolls towards the end; reaching it follows new text again.
    pub fn scroll_down(&mut self, lines: usize) {
        if let Some(top) = self.scroll {
            let top = top + lines;
            self.scroll = (top < self.view.get().max_top()).then_some(top);
            self.dirty = true;
        }
    }

    fn complete_command(&mut self) {
        let text = self.input.text();
        if !text.starts_with('/') || text.contains(char::is_whitespace) {
            return;
        }
        let matches: Vec<&str> = COMMANDS
            .iter()
            .filter_map(|(usage, _)| usage.split_whitespace().next())
            .filter(|name| name.starts_with(text))
            .collect();
        if let [one] = matches.as_slice() {
            let completed = format!("{one} ");
            self.input.set(&completed);
        } else if !matches.is_empty() {
            let list = matches.join(" ");
            self.hint(&list);
        }
    }

    fn submit(&mut self) {
        let text = self.input.text().to_owned();
        if text.trim().is_empty() {
            return;
        }
        if let Some(command) = text.strip_prefix('/')
            && !command.starts_with('/')
        {
            self.history.push(&text);
            self.input.take();
            self.command(command.trim());
            return;
        }
        if self.busy() {
            self.hint("still answering: Esc stops it");
            return;
        }
        self.history.push(&text);
        self.input.take();
        // `//text` sends `/text`.
        let text = text.strip_prefix('/').map_or(text.clone(), str::to_owned);
        self.ask(text);
    }

    fn ask(&mut self, text: String) {
        self.entries.push(Entry::new(EntryKind::Message(ChatEntry {
            role: Role::User,
            author: String::new(),
            content: text.clone(),
            thinking: String::new(),
            state: MessageState::Pending,
        })));
        self.entries.push(Entry::new(EntryKind::Message(ChatEntry {
            role: Role::Assistant,
            author: self.info.personality.clone(),
            content: String::new(),
            thinking: String::new(),
            state: MessageState::Streaming,
        })));
        self.phase = Phase::Waiting;
        self.scroll = None;
        self.retry = Some(text.clone());
        self.actions.push(Action::SetIdle(false));
        self.actions.push(Action::Send(text));
        self.dirty = true;
    }

    fn retry(&mut self) {
        if self.busy() {
            self.hint("still answering: Esc stops it");
            return;
        }
        let Some(text) = self.retry.clone() else {
            self.hint("nothing to retry");
            return;
        };
        // A question that never reached the conversation is sent again in place.
        if let Some(pos) = self.entries.iter().rposition(|e| {
            e.message().is_some_and(|m| {
                m.role == Role::User && matches!(m.state, MessageState::NotSent(_))
            })
        }) && self.entries[pos]
            .message()
            .is_some_and(|m| m.content == text)
        {
            self.entries.truncate(pos);
        }
        self.ask(text);
    }

    fn command(&mut self, line: &str) {
        let (name, arg) = line
            .split_once(char::is_whitespace)
            .map_or((line, ""), |(n, a)| (n, a.trim()));
        match name {
            "help" | "h" | "?" => self.help(),
            "quit" | "q" | "exit" => self.quit(),
            "clear" | "new" => {
                if self.busy() {
                    self.hint("stop the answer first (Esc)");
                    return;
                }
                self.save();
                self.entries.clear();
                self.session = Session::new(&self.info.model, &self.info.personality);
                self.retry = None;
                self.scroll = None;
                self.actions.push(Action::Clear);
            }
            "save" => {
                self.unsaved_since = None;
                self.actions.push(Action::Save { announce: true });
            }
            "sessions" | "resume" => self.actions.push(Action::ListSessions),
            "personality" | "p" if arg.is_empty() => self.actions.push(Action::ListPersonalities),
            "personality" | "p" => self.actions.push(Action::SwitchPersonality(arg.to_owned())),
            "model" | "m" if arg.is_empty() => self.actions.push(Action::ListModels),
            "model" | "m" => self.actions.push(Action::SetModel(arg.to_owned())),
            "system" => self
                .actions
                .push(Action::SetSystem((!arg.is_empty()).then(|| arg.to_owned()))),
            "retry" => self.retry(),
            _ => self.notice(
                NoticeLevel::Error,
                format!("unknown command /{name}"),
                Vec::new(),
                Some("/help lists the commands; start a message with // to send a slash".into()),
            ),
        }
    }

    fn help(&mut self) {
        let w = COMMANDS
            .iter()
            .chain(KEYS)
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        let mut body = vec!["Commands:".to_owned()];
        body.extend(COMMANDS.iter().map(|(c, d)| format!("  {c:<w$}  {d}")));
        body.push("Keys:".to_owned());
        body.extend(KEYS.iter().map(|(k, d)| format!("  {k:<w$}  {d}")));
        self.notice(
            NoticeLevel::Info,
            "Help".to_owned(),
            body,
            Some("conversations are saved as they go; /sessions resumes one".into()),
        );
    }

    fn quit(&mut self) {
        if self.busy() {
            self.actions.push(Action::Cancel);
            if let Some(entry) = self.streaming_entry() {
                entry.state = MessageState::Stopped;
            }
            self.phase = Phase::Idle;
        }
        self.save();
        self.should_quit = true;
    }

    // ---- the worker ----

    fn streaming_entry(&mut self) -> Option<&mut ChatEntry> {
        let entry = self.entries.iter_mut().rev().find(|e| {
            e.message()
                .is_some_and(|m| m.role == Role::Assistant && m.state == MessageState::Streaming)
        })?;
        entry.message_mut()
    }

    fn pending_question(&mut self) -> Option<&mut ChatEntry> {
        let entry = self.entries.iter_mut().rev().find(|e| {
            e.message()
                .is_some_and(|m| m.role == Role::User && m.state == MessageState::Pending)
        })?;
        entry.message_mut()
    }

    /// Ends the streaming answer: `state` when it has text, removed when it has none.
    fn end_answer(&mut self, state: MessageState) {
        if let Some(pos) = self.entries.iter().rposition(|e| {
            e.message()
                .is_some_and(|m| m.role == Role::Assistant && m.state == MessageState::Streaming)
        }) {
            let empty = self.entries[pos]
                .message()
                .is_some_and(|m| m.content.is_empty() && m.thinking.is_empty());
            if empty && state != MessageState::Complete {
                self.entries.remove(pos);
            } else if let Some(m) = self.entries[pos].message_mut() {
                m.state = state;
            }
        }
        self.phase = Phase::Idle;
        self.actions.push(Action::SetIdle(true));
    }

    fn worker(&mut self, event: WorkerEvent) {
        self.dirty = true;
        match event {
            WorkerEvent::Accepted => {
                if let Some(q) = self.pending_question() {
                    q.state = MessageState::Sent;
                }
                self.save();
            }
            WorkerEvent::Content(text) => {
                self.phase = Phase::Streaming;
                if let Some(answer) = self.streaming_entry() {
                    answer.content.push_str(&text);
                }
                self.unsaved_since.get_or_insert(self.ticks);
            }
            WorkerEvent::Thinking(text) => {
                self.phase = Phase::Streaming;
                if let Some(answer) = self.streaming_entry() {
                    answer.thinking.push_str(&text);
                }
            }
            WorkerEvent::Finished {
                completion,
                ttft,
                elapsed: _,
            } => {
                self.stats = Some(AnswerStats {
                    tokens_per_second: completion.stats.tokens_per_second(),
                    ttft,
                });
                self.end_answer(MessageState::Complete);
                self.retry = None;
                self.save();
                self.actions.push(Action::RefreshResidency);
            }
            WorkerEvent::Stopped => {
                self.end_answer(MessageState::Stopped);
                self.save();
            }
            WorkerEvent::Failed(err) => {
                let reason = err.root().to_string();
                self.end_answer(MessageState::Interrupted(reason));
                let mut notice = error_notice(&err, "The answer broke off");
                notice
                    .body
                    .push("What arrived is kept. Ctrl+R asks again.".to_owned());
                self.push_notice(notice);
                self.save();
                self.actions.push(Action::RefreshResidency);
            }
            WorkerEvent::Rejected(err) => {
                self.end_answer(MessageState::Stopped);
                let reason = err.root().to_string();
                if let Some(q) = self.pending_question() {
                    q.state = MessageState::NotSent(reason);
                }
                self.rejected(&err, false);
            }
            WorkerEvent::Withdrawn => {
                self.end_answer(MessageState::Stopped);
                if let Some(q) = self.pending_question() {
                    q.state = MessageState::NotSent("cancelled".to_owned());
                }
            }
            WorkerEvent::Warning(diagnosis) => self.warn(&diagnosis),
            WorkerEvent::Fixed(report) => {
                self.notice(
                    NoticeLevel::Info,
                    fix_title(&report, &report.model),
                    report.changes.clone(),
                    Some(fix_advice(&report)),
                );
                self.actions.push(Action::RefreshResidency);
            }
            WorkerEvent::Ready {
                model,
                warning,
                fixed,
            } => {
                self.checking = false;
                if let Some(report) = fixed {
                    self.notice(
                        NoticeLevel::Info,
                        fix_title(&report, &model),
                        report.changes.clone(),
                        Some(fix_advice(&report)),
                    );
                }
                if let Some(diagnosis) = warning {
                    self.warn(&diagnosis);
                }
                self.actions.push(Action::RefreshResidency);
            }
            WorkerEvent::NotReady { model: _, error } => {
                self.checking = false;
                self.rejected(&error, true);
                self.actions.push(Action::RefreshResidency);
            }
            WorkerEvent::PersonalityChanged(name) => {
                let note = if self.entries.is_empty() {
                    String::new()
                } else {
                    " from the next answer on; the conversation is kept".to_owned()
                };
                self.notice(
                    NoticeLevel::Info,
                    format!("Personality: {name}{note}"),
                    Vec::new(),
                    None,
                );
                self.info.personality = name;
                self.save();
            }
            WorkerEvent::ModelChanged(model) => {
                self.notice(
                    NoticeLevel::Info,
                    format!("Model: {model} (checking where it runs…)"),
                    Vec::new(),
                    None,
                );
                self.info.model = model;
                self.badge = Badge::Unknown;
                self.checking = true;
                self.last_warning = None;
                self.save();
            }
            WorkerEvent::SystemChanged(system) => {
                let title = match &system {
                    Some(text) => format!("System text set: {}", shorten(text, 60)),
                    None => "System text cleared".to_owned(),
                };
                self.notice(NoticeLevel::Info, title, Vec::new(), None);
                self.system = system;
                self.save();
            }
            WorkerEvent::Cleared | WorkerEvent::Restored { .. } => {}
            WorkerEvent::CommandFailed(err) => {
                self.push_notice(error_notice(&err, "Not changed"));
            }
        }
    }

    /// A request (or, `checking`, the start-up check) failed before any answer.
    fn rejected(&mut self, err: &Error, checking: bool) {
        match err.root() {
            Error::NotResident(diagnosis) => {
                if let Some(processor) = diagnosis.processor() {
                    self.badge = Badge::Loaded(processor);
                }
                let title = if checking {
                    format!(
                        "{} is not fully on the GPU: questions will be refused until it is (GPU \
                         policy: {})",
                        diagnosis.model, self.info.policy
                    )
                } else {
                    format!(
                        "Not answering: {} is not fully on the GPU (GPU policy: {})",
                        diagnosis.model, self.info.policy
                    )
                };
                self.push_notice(diagnosis_notice(diagnosis, NoticeLevel::Error, &title));
            }
            // Known by its variant, not its wording: Ollama words a missing model several ways.
            Error::ModelNotFound { model } => {
                let model = one_line(model);
                let title = if checking {
                    format!("Model {model} is not on the server: questions will fail until it is")
                } else {
                    format!("Not sent: model {model} is not on the server")
                };
                let mut body = Vec::new();
                if self.retry.is_some() {
                    body.push(
                        "Your question is kept: Ctrl+R sends it again once the model is there."
                            .into(),
                    );
                }
                self.push_notice(Notice {
                    level: NoticeLevel::Error,
                    title,
                    body,
                    hint: Some(format!(
                        "download it with `ollama pull {model}`, or pick a local model with /model"
                    )),
                });
            }
            Error::Unreachable { .. } => {
                self.badge = Badge::Unreachable;
                let mut notice = error_notice(err, "Ollama is down");
                if self.retry.is_some() {
                    notice
                        .body
                        .push("Your question is kept: Ctrl+R sends it again.".into());
                }
                self.push_notice(notice);
            }
            _ => {
                let mut notice = error_notice(err, "Not sent");
                if self.retry.is_some() {
                    notice.body.push("Ctrl+R sends it again.".into());
                }
                self.push_notice(notice);
            }
        }
    }

    fn warn(&mut self, diagnosis: &Diagnosis) {
        if let Some(processor) = diagnosis.processor() {
            self.badge = Badge::Loaded(processor);
        }
        let summary = diagnosis.summary();
        if self.last_warning.as_ref() == Some(&summary) {
            return;
        }
        self.last_warning = Some(summary);
        let notice = diagnosis_notice(
            diagnosis,
            NoticeLevel::Warning,
            &format!(
                "Warning: {} is not fully on the GPU; answering anyway (GPU policy: warn)",
                diagnosis.model
            ),
        );
        // Above the answer it concerns, when one is on its way.
        let at = self
            .entries
            .iter()
            .rposition(|e| {
                e.message().is_some_and(|m| {
                    m.role == Role::Assistant && m.state == MessageState::Streaming
                })
            })
            .unwrap_or(self.entries.len());
        self.entries
            .insert(at, Entry::new(EntryKind::Notice(notice)));
    }
}

/// A notice for an error: `title: error`, with the error's hint.
fn error_notice(err: &Error, title: &str) -> Notice {
    Notice {
        level: NoticeLevel::Error,
        title: format!("{title}: {}", err.root()),
        body: Vec::new(),
        hint: err.hint(),
    }
}

/// A notice for a residency diagnosis: what is wrong, the evidence, the fix.
#[must_use]
pub fn diagnosis_notice(diagnosis: &Diagnosis, level: NoticeLevel, title: &str) -> Notice {
    let mut body = vec![diagnosis.summary()];
    body.extend(diagnosis.share_line());
    body.extend(diagnosis.notes.iter().cloned());
    Notice {
        level,
        title: title.to_owned(),
        body,
        hint: Some(format!("fix: {}", diagnosis.fix())),
    }
}

fn session_item(summary: &SessionSummary, current: &str) -> PickerItem {
    PickerItem {
        value: summary.id.clone(),
        label: summary.label(),
        detail: String::new(),
        current: summary.id == current,
    }
}

/// An RFC 3339 time as local `YYYY-MM-DD HH:MM` (as given when it does not parse).
fn local_time(rfc3339: &str) -> String {
    rfc3339.parse::<jiff::Timestamp>().map_or_else(
        |_| rfc3339.to_owned(),
        |t| {
            t.to_zoned(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%d %H:%M")
                .to_string()
        },
    )
}

/// `2.0 GB`.
fn format_size(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)] // sizes far below 2^52
    let gb = bytes as f64 / 1e9;
    format!("{gb:.1} GB")
}

/// The notice title for a GPU fix: made now, or remembered from an earlier run.
fn fix_title(report: &conductor_core::gpu::FixReport, model: &str) -> String {
    if report.remembered {
        format!("Using the GPU fix remembered for {model}")
    } else {
        format!("GPU fix applied to {model}")
    }
}

/// Where the fix is kept, and how to make it part of the configuration.
fn fix_advice(report: &conductor_core::gpu::FixReport) -> String {
    let mut lines = Vec::new();
    if let Some(n) = report.options.num_ctx {
        lines.push(format!("num_ctx = {n}"));
    }
    if let Some(n) = report.options.num_gpu {
        lines.push(format!("num_gpu = {n}"));
    }
    let kept = if report.saved_in.is_some() {
        "remembered for later runs; "
    } else {
        ""
    };
    format!(
        "{kept}to make it permanent put {} under [options] in conductor.toml",
        lines.join(", ")
    )
}
