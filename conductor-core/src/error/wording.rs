//! Errors worded after the kind of server: [`Error::message_for`] and [`Error::hint_for`].
//!
//! The variants' `Display` and [`Error::hint`] speak of Ollama, the default backend. Against an
//! OpenAI-compatible server (vLLM, llama-server, ...) those words would send people to the wrong
//! program, so a frontend that knows the [`BackendKind`] asks for these instead.

use crate::backend::BackendKind;
use crate::duration::humanize;

use super::{Credentials, Error, TimeoutPhase};

impl Error {
    /// The one-line message, naming the server after `kind`: for [`BackendKind::Ollama`] the
    /// same as `Display`; for an OpenAI-compatible server "the server" wherever `Display` says
    /// "Ollama".
    #[must_use]
    pub fn message_for(&self, kind: BackendKind) -> String {
        if kind == BackendKind::Ollama {
            return self.to_string();
        }
        match self {
            Self::Unreachable { host, reason } => {
                format!("cannot reach the server at {host} ({reason})")
            }
            Self::Http { status, message } => {
                format!("the server answered HTTP {status}: {message}")
            }
            Self::Busy {
                status,
                attempts,
                message,
            } => format!("the server is busy (HTTP {status}) after {attempts} attempts: {message}"),
            Self::Server { message } => {
                format!("the server reported an error during the answer: {message}")
            }
            Self::Protocol { reason, line } => {
                format!("malformed response from the server: {reason} (line: {line})")
            }
            Self::Truncated => {
                "the connection to the server ended before the answer was complete".to_owned()
            }
            Self::EmptyResponse { endpoint } => {
                format!("the server answered {endpoint} with an empty body (no answer at all)")
            }
            Self::Unauthorized {
                host,
                credentials,
                message,
            } => {
                let what = match credentials {
                    Credentials::None => "wants credentials",
                    Credentials::Token => "rejected the token",
                    Credentials::Password => "rejected the user name and password",
                };
                let what = format!("the server at {host} {what} (HTTP 401)");
                if message.is_empty() {
                    what
                } else {
                    format!("{what}: {message}")
                }
            }
            Self::ConnectionLost { reason } => {
                format!("the connection to the server broke: {reason}")
            }
            Self::Timeout {
                endpoint,
                phase: TimeoutPhase::Connect,
                after,
            } => format!(
                "could not connect to the server within {} ({endpoint})",
                humanize(*after)
            ),
            Self::Timeout {
                endpoint,
                phase,
                after,
            } => format!(
                "no data from the server for {} while {phase} ({endpoint})",
                humanize(*after)
            ),
            Self::Incomplete { partial, source } => format!(
                "{} (after {} characters of the answer)",
                source.message_for(kind),
                partial.chars().count()
            ),
            other => other.to_string(),
        }
    }

    /// What the user can do, worded for `kind`: for [`BackendKind::Ollama`] the same as
    /// [`Error::hint`]; for an OpenAI-compatible server no advice that only Ollama understands
    /// (`ollama serve`, `ollama pull`, `OLLAMA_MAX_QUEUE`, Ollama's Host check or server log).
    #[must_use]
    pub fn hint_for(&self, kind: BackendKind) -> Option<String> {
        if kind == BackendKind::Ollama {
            return self.hint();
        }
        match self {
            Self::Unreachable { reason, .. }
                if !reason.contains("certificate")
                    && !reason.starts_with(super::NOT_TLS_REASON) =>
            {
                Some(
                    "start the server (vLLM, llama-server, ...), or point OLLAMA_HOST (or \
                     `ollama.host` in conductor.toml) at its base URL, e.g. http://host:8000/v1"
                        .to_owned(),
                )
            }
            Self::ModelNotFound { model } => Some(format!(
                "the server does not serve '{model}': list what it serves with `conductor models` \
                 (the name as in /v1/models), or start the server with that model"
            )),
            Self::Http { status: 403, .. } => Some(
                "the server (or a proxy in front of it) refused the request: check its access \
                 rules and the address"
                    .to_owned(),
            ),
            Self::Http {
                status: 500..=599, ..
            }
            | Self::Server { .. } => {
                Some("the server reported an internal error; see its log and try again".to_owned())
            }
            Self::Busy { .. } => Some(
                "the server's queue is full; wait and retry, or give it more capacity (e.g. \
                 vLLM's --max-num-seqs, llama-server's --parallel)"
                    .to_owned(),
            ),
            Self::Timeout {
                phase: TimeoutPhase::Response | TimeoutPhase::Body,
                ..
            } => Some(
                "the server accepted the connection but did not answer: it may be hung, or \
                 something else listens there; raise `ollama.idle_timeout` if it is just slow"
                    .to_owned(),
            ),
            Self::Incomplete { source, .. } => source.hint_for(kind),
            Self::Unsupported { .. } => Some(
                "this needs a backend that manages its models: use --backend ollama".to_owned(),
            ),
            other => other.hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn openai(err: &Error) -> (String, String) {
        (
            err.message_for(BackendKind::OpenAi),
            err.hint_for(BackendKind::OpenAi).unwrap_or_default(),
        )
    }

    #[test]
    fn ollama_wording_is_unchanged() {
        let err = Error::Unreachable {
            host: "http://h:1".into(),
            reason: "connection refused".into(),
        };
        assert_eq!(err.message_for(BackendKind::Ollama), err.to_string());
        assert_eq!(err.hint_for(BackendKind::Ollama), err.hint());
        assert!(err.to_string().contains("Ollama"));
    }

    #[test]
    fn openai_wording_never_names_ollama_programs() {
        let errors = [
            Error::Unreachable {
                host: "http://h:8000/v1".into(),
                reason: "connection refused".into(),
            },
            Error::ModelNotFound { model: "m".into() },
            Error::Busy {
                status: 503,
                attempts: 4,
                message: "overloaded".into(),
            },
            Error::Unauthorized {
                host: "http://h:8000/v1".into(),
                credentials: Credentials::None,
                message: String::new(),
            },
            Error::Http {
                status: 500,
                message: "boom".into(),
            },
            Error::Incomplete {
                partial: "ab".into(),
                source: Box::new(Error::Truncated),
            },
            Error::Timeout {
                endpoint: "/chat/completions".into(),
                phase: TimeoutPhase::Stream,
                after: std::time::Duration::from_secs(3),
            },
        ];
        for err in &errors {
            let (message, hint) = openai(err);
            for word in ["Ollama", "ollama serve", "ollama pull", "OLLAMA_MAX_QUEUE"] {
                assert!(!message.contains(word), "{message}");
                assert!(!hint.contains(word), "{hint}");
            }
        }
        let (message, _) = openai(&errors[0]);
        assert_eq!(
            message,
            "cannot reach the server at http://h:8000/v1 (connection refused)"
        );
        assert!(
            openai(&errors[3])
                .0
                .starts_with("the server at http://h:8000/v1 wants")
        );
    }
}
