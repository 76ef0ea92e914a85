//! Typed errors of conductor-core.
//!
//! Every error carries the context a person needs (the host, the model, the file and line) and,
//! through [`Error::hint`], what to do about it. Frontends render an error once, at the edge.
//!
//! The one import of another module, [`Diagnosis`], is the payload of [`Error::NotResident`]. The
//! guard in [`gpu`](crate::gpu) returns these errors, so the two modules name each other, but
//! not in a circle of files: `gpu::diagnose`, where `Diagnosis` lives, imports nothing of this
//! module.

use std::fmt;
use std::time::Duration;

use crate::duration::humanize;
use crate::gpu::Diagnosis;

mod file;
mod wording;

pub use file::{
    ConfigError, FileLocation, FileRefusal, PersonalityError, ReadProblem, not_regular,
    read_small_bytes, read_small_file,
};

/// The result type of conductor-core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in conductor-core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Ollama could not be reached at all (connection refused, unknown host, TLS failure).
    #[error("cannot reach Ollama at {host} ({reason})")]
    Unreachable {
        /// The base URL that was tried.
        host: String,
        /// The root cause in a few words, e.g. "connection refused".
        reason: String,
    },

    /// The model is not present on the Ollama server (HTTP 404 `model 'x' not found`).
    #[error("model '{model}' not found on the server")]
    ModelNotFound {
        /// The model name as requested.
        model: String,
    },

    /// Ollama answered with an HTTP error status.
    #[error("Ollama answered HTTP {status}: {message}")]
    Http {
        /// The HTTP status code.
        status: u16,
        /// Ollama's own error message (from its `{"error": ...}` body), or the body text.
        message: String,
    },

    /// Ollama stayed busy (HTTP 429 or 503) through every retry.
    #[error("Ollama is busy (HTTP {status}) after {attempts} attempts: {message}")]
    Busy {
        /// The last HTTP status (429 or 503).
        status: u16,
        /// How many requests were sent.
        attempts: u32,
        /// Ollama's last error message.
        message: String,
    },

    /// Ollama sent an `{"error": ...}` line inside a successful (HTTP 200) stream.
    #[error("Ollama reported an error during the answer: {message}")]
    Server {
        /// Ollama's message, verbatim.
        message: String,
    },

    /// A response line was not the JSON Ollama sends.
    #[error("malformed response from Ollama: {reason} (line: {line})")]
    Protocol {
        /// What was wrong with it.
        reason: String,
        /// The offending line, shortened for display.
        line: String,
    },

    /// The connection ended before Ollama sent its final (`done: true`) line.
    #[error("the connection to Ollama ended before the answer was complete")]
    Truncated,

    /// The server answered HTTP 200 with no line at all: no answer, not an answer cut short.
    #[error("Ollama answered {endpoint} with an empty body (no answer at all)")]
    EmptyResponse {
        /// The API path, e.g. `/api/chat`.
        endpoint: String,
    },

    /// The server (or a proxy in front of it) refused the request for want of valid
    /// credentials (HTTP 401).
    #[error("{}", unauthorized_message(host, *credentials, message))]
    Unauthorized {
        /// The base URL, without its password.
        host: String,
        /// What this request carried: the frontend words the fix after it.
        credentials: Credentials,
        /// The server's message, if it gave one.
        message: String,
    },

    /// The connection broke while a response was being read.
    #[error("the connection to Ollama broke: {reason}")]
    ConnectionLost {
        /// The root cause in a few words.
        reason: String,
    },

    /// Ollama sent nothing for longer than the allowed time.
    #[error("{}", timeout_message(endpoint, *phase, *after))]
    Timeout {
        /// The API path that was waited on, e.g. `/api/ps`.
        endpoint: String,
        /// What was being waited for.
        phase: TimeoutPhase,
        /// The budget that ran out.
        after: Duration,
    },

    /// The answer was cut short; what had arrived is kept in `partial`.
    #[error("{source} (after {} characters of the answer)", partial.chars().count())]
    Incomplete {
        /// The part of the answer that arrived before the failure.
        partial: String,
        /// Why the answer stopped.
        #[source]
        source: Box<Error>,
    },

    /// The model is not (fully) on the GPU and the policy forbids generating.
    #[error("{}", .0.summary())]
    NotResident(Box<Diagnosis>),

    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// A personality could not be found or parsed.
    #[error(transparent)]
    Personality(#[from] PersonalityError),

    /// A request could not be built (e.g. an unusable header value).
    #[error("invalid request: {0}")]
    InvalidRequest(String),

    /// The backend lacks a capability the operation needs (e.g. a chat-only backend asked to
    /// list its models).
    #[error("the backend at {endpoint} does not offer {capability}")]
    Unsupported {
        /// What was needed, e.g. "model management".
        capability: &'static str,
        /// The backend's endpoint, as it names itself.
        endpoint: String,
    },
}

