//! The server and the transport: typed errors, retries, connections, TLS, tokens, options.

use std::sync::Arc;
use std::time::Duration;

use conductor_core::backend::LoadRequest;
use conductor_core::{
    Backend, Conductor, Error, KeepAlive, ModelServer, OllamaBackend, Processor, RunnerOptions,
    Settings,
};
use conductor_tests::{Fault, ModelFixture, Reply, Residency, StandIn};

use super::common::*;

#[tokio::test]
async fn unknown_model_is_model_not_found() {
    let ollama = StandIn::start().await;
    let mut settings = settings(&ollama);
    settings.model = "does-not-exist".into();
    let conductor = Conductor::from_settings(&settings).unwrap();
    let err = conductor.ask("hi").await.err().unwrap();
    assert!(
        matches!(&err, Error::ModelNotFound { model } if model == "does-not-exist"),
        "{err:?}"
    );
    assert_eq!(
        err.hint().unwrap(),
        "download it with `ollama pull does-not-exist`"
    );
    let err = conductor
        .backend()
        .server()
        .unwrap()
        .show_model("nope")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::ModelNotFound { model } if model == "nope"),
        "{err:?}"
    );
}

#[tokio::test]
async fn server_errors_carry_ollamas_message() {
    let ollama = StandIn::start().await;
    ollama.push_reply(Reply::status(
        500,
        "llama runner process has terminated: signal: killed",
    ));
    let err = conductor(&ollama).ask("hi").await.err().unwrap();
    match err {
        Error::Http { status, message } => {
            assert_eq!(status, 500);
            assert_eq!(
                message,
                "llama runner process has terminated: signal: killed"
            );
        }
        other => panic!("{other:?}"),
    }
    // The stand-in's own validation: a wrong option type is a 500, as recorded.
    let backend = conductor(&ollama).backend().clone();
    let mut request =
        conductor_core::ChatRequest::new("tiny", vec![conductor_core::Message::user("x")]);
    request.options.num_ctx = Some(4096);
    assert!(backend.chat(request).await.is_ok());
}

