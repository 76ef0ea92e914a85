//! `conductor personality list|show`.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use conductor_core::{PersonalityCatalog, compose};
use serde_json::json;

use crate::cli::{GlobalArgs, PersonalityCommand};
use crate::commands::load_config;
use crate::exit::Failure;
use crate::output::{self, paint, style, table};
use crate::output::{errln, outln};

/// Runs the command.
pub fn run(global: &GlobalArgs, command: PersonalityCommand) -> Result<ExitCode, Failure> {
    let config = load_config(global)?;
    let catalog = PersonalityCatalog::with_dirs(config.settings.personality_dirs.clone());
    match command {
        PersonalityCommand::List { json: true, .. } => {
            let current = config.settings.personality.as_str();
            let entries: Vec<_> = catalog
                .list()
                .iter()
                .map(|entry| {
                    json!({
                        "name": entry.name,
                        "current": entry.name == current,
                        "source": entry.source.to_string(),
                        "description": entry.personality.as_ref().ok().map(|p| p.description()),
                        "error": entry.personality.as_ref().err().map(ToString::to_string),
                    })
                })
                .collect();
            outln!(
                "{:#}",
                json!({ "current": current, "personalities": entries })
            )?;
            Ok(ExitCode::SUCCESS)
        }
        PersonalityCommand::List { json: false, .. } => {
            let current = config.settings.personality.as_str();
            let mut rows = Vec::new();
            let mut broken = Vec::new();
            for entry in catalog.list() {
                match &entry.personality {
                    Ok(p) => rows.push(vec![
                        if entry.name == current {
                            format!("{} *", entry.name)
                        } else {
                            entry.name.clone()
                        },
                        p.description().to_owned(),
                        entry.source.to_string(),
                    ]),
                    Err(err) => {
                        rows.push(vec![
                            entry.name.clone(),
                            "(does not parse, see below)".into(),
                            entry.source.to_string(),
                        ]);
                        broken.push(err.to_string());
                    }
                }
            }
            outln!("{}", table(&["NAME", "DESCRIPTION", "SOURCE"], &rows))?;
            for err in broken {
                errln!("{} {err}", paint(output::stderr_color(), style::ERROR, "✗"));
            }
            Ok(ExitCode::SUCCESS)
        }
        PersonalityCommand::Show { name, system, .. } => {
            let name = name.unwrap_or_else(|| config.settings.personality.to_string());
            let personality = catalog.load(&name)?;
            let system = system.or(config.settings.system);
            let text = compose(&personality, system.as_deref());
            let mut stdout = std::io::stdout().lock();
            // Exactly as sent; a newline only for a person reading it on a terminal.
            let tail = if std::io::stdout().is_terminal() {
                "\n"
            } else {
                ""
            };
            write!(stdout, "{text}{tail}")
                .and_then(|()| stdout.flush())
                .map_err(crate::output::output_failure)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
