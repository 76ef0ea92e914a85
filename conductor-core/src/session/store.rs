//! The directory of session files: atomic saves, listing, finding, renaming, removing.
//!
//! One JSON file per conversation in `<data dir>/conductor/sessions/` (`~/.local/share/…` on
//! Linux, honouring `XDG_DATA_HOME`). Every save writes a temporary file in the same directory,
//! fsyncs it, renames it over the old one and fsyncs the directory: a reader sees the old file
//! or the new one, never half of one. Files are created `0600` and the directory `0700`: a
//! conversation can hold anything the user typed.
//!
//! A session file that no longer parses is never deleted behind the user's back:
//! [`SessionStore::resume_latest`] moves it aside to `<id>.damaged-<UTC time>.json` and says
//! so; [`SessionStore::scan`] lists it as [`Listed::Damaged`]. While a window has a session
//! open it holds its lock ([`super::lock`]).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::lock::{LockError, SessionLock};
use super::{FORMAT, Origin, Session, SessionError, valid_id, validate_name};
use crate::files::{Existing, write_private};

pub use super::listing::{Damaged, Listed, Resumable, SessionSummary, SetAside};

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
        session_json(session)
            .and_then(|json| write_private(&path, &json, Existing::Replace))
            .map_err(|source| SessionError::Io {
                path: path.clone(),
                source,
            })?;
        Ok(path)
    }

    /// Saves a new session without ever replacing a file: when its id is taken (two
    /// sessions started in the same second drew the same suffix) it takes a fresh id and tries
    /// again. A named session is checked and written under the store's name lock
    /// ([`SessionStore::lock_names`]), so that two processes cannot both create the same name.
    /// The file is complete before it appears (temporary file, fsync, hard link). Returns the
    /// file; `session.id` is the id it was saved under.
    ///
    /// # Errors
    /// [`SessionError::NameTaken`] (nothing is written), [`SessionError::InvalidName`],
    /// [`SessionError::Io`].
    pub fn create(&self, session: &mut Session) -> Result<PathBuf, SessionError> {
        self.ensure_dir()?;
        let _names = match &session.name {
            Some(name) => {
                validate_name(name)?;
                let lock = self.lock_names()?;
                if let Some(owner) = self.name_owner(name)? {
                    return Err(SessionError::NameTaken {
                        name: name.clone(),
                        id: owner,
                    });
                }
                Some(lock)
            }
            None => None,
        };
        for _ in 0..16 {
            if !valid_id(&session.id) {
                return Err(SessionError::NotFound(session.id.clone()));
            }
            match self.write_new(session) {
                Ok(path) => return Ok(path),
                Err(SessionError::Io { source, .. })
                    if source.kind() == io::ErrorKind::AlreadyExists =>
                {
                    session.id = super::new_id(jiff::Timestamp::now());
                }
                Err(err) => return Err(err),
            }
        }
        Err(SessionError::Io {
            path: self.dir.clone(),
            source: io::Error::other("no free session id after 16 tries"),
        })
    }

    /// Writes `session` to a file that must not exist yet: `AlreadyExists` when it does.
    fn write_new(&self, session: &Session) -> Result<PathBuf, SessionError> {
        let path = self.path(&session.id);
        session_json(session)
            .and_then(|json| write_private(&path, &json, Existing::Keep))
            .map_err(|source| SessionError::Io {
                path: path.clone(),
                source,
            })?;
        Ok(path)
    }

    /// The store-wide lock held while a name is checked and saved (`names.lock`), waited for
    /// up to two seconds: it is only ever held for one check and one write.
    ///
    /// # Errors
    /// [`SessionError::InUse`] when it stays held; [`SessionError::Lock`] when it cannot be
    /// taken.
    pub fn lock_names(&self) -> Result<SessionLock, SessionError> {
        self.ensure_dir()?;
        Ok(SessionLock::acquire_within(
            "names",
            self.dir.join("names.lock"),
            Duration::from_secs(2),
        )?)
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

    /// Takes the lock of session `id` for this process (see [`super::lock`]), creating the
    /// directory if needed.
    ///
    /// # Errors
    /// [`LockError::Held`] when another window has it open; [`LockError::Io`] otherwise.
    pub fn lock(&self, id: &str) -> Result<SessionLock, LockError> {
        self.lock_within(id, Duration::ZERO)
    }

    /// Takes the lock of session `id` as [`SessionStore::lock`], waiting up to `wait` for a
    /// holder to let go.
    ///
    /// # Errors
    /// As [`SessionStore::lock`].
    pub fn lock_within(&self, id: &str, wait: Duration) -> Result<SessionLock, LockError> {
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
        SessionLock::acquire_within(id, path, wait)
    }

    /// The newest session to resume. Session files that no longer parse are moved aside
    /// (renamed to `<id>.damaged-<UTC time>.json`, never deleted) and reported, so that a
    /// damaged newest file does not silently resume an older conversation. Files written by a
    /// newer conductor (a higher `format`) are left alone.
    ///
    /// # Errors
    /// [`SessionError::Io`] when the directory exists but cannot be read.
    pub fn resume_latest(&self) -> Result<Resumable, SessionError> {
        let mut found = Resumable::default();
        for (id, path) in self.files()? {
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
                Err(err) => found
                    .set_aside
                    .push(set_aside(&id, &path, &err.to_string())),
            }
        }
        found.set_aside.sort_by(|a, b| a.from.cmp(&b.from));
        Ok(found)
    }

    /// Every session file, read sessions and damaged files alike, most recently changed first
    /// (damaged files by their modification time). Nothing is moved or changed.
    ///
    /// # Errors
    /// [`SessionError::Io`] when the directory exists but cannot be read.
    pub fn scan(&self) -> Result<Vec<Listed>, SessionError> {
        let mut found: Vec<Listed> = Vec::new();
        for (id, path) in self.files()? {
            let bytes = match fs::read(&path) {
                Ok(bytes) => bytes,
                // Gone since the directory was read (removed, or renamed by a save).
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => {
                    found.push(damaged(id, path, format!("cannot read it: {err}"), false));
                    continue;
                }
            };
            match serde_json::from_slice::<Session>(&bytes) {
                Ok(session) => found.push(Listed::Session(SessionSummary::of(session))),
                Err(err) => {
                    let newer = from_newer_version(&bytes);
                    let reason = if newer {
                        "written by a newer conductor".to_owned()
                    } else {
                        err.to_string()
                    };
                    found.push(damaged(id, path, reason, newer));
                }
            }
        }
        // RFC 3339 in UTC sorts as text; the id breaks ties.
        found.sort_by(|a, b| b.when().cmp(a.when()).then(b.id().cmp(a.id())));
        Ok(found)
    }

    /// Every readable session, most recently saved first. Unreadable files are skipped.
    ///
    /// # Errors
    /// [`SessionError::Io`] when the directory exists but cannot be read.
    pub fn list(&self) -> Result<Vec<SessionSummary>, SessionError> {
        Ok(self
            .scan()?
            .into_iter()
            .filter_map(|listed| match listed {
                Listed::Session(summary) => Some(summary),
                Listed::Damaged(_) => None,
            })
            .collect())
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

    /// The most recently saved session started by `origin`, if any. Files are read newest
    /// first (by modification time) until one of that origin is found, so that `ask -c` does
    /// not parse the whole store; damaged files are passed over.
    ///
    /// # Errors
    /// [`SessionError::Io`] when the directory exists but cannot be read.
    pub fn latest_of(&self, origin: Origin) -> Result<Option<Session>, SessionError> {
        let mut files: Vec<(SystemTime, String)> = self
            .files()?
            .into_iter()
            .map(|(id, path)| {
                let modified = fs::metadata(&path).and_then(|m| m.modified());
                (modified.unwrap_or(SystemTime::UNIX_EPOCH), id)
            })
            .collect();
        files.sort_by(|a, b| b.cmp(a));
        for (_, id) in files {
            if let Ok(session) = self.load(&id)
                && session.origin == origin
            {
                return Ok(Some(session));
            }
        }
        Ok(None)
    }

    /// The session (or damaged file) that `query` names: its id, else its name, else a unique
    /// prefix of its id.
    ///
    /// # Errors
    /// [`SessionError::NotFound`] when nothing matches; [`SessionError::Ambiguous`] when a
    /// prefix (or a name given twice) matches several; [`SessionError::Io`] as
    /// [`SessionStore::scan`].
    pub fn resolve(&self, query: &str) -> Result<Listed, SessionError> {
        let all = self.scan()?;
        if let Some(exact) = all.iter().find(|l| l.id() == query) {
            return Ok(exact.clone());
        }
        let named: Vec<&Listed> = all.iter().filter(|l| l.name() == Some(query)).collect();
        let matches = if named.is_empty() {
            all.iter().filter(|l| l.id().starts_with(query)).collect()
        } else {
            named
        };
        match matches.as_slice() {
            [] => Err(SessionError::NotFound(query.to_owned())),
            [one] => Ok((*one).clone()),
            many => Err(SessionError::Ambiguous {
                query: query.to_owned(),
                matches: many.iter().map(|l| l.id().to_owned()).collect(),
            }),
        }
    }

    /// The session whose id or name is exactly `query` (no prefixes: what `chat --session`
    /// opens, creating it when there is none).
    ///
    /// # Errors
    /// [`SessionError::Parse`] when the file it names is damaged; [`SessionError::Io`].
    pub fn find_exact(&self, query: &str) -> Result<Option<Session>, SessionError> {
        match self.load(query) {
            Ok(session) => return Ok(Some(session)),
            Err(SessionError::NotFound(_)) => {}
            Err(err) => return Err(err),
        }
        match self.name_owner(query)? {
            Some(id) => self.load(&id).map(Some),
            None => Ok(None),
        }
    }

    /// The id of the session named `name`, if any.
    ///
    /// # Errors
    /// [`SessionError::Io`] as [`SessionStore::scan`].
    pub fn name_owner(&self, name: &str) -> Result<Option<String>, SessionError> {
        Ok(self
            .list()?
            .into_iter()
            .find(|s| s.name.as_deref() == Some(name))
            .map(|s| s.id))
    }

    /// Checks that session `id` may be named `name`: a valid name no other session has.
    ///
    /// # Errors
    /// [`SessionError::InvalidName`], [`SessionError::NameTaken`], [`SessionError::Io`].
    pub fn check_name(&self, name: &str, id: &str) -> Result<(), SessionError> {
        validate_name(name)?;
        match self.name_owner(name)? {
            Some(owner) if owner != id => Err(SessionError::NameTaken {
                name: name.to_owned(),
                id: owner,
            }),
            _ => Ok(()),
        }
    }

    /// Saves `session` as [`SessionStore::save`] does, and when it has a name, checks under
    /// the store's name lock ([`SessionStore::lock_names`]) that no other session has taken it
    /// meanwhile: two windows naming their conversations alike never both keep the name.
    ///
    /// # Errors
    /// [`SessionError::NameTaken`] (nothing is written), and those of
    /// [`SessionStore::lock_names`] and [`SessionStore::save`].
    pub fn save_claiming_name(&self, session: &Session) -> Result<PathBuf, SessionError> {
        let Some(name) = &session.name else {
            return self.save(session);
        };
        let _names = self.lock_names()?;
        self.check_name(name, &session.id)?;
        self.save(session)
    }

    /// Names session `id` `name` (`None`: takes its name away), under its lock so that no
    /// open window writes over it. Returns the renamed session.
    ///
    /// # Errors
    /// [`SessionError::InUse`] when a window has it open; as [`SessionStore::check_name`],
    /// [`SessionStore::load`] and [`SessionStore::save`].
    pub fn rename(&self, id: &str, name: Option<&str>) -> Result<Session, SessionError> {
        if let Some(name) = name {
            validate_name(name)?;
        }
        let _lock = self.lock(id)?;
        let mut session = self.load(id)?;
        // Checked and saved under the name lock: no other process takes the name meanwhile.
        let _names = match name {
            Some(name) => {
                let names = self.lock_names()?;
                self.check_name(name, id)?;
                Some(names)
            }
            None => None,
        };
        session.name = name.map(str::to_owned);
        self.save(&session)?;
        Ok(session)
    }

    /// Deletes session `id`'s file. A session open in a window (its lock held) is refused
    /// unless `force`: the window would otherwise write it again with its next save.
    ///
    /// # Errors
    /// [`SessionError::InUse`] (without `force`); [`SessionError::NotFound`];
    /// [`SessionError::Io`].
    pub fn remove(&self, id: &str, force: bool) -> Result<PathBuf, SessionError> {
        if !valid_id(id) {
            return Err(SessionError::NotFound(id.to_owned()));
        }
        let path = self.path(id);
        if !path.exists() {
            return Err(SessionError::NotFound(id.to_owned()));
        }
        let lock = match self.lock(id) {
            Ok(lock) => Some(lock),
            Err(LockError::Held { .. }) if force => None,
            Err(err) => return Err(err.into()),
        };
        let removed = fs::remove_file(&path);
        drop(lock);
        match removed {
            Ok(()) => Ok(path),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                Err(SessionError::NotFound(id.to_owned()))
            }
            Err(source) => Err(SessionError::Io { path, source }),
        }
    }

    /// The session files of the directory: `(id, path)` of each `<id>.json`.
    fn files(&self) -> Result<Vec<(String, PathBuf)>, SessionError> {
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
        Ok(entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let name = entry.file_name();
                let id = name.to_str()?.strip_suffix(".json")?;
                valid_id(id).then(|| (id.to_owned(), self.path(id)))
            })
            .collect())
    }

    fn ensure_dir(&self) -> Result<(), SessionError> {
        create_private_dir(&self.dir).map_err(|source| SessionError::Io {
            path: self.dir.clone(),
            source,
        })
    }
}

/// The file's bytes: pretty JSON and a final newline.
fn session_json(session: &Session) -> io::Result<Vec<u8>> {
    let mut json = serde_json::to_vec_pretty(session).map_err(io::Error::other)?;
    json.push(b'\n');
    Ok(json)
}

fn damaged(id: String, path: PathBuf, reason: String, newer: bool) -> Listed {
    let modified = fs::metadata(&path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| jiff::Timestamp::try_from(t).ok())
        .map(|t| t.to_string());
    Listed::Damaged(Damaged {
        id,
        path,
        reason,
        newer,
        modified,
    })
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
