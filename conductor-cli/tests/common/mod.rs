//! What the CLI test binaries share: the `conductor` binary in a clean environment, and
//! reading what it printed. Each test binary uses part of it.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The `conductor` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_conductor");

/// `conductor` with a clean environment: no user config, no inherited Ollama or conductor
/// settings, its home (config, data, state) in `home`, no stdin. The caller adds the server.
pub fn clean_command(home: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    for var in [
        "OLLAMA_HOST",
        "CONDUCTOR_OLLAMA_HOSTS",
        "CONDUCTOR_CONFIG",
        "CONDUCTOR_MODEL",
        "CONDUCTOR_PERSONALITY",
        "CONDUCTOR_GPU_POLICY",
        "CONDUCTOR_OLLAMA_TOKEN",
        "CONDUCTOR_BACKEND",
        "CONDUCTOR_LOG",
        "CONDUCTOR_STATE_DIR",
        "CONDUCTOR_THEME",
        "NO_COLOR",
        "COMPLETE",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_STATE_HOME", home.join(".local/state"))
        .stdin(Stdio::null());
    cmd
}

/// What it printed on stdout.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What it printed on stderr.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Its exit code (-1 when killed by a signal).
pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}
