#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, SystemTime};

use super::*;
use crate::backend::Message;

/// A session file exactly as conductor wrote it before names, origins and per-answer models.
const FORMAT_1_BEFORE_NAMES: &str = r#"{
  "format": 1,
  "id": "20260101-120000-00af",
  "created": "2026-01-01T12:00:00Z",
  "updated": "2026-01-01T12:05:00Z",
  "model": "llama3.2:3b",
  "personality": "yollayah",
  "system": "be brief",
  "messages": [
    {
      "role": "user",
      "content": "Why is the sky blue?"
    },
    {
      "role": "assistant",
      "content": "Rayleigh scat",
      "incomplete": true
    }
  ]
}
"#;

fn session(id: &str, updated: &str, question: &str) -> Session {
    let mut session = Session::new("llama3.2:3b", "yollayah");
    session.id = id.into();
    session.updated = updated.into();
    session.messages = vec![
        Message::user(question).into(),
        SessionMessage::answer(Message::assistant("answer"), "llama3.2:3b", "yollayah"),
    ];
    session
}

fn store() -> (tempfile::TempDir, SessionStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::new(dir.path().join("sessions"));
    (dir, store)
}

#[test]
fn ids_are_safe_file_names() {
    assert!(valid_id("20260101-120000-00af"));
    assert!(!valid_id("../etc/passwd"));
    assert!(!valid_id(".hidden"));
    assert!(!valid_id(""));
    let id = new_id(jiff::Timestamp::UNIX_EPOCH);
    assert!(id.starts_with("19700101-000000-"), "{id}");
    assert!(valid_id(&id));
}

#[test]
fn shorten_cuts_on_characters() {
    assert_eq!(shorten("a\nb  c", 10), "a b c");
    assert_eq!(shorten("ééééé", 3), "éé…");
}

#[test]
fn a_file_written_before_names_and_models_still_loads() {
    let (_dir, store) = store();
    std::fs::create_dir_all(store.dir()).unwrap();
    std::fs::write(store.path("20260101-120000-00af"), FORMAT_1_BEFORE_NAMES).unwrap();
    let s = store.load("20260101-120000-00af").unwrap();
    assert_eq!(s.name, None);
    assert_eq!(s.origin, Origin::Chat);
    assert_eq!(s.system.as_deref(), Some("be brief"));
    assert_eq!(s.messages.len(), 2);
    assert_eq!(s.messages[0].content, "Why is the sky blue?");
    assert!(s.messages[1].incomplete);
    assert_eq!(s.messages[1].model, None);
    assert_eq!(s.models(), ["llama3.2:3b"], "the session's model stands in");
    // Saved again, it is still format 1, and keeps every field it had.
    store.save(&s).unwrap();
    let again: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.path(&s.id)).unwrap()).unwrap();
    let old: serde_json::Value = serde_json::from_str(FORMAT_1_BEFORE_NAMES).unwrap();
    assert_eq!(again["format"], 1);
    assert_eq!(again["messages"], old["messages"]);
    assert_eq!(again["origin"], "chat");
}

#[test]
fn each_answer_keeps_its_model_and_personality() {
    let (_dir, store) = store();
    let mut s = Session::new("llama3.2:3b", "yollayah").with_origin(Origin::Cli);
    s.record(
        &[Message::user("q1"), Message::assistant("a1")],
        "llama3.2:3b",
        "yollayah",
    );
    s.record(
        &[Message::user("q2"), Message::assistant("a2")],
        "qwen3:8b",
        "forge",
    );
    store.save(&s).unwrap();
    let text = std::fs::read_to_string(store.path(&s.id)).unwrap();
    let back = store.load(&s.id).unwrap();
    assert_eq!(back, s);
    assert_eq!(
        back.messages[0].model, None,
        "a question records nothing: {text}"
    );
    assert_eq!(back.messages[1].model.as_deref(), Some("llama3.2:3b"));
    assert_eq!(back.messages[3].model.as_deref(), Some("qwen3:8b"));
    assert_eq!(back.messages[3].personality.as_deref(), Some("forge"));
    assert_eq!(back.models(), ["llama3.2:3b", "qwen3:8b"]);
    assert_eq!(
        (back.model.as_str(), back.personality.as_str()),
        ("qwen3:8b", "forge")
    );
    assert_eq!(back.origin, Origin::Cli);
    assert!(text.contains("\"origin\": \"cli\""), "{text}");
    assert_eq!(back.history()[2], Message::user("q2"));
}

