//! `conductor --backend openai` end to end, against the OpenAI-compatible SSE stand-in.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;
use std::process::{Command, Output};

use conductor_tests::{
    LLAMA_SERVER_METRICS, OpenAiReply, OpenAiStandIn, VLLM_METRICS, llama_server_props,
};

mod common;

use common::{clean_command, code, stderr, stdout};

/// A command with a clean environment, pointed at the OpenAI-compatible server at `base`.
fn command(home: &Path, base: &str, args: &[&str]) -> Command {
    let mut cmd = clean_command(home);
    cmd.env("OLLAMA_HOST", base)
        .env("CONDUCTOR_MODEL", "m")
        .args(args);
    cmd
}

struct Env {
    server: OpenAiStandIn,
    home: tempfile::TempDir,
}

impl Env {
    async fn new() -> Self {
        Self {
            server: OpenAiStandIn::start().await,
            home: tempfile::tempdir().unwrap(),
        }
    }

    async fn run(&self, args: &[&str]) -> Output {
        let mut all = vec!["--backend", "openai"];
        all.extend_from_slice(args);
        self.run_cmd(command(self.home.path(), self.server.base(), &all))
            .await
    }

    async fn run_cmd(&self, mut cmd: Command) -> Output {
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn ask_streams_the_answer_and_json_says_residency_is_not_reported() {
    let env = Env::new().await;
    env.server
        .push(OpenAiReply::tokens(&["Hé", "llo ", "😀"]).split_every(3));
    let out = env.run(&["ask", "Hi"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out).trim_end(), "Héllo 😀");
    assert!(
        stderr(&out).contains("not reported by this server"),
        "{}",
        stderr(&out)
    );

    // Under enforce: admitted (no false exit 3), residency null (no false claim).
    env.server.push(OpenAiReply::finishing(&["A"], "length"));
    let out = env
        .run(&["--gpu-policy", "enforce", "ask", "--json", "Hi"])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["answer"], "A");
    assert_eq!(json["done_reason"], "length");
    assert_eq!(json["metrics"]["eval_count"], 1);
    assert_eq!(json["metrics"]["prompt_eval_count"], 37);
    assert!(json["residency"].is_null());
    assert!(json["warnings"].to_string().contains("not reported"));
    let request = env.server.requests_to("/v1/chat/completions");
    assert_eq!(request.last().unwrap().messages()[0].0, "system");
}

#[tokio::test]
async fn exit_codes_are_those_of_ollama() {
    let env = Env::new().await;
    // Model not found: 5.
    let out = env.run(&["-m", "absent", "ask", "Hi"]).await;
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    assert!(stderr(&out).contains("model 'absent' not found"));
    // Busy after retries: 4.
    for _ in 0..4 {
        env.server.push(OpenAiReply::status(503, "overloaded"));
    }
    let out = env.run(&["ask", "--json", "Hi"]).await;
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["error"]["kind"], "busy", "{json}");
    // Cut short: 4, the partial answer printed.
    env.server.push(OpenAiReply::cut_after(&["half an"]));
    let out = env.run(&["ask", "Hi"]).await;
    assert_eq!(code(&out), 4);
    assert!(stdout(&out).contains("half an"));
    // 401: 4, the fix names the token setting.
    env.server.require_token("sk-1");
    let out = env.run(&["ask", "Hi"]).await;
    assert_eq!(code(&out), 4);
    assert!(stderr(&out).contains("401"), "{}", stderr(&out));
    let mut cmd = command(
        env.home.path(),
        env.server.base(),
        &["--backend", "openai", "ask", "Hi"],
    );
    cmd.env("CONDUCTOR_OLLAMA_TOKEN", "sk-1");
    let out = env.run_cmd(cmd).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // A bad --backend is a usage error: 2.
    let out = env.run(&["--backend", "tgi", "ask", "Hi"]).await;
    assert_eq!(code(&out), 2);
}

#[tokio::test]
async fn env_and_config_file_select_the_backend() {
    let env = Env::new().await;
    let mut cmd = command(env.home.path(), env.server.base(), &["ask", "Hi"]);
    cmd.env("CONDUCTOR_BACKEND", "openai");
    let out = env.run_cmd(cmd).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out).trim_end(), "Hello!");

    let file = env.home.path().join("c.toml");
    std::fs::write(
        &file,
        format!(
            "model = \"m\"\n[backend]\nkind = \"openai\"\n[ollama]\nhost = \"{}\"\n",
            env.server.base()
        ),
    )
    .unwrap();
    let mut cmd = command(env.home.path(), "", &["ask", "Hi"]);
    cmd.env_remove("OLLAMA_HOST").env("CONDUCTOR_CONFIG", &file);
    let out = env.run_cmd(cmd).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut cmd = command(env.home.path(), "", &["config", "show"]);
    cmd.env_remove("OLLAMA_HOST").env("CONDUCTOR_CONFIG", &file);
    let out = env.run_cmd(cmd).await;
    assert!(stdout(&out).contains("backend.kind"), "{}", stdout(&out));
}

