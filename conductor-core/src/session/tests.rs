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