#[test]
fn names_are_checked() {
    assert!(validate_name("work").is_ok());
    assert!(validate_name("Rust questions, 2026").is_ok());
    for bad in [
        "",
        "  ",
        "a/b",
        "a\\b",
        " padded",
        "line\nbreak",
        &"x".repeat(65),
    ] {
        assert!(
            matches!(validate_name(bad), Err(SessionError::InvalidName { .. })),
            "{bad:?}"
        );
    }
    assert!(
        validate_name(&"é".repeat(64)).is_ok(),
        "characters, not bytes"
    );
}

#[test]
fn a_fork_drops_the_name() {
    let mut s = session("20260101-000000-0008", "2026-01-01T00:00:00Z", "q");
    s.name = Some("work".into());
    let copy = s.fork();
    assert_ne!(copy.id, s.id);
    assert_eq!(copy.name, None, "names are unique");
    assert_eq!(copy.messages, s.messages);
}

#[test]
fn sessions_are_found_by_id_name_or_unique_prefix() {
    let (_dir, store) = store();
    let mut a = session("20260101-000000-aaaa", "2026-01-01T10:00:00Z", "first");
    a.name = Some("work".into());
    store.save(&a).unwrap();
    store
        .save(&session(
            "20260101-000000-aabb",
            "2026-01-02T10:00:00Z",
            "second",
        ))
        .unwrap();
    store
        .save(&session(
            "20260205-000000-cccc",
            "2026-02-05T10:00:00Z",
            "third",
        ))
        .unwrap();
    assert_eq!(
        store.resolve("20260101-000000-aabb").unwrap().id(),
        "20260101-000000-aabb"
    );
    assert_eq!(store.resolve("work").unwrap().id(), "20260101-000000-aaaa");
    assert_eq!(
        store.resolve("202602").unwrap().id(),
        "20260205-000000-cccc"
    );
    match store.resolve("20260101") {
        Err(SessionError::Ambiguous { matches, .. }) => assert_eq!(
            matches,
            ["20260101-000000-aabb", "20260101-000000-aaaa"],
            "newest first"
        ),
        other => panic!("expected ambiguous, got {other:?}"),
    }
    assert!(matches!(
        store.resolve("nope"),
        Err(SessionError::NotFound(_))
    ));
    assert_eq!(
        store.find_exact("work").unwrap().unwrap().id,
        "20260101-000000-aaaa"
    );
    assert!(store.find_exact("2026").unwrap().is_none(), "no prefixes");
}

#[test]
fn names_are_unique_and_renaming_takes_the_lock() {
    let (_dir, store) = store();
    let a = session("20260101-000000-aaaa", "2026-01-01T10:00:00Z", "a");
    let b = session("20260101-000000-bbbb", "2026-01-01T11:00:00Z", "b");
    store.save(&a).unwrap();
    store.save(&b).unwrap();
    store.rename(&a.id, Some("work")).unwrap();
    assert_eq!(store.load(&a.id).unwrap().name.as_deref(), Some("work"));
    assert!(store.check_name("work", &a.id).is_ok(), "its own name");
    match store.rename(&b.id, Some("work")) {
        Err(SessionError::NameTaken { name, id }) => {
            assert_eq!((name.as_str(), id.as_str()), ("work", a.id.as_str()));
        }
        other => panic!("expected the name to be taken, got {other:?}"),
    }
    assert!(matches!(
        store.rename(&b.id, Some("a/b")),
        Err(SessionError::InvalidName { .. })
    ));
    let held = store.lock(&b.id).unwrap();
    assert!(matches!(
        store.rename(&b.id, Some("home")),
        Err(SessionError::InUse { .. })
    ));
    drop(held);
    store.rename(&a.id, None).unwrap();
    assert_eq!(store.load(&a.id).unwrap().name, None);
}

