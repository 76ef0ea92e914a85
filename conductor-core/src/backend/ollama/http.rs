//! Every request's one path to Ollama: retries for a busy server, timeouts per phase, the
//! credentials, and HTTP failures turned into [`Error`]s that name the endpoint.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tracing::{debug, warn};

use super::{OllamaBackend, Wait};
use crate::error::{Error, NOT_TLS_REASON, Result, TimeoutPhase};
use crate::ndjson::excerpt;

impl OllamaBackend {
    pub(super) fn url(&self, path: &str) -> String {
        self.inner.host.join(path)
    }

    /// Sends a request to `endpoint` (an API path such as `/api/ps`), retrying 429/503 with
    /// backoff, and turns HTTP errors into [`Error`]s. Connecting is bounded by the connect
    /// timeout, the wait for the response head by the load or idle timeout (`wait`).
    pub(in crate::backend) async fn send(
        &self,
        endpoint: &'static str,
        wait: Wait,
        model: Option<&str>,
        build: impl Fn(&reqwest::Client, String) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response> {
        let retry = self.inner.retry;
        let url = self.url(endpoint);
        let (phase, budget) = match wait {
            Wait::Load => (TimeoutPhase::Load, self.inner.timeouts.load),
            Wait::Response => (TimeoutPhase::Response, self.inner.timeouts.idle),
        };
        // The connect timeout runs inside reqwest; the head budget starts after it.
        let budget = budget.saturating_add(self.inner.timeouts.connect);
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let started = Instant::now();
            let mut request = build(&self.inner.http, url.clone());
            if let Some((user, password)) = self.inner.host.basic_auth() {
                // reqwest marks this header sensitive; the URL itself never holds the password.
                request = request.basic_auth(user, password);
            }
            let sent = tokio::time::timeout(budget, request.send()).await;
            let response = match sent {
                Err(_) => {
                    return Err(Error::Timeout {
                        endpoint: endpoint.to_owned(),
                        phase,
                        after: budget.saturating_sub(self.inner.timeouts.connect),
                    });
                }
                Ok(Err(err)) => return Err(self.transport_error(&err, endpoint)),
                Ok(Ok(response)) => response,
            };
            let status = response.status().as_u16();
            debug!(
                endpoint,
                status,
                attempt,
                elapsed_ms = elapsed_ms(started),
                "ollama response head"
            );
            if response.status().is_success() {
                return Ok(response);
            }
            let retry_after = retry_after(&response);
            let message = error_message(response).await;
            if matches!(status, 429 | 503) {
                if attempt <= retry.max_retries {
                    let delay = retry_after.unwrap_or_else(|| retry.delay(attempt - 1));
                    warn!(status, attempt, delay_ms = delay.as_millis() as u64, %message, "ollama busy; retrying");
                    tokio::time::sleep(delay).await;
                    continue;
                }
                return Err(Error::Busy {
                    status,
                    attempts: attempt,
                    message,
                });
            }
            if status == 401 {
                return Err(Error::Unauthorized {
                    host: self.inner.host.to_string(),
                    credentials: self.inner.credentials,
                    message,
                });
            }
            return Err(http_error(status, message, model));
        }
    }

    pub(super) fn transport_error(&self, err: &reqwest::Error, endpoint: &str) -> Error {
        if err.is_timeout() {
            // reqwest's own timer: only the connect timeout is set on the client.
            return Error::Timeout {
                endpoint: endpoint.to_owned(),
                phase: TimeoutPhase::Connect,
                after: self.inner.timeouts.connect,
            };
        }
        let reason = root_cause(err);
        if err.is_connect() || err.is_builder() {
            let reason = if self.inner.host.url().scheme() == "https" && speaks_no_tls(err) {
                format!("{NOT_TLS_REASON} ({reason})")
            } else {
                reason
            };
            Error::Unreachable {
                host: self.inner.host.to_string(),
                reason,
            }
        } else {
            Error::ConnectionLost { reason }
        }
    }

    /// Reads a whole (small) JSON body; waiting longer than the idle timeout for it is an error.
    pub(in crate::backend) async fn read_json<T: for<'de> Deserialize<'de>>(
        &self,
        response: reqwest::Response,
        endpoint: &'static str,
    ) -> Result<T> {
        let body = tokio::time::timeout(self.inner.timeouts.idle, response.bytes())
            .await
            .map_err(|_| Error::Timeout {
                endpoint: endpoint.to_owned(),
                phase: TimeoutPhase::Body,
                after: self.inner.timeouts.idle,
            })?
            .map_err(|err| Error::ConnectionLost {
                reason: root_cause(&err),
            })?;
        if body.trim_ascii().is_empty() {
            return Err(Error::EmptyResponse {
                endpoint: endpoint.to_owned(),
            });
        }
        serde_json::from_slice(&body).map_err(|err| Error::Protocol {
            reason: err.to_string(),
            line: excerpt(&body),
        })
    }
}

/// True when a TLS handshake failed because the server answered in something other than TLS
/// (a plain-HTTP server answers a ClientHello with `HTTP/1.1 400`, which rustls reads as a
/// record of an unknown type). Told by words: rustls is not a direct dependency.
fn speaks_no_tls(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(err) = current {
        let text = err.to_string();
        if text.contains("InvalidContentType") || text.contains("UnknownProtocolVersion") {
            return true;
        }
        current = err.source();
    }
    false
}

