//! `conductor sessions`: list, show, export, rename and rm, and how sessions are named.

use conductor_core::Message;
use conductor_core::session::{Origin, SessionMessage};

use crate::common::{Env, code, stderr, stdout};
use crate::support::saved;

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
