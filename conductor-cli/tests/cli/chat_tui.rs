//! End to end in a real terminal: `conductor chat` under tmux (send-keys to type,
//! capture-pane to read the screen) against the Ollama stand-in. Skips, saying so, when tmux is
//! not installed (CI installs it with apt when it can).
//!
//! The stand-in runs in this test process (`conductor_tests::StandIn` on `127.0.0.1:0`, the
//! same server the `ollama-standin` program wraps), so nothing else needs building and each
//! reply is scripted here.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use conductor_tests::{Reply, StandIn};

use super::BIN;

/// Whether tmux runs here. When it does not, says on stderr that `test` skipped and how to run
/// it, so a machine without tmux never passes these tests silently.
fn tmux_or_skip(test: &str) -> bool {
    let available = Tmux::available();
    if !available {
        eprintln!(
            "skipped: {test}: tmux is not installed (install tmux, e.g. apt-get install tmux, to run it)"
        );
    }
    available
}

/// A private tmux server (its own socket, no user config), killed on drop.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn available() -> bool {
        Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn new(dir: &Path) -> Self {
        Self {
            socket: dir.join("tmux.sock"),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let socket = self.socket.to_str().unwrap();
        Command::new("tmux")
            .args(["-S", socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .unwrap()
    }

    /// Starts `command` in a new 100×30 session called `name`.
    fn start(&self, name: &str, command: &str) {
        let out = self.run(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "100",
            "-y",
            "30",
            command,
        ]);
        assert!(out.status.success(), "tmux new-session: {out:?}");
    }

    fn type_text(&self, name: &str, text: &str) {
        assert!(
            self.run(&["send-keys", "-t", name, "-l", text])
                .status
                .success()
        );
    }

    fn keys(&self, name: &str, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", name];
        args.extend(keys);
        assert!(self.run(&args).status.success());
    }

    /// A tmux format of the pane (`#{alternate_on}`: the terminal state the program left).
    fn display(&self, name: &str, format: &str) -> String {
        let out = self.run(&["display-message", "-p", "-t", name, format]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The screen with wrapped lines joined (a long path on one line).
    fn joined_screen(&self, name: &str) -> String {
        let out = self.run(&["capture-pane", "-p", "-J", "-t", name]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self, name: &str) -> String {
        let out = self.run(&["capture-pane", "-p", "-t", name]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen of `name` shows `text` at least `count` times (a second answer,
    /// where the status bar still shows the first one's figures); panics after 30 s.
    async fn wait_for_count(&self, name: &str, text: &str, count: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen(name);
            if screen.matches(text).count() >= count {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "waited 30 s for {count}× {text:?}; the screen shows:\n{screen}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the screen of `name` shows `text`; panics with the screen after 30 s.
    async fn wait_for(&self, name: &str, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen(name);
            if screen.contains(text) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "waited 30 s for {text:?}; the screen shows:\n{screen}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The shell command that runs `conductor chat` with a private home, data and config directory,
/// pointed at the stand-in, and reports its exit status on the screen.
fn command(home: &Path, host: &str, extra: &str) -> String {
    command_with_env(home, host, "", extra)
}

/// As [`command`], with more `NAME=value` words for `env` (already quoted).
fn command_with_env(home: &Path, host: &str, env: &str, extra: &str) -> String {
    let home = home.to_str().unwrap();
    format!(
        "env -u CONDUCTOR_CONFIG -u CONDUCTOR_MODEL -u CONDUCTOR_PERSONALITY -u CONDUCTOR_LOG \
         HOME={home} XDG_DATA_HOME={home}/data XDG_CONFIG_HOME={home}/config \
         OLLAMA_HOST={host} CONDUCTOR_GPU_POLICY=enforce {env} {binary} chat {extra}; \
         echo \"[exited $?]\"; sleep 60",
        home = quote(home),
        binary = quote(BIN),
    )
}

/// As [`command`], and the binary's pid is written to `pid_file` (a shell that `exec`s it).
fn command_with_pid(home: &Path, host: &str, pid_file: &Path) -> String {
    command_with_pid_env(home, host, "", pid_file)
}

/// As [`command_with_pid`], with more `NAME=value` words for `env` (already quoted).
fn command_with_pid_env(home: &Path, host: &str, env: &str, pid_file: &Path) -> String {
    let script = format!(
        "echo $$ > {}; exec {} chat",
        quote(pid_file.to_str().unwrap()),
        quote(BIN)
    );
    let home = home.to_str().unwrap();
    format!(
        "env -u CONDUCTOR_CONFIG -u CONDUCTOR_MODEL -u CONDUCTOR_PERSONALITY -u CONDUCTOR_LOG \
         HOME={home} XDG_DATA_HOME={home}/data XDG_CONFIG_HOME={home}/config \
         OLLAMA_HOST={host} CONDUCTOR_GPU_POLICY=enforce {env} sh -c {script}; \
         echo \"[exited $?]\"; sleep 60",
        home = quote(home),
        script = quote(&script),
    )
}

/// The session files of a home, with their text.
fn sessions(home: &Path) -> Vec<(PathBuf, String)> {
    let dir = home.join("data/conductor/sessions");
    let mut files: Vec<(PathBuf, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            (p, text)
        })
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_in_a_real_terminal() {
    if !tmux_or_skip("chat_in_a_real_terminal") {
        return;
    }
    let ollama = StandIn::start().await;
    ollama.push_reply(
        Reply::tokens(&[
            "The ",
            "answer ",
            "is ",
            "**42**",
            ".\n\n",
            "```\n",
            "let x = 42;\n",
            "```",
        ])
        .chunk_delay(Duration::from_millis(10)),
    );
    let tokens: Vec<String> = (1..=400).map(|i| format!("w{i} ")).collect();
    let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
    ollama.push_reply(Reply::tokens(&tokens).chunk_delay(Duration::from_millis(25)));
    let home = tempfile::tempdir().unwrap();
    let tmux = Tmux::new(home.path());

    tmux.start("chat", &command(home.path(), &ollama.host(), ""));
    tmux.wait_for("chat", "Ask Yollayah anything").await;
    // The start-up check loaded the model: the badge shows where it runs.
    tmux.wait_for("chat", "100% GPU").await;

    tmux.type_text("chat", "What is the answer?");
    tmux.keys("chat", &["Enter"]);
    let screen = tmux.wait_for("chat", "let x = 42;").await;
    assert!(screen.contains("What is the answer?"), "{screen}");
    assert!(
        screen.contains("The answer is 42."),
        "markdown rendered:\n{screen}"
    );
    tmux.wait_for("chat", "tok/s").await;

    // A long answer, stopped with Esc: the partial answer stays, marked stopped.
    tmux.type_text("chat", "Count for a while");
    tmux.keys("chat", &["Enter"]);
    tmux.wait_for("chat", "w5 ").await;
    tmux.keys("chat", &["Escape"]);
    let screen = tmux.wait_for("chat", "[stopped]").await;
    assert!(!screen.contains("w400"), "{screen}");

    tmux.type_text("chat", "/quit");
    tmux.keys("chat", &["Enter"]);
    tmux.wait_for("chat", "[exited 0]").await;

    // The conversation was saved, user-only.
    let sessions = home.path().join("data/conductor/sessions");
    let files: Vec<PathBuf> = std::fs::read_dir(&sessions)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(
        text.contains("What is the answer?") && text.contains("\"incomplete\": true"),
        "{text}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&files[0]), 0o600);
        assert_eq!(mode(&sessions), 0o700);
    }

    // --resume continues it.
    tmux.start("again", &command(home.path(), &ollama.host(), "--resume"));
    let screen = tmux.wait_for("again", "Resumed the conversation").await;
    assert!(screen.contains("[stopped]"), "{screen}");
    tmux.keys("again", &["C-d"]);
    tmux.wait_for("again", "[exited 0]").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ollama_down_in_a_real_terminal() {
    if !tmux_or_skip("ollama_down_in_a_real_terminal") {
        return;
    }
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let home = tempfile::tempdir().unwrap();
    let tmux = Tmux::new(home.path());
    tmux.start(
        "down",
        &command(home.path(), &format!("127.0.0.1:{port}"), ""),
    );
    let screen = tmux.wait_for("down", "Ollama is down").await;
    assert!(
        screen.contains("ollama serve"),
        "the fix is shown:\n{screen}"
    );
    tmux.type_text("down", "hello?");
    tmux.keys("down", &["Enter"]);
    tmux.wait_for("down", "[not sent]").await;
    tmux.keys("down", &["C-c", "C-c"]);
    tmux.wait_for("down", "[exited 0]").await;
}

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

/// The chat's own options are clap's like every command's: `--help` answers (the separate
/// program that once opened the UI called `--help` an error), and `--sessions-dir` moves the
/// conversations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_help_and_sessions_dir() {
    let help = Command::new(BIN).args(["chat", "--help"]).output().unwrap();
    assert!(help.status.success(), "{help:?}");
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("--resume") && text.contains("--sessions-dir"),
        "{text}"
    );

    if !tmux_or_skip("chat_help_and_sessions_dir, its half in tmux") {
        return;
    }
    let ollama = StandIn::start().await;
    ollama.set_default_reply(Reply::tokens(&["Kept", "."]));
    let home = tempfile::tempdir().unwrap();
    let elsewhere = home.path().join("elsewhere");
    let tmux = Tmux::new(home.path());
    let extra = format!("--sessions-dir {}", quote(elsewhere.to_str().unwrap()));
    tmux.start("dir", &command(home.path(), &ollama.host(), &extra));
    tmux.wait_for("dir", "100% GPU").await;
    tmux.type_text("dir", "where is this kept?");
    tmux.keys("dir", &["Enter"]);
    tmux.wait_for("dir", "tok/s").await;
    tmux.type_text("dir", "/quit");
    tmux.keys("dir", &["Enter"]);
    tmux.wait_for("dir", "[exited 0]").await;

    let saved: Vec<PathBuf> = std::fs::read_dir(&elsewhere)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert!(
        std::fs::read_to_string(&saved[0])
            .unwrap()
            .contains("where is this kept?")
    );
    assert!(!home.path().join("data/conductor/sessions").exists());
}

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

/// `/model NAME` asks the server first and says where the new model runs; `/policy` changes
/// the policy for the chat and shows the new verdict at once; a failed `/pull` says why, and
/// one that succeeds switches to the model it pulled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_switch_policy_and_pull_in_a_real_terminal() {
    if !tmux_or_skip("model_switch_policy_and_pull_in_a_real_terminal") {
        return;
    }
    let ollama = StandIn::start().await;
    ollama.add_model(conductor_tests::ModelFixture::llama_3b("qwen3:8b"));
    ollama.set_residency(
        "qwen3:8b",
        conductor_tests::Residency::split(25_712_097_280, 7_265_650_688),
    );
    let home = tempfile::tempdir().unwrap();
    let tmux = Tmux::new(home.path());
    tmux.start("switch", &command(home.path(), &ollama.host(), ""));
    tmux.wait_for("switch", "100% GPU").await;

    tmux.type_text("switch", "/model nosuch:1b");
    tmux.keys("switch", &["Enter"]);
    let screen = tmux
        .wait_for(
            "switch",
            "Model nosuch:1b is not on the server: still using llama3.2:3b",
        )
        .await;
    assert!(screen.contains("/pull nosuch:1b downloads it"), "{screen}");
    assert!(
        screen.contains("│ llama3.2:3b │"),
        "not switched:\n{screen}"
    );

    tmux.type_text("switch", "/model qwen3:8b");
    tmux.keys("switch", &["Enter"]);
    let screen = tmux
        .wait_for(
            "switch",
            "Model: qwen3:8b: not fully on the GPU: questions will be refused",
        )
        .await;
    assert!(!screen.contains("checking where it runs"), "{screen}");
    tmux.wait_for("switch", "72%/28% CPU/GPU enforce").await;

    tmux.type_text("switch", "/policy warn");
    tmux.keys("switch", &["Enter"]);
    tmux.wait_for(
        "switch",
        "GPU policy: warn for this chat; qwen3:8b: not fully on the GPU: answering anyway",
    )
    .await;
    tmux.wait_for("switch", "72%/28% CPU/GPU warn").await;
    tmux.type_text("switch", "/policy");
    tmux.keys("switch", &["Enter"]);
    tmux.wait_for("switch", "Last check of qwen3:8b: answered anyway")
        .await;

    // The stand-in answers a pull as an Ollama without internet does.
    tmux.type_text("switch", "/clear");
    tmux.keys("switch", &["Enter"]);
    tmux.type_text("switch", "/pull nosuch:1b");
    tmux.keys("switch", &["Enter"]);
    tmux.wait_for("switch", "Cannot pull nosuch:1b").await;
    assert_eq!(ollama.requests_to("/api/pull").len(), 1);

    // With a registry to pull from: the progress, then the switch to the new model, which
    // answers.
    ollama.set_pull_layers(&[("sha256:6a0746a1ec1aa", 4_000_000)]);
    ollama.reply_with(&["fresh ", "weights"]);
    tmux.type_text("switch", "/pull newmodel:1b");
    tmux.keys("switch", &["Enter"]);
    tmux.wait_for("switch", "Pulled newmodel:1b: switching to it")
        .await;
    tmux.wait_for("switch", "│ newmodel:1b │").await;
    tmux.type_text("switch", "hello");
    tmux.keys("switch", &["Enter"]);
    tmux.wait_for("switch", "fresh weights").await;
    let chat = ollama.requests_to("/api/chat").pop().unwrap();
    assert_eq!(chat.json.unwrap()["model"], "newmodel:1b");

    tmux.type_text("switch", "/quit");
    tmux.keys("switch", &["Enter"]);
    tmux.wait_for("switch", "[exited 0]").await;
}
