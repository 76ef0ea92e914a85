//! The `conductor` binary against a pool of stand-ins (`CONDUCTOR_OLLAMA_HOSTS`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs
)]

use std::path::Path;
use std::process::{Command, Output};

use conductor_tests::{Residency, StandIn};

mod common;

use common::clean_command;

/// A command with a clean environment and the pool in `CONDUCTOR_OLLAMA_HOSTS`.
fn command(home: &Path, hosts: &[&StandIn]) -> Command {
    let hosts: Vec<String> = hosts.iter().map(|s| s.host()).collect();
    let mut cmd = clean_command(home);
    cmd.env("CONDUCTOR_OLLAMA_HOSTS", hosts.join(","));
    cmd
}

async fn run(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn shown(standin: &StandIn) -> String {
    conductor_core::OllamaHost::parse(&standin.host())
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpu_verify_checks_every_host_and_names_the_one_not_on_the_gpu() {
    let (a, b) = (StandIn::start().await, StandIn::start().await);
    let home = tempfile::tempdir().unwrap();
    for s in [&a, &b] {
        s.set_residency("m3b-4k", Residency::gpu(4_152_782_848).context(4096));
    }
    let mut cmd = command(home.path(), &[&a, &b]);
    cmd.args(["gpu", "verify", "-m", "m3b-4k"]);
    let out = run(cmd).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(stdout.matches("✓ fully on the GPU").count(), 2, "{stdout}");
    assert!(stdout.contains(&format!("host {}", shown(&a))), "{stdout}");
    assert!(stdout.contains(&format!("host {}", shown(&b))), "{stdout}");

    b.set_residency(
        "m3b-4k",
        Residency::split(4_152_782_848, 1_000_000_000).context(4096),
    );
    b.evict_all();
    let mut cmd = command(home.path(), &[&a, &b]);
    cmd.args(["gpu", "verify", "-m", "m3b-4k"]);
    let out = run(cmd).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("1 of 2 hosts: {}", shown(&b))),
        "{stderr}"
    );
    assert!(stdout.contains("✗ not fully on the GPU"), "{stdout}");

    let mut cmd = command(home.path(), &[&a, &b]);
    cmd.args(["gpu", "verify", "-m", "m3b-4k", "--json"]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["resident"], false);
    assert_eq!(v["not_resident"][0], shown(&b));
    assert_eq!(v["hosts"][0]["resident"], true);
    assert_eq!(v["hosts"][1]["host"], shown(&b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpu_status_and_ask_use_the_pool() {
    let (a, b) = (StandIn::start().await, StandIn::start().await);
    let home = tempfile::tempdir().unwrap();
    b.reply_with(&["from", " b"]);
    a.reply_with(&["from", " a"]);
    let mut cmd = command(home.path(), &[&a, &b]);
    cmd.args(["ask", "-m", "tiny", "hi"]);
    let out = run(cmd).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout, "from a\n");

    let mut cmd = command(home.path(), &[&a, &b]);
    cmd.args(["gpu", "status", "--json"]);
    let out = run(cmd).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["hosts"][0]["host"], shown(&a));
    assert_eq!(v["hosts"][0]["running"][0]["name"], "tiny:latest");
    assert_eq!(v["hosts"][1]["running"].as_array().unwrap().len(), 0);

    // A pool with a host down still shows the others, and says which one is down.
    drop(b);
    let mut cmd = command(home.path(), &[&a]);
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    cmd.env("CONDUCTOR_OLLAMA_HOSTS", format!("{},{dead}", a.host()));
    cmd.args(["gpu", "status"]);
    let out = run(cmd).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("cannot reach it"), "{stdout}");
    assert!(stdout.contains("tiny:latest"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_every_host_of_the_pool_and_names_it() {
    let (a, b) = (StandIn::start().await, StandIn::start().await);
    let home = tempfile::tempdir().unwrap();
    for s in [&a, &b] {
        s.set_residency("m3b-4k", Residency::gpu(4_152_782_848).context(4096));
    }
    let mut cmd = command(home.path(), &[&a, &b]);
    cmd.args(["-m", "m3b-4k", "doctor"]);
    let out = run(cmd).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    for s in [&a, &b] {
        for what in ["Ollama", "model", "residency"] {
            let line = format!("✓ {what} on host {}", shown(s));
            assert!(stdout.contains(&line), "{line} in {stdout}");
        }
    }

    // b on the CPU in part, then a dead host: each named; the exit code is the first failure's.
    b.set_residency(
        "m3b-4k",
        Residency::split(4_152_782_848, 1_000_000_000).context(4096),
    );
    b.evict_all();
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let mut cmd = command(home.path(), &[&a]);
    cmd.env(
        "CONDUCTOR_OLLAMA_HOSTS",
        format!("{},{},{dead}", a.host(), b.host()),
    );
    cmd.args(["-m", "m3b-4k", "doctor"]);
    let out = run(cmd).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("✓ residency on host {}", shown(&a))),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("✗ residency on host {}", shown(&b))),
        "{stdout}"
    );
    let dead_shown = conductor_core::OllamaHost::parse(&dead)
        .unwrap()
        .to_string();
    assert!(
        stdout.contains(&format!("✗ Ollama on host {dead_shown}")),
        "{stdout}"
    );
}

