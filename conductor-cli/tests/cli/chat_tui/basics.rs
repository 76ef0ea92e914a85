//! The chat under tmux: a conversation, Ollama down, its flags, `/model`, `/policy`, `/pull`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use conductor_tests::{Reply, StandIn};

use super::{Tmux, command, quote, tmux_or_skip};
use crate::BIN;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_in_a_real_terminal() {
    if !tmux_or_skip("chat_in_a_real_terminal") {
        return;
    }
    let ollama = StandIn::start().await;
    ollama.push_reply(
        Reply::tokens(&[
            "The ",
            "answer ",
            "is ",
            "**42**",
            ".\n\n",
            "```\n",
            "let x = 42;\n",
            "```",
        ])
        .chunk_delay(Duration::from_millis(10)),
    );
    let tokens: Vec<String> = (1..=400).map(|i| format!("w{i} ")).collect();
    let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
    ollama.push_reply(Reply::tokens(&tokens).chunk_delay(Duration::from_millis(25)));
    let home = tempfile::tempdir().unwrap();
    let tmux = Tmux::new(home.path());

    tmux.start("chat", &command(home.path(), &ollama.host(), ""));
    tmux.wait_for("chat", "Ask Yollayah anything").await;
    // The start-up check loaded the model: the badge shows where it runs.
    tmux.wait_for("chat", "100% GPU").await;

    tmux.type_text("chat", "What is the answer?");
    tmux.keys("chat", &["Enter"]);
    let screen = tmux.wait_for("chat", "let x = 42;").await;
    assert!(screen.contains("What is the answer?"), "{screen}");
    assert!(
        screen.contains("The answer is 42."),
        "markdown rendered:\n{screen}"
    );
    tmux.wait_for("chat", "tok/s").await;

    // A long answer, stopped with Esc: the partial answer stays, marked stopped.
    tmux.type_text("chat", "Count for a while");
    tmux.keys("chat", &["Enter"]);
    tmux.wait_for("chat", "w5 ").await;
    tmux.keys("chat", &["Escape"]);
    let screen = tmux.wait_for("chat", "[stopped]").await;
    assert!(!screen.contains("w400"), "{screen}");

    tmux.type_text("chat", "/quit");
    tmux.keys("chat", &["Enter"]);
    tmux.wait_for("chat", "[exited 0]").await;

    // The conversation was saved, user-only.
    let sessions = home.path().join("data/conductor/sessions");
    let files: Vec<PathBuf> = std::fs::read_dir(&sessions)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(
        text.contains("What is the answer?") && text.contains("\"incomplete\": true"),
        "{text}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&files[0]), 0o600);
        assert_eq!(mode(&sessions), 0o700);
    }

    // --resume continues it.
    tmux.start("again", &command(home.path(), &ollama.host(), "--resume"));
    let screen = tmux.wait_for("again", "Resumed the conversation").await;
    assert!(screen.contains("[stopped]"), "{screen}");
    tmux.keys("again", &["C-d"]);
    tmux.wait_for("again", "[exited 0]").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ollama_down_in_a_real_terminal() {
    if !tmux_or_skip("ollama_down_in_a_real_terminal") {
        return;
    }
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let home = tempfile::tempdir().unwrap();
    let tmux = Tmux::new(home.path());
    tmux.start(
        "down",
        &command(home.path(), &format!("127.0.0.1:{port}"), ""),
    );
    let screen = tmux.wait_for("down", "Ollama is down").await;
    assert!(
        screen.contains("ollama serve"),
        "the fix is shown:\n{screen}"
    );
    tmux.type_text("down", "hello?");
    tmux.keys("down", &["Enter"]);
    tmux.wait_for("down", "[not sent]").await;
    tmux.keys("down", &["C-c", "C-c"]);
    tmux.wait_for("down", "[exited 0]").await;
}

/// The chat's own options are clap's like every command's: `--help` answers (the separate
/// program that once opened the UI called `--help` an error), and `--sessions-dir` moves the
/// conversations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_help_and_sessions_dir() {
    let help = Command::new(BIN).args(["chat", "--help"]).output().unwrap();
    assert!(help.status.success(), "{help:?}");
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("--resume") && text.contains("--sessions-dir"),
        "{text}"
    );

    if !tmux_or_skip("chat_help_and_sessions_dir, its half in tmux") {
        return;
    }
    let ollama = StandIn::start().await;
    ollama.set_default_reply(Reply::tokens(&["Kept", "."]));
    let home = tempfile::tempdir().unwrap();
    let elsewhere = home.path().join("elsewhere");
    let tmux = Tmux::new(home.path());
    let extra = format!("--sessions-dir {}", quote(elsewhere.to_str().unwrap()));
    tmux.start("dir", &command(home.path(), &ollama.host(), &extra));
    tmux.wait_for("dir", "100% GPU").await;
    tmux.type_text("dir", "where is this kept?");
    tmux.keys("dir", &["Enter"]);
    tmux.wait_for("dir", "tok/s").await;
    tmux.type_text("dir", "/quit");
    tmux.keys("dir", &["Enter"]);
    tmux.wait_for("dir", "[exited 0]").await;

    let saved: Vec<PathBuf> = std::fs::read_dir(&elsewhere)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert!(
        std::fs::read_to_string(&saved[0])
            .unwrap()
            .contains("where is this kept?")
    );
    assert!(!home.path().join("data/conductor/sessions").exists());
}

