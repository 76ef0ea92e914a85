//! What the CLI test binaries share: the `conductor` binary in a clean environment, and
//! reading what it printed. Each test binary uses part of it.

#![allow(dead_code)]

pub mod tmux;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use conductor_tests::StandIn;

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

/// The most one `conductor` run may take in a test: one that blocks fails the test instead of
/// hanging it.
pub const RUN_LIMIT: Duration = Duration::from_secs(60);

/// An Ollama stand-in and a throwaway home: where most CLI tests start.
pub struct Env {
    /// The stand-in the commands talk to (through `OLLAMA_HOST`).
    pub ollama: StandIn,
    /// The home of every command run (config, data, state).
    pub home: tempfile::TempDir,
}

impl Env {
    /// A fresh stand-in and home.
    pub async fn new() -> Self {
        Self {
            ollama: StandIn::start().await,
            home: tempfile::tempdir().unwrap(),
        }
    }

    /// `conductor ARGS` in a clean environment, pointed at the stand-in through OLLAMA_HOST.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = clean_command(self.home.path());
        cmd.env("OLLAMA_HOST", self.ollama.host()).args(args);
        cmd
    }

    /// Runs `conductor ARGS` (no stdin) within [`RUN_LIMIT`].
    pub async fn run(&self, args: &[&str]) -> Output {
        run_with(self.cmd(args), None).await
    }

    /// Runs `cmd` with `stdin` piped in, within [`RUN_LIMIT`].
    pub async fn run_with(&self, cmd: Command, stdin: Option<Vec<u8>>) -> Output {
        run_with(cmd, stdin).await
    }
}

/// Runs `cmd` with `stdin` piped in (or none) and collects its output, within [`RUN_LIMIT`].
/// Both pipes are read while it runs: a child whose output outgrows the pipe buffer would
/// otherwise block on its write and look hung.
pub async fn run_with(mut cmd: Command, stdin: Option<Vec<u8>>) -> Output {
    tokio::task::spawn_blocking(move || {
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(input) = stdin {
            // A reader that stops early must not fail the test: ignore EPIPE.
            let _ = child.stdin.take().unwrap().write_all(&input);
        }
        let read_all = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                bytes
            })
        };
        let out_reader = read_all(Box::new(child.stdout.take().unwrap()));
        let err_reader = read_all(Box::new(child.stderr.take().unwrap()));
        let deadline = Instant::now() + RUN_LIMIT;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the command did not finish within {RUN_LIMIT:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Output {
            status,
            stdout: out_reader.join().unwrap(),
            stderr: err_reader.join().unwrap(),
        }
    })
    .await
    .unwrap()
}
