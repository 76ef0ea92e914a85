//! Saved conversations from the command line: `ask` saves, `ask -c` / `--session` continue,
//! `conductor sessions` lists, shows, exports, renames and removes. Against the Ollama
//! stand-in; sessions written by the library where a test needs fixed times.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs
)]

mod common;

// Beside this file, not in `tests/`, where cargo would build each as a test binary of its own.
#[path = "sessions/chat.rs"]
mod chat;
#[path = "sessions/continuing.rs"]
mod continuing;
#[path = "sessions/managing.rs"]
mod managing;
#[path = "sessions/support.rs"]
mod support;
