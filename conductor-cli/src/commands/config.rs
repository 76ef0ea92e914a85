//! `conductor config show|path|init`.

mod init;
mod path;

use std::process::ExitCode;

use conductor_core::gpu::FixStore;
use serde_json::json;

use crate::cli::{ConfigCommand, GlobalArgs};
use crate::commands::load_config;
use crate::exit::Failure;
use crate::output::outln;
use crate::output::table;

/// Runs the command.
pub fn run(global: &GlobalArgs, command: ConfigCommand) -> Result<ExitCode, Failure> {
    match command {
        ConfigCommand::Show { json, .. } => show(global, json),
        ConfigCommand::Path { json, .. } => path::run(global, json),
        ConfigCommand::Init {
            path, force, print, ..
        } => init::run(global, path, force, print),
    }
}

fn show(global: &GlobalArgs, json: bool) -> Result<ExitCode, Failure> {
    let config = load_config(global)?;
    let lines = config.explain();
    let dirs: Vec<String> = config
        .settings
        .personality_dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    let file = config
        .file
        .as_ref()
        .map_or_else(|| "(none)".to_owned(), |p| p.display().to_string());
    // Fixes remembered by `--gpu-policy fix` change what is sent: show them beside the settings.
    let store = FixStore::default_path().map(|path| FixStore::new(path, ""));
    let fixes = store.as_ref().map(FixStore::all).unwrap_or_default();
    if json {
        let settings: Vec<_> = lines
            .iter()
            .map(|l| json!({ "key": l.key, "value": l.value, "origin": l.origin.to_string() }))
            .collect();
        let out = json!({
            "config_file": file,
            "settings": settings,
            "personality_search_path": dirs,
            "remembered_gpu_fixes": fixes,
            "remembered_gpu_fixes_file": store.as_ref().and_then(FixStore::path),
        });
        outln!("{out:#}")?;
    } else {
        outln!("config file: {file}")?;
        // A long value (extra system text) would pad every row of the table to its width:
        // shown shortened here, whole with --json.
        let rows: Vec<Vec<String>> = lines
            .iter()
            .map(|l| vec![l.key.to_owned(), shorten(&l.value), l.origin.to_string()])
            .collect();
        outln!("{}", table(&["SETTING", "VALUE", "FROM"], &rows))?;
        outln!(
            "personalities: built in, then {}",
            if dirs.is_empty() {
                "(no directory)".to_owned()
            } else {
                dirs.join(", ")
            }
        )?;
        if !fixes.is_empty() {
            outln!(
                "GPU fixes remembered (sent instead of the options above under --gpu-policy fix; {}):",
                store
                    .as_ref()
                    .and_then(FixStore::path)
                    .map_or_else(String::new, |p| p.display().to_string())
            )?;
            for line in crate::output::remembered_fix_lines(&fixes) {
                outln!("  {line}")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// At most 60 characters of `value`, saying how long it is when shortened.
fn shorten(value: &str) -> String {
    const MAX: usize = 60;
    let count = value.chars().count();
    if count <= MAX {
        return value.to_owned();
    }
    let head: String = value.chars().take(MAX - 20).collect();
    format!("{head}… ({count} characters)")
}

#[cfg(test)]
mod tests {
    use super::shorten;

    #[test]
    fn long_values_are_shortened_for_the_table() {
        assert_eq!(shorten("llama3.2:3b"), "llama3.2:3b");
        let long = "x".repeat(500);
        let short = shorten(&long);
        assert!(short.ends_with("… (500 characters)"), "{short}");
        assert!(short.chars().count() <= 60, "{short}");
    }
}
