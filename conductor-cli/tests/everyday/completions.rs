//! Shell completions that know personalities and local models.

use std::time::{Duration, Instant};

use conductor_tests::StandIn;

use crate::common::{Env, code, run_with, stderr, stdout};

/// The candidates the shell would get for the last word of `words` (bash's protocol, as the
/// registration script calls it).
async fn complete(env: &Env, host: &str, words: &[&str]) -> (Vec<String>, Duration) {
    let mut cmd = env.bare(&["--"]);
    cmd.args(words)
        .env("OLLAMA_HOST", host)
        .env("COMPLETE", "bash")
        .env("_CLAP_COMPLETE_INDEX", (words.len() - 1).to_string())
        .env("_CLAP_COMPLETE_COMP_TYPE", "9")
        .env("_CLAP_COMPLETE_SPACE", "true")
        .env("_CLAP_IFS", "\n");
    let started = Instant::now();
    let out = run_with(cmd, None).await;
    let took = started.elapsed();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let names = stdout(&out)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    (names, took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_know_personalities_and_local_models() {
    let env = Env::new().await;
    let dir = env.path(".config/conductor/personalities");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("pirate.toml"),
        "name = \"pirate\"\ndescription = \"Arr\"\nprompt = \"Talk like a pirate.\"\n",
    )
    .unwrap();
    let host = env.ollama.host();
    let (names, _) = complete(&env, &host, &["conductor", "ask", "-p", ""]).await;
    assert!(names.contains(&"yollayah".to_owned()), "{names:?}");
    assert!(names.contains(&"pirate".to_owned()), "{names:?}");
    let (names, _) = complete(&env, &host, &["conductor", "ask", "-p", "pi"]).await;
    assert_eq!(names, ["pirate"]);
    let (names, _) = complete(&env, &host, &["conductor", "-m", ""]).await;
    for model in ["tiny:latest", "llama3.2:3b", "m3b:latest"] {
        assert!(names.contains(&model.to_owned()), "{model} in {names:?}");
    }
    let (names, _) = complete(&env, &host, &["conductor", "chat", "--model", "ti"]).await;
    assert_eq!(names, ["tiny:latest"]);
    let (names, _) = complete(&env, &host, &["conductor", "show", "m3b-c"]).await;
    assert!(names.contains(&"m3b-cpu:latest".to_owned()), "{names:?}");
    // A --host typed on the line wins over OLLAMA_HOST (here a dead address).
    let (names, _) = complete(
        &env,
        "127.0.0.1:1",
        &["conductor", "--host", &host, "ask", "-m", "ti"],
    )
    .await;
    assert_eq!(names, ["tiny:latest"]);
    let flag = format!("--host={host}");
    let (names, _) = complete(&env, "127.0.0.1:1", &["conductor", "show", &flag, "ti"]).await;
    assert_eq!(names, ["tiny:latest"]);
    // Server down: nothing, quickly.
    let (names, took) = complete(&env, "127.0.0.1:1", &["conductor", "ask", "-m", ""]).await;
    assert!(names.is_empty(), "{names:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    // A server that does not answer in time: nothing, after the short timeout.
    let silent = StandIn::start().await;
    silent.push_fault("/api/tags", conductor_tests::Fault::NoResponse);
    let (names, took) = complete(&env, &silent.host(), &["conductor", "ask", "-m", ""]).await;
    assert!(names.is_empty(), "{names:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    // A name that does not resolve (the lookup runs on a blocking thread that the TAB must
    // not wait for).
    let (names, took) = complete(
        &env,
        "http://no-such-host.invalid:11434",
        &["conductor", "ask", "-m", ""],
    )
    .await;
    assert!(names.is_empty(), "{names:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_survive_a_config_file_that_does_not_load() {
    let env = Env::new().await;
    let dir = env.path(".config/conductor/personalities");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("pirate.toml"),
        "name = \"pirate\"\ndescription = \"Arr\"\nprompt = \"Talk like a pirate.\"\n",
    )
    .unwrap();
    std::fs::write(env.path(".config/conductor/conductor.toml"), "model = [\n").unwrap();
    let host = env.ollama.host();
    // The platform's personality directory is still read.
    let (names, _) = complete(&env, &host, &["conductor", "ask", "-p", "pi"]).await;
    assert_eq!(names, ["pirate"]);
    // The server from the environment is still asked.
    let (names, _) = complete(&env, &host, &["conductor", "ask", "-m", "ti"]).await;
    assert_eq!(names, ["tiny:latest"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_print_the_dynamic_script_or_the_static_one() {
    let env = Env::new().await;
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = env.run(&["completions", shell]).await;
        assert_eq!(code(&out), 0, "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        assert!(
            script.contains("COMPLETE") && script.contains("conductor"),
            "{shell}: {script}"
        );
    }
    let out = env.run(&["completions", "bash", "--static"]).await;
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains("personality"));
    // The script `COMPLETE=bash conductor` prints is the same.
    let mut cmd = env.bare(&[]);
    cmd.env("COMPLETE", "bash");
    let out = run_with(cmd, None).await;
    assert_eq!(code(&out), 0);
    assert_eq!(
        stdout(&out),
        stdout(&env.run(&["completions", "bash"]).await)
    );
}
