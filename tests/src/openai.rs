//! An OpenAI-compatible stand-in (`/v1/chat/completions` over SSE, `/v1/models`), with the
//! shapes a real Ollama 0.24 sends from its own `/v1` (recorded): one `chat.completion.chunk`
//! per `data:` event, a last chunk with `finish_reason`, a usage chunk with empty `choices`,
//! then `data: [DONE]`; errors as `{"error": {"message", "type", "param", "code"}}`.
//!
//! `GET /metrics` and `GET /props` at the root (beside `/v1`) answer 404 until a test sets
//! them; [`VLLM_METRICS`], [`LLAMA_SERVER_METRICS`] and [`llama_server_props`] are the shapes the
//! real servers document.
//!
//! Tests script it: the pieces of the answer, where the bytes are cut (inside events and inside
//! UTF-8 characters), comments, error events, a missing `[DONE]`, HTTP statuses; and read back
//! the requests it received.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::RecordedRequest;

/// One scripted answer of `/v1/chat/completions`.
#[derive(Debug, Clone)]
pub struct OpenAiReply {
    kind: ReplyKind,
    /// Bytes per network write (0: one write per event).
    split: usize,
    delay: Duration,
}

#[derive(Debug, Clone)]
enum ReplyKind {
    /// An SSE body, sent as written.
    Sse(String),
    /// A status with a JSON body (and `Retry-After` for 429/503).
    Status(u16, Value),
    /// 200 with a Prometheus text body.
    Text(String),
}

/// vLLM's `/metrics`, trimmed to a few families, in the shape of vllm-project/vllm
/// `vllm/v1/metrics/loggers.py` (gauges labelled `engine`, `model_name`; "KV-cache usage. 1
/// means 100 percent usage.").
pub const VLLM_METRICS: &str = "\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine=\"0\",model_name=\"m\"} 0.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"m\"} 0.123
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{engine=\"0\",model_name=\"m\"} 37.0
";

/// llama-server's `/metrics` (with `--metrics`), as ggml-org/llama.cpp
/// `tools/server/README.md` lists it in builds that still export `kv_cache_usage_ratio`.
pub const LLAMA_SERVER_METRICS: &str = "\
# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed.
# TYPE llamacpp:prompt_tokens_total counter
llamacpp:prompt_tokens_total 37
# HELP llamacpp:kv_cache_usage_ratio KV-cache usage. 1 means 100 percent usage.
# TYPE llamacpp:kv_cache_usage_ratio gauge
llamacpp:kv_cache_usage_ratio 0.25
# HELP llamacpp:requests_processing Number of requests processing.
# TYPE llamacpp:requests_processing gauge
llamacpp:requests_processing 0
";

/// llama-server's `GET /props`, after the example in ggml-org/llama.cpp
/// `tools/server/README.md` (trimmed: `params` and the chat template shortened).
#[must_use]
pub fn llama_server_props() -> Value {
    json!({
        "default_generation_settings": {
            "id": 0, "id_task": -1, "n_ctx": 8192, "speculative": false, "is_processing": false,
            "params": {"n_predict": -1, "seed": 4_294_967_295_u64, "top_k": 40},
            "prompt": "",
            "next_token": {"has_next_token": true, "has_new_line": false, "n_remain": -1,
                           "n_decoded": 0, "stopping_word": ""}
        },
        "total_slots": 1,
        "model_path": "../models/Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf",
        "chat_template": "...",
        "chat_template_caps": {},
        "modalities": {"vision": false},
        "build_info": "b4567-abc1234",
        "is_sleeping": false
    })
}

impl OpenAiReply {
    /// The answer in these pieces (one chunk each), `finish_reason: "stop"`, usage, `[DONE]`,
    /// with a keep-alive comment first.
    #[must_use]
    pub fn tokens(pieces: &[&str]) -> Self {
        Self::events(pieces, "stop", true, true)
    }

    /// Like [`OpenAiReply::tokens`], with the finish reason (`length`, ...).
    #[must_use]
    pub fn finishing(pieces: &[&str], finish: &str) -> Self {
        Self::events(pieces, finish, true, true)
    }

    /// The pieces and nothing after them: no finish, no usage, no `[DONE]` (a cut stream).
    #[must_use]
    pub fn cut_after(pieces: &[&str]) -> Self {
        let mut body = String::new();
        for piece in pieces {
            body.push_str(&data(&chunk(
                json!({"role": "assistant", "content": piece}),
                None,
            )));
        }
        Self::sse(body)
    }

    /// The pieces, then an `event: error` with this message.
    #[must_use]
    pub fn error_after(pieces: &[&str], message: &str) -> Self {
        let mut reply = Self::cut_after(pieces);
        if let ReplyKind::Sse(body) = &mut reply.kind {
            body.push_str(&format!(
                "event: error\ndata: {}\n\n",
                json!({"error": {"message": message, "type": "server_error", "param": null, "code": null}})
            ));
        }
        reply
    }

    /// Thinking deltas (`reasoning_content`), then the answer.
    #[must_use]
    pub fn thinking(thoughts: &[&str], pieces: &[&str]) -> Self {
        let mut body = String::new();
        for thought in thoughts {
            body.push_str(&data(&chunk(json!({"reasoning_content": thought}), None)));
        }
        if let ReplyKind::Sse(rest) = Self::events(pieces, "stop", true, false).kind {
            body.push_str(&rest);
        }
        Self::sse(body)
    }

    /// Exactly this SSE body (may be empty).
    #[must_use]
    pub fn sse(body: impl Into<String>) -> Self {
        Self {
            kind: ReplyKind::Sse(body.into()),
            split: 0,
            delay: Duration::ZERO,
        }
    }

    /// An HTTP error in the OpenAI shape.
    #[must_use]
    pub fn status(status: u16, message: &str) -> Self {
        let body = json!({"error": {"message": message, "type": "api_error", "param": null, "code": null}});
        Self {
            kind: ReplyKind::Status(status, body),
            split: 0,
            delay: Duration::ZERO,
        }
    }

    /// Writes the body `bytes` at a time (cuts land inside events and inside UTF-8 characters).
    #[must_use]
    pub fn split_every(mut self, bytes: usize) -> Self {
        self.split = bytes;
        self
    }

    /// Waits this long before the response head and before each write.
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    fn events(pieces: &[&str], finish: &str, usage: bool, comment: bool) -> Self {
        let mut body = String::new();
        if comment {
            body.push_str(": keep-alive\n\n");
        }
        for piece in pieces {
            body.push_str(&data(&chunk(
                json!({"role": "assistant", "content": piece}),
                None,
            )));
        }
        body.push_str(&data(&chunk(
            json!({"role": "assistant", "content": ""}),
            Some(finish),
        )));
        if usage {
            let completion = pieces.len();
            body.push_str(&data(&json!({
                "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_796_057_257,
                "model": "m", "system_fingerprint": "fp_standin", "choices": [],
                "usage": {"prompt_tokens": 37, "completion_tokens": completion, "total_tokens": 37 + completion},
            })));
        }
        body.push_str("data: [DONE]\n\n");
        Self::sse(body)
    }
}

fn chunk(delta: Value, finish: Option<&str>) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_796_057_257,
        "model": "m", "system_fingerprint": "fp_standin",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    })
}