/// Loads `model` on `standin` alone (an `ask` pointed at it).
async fn load_on(home: &Path, standin: &StandIn, model: &str) {
    standin.reply_with(&["ok"]);
    let mut cmd = common::clean_command(home);
    cmd.env("OLLAMA_HOST", standin.host())
        .args(["ask", "-m", model, "hi"]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
}

/// An address where nothing listens.
fn dead_host() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

/// The unloads (`keep_alive: 0`) `standin` received.
fn unloads(standin: &StandIn) -> Vec<String> {
    standin
        .requests_to("/api/generate")
        .into_iter()
        .filter_map(|r| r.json)
        .filter(|body| body["keep_alive"] == 0)
        .map(|body| body["model"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_unloads_only_where_loaded_once_per_host_and_names_each_host() {
    let (a, b) = (StandIn::start().await, StandIn::start().await);
    let home = tempfile::tempdir().unwrap();
    let dead = dead_host();
    let shown_dead = conductor_core::OllamaHost::parse(&dead)
        .unwrap()
        .to_string();
    let pool = |cmd: &mut Command| {
        cmd.env(
            "CONDUCTOR_OLLAMA_HOSTS",
            format!("{},{},{dead}", a.host(), b.host()),
        );
    };
    // Loaded on both: one unload per host, each named; the dead host is a warning.
    load_on(home.path(), &a, "tiny").await;
    load_on(home.path(), &b, "tiny").await;
    let mut cmd = command(home.path(), &[&a, &b]);
    pool(&mut cmd);
    cmd.args(["stop", "tiny"]);
    let out = run(cmd).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("stopped tiny:latest on host {}", shown(&a))),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("stopped tiny:latest on host {}", shown(&b))),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!("host {shown_dead} did not answer")),
        "{stderr}"
    );
    assert_eq!(unloads(&a), ["tiny:latest"]);
    assert_eq!(unloads(&b), ["tiny:latest"]);
    assert!(a.loaded_models().is_empty() && b.loaded_models().is_empty());

    // Loaded on a only, and b does not even have the model: a is stopped, b left alone.
    b.remove_model("tiny");
    load_on(home.path(), &a, "tiny").await;
    let mut cmd = command(home.path(), &[&a, &b]);
    cmd.args(["stop", "tiny"]);
    let out = run(cmd).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(
        stdout,
        format!("stopped tiny:latest on host {}\n", shown(&a))
    );
    assert_eq!(unloads(&b), ["tiny:latest"], "no second unload on b");

    // Loaded nowhere, present on a: nothing to stop, success.
    let mut cmd = command(home.path(), &[&a, &b]);
    cmd.args(["stop", "tiny"]);
    let out = run(cmd).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stderr.contains("not loaded on any host"), "{stderr}");

    // On no host at all: exit 5.
    let mut cmd = command(home.path(), &[&a, &b]);
    cmd.args(["stop", "absent:1b"]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(5), "{}", text(&out).1);

    // No host answers: exit 4.
    let mut cmd = command(home.path(), &[]);
    cmd.env("CONDUCTOR_OLLAMA_HOSTS", format!("{dead},{}", dead_host()));
    cmd.args(["stop", "tiny"]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out).1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ps_on_a_pool_names_the_host_of_each_model_and_warns_of_hosts_down() {
    let (a, b) = (StandIn::start().await, StandIn::start().await);
    let home = tempfile::tempdir().unwrap();
    load_on(home.path(), &a, "tiny").await;
    load_on(home.path(), &b, "m3b").await;
    let dead = dead_host();
    let shown_dead = conductor_core::OllamaHost::parse(&dead)
        .unwrap()
        .to_string();
    let mut cmd = command(home.path(), &[&a, &b]);
    cmd.env(
        "CONDUCTOR_OLLAMA_HOSTS",
        format!("{},{},{dead}", a.host(), b.host()),
    );
    cmd.arg("ps");
    let out = run(cmd).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let header = stdout.lines().next().unwrap();
    assert!(
        header.starts_with("NAME") && header.contains("HOST"),
        "{header}"
    );
    let row = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {stdout}"))
            .to_owned()
    };
    assert!(row("tiny:latest").contains(&shown(&a)), "{stdout}");
    assert!(row("m3b:latest").contains(&shown(&b)), "{stdout}");
    assert!(
        stderr.contains(&format!("host {shown_dead} did not answer")),
        "{stderr}"
    );

    let mut cmd = command(home.path(), &[&a, &b]);
    cmd.args(["ps", "--json"]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["models"][0]["name"], "tiny:latest");
    assert_eq!(v["models"][0]["host"], shown(&a));
    assert_eq!(v["models"][1]["host"], shown(&b));

    // One host: no HOST column.
    let mut cmd = common::clean_command(home.path());
    cmd.env("OLLAMA_HOST", a.host()).arg("ps");
    let out = run(cmd).await;
    let (stdout, _) = text(&out);
    assert!(!stdout.lines().next().unwrap().contains("HOST"), "{stdout}");

    // No host answers: the error, exit 4.
    let mut cmd = command(home.path(), &[]);
    cmd.env("CONDUCTOR_OLLAMA_HOSTS", format!("{dead},{}", dead_host()));
    cmd.arg("ps");
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out).1);
}
