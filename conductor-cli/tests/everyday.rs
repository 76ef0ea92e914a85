//! Everyday use: the flags people bring from llm, aichat and ollama (issue 13), end to end
//! against the Ollama stand-in.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use conductor_tests::{ModelFixture, Residency, StandIn};
use serde_json::Value;

use common::{Env, clean_command, code, run_with, stderr, stdout};

impl Env {
    /// `conductor ARGS` with no server in the environment (flags must name it).
    fn bare(&self, args: &[&str]) -> Command {
        let mut cmd = clean_command(self.home.path());
        cmd.args(args);
        cmd
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.home.path().join(relative)
    }

    /// The `options` of the last chat request the stand-in received.
    fn last_chat_options(&self) -> Value {
        let request = self.ollama.requests_to("/api/chat").pop().unwrap();
        request.json.unwrap()["options"].clone()
    }
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|err| panic!("{err}: {}{}", stdout(out), stderr(out)))
}

fn help(env: &Env, args: &[&str]) -> String {
    let out = env.bare(args).output().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    stdout(&out)
}

// ---------------------------------------------------------------------------------------------
// 1. Each subcommand takes (and lists) only the options that apply to it.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subcommand_help_lists_only_the_flags_that_apply() {
    let env = Env::new().await;
    let completions = help(&env, &["completions", "--help"]);
    for flag in ["--gpu-policy", "--num-ctx", "--host", "--model", "--config"] {
        assert!(!completions.contains(flag), "{flag} in {completions}");
    }
    let ask = help(&env, &["ask", "--help"]);
    for flag in [
        "--gpu-policy",
        "--num-ctx",
        "--keep-alive",
        "--host",
        "--backend",
        "--personality",
        "--model",
        "--config",
        "--log",
        "--file",
        "--option",
        "-s, --system",
    ] {
        assert!(ask.contains(flag), "{flag} in {ask}");
    }
    let models = help(&env, &["models", "--help"]);
    assert!(
        models.contains("--host") && models.contains("--json"),
        "{models}"
    );
    assert!(!models.contains("--gpu-policy") && !models.contains("--personality"));
    let personality = help(&env, &["personality", "list", "--help"]);
    assert!(personality.contains("--personality") && personality.contains("--config"));
    assert!(!personality.contains("--host") && !personality.contains("--num-ctx"));
    let gpu = help(&env, &["gpu", "verify", "--help"]);
    assert!(
        gpu.contains("--gpu-policy") && gpu.contains("--num-ctx"),
        "{gpu}"
    );

    // A flag that does not apply is a usage error, not silently ignored.
    let out = env
        .bare(&["completions", "bash", "--gpu-policy", "warn"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("--gpu-policy"), "{}", stderr(&out));
    let out = env.bare(&["models", "--num-ctx", "4096"]).output().unwrap();
    assert_eq!(code(&out), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_work_before_and_after_the_subcommand_and_after_wins() {
    let env = Env::new().await;
    env.ollama.reply_with(&["ok"]);
    let host = env.ollama.host();
    // Before.
    let out = run_with(env.bare(&["--host", &host, "ask", "hi"]), None).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "ok\n");
    // After.
    let out = run_with(env.bare(&["ask", "--host", &host, "hi"]), None).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Both: the one after the subcommand wins.
    let out = run_with(
        env.bare(&[
            "--host",
            "127.0.0.1:1",
            "-m",
            "tiny",
            "--num-ctx",
            "2048",
            "ask",
            "--host",
            &host,
            "-m",
            "llama3.2:3b",
            "hi",
        ]),
        None,
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let request = env.ollama.requests_to("/api/chat").pop().unwrap();
    let body = request.json.unwrap();
    assert_eq!(body["model"], "llama3.2:3b");
    // What only came before still counts.
    assert_eq!(body["options"]["num_ctx"], 2048);
    // The server commands too.
    let out = run_with(env.bare(&["models", "--host", &host]), None).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run_with(env.bare(&["--host", &host, "ls"]), None).await;
    assert!(stdout(&out).contains("tiny:latest"), "{}", stdout(&out));
}

// ---------------------------------------------------------------------------------------------
// 2. ask -s, -f, -o

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_s_is_system() {
    let env = Env::new().await;
    env.ollama.reply_with(&["ok"]);
    let out = env
        .run(&["ask", "--no-personality", "-s", "answer in French", "hi"])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let messages = env.ollama.requests_to("/api/chat")[0].messages();
    assert_eq!(messages[0], ("system".into(), "answer in French".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attached_files_come_first_in_order_then_the_question_then_stdin() {
    let env = Env::new().await;
    env.ollama.reply_with(&["ok"]);
    std::fs::create_dir_all(env.path("src")).unwrap();
    std::fs::write(env.path("src/a.rs"), "fn a() {}\n").unwrap();
    std::fs::write(env.path("notes.md"), "use ```code``` fences").unwrap();
    let mut cmd = env.cmd(&["ask", "-f", "src/a.rs", "--file", "notes.md", "review"]);
    cmd.current_dir(env.home.path());
    let out = run_with(cmd, Some(b"diff --git x\n".to_vec())).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let messages = env.ollama.requests_to("/api/chat")[0].messages();
    let user = &messages.last().unwrap().1;
    assert_eq!(
        user,
        "File: src/a.rs\n```rs\nfn a() {}\n```\n\n\
         File: notes.md\n````md\nuse ```code``` fences\n````\n\n\
         review\n\ndiff --git x\n"
    );
    // Files alone are a question.
    let mut cmd = env.cmd(&["ask", "-f", "src/a.rs"]);
    cmd.current_dir(env.home.path());
    let out = run_with(cmd, None).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let messages = env.ollama.requests_to("/api/chat")[1].messages();
    assert_eq!(
        messages.last().unwrap().1,
        "File: src/a.rs\n```rs\nfn a() {}\n```"
    );
    // Files do not excuse bad stdin.
    let mut cmd = env.cmd(&["ask", "-f", "src/a.rs"]);
    cmd.current_dir(env.home.path());
    let out = run_with(cmd, Some(b"caf\xe9".to_vec())).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("stdin is not UTF-8"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.ollama.requests_to("/api/chat").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_that_cannot_be_attached_are_refused_by_name_without_blocking() {
    let env = Env::new().await;
    let dir = env.path("adir");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(env.path("binary.bin"), b"ELF\0\x01\x02").unwrap();
    std::fs::write(env.path("latin1.txt"), b"caf\xe9\n").unwrap();
    std::fs::write(env.path("big.txt"), vec![b'a'; (256 << 10) + 1]).unwrap();
    for i in 0..5 {
        std::fs::write(env.path(&format!("part{i}.txt")), vec![b'a'; 250 << 10]).unwrap();
    }
    let fifo = env.path("pipe");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let cases: Vec<(Vec<String>, &str, &str)> = vec![
        (vec![path_arg(&dir)], "adir", "a directory"),
        (vec![path_arg(&fifo)], "pipe", "FIFO"),
        (
            vec![path_arg(&env.path("binary.bin"))],
            "binary.bin",
            "NUL byte at offset 3",
        ),
        (
            vec![path_arg(&env.path("latin1.txt"))],
            "latin1.txt",
            "not UTF-8",
        ),
        (
            vec![path_arg(&env.path("big.txt"))],
            "big.txt",
            "larger than 256 KiB",
        ),
        (
            vec![path_arg(&env.path("missing.txt"))],
            "missing.txt",
            "No such file",
        ),
        (
            (0..5)
                .map(|i| path_arg(&env.path(&format!("part{i}.txt"))))
                .collect(),
            "part4.txt",
            "more than the 1024 KiB allowed in all",
        ),
    ];
    for (files, name, why) in cases {
        let mut args = vec!["ask".to_owned()];
        for file in &files {
            args.extend(["-f".to_owned(), file.clone()]);
        }
        args.push("explain".to_owned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let started = Instant::now();
        let out = env.run(&args).await;
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{name} blocked"
        );
        assert_eq!(code(&out), 2, "{name}: {}", stderr(&out));
        let text = stderr(&out);
        assert!(text.contains(name) && text.contains(why), "{name}: {text}");
    }
    assert!(env.ollama.requests_to("/api/chat").is_empty());
}

fn path_arg(path: &Path) -> String {
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_reach_the_server_typed() {
    let env = Env::new().await;
    env.ollama.reply_with(&["ok"]);
    let out = env
        .run(&[
            "ask",
            "-o",
            "temperature=0.2",
            "-o",
            "num_ctx=8192",
            "-o",
            "stop=END",
            "--option",
            "stop=a,b",
            "-o",
            "seed=7",
            "-o",
            "use_mmap=false",
            "-o",
            "mirostat=2",
            "-o",
            "mirostat_tau=4.5",
            "-o",
            "penalize_newline=true",
            "hi",
        ])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        env.last_chat_options(),
        serde_json::json!({
            "num_ctx": 8192, "temperature": 0.2, "seed": 7, "use_mmap": false,
            "stop": ["END", "a,b"],
            "mirostat": 2, "mirostat_tau": 4.5, "penalize_newline": true,
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn option_num_ctx_is_the_same_as_the_flag_and_the_gpu_guard_sees_options() {
    let env = Env::new().await;
    env.ollama.reply_with(&["ok"]);
    let out = env.run(&["ask", "--num-ctx", "8192", "hi"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let by_flag = env.last_chat_options();
    let loads_by_flag = env.ollama.requests_to("/api/generate");
    env.ollama.evict_all();
    let out = env.run(&["ask", "-o", "num_ctx=8192", "hi"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(env.last_chat_options(), by_flag);
    let loads = env.ollama.requests_to("/api/generate");
    assert_eq!(
        loads.last().unwrap().json.as_ref().unwrap()["options"],
        loads_by_flag.last().unwrap().json.as_ref().unwrap()["options"]
    );
    // The same value twice is fine; two different ones are a usage error.
    let out = env
        .run(&["ask", "--num-ctx", "8192", "-o", "num_ctx=8192", "hi"])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = env
        .run(&["ask", "--num-ctx", "4096", "-o", "num_ctx=8192", "hi"])
        .await;
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("disagree"), "{}", stderr(&out));

    // num_gpu through -o is a runner option the guard checks: a layer cap that leaves the
    // model split is refused under enforce, before anything is generated.
    env.ollama.set_residency_if_option(
        "llama3.2:3b",
        "num_gpu",
        Residency::split(4_152_782_848, 2_000_000_000),
    );
    // (From a cold start: /api/ps does not report num_gpu, so the guard cannot tell that a
    // loaded model was loaded with another one.)
    env.ollama.evict_all();
    let chats = env.ollama.requests_to("/api/chat").len();
    let out = env.run(&["ask", "-o", "num_gpu=1", "hi"]).await;
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not fully on the GPU"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.ollama.requests_to("/api/chat").len(), chats);
    let preload = env.ollama.requests_to("/api/generate").pop().unwrap();
    assert_eq!(preload.json.unwrap()["options"]["num_gpu"], 1);
    // And a context below the minimum is the configuration error --num-ctx gives.
    let by_option = env.run(&["ask", "-o", "num_ctx=100", "hi"]).await;
    let by_flag = env.run(&["ask", "--num-ctx", "100", "hi"]).await;
    assert_eq!(code(&by_option), code(&by_flag));
    assert!(
        stderr(&by_option).contains("num_ctx"),
        "{}",
        stderr(&by_option)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_options_are_usage_errors_that_say_what_is_wanted() {
    let env = Env::new().await;
    for (option, wanted) in [
        ("temperature=hot", "temperature takes a number"),
        ("num_ctx=-3", "num_ctx takes a whole number of at least 1"),
        ("num_ctx", "expected KEY=VALUE"),
        ("use_mmap=maybe", "true or false"),
        ("top_k=", "give a value"),
        ("Top K=1", "option name"),
    ] {
        let out = env.run(&["ask", "-o", option, "hi"]).await;
        assert_eq!(code(&out), 2, "{option}: {}", stderr(&out));
        assert!(stderr(&out).contains(wanted), "{option}: {}", stderr(&out));
    }
    // With --json the failure is a JSON object too.
    let out = env
        .run(&["ask", "--json", "-o", "temperature=hot", "hi"])
        .await;
    assert_eq!(code(&out), 2);
    assert_eq!(json(&out)["error"]["kind"], "usage");
    assert!(env.ollama.requests_to("/api/chat").is_empty());
}

// ---------------------------------------------------------------------------------------------
// 3. Ollama's verbs

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ps_shows_running_models_like_ollama() {
    let env = Env::new().await;
    let out = env.run(&["ps"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).starts_with("NAME"), "{}", stdout(&out));
    env.ollama.set_residency(
        "m3b-numgpu1",
        Residency::split(25_712_097_280, 12_400_000_000).context(131_072),
    );
    env.ollama.reply_with(&["ok"]);
    let out = env
        .run(&["ask", "-m", "m3b-numgpu1", "--gpu-policy", "warn", "hi"])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = env.run(&["ps"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let header = text.lines().next().unwrap();
    for column in [
        "NAME",
        "ID",
        "SIZE",
        "PROCESSOR",
        "GPU (NVML)",
        "CONTEXT",
        "UNTIL",
    ] {
        assert!(header.contains(column), "{header}");
    }
    let row = text.lines().find(|l| l.starts_with("m3b-numgpu1")).unwrap();
    for cell in [
        "6cbce2a43654",
        "25.7 GB",
        "52%/48% CPU/GPU",
        "131072",
        "minutes from now",
    ] {
        assert!(row.contains(cell), "{cell} in {row}");
    }
    let out = env.run(&["ps", "--json"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let ps = json(&out);
    let model = &ps["models"][0];
    assert_eq!(model["name"], "m3b-numgpu1:latest");
    assert_eq!(model["id"], "6cbce2a43654");
    assert_eq!(model["size_vram"], 12_400_000_000u64);
    assert_eq!(model["processor"], "52%/48% CPU/GPU");
    assert_eq!(model["context_length"], 131_072);
    assert!(model["until"].as_str().unwrap().ends_with("from now"));
    // The stand-in is local, but this machine has no NVIDIA driver in CI: no measurement.
    assert!(model.get("gpu_measured").is_some());

    // keep_alive -1 is "Forever".
    let out = env
        .run(&["ask", "-m", "tiny", "--keep-alive", "-1", "hi"])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = env.run(&["ps"]).await;
    let row = stdout(&out)
        .lines()
        .find(|l| l.starts_with("tiny"))
        .unwrap()
        .to_owned();
    assert!(row.ends_with("Forever"), "{row}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ls_and_list_are_models_and_models_speaks_json() {
    let env = Env::new().await;
    let models = env.run(&["models"]).await;
    for alias in ["ls", "list"] {
        let out = env.run(&[alias]).await;
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert_eq!(stdout(&out), stdout(&models));
    }
    env.ollama
        .set_residency("llama3.2:3b", Residency::gpu(4_152_782_848).context(4096));
    env.ollama.reply_with(&["ok"]);
    assert_eq!(code(&env.run(&["ask", "hi"]).await), 0);
    let out = env.run(&["ls", "--json"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let list = json(&out);
    let models = list["models"].as_array().unwrap();
    let tiny = models.iter().find(|m| m["name"] == "tiny:latest").unwrap();
    assert_eq!(tiny["size"], 414_459);
    assert!(tiny["running"].is_null());
    let llama = models.iter().find(|m| m["name"] == "llama3.2:3b").unwrap();
    assert_eq!(llama["running"]["processor"], "100% GPU");
    assert_eq!(llama["running"]["context_length"], 4096);
    // A server that is down: exit 4, and a JSON error object with --json.
    let out = run_with(env.bare(&["ls", "--json", "--host", "127.0.0.1:1"]), None).await;
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert_eq!(json(&out)["error"]["kind"], "unreachable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_summarises_a_model_and_flags_what_pushes_it_off_the_gpu() {
    let env = Env::new().await;
    let out = env.run(&["show", "m3b-numgpu1"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    for line in [
        "architecture        llama",
        "parameters          3.2B",
        "context length      131072",
        "quantization        Q8_0",
        "layers              28",
        "completion",
        "num_gpu",
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
    assert!(!text.contains("{{"), "no template in {text}");
    assert!(
        stderr(&out).contains("num_gpu 1 offloads 1 of 29 layers"),
        "{}",
        stderr(&out)
    );
    let out = env.run(&["show", "m3b-numgpu1", "--json"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let show = json(&out);
    assert_eq!(show["architecture"], "llama");
    assert_eq!(show["parameter_count"], 3_212_749_888u64);
    assert_eq!(show["quantization"], "Q8_0");
    assert_eq!(show["capabilities"][0], "completion");
    assert!(show["warnings"][0].as_str().unwrap().contains("29 layers"));
    assert!(
        show["modelfile_parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "num_gpu" && p["value"] == "1")
    );
    let out = env.run(&["show", "m3b-numgpu1", "--modelfile"]).await;
    assert_eq!(code(&out), 0);
    assert!(
        stdout(&out).contains("PARAMETER num_gpu 1"),
        "{}",
        stdout(&out)
    );
    // A model the server does not have: exit 5, as JSON with --json.
    let out = env.run(&["show", "absent:1b"]).await;
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    let out = env.run(&["show", "absent:1b", "--json"]).await;
    assert_eq!(code(&out), 5);
    assert_eq!(json(&out)["error"]["kind"], "model_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_names_a_baked_system_prompt_and_what_becomes_of_it() {
    let env = Env::new().await;
    env.ollama.add_model(ModelFixture::from_show(
        "tiny-persona",
        include_str!("../../tests/fixtures/cpu/show_tiny-persona.json"),
        414_643,
        "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9",
    ));
    let out = env.run(&["show", "tiny-persona"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("System ("), "{text}");
    assert!(text.contains("baked into the model"), "{text}");
    assert!(text.contains("personality replaces it"), "{text}");
    let show = json(&env.run(&["show", "tiny-persona", "--json"]).await);
    assert!(
        show["system"].as_str().unwrap().contains("Captain Byte"),
        "{show}"
    );
    // A model without one says nothing of it.
    let out = env.run(&["show", "tiny"]).await;
    assert!(!stdout(&out).contains("System ("), "{}", stdout(&out));
    assert!(json(&env.run(&["show", "tiny", "--json"]).await)["system"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_unloads_and_says_when_there_is_nothing_to_stop() {
    let env = Env::new().await;
    env.ollama.reply_with(&["ok"]);
    assert_eq!(code(&env.run(&["ask", "-m", "tiny", "hi"]).await), 0);
    assert_eq!(env.ollama.loaded_models(), ["tiny:latest"]);
    let out = env.run(&["stop", "tiny"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "stopped tiny:latest\n");
    let unload = env.ollama.requests_to("/api/generate").pop().unwrap();
    let body = unload.json.unwrap();
    assert_eq!(body["keep_alive"], 0);
    assert_eq!(body["model"], "tiny:latest");
    assert!(env.ollama.loaded_models().is_empty());
    // Not loaded: said, and success.
    let out = env.run(&["stop", "tiny"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("tiny is not loaded"),
        "{}",
        stderr(&out)
    );
    // Not on the server at all: exit 5.
    let out = env.run(&["stop", "absent:1b"]).await;
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    assert!(stderr(&out).contains("absent:1b"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personality_list_json_includes_the_broken_ones() {
    let env = Env::new().await;
    let dir = env.path(".config/conductor/personalities");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("broken.toml"), "name = [").unwrap();
    let out = env.run(&["personality", "list", "--json"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let list = json(&out);
    assert_eq!(list["current"], "yollayah");
    let entries = list["personalities"].as_array().unwrap();
    let yollayah = entries.iter().find(|p| p["name"] == "yollayah").unwrap();
    assert_eq!(yollayah["current"], true);
    assert!(yollayah["error"].is_null());
    let broken = entries.iter().find(|p| p["name"] == "broken").unwrap();
    assert!(
        broken["error"].as_str().unwrap().contains("broken.toml"),
        "{broken}"
    );
    assert!(broken["description"].is_null());
}

// ---------------------------------------------------------------------------------------------
// 4. config path and config init

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_init_writes_a_starter_that_conductor_reads_and_never_overwrites() {
    let env = Env::new().await;
    let default = env.path(".config/conductor/conductor.toml");
    let out = env.run(&["config", "path"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let line = stdout(&out)
        .lines()
        .find(|l| l.contains(&path_arg(&default)))
        .unwrap()
        .to_owned();
    assert!(line.contains("missing (optional"), "{line}");

    let out = env.run(&["config", "init"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("wrote {}\n", default.display()));
    let text = std::fs::read_to_string(&default).unwrap();
    assert!(text.contains("# [chat]") && text.contains("# theme = \"auto\""));
    // conductor reads it (everything commented: all defaults).
    let out = env.run(&["config", "show", "--json"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["config_file"], path_arg(&default));
    let out = env.run(&["config", "path", "--json"]).await;
    let paths = json(&out);
    assert_eq!(paths["config_files"][0]["used"], true);
    assert_eq!(paths["config_files"][0]["exists"], true);
    let whats: Vec<&str> = paths["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["what"].as_str().unwrap())
        .collect();
    for what in [
        "personalities",
        "GPU fixes (state)",
        "chat sessions",
        "chat log",
    ] {
        assert!(whats.contains(&what), "{what} in {whats:?}");
    }

    // Never over an existing file without --force.
    std::fs::write(&default, "model = \"mine\"\n").unwrap();
    let out = env.run(&["config", "init"]).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&default).unwrap(),
        "model = \"mine\"\n"
    );
    let out = env.run(&["config", "init", "--force"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&default).unwrap(), text);

    // --path creates directories, and says how to use a file conductor does not read itself.
    let elsewhere = env.path("deep/er/c.toml");
    let out = env
        .run(&["config", "init", "--path", &path_arg(&elsewhere)])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("--config"), "{}", stderr(&out));
    // --config names the target, and is then the file used.
    let named = env.path("named.toml");
    let out = env
        .run(&["config", "init", "--config", &path_arg(&named)])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(named.exists());
    let out = env
        .run(&["config", "path", "--json", "--config", &path_arg(&named)])
        .await;
    let paths = json(&out);
    assert_eq!(paths["config_files"][0]["source"], "--config");
    assert_eq!(paths["config_files"][0]["used"], true);
    assert_eq!(paths["config_files"][1]["used"], false);
    // A directory is not a file.
    let out = env
        .run(&["config", "init", "--path", &path_arg(env.home.path())])
        .await;
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("is a directory"), "{}", stderr(&out));
    // A configuration that does not load is reported, not fatal, and CONDUCTOR_CONFIG shows
    // as the file used over the platform one.
    let broken = env.path("broken.toml");
    std::fs::write(&broken, "model = [\n").unwrap();
    let mut cmd = env.cmd(&["config", "path", "--json"]);
    cmd.env("CONDUCTOR_CONFIG", &broken);
    let out = run_with(cmd, None).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let paths = json(&out);
    assert_eq!(paths["config_files"][0]["source"], "CONDUCTOR_CONFIG");
    assert_eq!(paths["config_files"][0]["used"], true);
    assert_eq!(paths["config_files"][1]["source"], "platform default");
    assert_eq!(paths["config_files"][1]["used"], false);
    assert!(
        paths["config_error"]
            .as_str()
            .unwrap()
            .contains("broken.toml:1"),
        "{paths}"
    );
    let mut cmd = env.cmd(&["config", "path"]);
    cmd.env("CONDUCTOR_CONFIG", &broken);
    let out = run_with(cmd, None).await;
    assert_eq!(code(&out), 0);
    assert!(stderr(&out).contains("does not load"), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("not used (exists)"),
        "{}",
        stdout(&out)
    );
    // --print writes nothing, and what it prints parses.
    let out = env.run(&["config", "init", "--print"]).await;
    assert_eq!(code(&out), 0);
    assert_eq!(stdout(&out), text);
}

// ---------------------------------------------------------------------------------------------
// 5. Completions that know personalities and models

/// The candidates the shell would get for the last word of `words` (bash's protocol, as the
/// registration script calls it).
async fn complete(env: &Env, host: &str, words: &[&str]) -> (Vec<String>, Duration) {
    let mut cmd = env.bare(&["--"]);
    cmd.args(words)
        .env("OLLAMA_HOST", host)
        .env("COMPLETE", "bash")
        .env("_CLAP_COMPLETE_INDEX", (words.len() - 1).to_string())
        .env("_CLAP_COMPLETE_COMP_TYPE", "9")
        .env("_CLAP_COMPLETE_SPACE", "true")
        .env("_CLAP_IFS", "\n");
    let started = Instant::now();
    let out = run_with(cmd, None).await;
    let took = started.elapsed();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let names = stdout(&out)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    (names, took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_know_personalities_and_local_models() {
    let env = Env::new().await;
    let dir = env.path(".config/conductor/personalities");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("pirate.toml"),
        "name = \"pirate\"\ndescription = \"Arr\"\nprompt = \"Talk like a pirate.\"\n",
    )
    .unwrap();
    let host = env.ollama.host();
    let (names, _) = complete(&env, &host, &["conductor", "ask", "-p", ""]).await;
    assert!(names.contains(&"yollayah".to_owned()), "{names:?}");
    assert!(names.contains(&"pirate".to_owned()), "{names:?}");
    let (names, _) = complete(&env, &host, &["conductor", "ask", "-p", "pi"]).await;
    assert_eq!(names, ["pirate"]);
    let (names, _) = complete(&env, &host, &["conductor", "-m", ""]).await;
    for model in ["tiny:latest", "llama3.2:3b", "m3b:latest"] {
        assert!(names.contains(&model.to_owned()), "{model} in {names:?}");
    }
    let (names, _) = complete(&env, &host, &["conductor", "chat", "--model", "ti"]).await;
    assert_eq!(names, ["tiny:latest"]);
    let (names, _) = complete(&env, &host, &["conductor", "show", "m3b-c"]).await;
    assert!(names.contains(&"m3b-cpu:latest".to_owned()), "{names:?}");
    // A --host typed on the line wins over OLLAMA_HOST (here a dead address).
    let (names, _) = complete(
        &env,
        "127.0.0.1:1",
        &["conductor", "--host", &host, "ask", "-m", "ti"],
    )
    .await;
    assert_eq!(names, ["tiny:latest"]);
    let flag = format!("--host={host}");
    let (names, _) = complete(&env, "127.0.0.1:1", &["conductor", "show", &flag, "ti"]).await;
    assert_eq!(names, ["tiny:latest"]);
    // Server down: nothing, quickly.
    let (names, took) = complete(&env, "127.0.0.1:1", &["conductor", "ask", "-m", ""]).await;
    assert!(names.is_empty(), "{names:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    // A server that does not answer in time: nothing, after the short timeout.
    let silent = StandIn::start().await;
    silent.push_fault("/api/tags", conductor_tests::Fault::NoResponse);
    let (names, took) = complete(&env, &silent.host(), &["conductor", "ask", "-m", ""]).await;
    assert!(names.is_empty(), "{names:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    // A name that does not resolve (the lookup runs on a blocking thread that the TAB must
    // not wait for).
    let (names, took) = complete(
        &env,
        "http://no-such-host.invalid:11434",
        &["conductor", "ask", "-m", ""],
    )
    .await;
    assert!(names.is_empty(), "{names:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_survive_a_config_file_that_does_not_load() {
    let env = Env::new().await;
    let dir = env.path(".config/conductor/personalities");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("pirate.toml"),
        "name = \"pirate\"\ndescription = \"Arr\"\nprompt = \"Talk like a pirate.\"\n",
    )
    .unwrap();
    std::fs::write(env.path(".config/conductor/conductor.toml"), "model = [\n").unwrap();
    let host = env.ollama.host();
    // The platform's personality directory is still read.
    let (names, _) = complete(&env, &host, &["conductor", "ask", "-p", "pi"]).await;
    assert_eq!(names, ["pirate"]);
    // The server from the environment is still asked.
    let (names, _) = complete(&env, &host, &["conductor", "ask", "-m", "ti"]).await;
    assert_eq!(names, ["tiny:latest"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_print_the_dynamic_script_or_the_static_one() {
    let env = Env::new().await;
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = env.run(&["completions", shell]).await;
        assert_eq!(code(&out), 0, "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        assert!(
            script.contains("COMPLETE") && script.contains("conductor"),
            "{shell}: {script}"
        );
    }
    let out = env.run(&["completions", "bash", "--static"]).await;
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains("personality"));
    // The script `COMPLETE=bash conductor` prints is the same.
    let mut cmd = env.bare(&[]);
    cmd.env("COMPLETE", "bash");
    let out = run_with(cmd, None).await;
    assert_eq!(code(&out), 0);
    assert_eq!(
        stdout(&out),
        stdout(&env.run(&["completions", "bash"]).await)
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Review fixes

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_before_the_subcommand_are_limited_to_the_groups_it_takes() {
    let env = Env::new().await;
    let host = env.ollama.host();
    for (args, flag, command) in [
        (vec!["-m", "x", "ps"], "-m/--model", "`conductor ps`"),
        (
            vec!["-p", "nope", "--host", &host, "ps"],
            "-p/--personality",
            "`conductor ps`",
        ),
        (
            vec!["--gpu-policy", "off", "personality", "list"],
            "--gpu-policy",
            "`conductor personality list`",
        ),
        (
            vec!["--host", &host, "config", "path"],
            "--host",
            "`conductor config path`",
        ),
        (
            vec!["--log", "debug", "sessions", "list"],
            "--log",
            "`conductor sessions`",
        ),
    ] {
        let out = run_with(env.bare(&args), None).await;
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(flag) && err.contains(command),
            "{args:?}: {err}"
        );
    }
    // After the subcommand, clap says the same.
    let out = run_with(env.bare(&["ps", "-m", "x"]), None).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    // The groups a subcommand takes still work before it.
    let out = run_with(env.bare(&["--host", &host, "ps"]), None).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = env.run(&["-p", "yollayah", "personality", "show"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_refuses_an_unknown_theme() {
    let env = Env::new().await;
    let out = env.run(&["chat", "--theme", "purple"]).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("purple") && err.contains("dark"), "{err}");
}

/// `conductor ARGS` in a shell that caps the files it writes at 512 bytes (`ulimit -f 1`) and
/// ignores SIGXFSZ, so that a write past the cap fails (EFBIG) as on a full disk, even as root.
fn with_file_size_cap(env: &Env, args: &[&str]) -> Command {
    let clean = env.bare(&[]);
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg("trap '' XFSZ; ulimit -f 1; exec \"$@\"")
        .arg("sh")
        .arg(common::BIN)
        .args(args);
    for (key, value) in clean.get_envs() {
        match value {
            Some(value) => sh.env(key, value),
            None => sh.env_remove(key),
        };
    }
    sh.stdin(Stdio::null());
    sh
}

/// The names in `dir`.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_init_writes_whole_files_or_nothing() {
    let env = Env::new().await;
    let dir = env.path("cfg");
    std::fs::create_dir_all(&dir).unwrap();
    let target = dir.join("conductor.toml");
    let target_arg = path_arg(&target);
    // A write that fails half way leaves no partial file and no temporary one.
    let out = run_with(
        with_file_size_cap(&env, &["config", "init", "--path", &target_arg]),
        None,
    )
    .await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot write"), "{}", stderr(&out));
    assert!(names_in(&dir).is_empty(), "{:?}", names_in(&dir));
    // With --force, the old file survives a failed write untouched.
    std::fs::write(&target, "model = \"mine\"\n").unwrap();
    let out = run_with(
        with_file_size_cap(&env, &["config", "init", "--force", "--path", &target_arg]),
        None,
    )
    .await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "model = \"mine\"\n"
    );
    assert_eq!(names_in(&dir), ["conductor.toml"]);
    // Written, it is the user's alone (it may come to hold a token).
    let out = env
        .run(&["config", "init", "--force", "--path", &target_arg])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        std::fs::read_to_string(&target)
            .unwrap()
            .contains("# [chat]")
    );
    assert_eq!(names_in(&dir), ["conductor.toml"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        // A directory it may not write into: a clear error, nothing left behind (root writes
        // anyway, so this part needs an unprivileged user).
        let locked = env.path("locked");
        std::fs::create_dir_all(&locked).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o500)).unwrap();
        if std::fs::write(locked.join("probe"), "").is_err() {
            let out = env
                .run(&[
                    "config",
                    "init",
                    "--path",
                    &path_arg(&locked.join("c.toml")),
                ])
                .await;
            assert_eq!(code(&out), 2, "{}", stderr(&out));
            let err = stderr(&out);
            assert!(
                err.contains("cannot write") && err.contains("ermission denied"),
                "{err}"
            );
            assert!(names_in(&locked).is_empty(), "{:?}", names_in(&locked));
        }
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
}
