//! GPU residency at the command line: policies, `gpu verify`/`status`, fixes, keep-alive.

use conductor_tests::{Fault, Residency};

use super::common::{Env, code, stderr, stdout};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_resident_under_enforce_exits_3_and_warn_answers() {
    let env = Env::new().await;
    env.ollama.set_residency(
        "m3b-numgpu1",
        Residency::split(25_712_097_280, 7_909_500_928).context(131_072),
    );
    let out = env.run(&["ask", "-m", "m3b-numgpu1", "hi"]).await;
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let text = stderr(&out);
    assert!(
        text.contains("not fully on the GPU (69%/31% CPU/GPU)"),
        "{text}"
    );
    assert!(text.contains("num_gpu counts layers"), "{text}");
    assert!(text.contains("PARAMETER num_gpu"), "{text}");
    assert_eq!(stdout(&out), "");
    assert!(env.ollama.requests_to("/api/chat").is_empty());

    env.ollama.reply_with(&["answered anyway"]);
    let out = env
        .run(&["ask", "-m", "m3b-numgpu1", "--gpu-policy", "warn", "hi"])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "answered anyway\n");
    assert!(
        stderr(&out).contains("warning: model 'm3b-numgpu1' is not fully on the GPU"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpu_verify_is_a_ci_gate() {
    let env = Env::new().await;
    env.ollama
        .set_residency("m3b-4k", Residency::gpu(4_152_782_848).context(4096));
    let out = env.run(&["gpu", "verify", "-m", "m3b-4k"]).await;
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("100% GPU") && text.contains("✓ fully on the GPU"),
        "{text}"
    );
    assert!(text.contains("tokens/s"), "{text}");

    env.ollama.set_residency(
        "m3b",
        Residency::split(25_712_097_280, 7_265_650_688).context(131_072),
    );
    let out = env.run(&["gpu", "verify", "-m", "m3b", "--json"]).await;
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["resident"], false);
    assert_eq!(v["running"]["processor"], "72%/28% CPU/GPU");
    assert!(v["diagnosis"]["summary"].as_str().is_some());
    assert!(v["generation"]["tokens"].as_u64().unwrap() > 0);

    let out = env.run(&["gpu", "verify", "-m", "missing"]).await;
    assert_eq!(code(&out), 5, "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_doctor_and_gpu_status() {
    let env = Env::new().await;
    env.ollama
        .set_residency("llama3.2:3b", Residency::gpu(4_152_782_848).context(4096));
    let out = env.run(&["doctor"]).await;
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    for line in [
        "✓ Ollama: version 0.24.0",
        "✓ model: llama3.2:3b is present",
        "✓ residency: 100% GPU",
        "all good",
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
    let out = env.run(&["models"]).await;
    assert_eq!(code(&out), 0);
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.starts_with("llama3.2:3b") && l.contains("100% GPU")),
        "{text}"
    );
    assert!(text.contains("tiny:latest"));

    let out = env.run(&["gpu", "status"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("llama3.2:3b"), "{}", stdout(&out));

    let out = env.run(&["-m", "absent:1b", "doctor"]).await;
    assert_eq!(code(&out), 5);
    assert!(
        stdout(&out).contains("ollama pull absent:1b"),
        "{}",
        stdout(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fix_is_paid_once_shown_and_forgotten_on_request() {
    let env = Env::new().await;
    // No NVML on this machine: the fix rests on Ollama's own numbers.
    env.ollama.set_residency(
        "m3b",
        Residency::split(25_712_097_280, 7_265_650_688).context(131_072),
    );
    env.ollama
        .set_residency_if_option("m3b", "num_ctx", Residency::gpu(4_152_782_848));
    env.ollama.reply_with(&["fits"]);
    let out = env
        .run(&["ask", "-m", "m3b", "--gpu-policy", "fix", "hi"])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "fits\n");
    let text = stderr(&out);
    assert!(
        text.contains("did not fit on the GPU; changed: num_ctx 131072"),
        "{text}"
    );
    assert!(text.contains("remembered for later runs"), "{text}");
    assert!(
        text.contains("under [options]") && text.contains("num_ctx = "),
        "{text}"
    );
    let state = env
        .home
        .path()
        .join(".local/state/conductor/gpu-fixes.json");
    assert!(state.is_file(), "{}", state.display());

    // The next process, after the model was unloaded: one load, with the context that fits,
    // and nothing to say unless asked.
    env.ollama.evict_all();
    let loads = env.ollama.requests_to("/api/generate").len();
    let out = env
        .run(&["ask", "-m", "m3b", "--gpu-policy", "fix", "again"])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    let new_loads = env.ollama.requests_to("/api/generate")[loads..].to_vec();
    assert_eq!(new_loads.len(), 1);
    assert!(new_loads[0].json.as_ref().unwrap()["options"]["num_ctx"].is_u64());

    // Shown where the settings are shown.
    let out = env.run(&["gpu", "status"]).await;
    assert!(
        stdout(&out).contains("GPU fixes remembered"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("m3b:latest on "), "{}", stdout(&out));
    let out = env.run(&["config", "show", "--json"]).await;
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["remembered_gpu_fixes"][0]["model"], "m3b:latest");

    // Forgotten on request.
    let out = env.run(&["gpu", "forget", "m3b"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("forgot 1 GPU fix for "),
        "{}",
        stdout(&out)
    );
    let out = env.run(&["gpu", "status", "--json"]).await;
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["remembered_fixes"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_killed_by_gpu_memory_exits_3() {
    let env = Env::new().await;
    env.ollama.push_fault(
        "/api/generate",
        Fault::Status {
            status: 500,
            body: "llama runner process has terminated: CUDA error: the resource allocation failed"
                .into(),
            json: true,
        },
    );
    let out = env.run(&["ask", "-m", "m3b", "hi"]).await;
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let text = stderr(&out);
    assert!(text.contains("the GPU ran out of memory"), "{text}");
    assert!(text.contains("resource allocation failed"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_0_unloads_after_answering_under_the_default_policy() {
    let env = Env::new().await;
    env.ollama.reply_with(&["bye"]);
    let out = env.run(&["ask", "--keep-alive", "0", "hi"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "bye\n");
    let chat = env
        .ollama
        .requests_to("/api/chat")
        .pop()
        .unwrap()
        .json
        .unwrap();
    assert_eq!(chat["keep_alive"], "0s");
    assert!(
        env.ollama.loaded_models().is_empty(),
        "unloaded after the answer"
    );
}
