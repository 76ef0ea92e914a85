//! One module per command.

pub mod ask;
pub mod bench;
pub mod chat;
pub mod config;
pub mod doctor;
pub mod gpu;
pub mod models;
pub mod personality;
pub mod pull;

use clap::CommandFactory;
use conductor_core::LoadedConfig;

use crate::cli::{Cli, GlobalArgs};
use crate::exit::Failure;

/// Loads the configuration with the global flags on top.
pub fn load_config(global: &GlobalArgs) -> Result<LoadedConfig, Failure> {
    let sources = global.sources()?;
    Ok(LoadedConfig::load(sources)?)
}

/// `conductor completions SHELL`.
pub fn completions(shell: clap_complete::Shell) {
    clap_complete::generate(
        shell,
        &mut Cli::command(),
        "conductor",
        &mut std::io::stdout(),
    );
}