fn data(value: &Value) -> String {
    format!("data: {value}\n\n")
}

#[derive(Default)]
struct State {
    replies: VecDeque<OpenAiReply>,
    requests: Vec<RecordedRequest>,
    models: Vec<String>,
    token: Option<String>,
    metrics: Option<String>,
    props: Option<Value>,
}

/// The OpenAI-compatible stand-in: a real HTTP/1.1 server on `127.0.0.1:0`.
pub struct OpenAiStandIn {
    base: String,
    state: Arc<Mutex<State>>,
}

impl OpenAiStandIn {
    /// Starts it with one model, `m`; unscripted chats answer "Hello!" in two pieces.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let base = format!("http://{}/v1", listener.local_addr().expect("address"));
        let state = Arc::new(Mutex::new(State {
            models: vec!["m".to_owned()],
            ..State::default()
        }));
        let shared = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let _ = socket.set_nodelay(true);
                tokio::spawn(connection(socket, Arc::clone(&shared)));
            }
        });
        Self { base, state }
    }

    /// The base URL, with the `/v1` prefix.
    #[must_use]
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Queues an answer for the next chat request.
    pub fn push(&self, reply: OpenAiReply) {
        self.lock().replies.push_back(reply);
    }

    /// The models `/v1/models` lists and chat accepts (others are 404).
    pub fn set_models(&self, models: &[&str]) {
        self.lock().models = models.iter().map(|m| (*m).to_owned()).collect();
    }

    /// What `GET /metrics` (at the root, not under `/v1`) answers; 404 until set.
    pub fn set_metrics(&self, text: &str) {
        self.lock().metrics = Some(text.to_owned());
    }

    /// What `GET /props` (at the root) answers; 404 until set.
    pub fn set_props(&self, props: Value) {
        self.lock().props = Some(props);
    }

    /// Requires `Authorization: Bearer <token>` (401 otherwise).
    pub fn require_token(&self, token: &str) {
        self.lock().token = Some(token.to_owned());
    }

    /// Every request received to `path` (e.g. `/v1/chat/completions`).
    #[must_use]
    pub fn requests_to(&self, path: &str) -> Vec<RecordedRequest> {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

async fn connection(mut socket: TcpStream, state: Arc<Mutex<State>>) {
    let mut buf = Vec::new();
    loop {
        let Some(request) = read_request(&mut socket, &mut buf).await else {
            return;
        };
        let reply = {
            let mut state = state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            state.requests.push(request.clone());
            decide(&mut state, &request)
        };
        if write_reply(&mut socket, reply).await.is_err() {
            return;
        }
    }
}

fn decide(state: &mut State, request: &RecordedRequest) -> OpenAiReply {
    if let Some(token) = &state.token
        && request.header("authorization") != Some(&format!("Bearer {token}"))
    {
        return OpenAiReply::status(401, "invalid api key");
    }
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/v1/models") => {
            let data: Vec<Value> = state
                .models
                .iter()
                .map(|id| json!({"id": id, "object": "model", "created": 1_796_057_251, "owned_by": "library"}))
                .collect();
            OpenAiReply {
                kind: ReplyKind::Status(200, json!({"object": "list", "data": data})),
                split: 0,
                delay: Duration::ZERO,
            }
        }
        ("GET", "/metrics") if state.metrics.is_some() => OpenAiReply {
            kind: ReplyKind::Text(state.metrics.clone().unwrap_or_default()),
            split: 0,
            delay: Duration::ZERO,
        },
        ("GET", "/props") if state.props.is_some() => OpenAiReply {
            kind: ReplyKind::Status(200, state.props.clone().unwrap_or_default()),
            split: 0,
            delay: Duration::ZERO,
        },
        ("POST", "/v1/chat/completions") => {
            let model = request
                .json
                .as_ref()
                .and_then(|j| j.get("model"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if !state.models.contains(&model) {
                return OpenAiReply::status(404, &format!("model '{model}' not found"));
            }
            state
                .replies
                .pop_front()
                .unwrap_or_else(|| OpenAiReply::tokens(&["Hel", "lo!"]))
        }
        _ => OpenAiReply {
            kind: ReplyKind::Status(404, json!({"detail": "Not Found"})),
            split: 0,
            delay: Duration::ZERO,
        },
    }
}

async fn write_reply(socket: &mut TcpStream, reply: OpenAiReply) -> std::io::Result<()> {
    let (status, content_type, body, chunked) = match reply.kind {
        ReplyKind::Status(status, body) => (status, "application/json", body.to_string(), false),
        ReplyKind::Text(body) => (200, "text/plain; version=0.0.4; charset=utf-8", body, false),
        ReplyKind::Sse(body) => (200, "text/event-stream", body, true),
    };
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        503 => "Service Unavailable",
        _ => "Error",
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await; // the model "loading" before the first byte
    }
    let retry = if matches!(status, 429 | 503) {
        "Retry-After: 0\r\n"
    } else {
        ""
    };
    if !chunked {
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n{retry}Content-Length: {}\r\n\r\n",
            body.len()
        );
        socket.write_all(head.as_bytes()).await?;
        return socket.write_all(body.as_bytes()).await;
    }
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
                Transfer-Encoding: chunked\r\n\r\n";
    socket.write_all(head.as_bytes()).await?;
    let bytes = body.as_bytes();
    let pieces: Vec<&[u8]> = if reply.split == 0 {
        body.split_inclusive("\n\n").map(str::as_bytes).collect()
    } else {
        bytes.chunks(reply.split).collect()
    };
    for piece in pieces {
        if !reply.delay.is_zero() {
            tokio::time::sleep(reply.delay).await;
        }
        // One HTTP chunk per piece: the client's reads end exactly there.
        socket
            .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
            .await?;
        socket.write_all(piece).await?;
        socket.write_all(b"\r\n").await?;
        socket.flush().await?;
    }
    socket.write_all(b"0\r\n\r\n").await
}

async fn read_request(socket: &mut TcpStream, buf: &mut Vec<u8>) -> Option<RecordedRequest> {
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        let mut chunk = [0u8; 8192];
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let path = first.next()?.split('?').next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let mut chunk = [0u8; 8192];
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end..head_end + length].to_vec();
    buf.drain(..head_end + length);
    let json = serde_json::from_slice(&body).ok();
    Some(RecordedRequest {
        method,
        path,
        headers,
        body,
        json,
    })
}
