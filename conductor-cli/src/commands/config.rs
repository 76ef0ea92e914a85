//! `conductor config show`.

use std::process::ExitCode;

use conductor_core::gpu::FixStore;
use serde_json::json;

use crate::cli::{ConfigCommand, GlobalArgs};
use crate::commands::load_config;
use crate::exit::Failure;
use crate::output::table;

/// Runs the command.
pub fn run(global: &GlobalArgs, command: ConfigCommand) -> Result<ExitCode, Failure> {
    let ConfigCommand::Show { json } = command;
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
        println!("{out:#}");
    } else {
        println!("config file: {file}");
        let rows: Vec<Vec<String>> = lines
            .iter()
            .map(|l| vec![l.key.to_owned(), l.value.clone(), l.origin.to_string()])
            .collect();
        println!("{}", table(&["SETTING", "VALUE", "FROM"], &rows));
        println!(
            "personalities: built in, then {}",
            if dirs.is_empty() {
                "(no directory)".to_owned()
            } else {
                dirs.join(", ")
            }
        );
        if !fixes.is_empty() {
            println!(
                "GPU fixes remembered (sent instead of the options above under --gpu-policy fix; {}):",
                store
                    .as_ref()
                    .and_then(FixStore::path)
                    .map_or_else(String::new, |p| p.display().to_string())
            );
            for line in crate::output::remembered_fix_lines(&fixes) {
                println!("  {line}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