#[test]
fn a_scan_lists_damaged_files_without_moving_them() {
    let (_dir, store) = store();
    let good = session("20260101-000000-aaaa", "2026-01-01T10:00:00Z", "good");
    store.save(&good).unwrap();
    let broken = store.path("20260102-000000-dddd");
    std::fs::write(&broken, "{\"format\": 1, \"id\": ").unwrap();
    let future = store.path("20260103-000000-ffff");
    std::fs::write(&future, r#"{"format": 2, "conversation": []}"#).unwrap();
    std::fs::write(store.dir().join("notes.txt"), "not a session").unwrap();
    let listed = store.scan().unwrap();
    assert_eq!(listed.len(), 3, "{listed:?}");
    let damaged: Vec<&Damaged> = listed
        .iter()
        .filter_map(|l| match l {
            Listed::Damaged(d) => Some(d),
            Listed::Session(_) => None,
        })
        .collect();
    assert_eq!(damaged.len(), 2);
    let newer = damaged.iter().find(|d| d.newer).unwrap();
    assert_eq!(newer.id, "20260103-000000-ffff");
    let bad = damaged.iter().find(|d| !d.newer).unwrap();
    assert_eq!(bad.path, broken);
    assert!(bad.reason.contains("EOF"), "{}", bad.reason);
    assert!(broken.exists() && future.exists(), "nothing moved");
    assert_eq!(store.list().unwrap().len(), 1);
    // A damaged file is found by its id, so that it can be removed.
    assert!(matches!(
        store.resolve("20260102").unwrap(),
        Listed::Damaged(_)
    ));
}

#[test]
fn removing_refuses_an_open_session_unless_forced() {
    let (_dir, store) = store();
    let s = session("20260101-000000-aaaa", "2026-01-01T10:00:00Z", "q");
    store.save(&s).unwrap();
    let held = store.lock(&s.id).unwrap();
    match store.remove(&s.id, false) {
        Err(SessionError::InUse { id, pid }) => {
            assert_eq!(id, s.id);
            assert_eq!(pid, Some(std::process::id()));
        }
        other => panic!("expected in use, got {other:?}"),
    }
    assert!(store.path(&s.id).exists());
    store.remove(&s.id, true).unwrap();
    assert!(!store.path(&s.id).exists());
    drop(held);
    assert!(matches!(
        store.remove(&s.id, false),
        Err(SessionError::NotFound(_))
    ));
    assert!(matches!(
        store.remove("../x", false),
        Err(SessionError::NotFound(_))
    ));
    // Unlocked, it goes, and leaves no lock file behind.
    store.save(&s).unwrap();
    store.remove(&s.id, false).unwrap();
    assert_eq!(std::fs::read_dir(store.dir()).unwrap().count(), 0);
}

#[test]
fn the_latest_of_an_origin() {
    let (_dir, store) = store();
    let chat = session("20260101-000000-aaaa", "2026-01-03T10:00:00Z", "chat");
    let cli =
        session("20260101-000000-bbbb", "2026-01-02T10:00:00Z", "cli").with_origin(Origin::Cli);
    store.save(&chat).unwrap();
    assert!(store.latest_of(Origin::Cli).unwrap().is_none());
    store.save(&cli).unwrap();
    assert_eq!(store.latest_of(Origin::Cli).unwrap().unwrap().id, cli.id);
    assert_eq!(store.latest().unwrap().unwrap().id, chat.id);
}

#[test]
fn summaries_say_their_name_and_age() {
    let mut s = session("20260101-000000-aaaa", "2026-01-01T10:00:00Z", "Why?");
    s.name = Some("work".into());
    let (_dir, store) = store();
    store.save(&s).unwrap();
    let summary = store.list().unwrap().remove(0);
    assert!(
        summary.label().contains("[work] Why?"),
        "{}",
        summary.label()
    );
    let then = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_261_600); // 2026-01-01T10:00Z
    assert_eq!(
        summary.age_at(then + Duration::from_secs(90)),
        Some(Duration::from_secs(90))
    );
    assert_eq!(
        summary.age_at(then - Duration::from_secs(5)),
        Some(Duration::ZERO)
    );
}

#[test]
fn names_that_read_as_ids_are_refused() {
    for bad in ["2026", "20261130-17", "1-2-3", "-", "20261130-notes"] {
        assert!(
            matches!(
                validate_name(bad),
                Err(SessionError::InvalidName { reason, .. }) if reason.contains("session id")
            ),
            "{bad:?}"
        );
    }
    for good in [
        "2026 taxes",
        "notes-20261130",
        "v2",
        "1234567-x",
        "2026113-notes",
    ] {
        assert!(validate_name(good).is_ok(), "{good:?}");
    }
}

#[test]
fn an_unanswered_question_is_marked_and_sent_with_the_next_one() {
    let mut s = Session::new("m", "p");
    s.record(&[Message::user("q1"), Message::assistant("a1")], "m", "p");
    // The run stopped before the first token: only the question.
    s.record(&[Message::user("long document")], "m", "p");
    assert!(s.messages[2].unanswered);
    assert!(!s.messages[0].unanswered, "answered");
    let text = serde_json::to_string(&s).unwrap();
    assert_eq!(text.matches("\"unanswered\":true").count(), 1, "{text}");
    let back: Session = serde_json::from_str(&text).unwrap();
    assert_eq!(back, s);

    // Sent again, joined to the next question: questions and answers still alternate.
    s.record(
        &[Message::user("summarize it"), Message::assistant("summary")],
        "m",
        "p",
    );
    assert!(!s.messages[3].unanswered);
    let history = s.history();
    assert_eq!(
        history,
        vec![
            Message::user("q1"),
            Message::assistant("a1"),
            Message::user("long document\n\nsummarize it"),
            Message::assistant("summary"),
        ]
    );
    // Two unanswered in a row join too; one left at the end is sent as the last question.
    let mut t = Session::new("m", "p");
    t.record(&[Message::user("a")], "m", "p");
    t.record(&[Message::user("b")], "m", "p");
    assert_eq!(t.history(), vec![Message::user("a\n\nb")]);
}

