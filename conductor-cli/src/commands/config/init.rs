//! `conductor config init`: write the commented starter `conductor.toml`.

use std::path::PathBuf;
use std::process::ExitCode;

use conductor_core::config::{search_paths, starter_file};
use conductor_core::files::{Existing, write_private};

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
    let existing = if force {
        Existing::Replace
    } else {
        Existing::Keep
    };
    write_private(target, starter_file().as_bytes(), existing).map_err(|err| {
        if err.kind() == std::io::ErrorKind::AlreadyExists {
            Failure::Usage(format!(
                "cannot write {shown}: it appeared meanwhile; not overwriting it (add --force to replace it)"
            ))
        } else {
            Failure::Usage(format!("cannot write {shown}: {err}"))
        }
    })
}
