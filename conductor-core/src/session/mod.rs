//! Saved conversations: one JSON file per conversation, written atomically, user-only.
//!
//! Both frontends keep their conversations here: the chat UI saves as it goes, `conductor ask`
//! after each answer (its conversations are continued with `ask -c`). A [`Session`] records
//! where it started ([`Origin`]), an optional unique name, and for every answer the model and
//! personality that gave it ([`SessionMessage`]).
//!
//! # Layout
//!
//! - this module: the file's shape ([`Session`], [`SessionMessage`]), names, errors;
//! - [`store`]: the directory of files ([`SessionStore`]): atomic saves (temporary file,
//!   fsync, rename, fsync of the directory), `0600` files in a `0700` directory, listing,
//!   finding a session by id, id prefix or name, damaged files set aside, never deleted
//!   unless asked;
//! - [`lock`]: one window (or one `ask -c`) per conversation at a time ([`SessionLock`]).
//!
//! # Format
//!
//! Every file says its [`FORMAT`]. Fields added since format 1 was first written (`name`,
//! `origin`, and per message `model` and `personality`) are optional: files written before
//! them load (with `origin` chat and no per-answer model), and earlier conductors reading a
//! newer file ignore them. A file of a higher format is left alone, never judged damaged.

mod listing;
pub mod lock;
pub mod store;
#[cfg(test)]
mod tests;

use std::io;
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::backend::{Message, Role};

pub use self::listing::{Damaged, Listed, Resumable, SessionSummary, SetAside};
pub use self::lock::{LockError, SessionLock};
pub use self::store::SessionStore;

/// The format version written in every file.
pub const FORMAT: u32 = 1;

/// The longest name a session may have, in characters.
pub const NAME_MAX: usize = 64;

/// Which frontend started a conversation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Origin {
    /// The terminal chat UI (`conductor chat`); files from before origins were recorded.
    #[default]
    Chat,
    /// `conductor ask`.
    Cli,
}

impl Origin {
    /// `chat` or `cli`, as written in the file.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Cli => "cli",
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One message of a saved conversation: the message as sent, and for an answer the model and
/// personality that gave it (`None` for questions, and for answers saved before they were
/// recorded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionMessage {
    /// The message: role, text, and whether an answer was cut short.
    #[serde(flatten)]
    pub message: Message,
    /// The model that wrote this answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The personality that wrote this answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personality: Option<String>,
    /// A question that got no answer at all (the run stopped, or the server failed, before the
    /// first token). It is kept, and sent again with the next question (see
    /// [`Session::history`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unanswered: bool,
}

impl SessionMessage {
    /// An answer, with the model and personality that gave it.
    #[must_use]
    pub fn answer(message: Message, model: &str, personality: &str) -> Self {
        Self {
            message,
            model: Some(model.to_owned()),
            personality: (!personality.is_empty()).then(|| personality.to_owned()),
            unanswered: false,
        }
    }
}

impl From<Message> for SessionMessage {
    fn from(message: Message) -> Self {
        Self {
            message,
            model: None,
            personality: None,
            unanswered: false,
        }
    }
}

impl Deref for SessionMessage {
    type Target = Message;

    fn deref(&self) -> &Message {
        &self.message
    }
}

impl DerefMut for SessionMessage {
    fn deref_mut(&mut self) -> &mut Message {
        &mut self.message
    }
}

impl PartialEq<SessionMessage> for Message {
    fn eq(&self, other: &SessionMessage) -> bool {
        *self == other.message
    }
}

/// One saved conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// File format version ([`FORMAT`]).
    #[serde(default = "format_version")]
    pub format: u32,
    /// The id, also the file name without `.json`: `YYYYMMDD-HHMMSS-xxxx` (UTC).
    pub id: String,
    /// A name given by the user, unique in the store (see [`validate_name`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Which frontend started it.
    #[serde(default)]
    pub origin: Origin,
    /// When it started (RFC 3339, UTC).
    pub created: String,
    /// When it was last saved (RFC 3339, UTC).
    pub updated: String,
    /// The model it last used.
    pub model: String,
    /// The personality it last used (empty when it was sent without one).
    pub personality: String,
    /// Extra system text set with `/system` or `--system`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The conversation: user and assistant messages (an answer cut short is `incomplete`).
    pub messages: Vec<SessionMessage>,
}