#[tokio::test]
async fn models_doctor_and_gpu_commands_say_residency_is_not_reported() {
    let env = Env::new().await;
    env.server.set_models(&["m", "other:7b"]);
    let out = env.run(&["models"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("other:7b"));

    let out = env.run(&["doctor"]).await;
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("residency: not reported by this server"),
        "{text}"
    );
    assert!(!text.contains("✓ residency") && !text.contains("100% GPU"));

    for policy in ["enforce", "warn", "fix"] {
        let out = env.run(&["--gpu-policy", policy, "gpu", "verify"]).await;
        assert_eq!(code(&out), 4, "{policy}: {}", stderr(&out));
        let text = stdout(&out);
        assert!(text.contains("not reported by this server"), "{text}");
        assert!(
            !text.contains('✓') && !text.contains("fully on the GPU"),
            "{text}"
        );
    }
    let out = env.run(&["gpu", "verify", "--json"]).await;
    assert_eq!(code(&out), 4);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(json["resident"].is_null());

    let out = env.run(&["gpu", "status"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("residency: not reported by this server"));
    assert!(!stdout(&out).contains("100% GPU"));
}

#[tokio::test]
async fn gpu_commands_show_what_the_server_reports_as_evidence_and_still_cannot_verify() {
    let env = Env::new().await;
    env.server.set_metrics(VLLM_METRICS);
    let out = env.run(&["gpu", "status"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("residency: not reported by this server"),
        "{text}"
    );
    assert!(
        text.contains("evidence: vLLM reports KV-cache usage 12.3% (vllm:kv_cache_usage_perc)"),
        "{text}"
    );
    assert!(!text.contains("100% GPU"), "{text}");

    let out = env.run(&["gpu", "status", "--json"]).await;
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        json["evidence"]["kv_cache"]["metric"],
        "vllm:kv_cache_usage_perc"
    );
    assert!(json["evidence"]["props"].is_null());

    env.server.set_metrics(LLAMA_SERVER_METRICS);
    env.server.set_props(llama_server_props());
    let out = env.run(&["gpu", "verify"]).await;
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("not reported by this server"), "{text}");
    assert!(
        text.contains("llama-server reports KV-cache usage 25.0%"),
        "{text}"
    );
    assert!(
        text.contains("llama-server: n_ctx 8192, 1 slot, model ../models/"),
        "{text}"
    );
    assert!(
        !text.contains('✓') && !text.contains("fully on the GPU"),
        "{text}"
    );

    let out = env.run(&["gpu", "verify", "--json"]).await;
    assert_eq!(code(&out), 4);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(json["resident"].is_null());
    assert_eq!(json["evidence"]["props"]["n_ctx"], 8192);
    assert_eq!(json["evidence"]["kv_cache"]["ratio"], 0.25);
}

/// No Ollama words in what `--backend openai` prints: `error:` and `hint:` lines on stderr.
fn assert_names_no_ollama(out: &Output) {
    let err = stderr(out);
    for word in ["Ollama", "ollama serve", "ollama pull", "OLLAMA_MAX_QUEUE"] {
        assert!(!err.contains(word), "{word} in: {err}");
    }
}

#[tokio::test]
async fn openai_errors_and_hints_name_the_server_not_ollama() {
    let env = Env::new().await;
    // Unreachable: a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}/v1");
    let out = env
        .run_cmd(command(
            env.home.path(),
            &base,
            &["--backend", "openai", "ask", "Hi"],
        ))
        .await;
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot reach the server at"),
        "{}",
        stderr(&out)
    );
    assert_names_no_ollama(&out);
    // The same address with the Ollama backend keeps Ollama's words.
    let out = env
        .run_cmd(command(env.home.path(), &base, &["ask", "Hi"]))
        .await;
    assert!(
        stderr(&out).contains("cannot reach Ollama at"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("ollama serve"), "{}", stderr(&out));
    // Model not found.
    let out = env.run(&["-m", "absent", "ask", "Hi"]).await;
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("conductor models"),
        "{}",
        stderr(&out)
    );
    assert_names_no_ollama(&out);
    // Busy after retries, in text and in JSON.
    for _ in 0..4 {
        env.server.push(OpenAiReply::status(503, "overloaded"));
    }
    let out = env.run(&["ask", "Hi"]).await;
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the server is busy"),
        "{}",
        stderr(&out)
    );
    assert_names_no_ollama(&out);
    for _ in 0..4 {
        env.server.push(OpenAiReply::status(503, "overloaded"));
    }
    let out = env.run(&["ask", "--json", "Hi"]).await;
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let text = json["error"].to_string();
    assert!(
        !text.contains("Ollama") && !text.contains("OLLAMA_MAX_QUEUE"),
        "{text}"
    );
    // 401.
    env.server.require_token("sk-1");
    let out = env.run(&["ask", "Hi"]).await;
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(stderr(&out).contains("the server at"), "{}", stderr(&out));
    assert!(stderr(&out).contains("(HTTP 401)"), "{}", stderr(&out));
    assert_names_no_ollama(&out);
    // doctor words its failures the same way.
    let out = env.run(&["doctor"]).await;
    assert_eq!(code(&out), 4, "{}{}", stdout(&out), stderr(&out));
    assert!(
        !stdout(&out).contains("Ollama server at"),
        "{}",
        stdout(&out)
    );
}

