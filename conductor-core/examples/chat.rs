//! A three-turn conversation that switches personality halfway, embedding conductor-core in a
//! few lines: `cargo run -p conductor-core --example chat`.

#![allow(clippy::print_stdout)]

use std::sync::Arc;

use conductor_core::{Conductor, OllamaBackend, OllamaHost, PersonalityCatalog, RequestDefaults};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Built by hand instead of from the configuration, to show the parts.
    let backend = OllamaBackend::builder(OllamaHost::default()).build()?;
    let personality = PersonalityCatalog::builtin().load("yollayah")?;
    let conductor = Conductor::new(
        Arc::new(backend),
        personality,
        RequestDefaults::for_model("llama3.2:3b"),
    );

    let mut chat = conductor.chat();
    println!(
        "> {}",
        chat.send_collect("Hi! Who are you, in one sentence?")
            .await?
            .content
    );
    chat.switch_personality("forge")?; // the conversation stays; the system message changes
    println!(
        "> {}",
        chat.send_collect("Now you: how do I reverse a Vec in Rust?")
            .await?
            .content
    );
    println!("({} messages in the history)", chat.history().len());
    Ok(())
}
