//! An Ollama stand-in for conductor's tests: a real HTTP/1.1 server on `127.0.0.1:0` that speaks
//! Ollama's protocol with the shapes recorded from a real Ollama 0.24.0 (`tests/fixtures/`, taken
//! from `shared/ollama/`): chunked `application/x-ndjson` streams, the same JSON field order, the
//! same error bodies and status codes, the Host-header guard, model loading, eviction and
//! `/api/ps` residency.
//!
//! Each test scripts it (answers, residency numbers, delays, chunking, faults) and reads back the
//! requests it received. It never needs Ollama or a GPU.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use conductor_tests::{Reply, StandIn, Chunking};
//! let ollama = StandIn::start().await;
//! ollama.push_reply(Reply::tokens(&["Hel", "lo"]).chunking(Chunking::SplitEvery(3)));
//! // ... point the client at ollama.host() ...
//! assert_eq!(ollama.requests_to("/api/chat").len(), 0);
//! # }
//! ```

// A test fixture may panic when the machine cannot give it a loopback socket.
#![allow(clippy::missing_panics_doc, clippy::expect_used)]
mod faults;
mod generate;
mod http;
mod models;
mod openai;
mod routes;
mod state;
mod time;

pub use faults::{Chunking, Fault, Reply, Stats};
pub use http::RecordedRequest;
pub use models::{ModelFixture, Residency};
pub use openai::{
    LLAMA_SERVER_METRICS, OpenAiReply, OpenAiStandIn, VLLM_METRICS, llama_server_props,
};
pub use state::StandIn;
