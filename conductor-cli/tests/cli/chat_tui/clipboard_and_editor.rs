//! `/copy` to the terminal clipboard, and composing in `$EDITOR` while the chat goes on.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use conductor_tests::{Reply, StandIn};

use super::{Tmux, command, command_with_env, command_with_pid_env, quote, sessions, tmux_or_skip};

/// `/copy` and `/copy N` reach the terminal as OSC 52: tmux, with `set-clipboard on`, turns the
/// sequence into a paste buffer, which holds exactly the text copied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_reaches_the_terminal_clipboard() {
    if !tmux_or_skip("copy_reaches_the_terminal_clipboard") {
        return;
    }
    let ollama = StandIn::start().await;
    ollama.push_reply(Reply::tokens(&[
        "Run this:\n\n",
        "```sh\n",
        "cargo test --all\n",
        "```\n\nThen relax.",
    ]));
    let home = tempfile::tempdir().unwrap();
    let tmux = Tmux::new(home.path());
    tmux.start("copy", &command(home.path(), &ollama.host(), ""));
    assert!(
        tmux.run(&["set", "-g", "set-clipboard", "on"])
            .status
            .success()
    );
    tmux.wait_for("copy", "100% GPU").await;
    tmux.type_text("copy", "/copy");
    tmux.keys("copy", &["Enter"]);
    tmux.wait_for("copy", "Nothing to copy").await;

    tmux.type_text("copy", "How do I test?");
    tmux.keys("copy", &["Enter"]);
    let screen = tmux.wait_for("copy", "Then relax.").await;
    assert!(
        screen.contains("╭─ sh [1]"),
        "the block is numbered:\n{screen}"
    );

    tmux.type_text("copy", "/copy 1");
    tmux.keys("copy", &["Enter"]);
    tmux.wait_for("copy", "Sent 16 characters (code block 1)")
        .await;
    let buffer = tmux.run(&["show-buffer"]);
    assert_eq!(String::from_utf8_lossy(&buffer.stdout), "cargo test --all");

    tmux.type_text("copy", "/copy");
    tmux.keys("copy", &["Enter"]);
    tmux.wait_for("copy", "(the last answer)").await;
    let buffer = tmux.run(&["show-buffer"]);
    assert_eq!(
        String::from_utf8_lossy(&buffer.stdout),
        "Run this:\n\n```sh\ncargo test --all\n```\n\nThen relax."
    );
    // The screen is intact: the sequences drew nothing.
    let screen = tmux.screen("copy");
    assert!(
        screen.contains("How do I test?") && screen.contains("Message"),
        "{screen}"
    );
    assert!(!screen.contains("52;c"), "{screen}");

    tmux.type_text("copy", "/quit");
    tmux.keys("copy", &["Enter"]);
    tmux.wait_for("copy", "[exited 0]").await;
}

/// Ctrl+X Ctrl+E hands the input to `$EDITOR` (here a script that appends to the file) and
/// puts the result in the input box, unsent; Enter then sends it to the server. A later chat
/// finds that message with Ctrl+R.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_in_the_editor() {
    if !tmux_or_skip("compose_in_the_editor") {
        return;
    }
    let ollama = StandIn::start().await;
    ollama.set_default_reply(Reply::tokens(&["Got", " it."]));
    let home = tempfile::tempdir().unwrap();
    let editor = home.path().join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nprintf ' and a line from the editor\\n' >> \"$1\"\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let env = format!("EDITOR={} VISUAL=", quote(editor.to_str().unwrap()));
    let tmux = Tmux::new(home.path());
    tmux.start(
        "edit",
        &command_with_env(home.path(), &ollama.host(), &env, ""),
    );
    tmux.wait_for("edit", "100% GPU").await;
    tmux.type_text("edit", "typed first");
    // Keys typed fast after Ctrl+X Ctrl+E (read in the same burst, or queued while the editor
    // starts) reach neither the input handed to the editor nor the chat: no Enter sends it.
    tmux.keys("edit", &["C-x", "C-e", "z", "z", "Enter"]);
    let screen = tmux
        .wait_for("edit", "typed first and a line from the editor")
        .await;
    assert!(!screen.contains("zz"), "{screen}");
    // Time for a stray Enter to have sent something.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        tmux.display("edit", "#{alternate_on}"),
        "1",
        "the UI is back"
    );
    assert!(
        ollama.requests_to("/api/chat").iter().all(|r| r
            .json
            .as_ref()
            .is_none_or(|j| j["messages"].as_array().is_none_or(Vec::is_empty))),
        "not sent by itself:\n{screen}"
    );

    tmux.keys("edit", &["Enter"]);
    tmux.wait_for("edit", "Got it.").await;
    let sent = ollama
        .requests_to("/api/chat")
        .iter()
        .filter_map(|r| r.json.clone())
        .any(|j| {
            j["messages"].as_array().is_some_and(|m| {
                m.iter()
                    .any(|m| m["content"] == "typed first and a line from the editor")
            })
        });
    assert!(sent, "the edited text reached the server");

    // `/edit` does the same from an empty input.
    tmux.type_text("edit", "/edit");
    tmux.keys("edit", &["Enter"]);
    tmux.wait_for_count("edit", "and a line from the editor", 2)
        .await;
    tmux.keys("edit", &["C-u"]);

    tmux.type_text("edit", "/quit");
    tmux.keys("edit", &["Enter"]);
    tmux.wait_for("edit", "[exited 0]").await;

    // A new chat: Ctrl+R finds the message of the conversation before.
    tmux.start("again", &command(home.path(), &ollama.host(), ""));
    tmux.wait_for("again", "100% GPU").await;
    tmux.keys("again", &["C-r"]);
    tmux.type_text("again", "line from");
    let screen = tmux.wait_for("again", "History search").await;
    assert!(
        screen.contains("typed first and a line from the editor"),
        "{screen}"
    );
    // Enter puts it in the input box (the box's text starts right after its border).
    tmux.keys("again", &["Enter"]);
    let screen = tmux
        .wait_for("again", "│typed first and a line from the editor")
        .await;
    assert!(!screen.contains("History search"), "{screen}");
    tmux.keys("again", &["C-c", "C-c", "C-c"]);
    tmux.wait_for("again", "[exited 0]").await;
}

