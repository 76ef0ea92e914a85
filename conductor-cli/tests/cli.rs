//! The `conductor` binary end to end, against the Ollama stand-in.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs
)]

// Beside this file, not in `tests/`, where cargo would build it as a test binary of its own.
#[path = "cli/chat_tui.rs"]
mod chat_tui;
mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use conductor_tests::{Fault, Reply, Residency};

use common::{BIN, Env, clean_command, code, stderr, stdout};

/// A command with a clean environment, pointed at the Ollama at `host`.
fn command(home: &Path, host: &str) -> Command {
    let mut cmd = clean_command(home);
    cmd.env("OLLAMA_HOST", host);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_streams_exactly_the_answer_to_stdout() {
    let env = Env::new().await;
    env.ollama.reply_with(&["Hello", ", ", "wörld", " 🦀"]);
    let out = env.run(&["ask", "say", "hello"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "Hello, wörld 🦀\n");
    assert_eq!(
        stderr(&out),
        "",
        "nothing but the answer, and no spinner off a terminal"
    );
    let request = env.ollama.requests_to("/api/chat").pop().unwrap();
    let messages = request.messages();
    assert_eq!(messages[0].0, "system");
    assert!(messages[0].1.contains("Yollayah"));
    assert_eq!(messages[1].1, "say hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_is_the_prompt_or_its_context() {
    let env = Env::new().await;
    let out = env
        .run_with(env.cmd(&["ask"]), Some(b"what is 2+2?".to_vec()))
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        env.ollama.requests_to("/api/chat")[0].messages()[1].1,
        "what is 2+2?"
    );

    let diff = b"diff --git a/x b/x\n+fn main() {}\n".to_vec();
    let out = env
        .run_with(env.cmd(&["ask", "review this"]), Some(diff))
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        env.ollama.requests_to("/api/chat")[1].messages()[1].1,
        "review this\n\ndiff --git a/x b/x\n+fn main() {}\n"
    );

    let out = env
        .run_with(env.cmd(&["ask", "-"]), Some(b"dash form".to_vec()))
        .await;
    assert_eq!(code(&out), 0);
    assert_eq!(
        env.ollama.requests_to("/api/chat")[2].messages()[1].1,
        "dash form"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_and_invalid_stdin() {
    let env = Env::new().await;
    let eight_mib = vec![b'x'; 8 << 20];
    let out = env
        .run_with(env.cmd(&["ask", "summarize"]), Some(eight_mib))
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let sent = env
        .ollama
        .requests_to("/api/chat")
        .pop()
        .unwrap()
        .messages()[1]
        .1
        .len();
    assert_eq!(sent, "summarize\n\n".len() + (8 << 20));

    let out = env
        .run_with(env.cmd(&["ask"]), Some(b"caf\xe9 latin-1".to_vec()))
        .await;
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("stdin is not UTF-8 text (invalid byte at offset 3)"),
        "{}",
        stderr(&out)
    );

    let too_big = vec![b'x'; (16 << 20) + 1];
    let out = env.run_with(env.cmd(&["ask"]), Some(too_big)).await;
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("larger than 16 MiB"),
        "{}",
        stderr(&out)
    );

    let out = env.run(&["ask"]).await;
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("nothing to ask"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_has_answer_metrics_and_residency() {
    let env = Env::new().await;
    env.ollama.reply_with(&["four"]);
    env.ollama
        .set_residency("llama3.2:3b", Residency::gpu(4_152_782_848).context(4096));
    let out = env.run(&["ask", "--json", "2+2?"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["model"], "llama3.2:3b");
    assert_eq!(v["personality"], "yollayah");
    assert_eq!(v["answer"], "four");
    assert_eq!(v["done_reason"], "stop");
    assert_eq!(v["complete"], true);
    for key in [
        "ttft_ms",
        "tokens_per_s_server",
        "eval_count",
        "prompt_eval_count",
        "prompt_eval_ms",
        "load_ms",
        "total_ms",
    ] {
        assert!(!v["metrics"][key].is_null(), "metrics.{key} in {v}");
    }
    assert_eq!(v["residency"]["processor"], "100% GPU");
    assert_eq!(v["residency"]["size"], 4_152_782_848u64);
    assert_eq!(v["residency"]["size_vram"], 4_152_782_848u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_and_messages() {
    let env = Env::new().await;
    // 2: usage.
    let out = env.run(&["ask", "--no-such-flag"]).await;
    assert_eq!(code(&out), 2);
    // 4: unreachable, naming the host and how to start Ollama.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out = env
        .run(&["ask", "--host", &format!("127.0.0.1:{dead}"), "hi"])
        .await;
    assert_eq!(code(&out), 4);
    let text = stderr(&out);
    assert!(
        text.contains(&format!(
            "cannot reach Ollama at http://127.0.0.1:{dead} (connection refused)"
        )),
        "{text}"
    );
    assert!(text.contains("ollama serve"), "{text}");
    // 5: model not found, with the pull suggested.
    let out = env.run(&["ask", "-m", "nope:7b", "hi"]).await;
    assert_eq!(code(&out), 5);
    assert!(
        stderr(&out).contains("model 'nope:7b' not found"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("ollama pull nope:7b"),
        "{}",
        stderr(&out)
    );
    // 4: a server error, with Ollama's own message.
    env.ollama.push_reply(Reply::status(
        500,
        "llama runner process has terminated: signal: killed",
    ));
    let out = env.run(&["ask", "hi"]).await;
    assert_eq!(code(&out), 4);
    assert!(
        stderr(&out).contains("llama runner process has terminated"),
        "{}",
        stderr(&out)
    );
    // 6: a personality that does not exist, or is not a name.
    let out = env.run(&["ask", "-p", "nobody", "hi"]).await;
    assert_eq!(code(&out), 6);
    assert!(
        stderr(&out).contains("personality 'nobody' not found"),
        "{}",
        stderr(&out)
    );
    let out = env.run(&["ask", "-p", "../../etc/passwd", "hi"]).await;
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("invalid personality name"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_config_names_file_line_and_column() {
    let env = Env::new().await;
    let file = env.home.path().join("bad.toml");
    std::fs::write(&file, "model = \"x\"\n[gpu]\npolicy = \"sometimes\"\n").unwrap();
    let out = env
        .run(&["--config", file.to_str().unwrap(), "ask", "hi"])
        .await;
    assert_eq!(code(&out), 6);
    assert!(
        stderr(&out).contains(&format!("{}:3:10:", file.display())),
        "{}",
        stderr(&out)
    );

    // A personality file in the user directory that does not parse.
    let dir = env.home.path().join(".config/conductor/personalities");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("mine.toml"),
        "name = \"mine\"\ndescription = \"d\"\nprompt = \"p\"\nvoice = \"loud\"\n",
    )
    .unwrap();
    let out = env.run(&["ask", "-p", "mine", "hi"]).await;
    assert_eq!(code(&out), 6);
    assert!(
        stderr(&out).contains("mine.toml:4:1: unknown field `voice`"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_resident_under_enforce_exits_3_and_warn_answers() {
    let env = Env::new().await;
    env.ollama.set_residency(
        "m3b-numgpu1",
        Residency::split(25_712_097_280, 7_909_500_928).context(131_072),
    );
    let out = env.run(&["ask", "-m", "m3b-numgpu1", "hi"]).await;
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let text = stderr(&out);
    assert!(
        text.contains("not fully on the GPU (69%/31% CPU/GPU)"),
        "{text}"
    );
    assert!(text.contains("num_gpu counts layers"), "{text}");
    assert!(text.contains("PARAMETER num_gpu"), "{text}");
    assert_eq!(stdout(&out), "");
    assert!(env.ollama.requests_to("/api/chat").is_empty());

    env.ollama.reply_with(&["answered anyway"]);
    let out = env
        .run(&["ask", "-m", "m3b-numgpu1", "--gpu-policy", "warn", "hi"])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "answered anyway\n");
    assert!(
        stderr(&out).contains("warning: model 'm3b-numgpu1' is not fully on the GPU"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpu_verify_is_a_ci_gate() {
    let env = Env::new().await;
    env.ollama
        .set_residency("m3b-4k", Residency::gpu(4_152_782_848).context(4096));
    let out = env.run(&["gpu", "verify", "-m", "m3b-4k"]).await;
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("100% GPU") && text.contains("✓ fully on the GPU"),
        "{text}"
    );
    assert!(text.contains("tokens/s"), "{text}");

    env.ollama.set_residency(
        "m3b",
        Residency::split(25_712_097_280, 7_265_650_688).context(131_072),
    );
    let out = env.run(&["gpu", "verify", "-m", "m3b", "--json"]).await;
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["resident"], false);
    assert_eq!(v["running"]["processor"], "72%/28% CPU/GPU");
    assert!(v["diagnosis"]["summary"].as_str().is_some());
    assert!(v["generation"]["tokens"].as_u64().unwrap() > 0);

    let out = env.run(&["gpu", "verify", "-m", "missing"]).await;
    assert_eq!(code(&out), 5, "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_keeps_what_was_printed_and_exits_130() {
    let env = Env::new().await;
    let tokens: Vec<String> = (0..200).map(|i| format!("t{i} ")).collect();
    let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
    env.ollama
        .push_reply(Reply::tokens(&tokens).chunk_delay(Duration::from_millis(20)));
    let mut cmd = env.cmd(&["ask", "count"]);
    let (partial, status) = tokio::task::spawn_blocking(move || {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 256];
        // Wait until some of the answer was printed.
        while !String::from_utf8_lossy(&seen).contains("t5 ") {
            let n = out.read(&mut buf).unwrap();
            assert!(n > 0, "stdout closed early");
            seen.extend_from_slice(&buf[..n]);
        }
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        out.read_to_end(&mut seen).unwrap();
        (String::from_utf8(seen).unwrap(), child.wait().unwrap())
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(partial.starts_with("t0 t1 t2 t3 t4 t5 "), "{partial}");
    assert!(!partial.contains("t199"), "stopped early");
    // The request was dropped: the stand-in saw the connection close.
    assert!(env.ollama.wait_for_aborts(1, Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_stream_keeps_the_partial_answer_and_fails() {
    let env = Env::new().await;
    env.ollama.push_reply(
        Reply::tokens(&["partial", " answer", " lost"]).fault(Fault::Drop { after: 2 }),
    );
    let out = env.run(&["ask", "x"]).await;
    assert_eq!(code(&out), 4);
    assert_eq!(stdout(&out), "partial answer\n");
    assert!(
        stderr(&out).contains("ended before the answer was complete")
            || stderr(&out).contains("broke"),
        "{}",
        stderr(&out)
    );

    env.ollama
        .push_reply(Reply::tokens(&["kept", " too"]).fault(Fault::ErrorLine {
            after: 1,
            message: "model runner crashed".into(),
        }));
    let out = env.run(&["ask", "--json", "x"]).await;
    assert_eq!(code(&out), 4);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["answer"], "kept");
    assert_eq!(v["complete"], false);
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("model runner crashed"), "{message}");
    assert!(
        message.contains("(after 4 characters of the answer)"),
        "{message}"
    );
    assert_eq!(v["error"]["exit_code"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personality_show_prints_the_system_prompt_exactly_as_sent() {
    let env = Env::new().await;
    let out = env
        .run(&[
            "personality",
            "show",
            "sage",
            "--system",
            "Answer in French.",
        ])
        .await;
    assert_eq!(code(&out), 0);
    let catalog = conductor_core::PersonalityCatalog::builtin();
    let expected =
        conductor_core::compose(&catalog.load("sage").unwrap(), Some("Answer in French."));
    assert_eq!(stdout(&out), expected);

    let out = env
        .run(&[
            "ask",
            "-p",
            "sage",
            "--system",
            "Answer in French.",
            "bonjour",
        ])
        .await;
    assert_eq!(code(&out), 0);
    assert_eq!(
        env.ollama.requests_to("/api/chat")[0].messages()[0].1,
        expected
    );

    let out = env.run(&["personality", "list"]).await;
    let text = stdout(&out);
    for name in ["yollayah *", "forge", "sage"] {
        assert!(text.contains(name), "{text}");
    }

    let out = env.run(&["ask", "--no-personality", "plain"]).await;
    assert_eq!(code(&out), 0);
    let messages = env.ollama.requests_to("/api/chat")[1].messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].0, "user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_show_tells_origins_and_hides_the_token() {
    let env = Env::new().await;
    let mut cmd = env.cmd(&["-m", "from-flag", "config", "show"]);
    cmd.env("CONDUCTOR_OLLAMA_TOKEN", "sk-top-secret")
        .env("CONDUCTOR_PERSONALITY", "forge");
    let out = env.run_with(cmd, None).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.starts_with("model") && l.contains("from-flag") && l.ends_with("flag")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("personality")
            && l.contains("forge")
            && l.ends_with("environment")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("gpu.policy") && l.ends_with("default")),
        "{text}"
    );
    assert!(text.contains("(set, hidden)"), "{text}");
    assert!(!text.contains("sk-top-secret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_reaches_ollama_but_never_the_logs() {
    let env = Env::new().await;
    let mut cmd = env.cmd(&["--log", "trace,http=trace", "ask", "--json", "hi"]);
    cmd.env("CONDUCTOR_OLLAMA_TOKEN", "sk-top-secret");
    let out = env.run_with(cmd, None).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("residency checked"),
        "trace logs were written"
    );
    assert!(!stderr(&out).contains("sk-top-secret"));
    assert!(!stdout(&out).contains("sk-top-secret"));
    let request = env.ollama.requests_to("/api/chat").pop().unwrap();
    assert_eq!(
        request.header("authorization"),
        Some("Bearer sk-top-secret")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prompt_is_not_logged_at_info() {
    let env = Env::new().await;
    let out = env
        .run(&["--log", "info", "ask", "my secret question"])
        .await;
    assert_eq!(code(&out), 0);
    assert!(stderr(&out).contains("answer complete"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("my secret question"));
    let out = env.run(&["--log", "nope=debug", "ask", "x"]).await;
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("unknown log component"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_doctor_and_gpu_status() {
    let env = Env::new().await;
    env.ollama
        .set_residency("llama3.2:3b", Residency::gpu(4_152_782_848).context(4096));
    let out = env.run(&["doctor"]).await;
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    for line in [
        "✓ Ollama: version 0.24.0",
        "✓ model: llama3.2:3b is present",
        "✓ residency: 100% GPU",
        "all good",
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
    let out = env.run(&["models"]).await;
    assert_eq!(code(&out), 0);
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.starts_with("llama3.2:3b") && l.contains("100% GPU")),
        "{text}"
    );
    assert!(text.contains("tiny:latest"));

    let out = env.run(&["gpu", "status"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("llama3.2:3b"), "{}", stdout(&out));

    let out = env.run(&["-m", "absent:1b", "doctor"]).await;
    assert_eq!(code(&out), 5);
    assert!(
        stdout(&out).contains("ollama pull absent:1b"),
        "{}",
        stdout(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_shows_progress_and_fails_clearly_offline() {
    let env = Env::new().await;
    let out = env.run(&["pull", "llama3.2:1b"]).await;
    assert_eq!(code(&out), 4);
    assert!(
        stderr(&out).contains("cannot reach the model registry"),
        "{}",
        stderr(&out)
    );

    env.ollama.set_pull_layers(&[
        (
            "sha256:74701a8c35f6c8d9a4b91f3f3497643001d63e0c7a84e085bed452548fa88d45",
            1_321_082_688,
        ),
        (
            "sha256:966de95ca8a62200913e3f8bfbf84c8494536f1b94b49166851e76644e966396",
            1_429,
        ),
    ]);
    let out = env.run(&["pull", "llama3.2:1b"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "pulled llama3.2:1b\n");
    let log = stderr(&out);
    assert!(
        log.contains("pulling manifest") && log.contains("verifying sha256 digest"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_reports_ratios_against_raw_http() {
    let env = Env::new().await;
    let out = env
        .run(&[
            "bench",
            "-n",
            "2",
            "--tokens",
            "4",
            "--part",
            "in-process",
            "--json",
        ])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let v = &v["in_process"];
    assert_eq!(v["runs"], 2);
    assert!(v["overhead_ratio"]["ttft"].as_f64().unwrap() > 0.0);
    assert!(
        v["conductor_turn2"]["prompt_eval_ms"]["median"]
            .as_f64()
            .is_some()
    );
    // Two chat turns and one raw request per run.
    assert_eq!(env.ollama.requests_to("/api/chat").len(), 6);
}

#[test]
fn completions_generate_for_every_shell() {
    let home = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = command(home.path(), "127.0.0.1:1")
            .args(["completions", shell, "--static"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("conductor") && text.contains("personality"),
            "{shell}"
        );
    }
}

#[test]
fn help_documents_the_exit_codes() {
    let home = tempfile::tempdir().unwrap();
    let out = command(home.path(), "127.0.0.1:1")
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for line in ["3    the model is not fully on the GPU", "130  interrupted"] {
        assert!(text.contains(line), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_model_load_does_not_time_out() {
    let env = Env::new().await;
    env.ollama
        .push_reply(Reply::tokens(&["loaded"]).first_byte_delay(Duration::from_millis(1500)));
    let started = Instant::now();
    let out = env.run(&["ask", "x"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "loaded\n");
    assert!(started.elapsed() >= Duration::from_millis(1500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_matrix_at_the_command_line() {
    let env = Env::new().await;
    let config = env.home.path().join("fast.toml");
    std::fs::write(
        &config,
        "[ollama]\nidle_timeout = \"300ms\"\nmax_retries = 2\n",
    )
    .unwrap();
    let cfg = config.to_str().unwrap();

    // 503 until the retries run out: a clear error, exit 4; three requests were sent.
    for _ in 0..3 {
        env.ollama.push_reply(Reply::status(
            503,
            "server busy, please try again.  maximum pending requests exceeded",
        ));
    }
    let out = env.run(&["--config", cfg, "ask", "x"]).await;
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Ollama is busy (HTTP 503) after 3 attempts"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("OLLAMA_MAX_QUEUE"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.ollama.requests_to("/api/chat").len(), 3);

    // 429 once, then an answer: retried transparently.
    env.ollama
        .push_reply(Reply::status(429, "too many requests"));
    env.ollama.push_reply(Reply::tokens(&["after retry"]));
    let out = env.run(&["--config", cfg, "ask", "x"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "after retry\n");

    // A malformed line: a typed error naming the problem, the partial answer kept.
    env.ollama
        .push_reply(Reply::tokens(&["good", " bad"]).fault(Fault::Malformed {
            after: 1,
            line: "{not json".into(),
        }));
    let out = env.run(&["--config", cfg, "ask", "x"]).await;
    assert_eq!(code(&out), 4);
    assert_eq!(stdout(&out), "good\n");
    assert!(
        stderr(&out).contains("malformed response from Ollama"),
        "{}",
        stderr(&out)
    );

    // A stall longer than the idle timeout.
    env.ollama
        .push_reply(Reply::tokens(&["before", " after"]).fault(Fault::Stall {
            after: 1,
            stall: Duration::from_secs(5),
        }));
    let out = env.run(&["--config", cfg, "ask", "x"]).await;
    assert_eq!(code(&out), 4);
    assert_eq!(stdout(&out), "before\n");
    assert!(
        stderr(&out).contains("no data from Ollama for 300 ms while streaming the answer"),
        "{}",
        stderr(&out)
    );

    // An unresolvable host.
    let out = env
        .run(&["--host", "no-such-host.invalid", "ask", "x"])
        .await;
    assert_eq!(code(&out), 4);
    assert!(
        stderr(&out).contains("cannot reach Ollama at http://no-such-host.invalid:11434"),
        "{}",
        stderr(&out)
    );

    // Lines split at every byte, through the whole binary.
    env.ollama.push_reply(
        Reply::tokens(&["ünï", "cödé ", "🦀"]).chunking(conductor_tests::Chunking::SplitEvery(1)),
    );
    let out = env.run(&["ask", "x"]).await;
    assert_eq!(stdout(&out), "ünïcödé 🦀\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_needs_a_terminal() {
    let env = Env::new().await;
    let out = env.run(&["chat"]).await;
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("`conductor chat` needs a terminal"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fix_is_paid_once_shown_and_forgotten_on_request() {
    let env = Env::new().await;
    // No NVML on this machine: the fix rests on Ollama's own numbers.
    env.ollama.set_residency(
        "m3b",
        Residency::split(25_712_097_280, 7_265_650_688).context(131_072),
    );
    env.ollama
        .set_residency_if_option("m3b", "num_ctx", Residency::gpu(4_152_782_848));
    env.ollama.reply_with(&["fits"]);
    let out = env
        .run(&["ask", "-m", "m3b", "--gpu-policy", "fix", "hi"])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "fits\n");
    let text = stderr(&out);
    assert!(
        text.contains("did not fit on the GPU; changed: num_ctx 131072"),
        "{text}"
    );
    assert!(text.contains("remembered for later runs"), "{text}");
    assert!(
        text.contains("under [options]") && text.contains("num_ctx = "),
        "{text}"
    );
    let state = env
        .home
        .path()
        .join(".local/state/conductor/gpu-fixes.json");
    assert!(state.is_file(), "{}", state.display());

    // The next process, after the model was unloaded: one load, with the context that fits,
    // and nothing to say unless asked.
    env.ollama.evict_all();
    let loads = env.ollama.requests_to("/api/generate").len();
    let out = env
        .run(&["ask", "-m", "m3b", "--gpu-policy", "fix", "again"])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    let new_loads = env.ollama.requests_to("/api/generate")[loads..].to_vec();
    assert_eq!(new_loads.len(), 1);
    assert!(new_loads[0].json.as_ref().unwrap()["options"]["num_ctx"].is_u64());

    // Shown where the settings are shown.
    let out = env.run(&["gpu", "status"]).await;
    assert!(
        stdout(&out).contains("GPU fixes remembered"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("m3b:latest on "), "{}", stdout(&out));
    let out = env.run(&["config", "show", "--json"]).await;
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["remembered_gpu_fixes"][0]["model"], "m3b:latest");

    // Forgotten on request.
    let out = env.run(&["gpu", "forget", "m3b"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("forgot 1 GPU fix for "),
        "{}",
        stdout(&out)
    );
    let out = env.run(&["gpu", "status", "--json"]).await;
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["remembered_fixes"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_killed_by_gpu_memory_exits_3() {
    let env = Env::new().await;
    env.ollama.push_fault(
        "/api/generate",
        Fault::Status {
            status: 500,
            body: "llama runner process has terminated: CUDA error: the resource allocation failed"
                .into(),
            json: true,
        },
    );
    let out = env.run(&["ask", "-m", "m3b", "hi"]).await;
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let text = stderr(&out);
    assert!(text.contains("the GPU ran out of memory"), "{text}");
    assert!(text.contains("resource allocation failed"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bench_measures_whole_processes_beside_a_minimal_client() {
    let env = Env::new().await;
    env.ollama.reply_with(&["Blue", " light"]);
    let out = env
        .run(&[
            "bench",
            "--part",
            "processes",
            "--json",
            "-n",
            "1",
            "-m",
            "m3b-4k",
        ])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let rows = v["processes"].as_array().unwrap();
    let clients: Vec<&str> = rows.iter().map(|r| r["client"].as_str().unwrap()).collect();
    assert!(clients[0].starts_with("minimal client"), "{clients:?}");
    assert!(
        clients.contains(&"conductor ask (default: enforce)"),
        "{clients:?}"
    );
    for row in rows {
        assert_eq!(row["ok_runs"], 1, "{row}");
        assert!(row["first_byte_ms_median"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["peak_rss_mib_median"].as_f64().unwrap() > 0.0, "{row}");
    }
    // The measured asks save their conversations, as a user's do, but not into the user's
    // store.
    let store = env.home.path().join(".local/share/conductor/sessions");
    let saved = std::fs::read_dir(&store).map_or(0, |entries| entries.count());
    assert_eq!(saved, 0, "bench conversations in {}", store.display());
}

/// Runs `args` with stdout on /dev/full: every write fails with ENOSPC.
async fn run_into_full_disk(env: &Env, args: &[&str]) -> Output {
    let mut cmd = env.cmd(args);
    tokio::task::spawn_blocking(move || {
        cmd.stdout(std::fs::File::create("/dev/full").unwrap())
            .stderr(Stdio::piped())
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

/// Runs `args` with a stdout whose reader has gone away before anything was read.
async fn run_into_closed_pipe(env: &Env, args: &[&str]) -> Output {
    let mut cmd = env.cmd(args);
    tokio::task::spawn_blocking(move || {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_failures_never_panic_a_closed_pipe_ends_quietly_a_full_disk_is_an_error() {
    let env = Env::new().await;
    env.ollama
        .set_residency("llama3.2:3b", Residency::gpu(4_152_782_848).context(4096));
    let long = "word ".repeat(20_000);
    env.ollama
        .set_default_reply(Reply::tokens(&[long.as_str(), "end"]));
    let commands: &[&[&str]] = &[
        &["ask", "hi"],
        &["ask", "--json", "hi"],
        &["config", "show"],
        &["config", "show", "--json"],
        &["models"],
        &["doctor"],
        &["personality", "list"],
        &["personality", "show"],
        &["gpu", "status"],
        &["gpu", "status", "--json"],
        &["completions", "bash"],
    ];
    if std::path::Path::new("/dev/full").exists() {
        for args in commands {
            let out = run_into_full_disk(&env, args).await;
            let err = stderr(&out);
            assert!(!err.contains("panicked"), "{args:?}: {err}");
            assert_eq!(code(&out), 1, "{args:?}: {err}");
            assert!(err.contains("cannot write the output"), "{args:?}: {err}");
        }
    } else {
        eprintln!("skipped the /dev/full half: no /dev/full here");
    }
    for args in commands {
        let out = run_into_closed_pipe(&env, args).await;
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(
            code(&out) == 0 || (args[0] == "doctor" && code(&out) != 101),
            "{args:?}: exit {} {err}",
            code(&out)
        );
        assert!(
            !err.contains("error:") || args[0] == "doctor",
            "{args:?}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_always_answers_failures_included() {
    let env = Env::new().await;
    // Unreachable.
    let mut cmd = command(env.home.path(), "127.0.0.1:1");
    cmd.args(["ask", "--json", "hi"]);
    let out = env.run_with(cmd, None).await;
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["error"]["kind"], "unreachable");
    assert_eq!(v["error"]["exit_code"], 4);
    assert_eq!(v["complete"], false);
    assert!(
        v["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("ollama serve")
    );
    // Not resident: the diagnosis comes with it.
    env.ollama.set_residency(
        "m3b-numgpu1",
        Residency::split(25_712_097_280, 7_909_500_928).context(131_072),
    );
    let out = env.run(&["ask", "--json", "-m", "m3b-numgpu1", "hi"]).await;
    assert_eq!(code(&out), 3);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["error"]["kind"], "not_resident");
    assert!(v["error"]["diagnosis"]["fix"].as_str().is_some());
    // Missing model, and a usage error: one JSON object each.
    let out = env.run(&["ask", "--json", "-m", "ghost", "hi"]).await;
    assert_eq!(code(&out), 5);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["error"]["kind"], "model_not_found");
    let out = env.run(&["ask", "--json", ""]).await;
    assert_eq!(code(&out), 2);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["error"]["kind"], "usage");
    // Other --json commands answer in JSON too.
    let mut cmd = command(env.home.path(), "127.0.0.1:1");
    cmd.args(["gpu", "verify", "--json"]);
    let out = env.run_with(cmd, None).await;
    assert_eq!(code(&out), 4);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["error"]["kind"], "unreachable");
}

/// Sends `signal` once some of the answer was printed; returns what was printed and the exit.
async fn stop_midway(env: &Env, args: &[&str], signal: &str) -> (String, i32) {
    let tokens: Vec<String> = (0..200).map(|i| format!("t{i} ")).collect();
    let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
    env.ollama
        .push_reply(Reply::tokens(&tokens).chunk_delay(Duration::from_millis(20)));
    let mut cmd = env.cmd(args);
    let signal = signal.to_owned();
    let json = args.contains(&"--json");
    tokio::task::spawn_blocking(move || {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        if json {
            std::thread::sleep(Duration::from_millis(600));
        } else {
            let mut seen = Vec::new();
            let mut buf = [0u8; 256];
            while !String::from_utf8_lossy(&seen).contains("t5 ") {
                let n = out.read(&mut buf).unwrap();
                assert!(n > 0, "stdout closed early");
                seen.extend_from_slice(&buf[..n]);
            }
        }
        Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .unwrap();
        let mut rest = Vec::new();
        out.read_to_end(&mut rest).unwrap();
        let status = child.wait().unwrap();
        (
            String::from_utf8_lossy(&rest).into_owned(),
            status.code().unwrap_or(-1),
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_and_sighup_stop_like_ctrl_c_keeping_the_partial_answer() {
    let env = Env::new().await;
    let (_, status) = stop_midway(&env, &["ask", "count"], "TERM").await;
    assert_eq!(status, 143);
    let (_, status) = stop_midway(&env, &["ask", "count"], "HUP").await;
    assert_eq!(status, 129);
    let (json, status) = stop_midway(&env, &["ask", "--json", "count"], "TERM").await;
    assert_eq!(status, 143);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["error"]["kind"], "interrupted");
    assert_eq!(v["error"]["exit_code"], 143);
    assert!(v["answer"].as_str().unwrap().starts_with("t0 t1 "), "{v}");
    assert_eq!(v["complete"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_cut_by_the_token_limit_says_so() {
    let env = Env::new().await;
    env.ollama
        .push_reply(Reply::tokens(&["cut", " short"]).done_reason("length"));
    let out = env.run(&["ask", "hi"]).await;
    assert_eq!(code(&out), 0);
    assert_eq!(stdout(&out), "cut short\n");
    assert!(
        stderr(&out).contains("cut at the token limit"),
        "{}",
        stderr(&out)
    );
    env.ollama
        .push_reply(Reply::tokens(&["cut", " short"]).done_reason("length"));
    let out = env.run(&["ask", "--json", "hi"]).await;
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["complete"], false);
    assert_eq!(v["cut_by_length"], true);
    assert_eq!(v["done_reason"], "length");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_0_unloads_after_answering_under_the_default_policy() {
    let env = Env::new().await;
    env.ollama.reply_with(&["bye"]);
    let out = env.run(&["ask", "--keep-alive", "0", "hi"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "bye\n");
    let chat = env
        .ollama
        .requests_to("/api/chat")
        .pop()
        .unwrap()
        .json
        .unwrap();
    assert_eq!(chat["keep_alive"], "0s");
    assert!(
        env.ollama.loaded_models().is_empty(),
        "unloaded after the answer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_flag_values_are_usage_errors_that_never_echo_a_password() {
    let env = Env::new().await;
    for args in [
        &["ask", "--num-ctx", "0", "hi"][..],
        &["ask", "-m", "", "hi"],
        &["ask", "-m", "  ", "hi"],
        &["ask", "--keep-alive", "soon", "hi"],
        &["pull", ""],
    ] {
        let out = env.run(args).await;
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
    }
    let out = env
        .run(&["--host", "http://me:s3cret@gpu box:11434", "ask", "hi"])
        .await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(!stderr(&out).contains("s3cret"), "{}", stderr(&out));
    assert!(!stdout(&out).contains("s3cret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escape_sequences_from_the_server_never_reach_the_terminal() {
    let env = Env::new().await;
    env.ollama.push_fault(
        "/api/chat",
        Fault::Status {
            status: 500,
            body: "boom\u{1b}]0;pwned\u{7}\u{1b}[2J".into(),
            json: true,
        },
    );
    let out = env.run(&["--gpu-policy", "off", "ask", "hi"]).await;
    assert_eq!(code(&out), 4);
    let err = stderr(&out);
    assert!(err.contains("boom"), "{err}");
    assert!(!err.contains('\u{1b}') && !err.contains('\u{7}'), "{err:?}");
    // Into a pipe the answer is the user's data, byte for byte.
    env.ollama.reply_with(&["a\u{1b}[1mb"]);
    let out = env.run(&["ask", "hi"]).await;
    assert_eq!(stdout(&out), "a\u{1b}[1mb\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_stay_out_of_logs_unless_named() {
    let env = Env::new().await;
    env.ollama.reply_with(&["ok"]);
    let out = env
        .run(&["--log", "trace", "ask", "my-secret-question"])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("answer complete"), "trace logs on");
    assert!(
        !stderr(&out).contains("my-secret-question"),
        "{}",
        stderr(&out)
    );
    let out = env
        .run(&["--log", "trace,prompts=trace", "ask", "my-secret-question"])
        .await;
    assert!(
        stderr(&out).contains("my-secret-question"),
        "{}",
        stderr(&out)
    );
}
