//! The OpenAI-compatible backend end to end: against the SSE stand-in, and against a real
//! Ollama's own `/v1` when `CONDUCTOR_TEST_OLLAMA` names one (skipped, saying so, otherwise).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
#![allow(clippy::print_stderr)]

use std::time::{Duration, Instant};

use conductor_core::error::{Credentials, TimeoutPhase};
use conductor_core::gpu::{AdmissionBasis, Cause};
use conductor_core::{
    BackendKind, ChatEvent, Conductor, DoneReason, Error, GpuPolicy, RunnerOptions, Secret,
    Settings, collect_answer, compose,
};
use conductor_tests::{
    LLAMA_SERVER_METRICS, OpenAiReply, OpenAiStandIn, VLLM_METRICS, llama_server_props,
};
use futures::StreamExt;

const CHAT: &str = "/v1/chat/completions";

fn settings(base: &str) -> Settings {
    let mut settings = Settings::defaults();
    settings.backend = BackendKind::OpenAi;
    settings.host = base.parse().unwrap();
    settings.model = "m".into();
    settings.retry.base_delay = Duration::from_millis(1);
    settings.retry.max_delay = Duration::from_millis(5);
    settings
}

fn conductor(server: &OpenAiStandIn) -> Conductor {
    Conductor::from_settings(&settings(server.base())).unwrap()
}

#[tokio::test]
async fn ask_sends_the_personality_first_with_mapped_options_and_maps_usage() {
    let server = OpenAiStandIn::start().await;
    server.push(OpenAiReply::tokens(&["Hi", " there", "!"]));
    let mut settings = settings(server.base());
    settings.options = RunnerOptions {
        num_ctx: Some(8192),
        num_predict: Some(32),
        temperature: Some(0.2),
        seed: Some(3),
        ..RunnerOptions::default()
    };
    let conductor = Conductor::from_settings(&settings).unwrap();
    let answer = conductor.ask_collect("Who are you?").await.unwrap();
    assert_eq!(answer.content, "Hi there!");
    let completion = answer.completion.unwrap();
    assert_eq!(completion.done_reason, Some(DoneReason::Stop));
    assert_eq!(completion.stats.prompt_eval_count, 37);
    assert_eq!(completion.stats.eval_count, 3);
    assert_eq!(completion.stats.total_duration, Duration::ZERO);

    let requests = server.requests_to(CHAT);
    assert_eq!(requests.len(), 1);
    let body = requests[0].json.as_ref().unwrap();
    assert_eq!(body["model"], "m");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert_eq!(body["max_tokens"], 32);
    assert_eq!(body["temperature"], 0.2);
    assert_eq!(body["seed"], 3);
    assert!(body.get("options").is_none() && body.get("num_ctx").is_none());
    let messages = requests[0].messages();
    assert_eq!(messages[0].0, "system");
    assert_eq!(messages[0].1, compose(conductor.personality(), None));
    assert_eq!(messages[1], ("user".into(), "Who are you?".into()));
}

#[tokio::test]
async fn chunks_cut_inside_events_and_utf8_characters_reassemble_exactly() {
    let server = OpenAiStandIn::start().await;
    let conductor = conductor(&server);
    let pieces = ["héllo", " wörld ", "😀", " — ", "日本語"];
    for split in [1, 2, 3, 5, 7, 13, 64] {
        server.push(OpenAiReply::tokens(&pieces).split_every(split));
        let answer = conductor.ask_collect("Hi").await.unwrap();
        assert_eq!(answer.content, pieces.concat(), "split every {split}");
        assert_eq!(answer.completion.unwrap().stats.eval_count, 5);
    }
}

#[tokio::test]
async fn a_chat_keeps_history_and_the_system_message_byte_identical() {
    let server = OpenAiStandIn::start().await;
    let conductor = conductor(&server);
    let mut chat = conductor.chat();
    for (question, answer) in [("one?", "1"), ("two?", "2")] {
        server.push(OpenAiReply::tokens(&[answer]));
        assert_eq!(chat.send_collect(question).await.unwrap().content, answer);
    }
    let requests = server.requests_to(CHAT);
    let second = requests[1].messages();
    assert_eq!(requests[0].messages()[0], second[0]);
    assert_eq!(
        second[1..],
        [
            ("user".into(), "one?".into()),
            ("assistant".into(), "1".into()),
            ("user".into(), "two?".into())
        ]
    );
}

#[tokio::test]
async fn reasoning_is_thinking_and_length_is_length() {
    let server = OpenAiStandIn::start().await;
    let conductor = conductor(&server);
    server.push(OpenAiReply::thinking(&["let me", " see"], &["42"]).split_every(9));
    let answer = conductor.ask_collect("?").await.unwrap();
    assert_eq!(
        (answer.thinking.as_str(), answer.content.as_str()),
        ("let me see", "42")
    );
    server.push(OpenAiReply::finishing(&["cut"], "length"));
    let answer = conductor.ask_collect("?").await.unwrap();
    assert_eq!(
        answer.completion.unwrap().done_reason,
        Some(DoneReason::Length)
    );
}

