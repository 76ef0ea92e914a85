//! conductor-core end to end, against the Ollama stand-in.
//!
//! One test binary, split by theme into the modules beside this file (`core/`): conversations
//! and their streams, then the server and the transport under them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

// Beside this file, not in `tests/`, where cargo would build each as a test binary of its own.
#[path = "core/common.rs"]
mod common;
#[path = "core/conversation.rs"]
mod conversation;
#[path = "core/server.rs"]
mod server;