/// While the editor of `/edit` has the terminal the chat goes on behind it: the answer being
/// streamed arrives and is saved. SIGTERM then stops the editor, keeps what it wrote, gives
/// the terminal back and saves, as it does without an editor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_goes_on_while_the_editor_is_open_and_a_signal_ends_both() {
    if !tmux_or_skip("the_chat_goes_on_while_the_editor_is_open_and_a_signal_ends_both") {
        return;
    }
    let ollama = StandIn::start().await;
    ollama.set_default_reply(
        Reply::tokens(&[
            "streamed ",
            "slowly ",
            "while ",
            "editing ",
            "and ",
            "finished.",
        ])
        .chunk_delay(Duration::from_millis(400)),
    );
    let home = tempfile::tempdir().unwrap();
    let tmp = home.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let opened = home.path().join("editor-opened");
    let editor = home.path().join("editor.sh");
    // Writes, then stays open (as a user would) until it is stopped.
    std::fs::write(
        &editor,
        format!(
            "#!/bin/sh\nprintf 'half a thought\\n' > \"$1\"\ntouch {}\nexec sleep 120\n",
            quote(opened.to_str().unwrap())
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let env = format!(
        "EDITOR={} VISUAL= TMPDIR={}",
        quote(editor.to_str().unwrap()),
        quote(tmp.to_str().unwrap())
    );
    let pid_file = home.path().join("chat.pid");
    let tmux = Tmux::new(home.path());
    tmux.start(
        "bg",
        &command_with_pid_env(home.path(), &ollama.host(), &env, &pid_file),
    );
    tmux.wait_for("bg", "100% GPU").await;
    tmux.type_text("bg", "a question before editing");
    tmux.keys("bg", &["Enter"]);
    tmux.wait_for("bg", "streamed").await;
    tmux.keys("bg", &["C-x", "C-e"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !opened.exists() {
        assert!(Instant::now() < deadline, "the editor did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        tmux.display("bg", "#{alternate_on}"),
        "0",
        "the editor has the terminal"
    );

    // The answer ends while the editor is open, and is saved then, not when it closes.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let saved =
            std::fs::read_dir(home.path().join("data/conductor/sessions")).is_ok_and(|_| {
                sessions(home.path())
                    .iter()
                    .any(|(_, t)| t.contains("finished."))
            });
        if saved {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the answer was not saved while the editor was open"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !tmux.screen("bg").contains("finished."),
        "nothing drawn over the editor"
    );

    let pid = std::fs::read_to_string(&pid_file).unwrap();
    // SIGINT is the editor's while it is open (Ctrl+C there reaches the chat too): the chat
    // neither quits nor takes the terminal back.
    assert!(
        Command::new("kill")
            .args(["-s", "INT", pid.trim()])
            .status()
            .unwrap()
            .success()
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!tmux.screen("bg").contains("[exited"), "still running");
    assert_eq!(
        tmux.display("bg", "#{alternate_on}"),
        "0",
        "the editor still has the terminal"
    );
    let asked = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-s", "TERM", pid.trim()])
            .status()
            .unwrap()
            .success()
    );
    let screen = tmux.wait_for("bg", "[exited").await;
    assert!(screen.contains("[exited 0]"), "{screen}");
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "not after the editor"
    );
    assert_eq!(
        tmux.display(
            "bg",
            "#{alternate_on} #{mouse_any_flag} #{mouse_button_flag} #{mouse_standard_flag} \
             #{cursor_flag}"
        ),
        "0 0 0 0 1"
    );
    assert!(
        sessions(home.path())
            .iter()
            .any(|(_, t)| t.contains("a question before editing") && t.contains("finished.")),
        "saved"
    );
    // What the editor wrote is not lost: its file is kept, and the user is told where once
    // the terminal is the shell's again.
    let kept: Vec<PathBuf> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("conductor-message-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        std::fs::read_to_string(&kept[0]).unwrap(),
        "half a thought\n"
    );
    let told = tmux.joined_screen("bg");
    assert!(
        told.contains(&format!(
            "the chat ended while the editor was open; what you wrote is kept in {}",
            kept[0].display()
        )),
        "{told}"
    );
}