#[tokio::test]
async fn failures_map_to_the_same_typed_errors_as_ollama() {
    let server = OpenAiStandIn::start().await;
    let conductor = conductor(&server);
    let ask = |c: &Conductor| {
        let c = c.clone();
        async move { c.ask_collect("Hi").await.unwrap_err() }
    };

    // A model the server does not serve: 404 naming it.
    let mut missing = settings(server.base());
    missing.model = "nope".into();
    let other = Conductor::from_settings(&missing).unwrap();
    assert!(matches!(ask(&other).await, Error::ModelNotFound { model } if model == "nope"));

    // Busy through every retry, then Busy; busy once, then answered.
    for _ in 0..4 {
        server.push(OpenAiReply::status(429, "rate limited"));
    }
    let err = ask(&conductor).await;
    assert!(
        matches!(
            err,
            Error::Busy {
                status: 429,
                attempts: 4,
                ..
            }
        ),
        "{err:?}"
    );
    server.push(OpenAiReply::status(503, "loading"));
    assert_eq!(conductor.ask_collect("Hi").await.unwrap().content, "Hello!");

    // An error event mid-answer keeps the partial answer.
    server.push(OpenAiReply::error_after(&["par", "tial"], "engine died"));
    let err = ask(&conductor).await;
    assert_eq!(err.partial_answer(), Some("partial"));
    assert!(matches!(err.root(), Error::Server { message } if message == "engine died"));

    // Cut without [DONE] or a finish reason; an empty 200.
    server.push(OpenAiReply::cut_after(&["half"]));
    assert!(matches!(ask(&conductor).await.root(), Error::Truncated));
    server.push(OpenAiReply::sse(""));
    assert!(matches!(
        ask(&conductor).await,
        Error::EmptyResponse { endpoint } if endpoint == "/chat/completions"
    ));

    // A base URL without the /v1 prefix: an unknown route, not a missing model.
    let mut wrong = settings(server.base());
    wrong.host = server.base().trim_end_matches("/v1").parse().unwrap();
    let wrong = Conductor::from_settings(&wrong).unwrap();
    assert!(matches!(ask(&wrong).await, Error::Http { status: 404, .. }));
}

#[tokio::test]
async fn the_bearer_token_is_sent_and_a_401_says_which_credentials() {
    let server = OpenAiStandIn::start().await;
    server.require_token("sk-right");
    let err = conductor(&server).ask_collect("Hi").await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unauthorized {
                credentials: Credentials::None,
                ..
            }
        ),
        "{err:?}"
    );
    let mut settings = settings(server.base());
    settings.token = Some(Secret::new("sk-wrong".to_owned()));
    let err = Conductor::from_settings(&settings)
        .unwrap()
        .ask_collect("Hi")
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Unauthorized {
            credentials: Credentials::Token,
            ..
        }
    ));
    assert!(!format!("{err} {err:?}").contains("sk-wrong"));
    settings.token = Some(Secret::new("sk-right".to_owned()));
    let conductor = Conductor::from_settings(&settings).unwrap();
    assert_eq!(conductor.ask_collect("Hi").await.unwrap().content, "Hello!");
    assert_eq!(conductor.backend().models().await.unwrap()[0].name, "m");
}

#[tokio::test]
async fn timeouts_name_the_endpoint_and_the_phase() {
    let server = OpenAiStandIn::start().await;
    let mut settings = settings(server.base());
    settings.timeouts.connect = Duration::from_millis(100);
    settings.timeouts.load = Duration::from_millis(150);
    settings.timeouts.idle = Duration::from_millis(150);
    let conductor = Conductor::from_settings(&settings).unwrap();
    // Nothing before the first byte: the load budget.
    server.push(OpenAiReply::tokens(&["late"]).delay(Duration::from_millis(400)));
    let started = Instant::now();
    let err = conductor.ask_collect("Hi").await.unwrap_err();
    let Error::Timeout {
        endpoint, phase, ..
    } = err.root()
    else {
        panic!("{err:?}");
    };
    assert_eq!(endpoint, "/chat/completions");
    assert_eq!(*phase, TimeoutPhase::Load);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn residency_is_not_reported_so_no_policy_refuses_or_claims_it() {
    let server = OpenAiStandIn::start().await;
    for policy in [GpuPolicy::Enforce, GpuPolicy::Warn, GpuPolicy::Fix] {
        let mut settings = settings(server.base());
        settings.gpu_policy = policy;
        let conductor = Conductor::from_settings(&settings).unwrap();
        let events: Vec<ChatEvent> = conductor
            .ask("Hi")
            .await
            .unwrap()
            .map(Result::unwrap)
            .collect()
            .await;
        let ChatEvent::Warning(notice) = &events[0] else {
            panic!("{policy}: the first event is the notice: {events:?}");
        };
        assert_eq!(notice.cause, Cause::NotReported);
        assert!(notice.summary().contains("not reported by this server"));
        assert!(matches!(events.last(), Some(ChatEvent::Done(_))));
        let admission = conductor.chat().admit().await.unwrap().unwrap();
        assert_eq!(admission.basis, AdmissionBasis::Unreported, "{policy}");
        let guard = conductor.guard().unwrap();
        let err = guard
            .check("m", &RunnerOptions::default(), None)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }));
    }
    assert!(server.requests_to("/v1/api/ps").is_empty());
}

