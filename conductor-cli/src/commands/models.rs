//! `conductor models` (also `ls` and `list`, as in Ollama).

use std::process::ExitCode;

use conductor_core::Conductor;
use serde_json::json;

use crate::cli::GlobalArgs;
use crate::commands::load_config;
use crate::exit::Failure;
use crate::output::outln;
use crate::output::{bytes, table};

/// Runs the command; with `json`, one object `{"models": [...]}`.
pub async fn run(global: &GlobalArgs, json: bool) -> Result<ExitCode, Failure> {
    let config = load_config(global)?;
    let conductor = Conductor::from_settings(&config.settings)?;
    let backend = conductor.backend();
    // A server without a model server (an OpenAI-compatible one) lists names only: its
    // PROCESSOR column stays empty, since it reports no residency.
    let running = async {
        match backend.model_server() {
            Some(server) => server.running_models().await,
            None => Ok(Vec::new()),
        }
    };
    let (models, running) = tokio::try_join!(backend.models(), running)?;
    if json {
        let models: Vec<_> = models
            .iter()
            .map(|m| {
                let run = running.iter().find(|r| r.is_model(&m.name));
                json!({
                    "name": m.name,
                    // An OpenAI-compatible server reports no size: null, not 0.
                    "size": (m.size != 0).then_some(m.size),
                    "modified_at": (!m.modified_at.is_empty()).then_some(&m.modified_at),
                    "running": run.map(|r| json!({
                        "processor": r.processor().to_string(),
                        "size": r.size,
                        "size_vram": r.size_vram,
                        "context_length": r.context_length,
                        "expires_at": r.expires_at,
                    })),
                })
            })
            .collect();
        outln!("{:#}", json!({ "models": models }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = models
        .iter()
        .map(|m| {
            let run = running.iter().find(|r| r.is_model(&m.name));
            vec![
                m.name.clone(),
                if m.size == 0 {
                    String::new()
                } else {
                    bytes(m.size)
                },
                run.map_or_else(String::new, |r| r.processor().to_string()),
                run.and_then(|r| r.context_length)
                    .map_or_else(String::new, |c| c.to_string()),
                m.modified_at.get(..10).unwrap_or_default().to_owned(),
            ]
        })
        .collect();
    outln!(
        "{}",
        table(&["NAME", "SIZE", "PROCESSOR", "CONTEXT", "MODIFIED"], &rows)
    )?;
    Ok(ExitCode::SUCCESS)
}
