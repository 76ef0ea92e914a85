//! `conductor config path`: every file and directory conductor reads or writes, in the order
//! it looks, with which exist and which is used.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use conductor_core::LoadedConfig;
use conductor_core::config::search_paths;
use conductor_core::gpu::FixStore;
use serde_json::json;

use crate::cli::GlobalArgs;
use crate::exit::Failure;
use crate::output::{self, outln, table};

/// One path, with what it is for.
struct Entry {
    what: String,
    path: PathBuf,
    exists: bool,
    status: String,
}

impl Entry {
    fn new(what: impl Into<String>, path: PathBuf, status: impl FnOnce(bool) -> String) -> Self {
        let exists = path.exists();
        Self {
            what: what.into(),
            status: status(exists),
            path,
            exists,
        }
    }
}

fn presence(exists: bool) -> String {
    if exists { "exists" } else { "missing" }.to_owned()
}

/// Runs the command. A configuration that does not load is reported, not fatal: this is the
/// command for finding out why.
pub fn run(global: &GlobalArgs, json: bool) -> Result<ExitCode, Failure> {
    let env = |name: &str| std::env::var(name).ok();
    let config_dir = dirs::config_dir();
    let candidates = search_paths(global.config.as_deref(), &env, config_dir.as_deref());
    let mut entries: Vec<Entry> = candidates
        .iter()
        .map(|c| {
            let explicit = c.source != conductor_core::config::CandidateSource::Platform;
            Entry::new(
                format!("config ({})", c.source),
                c.path.clone(),
                |exists| match (c.used, exists, explicit) {
                    (true, true, _) => "used".to_owned(),
                    (true, false, true) => "missing: named, so an error".to_owned(),
                    (true, false, false) => {
                        "missing (optional; `conductor config init` writes it)".to_owned()
                    }
                    (false, exists, _) => format!("not used ({})", presence(exists)),
                },
            )
        })
        .collect();
    let sources = global.sources()?;
    let loaded = LoadedConfig::load(sources);
    let personality_dirs = match &loaded {
        Ok(config) => config.settings.personality_dirs.clone(),
        // Without a configuration the platform directory is still searched.
        Err(_) => config_dir
            .iter()
            .map(|d| d.join("conductor").join("personalities"))
            .collect(),
    };
    for dir in personality_dirs {
        entries.push(Entry::new("personalities", dir, presence));
    }
    if let Some(file) = FixStore::default_path() {
        let what = if env("CONDUCTOR_STATE_DIR").is_some_and(|v| !v.is_empty()) {
            "GPU fixes (CONDUCTOR_STATE_DIR)"
        } else {
            "GPU fixes (state)"
        };
        entries.push(Entry::new(what, file, presence));
    }
    if let Some(data) = dirs::data_dir() {
        entries.push(Entry::new(
            "chat sessions",
            data.join("conductor").join("sessions"),
            presence,
        ));
    }
    let log = std::env::var_os("CONDUCTOR_LOG_FILE")
        .filter(|v| !v.is_empty())
        .map(|f| ("chat log (CONDUCTOR_LOG_FILE)", PathBuf::from(f)))
        .or_else(|| {
            dirs::data_dir().map(|d| ("chat log", d.join("conductor").join("conductor.log")))
        });
    if let Some((what, file)) = log {
        entries.push(Entry::new(what, file, presence));
    }
    let config_error = loaded.as_ref().err().map(ToString::to_string);
    if json {
        let rows: Vec<_> = entries
            .iter()
            .map(|e| {
                json!({ "what": e.what, "path": e.path, "exists": e.exists, "status": e.status })
            })
            .collect();
        let files: Vec<_> = candidates
            .iter()
            .map(|c| {
                json!({
                    "path": c.path, "source": c.source.to_string(),
                    "used": c.used, "exists": c.path.exists(),
                })
            })
            .collect();
        outln!(
            "{:#}",
            json!({ "config_files": files, "paths": rows, "config_error": config_error })
        )?;
    } else {
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|e| vec![e.what.clone(), display(&e.path), e.status.clone()])
            .collect();
        outln!("{}", table(&["WHAT", "PATH", "STATUS"], &rows))?;
        if let Some(err) = config_error {
            output::warn(&format!("the configuration does not load: {err}"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn display(path: &Path) -> String {
    path.display().to_string()
}
