//! End to end in a real terminal: the `conductor-tui` binary under tmux (send-keys to type,
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

    fn screen(&self, name: &str) -> String {
        let out = self.run(&["capture-pane", "-p", "-t", name]);
        String::from_utf8_lossy(&out.stdout).into_owned()
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

/// The shell command that runs the binary with a private home, data and config directory,
/// pointed at the stand-in, and reports its exit status on the screen.
fn command(home: &Path, host: &str, extra: &str) -> String {
    let binary = env!("CARGO_BIN_EXE_conductor-tui");
    let home = home.to_str().unwrap();
    format!(
        "env -u CONDUCTOR_CONFIG -u CONDUCTOR_MODEL -u CONDUCTOR_PERSONALITY -u CONDUCTOR_LOG \
         HOME={home} XDG_DATA_HOME={home}/data XDG_CONFIG_HOME={home}/config \
         OLLAMA_HOST={host} CONDUCTOR_GPU_POLICY=enforce {binary} {extra}; \
         echo \"[exited $?]\"; sleep 60",
        home = quote(home),
        binary = quote(binary),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_in_a_real_terminal() {
    if !Tmux::available() {
        eprintln!("skipping chat_in_a_real_terminal: tmux is not installed (apt-get install tmux)");
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
    if !Tmux::available() {
        eprintln!(
            "skipping ollama_down_in_a_real_terminal: tmux is not installed (apt-get install tmux)"
        );
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
