//! End to end in a real terminal: `conductor chat` under tmux (send-keys to type,
//! capture-pane to read the screen) against the Ollama stand-in. Skips, saying so, when tmux is
//! not installed (CI installs it with apt when it can).
//!
//! The stand-in runs in this test process (`conductor_tests::StandIn` on `127.0.0.1:0`, the
//! same server the `ollama-standin` program wraps), so nothing else needs building and each
//! reply is scripted here.

use std::path::{Path, PathBuf};

use super::BIN;
use crate::common::tmux::{Tmux, quote, tmux_or_skip};

// Beside this file, in `chat_tui/`, one module per theme.
#[path = "chat_tui/basics.rs"]
mod basics;
#[path = "chat_tui/clipboard_and_editor.rs"]
mod clipboard_and_editor;
#[path = "chat_tui/sharing_and_signals.rs"]
mod sharing_and_signals;

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
