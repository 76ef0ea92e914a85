//! Which flags each subcommand takes, where they may stand, and the values they refuse.

use crate::common::{Env, code, run_with, stderr, stdout};
use crate::support::help;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subcommand_help_lists_only_the_flags_that_apply() {
    let env = Env::new().await;
    let completions = help(&env, &["completions", "--help"]);
    for flag in ["--gpu-policy", "--num-ctx", "--host", "--model", "--config"] {
        assert!(!completions.contains(flag), "{flag} in {completions}");
    }
    let ask = help(&env, &["ask", "--help"]);
    for flag in [
        "--gpu-policy",
        "--num-ctx",
        "--keep-alive",
        "--host",
        "--backend",
        "--personality",
        "--model",
        "--config",
        "--log",
        "--file",
        "--option",
        "-s, --system",
    ] {
        assert!(ask.contains(flag), "{flag} in {ask}");
    }
    let models = help(&env, &["models", "--help"]);
    assert!(
        models.contains("--host") && models.contains("--json"),
        "{models}"
    );
    assert!(!models.contains("--gpu-policy") && !models.contains("--personality"));
    let personality = help(&env, &["personality", "list", "--help"]);
    assert!(personality.contains("--personality") && personality.contains("--config"));
    assert!(!personality.contains("--host") && !personality.contains("--num-ctx"));
    let gpu = help(&env, &["gpu", "verify", "--help"]);
    assert!(
        gpu.contains("--gpu-policy") && gpu.contains("--num-ctx"),
        "{gpu}"
    );

    // A flag that does not apply is a usage error, not silently ignored.
    let out = env
        .bare(&["completions", "bash", "--gpu-policy", "warn"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("--gpu-policy"), "{}", stderr(&out));
    let out = env.bare(&["models", "--num-ctx", "4096"]).output().unwrap();
    assert_eq!(code(&out), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_work_before_and_after_the_subcommand_and_after_wins() {
    let env = Env::new().await;
    env.ollama.reply_with(&["ok"]);
    let host = env.ollama.host();
    // Before.
    let out = run_with(env.bare(&["--host", &host, "ask", "hi"]), None).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "ok\n");
    // After.
    let out = run_with(env.bare(&["ask", "--host", &host, "hi"]), None).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Both: the one after the subcommand wins.
    let out = run_with(
        env.bare(&[
            "--host",
            "127.0.0.1:1",
            "-m",
            "tiny",
            "--num-ctx",
            "2048",
            "ask",
            "--host",
            &host,
            "-m",
            "llama3.2:3b",
            "hi",
        ]),
        None,
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let request = env.ollama.requests_to("/api/chat").pop().unwrap();
    let body = request.json.unwrap();
    assert_eq!(body["model"], "llama3.2:3b");
    // What only came before still counts.
    assert_eq!(body["options"]["num_ctx"], 2048);
    // The server commands too.
    let out = run_with(env.bare(&["models", "--host", &host]), None).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run_with(env.bare(&["--host", &host, "ls"]), None).await;
    assert!(stdout(&out).contains("tiny:latest"), "{}", stdout(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_before_the_subcommand_are_limited_to_the_groups_it_takes() {
    let env = Env::new().await;
    let host = env.ollama.host();
    for (args, flag, command) in [
        (vec!["-m", "x", "ps"], "-m/--model", "`conductor ps`"),
        (
            vec!["-p", "nope", "--host", &host, "ps"],
            "-p/--personality",
            "`conductor ps`",
        ),
        (
            vec!["--gpu-policy", "off", "personality", "list"],
            "--gpu-policy",
            "`conductor personality list`",
        ),
        (
            vec!["--host", &host, "config", "path"],
            "--host",
            "`conductor config path`",
        ),
        (
            vec!["--log", "debug", "sessions", "list"],
            "--log",
            "`conductor sessions`",
        ),
    ] {
        let out = run_with(env.bare(&args), None).await;
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(flag) && err.contains(command),
            "{args:?}: {err}"
        );
    }
    // After the subcommand, clap says the same.
    let out = run_with(env.bare(&["ps", "-m", "x"]), None).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    // The groups a subcommand takes still work before it.
    let out = run_with(env.bare(&["--host", &host, "ps"]), None).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = env.run(&["-p", "yollayah", "personality", "show"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_refuses_an_unknown_theme() {
    let env = Env::new().await;
    let out = env.run(&["chat", "--theme", "purple"]).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("purple") && err.contains("dark"), "{err}");
}