#[tokio::test]
async fn busy_server_is_retried_with_backoff_then_reported() {
    let ollama = StandIn::start().await;
    ollama.push_reply(Reply::status(
        503,
        "server busy, please try again.  maximum pending requests exceeded",
    ));
    ollama.push_reply(Reply::status(429, "too many requests"));
    ollama.push_reply(Reply::tokens(&["finally"]));
    let conductor = conductor(&ollama);
    let answer = conductor.ask_collect("hi").await.unwrap();
    assert_eq!(answer.content, "finally");
    assert_eq!(ollama.requests_to("/api/chat").len(), 3);

    for _ in 0..4 {
        ollama.push_reply(Reply::status(503, "server busy"));
    }
    let err = conductor.ask("hi").await.err().unwrap();
    assert!(
        matches!(
            err,
            Error::Busy {
                status: 503,
                attempts: 4,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn unreachable_server_names_the_host_and_how_to_start_ollama() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut settings = Settings::defaults();
    settings.host = format!("127.0.0.1:{port}").parse().unwrap();
    let conductor = Conductor::from_settings(&settings).unwrap();
    let err = conductor.ask("hi").await.err().unwrap();
    let text = err.to_string();
    assert!(text.contains(&format!("http://127.0.0.1:{port}")), "{text}");
    assert!(text.contains("connection refused"), "{text}");
    assert!(err.hint().unwrap().contains("ollama serve"));

    settings.host = "no-such-host.invalid:11434".parse().unwrap();
    let conductor = Conductor::from_settings(&settings).unwrap();
    let err = conductor.ask("hi").await.err().unwrap();
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
}

#[tokio::test]
async fn sixty_four_concurrent_asks_share_one_pool() {
    let ollama = StandIn::start().await;
    ollama.set_default_reply(Reply::tokens(&["ok"]).chunk_delay(Duration::from_millis(20)));
    let conductor = conductor(&ollama);
    let run_batch = || {
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let conductor = conductor.clone();
                tokio::spawn(async move { conductor.ask_collect(&format!("q{i}")).await })
            })
            .collect();
        futures::future::join_all(tasks)
    };
    for result in run_batch().await {
        assert_eq!(result.unwrap().unwrap().content, "ok");
    }
    let after_first = ollama.connections();
    assert!(after_first <= 64, "{after_first}");
    for result in run_batch().await {
        assert_eq!(result.unwrap().unwrap().content, "ok");
    }
    // The second batch reuses the pooled connections.
    assert_eq!(ollama.connections(), after_first);
    assert_eq!(ollama.requests_to("/api/chat").len(), 128);
}

#[tokio::test]
async fn residency_show_tags_version_load_and_unload() {
    let ollama = StandIn::start().await;
    ollama.set_residency(
        "m3b-numgpu1",
        Residency::split(25_712_097_280, 7_909_500_928).context(131_072),
    );
    let backend = OllamaBackend::builder(ollama.host().parse().unwrap())
        .build()
        .unwrap();
    assert_eq!(backend.version().await.unwrap().0, "0.24.0");
    assert!(backend.running_models().await.unwrap().is_empty());

    let options = RunnerOptions {
        num_ctx: Some(8192),
        ..RunnerOptions::default()
    };
    let report = backend
        .load_model(LoadRequest {
            model: "m3b-numgpu1".into(),
            options: options.clone(),
            keep_alive: Some(KeepAlive::For(Duration::from_secs(600))),
        })
        .await
        .unwrap();
    assert!(report.loaded);
    let load = ollama.requests_to("/api/generate").pop().unwrap();
    assert_eq!(load.json.as_ref().unwrap()["options"]["num_ctx"], 8192);
    assert_eq!(load.json.as_ref().unwrap()["keep_alive"], "600s");

    let running = backend.running_models().await.unwrap();
    assert_eq!(running.len(), 1);
    let m = &running[0];
    assert_eq!(m.name, "m3b-numgpu1:latest");
    assert_eq!(
        m.processor(),
        Processor::Split {
            cpu_percent: 69,
            gpu_percent: 31
        }
    );
    assert_eq!(m.processor().to_string(), "69%/31% CPU/GPU");
    assert!(!m.is_fully_resident());
    assert_eq!(m.context_length, Some(131_072));
    assert_eq!(m.details.parameter_size, "3.2B");

    let show = backend.show_model("m3b-numgpu1").await.unwrap();
    assert_eq!(show.parameter("num_gpu"), Some("1"));
    assert_eq!(show.block_count(), Some(28));
    assert_eq!(show.trained_context_length(), Some(131_072));
    assert_eq!(show.arch_u64("attention.head_count_kv"), Some(8));

    let models = backend.list_models().await.unwrap();
    assert!(models.iter().any(|m| m.name == "tiny:latest"));

    backend.unload_model("m3b-numgpu1").await.unwrap();
    assert!(backend.running_models().await.unwrap().is_empty());
    let unload = ollama.requests_to("/api/generate").pop().unwrap();
    assert_eq!(unload.json.as_ref().unwrap()["keep_alive"], 0);
}

#[tokio::test]
async fn a_token_is_sent_as_a_bearer_header_and_never_debug_printed() {
    let ollama = StandIn::start().await;
    let backend = OllamaBackend::builder(ollama.host().parse().unwrap())
        .token(Some(conductor_core::config::Secret::new("sk-secret-123")))
        .build()
        .unwrap();
    backend.version().await.unwrap();
    let request = ollama.requests_to("/api/version").pop().unwrap();
    assert_eq!(
        request.header("authorization"),
        Some("Bearer sk-secret-123")
    );
    assert!(!format!("{backend:?}").contains("sk-secret-123"));
    let host = request.header("host").unwrap();
    assert_eq!(host, ollama.addr().to_string());
}

#[tokio::test]
async fn options_and_keep_alive_reach_every_request() {
    let ollama = StandIn::start().await;
    let mut settings = settings(&ollama);
    settings.options.num_ctx = Some(4096);
    settings.options.temperature = Some(0.2);
    settings.keep_alive = Some(KeepAlive::Forever);
    let conductor = Conductor::from_settings(&settings).unwrap();
    conductor.ask_collect("x").await.unwrap();
    let body = ollama.requests_to("/api/chat").pop().unwrap().json.unwrap();
    assert_eq!(body["options"]["num_ctx"], 4096);
    assert_eq!(body["options"]["temperature"], 0.2);
    assert_eq!(body["keep_alive"], -1);
}

#[tokio::test]
async fn extra_models_can_be_scripted() {
    let ollama = StandIn::start().await;
    ollama.add_model(ModelFixture::llama_3b("qwen3:8b"));
    let backend: Arc<dyn Backend> = Arc::new(
        OllamaBackend::builder(ollama.host().parse().unwrap())
            .build()
            .unwrap(),
    );
    assert!(
        backend
            .server()
            .unwrap()
            .show_model("qwen3:8b")
            .await
            .is_ok()
    );
    ollama.remove_model("qwen3:8b");
    assert!(matches!(
        backend.server().unwrap().show_model("qwen3:8b").await,
        Err(Error::ModelNotFound { .. })
    ));
}

/// Runs against a real Ollama when `CONDUCTOR_TEST_OLLAMA` names one (e.g.
/// `http://127.0.0.1:11434`), with the model in `CONDUCTOR_TEST_MODEL` (default `tiny`, from
/// `shared/real-ollama/setup.sh`).
#[tokio::test]
async fn real_ollama_when_available() {
    let Ok(url) = std::env::var("CONDUCTOR_TEST_OLLAMA") else {
        eprintln!(
            "skipped: set CONDUCTOR_TEST_OLLAMA=http://127.0.0.1:11434 to run against a real Ollama"
        );
        return;
    };
    let mut settings = Settings::defaults();
    settings.host = url.parse().unwrap();
    // shared/real-ollama/setup.sh serves `tiny`; the CI machine has no GPU, so say so and go on.
    settings.model = std::env::var("CONDUCTOR_TEST_MODEL").unwrap_or_else(|_| "tiny".into());
    settings.gpu_policy = conductor_core::GpuPolicy::Warn;
    settings.options.num_predict = Some(16);
    let conductor = Conductor::from_settings(&settings).unwrap();
    let backend = conductor.backend();
    println!(
        "Ollama {}",
        backend.server().unwrap().version().await.unwrap()
    );
    let mut chat = conductor.chat();
    let first = chat.send_collect("Say hello in five words.").await.unwrap();
    let second = chat.send_collect("Again, differently.").await.unwrap();
    assert!(!first.content.is_empty() && !second.content.is_empty());
    let (one, two) = (
        first.completion.unwrap().stats,
        second.completion.unwrap().stats,
    );
    println!(
        "turn 1: {} prompt tokens in {:?}; turn 2: {} in {:?} (prompt cache)",
        one.prompt_eval_count,
        one.prompt_eval_duration,
        two.prompt_eval_count,
        two.prompt_eval_duration
    );
}

#[tokio::test]
async fn https_through_rustls_with_an_internal_certificate_authority() {
    let (ollama, pem) = StandIn::start_tls().await;
    ollama.reply_with(&["over", " TLS"]);
    assert!(ollama.host().starts_with("https://127.0.0.1:"));
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pem).unwrap();

    // Without trusting the proxy's certificate: refused, saying why.
    let mut settings = settings(&ollama);
    let err = Conductor::from_settings(&settings)
        .unwrap()
        .ask("x")
        .await
        .err()
        .unwrap();
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );

    // Trusting it (ollama.ca_cert), with a token: the answer arrives, the token was sent.
    settings.ca_cert = Some(ca);
    settings.token = Some(conductor_core::config::Secret::new("sk-tls"));
    let answer = Conductor::from_settings(&settings)
        .unwrap()
        .ask_collect("x")
        .await
        .unwrap();
    assert_eq!(answer.content, "over TLS");
    let request = ollama.requests_to("/api/chat").pop().unwrap();
    assert_eq!(request.header("authorization"), Some("Bearer sk-tls"));

    settings.ca_cert = Some(dir.path().join("missing.pem"));
    let err = Conductor::from_settings(&settings).unwrap_err();
    assert!(err.to_string().contains("ollama.ca_cert"), "{err}");
}

