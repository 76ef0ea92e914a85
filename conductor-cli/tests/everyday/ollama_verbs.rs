//! Ollama's verbs: `ps`, `ls`/`list`, `show`, `stop`, and `personality list --json`.

use conductor_tests::{ModelFixture, Residency};

use crate::common::{Env, code, run_with, stderr, stdout};
use crate::support::json;

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
        include_str!("../../../tests/fixtures/cpu/show_tiny-persona.json"),
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
