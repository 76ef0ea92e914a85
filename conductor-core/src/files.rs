//! Files a person owns, read and written defensively.
//!
//! Reading: [`read_small_bytes`] / [`read_small_file`] open only regular files, non-blocking,
//! and never load more than a limit (personalities, config files, certificates, `ask -f`).
//!
//! Writing: [`write_private`] writes a file whole or not at all, readable by its owner only
//! (conversations, a config that may hold a token, exports): the bytes go to a temporary file
//! beside the target, are synced, and only then take the target's name, by a rename
//! ([`Existing::Replace`]) or a hard link, which never replaces a file
//! ([`Existing::Keep`]). A reader sees the old file or the new one, never half of one, and a
//! full disk leaves the old file as it was.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub use crate::error::{FileRefusal, ReadProblem, not_regular, read_small_bytes, read_small_file};

/// What [`write_private`] does when the target exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Replace it (atomically). A symbolic link is followed, so a dotfile kept elsewhere and
    /// linked in stays a link.
    Replace,
    /// Leave it and fail with [`io::ErrorKind::AlreadyExists`], even when it appears while
    /// the new file is being written.
    Keep,
}

/// Writes `contents` to `path` whole or not at all, user-only (`0600` on Unix), then syncs the
/// directory (best effort). The temporary file beside it is created exclusively, so it is
/// never someone else's, and is gone afterwards whatever happened.
///
/// # Errors
/// The I/O error of the step that failed; [`io::ErrorKind::AlreadyExists`] for an existing
/// target under [`Existing::Keep`].
pub fn write_private(path: &Path, contents: &[u8], existing: Existing) -> io::Result<()> {
    let target = match existing {
        Existing::Replace => resolve_link(path),
        Existing::Keep => path.to_path_buf(),
    };
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let name = target
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy());
    let temp = dir.join(format!(
        ".{name}.{}-{:08x}.tmp",
        std::process::id(),
        fastrand::u32(..)
    ));
    // Not removed when this fails: a temporary name that exists is not ours.
    write_new(&temp, contents)?;
    let placed = match existing {
        Existing::Replace => fs::rename(&temp, &target),
        Existing::Keep => match fs::hard_link(&temp, &target) {
            Err(err) if err.kind() != io::ErrorKind::AlreadyExists => {
                // A file system without hard links (FAT, some network mounts): create the
                // file itself, never over an existing one.
                write_new(&target, contents)
            }
            other => other,
        },
    };
    // After a rename there is nothing left to remove; after a link, or a failure, the
    // temporary name goes.
    let _ = fs::remove_file(&temp);
    placed?;
    // The new directory entry survives a crash too (not every system can sync a directory).
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Creates `path` (never over an existing file), user-only, writes `contents` and syncs it;
/// a write that fails removes the file it created.
fn write_new(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    let written = file.write_all(contents).and_then(|()| file.sync_all());
    if written.is_err() {
        drop(file);
        let _ = fs::remove_file(path);
    }
    written
}

/// The file a symbolic link at `path` points to (so that replacing it keeps the link), or
/// `path` itself.
fn resolve_link(path: &Path) -> PathBuf {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
        }
        _ => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect()
    }

    #[test]
    fn keep_never_replaces_and_replace_does_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.toml");
        write_private(&path, b"one", Existing::Keep).unwrap();
        let err = write_private(&path, b"two", Existing::Keep).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).unwrap(), b"one");
        write_private(&path, b"three", Existing::Replace).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"three");
        assert!(
            leftovers(dir.path()).is_empty(),
            "{:?}",
            leftovers(dir.path())
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[cfg(unix)]
    #[test]
    fn replacing_a_link_writes_through_it() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("dotfiles-conductor.toml");
        fs::write(&real, "old").unwrap();
        let link = dir.path().join("conductor.toml");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_private(&link, b"new", Existing::Replace).unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read(&real).unwrap(), b"new");
    }

    #[test]
    fn a_missing_directory_fails_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/dir/x");
        assert!(write_private(&path, b"x", Existing::Replace).is_err());
        assert!(leftovers(dir.path()).is_empty());
    }
}
