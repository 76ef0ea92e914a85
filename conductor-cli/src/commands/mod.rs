//! One module per command.

pub mod ask;
pub mod bench;
pub mod chat;
pub mod complete;
pub mod config;
pub mod conversation;
pub mod doctor;
pub mod gpu;
pub mod models;
pub mod personality;
pub mod ps;
pub mod pull;
pub mod sessions;
pub mod show;
pub mod stop;

use conductor_core::LoadedConfig;

use crate::cli::GlobalArgs;
use crate::exit::Failure;

/// Loads the configuration with the global flags on top.
pub fn load_config(global: &GlobalArgs) -> Result<LoadedConfig, Failure> {
    let sources = global.sources()?;
    let config = LoadedConfig::load(sources)?;
    crate::output::set_backend(config.settings.backend);
    Ok(config)
}
