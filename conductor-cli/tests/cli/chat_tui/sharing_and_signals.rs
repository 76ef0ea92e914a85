//! Two windows on one conversation, and a signal that saves and gives the terminal back.

use std::process::Command;

use conductor_tests::{Reply, StandIn};

use super::{Tmux, command, command_with_pid, sessions, tmux_or_skip};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_windows_on_one_conversation_both_keep_their_turns() {
    if !tmux_or_skip("two_windows_on_one_conversation_both_keep_their_turns") {
        return;
    }
    let ollama = StandIn::start().await;
    ollama.set_default_reply(Reply::tokens(&["Noted", "."]));
    let home = tempfile::tempdir().unwrap();
    let tmux = Tmux::new(home.path());

    tmux.start("one", &command(home.path(), &ollama.host(), ""));
    tmux.wait_for("one", "100% GPU").await;
    tmux.type_text("one", "first window question");
    tmux.keys("one", &["Enter"]);
    tmux.wait_for("one", "Noted.").await;

    // The second window resumes the same conversation while the first still has it open.
    tmux.start("two", &command(home.path(), &ollama.host(), "--resume"));
    let screen = tmux.wait_for("two", "open in another window").await;
    assert!(screen.contains("first window question"), "{screen}");
    assert!(screen.contains("continuing it here"), "{screen}");
    tmux.type_text("two", "second window question");
    tmux.keys("two", &["Enter"]);
    tmux.wait_for("two", "tok/s").await;

    tmux.type_text("one", "first window again");
    tmux.keys("one", &["Enter"]);
    // The status bar still shows the first answer's tok/s: wait for the second answer itself.
    tmux.wait_for_count("one", "Noted.", 2).await;
    for name in ["one", "two"] {
        tmux.type_text(name, "/quit");
        tmux.keys(name, &["Enter"]);
        tmux.wait_for(name, "[exited 0]").await;
    }

    let files = sessions(home.path());
    let names: Vec<_> = files.iter().map(|(p, _)| p.clone()).collect();
    // Two conversations, no lock left behind.
    assert_eq!(files.len(), 2, "{names:?}");
    assert!(
        names.iter().all(|p| p.extension().unwrap() == "json"),
        "{names:?}"
    );
    let first = files
        .iter()
        .find(|(_, t)| t.contains("first window again"))
        .unwrap();
    let second = files
        .iter()
        .find(|(_, t)| t.contains("second window question"))
        .unwrap();
    assert_ne!(first.0, second.0);
    assert!(first.1.contains("first window question"), "{}", first.1);
    assert!(!first.1.contains("second window question"), "{}", first.1);
    assert!(second.1.contains("first window question"), "{}", second.1);
    assert!(!second.1.contains("first window again"), "{}", second.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_saves_and_gives_the_terminal_back() {
    if !tmux_or_skip("a_signal_saves_and_gives_the_terminal_back") {
        return;
    }
    let ollama = StandIn::start().await;
    ollama.set_default_reply(Reply::tokens(&["Fine", "."]));
    let home = tempfile::tempdir().unwrap();
    let tmux = Tmux::new(home.path());
    for signal in ["INT", "TERM", "HUP"] {
        let pid_file = home.path().join(format!("{signal}.pid"));
        tmux.start(
            signal,
            &command_with_pid(home.path(), &ollama.host(), &pid_file),
        );
        tmux.wait_for(signal, "100% GPU").await;
        assert_eq!(tmux.display(signal, "#{alternate_on}"), "1");
        let question = format!("asked before SIG{signal}");
        tmux.type_text(signal, &question);
        tmux.keys(signal, &["Enter"]);
        tmux.wait_for(signal, "tok/s").await;

        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let killed = Command::new("kill")
            .args(["-s", signal, pid.trim()])
            .status()
            .unwrap();
        assert!(killed.success());
        let screen = tmux.wait_for(signal, "[exited").await;
        assert!(screen.contains("[exited 0]"), "SIG{signal}:\n{screen}");
        // Out of the alternate screen, mouse reporting off, the cursor shown.
        assert_eq!(
            tmux.display(
                signal,
                "#{alternate_on} #{mouse_any_flag} #{mouse_button_flag} #{mouse_standard_flag} \
                 #{cursor_flag}"
            ),
            "0 0 0 0 1",
            "SIG{signal}"
        );
        assert!(
            sessions(home.path())
                .iter()
                .any(|(_, text)| text.contains(&question)),
            "SIG{signal}: the conversation was saved"
        );
    }
}
