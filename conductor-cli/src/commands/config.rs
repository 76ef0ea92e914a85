//! `conductor config show`.

use std::process::ExitCode;

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
    if json {
        let settings: Vec<_> = lines
            .iter()
            .map(|l| json!({ "key": l.key, "value": l.value, "origin": l.origin.to_string() }))
            .collect();
        let out =
            json!({ "config_file": file, "settings": settings, "personality_search_path": dirs });
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
    }
    Ok(ExitCode::SUCCESS)
}
