use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use super::*;
use crate::backend::{DoneReason, Message, StreamEvent, collect_answer};
use crate::error::Error;

/// The stream real Ollama 0.24 sends from `/v1/chat/completions` (recorded), one
/// `chat.completion.chunk` per event, then usage, then `[DONE]`.
const RECORDED: &str = concat!(
    "data: {\"id\":\"chatcmpl-416\",\"object\":\"chat.completion.chunk\",\"created\":1796057257,\"model\":\"tiny-det\",\"system_fingerprint\":\"fp_ollama\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\" five\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-416\",\"object\":\"chat.completion.chunk\",\"created\":1796057257,\"model\":\"tiny-det\",\"system_fingerprint\":\"fp_ollama\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\" héllo 😀\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-416\",\"object\":\"chat.completion.chunk\",\"created\":1796057257,\"model\":\"tiny-det\",\"system_fingerprint\":\"fp_ollama\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":\"length\"}]}\n\n",
    "data: {\"id\":\"chatcmpl-416\",\"object\":\"chat.completion.chunk\",\"created\":1796057257,\"model\":\"tiny-det\",\"system_fingerprint\":\"fp_ollama\",\"choices\":[],\"usage\":{\"prompt_tokens\":37,\"completion_tokens\":5,\"total_tokens\":42}}\n\n",
    "data: [DONE]\n\n",
);

fn stream_of(body: &[u8], size: usize) -> ChatStream {
    let chunks: Vec<Result<Bytes, std::io::Error>> = body
        .chunks(size)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    decode_sse_chat_stream(futures::stream::iter(chunks), Duration::from_secs(5))
}

#[tokio::test]
async fn recorded_stream_decodes_the_same_at_every_split() {
    for size in [1, 2, 3, 7, 64, RECORDED.len()] {
        let answer = collect_answer(stream_of(RECORDED.as_bytes(), size))
            .await
            .unwrap_or_default();
        assert_eq!(answer.content, " five héllo 😀", "split {size}");
        let completion = answer.completion.unwrap_or_else(|| panic!("no completion"));
        assert_eq!(completion.done_reason, Some(DoneReason::Length));
        assert_eq!(completion.stats.prompt_eval_count, 37);
        assert_eq!(completion.stats.eval_count, 5);
        assert_eq!(completion.stats.eval_duration, Duration::ZERO);
        assert_eq!(completion.stats.tokens_per_second(), None);
    }
}

#[tokio::test]
async fn reasoning_becomes_thinking_and_comments_are_skipped() {
    let body = ": keep-alive\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"hm\"}}]}\n\n\
                data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning\":\" ok\",\"content\":\"A\"},\"finish_reason\":\"stop\"}]}\n\n\
                data: [DONE]\n\n";
    let events: Vec<_> = stream_of(body.as_bytes(), 5).collect().await;
    let events: Vec<StreamEvent> = events.into_iter().filter_map(Result::ok).collect();
    assert_eq!(events[0], StreamEvent::Thinking("hm".into()));
    assert_eq!(events[1], StreamEvent::Thinking(" ok".into()));
    assert_eq!(events[2], StreamEvent::Content("A".into()));
    assert!(matches!(&events[3], StreamEvent::Done(c) if c.done_reason == Some(DoneReason::Stop)));
}

async fn failure(body: &str) -> Error {
    match collect_answer(stream_of(body.as_bytes(), 4)).await {
        Err(err) => err,
        Ok(answer) => panic!("expected an error, got {answer:?}"),
    }
}

#[tokio::test]
async fn failures_are_typed() {
    let content = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n";
    assert!(
        matches!(failure("").await, Error::EmptyResponse { endpoint } if endpoint == "/chat/completions")
    );
    assert!(matches!(failure(content).await.root(), Error::Truncated));
    let err = failure(&format!(
        "{content}event: error\ndata: {{\"error\":{{\"message\":\"overloaded\"}}}}\n\n"
    ))
    .await;
    assert_eq!(err.partial_answer(), Some("Hi"));
    assert!(matches!(err.root(), Error::Server { message } if message == "overloaded"));
    let err = failure("data: {\"error\":{\"message\":\"kv cache full\",\"code\":500}}\n\n").await;
    assert!(matches!(err, Error::Server { message } if message == "kv cache full"));
    assert!(matches!(
        failure("data: {not json\n\n").await,
        Error::Protocol { .. }
    ));
    // Finished by the model without the `[DONE]` marker: complete, not truncated.
    let finished = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"A\"},\"finish_reason\":\"stop\"}]}\n\n";
    assert!(
        collect_answer(stream_of(finished.as_bytes(), 3))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_stall_is_a_stream_timeout_naming_the_endpoint() {
    let body = futures::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from_static(
        b"data: {\"choices\":[]}\n\n",
    ))])
    .chain(futures::stream::pending());
    let stream = decode_sse_chat_stream(Box::pin(body), Duration::from_millis(50));
    let err = collect_answer(stream).await.err();
    assert!(matches!(
        err,
        Some(Error::Timeout { endpoint, phase: crate::error::TimeoutPhase::Stream, .. }) if endpoint == "/chat/completions"
    ));
}

