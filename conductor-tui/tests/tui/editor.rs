//! Composing in `$EDITOR`: the file round trip with small shell scripts as editors, and what
//! the app does with the outcome (the input is never lost).

#![cfg(unix)]

use std::path::Path;

use conductor_tui::app::{Action, EntryKind, NoticeLevel};
use conductor_tui::editor::{EditorError, KeptText, MAX_EDITED_BYTES, edit};
use conductor_tui::event::Event;
use crossterm::event::KeyCode;

use crate::common::*;

/// An executable script at `dir/name` with `body`; returns its path as the editor command.
fn script(dir: &Path, name: &str, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_editor_gets_the_input_and_its_file_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let mode_file = dir.path().join("mode");
    let editor = script(
        dir.path(),
        "append",
        &format!(
            "stat -c %a \"$1\" > '{}'\nprintf ' and more\\n' >> \"$1\"",
            mode_file.display()
        ),
    );
    let text = edit(&editor, "first line\nsecond").await.unwrap();
    assert_eq!(
        text, "first line\nsecond and more",
        "one trailing newline dropped"
    );
    assert_eq!(
        std::fs::read_to_string(&mode_file).unwrap().trim(),
        "600",
        "the file is the user's only"
    );
    // An editor command with arguments, as in a shell.
    let args = script(
        dir.path(),
        "with-args",
        "printf '%s' \"$1\" > /dev/null; shift 0",
    );
    assert!(edit(&format!("{args} --wait"), "x").await.is_ok());
}

#[tokio::test]
async fn a_failing_or_missing_editor_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let failing = script(dir.path(), "fail", "echo changed > \"$1\"; exit 3");
    match edit(&failing, "kept").await {
        Err(EditorError::Failed { status, .. }) => assert_eq!(status, "3"),
        other => panic!("a failure, got {other:?}"),
    }
    let removes = script(dir.path(), "rm", "rm \"$1\"");
    match edit(&removes, "kept").await {
        Err(err @ EditorError::Removed(_)) => {
            assert_eq!(
                err.to_string(),
                format!("the editor `{removes}` removed the file: nothing came back")
            );
        }
        other => panic!("removed, got {other:?}"),
    }
    match edit("/no/such/editor-xyz", "kept").await {
        Err(err @ EditorError::NotFound(_)) => {
            assert_eq!(
                err.to_string(),
                "the editor `/no/such/editor-xyz` was not found"
            );
        }
        other => panic!("not found, got {other:?}"),
    }
}

#[test]
fn ctrl_x_ctrl_e_and_slash_edit_ask_for_the_editor() {
    let mut app = app();
    type_text(&mut app, "draft");
    app.update(ctrl('x'));
    app.update(ctrl('e'));
    assert_eq!(app.take_actions(), [Action::Edit("draft".into())]);
    // Ctrl+E alone still goes to the end of the line.
    app.update(key(KeyCode::Home));
    app.update(ctrl('e'));
    assert!(app.take_actions().is_empty());
    assert_eq!(app.input.cursor(), 5);
    // Ctrl+X then another key is that key.
    app.update(ctrl('x'));
    app.update(key(KeyCode::Char('!')));
    assert_eq!(app.input.text(), "draft!");
    assert!(app.take_actions().is_empty());
    // /edit opens an empty input in the editor.
    app.input.take();
    submit(&mut app, "/edit");
    assert_eq!(app.take_actions(), [Action::Edit(String::new())]);
}

