//! Request routing as Ollama 0.24.0 does it: the endpoints, their status codes and error bodies.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::generate::generate;
use crate::http::RecordedRequest;
use crate::models::full_name;
use crate::state::{Shared, State};
use crate::{Fault, ModelFixture, Reply, time};

/// What the router decided to send.
pub(crate) enum Response {
    /// A complete body.
    Full {
        status: u16,
        content_type: &'static str,
        body: Vec<u8>,
        extra_headers: Vec<(&'static str, String)>,
    },
    /// Nothing (`None`), or only a head announcing `length` bytes (`Some`), then silence
    /// until the client goes away.
    Silent {
        /// The announced body length, when a head is sent.
        head: Option<usize>,
    },
    /// A chunked NDJSON stream.
    Stream {
        lines: Vec<Vec<u8>>,
        reply: Box<Reply>,
        /// Index of the line after which a fault strikes.
        fault: Option<(usize, Fault)>,
    },
}

impl Response {
    pub(crate) fn json(status: u16, value: &Value) -> Self {
        Self::Full {
            status,
            content_type: "application/json; charset=utf-8",
            body: serde_json::to_vec(value).unwrap_or_default(),
            extra_headers: Vec::new(),
        }
    }

    pub(crate) fn error(status: u16, message: &str) -> Self {
        Self::json(status, &json!({ "error": message }))
    }

    pub(crate) fn text(status: u16, text: &str) -> Self {
        Self::Full {
            status,
            content_type: "text/plain; charset=utf-8",
            body: text.as_bytes().to_vec(),
            extra_headers: Vec::new(),
        }
    }

    pub(crate) fn from_fault(fault: &Fault) -> Option<Self> {
        match fault {
            Fault::Status { status, body, json } => Some(if *json {
                Response::error(*status, body)
            } else {
                Response::text(*status, body)
            }),
            Fault::NoResponse => Some(Response::Silent { head: None }),
            Fault::NoBody => Some(Response::Silent { head: Some(64) }),
            Fault::EmptyBody => Some(Response::Stream {
                lines: Vec::new(),
                reply: Box::new(Reply::tokens(&[])),
                fault: None,
            }),
            _ => None,
        }
    }
}

/// Routes one request, updating the model state, as Ollama 0.24.0 does.
pub(crate) fn route(shared: &Shared, request: &RecordedRequest) -> (Response, Duration) {
    let mut state = shared.state();
    state.requests.push(request.clone());
    let queued_fault = state
        .faults
        .get_mut(&request.path)
        .and_then(VecDeque::pop_front);
    if let Some(response) = queued_fault.as_ref().and_then(Response::from_fault) {
        return (response, Duration::ZERO);
    }
    let method = request.method.as_str();
    let route = |allowed: &'static str| {
        (method != allowed && !(allowed == "GET" && method == "HEAD")).then(|| Response::Full {
            status: 405,
            content_type: "text/plain",
            body: b"405 method not allowed".to_vec(),
            extra_headers: vec![("Allow", allowed.to_owned())],
        })
    };
    let response = match request.path.as_str() {
        "/" => route("GET").unwrap_or_else(|| Response::text(200, "Ollama is running")),
        "/api/version" => route("GET")
            .unwrap_or_else(|| Response::json(200, &json!({ "version": state.version }))),
        "/api/tags" => route("GET").unwrap_or_else(|| tags(&state)),
        "/api/ps" => route("GET").unwrap_or_else(|| ps(&mut state)),
        "/api/show" => route("POST").unwrap_or_else(|| show(&state, request)),
        "/api/chat" | "/api/generate" => {
            let chat = request.path == "/api/chat";
            let overhead = state.request_delay;
            return route("POST").map_or_else(
                || {
                    let (response, delay) = generate(&mut state, request, queued_fault, chat);
                    (response, delay + overhead)
                },
                |r| (r, Duration::ZERO),
            );
        }
        "/api/pull" => route("POST").unwrap_or_else(|| pull(&mut state, request)),
        "/api/create" => {
            route("POST").unwrap_or_else(|| Response::json(200, &json!({ "status": "success" })))
        }
        _ => Response::Full {
            status: 404,
            content_type: "text/plain",
            body: b"404 page not found".to_vec(),
            extra_headers: Vec::new(),
        },
    };
    (response, Duration::ZERO)
}

