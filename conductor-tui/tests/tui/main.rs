//! The tests of the chat UI, in one binary: the app state driven by scripted events (the
//! `app_*` modules: keys, commands, failures, sessions; no terminal, no network, the actions the
//! app asks for are checked instead), the worker and the poller against the Ollama stand-in,
//! session files on disk, snapshots of the screen (`TestBackend` + insta). The end-to-end runs
//! in tmux drive `conductor chat`, the one program that opens the UI, and so live with the CLI's
//! tests (`conductor-cli/tests/cli/chat_tui.rs`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs
)]

mod app_commands;
mod app_failures;
mod app_keys;
mod app_sessions;
mod common;
mod copy;
mod editor;
mod highlight;
mod history_search;
mod policy;
mod pull;
mod sessions;
mod snapshots;
mod status_bar;
mod theme;
mod worker;