#[test]
fn the_edited_text_goes_into_the_input_unsent_and_failures_keep_it() {
    let mut app = app();
    type_text(&mut app, "draft");
    app.update(Event::Edited(Ok("a longer\n\tmessage\x1b[2J".into())));
    assert_eq!(
        app.input.text(),
        "a longer\n    message[2J",
        "as a paste: tabs become spaces, control characters go"
    );
    assert!(app.take_actions().is_empty(), "not sent");

    app.update(Event::Edited(Err(EditorError::NotFound("nvim".into()))));
    assert_eq!(app.input.text(), "a longer\n    message[2J", "untouched");
    let EntryKind::Notice(notice) = app.entries.last().unwrap().kind() else {
        panic!("a notice");
    };
    assert_eq!(notice.level, NoticeLevel::Error);
    assert_eq!(notice.title, "Not edited: the editor `nvim` was not found");
    assert!(notice.hint.as_deref().unwrap().contains("$EDITOR"));

    // An editor that removed its file: no hint to change editors.
    app.update(Event::Edited(Err(EditorError::Removed("nvim".into()))));
    assert_eq!(app.input.text(), "a longer\n    message[2J", "untouched");
    let EntryKind::Notice(notice) = app.entries.last().unwrap().kind() else {
        panic!("a notice");
    };
    assert_eq!(
        notice.title,
        "Not edited: the editor `nvim` removed the file: nothing came back"
    );
    assert_eq!(notice.hint, None);

    // An emptied file does not throw the input away.
    app.update(Event::Edited(Ok("\n".into())));
    assert_eq!(app.input.text(), "a longer\n    message[2J");
    let EntryKind::Notice(notice) = app.entries.last().unwrap().kind() else {
        panic!("a notice");
    };
    assert!(notice.title.contains("your input is kept"));
}

#[tokio::test]
async fn text_written_before_a_failing_exit_is_kept_and_comes_into_the_input() {
    let dir = tempfile::tempdir().unwrap();
    // As Vim after an error earlier in the session: the file is saved, the status is 1.
    let saves_then_fails = script(
        dir.path(),
        "vim-ish",
        "printf 'my long reply\\n' > \"$1\"; exit 1",
    );
    let err = edit(&saves_then_fails, "draft").await.unwrap_err();
    let kept = err.kept().expect("the written text is kept").clone();
    assert!(matches!(err, EditorError::Failed { ref status, .. } if status == "1"));
    assert_eq!(kept.text, KeptText::Text("my long reply".into()));
    assert_eq!(
        std::fs::read_to_string(&kept.path).unwrap(),
        "my long reply\n",
        "the file is not deleted"
    );

    let mut app = app();
    type_text(&mut app, "draft");
    app.update(Event::Edited(Err(err)));
    assert_eq!(app.input.text(), "my long reply");
    let EntryKind::Notice(notice) = app.entries.last().unwrap().kind() else {
        panic!("a notice");
    };
    assert_eq!(notice.level, NoticeLevel::Warning);
    assert_eq!(
        notice.title,
        format!("The editor `{saves_then_fails}` exited with status 1, after writing the file")
    );
    assert!(
        notice.body[0].contains(&kept.path.display().to_string()),
        "{:?}",
        notice.body
    );
    // The input it replaced is one Up away.
    app.update(key(KeyCode::Up));
    assert_eq!(app.input.text(), "draft");
    std::fs::remove_file(&kept.path).unwrap();

    // An editor that fails without writing leaves nothing behind and the input as it was.
    let quits = script(dir.path(), "cq", "exit 1");
    let err = edit(&quits, "draft").await.unwrap_err();
    assert!(err.kept().is_none());
}

#[tokio::test]
async fn a_stopped_editor_is_killed_and_what_it_wrote_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let started = dir.path().join("started");
    let editor = script(
        dir.path(),
        "slow",
        &format!(
            "printf 'half written' > \"$1\"; touch '{}'; exec sleep 30",
            started.display()
        ),
    );
    let begun = std::time::Instant::now();
    let stop = async {
        while !started.exists() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    let err = conductor_tui::editor::edit_until(&editor, "seed", stop)
        .await
        .unwrap_err();
    assert!(
        begun.elapsed() < std::time::Duration::from_secs(10),
        "not waited out"
    );
    assert!(matches!(err, EditorError::Stopped { .. }), "{err:?}");
    let kept = err.kept().unwrap();
    assert_eq!(kept.text, KeptText::Text("half written".into()));
    std::fs::remove_file(&kept.path).unwrap();
}