fn real_server() -> Option<String> {
    match std::env::var("CONDUCTOR_TEST_OLLAMA") {
        Ok(url) if !url.is_empty() => Some(format!("{}/v1", url.trim_end_matches('/'))),
        _ => {
            eprintln!(
                "skipped: set CONDUCTOR_TEST_OLLAMA (e.g. from shared/real-ollama/setup.sh) to run against a real Ollama's /v1"
            );
            None
        }
    }
}

#[tokio::test]
async fn real_ollama_v1_answers_streams_usage_and_lists_models() {
    let Some(base) = real_server() else { return };
    let mut settings = settings(&base);
    settings.model = "tiny-det".into();
    settings.options.num_predict = Some(8);
    settings.options.temperature = Some(0.0);
    let conductor = Conductor::from_settings(&settings).unwrap();
    let first = conductor.ask_collect("Count to five.").await.unwrap();
    let completion = first.completion.clone().unwrap();
    assert!(completion.stats.prompt_eval_count > 0, "{completion:?}");
    assert!(completion.stats.eval_count > 0 && completion.stats.eval_count <= 8);
    assert!(matches!(
        completion.done_reason,
        Some(DoneReason::Stop | DoneReason::Length)
    ));
    // tiny-det is temperature 0, seed 1: the same question, the same answer.
    let again = conductor.ask_collect("Count to five.").await.unwrap();
    assert_eq!(first.content, again.content);
    let stream = conductor.ask("Hi").await.unwrap();
    assert!(collect_answer(stream).await.is_ok());
    let models = conductor.backend().models().await.unwrap();
    assert!(
        models.iter().any(|m| m.name.starts_with("tiny-det")),
        "{models:?}"
    );
}

#[tokio::test]
async fn real_ollama_v1_errors_are_typed() {
    let Some(base) = real_server() else { return };
    let mut settings = settings(&base);
    settings.model = "no-such-model".into();
    let err = Conductor::from_settings(&settings)
        .unwrap()
        .ask_collect("Hi")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::ModelNotFound { model } if model == "no-such-model"),
        "{err:?}"
    );
    settings.host = base.trim_end_matches("/v1").parse().unwrap();
    settings.model = "tiny-det".into();
    let err = Conductor::from_settings(&settings)
        .unwrap()
        .ask_collect("Hi")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Http { status: 404, .. }), "{err:?}");
}

#[tokio::test]
async fn server_reports_read_vllm_metrics_at_the_root_with_the_token() {
    let server = OpenAiStandIn::start().await;
    server.require_token("sk-1");
    server.set_metrics(VLLM_METRICS);
    let mut settings = settings(server.base());
    settings.token = Some(Secret::new("sk-1".to_owned()));
    let conductor = Conductor::from_settings(&settings).unwrap();
    let reports = conductor.backend().server_reports().await.unwrap();
    let kv = reports.kv_cache.unwrap();
    assert_eq!(kv.metric, "vllm:kv_cache_usage_perc");
    assert!((kv.ratio - 0.123).abs() < 1e-9);
    assert_eq!(kv.series, 1);
    assert_eq!(reports.props, None, "vLLM has no /props");
    assert_eq!(server.requests_to("/metrics").len(), 1);
    assert_eq!(server.requests_to("/props").len(), 1);
    assert!(server.requests_to("/v1/metrics").is_empty());
}

#[tokio::test]
async fn server_reports_read_llama_server_props_and_metrics() {
    let server = OpenAiStandIn::start().await;
    server.set_metrics(LLAMA_SERVER_METRICS);
    server.set_props(llama_server_props());
    let reports = conductor(&server).backend().server_reports().await.unwrap();
    let kv = reports.kv_cache.unwrap();
    assert_eq!(
        (kv.metric.as_str(), kv.ratio),
        ("llamacpp:kv_cache_usage_ratio", 0.25)
    );
    let props = reports.props.unwrap();
    assert_eq!(props.n_ctx, Some(8192));
    assert_eq!(props.total_slots, Some(1));
    assert_eq!(props.build_info.as_deref(), Some("b4567-abc1234"));
}

#[tokio::test]
async fn server_reports_are_empty_not_errors_when_the_server_has_neither() {
    let server = OpenAiStandIn::start().await;
    let reports = conductor(&server).backend().server_reports().await.unwrap();
    assert!(reports.is_empty());
    // A backend that cannot answer at all is no error either.
    let mut settings = settings("http://127.0.0.1:9/v1");
    settings.timeouts.connect = Duration::from_millis(200);
    let conductor = Conductor::from_settings(&settings).unwrap();
    assert!(
        conductor
            .backend()
            .server_reports()
            .await
            .unwrap()
            .is_empty()
    );
}
