//! The everyday verbs against a real Ollama: what the stand-in's recordings cannot promise
//! (`ps`, `show`, `stop` and `ask -o`/`-c` over the real server's shapes and wordings). Runs when
//! `CONDUCTOR_TEST_OLLAMA` names a server with the models of `shared/real-ollama/setup.sh`
//! (`tiny`, `tiny-det`, `tiny-persona`; CI starts one when it can), and says it skipped
//! otherwise. One test: the steps share one server's loaded models, so they run in order.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs
)]

mod common;

use std::process::{Command, Output};

use serde_json::Value;

use common::{clean_command, code, run_with, stderr, stdout};

fn real() -> Option<String> {
    match std::env::var("CONDUCTOR_TEST_OLLAMA") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!(
                "skipped: set CONDUCTOR_TEST_OLLAMA (e.g. from shared/real-ollama/setup.sh) to run against a real Ollama"
            );
            None
        }
    }
}

struct Real {
    url: String,
    home: tempfile::TempDir,
}

impl Real {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = clean_command(self.home.path());
        // The CI machine has no GPU: the CPU is chosen deliberately.
        cmd.env("OLLAMA_HOST", &self.url)
            .env("CONDUCTOR_GPU_POLICY", "warn")
            .args(args);
        cmd
    }

    async fn run(&self, args: &[&str]) -> Output {
        run_with(self.cmd(args), None).await
    }

    async fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args).await;
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|err| panic!("{args:?}: {err}: {}", stdout(&out)))
    }

    /// The `ps --json` entry of `model`, if it is loaded.
    async fn running(&self, model: &str) -> Option<Value> {
        let ps = self.json(&["ps", "--json"]).await;
        ps["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"].as_str().unwrap().starts_with(model))
            .cloned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_everyday_verbs_read_the_real_server() {
    let Some(url) = real() else { return };
    let real = Real {
        url,
        home: tempfile::tempdir().unwrap(),
    };

    // ls --json lists the kit's models.
    let models = real.json(&["ls", "--json"]).await;
    let names: Vec<&str> = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    for model in ["tiny:latest", "tiny-det:latest", "tiny-persona:latest"] {
        assert!(names.contains(&model), "{model} in {names:?}");
    }

    // ask with -o: a typed option the real server honours (the answer ends by length), and
    // the question is saved so that -c can go on.
    let out = real
        .run(&["ask", "-m", "tiny-det", "-o", "num_predict=3", "hello"])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stdout(&out).trim().is_empty(), "an answer: {out:?}");
    assert!(
        stderr(&out).contains("cut at the token limit (num_predict 3)"),
        "{}",
        stderr(&out)
    );
    let out = real
        .run(&["ask", "-c", "-o", "num_predict=2", "and again"])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let list = real.json(&["sessions", "list", "--json"]).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["messages"], 4, "two questions, two answers: {list}");

    // ps: the model just used is loaded, on the CPU (no GPU here), with its context and an
    // expiry in the future, as Ollama words it.
    let entry = real.running("tiny-det").await.expect("tiny-det loaded");
    assert_eq!(entry["processor"], "100% CPU", "{entry}");
    assert!(entry["context_length"].as_u64().unwrap() > 0, "{entry}");
    let until = entry["until"].as_str().unwrap();
    assert!(until.ends_with("from now"), "{until}");
    let table = stdout(&real.run(&["ps"]).await);
    assert!(
        table.lines().next().unwrap().contains("PROCESSOR"),
        "{table}"
    );
    assert!(table.contains("tiny-det:latest"), "{table}");

    // show: the Modelfile parameters of a model made with them (num_ctx 2048 and a SYSTEM).
    let show = real.json(&["show", "tiny-persona", "--json"]).await;
    assert_eq!(show["architecture"], "llama", "{show}");
    let params = show["modelfile_parameters"].as_array().unwrap();
    assert!(
        params
            .iter()
            .any(|p| p["name"] == "num_ctx" && p["value"] == "2048"),
        "{show}"
    );
    let system = show["system"].as_str().unwrap();
    assert!(system.contains("Captain Byte"), "the baked SYSTEM: {show}");
    let text = stdout(&real.run(&["show", "tiny-persona"]).await);
    assert!(
        text.contains("baked into the model") && text.contains("personality replaces it"),
        "{text}"
    );
    let modelfile = stdout(&real.run(&["show", "tiny-persona", "--modelfile"]).await);
    assert!(modelfile.contains("SYSTEM"), "{modelfile}");

    // stop: unloads; a second stop says there is nothing to stop (exit 0); a model the server
    // lacks is exit 5 whatever the server's wording.
    let out = real.run(&["stop", "tiny-det"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("stopped"), "{}", stdout(&out));
    // (A runner still shutting down is listed for a moment, its time up: "already stopping".)
    let out = real.run(&["stop", "tiny-det"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not loaded") || stderr(&out).contains("already stopping"),
        "{}",
        stderr(&out)
    );
    assert!(
        stdout(&out).is_empty(),
        "nothing stopped twice: {}",
        stdout(&out)
    );
    let out = real.run(&["stop", "no-such-model-here"]).await;
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    let out = real.run(&["show", "no-such-model-here"]).await;
    assert_eq!(code(&out), 5, "{}", stderr(&out));
}
