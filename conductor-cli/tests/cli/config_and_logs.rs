//! Configuration and personalities as shown, and what the logs keep out: tokens, prompts.

use super::common::{Env, code, stderr, stdout};

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