#[test]
fn creating_never_replaces_another_session() {
    let (_dir, store) = store();
    let first = session("20260101-000000-0001", "2026-01-01T00:00:00Z", "first");
    store.create(&mut first.clone()).unwrap();
    // Same second, same suffix: a fresh id, the first file untouched.
    let mut second = session("20260101-000000-0001", "2026-01-01T00:00:01Z", "second");
    let path = store.create(&mut second).unwrap();
    assert_ne!(second.id, first.id);
    assert_eq!(path, store.path(&second.id));
    assert_eq!(store.load(&first.id).unwrap(), first);
    assert_eq!(store.load(&second.id).unwrap(), second);
    // No temporary files are left behind.
    let names: Vec<String> = std::fs::read_dir(store.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

#[test]
fn creating_a_taken_name_is_refused_under_the_name_lock() {
    let (_dir, store) = store();
    let mut first = session("20260101-000000-0001", "2026-01-01T00:00:00Z", "first");
    first.name = Some("foo".into());
    store.create(&mut first).unwrap();
    let mut second = session("20260101-000000-0002", "2026-01-01T00:00:01Z", "second");
    second.name = Some("foo".into());
    assert!(matches!(
        store.create(&mut second),
        Err(SessionError::NameTaken { ref id, .. }) if *id == first.id
    ));
    assert!(matches!(
        store.load(&second.id),
        Err(SessionError::NotFound(_))
    ));
    // While another process holds the name lock, a name cannot be created (after the wait).
    let held = store.lock_names().unwrap();
    second.name = Some("bar".into());
    let started = std::time::Instant::now();
    assert!(matches!(
        store.create(&mut second),
        Err(SessionError::InUse { .. })
    ));
    assert!(started.elapsed() >= Duration::from_secs(2));
    drop(held);
    store.create(&mut second).unwrap();
    assert_eq!(store.resolve("bar").unwrap().id(), second.id);
}

#[test]
fn concurrent_creations_of_one_name_make_one_session() {
    let (_dir, store) = store();
    let results: Vec<Result<PathBuf, SessionError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                scope.spawn(move || {
                    let mut s = Session::new("m", "p");
                    s.id = format!("20260101-000000-{i:04x}");
                    s.name = Some("foo".into());
                    store.create(&mut s)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let created = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(created, 1, "{results:?}");
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(e, SessionError::NameTaken { .. }))
    );
    assert!(store.resolve("foo").is_ok(), "one session has the name");
}

#[test]
fn a_lock_is_waited_for_within_the_time_given() {
    let (_dir, store) = store();
    let held = store.lock("20260101-000000-0001").unwrap();
    let err = store.lock("20260101-000000-0001").unwrap_err();
    let message = SessionError::from(err).to_string();
    assert!(
        message.contains("in use by another conductor")
            && message.contains(&format!("(pid {})", std::process::id())),
        "{message}"
    );
    let waiter = std::thread::spawn({
        let store = store.clone();
        move || store.lock_within("20260101-000000-0001", Duration::from_secs(5))
    });
    std::thread::sleep(Duration::from_millis(100));
    drop(held);
    assert!(waiter.join().unwrap().is_ok());
}

#[test]
fn saving_under_a_name_claims_it_or_writes_nothing() {
    let (_dir, store) = store();
    let mut first = session("20260101-000000-0011", "2026-01-01T00:00:00Z", "first");
    first.name = Some("foo".into());
    store.save_claiming_name(&first).unwrap();
    // Saving again under the name it already has is fine.
    store.save_claiming_name(&first).unwrap();
    let mut second = session("20260101-000000-0012", "2026-01-01T00:00:01Z", "second");
    second.name = Some("foo".into());
    assert!(matches!(
        store.save_claiming_name(&second),
        Err(SessionError::NameTaken { ref id, .. }) if *id == first.id
    ));
    assert!(matches!(
        store.load(&second.id),
        Err(SessionError::NotFound(_))
    ));
    // Without a name it is a plain save.
    second.name = None;
    store.save_claiming_name(&second).unwrap();
    assert_eq!(store.load(&second.id).unwrap(), second);
}