impl Error {
    /// What the user can do about this error, in one sentence; `None` when there is nothing to add.
    #[must_use]
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Unreachable { host, reason } if reason.starts_with(NOT_TLS_REASON) => {
                let plain = host.strip_prefix("https://").unwrap_or(host);
                // The shown host may carry `user:***@`; the proposal must not.
                let plain = plain.rsplit_once('@').map_or(plain, |(_, rest)| rest);
                Some(format!(
                    "the server may speak plain HTTP: use http://{plain} (or put a TLS proxy in \
                     front of it)"
                ))
            }
            Self::Unreachable { reason, .. } if reason.contains("certificate") => Some(
                "trust the server's certificate authority with `ollama.ca_cert` in the config"
                    .to_owned(),
            ),
            Self::Unreachable { .. } => Some(
                "start it with `ollama serve` (or the Ollama app), or point OLLAMA_HOST (or \
                 `ollama.host` in conductor.toml) at the server"
                    .to_owned(),
            ),
            Self::Unauthorized { credentials, .. } => Some(
                match credentials {
                    Credentials::Token => {
                        "the server rejected the token in CONDUCTOR_OLLAMA_TOKEN / `ollama.token`: \
                         check it, or ask for a new one"
                    }
                    Credentials::Password => {
                        "the server rejected the user name and password in the address \
                         (OLLAMA_HOST / `ollama.host`): check them"
                    }
                    Credentials::None => {
                        "the server wants a token: set CONDUCTOR_OLLAMA_TOKEN or `ollama.token` \
                         in the config"
                    }
                }
                .to_owned(),
            ),
            Self::EmptyResponse { .. } => Some(
                "the server (or a proxy in front of it) closed the answer before writing \
                 anything; try again, and check its log or the proxy's"
                    .to_owned(),
            ),
            Self::ModelNotFound { model } => {
                Some(format!("download it with `ollama pull {model}`"))
            }
            Self::Http { status: 403, .. } => Some(
                "Ollama refuses requests whose Host header it does not consider local; set \
                 OLLAMA_ORIGINS/OLLAMA_HOST on the server, or connect through its own address"
                    .to_owned(),
            ),
            Self::Http { status: 401, .. } => Some(
                "the server wants a token: set CONDUCTOR_OLLAMA_TOKEN or `ollama.token` in the \
                 config"
                    .to_owned(),
            ),
            Self::Http {
                status: 500..=599,
                message,
            }
            | Self::Server { message } => Some(server_hint(message)),
            Self::Busy { .. } => Some(
                "Ollama's queue is full; wait and retry, or raise OLLAMA_MAX_QUEUE / \
                 OLLAMA_NUM_PARALLEL on the server"
                    .to_owned(),
            ),
            Self::Truncated | Self::ConnectionLost { .. } => Some(
                "the server stopped mid-answer (crash, restart or proxy timeout); the partial \
                 answer was kept, try again"
                    .to_owned(),
            ),
            Self::Timeout {
                phase: TimeoutPhase::Connect,
                ..
            } => Some(
                "nothing accepted the connection in time: check the address and any firewall, or \
                 raise `ollama.connect_timeout` for a slow network"
                    .to_owned(),
            ),
            Self::Timeout {
                phase: TimeoutPhase::Response | TimeoutPhase::Body,
                ..
            } => Some(
                "the server accepted the connection but did not answer: it may be hung, or \
                 something other than Ollama listens there; raise `ollama.idle_timeout` if it is \
                 just slow"
                    .to_owned(),
            ),
            Self::Timeout {
                phase: TimeoutPhase::Load,
                ..
            } => Some(
                "the model is still loading or the server is stuck; raise `ollama.load_timeout` \
                 for very large models"
                    .to_owned(),
            ),
            Self::Timeout { .. } => Some(
                "the server stalled; raise `ollama.idle_timeout` if it is just slow".to_owned(),
            ),
            Self::Incomplete { source, .. } => source.hint(),
            Self::NotResident(diagnosis) => Some(diagnosis.fix()),
            Self::Config(ConfigError::Refused { .. }) => {
                Some("point CONDUCTOR_CONFIG at a regular conductor.toml of a few KiB".to_owned())
            }
            Self::Config(_) => Some("fix the configuration value named above".to_owned()),
            Self::Personality(err) => err.hint(),
            Self::Unsupported { .. } => {
                Some("this needs a backend that manages its models, such as Ollama".to_owned())
            }
            Self::Http { .. } | Self::Protocol { .. } | Self::InvalidRequest(_) => None,
        }
    }

    /// True when Ollama's runner died loading the model because GPU memory ran out: HTTP 500
    /// (or an error line) saying `CUDA error: the resource allocation failed`, `out of memory`,
    /// or a failed GPU allocation. Ollama has no status or field for this, only these words.
    #[must_use]
    pub fn is_gpu_memory_failure(&self) -> bool {
        let message = match self.root() {
            Self::Http {
                status: 500,
                message,
            }
            | Self::Server { message } => message.to_ascii_lowercase(),
            _ => return false,
        };
        [
            "out of memory",
            "resource allocation failed",
            "cudamalloc failed",
            "failed to allocate",
            "unable to allocate",
            "insufficient memory",
        ]
        .iter()
        .any(|words| message.contains(words))
    }

    /// The partial answer carried by [`Error::Incomplete`], if any.
    #[must_use]
    pub fn partial_answer(&self) -> Option<&str> {
        match self {
            Self::Incomplete { partial, .. } => Some(partial),
            _ => None,
        }
    }

    /// `err` with the partial answer that arrived before it, as [`Error::Incomplete`]; `err`
    /// itself when nothing had arrived or it already carries a partial answer. For frontends
    /// that stream an answer themselves and meet an error mid-way.
    #[must_use]
    pub fn incomplete(partial: impl Into<String>, err: Error) -> Error {
        let partial = partial.into();
        if partial.is_empty() || matches!(err, Self::Incomplete { .. }) {
            err
        } else {
            Self::Incomplete {
                partial,
                source: Box::new(err),
            }
        }
    }

    /// The underlying cause when this is [`Error::Incomplete`], else `self`.
    #[must_use]
    pub fn root(&self) -> &Error {
        match self {
            Self::Incomplete { source, .. } => source.root(),
            other => other,
        }
    }
}