fn format_version() -> u32 {
    FORMAT
}

impl Session {
    /// A new, empty chat session with a fresh id.
    #[must_use]
    pub fn new(model: &str, personality: &str) -> Self {
        let now = jiff::Timestamp::now();
        Self {
            format: FORMAT,
            id: new_id(now),
            name: None,
            origin: Origin::Chat,
            created: now.to_string(),
            updated: now.to_string(),
            model: model.to_owned(),
            personality: personality.to_owned(),
            system: None,
            messages: Vec::new(),
        }
    }

    /// The same session started by `origin`.
    #[must_use]
    pub fn with_origin(self, origin: Origin) -> Self {
        Self { origin, ..self }
    }

    /// The same conversation under a new id (created now), without its name (names are
    /// unique): what a window continues when the session is open in another window, so that
    /// neither overwrites the other.
    #[must_use]
    pub fn fork(&self) -> Self {
        let now = jiff::Timestamp::now();
        Self {
            id: new_id(now),
            name: None,
            created: now.to_string(),
            updated: now.to_string(),
            ..self.clone()
        }
    }

    /// A short title: the first user message, on one line, at most `max` characters.
    #[must_use]
    pub fn title(&self, max: usize) -> String {
        let first = self
            .messages
            .iter()
            .find(|m| m.role == Role::User)
            .map_or("(empty)", |m| m.content.as_str());
        shorten(first, max)
    }

    /// The messages as a conversation sends them again (without the recorded models).
    ///
    /// A question that got no answer is sent again, joined (after a blank line) to the question
    /// that follows it: the model sees everything that was asked, and the history still
    /// alternates between questions and answers. So the history may hold fewer messages than
    /// [`Session::messages`].
    #[must_use]
    pub fn history(&self) -> Vec<Message> {
        let mut history: Vec<Message> = Vec::with_capacity(self.messages.len());
        let mut pending_question = false;
        for message in &self.messages {
            if message.role == Role::User
                && pending_question
                && let Some(last) = history.last_mut()
            {
                last.content.push_str("\n\n");
                last.content.push_str(&message.content);
            } else {
                history.push(message.message.clone());
            }
            pending_question = message.role == Role::User && message.unanswered;
        }
        history
    }

    /// The models that answered, each once, in the order they first did; the session's model
    /// when no answer recorded one.
    #[must_use]
    pub fn models(&self) -> Vec<String> {
        let mut models: Vec<String> = Vec::new();
        for model in self.messages.iter().filter_map(|m| m.model.as_ref()) {
            if !models.contains(model) {
                models.push(model.clone());
            }
        }
        if models.is_empty() && !self.model.is_empty() {
            models.push(self.model.clone());
        }
        models
    }

    /// Appends `messages` of a conversation that went on, recording `model` and `personality`
    /// on its answers, and marks the session updated now. A question that no answer follows
    /// (the run stopped before the first token) is marked [`SessionMessage::unanswered`].
    pub fn record(&mut self, messages: &[Message], model: &str, personality: &str) {
        for (i, message) in messages.iter().enumerate() {
            self.messages.push(if message.role == Role::Assistant {
                SessionMessage::answer(message.clone(), model, personality)
            } else {
                let answered = messages
                    .get(i + 1)
                    .is_some_and(|next| next.role == Role::Assistant);
                SessionMessage {
                    unanswered: message.role == Role::User && !answered,
                    ..message.clone().into()
                }
            });
        }
        model.clone_into(&mut self.model);
        personality.clone_into(&mut self.personality);
        self.touch();
    }

    /// Marks the session updated now.
    pub fn touch(&mut self) {
        self.updated = jiff::Timestamp::now().to_string();
    }
}

