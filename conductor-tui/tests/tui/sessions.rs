//! Session files on disk: atomic, user-only, listed newest first, resumable.

use std::time::Duration;

use conductor_core::Message;
use conductor_tui::event::{Event, EventHandler};
use conductor_tui::session::{SaveRequest, Saver, Session, SessionError, SessionStore};

fn session(id: &str, updated: &str, question: &str) -> Session {
    let mut session = Session::new("llama3.2:3b", "yollayah");
    session.id = id.into();
    session.updated = updated.into();
    session.messages = vec![Message::user(question), Message::assistant("answer")];
    session
}

#[test]
fn saves_atomically_and_loads_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::new(dir.path().join("conductor").join("sessions"));
    let mut s = session("20260101-000000-0001", "2026-01-01T00:00:00Z", "q");
    let path = store.save(&s).unwrap();
    assert_eq!(store.load(&s.id).unwrap(), s);
    s.messages.push(Message::user("more"));
    store.save(&s).unwrap();
    assert_eq!(store.load(&s.id).unwrap(), s);
    // Only the session file: no temporary file left behind.
    let files: Vec<_> = std::fs::read_dir(store.dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files, [path]);
}

#[cfg(unix)]
#[test]
fn files_are_user_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let sessions = dir.path().join("sessions");
    // A directory that exists with looser permissions is tightened.
    std::fs::create_dir(&sessions).unwrap();
    std::fs::set_permissions(&sessions, std::fs::Permissions::from_mode(0o755)).unwrap();
    let store = SessionStore::new(&sessions);
    let path = store
        .save(&session(
            "20260101-000000-0002",
            "2026-01-01T00:00:00Z",
            "q",
        ))
        .unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&sessions), 0o700);
    // A directory the store creates is 0700 from the start.
    let fresh = SessionStore::new(dir.path().join("a").join("b"));
    fresh
        .save(&session(
            "20260101-000000-0003",
            "2026-01-01T00:00:00Z",
            "q",
        ))
        .unwrap();
    assert_eq!(mode(fresh.dir()), 0o700);
}

#[test]
fn lists_newest_first_and_finds_the_latest() {
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::new(dir.path());
    assert!(store.latest().unwrap().is_none());
    store
        .save(&session(
            "20260101-000000-aaaa",
            "2026-01-01T10:00:00Z",
            "old question",
        ))
        .unwrap();
    store
        .save(&session(
            "20260102-000000-bbbb",
            "2026-01-03T10:00:00Z",
            "newest question",
        ))
        .unwrap();
    store
        .save(&session(
            "20260103-000000-cccc",
            "2026-01-02T10:00:00Z",
            "middle",
        ))
        .unwrap();
    // Junk in the directory is skipped.
    std::fs::write(dir.path().join("broken.json"), "{not json").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
    let list = store.list().unwrap();
    let ids: Vec<_> = list.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "20260102-000000-bbbb",
            "20260103-000000-cccc",
            "20260101-000000-aaaa"
        ]
    );
    assert_eq!(list[0].title, "newest question");
    assert_eq!(list[0].messages, 2);
    assert!(list[0].label().contains("newest question"));
    assert_eq!(store.latest().unwrap().unwrap().id, "20260102-000000-bbbb");
}

#[test]
fn ids_cannot_leave_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::new(dir.path());
    assert!(matches!(
        store.load("../../etc/passwd"),
        Err(SessionError::NotFound(_))
    ));
    assert!(matches!(store.load("nope"), Err(SessionError::NotFound(_))));
}

#[test]
fn incomplete_answers_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::new(dir.path());
    let mut s = session("20260101-000000-0004", "2026-01-01T00:00:00Z", "q");
    s.messages[1].incomplete = true;
    store.save(&s).unwrap();
    let text = std::fs::read_to_string(store.path(&s.id)).unwrap();
    assert!(text.contains("\"incomplete\": true"), "{text}");
    assert!(store.load(&s.id).unwrap().messages[1].incomplete);
}

#[tokio::test]
async fn the_saver_writes_in_the_background_and_tells_failures() {
    let dir = tempfile::tempdir().unwrap();
    let mut events = EventHandler::new();
    let store = SessionStore::new(dir.path().join("s"));
    let saver = Saver::spawn(store.clone(), events.sender());
    let s = session("20260101-000000-0005", "2026-01-01T00:00:00Z", "q");
    saver.save(SaveRequest {
        session: s.clone(),
        announce: true,
    });
    let event = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .unwrap();
    match event {
        Some(Event::Saved(Ok(path))) => assert_eq!(path, store.path(&s.id)),
        other => panic!("expected a save report, got {other:?}"),
    }
    saver.finish();
    assert_eq!(store.load(&s.id).unwrap(), s);

    // A directory that cannot be created: the UI is told.
    let blocked = dir.path().join("file");
    std::fs::write(&blocked, "").unwrap();
    let saver = Saver::spawn(SessionStore::new(blocked.join("sessions")), events.sender());
    saver.save(SaveRequest {
        session: s,
        announce: false,
    });
    saver.finish();
    assert!(matches!(events.try_next(), Some(Event::Saved(Err(_)))));
}
