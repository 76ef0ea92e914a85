//! Session files on disk: atomic, user-only, listed newest first, resumable.

use std::time::Duration;

use conductor_core::Message;
use conductor_tui::event::{Event, EventHandler};
use conductor_tui::session::{SaveRequest, Saver, Session, SessionError, SessionStore};

fn session(id: &str, updated: &str, question: &str) -> Session {
    let mut session = Session::new("llama3.2:3b", "yollayah");
    session.id = id.into();
    session.updated = updated.into();
    session.messages = vec![
        Message::user(question).into(),
        Message::assistant("answer").into(),
    ];
    session
}

#[test]
fn saves_atomically_and_loads_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::new(dir.path().join("conductor").join("sessions"));
    let mut s = session("20260101-000000-0001", "2026-01-01T00:00:00Z", "q");
    let path = store.save(&s).unwrap();
    assert_eq!(store.load(&s.id).unwrap(), s);
    s.messages.push(Message::user("more").into());
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

#[tokio::test]
async fn a_name_taken_first_elsewhere_is_refused_at_the_first_save_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut events = EventHandler::new();
    let store = SessionStore::new(dir.path().join("s"));
    // Another window (or `ask --session work`) saved its conversation as 'work' a moment
    // after this window checked that the name was free.
    let mut theirs = session("20260101-000000-0007", "2026-01-01T00:00:00Z", "theirs");
    theirs.name = Some("work".into());
    store.save(&theirs).unwrap();
    let mut ours = session("20260101-000000-0008", "2026-01-01T00:00:00Z", "ours");
    ours.name = Some("work".into());
    let saver = Saver::spawn(store.clone(), events.sender());
    saver.save(SaveRequest {
        session: ours.clone(),
        announce: false,
    });
    let event = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .unwrap();
    match event {
        Some(Event::NameRefused { id, name, reason }) => {
            assert_eq!(id, ours.id);
            assert_eq!(name, "work");
            assert!(reason.contains(&theirs.id), "{reason}");
        }
        other => panic!("expected the name to be refused, got {other:?}"),
    }
    // Saved all the same, without the name; a later save (the app still says 'work' until it
    // hears) does not try again, nor take the name.
    saver.save(SaveRequest {
        session: ours.clone(),
        announce: false,
    });
    saver.finish();
    let saved = store.load(&ours.id).unwrap();
    assert_eq!(saved.name, None);
    assert_eq!(saved.messages, ours.messages);
    assert_eq!(
        store.load(&theirs.id).unwrap().name.as_deref(),
        Some("work")
    );
    assert!(events.try_next().is_none(), "told once");
}

#[test]
fn a_session_is_open_in_one_window_at_a_time() {
    use conductor_tui::lock::LockError;
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::new(dir.path().join("sessions"));
    let id = "20260101-000000-0006";
    let first = store.lock(id).unwrap();
    assert_eq!(first.path(), store.lock_path(id));
    let pid = std::fs::read_to_string(store.lock_path(id)).unwrap();
    assert_eq!(pid.trim(), std::process::id().to_string());
    // A second window (here: a second open file, which the OS locks separately) is refused and
    // told who has it.
    match store.lock(id) {
        Err(LockError::Held { id: held, pid }) => {
            assert_eq!(held, id);
            assert_eq!(pid, Some(std::process::id()));
        }
        other => panic!("expected the lock to be held, got {other:?}"),
    }
    // Released on exit: the lock file goes, and the next window gets it.
    drop(first);
    assert!(!store.lock_path(id).exists());
    let again = store.lock(id).unwrap();
    drop(again);
}

#[test]
fn the_lock_of_a_dead_window_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::new(dir.path());
    let id = "20260101-000000-0007";
    // What a killed window leaves behind: the file, with no process holding its lock.
    std::fs::write(store.lock_path(id), "4194303\n").unwrap();
    let lock = store.lock(id).unwrap();
    let pid = std::fs::read_to_string(store.lock_path(id)).unwrap();
    assert_eq!(pid.trim(), std::process::id().to_string());
    drop(lock);
    assert!(!store.lock_path(id).exists());
}

#[test]
fn a_fork_is_the_same_conversation_under_a_new_id() {
    let s = session("20260101-000000-0008", "2026-01-01T00:00:00Z", "q");
    let copy = s.fork();
    assert_ne!(copy.id, s.id);
    assert_eq!(copy.messages, s.messages);
    assert_eq!(copy.personality, s.personality);
}

