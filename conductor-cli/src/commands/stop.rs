//! `conductor stop MODEL`: unload a model now (`keep_alive: 0`), as `ollama stop` does.
//!
//! A model that exists but is not loaded is already where `stop` would put it: that is said on
//! stderr and the exit is 0, so scripts can call `stop` unconditionally. A model the server
//! does not have is exit 5.

use std::process::ExitCode;

use conductor_core::Conductor;

use crate::cli::GlobalArgs;
use crate::commands::load_config;
use crate::exit::Failure;
use crate::output::{self, outln};

/// Runs the command.
pub async fn run(global: &GlobalArgs, model: &str) -> Result<ExitCode, Failure> {
    let config = load_config(global)?;
    let conductor = Conductor::from_settings(&config.settings)?;
    let server = conductor.backend().server()?;
    let running = server.running_models().await?;
    let loaded: Vec<String> = running
        .iter()
        .filter(|m| m.is_model(model))
        .map(|m| m.name.clone())
        .collect();
    if loaded.is_empty() {
        // Not loaded: does it exist at all? (`show` answers 404 for a missing model.)
        server.show_model(model).await?;
        output::warn(&format!(
            "{} is not loaded; nothing to stop",
            conductor_core::text::one_line(model)
        ));
        return Ok(ExitCode::SUCCESS);
    }
    for name in loaded {
        server.unload_model(&name).await?;
        outln!("stopped {}", conductor_core::text::one_line(&name))?;
    }
    Ok(ExitCode::SUCCESS)
}
