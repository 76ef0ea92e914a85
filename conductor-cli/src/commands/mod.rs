//! One module per command.

pub mod ask;
pub mod bench;
pub mod chat;
pub mod config;
pub mod conversation;
pub mod doctor;
pub mod gpu;
pub mod models;
pub mod personality;
pub mod pull;
pub mod sessions;

use clap::CommandFactory;
use conductor_core::LoadedConfig;

use crate::cli::{Cli, GlobalArgs};
use crate::exit::Failure;

/// Loads the configuration with the global flags on top.
pub fn load_config(global: &GlobalArgs) -> Result<LoadedConfig, Failure> {
    let sources = global.sources()?;
    let config = LoadedConfig::load(sources)?;
    crate::output::set_backend(config.settings.backend);
    Ok(config)
}

/// `conductor completions SHELL`. Generated into memory first: clap_complete panics when its
/// writer fails, and stdout may be closed or full.
pub fn completions(shell: clap_complete::Shell) -> Result<std::process::ExitCode, Failure> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "conductor", &mut script);
    crate::output::write_out(format_args!("{}", String::from_utf8_lossy(&script)))?;
    Ok(std::process::ExitCode::SUCCESS)
}
