//! Conversations saved as they go, so a crash or a killed terminal loses at most the tokens in
//! flight.
//!
//! One JSON file per conversation in `<data dir>/conductor/sessions/` (`~/.local/share/…` on
//! Linux, honouring `XDG_DATA_HOME`). Every save writes a temporary file in the same directory,
//! fsyncs it, renames it over the old one and fsyncs the directory: a reader sees the old file
//! or the new one, never half of one. Files are created `0600` and the directory `0700`: a
//! conversation can hold anything the user typed.
//!
//! A session file that no longer parses is never deleted: [`SessionStore::resume_latest`] moves
//! it aside to `<id>.damaged-<UTC time>.json` and says so, then resumes the newest good one.
//! While a window has a session open it holds its lock ([`crate::lock`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use conductor_core::{Message, Role};
use serde::{Deserialize, Serialize};

use crate::event::{Event, EventSender};
use crate::lock::{LockError, SessionLock};

/// The format version written in every file.
pub const FORMAT: u32 = 1;

/// One saved conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// File format version ([`FORMAT`]).
    #[serde(default = "format_version")]
    pub format: u32,
    /// The id, also the file name without `.json`: `YYYYMMDD-HHMMSS-xxxx` (UTC).
    pub id: String,
    /// When it started (RFC 3339, UTC).
    pub created: String,
    /// When it was last saved (RFC 3339, UTC).
    pub updated: String,
    /// The model it last used.
    pub model: String,
    /// The personality it last used.
    pub personality: String,
    /// Extra system text set with `/system`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The conversation: user and assistant messages (an answer cut short is `incomplete`).
    pub messages: Vec<Message>,
}

fn format_version() -> u32 {
    FORMAT
}

impl Session {
    /// A new, empty session with a fresh id.
    #[must_use]
    pub fn new(model: &str, personality: &str) -> Self {
        let now = jiff::Timestamp::now();
        Self {
            format: FORMAT,
            id: new_id(now),
            created: now.to_string(),
            updated: now.to_string(),
            model: model.to_owned(),
            personality: personality.to_owned(),
            system: None,
            messages: Vec::new(),
        }
    }

    /// The same conversation under a new id (created now): what a window continues when the
    /// session is open in another window, so that neither overwrites the other.
    #[must_use]
    pub fn fork(&self) -> Self {
        let now = jiff::Timestamp::now();
        Self {
            id: new_id(now),
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
}

/// What the session list shows of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSummary {
    /// The id.
    pub id: String,
    /// When it was last saved (RFC 3339, UTC).
    pub updated: String,
    /// The first user message, shortened.
    pub title: String,
    /// How many messages it holds.
    pub messages: usize,
    /// Its personality.
    pub personality: String,
}

impl SessionSummary {
    /// `2026-03-25 14:05  12 msgs  yollayah  Why is the sky blue?`, in local time.
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
        format!(
            "{when}  {:>3} msgs  {}  {}",
            self.messages, self.personality, self.title
        )
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
    /// The id does not name a session.
    #[error("no session '{0}'")]
    NotFound(String),
}

/// The directory of session files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStore {
    dir: PathBuf,
}

impl SessionStore {
    /// A store in `dir` (created on the first save).
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The store in the platform data directory: `<data dir>/conductor/sessions`.
    ///
    /// # Errors
    /// [`SessionError::NoDataDir`] when the platform has none.
    pub fn default_location() -> Result<Self, SessionError> {
        dirs::data_dir()
            .map(|d| Self::new(d.join("conductor").join("sessions")))
            .ok_or(SessionError::NoDataDir)
    }

    /// The directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of session `id`.
    #[must_use]
    pub fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Saves `session` atomically (temp file, fsync, rename, fsync of the directory), with
    /// user-only permissions. Returns the file.
    ///
    /// # Errors
    /// [`SessionError::Io`] naming the file or directory that failed.
    pub fn save(&self, session: &Session) -> Result<PathBuf, SessionError> {
        if !valid_id(&session.id) {
            return Err(SessionError::NotFound(session.id.clone()));
        }
        self.ensure_dir()?;
        let path = self.path(&session.id);
        let tmp = self.dir.join(format!(
            ".{}.json.{:08x}.tmp",
            session.id,
            fastrand::u32(..)
        ));
        let io_err = |path: &Path| {
            let path = path.to_owned();
            move |source| SessionError::Io { path, source }
        };
        let result = (|| {
            let mut file = create_private(&tmp)?;
            let mut json = serde_json::to_vec_pretty(session).map_err(io::Error::other)?;
            json.push(b'\n');
            file.write_all(&json)?;
            file.sync_all()?;
            drop(file);
            fs::rename(&tmp, &path)
        })();
        if let Err(source) = result {
            let _ = fs::remove_file(&tmp);
            return Err(io_err(&path)(source));
        }
        // The rename is durable once the directory is synced (not possible on every platform).
        if let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(path)
    }

