//! `--log` / `CONDUCTOR_LOG`: tracing filters over named components, written to stderr.

mod file;

use tracing_subscriber::EnvFilter;

use crate::exit::Failure;

/// The tracing target under which the core logs the user's prompts (trace level). Filters built
/// from `--log` / `CONDUCTOR_LOG` switch it off unless the user names it.
const PROMPTS_TARGET: &str = "conductor_core::prompts";

/// Component names users write, and the module targets they stand for.
const COMPONENTS: &[(&str, &str)] = &[
    ("backend", "conductor_core::backend"),
    ("gpu", "conductor_core::gpu"),
    ("config", "conductor_core::config"),
    ("chat", "conductor_core::conductor"),
    ("personality", "conductor_core::personality"),
    ("cli", "conductor"),
    ("tui", "conductor_tui"),
    ("http", "reqwest"),
    // What the user typed: only logged when named (`--log debug,prompts=trace`).
    ("prompts", PROMPTS_TARGET),
];

/// Turns `backend=debug,gpu=trace` into a filter over module targets; plain levels
/// (`debug`) apply to all of conductor. Default: quiet. The user's prompts are off unless the
/// `prompts` component is named: `conductor_core=trace` would match their target by prefix.
pub fn directives(spec: &str) -> Result<String, String> {
    let mut out = Vec::new();
    let mut prompts_named = false;
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (component, level) = match part.split_once('=') {
            Some((c, l)) => (Some(c.trim()), l.trim()),
            None => (None, part),
        };
        if !matches!(level, "off" | "error" | "warn" | "info" | "debug" | "trace") {
            return Err(format!(
                "invalid log level {level:?} in {part:?}: use off, error, warn, info, debug or trace"
            ));
        }
        match component {
            None => {
                out.push(format!("conductor_core={level}"));
                out.push(format!("conductor={level}"));
                out.push(format!("conductor_tui={level}"));
            }
            Some(name) => {
                let target = COMPONENTS
                    .iter()
                    .find(|(c, _)| *c == name)
                    .map(|(_, t)| *t)
                    .ok_or_else(|| {
                        let known: Vec<&str> = COMPONENTS.iter().map(|(c, _)| *c).collect();
                        format!("unknown log component {name:?}: use {}", known.join(", "))
                    })?;
                prompts_named |= target == PROMPTS_TARGET;
                out.push(format!("{target}={level}"));
            }
        }
    }
    if !out.is_empty() && !prompts_named {
        out.push(format!("{PROMPTS_TARGET}=off"));
    }
    Ok(out.join(","))
}

/// Installs the subscriber. Nothing is logged unless asked. With `to_file`, logs go to
/// `CONDUCTOR_LOG_FILE` (default `<data dir>/conductor/conductor.log`) instead of stderr.
pub fn init(flag: Option<&str>, to_file: bool) -> Result<(), Failure> {
    let spec = flag
        .map(str::to_owned)
        .or_else(|| std::env::var("CONDUCTOR_LOG").ok())
        .unwrap_or_default();
    let directives = directives(&spec).map_err(Failure::Usage)?;
    let filter = EnvFilter::builder()
        .parse(format!("off,{directives}"))
        .map_err(|err| Failure::Usage(format!("invalid --log filter: {err}")))?;
    if directives.is_empty() {
        return Ok(());
    }
    if to_file {
        let file = open_log_file(std::env::var_os("CONDUCTOR_LOG_FILE").map(Into::into))?;
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::sync::Mutex::new(file))
            .with_ansi(false)
            .try_init();
    } else {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(crate::output::stderr_color())
            .try_init();
    }
    Ok(())
}

/// `chosen` (`CONDUCTOR_LOG_FILE`), or `<data dir>/conductor/conductor.log`, opened user-only:
/// at trace level it can hold what the user asked.
fn open_log_file(chosen: Option<std::path::PathBuf>) -> Result<std::fs::File, Failure> {
    // Our default directory is ours to tighten; a directory the user chose is left as it is.
    let (path, own_dir) = match chosen {
        Some(path) => (path, false),
        None => (
            file::default_path("conductor.log").ok_or_else(|| {
                Failure::Usage("no data directory for the log file: set CONDUCTOR_LOG_FILE".into())
            })?,
            true,
        ),
    };
    file::open(&path, own_dir)
        .map_err(|err| Failure::Usage(format!("cannot open log file {}: {err}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_map_to_targets() {
        assert!(
            directives("backend=debug,gpu=trace")
                .unwrap()
                .starts_with("conductor_core::backend=debug,conductor_core::gpu=trace,")
        );
        assert!(
            directives("debug")
                .unwrap()
                .contains("conductor_core=debug")
        );
        assert!(directives("").unwrap().is_empty());
        assert!(
            directives("nope=debug")
                .unwrap_err()
                .contains("unknown log component")
        );
        assert!(
            directives("backend=loud")
                .unwrap_err()
                .contains("invalid log level")
        );
    }

    #[test]
    fn prompts_are_off_unless_named() {
        assert_eq!(
            directives("backend=debug,gpu=trace").unwrap(),
            "conductor_core::backend=debug,conductor_core::gpu=trace,conductor_core::prompts=off"
        );
        // `conductor_core=trace` matches `conductor_core::prompts` by prefix: the explicit
        // `off` is more specific and wins.
        let all = directives("trace").unwrap();
        assert!(all.contains("conductor_core=trace"), "{all}");
        assert!(all.ends_with(",conductor_core::prompts=off"), "{all}");
        assert_eq!(
            directives("debug,prompts=trace").unwrap(),
            "conductor_core=debug,conductor=debug,conductor_tui=debug,conductor_core::prompts=trace"
        );
        for spec in ["trace", "debug,prompts=trace", "chat=trace"] {
            let parsed = EnvFilter::builder().parse(format!("off,{}", directives(spec).unwrap()));
            assert!(parsed.is_ok(), "{spec}: {parsed:?}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn the_log_file_is_user_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs").join("conductor.log");
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        // A new file in a new directory.
        open_log_file(Some(path.clone())).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        // An older log, world-readable: tightened.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        open_log_file(Some(path.clone())).unwrap();
        assert_eq!(mode(&path), 0o600);
    }
}
