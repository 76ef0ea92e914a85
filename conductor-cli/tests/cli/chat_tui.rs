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

use super::BIN;

// Beside this file, in `chat_tui/`, one module per theme.
#[path = "chat_tui/basics.rs"]
mod basics;
#[path = "chat_tui/clipboard_and_editor.rs"]
mod clipboard_and_editor;
#[path = "chat_tui/sharing_and_signals.rs"]
mod sharing_and_signals;

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
