//! The tests of the chat UI, in one binary: the app state driven by scripted events, the
//! worker and the poller against the Ollama stand-in, session files on disk, snapshots of the
//! screen (`TestBackend` + insta), and an end-to-end run of the binary in tmux.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs
)]

mod app_state;
mod common;
mod sessions;
mod snapshots;
mod tmux;
mod worker;