    /// Loads session `id`.
    ///
    /// # Errors
    /// [`SessionError::NotFound`], [`SessionError::Io`] or [`SessionError::Parse`].
    pub fn load(&self, id: &str) -> Result<Session, SessionError> {
        if !valid_id(id) {
            return Err(SessionError::NotFound(id.to_owned()));
        }
        let path = self.path(id);
        let text = match fs::read(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Err(SessionError::NotFound(id.to_owned()));
            }
            Err(source) => return Err(SessionError::Io { path, source }),
        };
        serde_json::from_slice(&text).map_err(|source| SessionError::Parse { path, source })
    }

    /// The lock file of session `id`.
    #[must_use]
    pub fn lock_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.lock"))
    }

    /// Takes the lock of session `id` for this process (see [`crate::lock`]), creating the
    /// directory if needed.
    ///
    /// # Errors
    /// [`LockError::Held`] when another window has it open; [`LockError::Io`] otherwise.
    pub fn lock(&self, id: &str) -> Result<SessionLock, LockError> {
        let path = self.lock_path(id);
        if !valid_id(id) {
            return Err(LockError::Io {
                path,
                source: io::Error::new(io::ErrorKind::InvalidInput, "not a session id"),
            });
        }
        create_private_dir(&self.dir).map_err(|source| LockError::Io {
            path: self.dir.clone(),
            source,
        })?;
        SessionLock::acquire(id, path)
    }

    /// The newest session to resume. Session files that no longer parse are moved aside
    /// (renamed to `<id>.damaged-<UTC time>.json`, never deleted) and reported, so that a
    /// damaged newest file does not silently resume an older conversation. Files written by a
    /// newer conductor (a higher `format`) are left alone.
    ///
    /// # Errors
    /// [`SessionError::Io`] when the directory exists but cannot be read.
    pub fn resume_latest(&self) -> Result<Resumable, SessionError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Resumable::default()),
            Err(source) => {
                return Err(SessionError::Io {
                    path: self.dir.clone(),
                    source,
                });
            }
        };
        let mut found = Resumable::default();
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if !valid_id(id) {
                continue;
            }
            let path = self.path(id);
            let Ok(bytes) = fs::read(&path) else {
                // Unreadable (permissions, a race with a rename): not known to be damaged.
                continue;
            };
            match serde_json::from_slice::<Session>(&bytes) {
                Ok(session) => {
                    let newer = found.session.as_ref().is_none_or(|best| {
                        (&session.updated, &session.id) > (&best.updated, &best.id)
                    });
                    if newer {
                        found.session = Some(session);
                    }
                }
                Err(_) if from_newer_version(&bytes) => {}
                Err(err) => found.set_aside.push(set_aside(id, &path, &err.to_string())),
            }
        }
        found.set_aside.sort_by(|a, b| a.from.cmp(&b.from));
        Ok(found)
    }

    /// Every readable session, most recently saved first. Unreadable files are skipped.
    ///
    /// # Errors
    /// [`SessionError::Io`] when the directory exists but cannot be read.
    pub fn list(&self) -> Result<Vec<SessionSummary>, SessionError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(SessionError::Io {
                    path: self.dir.clone(),
                    source,
                });
            }
        };
        let mut found: Vec<SessionSummary> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let name = entry.file_name();
                let id = name.to_str()?.strip_suffix(".json")?;
                let session = self.load(id).ok()?;
                Some(SessionSummary {
                    title: session.title(60),
                    messages: session.messages.len(),
                    personality: session.personality,
                    updated: session.updated,
                    id: session.id,
                })
            })
            .collect();
        // RFC 3339 in UTC sorts as text; the id breaks ties.
        found.sort_by(|a, b| b.updated.cmp(&a.updated).then(b.id.cmp(&a.id)));
        Ok(found)
    }

    /// The most recently saved session, if any.
    ///
    /// # Errors
    /// As [`SessionStore::list`] and [`SessionStore::load`].
    pub fn latest(&self) -> Result<Option<Session>, SessionError> {
        match self.list()?.first() {
            Some(summary) => self.load(&summary.id).map(Some),
            None => Ok(None),
        }
    }

    fn ensure_dir(&self) -> Result<(), SessionError> {
        let err = |source| SessionError::Io {
            path: self.dir.clone(),
            source,
        };
        create_private_dir(&self.dir).map_err(err)
    }
}

/// True when `bytes` is a session object of a later format than ours: not ours to judge.
fn from_newer_version(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v.get("format")?.as_u64())
        .is_some_and(|format| format > u64::from(FORMAT))
}