#[tokio::test]
async fn a_chat_reuses_one_connection_turn_after_turn() {
    let ollama = StandIn::start().await;
    let conductor = conductor(&ollama);
    let mut chat = conductor.chat();
    for turn in 0..4 {
        chat.send_collect(&format!("turn {turn}")).await.unwrap();
    }
    // The residency check and four answers, all over one kept-alive connection.
    assert_eq!(ollama.connections(), 1);
}

#[tokio::test]
async fn a_path_prefix_reaches_every_endpoint() {
    // An Ollama behind a reverse proxy at /ollama: the stand-in serves only /api/..., so the
    // requests show which paths the client built (ollama-rs's own and ours).
    let ollama = StandIn::start().await;
    let host: conductor_core::OllamaHost = format!("{}/ollama", ollama.host()).parse().unwrap();
    let backend = OllamaBackend::builder(host).build().unwrap();
    let _ = backend.list_models().await;
    let _ = backend.show_model("tiny").await;
    let _ = backend.version().await;
    let paths: Vec<String> = ollama.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/ollama/api/tags",
            "/ollama/api/show",
            "/ollama/api/version"
        ]
    );
}

#[tokio::test]
async fn a_missing_model_is_known_by_its_status_in_every_wording() {
    let ollama = StandIn::start().await;
    let mut settings = settings(&ollama);
    settings.gpu_policy = conductor_core::GpuPolicy::Off;
    settings.model = "ghost".into();
    let conductor = Conductor::from_settings(&settings).unwrap();
    // Ollama 0.24 sends both wordings; a future one may send another.
    for body in [
        "model 'ghost' not found",
        "model \"ghost\" not found, try pulling it first",
        "no such model",
    ] {
        ollama.push_fault(
            "/api/chat",
            Fault::Status {
                status: 404,
                body: body.into(),
                json: true,
            },
        );
        let err = conductor.ask("hi").await.err().unwrap();
        assert!(
            matches!(&err, Error::ModelNotFound { model } if model == "ghost"),
            "{body}: {err:?}"
        );
    }
    // A router's 404 (an unknown path) is not a missing model.
    ollama.push_fault(
        "/api/ps",
        Fault::Status {
            status: 404,
            body: "404 page not found".into(),
            json: false,
        },
    );
    let err = conductor
        .backend()
        .server()
        .unwrap()
        .running_models()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Http { status: 404, .. }), "{err:?}");
}

#[test]
fn model_names_match_as_ollama_reads_them() {
    use conductor_core::backend::same_model;
    assert!(same_model("llama3.2", "llama3.2:latest"));
    assert!(same_model("Llama3.2:3B", "llama3.2:3b"));
    assert!(same_model(
        "registry.local:5000/team/m",
        "registry.local:5000/team/m:latest"
    ));
    assert!(!same_model("llama3.2:1b", "llama3.2:3b"));
    assert!(!same_model("tiny", "tiny-det"));
}