#[test]
fn a_damaged_newest_session_is_set_aside_not_resumed_past_in_silence() {
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::new(dir.path());
    let good = session(
        "20260101-000000-aaaa",
        "2026-01-01T10:00:00Z",
        "older, good",
    );
    store.save(&good).unwrap();
    // The newest file, cut short (a full disk, an editor, a bad copy).
    let damaged = store.path("20260105-000000-dddd");
    std::fs::write(&damaged, "{\"format\": 1, \"id\": \"20260105-000000-dd").unwrap();
    // A later conductor's file is not ours to judge.
    let future = store.path("20260106-000000-ffff");
    std::fs::write(&future, r#"{"format": 2, "conversation": []}"#).unwrap();

    let found = store.resume_latest().unwrap();
    assert_eq!(found.session.unwrap().id, good.id);
    assert_eq!(found.set_aside.len(), 1, "{:?}", found.set_aside);
    let moved = &found.set_aside[0];
    assert_eq!(moved.from, damaged);
    let to = moved.to.clone().unwrap();
    let name = to.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with("20260105-000000-dddd.damaged-") && name.ends_with(".json"),
        "{name}"
    );
    // Moved, never deleted: the bytes are all there.
    assert!(!damaged.exists());
    assert_eq!(
        std::fs::read_to_string(&to).unwrap(),
        "{\"format\": 1, \"id\": \"20260105-000000-dd"
    );
    assert!(future.exists());
    // Set aside once: the next resume finds nothing more to say, and lists skip the copy.
    let again = store.resume_latest().unwrap();
    assert!(again.set_aside.is_empty());
    assert_eq!(store.list().unwrap().len(), 1);
}

mod chat {
    //! The chat's side of sessions: answers recorded with their model and personality,
    //! `/rename`, `chat --session NAME`.

    use conductor_core::Message;
    use conductor_tui::app::{Action, App, EntryKind, NoticeLevel};
    use conductor_tui::event::Event;
    use conductor_tui::session::{Session, SessionError, SessionStore};
    use conductor_tui::worker::WorkerEvent;

    use crate::common::*;

    fn notices(app: &App) -> Vec<(NoticeLevel, String)> {
        app.entries
            .iter()
            .filter_map(|e| match e.kind() {
                EntryKind::Notice(n) => Some((n.level, n.title.clone())),
                EntryKind::Message(_) => None,
            })
            .collect()
    }

    fn authors(app: &App) -> Vec<(String, Option<String>)> {
        app.entries
            .iter()
            .filter_map(|e| e.message())
            .filter(|m| m.role == conductor_core::Role::Assistant)
            .map(|m| (m.author.clone(), m.model.clone()))
            .collect()
    }

