//! `conductor stop MODEL`: unload a model now (`keep_alive: 0`), as `ollama stop` does.
//!
//! A model that exists but is not loaded is already where `stop` would put it: that is said on
//! stderr and the exit is 0, so scripts can call `stop` unconditionally. A model the server
//! does not have is exit 5.
//!
//! On a pool of several hosts the model is unloaded where a host reports it loaded, and each
//! host is named (`stopped m on HOST`); a host that does not answer is a warning, not a
//! failure, as long as one host answers. Exit 5 only when no host has the model at all.

use std::process::ExitCode;

use conductor_core::backend::ModelServer;
use conductor_core::backend::pool::{HostUnload, PoolBackend, loaded_names};
use conductor_core::text::one_line;
use conductor_core::{Backend, Conductor, Error};

use crate::cli::GlobalArgs;
use crate::commands::load_config;
use crate::exit::Failure;
use crate::output::{self, outln};

/// Runs the command.
pub async fn run(global: &GlobalArgs, model: &str) -> Result<ExitCode, Failure> {
    let config = load_config(global)?;
    let conductor = Conductor::from_settings(&config.settings)?;
    let server = conductor
        .backend()
        .server()
        .map_err(Failure::model_management("stop"))?;
    if let Some(pool) = conductor.backend().pool().filter(|p| p.len() > 1) {
        return stop_on_pool(pool, model).await;
    }
    // A model stopped a moment ago is still listed, its time up, while Ollama unloads it.
    let now = jiff::Timestamp::now();
    let (stopping, running): (Vec<_>, Vec<_>) = server
        .running_models()
        .await?
        .into_iter()
        .partition(|r| super::ps::is_stopping(r.expires_at.as_deref(), now));
    let loaded = loaded_names(&running, model);
    if loaded.is_empty() && !loaded_names(&stopping, model).is_empty() {
        output::warn(&format!("{} is already stopping", one_line(model)));
        return Ok(ExitCode::SUCCESS);
    }
    if loaded.is_empty() {
        // Not loaded: does it exist at all? (`show` answers 404 for a missing model.)
        server.show_model(model).await?;
        output::warn(&format!(
            "{} is not loaded; nothing to stop",
            one_line(model)
        ));
        return Ok(ExitCode::SUCCESS);
    }
    for name in loaded {
        server.unload_model(&name).await?;
        outln!("stopped {}", one_line(&name))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `stop` on several hosts: unload where loaded, one line per host; see the module docs.
async fn stop_on_pool(pool: &PoolBackend, model: &str) -> Result<ExitCode, Failure> {
    let mut stopped = 0_usize;
    let mut unload_failure = None;
    let mut unreachable = None;
    let mut not_loaded = Vec::new();
    for (host, outcome) in pool.unload_by_host(model).await {
        let shown = one_line(&host.endpoint()).into_owned();
        match outcome {
            HostUnload::Unreachable(err) => {
                output::warn(&format!(
                    "host {shown} did not answer; {} may still be loaded there: {}",
                    one_line(model),
                    output::message_text(&err)
                ));
                unreachable.get_or_insert(err);
            }
            HostUnload::Tried(names) if names.is_empty() => not_loaded.push(host),
            HostUnload::Tried(names) => {
                for (name, result) in names {
                    match result {
                        Ok(()) => {
                            stopped += 1;
                            outln!("stopped {} on host {shown}", one_line(&name))?;
                        }
                        Err(err) => {
                            output::warn(&format!(
                                "cannot stop {} on host {shown}: {}",
                                one_line(&name),
                                output::message_text(&err)
                            ));
                            unload_failure.get_or_insert(err);
                        }
                    }
                }
            }
        }
    }
    if let Some(err) = unload_failure {
        return Err(err.into());
    }
    if stopped > 0 {
        return Ok(ExitCode::SUCCESS);
    }
    if not_loaded.is_empty() {
        // No host answered.
        return Err(unreachable.map_or_else(
            || Failure::other("the pool has no host to ask"),
            Failure::from,
        ));
    }
    // Loaded nowhere that answered: does any of those hosts have it at all?
    let mut missing = None;
    for host in &not_loaded {
        match host.backend().show_model(model).await {
            Ok(_) => {
                output::warn(&format!(
                    "{} is not loaded on any host; nothing to stop",
                    one_line(model)
                ));
                return Ok(ExitCode::SUCCESS);
            }
            Err(err @ Error::ModelNotFound { .. }) => {
                missing.get_or_insert(err);
            }
            Err(err) => return Err(err.into()),
        }
    }
    Err(missing.map_or_else(
        || Failure::other("the pool has no host to ask"),
        Failure::from,
    ))
}
