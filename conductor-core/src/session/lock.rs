//! One window per conversation: a lock file beside each session file while a window has it open.
//!
//! Two windows saving the same session would overwrite each other's turns, the last writer
//! winning in silence. So the window that has a conversation open holds `<id>.lock` next to
//! `<id>.json`: the file holds its pid (to name it in a message) and an exclusive OS lock
//! (`flock` on unix, `LockFileEx` on Windows) for as long as the window runs. The OS lock, not
//! the pid, decides: the kernel releases it when the process dies however it dies, so the lock
//! of a crashed window is taken over without guessing whether a pid was reused. The file is
//! removed when the lock is released.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Why a session could not be locked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Another conductor (a chat window, an `ask -c`) has the session open.
    #[error("session '{id}' is in use by another conductor{}", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Held {
        /// The session id.
        id: String,
        /// The process holding it, when its lock file says.
        pid: Option<u32>,
    },
    /// The lock file could not be created or locked.
    #[error("{}: {source}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// A held session lock; dropping it removes the lock file and releases the lock.
#[derive(Debug)]
pub struct SessionLock {
    id: String,
    path: PathBuf,
    file: Option<File>,
}

impl SessionLock {
    /// Locks session `id` whose lock file is `path` (see [`SessionStore::lock`](super::SessionStore::lock)).
    ///
    /// # Errors
    /// [`LockError::Held`] when another live process holds it, [`LockError::Io`] when the
    /// file cannot be created or the file system cannot lock.
    pub fn acquire(id: &str, path: PathBuf) -> Result<Self, LockError> {
        let io_err = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        // A holder that releases between our open and our lock removes the file first; we then
        // hold a lock on a file nobody else can see, so start again on the new one.
        for _ in 0..8 {
            let mut file = open_lock_file(&path).map_err(io_err)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    return Err(LockError::Held {
                        id: id.to_owned(),
                        pid: read_pid(&mut file),
                    });
                }
                Err(TryLockError::Error(source)) => return Err(io_err(source)),
            }
            if !same_file(&file, &path) {
                continue;
            }
            // A stale pid from a crashed window is overwritten: the lock is ours now.
            let written = (|| {
                file.set_len(0)?;
                file.rewind()?;
                writeln!(file, "{}", std::process::id())?;
                file.flush()
            })();
            written.map_err(io_err)?;
            return Ok(Self {
                id: id.to_owned(),
                path,
                file: Some(file),
            });
        }
        Err(io_err(io::Error::other(
            "the lock file keeps changing under us",
        )))
    }

    /// Locks as [`SessionLock::acquire`], waiting up to `wait` for a holder to let go (every
    /// 20 ms): for short holds, such as another process saving.
    ///
    /// # Errors
    /// [`LockError::Held`] when it is still held after `wait`; as [`SessionLock::acquire`].
    pub fn acquire_within(id: &str, path: PathBuf, wait: Duration) -> Result<Self, LockError> {
        let deadline = Instant::now() + wait;
        loop {
            match Self::acquire(id, path.clone()) {
                Err(LockError::Held { .. }) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => return other,
            }
        }
    }

    /// The locked session's id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The lock file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SessionLock {
    fn drop(&mut self) {
        // Remove while still locked, so that a process waiting on this file sees it gone (the
        // inode check in `acquire`) instead of locking a file that no longer has a name.
        let _ = fs::remove_file(&self.path);
        if let Some(file) = self.file.take() {
            let _ = file.unlock();
        }
    }
}

#[cfg(unix)]
fn open_lock_file(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_lock_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.take(32).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    // Windows does not let an open, locked file be deleted; it only has to still exist.
    path.exists()
}