/// Errors of session storage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// No data directory is known for this platform (no `HOME`).
    #[error("no data directory: set XDG_DATA_HOME or HOME")]
    NoDataDir,
    /// Reading or writing failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A session file is not valid JSON of the expected shape.
    #[error("{}: not a conductor session ({source})", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        #[source]
        source: serde_json::Error,
    },
    /// The id, prefix or name does not name a session.
    #[error("no session '{0}'")]
    NotFound(String),
    /// An id prefix names more than one session.
    #[error("'{query}' names {} sessions: {}", matches.len(), matches.join(", "))]
    Ambiguous {
        /// What was asked for.
        query: String,
        /// The ids it matches.
        matches: Vec<String>,
    },
    /// A name that cannot be used.
    #[error("invalid session name '{name}': {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// Why not.
        reason: &'static str,
    },
    /// Another session has this name.
    #[error("the name '{name}' is taken by session {id}")]
    NameTaken {
        /// The name.
        name: String,
        /// The session that has it.
        id: String,
    },
    /// The session is open in a chat window or an `ask -c` that holds its lock.
    #[error("session {id} is in use by another conductor{}", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    InUse {
        /// The session.
        id: String,
        /// The process holding it, when its lock file says.
        pid: Option<u32>,
    },
    /// The session's lock could not be taken.
    #[error(transparent)]
    Lock(LockError),
}

impl From<LockError> for SessionError {
    fn from(err: LockError) -> Self {
        match err {
            LockError::Held { id, pid } => Self::InUse { id, pid },
            other => Self::Lock(other),
        }
    }
}

/// Checks a session name: not empty, no `/` or control characters, no leading or trailing
/// space, at most [`NAME_MAX`] characters, and nothing that reads as an id or the start of one
/// (only digits and dashes, or `YYYYMMDD-…`): a session is looked up by id, then name, then id
/// prefix, so such a name would hide sessions or be hidden by them.
///
/// # Errors
/// [`SessionError::InvalidName`] saying why.
pub fn validate_name(name: &str) -> Result<(), SessionError> {
    let reason = if name.trim().is_empty() {
        Some("it is empty")
    } else if name.chars().count() > NAME_MAX {
        Some("it is longer than 64 characters")
    } else if name.contains('/') || name.contains('\\') {
        Some("it contains a slash")
    } else if name.chars().any(char::is_control) {
        Some("it contains control characters")
    } else if name.trim() != name {
        Some("it starts or ends with a space")
    } else if looks_like_id(name) {
        Some("it reads as a session id or the start of one; add a letter")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(SessionError::InvalidName {
            name: crate::text::one_line(name).into_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// True for text an id lookup could match, so never a name: only digits and dashes (`2026`,
/// `20261130-17`), or the date part of an id and a dash (`20261130-notes`).
#[must_use]
pub fn looks_like_id(name: &str) -> bool {
    let bytes = name.as_bytes();
    let all_digits_and_dashes = bytes.iter().all(|b| b.is_ascii_digit() || *b == b'-');
    let dated = bytes.len() > 8
        && bytes.iter().take(8).all(u8::is_ascii_digit)
        && bytes.get(8) == Some(&b'-');
    all_digits_and_dashes || dated
}

/// How long before `now` the RFC 3339 time `when` was; `None` when it does not parse, zero
/// when it lies in the future.
#[must_use]
pub fn age(when: &str, now: std::time::SystemTime) -> Option<std::time::Duration> {
    let then = when.parse::<jiff::Timestamp>().ok()?;
    let then = std::time::SystemTime::from(then);
    Some(now.duration_since(then).unwrap_or_default())
}

/// Ids are our own `YYYYMMDD-HHMMSS-xxxx`; anything else could leave the directory.
pub(crate) fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub use crate::text::shorten;

pub(crate) fn new_id(now: jiff::Timestamp) -> String {
    format!(
        "{}-{:04x}",
        now.strftime("%Y%m%d-%H%M%S"),
        fastrand::u16(..)
    )
}