/// Renames a damaged session file out of the way; never deletes it.
fn set_aside(id: &str, path: &Path, reason: &str) -> SetAside {
    let stamp = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut to = dir.join(format!("{id}.damaged-{stamp}.json"));
    // rename replaces its target: never over an earlier damaged copy.
    let mut n = 1;
    while to.exists() && n < 100 {
        n += 1;
        to = dir.join(format!("{id}.damaged-{stamp}-{n}.json"));
    }
    match fs::rename(path, &to) {
        Ok(()) => SetAside {
            from: path.to_owned(),
            to: Some(to),
            reason: reason.to_owned(),
        },
        Err(err) => SetAside {
            from: path.to_owned(),
            to: None,
            reason: format!("{reason}; could not move it aside: {err}"),
        },
    }
}

/// Ids are our own `YYYYMMDD-HHMMSS-xxxx`; anything else could leave the directory.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn new_id(now: jiff::Timestamp) -> String {
    format!(
        "{}-{:04x}",
        now.strftime("%Y%m%d-%H%M%S"),
        fastrand::u16(..)
    )
}

/// One line, at most `max` characters, with an ellipsis when cut.
#[must_use]
pub fn shorten(text: &str, max: usize) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(unix)]
fn create_private(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    // A directory that existed already keeps its mode unless tightened here.
    let mode = fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode != 0o700 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

/// A save to perform.
#[derive(Debug)]
pub struct SaveRequest {
    /// What to write.
    pub session: Session,
    /// Tell the UI where it went (for `/save`); failures are always told.
    pub announce: bool,
}

/// Writes sessions on a thread of its own, so a slow disk never stalls a frame. Requests that
/// pile up are coalesced: only the newest snapshot of each session is written.
#[derive(Debug)]
pub struct Saver {
    tx: Option<mpsc::Sender<SaveRequest>>,
    thread: Option<JoinHandle<()>>,
}

impl Saver {
    /// Starts the saver; results that the UI must see go to `events`.
    #[must_use]
    pub fn spawn(store: SessionStore, events: EventSender) -> Self {
        let (tx, rx) = mpsc::channel::<SaveRequest>();
        let thread = std::thread::Builder::new()
            .name("conductor-session-saver".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    batch.extend(rx.try_iter());
                    for request in coalesce(batch) {
                        let result = store.save(&request.session);
                        match result {
                            Ok(path) if request.announce => {
                                events.send(Event::Saved(Ok(path)));
                            }
                            Ok(_) => {}
                            Err(err) => {
                                tracing::warn!(error = %err, "session not saved");
                                events.send(Event::Saved(Err(err.to_string())));
                            }
                        }
                    }
                }
            })
            .ok();
        Self {
            tx: Some(tx),
            thread,
        }
    }

    /// Queues a save.
    pub fn save(&self, request: SaveRequest) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(request);
        }
    }

    /// Writes what is queued and stops the thread.
    pub fn finish(mut self) {
        self.tx.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The newest request per session id, in order of their last appearance; an announce wins.
fn coalesce(batch: Vec<SaveRequest>) -> Vec<SaveRequest> {
    let mut out: Vec<SaveRequest> = Vec::new();
    for request in batch {
        if let Some(pos) = out.iter().position(|r| r.session.id == request.session.id) {
            let old = out.remove(pos);
            out.push(SaveRequest {
                announce: old.announce || request.announce,
                session: request.session,
            });
        } else {
            out.push(request);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_safe_file_names() {
        assert!(valid_id("20260101-120000-00af"));
        assert!(!valid_id("../etc/passwd"));
        assert!(!valid_id(".hidden"));
        assert!(!valid_id(""));
        let id = new_id(jiff::Timestamp::UNIX_EPOCH);
        assert!(id.starts_with("19700101-000000-"), "{id}");
        assert!(valid_id(&id));
    }

    #[test]
    fn shorten_cuts_on_characters() {
        assert_eq!(shorten("a\nb  c", 10), "a b c");
        assert_eq!(shorten("ééééé", 3), "éé…");
    }

    #[test]
    fn coalescing_keeps_the_newest_per_session() {
        let mut a = Session::new("m", "p");
        a.id = "a".into();
        let mut a2 = a.clone();
        a2.messages.push(Message::user("x"));
        let mut b = a.clone();
        b.id = "b".into();
        let batch = vec![
            SaveRequest {
                session: a,
                announce: true,
            },
            SaveRequest {
                session: b,
                announce: false,
            },
            SaveRequest {
                session: a2.clone(),
                announce: false,
            },
        ];
        let out = coalesce(batch);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].session, a2);
        assert!(out[1].announce);
    }
}