/// An editor that saves bytes that are not UTF-8 (a Latin-1 `é`): the text comes into the
/// input as far as it decodes, and the file, with the exact bytes, is kept and named.
#[tokio::test]
async fn a_file_that_is_not_utf8_comes_in_lossy_and_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let latin1 = script(
        dir.path(),
        "latin1",
        "printf 'caf\\351 au lait\\n' > \"$1\"",
    );
    let err = edit(&latin1, "draft").await.unwrap_err();
    assert!(matches!(err, EditorError::NotUtf8 { .. }), "{err:?}");
    let kept = err.kept().expect("kept").clone();
    assert_eq!(kept.text, KeptText::Lossy("caf\u{fffd} au lait".into()));
    assert_eq!(
        std::fs::read(&kept.path).unwrap(),
        b"caf\xe9 au lait\n",
        "the file is not deleted"
    );

    let mut app = app();
    type_text(&mut app, "draft");
    app.update(Event::Edited(Err(err)));
    assert_eq!(app.input.text(), "caf\u{fffd} au lait");
    let EntryKind::Notice(notice) = app.entries.last().unwrap().kind() else {
        panic!("a notice");
    };
    assert_eq!(notice.level, NoticeLevel::Warning);
    assert_eq!(notice.title, "The file the editor wrote is not valid UTF-8");
    let path = kept.path.display().to_string();
    assert!(notice.body[0].contains(&path), "{:?}", notice.body);
    assert!(
        notice.body[1].contains("not valid UTF-8"),
        "{:?}",
        notice.body
    );
    app.update(key(KeyCode::Up));
    assert_eq!(
        app.input.text(),
        "draft",
        "the earlier input is one Up away"
    );
    std::fs::remove_file(&kept.path).unwrap();

    // The same when the editor fails after writing such bytes.
    let fails = script(
        dir.path(),
        "latin1-fails",
        "printf '\\377' > \"$1\"; exit 1",
    );
    let err = edit(&fails, "draft").await.unwrap_err();
    assert!(matches!(err, EditorError::Failed { .. }), "{err:?}");
    let kept = err.kept().expect("kept");
    assert_eq!(kept.text, KeptText::Lossy("\u{fffd}".into()));
    assert_eq!(std::fs::read(&kept.path).unwrap(), b"\xff");
    std::fs::remove_file(&kept.path).unwrap();
}

/// A file that cannot be read back (here: larger than the cap) is kept where it is, named in
/// the notice, and the input stays as it was.
#[tokio::test]
async fn a_file_that_cannot_be_read_back_is_kept_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let huge = script(
        dir.path(),
        "huge",
        &format!(
            "head -c {} /dev/zero | tr '\\0' a > \"$1\"",
            MAX_EDITED_BYTES + 1
        ),
    );
    let err = edit(&huge, "draft").await.unwrap_err();
    assert!(matches!(err, EditorError::Unreadable { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the file the editor wrote could not be read back: it is larger than 8 MiB"
    );
    let kept = err.kept().expect("kept").clone();
    assert!(matches!(kept.text, KeptText::Unreadable(_)));
    assert_eq!(
        std::fs::metadata(&kept.path).unwrap().len(),
        MAX_EDITED_BYTES + 1,
        "the file is not deleted"
    );

    let mut app = app();
    type_text(&mut app, "draft");
    app.update(Event::Edited(Err(err)));
    assert_eq!(app.input.text(), "draft", "unchanged");
    let EntryKind::Notice(notice) = app.entries.last().unwrap().kind() else {
        panic!("a notice");
    };
    assert_eq!(notice.level, NoticeLevel::Error);
    assert!(
        notice
            .title
            .starts_with("Not edited: the file the editor wrote could not be read back")
    );
    assert!(
        notice.body[0].contains(&kept.path.display().to_string()),
        "{:?}",
        notice.body
    );
    assert_eq!(notice.body[1], "Your input is unchanged.");
    std::fs::remove_file(&kept.path).unwrap();

    // After a failing exit too: kept, named, the input unchanged.
    let huge_fails = script(
        dir.path(),
        "huge-fails",
        &format!(
            "head -c {} /dev/zero > \"$1\"; exit 2",
            MAX_EDITED_BYTES + 1
        ),
    );
    let err = edit(&huge_fails, "draft").await.unwrap_err();
    assert!(matches!(err, EditorError::Failed { .. }), "{err:?}");
    let kept = err.kept().expect("kept").clone();
    app.update(Event::Edited(Err(err)));
    assert_eq!(app.input.text(), "draft");
    let EntryKind::Notice(notice) = app.entries.last().unwrap().kind() else {
        panic!("a notice");
    };
    assert!(
        notice.body[0].contains("larger than 8 MiB"),
        "{:?}",
        notice.body
    );
    assert!(notice.body[0].contains(&kept.path.display().to_string()));
    std::fs::remove_file(&kept.path).unwrap();
}
