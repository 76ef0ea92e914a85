//! Driving a program in a real terminal: a private tmux server (send-keys to type,
//! capture-pane to read the screen), for the chat UI's end-to-end tests.

// A skipped test says so on stderr.
#![allow(clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Whether tmux runs here. When it does not, says on stderr that `test` skipped and how to run
/// it, so a machine without tmux never passes these tests silently.
pub fn tmux_or_skip(test: &str) -> bool {
    let available = Tmux::available();
    if !available {
        eprintln!(
            "skipped: {test}: tmux is not installed (install tmux, e.g. apt-get install tmux, to run it)"
        );
    }
    available
}

/// A private tmux server (its own socket, no user config), killed on drop.
pub struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    pub fn available() -> bool {
        Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    pub fn new(dir: &Path) -> Self {
        Self {
            socket: dir.join("tmux.sock"),
        }
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let socket = self.socket.to_str().unwrap();
        Command::new("tmux")
            .args(["-S", socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .unwrap()
    }

    /// Starts `command` in a new 100×30 session called `name`.
    pub fn start(&self, name: &str, command: &str) {
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

    pub fn type_text(&self, name: &str, text: &str) {
        assert!(
            self.run(&["send-keys", "-t", name, "-l", text])
                .status
                .success()
        );
    }

    pub fn keys(&self, name: &str, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", name];
        args.extend(keys);
        assert!(self.run(&args).status.success());
    }

    /// A tmux format of the pane (`#{alternate_on}`: the terminal state the program left).
    pub fn display(&self, name: &str, format: &str) -> String {
        let out = self.run(&["display-message", "-p", "-t", name, format]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The screen with wrapped lines joined (a long path on one line).
    pub fn joined_screen(&self, name: &str) -> String {
        let out = self.run(&["capture-pane", "-p", "-J", "-t", name]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn screen(&self, name: &str) -> String {
        let out = self.run(&["capture-pane", "-p", "-t", name]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen of `name` shows `text` at least `count` times (a second answer,
    /// where the status bar still shows the first one's figures); panics after 30 s.
    pub async fn wait_for_count(&self, name: &str, text: &str, count: usize) -> String {
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
    pub async fn wait_for(&self, name: &str, text: &str) -> String {
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

/// `s` as one shell word.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
