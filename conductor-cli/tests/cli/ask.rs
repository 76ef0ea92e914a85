//! `ask`: the answer on stdout, stdin as prompt or context, JSON output, what reaches the tty.

use std::time::{Duration, Instant};

use conductor_tests::{Fault, Reply, Residency};

use super::command;
use super::common::{Env, code, stderr, stdout};

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