fn tags(state: &State) -> Response {
    let models: Vec<Value> = state
        .models
        .iter()
        .map(|m| {
            json!({
                "name": m.name, "model": m.name,
                "modified_at": "2026-11-25T16:47:51.330283511Z",
                "size": m.disk_size, "digest": m.digest, "details": m.details(),
            })
        })
        .collect();
    Response::json(200, &json!({ "models": models }))
}

fn ps(state: &mut State) -> Response {
    let now = SystemTime::now();
    state
        .loaded
        .retain(|l| l.expires.is_none_or(|e| e > now) && !l.residency.absent);
    let models: Vec<Value> = state
        .loaded
        .iter()
        .map(|l| {
            let model = state.models.iter().find(|m| m.name == l.name);
            let expires = l.expires.map_or_else(
                || "2319-03-07T16:35:46.005921383Z".to_owned(),
                time::rfc3339,
            );
            json!({
                "name": l.name, "model": l.name, "size": l.residency.size,
                "digest": model.map(|m| m.digest.clone()).unwrap_or_default(),
                "details": model.map(ModelFixture::details).unwrap_or_else(|| json!({})),
                "expires_at": expires, "size_vram": l.residency.size_vram,
                "context_length": l.context_length,
            })
        })
        .collect();
    Response::json(200, &json!({ "models": models }))
}

pub(crate) fn body_model(request: &RecordedRequest) -> Option<String> {
    let body = request.json.as_ref()?;
    body.get("model")
        .or_else(|| body.get("name"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

pub(crate) fn parse_body(request: &RecordedRequest) -> Result<&Value, Response> {
    request.json.as_ref().ok_or_else(|| {
        let message = if request.body.is_empty() || request.body_looks_truncated() {
            "unexpected EOF".to_owned()
        } else {
            "invalid character in JSON body".to_owned()
        };
        Response::error(400, &message)
    })
}

pub(crate) fn find_model<'a>(state: &'a State, name: &str) -> Option<&'a ModelFixture> {
    let full = full_name(name);
    state.models.iter().find(|m| m.name == full)
}

fn show(state: &State, request: &RecordedRequest) -> Response {
    if let Err(response) = parse_body(request) {
        return response;
    }
    let name = body_model(request).unwrap_or_default();
    match find_model(state, &name) {
        Some(model) => Response::json(200, &model.show),
        None => Response::error(404, &format!("model '{name}' not found")),
    }
}

fn pull(state: &mut State, request: &RecordedRequest) -> Response {
    if let Err(response) = parse_body(request) {
        return response;
    }
    let name = body_model(request).unwrap_or_default();
    if state.pull_layers.is_empty() {
        // What a real Ollama without internet access answers (recorded 62_pull_offline).
        let repo = name.split(':').next().unwrap_or_default();
        let tag = name.split(':').nth(1).unwrap_or("latest");
        return Response::error(
            500,
            &format!(
                "pull model manifest: Get \"https://registry.ollama.ai/v2/library/{repo}/manifests/{tag}\": dial tcp: lookup registry.ollama.ai on 10.255.255.53:53: no such host"
            ),
        );
    }
    let mut lines = vec![br#"{"status":"pulling manifest"}"#.to_vec()];
    for (digest, total) in &state.pull_layers {
        for step in 0..=4u64 {
            let completed = total * step / 4;
            lines.push(
                format!(
                    r#"{{"status":"pulling {}","digest":"{digest}","total":{total},"completed":{completed}}}"#,
                    digest.trim_start_matches("sha256:").get(..12).unwrap_or(digest)
                )
                .into_bytes(),
            );
        }
    }
    for status in ["verifying sha256 digest", "writing manifest", "success"] {
        lines.push(format!(r#"{{"status":"{status}"}}"#).into_bytes());
    }
    for line in &mut lines {
        line.push(b'\n');
    }
    // A pull that succeeds leaves the model on the server, listed and loadable, as a real
    // Ollama's does (the stand-in adds it as it answers; with llama3.2:3b's shapes).
    if find_model(state, &name).is_none() {
        state.models.push(ModelFixture::llama_3b(&name));
    }
    Response::Stream {
        lines,
        reply: Box::new(Reply::tokens(&[])),
        fault: None,
    }
}
