//! `ask` saves and `ask -c` / `--session` continue, through locks, faults and interruptions.

use std::process::{Command, Stdio};

use conductor_core::Message;
use conductor_core::session::{Origin, Session, SessionStore};
use conductor_tests::{Fault, Reply};

use crate::common::{Env, code, stderr, stdout};
use crate::support::{all_sent, pairs, saved};

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
