//! `/api/chat` and `/api/generate`: option checks, keep_alive, loading and eviction, and the
//! NDJSON (or single JSON) body of the answer.

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::http::RecordedRequest;
use crate::routes::{Response, body_model, find_model, parse_body};
use crate::state::{Loaded, State};
use crate::{Fault, Reply, Residency, time};

const INTEGER_OPTIONS: &[&str] = &[
    "num_ctx",
    "num_gpu",
    "num_predict",
    "num_batch",
    "num_thread",
    "main_gpu",
    "top_k",
    "seed",
    "num_keep",
    "repeat_last_n",
];
const RUNNER_OPTIONS: &[&str] = &[
    "num_ctx",
    "num_gpu",
    "num_batch",
    "num_thread",
    "main_gpu",
    "use_mmap",
];

fn check_options(options: Option<&Value>) -> Result<Value, Response> {
    let mut runner = serde_json::Map::new();
    let Some(options) = options.and_then(Value::as_object) else {
        return Ok(Value::Object(runner));
    };
    for (key, value) in options {
        if INTEGER_OPTIONS.contains(&key.as_str()) && !value.is_i64() && !value.is_u64() {
            return Err(Response::error(
                500,
                &format!("option \"{key}\" must be of type integer"),
            ));
        }
        if RUNNER_OPTIONS.contains(&key.as_str()) {
            runner.insert(key.clone(), value.clone());
        }
    }
    Ok(Value::Object(runner))
}

fn keep_alive_expiry(value: Option<&Value>) -> Result<Option<Option<SystemTime>>, Response> {
    let now = SystemTime::now();
    let secs = match value {
        None | Some(Value::Null) => return Ok(Some(Some(now + Duration::from_secs(300)))),
        Some(Value::Number(n)) => n.as_f64().unwrap_or(300.0),
        Some(Value::String(s)) => match time::parse_go_duration(s) {
            Some(secs) => secs,
            None => {
                return Err(Response::error(
                    400,
                    &format!("time: invalid duration \"{s}\""),
                ));
            }
        },
        Some(_) => return Err(Response::error(400, "invalid keep_alive")),
    };
    if secs < 0.0 {
        Ok(Some(None))
    } else if secs == 0.0 {
        Ok(None)
    } else {
        Ok(Some(Some(now + Duration::from_secs_f64(secs))))
    }
}

/// `/api/chat` and `/api/generate`: load, unload, generate.
pub(crate) fn generate(
    state: &mut State,
    request: &RecordedRequest,
    queued_fault: Option<Fault>,
    chat: bool,
) -> (Response, Duration) {
    let body = match parse_body(request) {
        Ok(body) => body.clone(),
        Err(response) => return (response, Duration::ZERO),
    };
    let name = body_model(request).unwrap_or_default();
    let Some(model) = find_model(state, &name).cloned() else {
        return (
            Response::error(404, &format!("model '{name}' not found")),
            Duration::ZERO,
        );
    };
    let runner_options = match check_options(body.get("options")) {
        Ok(runner) => runner,
        Err(response) => return (response, Duration::ZERO),
    };
    let expiry = match keep_alive_expiry(body.get("keep_alive")) {
        Ok(expiry) => expiry,
        Err(response) => return (response, Duration::ZERO),
    };
    let created_at = time::rfc3339(SystemTime::now());
    let short = name.clone();
    let empty_line = |reason: &str| {
        let text = if chat {
            format!(
                r#"{{"model":{},"created_at":"{created_at}","message":{{"role":"assistant","content":""}},"done":true,"done_reason":"{reason}"}}"#,
                json!(short)
            )
        } else {
            format!(
                r#"{{"model":{},"created_at":"{created_at}","response":"","done":true,"done_reason":"{reason}"}}"#,
                json!(short)
            )
        };
        Response::Full {
            status: 200,
            content_type: "application/json; charset=utf-8",
            body: text.into_bytes(),
            extra_headers: Vec::new(),
        }
    };
    let prompt_empty = if chat {
        body.get("messages")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
    } else {
        body.get("prompt")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    };
    // keep_alive 0 with nothing to generate unloads; with a prompt, Ollama answers, then
    // unloads (the model is gone from /api/ps once the answer is sent).
    let Some(expires) = expiry.or_else(|| (!prompt_empty).then(|| Some(SystemTime::now()))) else {
        state.loaded.retain(|l| l.name != model.name);
        return (empty_line("unload"), Duration::ZERO);
    };
    if body.get("think").and_then(Value::as_bool) == Some(true) {
        let can_think = model
            .show
            .get("capabilities")
            .and_then(Value::as_array)
            .is_some_and(|c| c.iter().any(|v| v == "thinking"));
        if !can_think {
            let message = format!("\"{}\" does not support thinking", name);
            return (Response::error(400, &message), Duration::ZERO);
        }
    }
    // Load, or reload when runner options differ; loading one model evicts the others.
    let reloaded = !state
        .loaded
        .iter()
        .any(|l| l.name == model.name && l.runner_options == runner_options);
    let residency = state
        .residency_if_option
        .iter()
        .rev()
        .find(|(m, option, _)| *m == model.name && runner_options.get(option).is_some())
        .map(|(_, _, r)| *r)
        .or_else(|| state.residency.get(&model.name).copied())
        .unwrap_or_else(|| Residency::gpu(2_375_680));
    let context_length = residency
        .context_length
        .or_else(|| runner_options.get("num_ctx").and_then(Value::as_u64))
        .or_else(|| model.parameter("num_ctx").and_then(|v| v.parse().ok()))
        .unwrap_or(4096);
    state.loaded.retain(|l| l.name == model.name && !reloaded);
    if state.loaded.is_empty() {
        state.loaded.push(Loaded {
            name: model.name.clone(),
            runner_options,
            expires,
            residency,
            context_length,
        });
    } else if let Some(loaded) = state.loaded.first_mut() {
        loaded.expires = expires;
    }
    if prompt_empty {
        return (empty_line("load"), Duration::ZERO);
    }
    let mut reply = state
        .replies
        .pop_front()
        .or_else(|| state.default_reply.clone())
        .unwrap_or_else(|| Reply::tokens(&[" find", " go", " think"]));
    if let Some(fault) = queued_fault {
        reply.fault = Some(fault);
    }
    if let Some(response) = reply.fault.as_ref().and_then(Response::from_fault) {
        return (response, reply.first_byte_delay);
    }
    if reloaded && reply.stats.load_duration < 200_000_000 {
        reply.stats.load_duration = 297_000_000;
    }
    let lines = stream_lines(&short, chat, &reply);
    let stream = body.get("stream").and_then(Value::as_bool) != Some(false);
    let delay = reply.first_byte_delay;
    if !stream {
        let text = non_stream_body(&short, chat, &reply);
        return (
            Response::Full {
                status: 200,
                content_type: "application/json; charset=utf-8",
                body: text.into_bytes(),
                extra_headers: Vec::new(),
            },
            delay,
        );
    }
    let fault = reply.fault.clone().map(|f| {
        let after = match &f {
            Fault::ErrorLine { after, .. }
            | Fault::Drop { after }
            | Fault::Malformed { after, .. }
            | Fault::Stall { after, .. } => *after,
            Fault::Status { .. } | Fault::NoResponse | Fault::NoBody | Fault::EmptyBody => 0,
        };
        (after, f)
    });
    (
        Response::Stream {
            lines,
            reply: Box::new(reply),
            fault,
        },
        delay,
    )
}

