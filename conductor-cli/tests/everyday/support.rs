//! Helpers the everyday tests share: commands without a server, what the stand-in received.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::common::{Env, clean_command, code, stderr, stdout};

impl Env {
    /// `conductor ARGS` with no server in the environment (flags must name it).
    pub(crate) fn bare(&self, args: &[&str]) -> Command {
        let mut cmd = clean_command(self.home.path());
        cmd.args(args);
        cmd
    }

    pub(crate) fn path(&self, relative: &str) -> PathBuf {
        self.home.path().join(relative)
    }

    /// The `options` of the last chat request the stand-in received.
    pub(crate) fn last_chat_options(&self) -> Value {
        let request = self.ollama.requests_to("/api/chat").pop().unwrap();
        request.json.unwrap()["options"].clone()
    }
}

pub(crate) fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|err| panic!("{err}: {}{}", stdout(out), stderr(out)))
}

pub(crate) fn help(env: &Env, args: &[&str]) -> String {
    let out = env.bare(args).output().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    stdout(&out)
}

pub(crate) fn path_arg(path: &Path) -> String {
    path.display().to_string()
}
