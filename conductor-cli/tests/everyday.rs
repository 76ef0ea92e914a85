//! Everyday use: the flags people bring from llm, aichat and ollama (issue 13), end to end
//! against the Ollama stand-in.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs
)]

mod common;

// Beside this file, not in `tests/`, where cargo would build each as a test binary of its own.
#[path = "everyday/ask_inputs.rs"]
mod ask_inputs;
#[path = "everyday/completions.rs"]
mod completions;
#[path = "everyday/config_init.rs"]
mod config_init;
#[path = "everyday/flags.rs"]
mod flags;
#[path = "everyday/ollama_verbs.rs"]
mod ollama_verbs;
#[path = "everyday/support.rs"]
mod support;