fn token_line(model: &str, chat: bool, content: &str, thinking: bool) -> Vec<u8> {
    let created_at = time::rfc3339(SystemTime::now());
    let model = json!(model);
    let content = json!(content);
    let text = match (chat, thinking) {
        (true, false) => format!(
            r#"{{"model":{model},"created_at":"{created_at}","message":{{"role":"assistant","content":{content}}},"done":false}}"#
        ),
        (true, true) => format!(
            r#"{{"model":{model},"created_at":"{created_at}","message":{{"role":"assistant","content":"","thinking":{content}}},"done":false}}"#
        ),
        (false, false) => format!(
            r#"{{"model":{model},"created_at":"{created_at}","response":{content},"done":false}}"#
        ),
        (false, true) => format!(
            r#"{{"model":{model},"created_at":"{created_at}","response":"","thinking":{content},"done":false}}"#
        ),
    };
    let mut bytes = text.into_bytes();
    bytes.push(b'\n');
    bytes
}

fn final_fields(reply: &Reply) -> String {
    let s = &reply.stats;
    format!(
        r#""done":true,"done_reason":{},"total_duration":{},"load_duration":{},"prompt_eval_count":{},"prompt_eval_duration":{},"eval_count":{},"eval_duration":{}"#,
        json!(reply.done_reason),
        s.total_duration,
        s.load_duration,
        s.prompt_eval_count,
        s.prompt_eval_duration,
        reply.tokens.len(),
        s.eval_duration
    )
}

fn stream_lines(model: &str, chat: bool, reply: &Reply) -> Vec<Vec<u8>> {
    let mut lines: Vec<Vec<u8>> = reply
        .thinking
        .iter()
        .map(|t| token_line(model, chat, t, true))
        .chain(
            reply
                .tokens
                .iter()
                .map(|t| token_line(model, chat, t, false)),
        )
        .collect();
    let created_at = time::rfc3339(SystemTime::now());
    let model = json!(model);
    let last = if chat {
        format!(
            r#"{{"model":{model},"created_at":"{created_at}","message":{{"role":"assistant","content":""}},{}}}"#,
            final_fields(reply)
        )
    } else {
        format!(
            r#"{{"model":{model},"created_at":"{created_at}","response":"",{},"context":[259,349,286]}}"#,
            final_fields(reply)
        )
    };
    let mut last = last.into_bytes();
    last.push(b'\n');
    lines.push(last);
    lines
}

fn non_stream_body(model: &str, chat: bool, reply: &Reply) -> String {
    let created_at = time::rfc3339(SystemTime::now());
    let content = json!(reply.tokens.concat());
    let model = json!(model);
    if chat {
        format!(
            r#"{{"model":{model},"created_at":"{created_at}","message":{{"role":"assistant","content":{content}}},{}}}"#,
            final_fields(reply)
        )
    } else {
        format!(
            r#"{{"model":{model},"created_at":"{created_at}","response":{content},{}}}"#,
            final_fields(reply)
        )
    }
}
