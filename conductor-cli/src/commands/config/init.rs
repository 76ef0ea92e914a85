//! `conductor config init`: write the commented starter `conductor.toml`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use conductor_core::config::{search_paths, starter_file};

use crate::cli::GlobalArgs;
use crate::exit::Failure;
use crate::output::outln;

/// Runs the command: to stdout with `print`; else to `path`, `--config`, `CONDUCTOR_CONFIG` or
/// the platform default, in that order, never over an existing file without `force`.
pub fn run(
    global: &GlobalArgs,
    path: Option<PathBuf>,
    force: bool,
    print: bool,
) -> Result<ExitCode, Failure> {
    if print {
        crate::output::write_out(format_args!("{}", starter_file()))?;
        return Ok(ExitCode::SUCCESS);
    }
    let env = |name: &str| std::env::var(name).ok();
    let read_from = search_paths(
        global.config.as_deref(),
        &env,
        dirs::config_dir().as_deref(),
    )
    .into_iter()
    .next()
    .map(|c| c.path);
    let Some(target) = path.clone().or_else(|| read_from.clone()) else {
        return Err(Failure::Usage(
            "this platform has no config directory: give the file with --path FILE".into(),
        ));
    };
    write(&target, force)?;
    outln!("wrote {}", target.display())?;
    if read_from.as_ref() != Some(&target) {
        crate::output::warn(&format!(
            "conductor reads it only when named: --config {0} or CONDUCTOR_CONFIG={0}",
            target.display()
        ));
    }
    Ok(ExitCode::SUCCESS)
}

fn write(target: &std::path::Path, force: bool) -> Result<(), Failure> {
    let shown = target.display();
    match std::fs::symlink_metadata(target) {
        Ok(meta) if meta.is_dir() => {
            return Err(Failure::Usage(format!(
                "{shown} is a directory: give a file path such as {shown}/conductor.toml"
            )));
        }
        Ok(_) if !force => {
            return Err(Failure::Usage(format!(
                "{shown} exists; not overwriting it (add --force to replace it, or --print to see the starter)"
            )));
        }
        _ => {}
    }
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|err| {
            Failure::Usage(format!("cannot create directory {}: {err}", dir.display()))
        })?;
    }
    write_atomically(target, starter_file().as_bytes(), force)
        .map_err(|err| Failure::Usage(format!("cannot write {shown}: {err}")))
}

/// Writes `contents` to `target` whole or not at all: into a temporary file beside it
/// (user-only, as the config may hold a token), synced, then moved into place. With `replace`
/// the move is a rename over any existing file (the old one stays intact until then);
/// without, a hard link, which never replaces a file that appeared meanwhile. The temporary
/// file is removed whatever happens.
fn write_atomically(target: &Path, contents: &[u8], replace: bool) -> std::io::Result<()> {
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let name = target
        .file_name()
        .map_or_else(|| "conductor.toml".into(), |n| n.to_string_lossy());
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = write_new(&temp, contents).and_then(|()| {
        if replace {
            std::fs::rename(&temp, target)
        } else {
            match std::fs::hard_link(&temp, target) {
                Ok(()) => Ok(()),
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                    Err(std::io::Error::new(
                        err.kind(),
                        "it appeared meanwhile; not overwriting it (add --force to replace it)",
                    ))
                }
                // A file system without hard links (FAT, some network mounts): create the
                // file itself, never over an existing one; a failed write removes it.
                Err(_) => write_new(target, contents),
            }
        }
    });
    // After a rename there is nothing left to remove; after a link, or a failure, the
    // temporary name goes.
    let _ = std::fs::remove_file(&temp);
    result?;
    // The new directory entry survives a crash too (best effort: not every system can sync a
    // directory).
    if let Ok(dir) = std::fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Creates `path` (never over an existing one), user-only, writes `contents` and syncs it; a
/// write that fails removes the file it created.
fn write_new(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
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
        let _ = std::fs::remove_file(path);
    }
    written
}
