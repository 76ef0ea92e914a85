//! What the store says about its files: a session's summary for lists, a damaged file, one
//! entry of a scan, a file set aside, what resuming found.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::{Origin, Session};

/// What a session list shows of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSummary {
    /// The id.
    pub id: String,
    /// Its name, if it has one.
    pub name: Option<String>,
    /// Which frontend started it.
    pub origin: Origin,
    /// When it started (RFC 3339, UTC).
    pub created: String,
    /// When it was last saved (RFC 3339, UTC).
    pub updated: String,
    /// The first user message, shortened.
    pub title: String,
    /// How many messages it holds.
    pub messages: usize,
    /// Its personality (the last used).
    pub personality: String,
    /// The models that answered, in the order they first did.
    pub models: Vec<String>,
}

impl SessionSummary {
    pub(super) fn of(session: Session) -> Self {
        Self {
            title: session.title(60),
            messages: session.messages.len(),
            models: session.models(),
            personality: session.personality,
            updated: session.updated,
            created: session.created,
            origin: session.origin,
            name: session.name,
            id: session.id,
        }
    }

    /// `2026-03-25 14:05  12 msgs  yollayah  [name] Why is the sky blue?`, in local time.
    #[must_use]
    pub fn label(&self) -> String {
        let when = self.updated.parse::<jiff::Timestamp>().map_or_else(
            |_| self.updated.clone(),
            |t| {
                t.to_zoned(jiff::tz::TimeZone::system())
                    .strftime("%Y-%m-%d %H:%M")
                    .to_string()
            },
        );
        let name = self
            .name
            .as_ref()
            .map(|n| format!("[{n}] "))
            .unwrap_or_default();
        format!(
            "{when}  {:>3} msgs  {}  {name}{}",
            self.messages, self.personality, self.title
        )
    }

    /// How long ago it was last saved, seen from `now`; `None` when its time does not parse
    /// (zero when it lies in the future).
    #[must_use]
    pub fn age_at(&self, now: SystemTime) -> Option<Duration> {
        super::age(&self.updated, now)
    }
}

/// A session file that cannot be read as a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damaged {
    /// The id its file name gives.
    pub id: String,
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
    /// True when it was written by a later conductor (a higher format): not damaged, only
    /// not ours to read.
    pub newer: bool,
    /// When the file was last modified (RFC 3339, UTC), when known.
    pub modified: Option<String>,
}

/// One file of the store, as [`SessionStore::scan`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listed {
    /// A session that reads.
    Session(SessionSummary),
    /// A file that does not.
    Damaged(Damaged),
}

impl Listed {
    /// The id.
    #[must_use]
    pub fn id(&self) -> &str {
        match self {
            Self::Session(s) => &s.id,
            Self::Damaged(d) => &d.id,
        }
    }

    /// The name, for a session that has one.
    #[must_use]
    pub fn name(&self) -> Option<&str> {
        match self {
            Self::Session(s) => s.name.as_deref(),
            Self::Damaged(_) => None,
        }
    }

    /// When it last changed: the session's save time, or a damaged file's modification time.
    pub(super) fn when(&self) -> &str {
        match self {
            Self::Session(s) => &s.updated,
            Self::Damaged(d) => d.modified.as_deref().unwrap_or(""),
        }
    }
}

/// A damaged session file, moved aside by [`SessionStore::resume_latest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    /// Where it was.
    pub from: PathBuf,
    /// Where it is now; `None` when it could not be moved (it is left in place).
    pub to: Option<PathBuf>,
    /// What is wrong with it (or, with `to` empty, also why it could not be moved).
    pub reason: String,
}

/// What `--resume` found: the newest good session, and the damaged files set aside.
#[derive(Debug, Default)]
pub struct Resumable {
    /// The newest session that could be read, if any.
    pub session: Option<Session>,
    /// Damaged session files, moved aside.
    pub set_aside: Vec<SetAside>,
}