#[tokio::test]
async fn bench_processes_drives_the_openai_backend_with_a_minimal_sse_client() {
    let env = Env::new().await;
    let base = env.server.base().to_owned();
    let out = env
        .run(&[
            "bench",
            "--part",
            "processes",
            "--json",
            "-n",
            "1",
            "--host",
            &base,
        ])
        .await;
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let text = json.to_string();
    let rows: Vec<&serde_json::Value> = find_rows(&json);
    assert!(!rows.is_empty(), "{text}");
    let raw = rows
        .iter()
        .find(|r| {
            r["client"]
                .as_str()
                .is_some_and(|c| c.contains("/chat/completions"))
        })
        .unwrap_or_else(|| panic!("no minimal client row in {text}"));
    assert_eq!(raw["ok_runs"], 1, "{text}");
    // It printed the streamed answer: "Hello!" from the stand-in.
    assert!(
        raw["runs"][0]["stdout_bytes"].as_u64().unwrap() >= 6,
        "{text}"
    );
    // Every client ran, none failed, and no request went to Ollama's /api/chat.
    for row in &rows {
        assert_eq!(row["ok_runs"], 1, "{text}");
    }
    let posts = env.server.requests_to("/v1/chat/completions");
    assert!(posts.len() >= 2, "{}", posts.len());
}

/// The rows of the processes table, wherever the JSON nests them.
fn find_rows(value: &serde_json::Value) -> Vec<&serde_json::Value> {
    match value {
        serde_json::Value::Array(items) if items.iter().all(|i| i.get("client").is_some()) => {
            items.iter().collect()
        }
        serde_json::Value::Array(items) => items.iter().flat_map(find_rows).collect(),
        serde_json::Value::Object(map) => map.values().flat_map(find_rows).collect(),
        _ => Vec::new(),
    }
}

#[tokio::test]
async fn model_management_commands_are_usage_errors_that_say_what_to_use() {
    let env = Env::new().await;
    for args in [
        vec!["ps"],
        vec!["stop", "m"],
        vec!["show", "m"],
        vec!["pull", "m"],
    ] {
        let out = env.run(&args).await;
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("`conductor {}` needs model management", args[0]))
                && err.contains("OpenAI-compatible backend")
                && err.contains("--backend ollama"),
            "{args:?}: {err}"
        );
    }
    let out = env.run(&["ps", "--json"]).await;
    assert_eq!(code(&out), 2);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["error"]["kind"], "usage");
    assert_eq!(json["error"]["exit_code"], 2);
    // Its model list still works.
    let out = env.run(&["models"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[tokio::test]
async fn options_the_server_does_not_take_are_warned_of_once_each() {
    let env = Env::new().await;
    env.server.push(OpenAiReply::tokens(&["ok"]));
    let out = env
        .run(&[
            "ask",
            "-o",
            "num_ctx=8192",
            "-o",
            "top_k=5",
            "-o",
            "mirostat=2",
            "-o",
            "temperature=0.3",
            "-o",
            "num_ctx=4096",
            "Hi",
        ])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    for name in ["num_ctx", "top_k", "mirostat"] {
        assert_eq!(
            err.matches(&format!("-o {name}: not sent")).count(),
            1,
            "{name}: {err}"
        );
    }
    assert!(!err.contains("temperature"), "{err}");
    let body = env
        .server
        .requests_to("/v1/chat/completions")
        .pop()
        .unwrap()
        .json
        .unwrap();
    assert_eq!(body["temperature"], 0.3);
    assert!(body.get("mirostat").is_none() && body.get("top_k").is_none());
    // Ollama takes them all: no warning.
    let ollama = conductor_tests::StandIn::start().await;
    ollama.reply_with(&["ok"]);
    let mut cmd = clean_command(env.home.path());
    cmd.env("OLLAMA_HOST", ollama.host()).args([
        "ask",
        "-m",
        "tiny",
        "-o",
        "mirostat=2",
        "-o",
        "top_k=5",
        "Hi",
    ]);
    let out = env.run_cmd(cmd).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("not sent"), "{}", stderr(&out));
}
