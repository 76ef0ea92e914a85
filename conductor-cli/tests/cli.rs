//! The `conductor` binary end to end, against the Ollama stand-in.
//!
//! One test binary, split by theme into the modules beside this file (`cli/`): asking and its
//! output, failures and exit codes, GPU residency, configuration and logs, the other
//! commands, and the chat UI in a real terminal.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs
)]

// Beside this file, not in `tests/`, where cargo would build each as a test binary of its own.
#[path = "cli/ask.rs"]
mod ask;
#[path = "cli/chat_tui.rs"]
mod chat_tui;
mod common;
#[path = "cli/config_and_logs.rs"]
mod config_and_logs;
#[path = "cli/failures.rs"]
mod failures;
#[path = "cli/pull_bench_help.rs"]
mod pull_bench_help;
#[path = "cli/residency.rs"]
mod residency;

use std::path::Path;
use std::process::Command;

use common::{BIN, clean_command};

/// A command with a clean environment, pointed at the Ollama at `host`.
fn command(home: &Path, host: &str) -> Command {
    let mut cmd = clean_command(home);
    cmd.env("OLLAMA_HOST", host);
    cmd
}