#[test]
fn options_map_to_the_api_and_runner_options_stay_out() {
    let mut request = ChatRequest::new("m", vec![Message::system("S"), Message::user("U")]);
    request.options = RunnerOptions {
        num_ctx: Some(8192),
        num_gpu: Some(99),
        num_predict: Some(64),
        temperature: Some(0.5),
        top_p: Some(0.9),
        seed: Some(7),
        stop: Some(vec!["\n\n".into()]),
        top_k: Some(40),
        ..RunnerOptions::default()
    };
    request.keep_alive = Some(crate::backend::KeepAlive::Forever);
    let body = request_body(&request);
    assert_eq!(
        body,
        json!({
            "model": "m",
            "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}],
            "stream": true,
            "stream_options": {"include_usage": true},
            "temperature": 0.5,
            "top_p": 0.9,
            "seed": 7,
            "stop": ["\n\n"],
            "max_tokens": 64,
        })
    );
    assert_eq!(
        ignored_options(&request.options, &request),
        ["num_ctx", "num_gpu", "top_k", "keep_alive"]
    );
}

mod reports {
    use super::super::reports::root;
    use super::super::{parse_metrics, parse_props};

    /// vLLM v1's exposition (vllm/v1/metrics/loggers.py: labels `model_name`, `engine`).
    const VLLM: &str = "\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine=\"0\",model_name=\"m\"} 1.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"m\"} 0.123
vllm:kv_cache_usage_perc{engine=\"1\",model_name=\"m\"} 0.05
";

    #[test]
    fn vllm_kv_cache_gauge_is_read_highest_of_its_engines() {
        let kv = parse_metrics(VLLM).unwrap();
        assert_eq!(kv.metric, "vllm:kv_cache_usage_perc");
        assert!((kv.ratio - 0.123).abs() < 1e-9);
        assert_eq!(kv.series, 2);
    }

    #[test]
    fn older_names_and_llama_server_are_read_and_prefixes_are_not_confused() {
        let old = "vllm:gpu_cache_usage_perc{model_name=\"a}b\"} 0.5 1700000000\n\
                   vllm:gpu_cache_usage_perc_total 9\n";
        let kv = parse_metrics(old).unwrap();
        assert_eq!(
            (kv.metric.as_str(), kv.ratio, kv.series),
            ("vllm:gpu_cache_usage_perc", 0.5, 1)
        );
        let llama =
            "# TYPE llamacpp:kv_cache_usage_ratio gauge\nllamacpp:kv_cache_usage_ratio 0.25\n";
        assert_eq!(parse_metrics(llama).unwrap().ratio, 0.25);
    }

    #[test]
    fn metrics_without_the_gauge_or_garbage_give_nothing() {
        for text in [
            "",
            "llamacpp:prompt_tokens_total 10\nllamacpp:requests_processing 0\n",
            "vllm:kv_cache_usage_perc NaN\nvllm:kv_cache_usage_perc{x=\"1\" oops\n",
            "<html>not found</html>",
        ] {
            assert_eq!(parse_metrics(text), None, "{text}");
        }
    }

    #[test]
    fn props_are_read_tolerating_missing_fields() {
        // The shape of tools/server/README.md's `GET /props` example, trimmed.
        let body = br#"{"default_generation_settings":{"id":0,"n_ctx":8192,"params":{"top_k":40}},
            "total_slots":1,"model_path":"../models/x.gguf","chat_template":"...",
            "modalities":{"vision":false},"build_info":"b4567-abc1234","is_sleeping":false}"#;
        let props = parse_props(body).unwrap();
        assert_eq!(props.n_ctx, Some(8192));
        assert_eq!(props.total_slots, Some(1));
        assert_eq!(props.model_path.as_deref(), Some("../models/x.gguf"));
        assert_eq!(props.build_info.as_deref(), Some("b4567-abc1234"));
        let partial = parse_props(br#"{"total_slots":4}"#).unwrap();
        assert_eq!((partial.n_ctx, partial.total_slots), (None, Some(4)));
        assert_eq!(parse_props(br#"{"detail":"Not Found"}"#), None);
        assert_eq!(parse_props(b"not json"), None);
    }

    #[test]
    fn root_is_the_base_without_v1() {
        assert_eq!(root("http://h:8000/v1"), "http://h:8000");
        assert_eq!(root("http://h:8000/v1/"), "http://h:8000");
        assert_eq!(root("https://gw/openai/v1"), "https://gw/openai");
        assert_eq!(root("http://h:8000/"), "http://h:8000");
    }
}
