//! `--log` / `CONDUCTOR_LOG`: tracing filters over named components, written to stderr.

use tracing_subscriber::EnvFilter;

use crate::exit::Failure;

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
];

/// Turns `backend=debug,gpu=trace` into a filter over module targets; plain levels
/// (`debug`) apply to all of conductor. Default: quiet.
pub fn directives(spec: &str) -> Result<String, String> {
    let mut out = Vec::new();
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
                out.push(format!("{target}={level}"));
            }
        }
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
        let path = std::env::var_os("CONDUCTOR_LOG_FILE")
            .map(std::path::PathBuf::from)
            .or_else(|| dirs::data_dir().map(|d| d.join("conductor").join("conductor.log")))
            .ok_or_else(|| {
                Failure::Usage("no data directory for the log file: set CONDUCTOR_LOG_FILE".into())
            })?;
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|err| {
                Failure::Usage(format!("cannot open log file {}: {err}", path.display()))
            })?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_map_to_targets() {
        assert_eq!(
            directives("backend=debug,gpu=trace").unwrap(),
            "conductor_core::backend=debug,conductor_core::gpu=trace"
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
}
