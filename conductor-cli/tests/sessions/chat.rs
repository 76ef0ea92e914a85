//! `conductor chat --session`: the names and ids it takes or refuses, `/rename` under tmux.

use crate::common::tmux::{Tmux, quote, tmux_or_skip};
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
    if !tmux_or_skip("chat_session_and_rename_in_a_real_terminal") {
        return;
    }
    let env = Env::new().await;
    env.ollama.reply_with(&["Blue light scatters more."]);
    let tmux = Tmux::new(env.home.path());
    let command = |extra: &str| {
        let home = quote(env.home.path().to_str().unwrap());
        format!(
            "env -u CONDUCTOR_CONFIG -u CONDUCTOR_MODEL -u CONDUCTOR_PERSONALITY -u CONDUCTOR_LOG \
             HOME={home} XDG_DATA_HOME={home}/.local/share XDG_CONFIG_HOME={home}/.config \
             OLLAMA_HOST={host} {bin} chat {extra}; echo \"[exited $?]\"; sleep 60",
            host = env.ollama.host(),
            bin = quote(common::BIN),
        )
    };
    let type_line = |name: &str, text: &str| {
        tmux.type_text(name, text);
        tmux.keys(name, &["Enter"]);
    };

    tmux.start("one", &command("--session work"));
    tmux.wait_for("one", "New conversation 'work'").await;
    type_line("one", "Why is the sky blue?");
    tmux.wait_for("one", "Blue light scatters more.").await;
    type_line("one", "/rename sky");
    tmux.wait_for("one", "now named 'sky'").await;
    type_line("one", "/quit");
    tmux.wait_for("one", "[exited 0]").await;
    let sessions = env.sessions();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0].name.as_deref(), Some("sky"));
    assert_eq!(
        sessions[0].messages[1].model.as_deref(),
        Some("llama3.2:3b")
    );

    tmux.start("two", &command("--session sky"));
    let screen = tmux.wait_for("two", "Resumed the conversation 'sky'").await;
    assert!(screen.contains("Why is the sky blue?"), "{screen}");
    type_line("two", "/quit");
    tmux.wait_for("two", "[exited 0]").await;
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
