//! `conductor chat --session`: the names and ids it takes or refuses, `/rename` under tmux.

use std::path::PathBuf;
use std::process::Command;

use crate::common::{self, Env, code, stderr};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_session_refuses_a_bad_name_before_anything() {
    let env = Env::new().await;
    let out = env.run(&["chat", "--session", "a/b"]).await;
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("invalid session name"),
        "{}",
        stderr(&out)
    );
}

/// `conductor chat --session NAME` and `/rename` in a real terminal (tmux), when tmux is here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_session_and_rename_in_a_real_terminal() {
    let tmux_here = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !tmux_here {
        eprintln!("skipped: chat_session_and_rename_in_a_real_terminal: tmux is not installed");
        return;
    }
    let env = Env::new().await;
    env.ollama.reply_with(&["Blue light scatters more."]);
    let socket = env.home.path().join("tmux.sock");
    let _server = TmuxServer(socket.clone());
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .args(["-S", socket.to_str().unwrap(), "-f", "/dev/null"])
            .args(args)
            .output()
            .unwrap()
    };
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let start = |name: &str, extra: &str| {
        let home = quote(env.home.path().to_str().unwrap());
        let command = format!(
            "env -u CONDUCTOR_CONFIG -u CONDUCTOR_MODEL -u CONDUCTOR_PERSONALITY -u CONDUCTOR_LOG \
             HOME={home} XDG_DATA_HOME={home}/.local/share XDG_CONFIG_HOME={home}/.config \
             OLLAMA_HOST={host} {bin} chat {extra}; echo \"[exited $?]\"; sleep 60",
            host = env.ollama.host(),
            bin = quote(common::BIN),
        );
        let out = tmux(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "100",
            "-y",
            "30",
            &command,
        ]);
        assert!(out.status.success(), "{out:?}");
    };
    let wait_for = |name: &str, text: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let screen = String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", name]).stdout)
                .into_owned();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "waited 30 s for {text:?}:\n{screen}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    let type_line = |name: &str, text: &str| {
        assert!(
            tmux(&["send-keys", "-t", name, "-l", text])
                .status
                .success()
        );
        assert!(tmux(&["send-keys", "-t", name, "Enter"]).status.success());
    };

    start("one", "--session work");
    wait_for("one", "New conversation 'work'");
    type_line("one", "Why is the sky blue?");
    wait_for("one", "Blue light scatters more.");
    type_line("one", "/rename sky");
    wait_for("one", "now named 'sky'");
    type_line("one", "/quit");
    wait_for("one", "[exited 0]");
    let sessions = env.sessions();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0].name.as_deref(), Some("sky"));
    assert_eq!(
        sessions[0].messages[1].model.as_deref(),
        Some("llama3.2:3b")
    );

    start("two", "--session sky");
    let screen = wait_for("two", "Resumed the conversation 'sky'");
    assert!(screen.contains("Why is the sky blue?"), "{screen}");
    type_line("two", "/quit");
    wait_for("two", "[exited 0]");
}

/// The private tmux server of a test, killed however the test ends.
struct TmuxServer(PathBuf);

impl Drop for TmuxServer {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-S", self.0.to_str().unwrap_or_default(), "kill-server"])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_session_takes_an_id_and_refuses_one_that_names_nothing() {
    let env = Env::new().await;
    env.ollama.reply_with(&["ok"]);
    env.ok(&["ask", "first"]).await;
    let id = env.sessions()[0].id.clone();
    // A saved session's id passes the check (the run then stops for want of a terminal,
    // which comes after it).
    let out = env.run(&["chat", "--session", &id]).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("needs a terminal"),
        "{}",
        stderr(&out)
    );
    // An id that names nothing is refused before anything starts, with where to look.
    let out = env
        .run(&["chat", "--session", "20200101-000000-0000"])
        .await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("no session"), "{}", stderr(&out));
    assert!(stderr(&out).contains("sessions list"), "{}", stderr(&out));
    // A name is checked as a name.
    let out = env.run(&["chat", "--session", "a/b"]).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("slash"), "{}", stderr(&out));
}