/// `/model NAME` asks the server first and says where the new model runs; `/policy` changes
/// the policy for the chat and shows the new verdict at once; a failed `/pull` says why, and
/// one that succeeds switches to the model it pulled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_switch_policy_and_pull_in_a_real_terminal() {
    if !tmux_or_skip("model_switch_policy_and_pull_in_a_real_terminal") {
        return;
    }
    let ollama = StandIn::start().await;
    ollama.add_model(conductor_tests::ModelFixture::llama_3b("qwen3:8b"));
    ollama.set_residency(
        "qwen3:8b",
        conductor_tests::Residency::split(25_712_097_280, 7_265_650_688),
    );
    let home = tempfile::tempdir().unwrap();
    let tmux = Tmux::new(home.path());
    tmux.start("switch", &command(home.path(), &ollama.host(), ""));
    tmux.wait_for("switch", "100% GPU").await;

    tmux.type_text("switch", "/model nosuch:1b");
    tmux.keys("switch", &["Enter"]);
    let screen = tmux
        .wait_for(
            "switch",
            "Model nosuch:1b is not on the server: still using llama3.2:3b",
        )
        .await;
    assert!(screen.contains("/pull nosuch:1b downloads it"), "{screen}");
    assert!(
        screen.contains("│ llama3.2:3b │"),
        "not switched:\n{screen}"
    );

    tmux.type_text("switch", "/model qwen3:8b");
    tmux.keys("switch", &["Enter"]);
    let screen = tmux
        .wait_for(
            "switch",
            "Model: qwen3:8b: not fully on the GPU: questions will be refused",
        )
        .await;
    assert!(!screen.contains("checking where it runs"), "{screen}");
    tmux.wait_for("switch", "72%/28% CPU/GPU enforce").await;

    tmux.type_text("switch", "/policy warn");
    tmux.keys("switch", &["Enter"]);
    tmux.wait_for(
        "switch",
        "GPU policy: warn for this chat; qwen3:8b: not fully on the GPU: answering anyway",
    )
    .await;
    tmux.wait_for("switch", "72%/28% CPU/GPU warn").await;
    tmux.type_text("switch", "/policy");
    tmux.keys("switch", &["Enter"]);
    tmux.wait_for("switch", "Last check of qwen3:8b: answered anyway")
        .await;

    // The stand-in answers a pull as an Ollama without internet does.
    tmux.type_text("switch", "/clear");
    tmux.keys("switch", &["Enter"]);
    tmux.type_text("switch", "/pull nosuch:1b");
    tmux.keys("switch", &["Enter"]);
    tmux.wait_for("switch", "Cannot pull nosuch:1b").await;
    assert_eq!(ollama.requests_to("/api/pull").len(), 1);

    // With a registry to pull from: the progress, then the switch to the new model, which
    // answers.
    ollama.set_pull_layers(&[("sha256:6a0746a1ec1aa", 4_000_000)]);
    ollama.reply_with(&["fresh ", "weights"]);
    tmux.type_text("switch", "/pull newmodel:1b");
    tmux.keys("switch", &["Enter"]);
    tmux.wait_for("switch", "Pulled newmodel:1b: switching to it")
        .await;
    tmux.wait_for("switch", "│ newmodel:1b │").await;
    tmux.type_text("switch", "hello");
    tmux.keys("switch", &["Enter"]);
    tmux.wait_for("switch", "fresh weights").await;
    let chat = ollama.requests_to("/api/chat").pop().unwrap();
    assert_eq!(chat.json.unwrap()["model"], "newmodel:1b");

    tmux.type_text("switch", "/quit");
    tmux.keys("switch", &["Enter"]);
    tmux.wait_for("switch", "[exited 0]").await;
}
