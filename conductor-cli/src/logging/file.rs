//! The chat UI's log file: user-only, because at trace level it can hold what the user typed.
//!
//! `conductor chat` logs to a file (never to the terminal the UI draws on). The file is created `0600` and its directory `0700`; a file that exists
//! with looser permissions is tightened before anything is written to it.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// `<data dir>/conductor/<file_name>`, when the platform has a data directory.
#[must_use]
pub fn default_path(file_name: &str) -> Option<PathBuf> {
    dirs::data_dir().map(|d| d.join("conductor").join(file_name))
}

/// Opens `path` for appending, user-only. Missing directories are created `0700`; with
/// `own_dir` (the default location, which is ours) an existing directory is tightened to
/// `0700` too, while a directory the user chose (`CONDUCTOR_LOG_FILE=/tmp/x.log`) is left as
/// it is.
///
/// # Errors
/// When the directory or the file cannot be created, or the file's permissions cannot be
/// tightened (a log that others could read is not opened at all).
pub fn open(path: &Path, own_dir: bool) -> io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir, own_dir)?;
    }
    let file = open_private(path)?;
    tighten(&file, 0o600)?;
    Ok(file)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path, tighten_existing: bool) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    if tighten_existing {
        let mode = fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode != 0o700 {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path, _tighten_existing: bool) -> io::Result<()> {
    fs::create_dir_all(dir)
}

#[cfg(unix)]
fn open_private(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// `mode` only applies when the file is created: an older log keeps its `0644` otherwise.
#[cfg(unix)]
fn tighten(file: &File, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let current = file.metadata()?.permissions().mode() & 0o777;
    if current & !mode != 0 {
        file.set_permissions(fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn tighten(_file: &File, _mode: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_log_is_user_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a").join("b").join("conductor.log");
        open(&path, true).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("a").join("b")), 0o700);
        assert_eq!(mode(&dir.path().join("a")), 0o700);
    }

    #[test]
    fn an_existing_log_is_tightened_and_a_chosen_directory_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("old.log");
        fs::write(&path, "earlier\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        open(&path, false).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(dir.path()), 0o755);
        // Appended to, not truncated.
        assert_eq!(fs::read_to_string(&path).unwrap(), "earlier\n");
        // Our own directory is tightened.
        open(&path, true).unwrap();
        assert_eq!(mode(dir.path()), 0o700);
    }
}