/// An error body: Ollama's `{"error": "..."}`, the OpenAI shape `{"error": {"message": ...}}`
/// (also Ollama's `/v1`), vLLM's `{"message": ...}` or a web framework's `{"detail": ...}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum ErrorBody<'a> {
    Plain {
        #[serde(borrow)]
        error: Cow<'a, str>,
    },
    OpenAi {
        error: OpenAiError<'a>,
    },
    Message {
        #[serde(borrow)]
        message: Cow<'a, str>,
    },
    Detail {
        #[serde(borrow)]
        detail: Cow<'a, str>,
    },
}

#[derive(Deserialize)]
struct OpenAiError<'a> {
    #[serde(borrow)]
    message: Cow<'a, str>,
}

impl ErrorBody<'_> {
    fn into_message(self) -> String {
        match self {
            Self::Plain { error: text }
            | Self::OpenAi {
                error: OpenAiError { message: text },
            }
            | Self::Message { message: text }
            | Self::Detail { detail: text } => text.into_owned(),
        }
    }
}

/// The missing model a 404 names. Decided by the status and the route, not by one wording:
/// Ollama 0.24 says `model 'x' not found` from most handlers and
/// `model "x" not found, try pulling it first` from the scheduler. A 404 from a route about a
/// model is a missing model whatever its words; a router's `404 page not found` (an unknown
/// path: an old server or a proxy) is not.
fn missing_model(status: u16, message: &str, model: Option<&str>) -> Option<String> {
    // `404 page not found` is Go's router, `Not Found` a Python one (FastAPI in vLLM).
    if status != 404
        || message.contains("page not found")
        || message.eq_ignore_ascii_case("not found")
    {
        return None;
    }
    let quoted = message.strip_prefix("model ").and_then(|rest| {
        let quote = rest.chars().next().filter(|c| *c == '\'' || *c == '"')?;
        let inner = &rest[quote.len_utf8()..];
        inner.find(quote).map(|end| inner[..end].to_owned())
    });
    quoted.or_else(|| model.map(str::to_owned))
}

fn http_error(status: u16, message: String, model: Option<&str>) -> Error {
    if let Some(model) = missing_model(status, &message, model) {
        return Error::ModelNotFound { model };
    }
    let message = if message.is_empty() {
        match status {
            403 => "forbidden (empty body)".to_owned(),
            _ => "(no message)".to_owned(),
        }
    } else {
        message
    };
    Error::Http { status, message }
}

/// Ollama's message from an error response: the `error` field of a JSON body, else the text.
async fn error_message(response: reqwest::Response) -> String {
    let body = match tokio::time::timeout(Duration::from_secs(10), response.bytes()).await {
        Ok(Ok(body)) => body,
        _ => return String::new(),
    };
    serde_json::from_slice::<ErrorBody<'_>>(&body)
        .map_or_else(|_| excerpt(body.trim_ascii()), ErrorBody::into_message)
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?;
    let secs: u64 = value.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs.min(30)))
}

fn root_cause(err: &reqwest::Error) -> String {
    chain_root(err)
}

/// The innermost cause of an error, in a few words ("connection refused").
pub(in crate::backend) fn chain_root(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        if let Some(io) = next.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind;
            let words = match io.kind() {
                ErrorKind::ConnectionRefused => Some("connection refused"),
                ErrorKind::ConnectionReset => Some("connection reset by the server"),
                ErrorKind::ConnectionAborted => Some("connection aborted"),
                ErrorKind::TimedOut => Some("timed out"),
                ErrorKind::UnexpectedEof => Some("the server closed the connection"),
                _ => None,
            };
            if let Some(words) = words {
                return words.to_owned();
            }
        }
        current = next;
    }
    let text = current.to_string();
    if text.contains("failed to lookup address") || text.contains("Name or service not known") {
        return format!("cannot resolve the host name: {text}");
    }
    text
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The next piece of a streamed body within the idle budget: a chunk, `None` at the end of the
/// body, or the error: a stall (named by `endpoint`) or a broken connection. Shared by the
/// NDJSON (Ollama) and SSE (OpenAI-compatible) readers.
pub(in crate::backend) async fn next_chunk<S, E>(
    body: &mut S,
    idle: Duration,
    endpoint: &str,
) -> Result<Option<bytes::Bytes>>
where
    S: futures::Stream<Item = std::result::Result<bytes::Bytes, E>> + Unpin,
    E: std::error::Error + 'static,
{
    use futures::StreamExt;
    match tokio::time::timeout(idle, body.next()).await {
        Err(_) => Err(Error::Timeout {
            endpoint: endpoint.to_owned(),
            phase: TimeoutPhase::Stream,
            after: idle,
        }),
        Ok(Some(Ok(chunk))) => Ok(Some(chunk)),
        Ok(Some(Err(err))) => Err(Error::ConnectionLost {
            reason: chain_root(&err),
        }),
        Ok(None) => Ok(None),
    }
}

/// Reads what is left of a body after its final event, so the connection returns to the pool.
/// Bounded: a server that keeps the body open gets the connection dropped after 250 ms.
pub(in crate::backend) async fn drain<S, E>(body: &mut S)
where
    S: futures::Stream<Item = std::result::Result<bytes::Bytes, E>> + Unpin,
{
    use futures::StreamExt;
    let rest = async { while let Some(Ok(_)) = body.next().await {} };
    let _ = tokio::time::timeout(Duration::from_millis(250), rest).await;
}
