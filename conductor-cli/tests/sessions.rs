//! Saved conversations from the command line: `ask` saves, `ask -c` / `--session` continue,
//! `conductor sessions` lists, shows, exports, renames and removes. Against the Ollama
//! stand-in; sessions written by the library where a test needs fixed times.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs
)]

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use conductor_core::Message;
use conductor_core::session::{Origin, Session, SessionMessage, SessionStore};
use conductor_tests::{Fault, Reply};

use common::{Env, code, stderr, stdout};

impl Env {
    /// Runs and expects success.
    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
        stdout(&out)
    }

    fn dir(&self) -> PathBuf {
        self.home.path().join(".local/share/conductor/sessions")
    }

    fn store(&self) -> SessionStore {
        SessionStore::new(self.dir())
    }

    fn sessions(&self) -> Vec<Session> {
        let store = self.store();
        store
            .list()
            .unwrap()
            .iter()
            .map(|s| store.load(&s.id).unwrap())
            .collect()
    }

    /// The messages of the last chat request, without the system message.
    fn last_sent(&self) -> Vec<(String, String)> {
        let request = self.ollama.requests_to("/api/chat").pop().unwrap();
        request.messages()
    }
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// A saved session with fixed times, written as the chat UI or `ask` would.
fn saved(store: &SessionStore, id: &str, updated: &str, question: &str) -> Session {
    let mut session = Session::new("llama3.2:3b", "yollayah");
    session.id = id.into();
    session.created = updated.into();
    session.updated = updated.into();
    session.messages = vec![
        Message::user(question).into(),
        SessionMessage::answer(Message::assistant("an answer"), "llama3.2:3b", "yollayah"),
    ];
    store.save(&session).unwrap();
    session
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_c_sends_the_earlier_conversation_after_the_personality() {
    let env = Env::new().await;
    env.ollama.push_reply(Reply::tokens(&["one"]));
    assert_eq!(env.ok(&["ask", "first question"]).await, "one\n");
    env.ollama.push_reply(Reply::tokens(&["two"]));
    let out = env.run(&["ask", "-c", "second question"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "two\n", "stdout is the answer, nothing more");
    assert_eq!(stderr(&out), "");
    let sent = env.last_sent();
    assert_eq!(sent[0].0, "system");
    assert!(sent[0].1.contains("Yollayah"));
    assert_eq!(
        sent[1..],
        pairs(&[
            ("user", "first question"),
            ("assistant", "one"),
            ("user", "second question")
        ])
    );
    // The personality is byte-identical on both turns (Ollama's prompt cache).
    let first = env.ollama.requests_to("/api/chat")[0].messages();
    assert_eq!(first[0], sent[0]);
    // One conversation, continued in place.
    let sessions = env.sessions();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0].origin, Origin::Cli);
    assert_eq!(sessions[0].messages.len(), 4);
    assert_eq!(
        sessions[0].messages[3].model.as_deref(),
        Some("llama3.2:3b")
    );

    // A plain ask starts a new conversation, and -c follows it.
    env.ollama.push_reply(Reply::tokens(&["three"]));
    env.ok(&["ask", "unrelated"]).await;
    env.ollama.push_reply(Reply::tokens(&["four"]));
    env.ok(&["ask", "-c", "and?"]).await;
    assert_eq!(
        env.last_sent()[1..],
        pairs(&[
            ("user", "unrelated"),
            ("assistant", "three"),
            ("user", "and?")
        ])
    );
    assert_eq!(env.sessions().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_answer_records_its_personality_and_show_says_so() {
    let env = Env::new().await;
    env.ollama.reply_with(&["ok"]);
    env.ok(&["ask", "-p", "forge", "q1"]).await;
    // Continued without -p: the conversation's personality goes on.
    env.ok(&["ask", "-c", "q2"]).await;
    let system = &env.last_sent()[0].1;
    let forge_first = &env.ollama.requests_to("/api/chat")[0].messages()[0].1;
    assert_eq!(system, forge_first, "the conversation's personality");
    // -p switches it from here on.
    env.ok(&["ask", "-c", "-p", "sage", "q3"]).await;
    let session = &env.sessions()[0];
    let personalities: Vec<_> = session
        .messages
        .iter()
        .map(|m| m.personality.as_deref())
        .collect();
    assert_eq!(
        personalities,
        [None, Some("forge"), None, Some("forge"), None, Some("sage")]
    );
    let shown = env.ok(&["sessions", "show", &session.id]).await;
    let headings: Vec<&str> = shown.lines().filter(|l| l.starts_with("── ")).collect();
    assert_eq!(
        headings,
        [
            "── You ──",
            "── llama3.2:3b · forge ──",
            "── You ──",
            "── llama3.2:3b · forge ──",
            "── You ──",
            "── llama3.2:3b · sage ──",
        ]
    );
    assert!(
        shown.starts_with(&format!("Session {} (cli), 6 messages", session.id)),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_session_names_a_conversation_and_continues_it_or_a_chat_one() {
    let env = Env::new().await;
    env.ollama.reply_with(&["ok"]);
    env.ok(&["ask", "--session", "work", "q1"]).await;
    env.ok(&["ask", "--session", "work", "q2"]).await;
    assert_eq!(
        env.last_sent()[1..],
        pairs(&[("user", "q1"), ("assistant", "ok"), ("user", "q2")])
    );
    let sessions = env.sessions();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].name.as_deref(), Some("work"));

    // A chat session, continued from the command line by its id prefix.
    let chat = saved(
        &env.store(),
        "20260101-000000-c4a7",
        "2026-01-01T00:00:00Z",
        "from the chat",
    );
    env.ok(&["ask", "--session", "20260101-000000-c4", "more"])
        .await;
    assert_eq!(
        env.last_sent()[1..],
        pairs(&[
            ("user", "from the chat"),
            ("assistant", "an answer"),
            ("user", "more")
        ])
    );
    let continued = env.store().load(&chat.id).unwrap();
    assert_eq!(continued.messages.len(), 4);
    assert_eq!(continued.origin, Origin::Chat, "still the chat's");

    // A name that cannot be one.
    let out = env.run(&["ask", "--session", "a/b", "q"]).await;
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("slash"), "{}", stderr(&out));
    let out = env.run(&["ask", "-c", "--session", "work", "q"]).await;
    assert_eq!(code(&out), 2, "-c and --session conflict");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_save_saves_nothing_and_json_is_unchanged() {
    let env = Env::new().await;
    env.ollama.reply_with(&["ok"]);
    env.ok(&["ask", "--no-save", "secret"]).await;
    assert!(env.sessions().is_empty());
    let json = env.ok(&["ask", "--json", "q"]).await;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "model",
            "personality",
            "answer",
            "done_reason",
            "complete",
            "cut_by_length",
            "metrics",
            "residency",
            "exit_code"
        ],
        "the same keys as before sessions"
    );
    assert_eq!(env.sessions().len(), 1, "saved all the same");
    // --sessions-dir puts it elsewhere.
    let other = env.home.path().join("elsewhere");
    env.ok(&["ask", "--sessions-dir", other.to_str().unwrap(), "q"])
        .await;
    assert_eq!(SessionStore::new(&other).list().unwrap().len(), 1);
    assert_eq!(env.sessions().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_answer_is_saved_as_incomplete_and_continued() {
    let env = Env::new().await;
    env.ollama.push_reply(
        Reply::tokens(&["partial", " answer", " lost"]).fault(Fault::Drop { after: 2 }),
    );
    let out = env.run(&["ask", "x"]).await;
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    let session = &env.sessions()[0];
    assert_eq!(session.messages.len(), 2);
    assert_eq!(session.messages[1].content, "partial answer");
    assert!(session.messages[1].incomplete);
    env.ollama.reply_with(&["ok"]);
    env.ok(&["ask", "-c", "go on"]).await;
    assert_eq!(
        env.last_sent()[1..],
        pairs(&[
            ("user", "x"),
            ("assistant", "partial answer"),
            ("user", "go on")
        ])
    );
    let shown = env.ok(&["sessions", "show", &session.id]).await;
    assert!(
        shown.contains("[incomplete: the answer was cut short]"),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_open_elsewhere_is_not_continued_nor_removed() {
    let env = Env::new().await;
    env.ollama.reply_with(&["ok"]);
    env.ok(&["ask", "q"]).await;
    let id = env.sessions()[0].id.clone();
    let held = env.store().lock(&id).unwrap();
    let out = env.run(&["ask", "-c", "more"]).await;
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "is in use by another conductor (pid {})",
            std::process::id()
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.ollama.requests_to("/api/chat").len(), 1, "nothing sent");

    let out = env.run(&["sessions", "rm", &id]).await;
    assert_eq!(code(&out), 1);
    let message = stderr(&out);
    assert!(
        message.contains(&format!("pid {}", std::process::id())),
        "{message}"
    );
    assert!(env.store().path(&id).exists());
    let out = env.run(&["sessions", "rm", "--force", &id]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("removed {id}\n"));
    assert!(!env.store().path(&id).exists());
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_list_shows_names_origins_models_and_damaged_files() {
    let env = Env::new().await;
    let out = env.run(&["sessions", "list"]).await;
    assert_eq!((code(&out), stdout(&out).as_str()), (0, ""));
    assert!(stderr(&out).contains("no saved conversations"));

    let store = env.store();
    let mut named = saved(
        &store,
        "20260101-000000-aaaa",
        "2026-01-01T10:00:00Z",
        "Why is the sky blue?",
    );
    named.name = Some("sky".into());
    named.messages.push(Message::user("and sunsets?").into());
    named.messages.push(SessionMessage::answer(
        Message::assistant("red"),
        "qwen3:8b",
        "sage",
    ));
    store.save(&named).unwrap();
    let mut cli = saved(
        &store,
        "20260102-000000-bbbb",
        "2026-01-02T10:00:00Z",
        "tail -f?",
    );
    cli.origin = Origin::Cli;
    store.save(&cli).unwrap();
    std::fs::write(store.path("20260103-000000-dddd"), "{\"format\": 1, \"id\"").unwrap();

    let text = env.ok(&["sessions", "list"]).await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].starts_with("ID "), "{text}");
    assert!(
        lines[0].contains("NAME") && lines[0].contains("UPDATED"),
        "{text}"
    );
    // Newest first; the damaged file is listed, not skipped and not moved.
    assert!(lines[1].starts_with("20260103-000000-dddd"), "{text}");
    assert!(lines[1].contains("(damaged:"), "{text}");
    assert!(lines[2].starts_with("20260102-000000-bbbb"), "{text}");
    assert!(
        lines[2].contains(" cli ") && lines[2].contains("tail -f?"),
        "{text}"
    );
    assert!(
        lines[3].contains(" sky ") && lines[3].contains(" chat "),
        "{text}"
    );
    assert!(lines[3].contains("llama3.2:3b, qwen3:8b"), "{text}");
    assert!(
        lines[3].contains("months ago") && lines[3].ends_with("Why is the sky blue?"),
        "{text}"
    );
    assert!(store.path("20260103-000000-dddd").exists());

    let json = env.ok(&["sessions", "list", "--json"]).await;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["damaged"], true);
    assert_eq!(rows[1]["origin"], "cli");
    assert_eq!(rows[2]["name"], "sky");
    assert_eq!(
        rows[2]["models"],
        serde_json::json!(["llama3.2:3b", "qwen3:8b"])
    );
    assert_eq!(rows[2]["messages"], 4);
    assert_eq!(rows[2]["title"], "Why is the sky blue?");

    // The damaged one cannot be shown, and says where it is.
    let out = env.run(&["sessions", "show", "20260103"]).await;
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("is damaged"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_named_by_id_prefix_or_name_and_mistakes_exit_2() {
    let env = Env::new().await;
    let store = env.store();
    let a = saved(
        &store,
        "20260101-000000-aaaa",
        "2026-01-01T10:00:00Z",
        "first",
    );
    saved(
        &store,
        "20260101-000000-aabb",
        "2026-01-01T11:00:00Z",
        "second",
    );
    let out = env.run(&["sessions", "show", "20260101"]).await;
    assert_eq!(code(&out), 2);
    let message = stderr(&out);
    assert!(
        message.contains("names 2 sessions")
            && message.contains("20260101-000000-aaaa")
            && message.contains("20260101-000000-aabb"),
        "{message}"
    );
    let out = env.run(&["sessions", "show", "nothing"]).await;
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("no session 'nothing'"),
        "{}",
        stderr(&out)
    );
    let out = env
        .run(&["sessions", "rm", "20260101-000000-aaaa", "nothing"])
        .await;
    assert_eq!(code(&out), 2);
    assert!(store.path(&a.id).exists(), "a typo deletes nothing");

    let out = env
        .run(&["sessions", "rename", "20260101-000000-aa", "first"])
        .await;
    assert_eq!(code(&out), 2, "ambiguous");
    assert_eq!(store.load(&a.id).unwrap().name, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_json_is_the_file_and_export_is_markdown() {
    let env = Env::new().await;
    let store = env.store();
    let mut s = saved(
        &store,
        "20260101-000000-aaaa",
        "2026-01-01T10:00:00Z",
        "Code?",
    );
    s.messages[1] = SessionMessage::answer(
        Message::assistant("Here:\n\n```rust\nfn main() {\n    println!(\"hi\");\n}\n```\n"),
        "llama3.2:3b",
        "forge",
    );
    s.name = Some("code".into());
    let path = store.save(&s).unwrap();
    let file = std::fs::read_to_string(&path).unwrap();
    assert_eq!(env.ok(&["sessions", "show", "--json", "code"]).await, file);

    let md = env.ok(&["sessions", "export", "code", "--md"]).await;
    assert_eq!(
        md,
        "# code\n\n\
         - Session: `20260101-000000-aaaa` (chat), started 2026-01-01 10:00:00Z, updated 2026-01-01 10:00:00Z\n\
         - Models: llama3.2:3b\n\
         \n## Question 1\n\nCode?\n\
         \n## Answer · llama3.2:3b · forge\n\n\
         Here:\n\n```rust\nfn main() {\n    println!(\"hi\");\n}\n```\n"
    );
    let to = env.home.path().join("code.md");
    let out = env
        .run(&["sessions", "export", "20260101", "-o", to.to_str().unwrap()])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert_eq!(std::fs::read_to_string(&to).unwrap(), md);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&to).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let out = env
        .run(&["sessions", "export", "code", "-o", "/nonexistent/dir/x.md"])
        .await;
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("cannot write"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_and_rm_all() {
    let env = Env::new().await;
    let store = env.store();
    let a = saved(&store, "20260101-000000-aaaa", "2026-01-01T10:00:00Z", "a");
    let b = saved(&store, "20260102-000000-bbbb", "2026-01-02T10:00:00Z", "b");
    assert_eq!(
        env.ok(&["sessions", "rename", "20260101", "alpha"]).await,
        "20260101-000000-aaaa is now named 'alpha'\n"
    );
    assert_eq!(store.load(&a.id).unwrap().name.as_deref(), Some("alpha"));
    let out = env.run(&["sessions", "rename", &b.id, "alpha"]).await;
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("taken by session 20260101-000000-aaaa"),
        "{}",
        stderr(&out)
    );

    assert_eq!(
        env.ok(&["sessions", "rm", "alpha"]).await,
        "removed 20260101-000000-aaaa (alpha)\n"
    );
    saved(&store, "20260103-000000-cccc", "2026-01-03T10:00:00Z", "c");
    let out = env.run(&["sessions", "rm", "--all"]).await;
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("deletes 2 saved conversations"),
        "{}",
        stderr(&out)
    );
    assert_eq!(store.list().unwrap().len(), 2);
    let removed = env.ok(&["sessions", "rm", "--all", "--yes"]).await;
    assert_eq!(removed.lines().count(), 2, "{removed}");
    assert!(store.list().unwrap().is_empty());
    let out = env.run(&["sessions", "rm", "--yes"]).await;
    assert_eq!(code(&out), 2, "--yes alone confirms nothing");
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_save_is_a_warning_and_c_without_history_starts_afresh() {
    let env = Env::new().await;
    env.ollama.reply_with(&["ok"]);
    // A file where the directory should be: the answer is given, the save is not.
    let blocked = env.home.path().join("blocked");
    std::fs::write(&blocked, "").unwrap();
    let dir = blocked.join("sessions");
    let out = env
        .run(&["ask", "--sessions-dir", dir.to_str().unwrap(), "q"])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "ok\n");
    assert!(
        stderr(&out).contains("warning: this conversation was not saved"),
        "{}",
        stderr(&out)
    );

    let out = env.run(&["ask", "-c", "hello"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no earlier `conductor ask` conversation"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.last_sent()[1..], pairs(&[("user", "hello")]));
    assert_eq!(env.sessions().len(), 1);
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

/// The roles and texts of every chat request the stand-in received, system messages included.
fn all_sent(env: &Env) -> Vec<Vec<(String, String)>> {
    env.ollama
        .requests_to("/api/chat")
        .iter()
        .map(|r| {
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            body["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    (
                        m["role"].as_str().unwrap().to_owned(),
                        m["content"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_without_personality_goes_on_without_one() {
    let env = Env::new().await;
    env.ollama.reply_with(&["ok"]);
    env.ok(&["ask", "--no-personality", "q1"]).await;
    env.ok(&["ask", "-c", "q2"]).await;
    env.ok(&["ask", "-c", "--system", "be brief", "q3"]).await;
    let sent = all_sent(&env);
    assert_eq!(sent[0], pairs(&[("user", "q1")]), "no system message");
    assert_eq!(
        sent[1],
        pairs(&[("user", "q1"), ("assistant", "ok"), ("user", "q2")]),
        "still none: the configured personality does not come back"
    );
    assert_eq!(sent[2][0], ("system".to_owned(), "be brief".to_owned()));
    let session = &env.sessions()[0];
    assert_eq!(session.personality, "");
    // Naming one brings a personality back, from then on.
    env.ok(&["ask", "-c", "-p", "yollayah", "q4"]).await;
    let last = env.last_sent();
    assert!(
        last[0].0 == "system" && last[0].1.contains("Yollayah"),
        "{last:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_c_reads_the_conversation_once_it_holds_its_lock() {
    let env = Env::new().await;
    env.ollama.reply_with(&["ok"]);
    env.ok(&["ask", "q1"]).await;
    let store = env.store();
    let id = env.sessions()[0].id.clone();
    // Another conductor holds the conversation and is about to save a turn.
    let held = store.lock(&id).unwrap();
    let mut cmd = env.cmd(&["ask", "-c", "q3"]);
    let child = tokio::task::spawn_blocking(move || {
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap()
    });
    // Long enough for `ask -c` to have found the conversation and be waiting for its lock.
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let mut other = store.load(&id).unwrap();
    other.record(
        &[Message::user("q2"), Message::assistant("from elsewhere")],
        "llama3.2:3b",
        "yollayah",
    );
    store.save(&other).unwrap();
    drop(held);
    let out = child.await.unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        env.last_sent()[1..],
        pairs(&[
            ("user", "q1"),
            ("assistant", "ok"),
            ("user", "q2"),
            ("assistant", "from elsewhere"),
            ("user", "q3")
        ]),
        "the turn saved meanwhile is continued"
    );
    let saved: Vec<String> = store
        .load(&id)
        .unwrap()
        .messages
        .iter()
        .map(|m| m.content.clone())
        .collect();
    assert_eq!(saved, ["q1", "ok", "q2", "from elsewhere", "q3", "ok"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_that_read_as_ids_are_refused() {
    let env = Env::new().await;
    env.ollama.reply_with(&["ok"]);
    // Read as ids that match nothing, not as new names.
    for name in ["2026", "20261130-17", "20261130-notes"] {
        let out = env.run(&["ask", "--session", name, "q"]).await;
        assert_eq!(code(&out), 2, "{name}");
        let message = stderr(&out);
        assert!(
            message.contains(&format!("no session '{name}'"))
                && message.contains("`conductor sessions list` shows ids"),
            "{message}"
        );
    }
    assert!(env.sessions().is_empty());
    env.ok(&["ask", "q"]).await;
    let id = env.sessions()[0].id.clone();
    let out = env.run(&["sessions", "rename", &id, "42"]).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let message = stderr(&out);
    assert!(message.contains("reads as a session id"), "{message}");
    assert!(!message.contains("conductor --help"), "{message}");
    assert_eq!(env.sessions()[0].name, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_asks_never_give_one_name_to_two_sessions() {
    let env = Env::new().await;
    // Every answer waits, so that all the runs look the name up before any saves.
    env.ollama.set_default_reply(
        Reply::tokens(&["ok"]).first_byte_delay(std::time::Duration::from_millis(400)),
    );
    let runs: Vec<_> = (0..4)
        .map(|i| {
            let mut cmd = env.cmd(&["ask", "--session", "foo", &format!("q{i}")]);
            tokio::task::spawn_blocking(move || {
                cmd.stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .output()
                    .unwrap()
            })
        })
        .collect();
    let mut warnings = 0;
    for run in runs {
        let out = run.await.unwrap();
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        if stderr(&out).contains("the name 'foo' was taken meanwhile") {
            warnings += 1;
        }
    }
    let sessions = env.sessions();
    let named: Vec<&Session> = sessions
        .iter()
        .filter(|s| s.name.as_deref() == Some("foo"))
        .collect();
    assert_eq!(named.len(), 1, "{sessions:?}");
    assert_eq!(warnings, sessions.len() - 1, "each other run said so");
    let messages: usize = sessions.iter().map(|s| s.messages.len()).sum();
    assert_eq!(messages, 8, "no question or answer lost");
    assert_eq!(env.store().resolve("foo").unwrap().id(), named[0].id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_the_server_refused_is_kept_and_sent_again() {
    let env = Env::new().await;
    env.ollama
        .push_reply(Reply::status(500, "llama runner process has terminated"));
    let out = env.run(&["ask", "long document"]).await;
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    let session = &env.sessions()[0];
    assert_eq!(session.messages.len(), 1);
    assert_eq!(session.messages[0].content, "long document");
    assert!(session.messages[0].unanswered);
    let shown = env.ok(&["sessions", "show", &session.id]).await;
    assert!(shown.contains("[not answered"), "{shown}");

    env.ollama.reply_with(&["summary"]);
    env.ok(&["ask", "-c", "summarize it"]).await;
    assert_eq!(
        env.last_sent()[1..],
        pairs(&[("user", "long document\n\nsummarize it")]),
        "joined: questions and answers still alternate"
    );
    let session = env.store().load(&session.id).unwrap();
    assert_eq!(session.messages.len(), 3);
    env.ok(&["ask", "-c", "thanks"]).await;
    assert_eq!(
        env.last_sent()[1..],
        pairs(&[
            ("user", "long document\n\nsummarize it"),
            ("assistant", "summary"),
            ("user", "thanks")
        ])
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_before_the_first_token_keeps_the_question() {
    use std::io::Write as _;
    let env = Env::new().await;
    // The model "loads" for as long as the test likes: no answer at all.
    env.ollama.push_fault("/api/chat", Fault::NoResponse);
    let mut cmd = env.cmd(&["ask", "-"]);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"a long piped document").unwrap();
    drop(stdin);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while env.ollama.requests_to("/api/chat").is_empty() {
        assert!(std::time::Instant::now() < deadline, "never asked");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(code(&out), 130, "{}", stderr(&out));
    let session = &env.sessions()[0];
    assert_eq!(session.messages.len(), 1);
    assert_eq!(session.messages[0].content, "a long piped document");
    assert!(session.messages[0].unanswered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_never_replaces_a_file_without_force() {
    let env = Env::new().await;
    let store = env.store();
    saved(
        &store,
        "20260101-000000-aaaa",
        "2026-01-01T10:00:00Z",
        "Code?",
    );
    let to = env.home.path().join("notes.md");
    std::fs::write(&to, "my notes").unwrap();
    let out = env
        .run(&["sessions", "export", "20260101", "-o", to.to_str().unwrap()])
        .await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let message = stderr(&out);
    assert!(
        message.contains("notes.md exists") && message.contains("--force"),
        "{message}"
    );
    assert_eq!(std::fs::read_to_string(&to).unwrap(), "my notes");
    let out = env
        .run(&[
            "sessions",
            "export",
            "20260101",
            "-o",
            to.to_str().unwrap(),
            "--force",
        ])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        std::fs::read_to_string(&to)
            .unwrap()
            .starts_with("# Code?\n")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&to).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "replaced by a private file");
    }
    let left: Vec<String> = std::fs::read_dir(env.home.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let out = env
        .run(&["sessions", "export", "20260101", "--force"])
        .await;
    assert_eq!(code(&out), 2, "--force needs -o");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rm_needs_a_name_a_whole_id_or_eight_characters_of_one() {
    let env = Env::new().await;
    let store = env.store();
    let a = saved(&store, "20260101-000000-aaaa", "2026-01-01T10:00:00Z", "a");
    let b = saved(&store, "20270102-000000-bbbb", "2027-01-02T10:00:00Z", "b");
    let mut c = saved(&store, "20280103-000000-cccc", "2028-01-03T10:00:00Z", "c");
    c.name = Some("cee".into());
    store.save(&c).unwrap();
    for short in ["2027", "2", "2027010"] {
        let out = env.run(&["sessions", "rm", short]).await;
        assert_eq!(code(&out), 2, "{short}");
        let message = stderr(&out);
        if short != "2" {
            assert!(
                message.contains("at least 8 characters")
                    && message.contains(&format!("conductor sessions rm {}", b.id)),
                "{message}"
            );
        }
    }
    assert_eq!(store.list().unwrap().len(), 3, "nothing deleted");
    // Other verbs keep short prefixes.
    env.ok(&["sessions", "show", "2027"]).await;
    assert_eq!(
        env.ok(&["sessions", "rm", "20270102"]).await,
        format!("removed {}\n", b.id)
    );
    assert_eq!(
        env.ok(&["sessions", "rm", &a.id]).await,
        format!("removed {}\n", a.id)
    );
    assert_eq!(
        env.ok(&["sessions", "rm", "cee"]).await,
        format!("removed {} (cee)\n", c.id)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_mistakes_say_where_the_ids_are() {
    let env = Env::new().await;
    let store = env.store();
    saved(&store, "20260101-000000-aaaa", "2026-01-01T10:00:00Z", "a");
    saved(&store, "20260101-000000-aabb", "2026-01-01T11:00:00Z", "b");
    for query in ["nothing", "20260101"] {
        let out = env.run(&["sessions", "show", query]).await;
        assert_eq!(code(&out), 2);
        let message = stderr(&out);
        assert!(
            message.contains("hint: ") && message.contains("`conductor sessions list` shows ids"),
            "{message}"
        );
        assert!(!message.contains("conductor --help"), "{message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_cut_at_the_token_limit_names_the_option_for_one_question() {
    let env = Env::new().await;
    env.ollama
        .push_reply(Reply::tokens(&["cut"]).done_reason("length"));
    let out = env.run(&["ask", "-o", "num_predict=1", "q"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let message = stderr(&out);
    assert!(
        message.contains("cut at the token limit (num_predict 1)")
            && message.contains("-o num_predict=N"),
        "{message}"
    );
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
