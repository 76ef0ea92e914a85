//! Ask one question with the default settings (plus conductor.toml and the environment) and
//! stream the answer: `cargo run -p conductor-core --example ask -- "Why is the sky blue?"`.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write;

use conductor_core::config::ConfigSources;
use conductor_core::{ChatEvent, Conductor, LoadedConfig};
use futures::StreamExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let question = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "Who are you?".to_owned());
    let settings = LoadedConfig::load(ConfigSources::default())?.settings;
    let conductor = Conductor::from_settings(&settings)?;

    let mut answer = conductor.ask(&question).await?;
    while let Some(event) = answer.next().await {
        match event? {
            ChatEvent::Content(text) => {
                print!("{text}");
                std::io::stdout().flush()?;
            }
            ChatEvent::Done(done) => {
                let rate = done.stats.tokens_per_second().unwrap_or_default();
                eprintln!("\n[{:.0} tokens/s]", rate);
            }
            _ => {}
        }
    }
    Ok(())
}
