//! The commands around asking: `pull`, `bench`, shell completions and `--help`.

use super::command;
use super::common::{Env, code, stderr, stdout};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_shows_progress_and_fails_clearly_offline() {
    let env = Env::new().await;
    let out = env.run(&["pull", "llama3.2:1b"]).await;
    assert_eq!(code(&out), 4);
    assert!(
        stderr(&out).contains("cannot reach the model registry"),
        "{}",
        stderr(&out)
    );

    env.ollama.set_pull_layers(&[
        (
            "sha256:74701a8c35f6c8d9a4b91f3f3497643001d63e0c7a84e085bed452548fa88d45",
            1_321_082_688,
        ),
        (
            "sha256:966de95ca8a62200913e3f8bfbf84c8494536f1b94b49166851e76644e966396",
            1_429,
        ),
    ]);
    let out = env.run(&["pull", "llama3.2:1b"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "pulled llama3.2:1b\n");
    let log = stderr(&out);
    assert!(
        log.contains("pulling manifest") && log.contains("verifying sha256 digest"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_reports_ratios_against_raw_http() {
    let env = Env::new().await;
    let out = env
        .run(&[
            "bench",
            "-n",
            "2",
            "--tokens",
            "4",
            "--part",
            "in-process",
            "--json",
        ])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let v = &v["in_process"];
    assert_eq!(v["runs"], 2);
    assert!(v["overhead_ratio"]["ttft"].as_f64().unwrap() > 0.0);
    assert!(
        v["conductor_turn2"]["prompt_eval_ms"]["median"]
            .as_f64()
            .is_some()
    );
    // Two chat turns and one raw request per run.
    assert_eq!(env.ollama.requests_to("/api/chat").len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bench_measures_whole_processes_beside_a_minimal_client() {
    let env = Env::new().await;
    env.ollama.reply_with(&["Blue", " light"]);
    let out = env
        .run(&[
            "bench",
            "--part",
            "processes",
            "--json",
            "-n",
            "1",
            "-m",
            "m3b-4k",
        ])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let rows = v["processes"].as_array().unwrap();
    let clients: Vec<&str> = rows.iter().map(|r| r["client"].as_str().unwrap()).collect();
    assert!(clients[0].starts_with("minimal client"), "{clients:?}");
    assert!(
        clients.contains(&"conductor ask (default: enforce)"),
        "{clients:?}"
    );
    for row in rows {
        assert_eq!(row["ok_runs"], 1, "{row}");
        assert!(row["first_byte_ms_median"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["peak_rss_mib_median"].as_f64().unwrap() > 0.0, "{row}");
    }
    // The measured asks save their conversations, as a user's do, but not into the user's
    // store.
    let store = env.home.path().join(".local/share/conductor/sessions");
    let saved = std::fs::read_dir(&store).map_or(0, |entries| entries.count());
    assert_eq!(saved, 0, "bench conversations in {}", store.display());
}

#[test]
fn completions_generate_for_every_shell() {
    let home = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = command(home.path(), "127.0.0.1:1")
            .args(["completions", shell, "--static"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("conductor") && text.contains("personality"),
            "{shell}"
        );
    }
}

#[test]
fn help_documents_the_exit_codes() {
    let home = tempfile::tempdir().unwrap();
    let out = command(home.path(), "127.0.0.1:1")
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for line in ["3    the model is not fully on the GPU", "130  interrupted"] {
        assert!(text.contains(line), "{text}");
    }
}
