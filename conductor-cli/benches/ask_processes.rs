//! The residency guard's cost as a user pays it: whole `conductor ask` processes against a
//! minimal client, both talking to the Ollama stand-in with a real Ollama's per-request delay
//! (90 ms: every generation or load spent 73-108 ms in `load_duration` on an H200, even with the
//! model loaded). Runs `conductor bench --part processes` and checks its medians against the
//! targets, as ratios and differences measured in the same run:
//!
//! - first output byte under the default policy (enforce) within 15 ms of the minimal client;
//! - CPU per ask at most 2× the minimal client's, peak RSS at most 1.3×.
//!
//! `cargo bench -p conductor-cli --bench ask_processes` (exits 1 when a target is missed).

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs
)]

use std::process::{Command, ExitCode};
use std::time::Duration;

use conductor_tests::{Reply, StandIn};

const FIRST_BYTE_BUDGET_MS: f64 = 15.0;
const CPU_RATIO: f64 = 2.0;
const RSS_RATIO: f64 = 1.3;

fn main() -> ExitCode {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let ollama = runtime.block_on(StandIn::start());
    ollama.set_request_delay(Duration::from_millis(90));
    ollama.set_default_reply(Reply::tokens(&[
        "Blue",
        " light",
        " scatters",
        " more",
        " than",
        " red",
        ".",
    ]));
    let state = std::env::temp_dir().join(format!("conductor-bench-state-{}", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_conductor"))
        .args(["--host", &ollama.host(), "-m", "llama3.2:3b", "bench"])
        .args(["--part", "processes", "--json", "-n", "15"])
        .env("CONDUCTOR_STATE_DIR", &state)
        .env_remove("CONDUCTOR_CONFIG")
        .output()
        .expect("run conductor bench");
    let _ = std::fs::remove_dir_all(&state);
    if !output.status.success() {
        eprintln!(
            "conductor bench failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return ExitCode::FAILURE;
    }
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let rows = report["processes"].as_array().expect("rows");
    let mut missed = 0;
    for row in rows {
        let client = row["client"].as_str().unwrap_or("?");
        let delta = row["first_byte_delta_ms"].as_f64();
        let cpu = row["cpu_ratio"].as_f64();
        let rss = row["rss_ratio"].as_f64();
        println!(
            "{client:<46} first byte {:>7.1} ms ({:+.1} ms)  CPU {:>5.1} ms ({:.2}×)  RSS {:>5.1} MiB ({:.2}×)",
            row["first_byte_ms_median"].as_f64().unwrap_or(f64::NAN),
            delta.unwrap_or(0.0),
            row["cpu_ms_median"].as_f64().unwrap_or(f64::NAN),
            cpu.unwrap_or(f64::NAN),
            row["peak_rss_mib_median"].as_f64().unwrap_or(f64::NAN),
            rss.unwrap_or(f64::NAN),
        );
        if client.contains("default: enforce") {
            for (what, ok) in [
                (
                    "first byte within 15 ms of the minimal client",
                    delta.is_some_and(|d| d <= FIRST_BYTE_BUDGET_MS),
                ),
                (
                    "CPU per ask at most 2×",
                    cpu.is_some_and(|r| r <= CPU_RATIO),
                ),
                ("peak RSS at most 1.3×", rss.is_some_and(|r| r <= RSS_RATIO)),
            ] {
                println!("  target: {what}: {}", if ok { "met" } else { "MISSED" });
                missed += usize::from(!ok);
            }
        }
    }
    if missed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