/// What a [`Error::Timeout`] was waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutPhase {
    /// Establishing the connection (TCP, and TLS for `https://`).
    Connect,
    /// The response head of a request that loads no model (`/api/ps`, `/api/tags`, ...).
    Response,
    /// The first byte of a response: the model may be loading, so this budget is long.
    Load,
    /// The rest of a response that is not streamed.
    Body,
    /// The next byte of a streaming response.
    Stream,
}

impl fmt::Display for TimeoutPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connecting",
            Self::Response => "waiting for a response",
            Self::Load => "waiting for the model to load and answer",
            Self::Body => "reading the response",
            Self::Stream => "streaming the answer",
        })
    }
}

fn timeout_message(endpoint: &str, phase: TimeoutPhase, after: Duration) -> String {
    match phase {
        TimeoutPhase::Connect => {
            format!(
                "could not connect to Ollama within {} ({endpoint})",
                humanize(after)
            )
        }
        _ => format!(
            "no data from Ollama for {} while {phase} ({endpoint})",
            humanize(after)
        ),
    }
}

/// The credentials a request carried, for telling "wants a token" from "token rejected".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Credentials {
    /// None at all.
    None,
    /// A bearer token (CONDUCTOR_OLLAMA_TOKEN or `ollama.token`).
    Token,
    /// A user name and password from the address (`http://user:pass@host`), sent as basic auth.
    Password,
}

fn unauthorized_message(host: &str, credentials: Credentials, message: &str) -> String {
    let what = match credentials {
        Credentials::None => format!("the Ollama server at {host} wants credentials (HTTP 401)"),
        Credentials::Token => format!("the Ollama server at {host} rejected the token (HTTP 401)"),
        Credentials::Password => {
            format!("the Ollama server at {host} rejected the user name and password (HTTP 401)")
        }
    };
    if message.is_empty() {
        what
    } else {
        format!("{what}: {message}")
    }
}

/// The start of [`Error::Unreachable`]'s reason when an `https://` address reached a server
/// that does not speak TLS; [`Error::hint`] proposes `http://` for it.
pub(crate) const NOT_TLS_REASON: &str = "TLS handshake failed: the server did not answer in TLS";

/// What to do about an error Ollama reported, from its message.
fn server_hint(message: &str) -> String {
    if message.contains("no such host")
        || message.contains("dial tcp")
        || message.contains("i/o timeout")
    {
        "the Ollama server cannot reach the model registry: check its internet access or proxy \
         (HTTPS_PROXY in the server's environment)"
            .to_owned()
    } else if message.contains("runner") || message.contains("model") {
        "the model runner failed; see the server log (`journalctl -u ollama` or \
         ~/.ollama/logs/server.log) and try again"
            .to_owned()
    } else {
        "Ollama reported an internal error; see its server log and try again".to_owned()
    }
}

#[cfg(test)]
mod tests;