    #[test]
    fn each_answer_is_saved_with_the_model_and_personality_that_gave_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = SessionStore::new(dir.path());
        let mut app = app();
        answer(&mut app, "first", &["one"]);
        app.update(worker(WorkerEvent::ModelChanged("qwen3:8b".into())));
        app.update(worker(WorkerEvent::PersonalityChanged("forge".into())));
        answer(&mut app, "second", &["two"]);
        let saved = app.session_snapshot();
        let recorded: Vec<_> = saved
            .messages
            .iter()
            .map(|m| (m.model.as_deref(), m.personality.as_deref()))
            .collect();
        assert_eq!(
            recorded,
            [
                (None, None),
                (Some("llama3.2:3b"), Some("yollayah")),
                (None, None),
                (Some("qwen3:8b"), Some("forge")),
            ]
        );
        assert_eq!(saved.models(), ["llama3.2:3b", "qwen3:8b"]);
        // Resumed in another window: each answer still says who gave it, and is saved so again.
        store.save(&saved).unwrap();
        let mut other = crate::common::app();
        other.resume(store.load(&saved.id).unwrap());
        assert_eq!(
            authors(&other),
            [
                ("yollayah".to_owned(), Some("llama3.2:3b".to_owned())),
                ("forge".to_owned(), Some("qwen3:8b".to_owned())),
            ]
        );
        assert_eq!(other.session_snapshot().messages, saved.messages);
        // And the screen says it: each answer's header names its model.
        let text = screen(&render(&other, 60, 30));
        let headers: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("Yollayah") || l.starts_with("Forge"))
            .map(str::trim_end)
            .collect();
        assert_eq!(
            headers,
            ["Yollayah  llama3.2:3b", "Forge  qwen3:8b"],
            "{text}"
        );
    }

    #[test]
    fn answers_saved_before_models_were_recorded_stay_unrecorded() {
        let mut old = Session::new("llama3.2:3b", "sage");
        old.messages = vec![Message::user("q").into(), Message::assistant("a").into()];
        let mut app = app();
        app.resume(old.clone());
        assert_eq!(
            authors(&app),
            [("sage".to_owned(), None)],
            "shown as the session's"
        );
        // Nothing is guessed into the file.
        assert_eq!(app.session_snapshot().messages, old.messages);
    }

    #[test]
    fn rename_takes_the_name_once_the_store_says_it_is_free() {
        let mut app = app();
        answer(&mut app, "q", &["a"]);
        let id = app.session.id.clone();
        submit(&mut app, "/rename Rust questions");
        assert_eq!(
            app.take_actions(),
            [Action::Rename {
                id: id.clone(),
                name: "Rust questions".into()
            }]
        );
        assert_eq!(app.session.name, None, "not before the store agrees");
        app.update(Event::Renamed {
            id: id.clone(),
            result: Ok("Rust questions".into()),
        });
        assert_eq!(app.session.name.as_deref(), Some("Rust questions"));
        assert_eq!(
            app.session_snapshot().name.as_deref(),
            Some("Rust questions")
        );
        assert!(
            app.take_actions()
                .contains(&Action::Save { announce: false })
        );
        let (level, title) = notices(&app).pop().unwrap();
        assert_eq!(level, NoticeLevel::Info);
        assert!(title.contains("now named 'Rust questions'"), "{title}");

        // A name another session has: refused, the old name stays.
        submit(&mut app, "/rename work");
        app.take_actions();
        app.update(Event::Renamed {
            id,
            result: Err("the name 'work' is taken by session 20260101-000000-aaaa".into()),
        });
        assert_eq!(app.session.name.as_deref(), Some("Rust questions"));
        assert_eq!(
            notices(&app).pop().unwrap(),
            (NoticeLevel::Error, "Not renamed".into())
        );
    }

    #[test]
    fn a_name_refused_by_the_saver_is_dropped_and_said() {
        let mut app = app();
        answer(&mut app, "q", &["a"]);
        let id = app.session.id.clone();
        submit(&mut app, "/rename work");
        app.take_actions();
        app.update(Event::Renamed {
            id: id.clone(),
            result: Ok("work".into()),
        });
        app.take_actions();
        app.update(Event::NameRefused {
            id: id.clone(),
            name: "work".into(),
            reason: "session 20260101-000000-0001 is named 'work'".into(),
        });
        assert_eq!(app.session.name, None);
        let (level, title) = notices(&app).pop().unwrap();
        assert_eq!(level, NoticeLevel::Warning);
        assert!(title.contains("took the name 'work' first"), "{title}");
        // A late word about a name this conversation no longer has changes nothing.
        submit(&mut app, "/rename other");
        app.take_actions();
        app.update(Event::Renamed {
            id: id.clone(),
            result: Ok("other".into()),
        });
        app.update(Event::NameRefused {
            id,
            name: "work".into(),
            reason: String::new(),
        });
        assert_eq!(app.session.name.as_deref(), Some("other"));
    }

    #[test]
    fn rename_refuses_bad_names_and_late_answers() {
        let mut app = app();
        submit(&mut app, "/rename a/b");
        assert!(app.take_actions().is_empty());
        let (level, title) = notices(&app).pop().unwrap();
        assert_eq!(level, NoticeLevel::Error);
        assert!(title.contains("slash"), "{title}");
        // Without a name it says the current one.
        submit(&mut app, "/rename");
        assert!(notices(&app).pop().unwrap().1.contains("no name"));
        // An answer for a conversation that was since cleared names nothing.
        app.update(Event::Renamed {
            id: "20200101-000000-0000".into(),
            result: Ok("late".into()),
        });
        assert_eq!(app.session.name, None);
    }

    #[test]
    fn chat_session_opens_a_named_session_or_names_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = SessionStore::new(dir.path());
        let mut saved = Session::new("llama3.2:3b", "yollayah");
        saved.name = Some("work".into());
        saved.messages = vec![Message::user("q").into(), Message::assistant("a").into()];
        store.save(&saved).unwrap();

        let mut app = app();
        app.open_named("work", store.find_exact("work"));
        assert_eq!(app.session.id, saved.id);
        assert_eq!(app.session.name.as_deref(), Some("work"));
        assert!(notices(&app)[0].1.contains("'work'"), "{:?}", notices(&app));

        let mut app = crate::common::app();
        app.open_named("home", store.find_exact("home"));
        assert_ne!(app.session.id, saved.id);
        assert_eq!(app.session.name.as_deref(), Some("home"));

        let mut app = crate::common::app();
        app.open_named("a/b", Ok(None));
        assert_eq!(app.session.name, None);
        assert_eq!(notices(&app)[0].0, NoticeLevel::Warning);

        let mut app = crate::common::app();
        app.open_named("x", Err(SessionError::NotFound("x".into())));
        assert_eq!(notices(&app)[0].0, NoticeLevel::Warning);
    }

    #[test]
    fn the_session_picker_shows_names() {
        let dir = tempfile::tempdir().unwrap();
        let store = SessionStore::new(dir.path());
        let mut named = Session::new("llama3.2:3b", "yollayah");
        named.name = Some("work".into());
        named.messages = vec![Message::user("Why is the sky blue?").into()];
        store.save(&named).unwrap();
        let mut app = app();
        app.update(Event::Sessions(Ok(store.list().unwrap())));
        let screen = screen(&render(&app, 100, 20));
        assert!(screen.contains("[work] Why is the sky blue?"), "{screen}");
    }

    #[test]
    fn help_lists_rename() {
        let mut app = app();
        submit(&mut app, "/help");
        let help = app
            .entries
            .iter()
            .find_map(|e| match e.kind() {
                EntryKind::Notice(n) => Some(n.body.join("\n")),
                EntryKind::Message(_) => None,
            })
            .unwrap();
        assert!(help.contains("/rename NAME"), "{help}");
    }
}
