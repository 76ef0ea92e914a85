//! Failures and exit codes: bad input and config, server faults, signals, pipes, full disks.

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use conductor_tests::{Fault, Reply, Residency};

use super::common::{Env, code, stderr, stdout};

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
