//! Conversations and their streams: system message, history, decoding, answers cut short.

use std::sync::Arc;
use std::time::Duration;

use conductor_core::backend::decode_chat_stream;
use conductor_core::{Backend, ChatEvent, Conductor, DoneReason, Error, collect_answer, compose};
use conductor_tests::{Chunking, Fault, Reply, StandIn};
use futures::StreamExt;

use super::common::*;

#[tokio::test]
async fn ask_sends_the_personality_as_the_first_system_message() {
    let ollama = StandIn::start().await;
    ollama.reply_with(&["Hi", " there", "!"]);
    let conductor = conductor(&ollama);
    let answer = conductor.ask_collect("Who are you?").await.unwrap();
    assert_eq!(answer.content, "Hi there!");
    let completion = answer.completion.unwrap();
    assert_eq!(completion.done_reason, Some(DoneReason::Stop));
    assert_eq!(completion.stats.eval_count, 3);

    let requests = ollama.requests_to("/api/chat");
    assert_eq!(requests.len(), 1);
    let body = requests[0].json.as_ref().unwrap();
    assert_eq!(body["model"], "llama3.2:3b");
    assert_eq!(body["stream"], true);
    let messages = requests[0].messages();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].0, "system");
    assert_eq!(messages[0].1, compose(conductor.personality(), None));
    assert!(messages[0].1.contains("Yollayah"));
    assert_eq!(messages[1], ("user".to_owned(), "Who are you?".to_owned()));
    assert!(ollama.requests_to("/api/create").is_empty());
}

#[tokio::test]
async fn chat_keeps_the_system_message_byte_identical_and_history_in_order() {
    let ollama = StandIn::start().await;
    let conductor = conductor(&ollama);
    let mut chat = conductor.chat();
    for (question, answer) in [("one?", "1"), ("two?", "2"), ("three?", "3")] {
        ollama.push_reply(Reply::tokens(&[answer]));
        let got = chat.send_collect(question).await.unwrap();
        assert_eq!(got.content, answer);
    }
    let requests = ollama.requests_to("/api/chat");
    assert_eq!(requests.len(), 3);
    let system: Vec<String> = requests.iter().map(|r| r.messages()[0].1.clone()).collect();
    assert!(system.iter().all(|s| s.as_bytes() == system[0].as_bytes()));
    // The raw JSON bytes of the system message are identical too (what the prompt cache sees).
    let raw_prefix = |r: &conductor_tests::RecordedRequest| {
        let body = String::from_utf8(r.body.clone()).unwrap();
        let start = body.find("\"messages\"").unwrap();
        let end = body.find("\"role\":\"user\"").unwrap();
        body[start..end].to_owned()
    };
    assert_eq!(raw_prefix(&requests[0]), raw_prefix(&requests[2]));
    let roles_and_text: Vec<(String, String)> =
        requests[2].messages().into_iter().skip(1).collect();
    let expected: Vec<(String, String)> = [
        ("user", "one?"),
        ("assistant", "1"),
        ("user", "two?"),
        ("assistant", "2"),
        ("user", "three?"),
    ]
    .iter()
    .map(|(r, t)| ((*r).to_owned(), (*t).to_owned()))
    .collect();
    assert_eq!(roles_and_text, expected);
    assert_eq!(chat.history().len(), 6);
    assert!(ollama.requests_to("/api/create").is_empty());
}

#[tokio::test]
async fn switching_personality_or_model_keeps_the_conversation() {
    let ollama = StandIn::start().await;
    let conductor = conductor(&ollama);
    let mut chat = conductor.chat();
    chat.send_collect("hello").await.unwrap();
    chat.switch_personality("forge").unwrap();
    chat.set_model("tiny");
    chat.send_collect("again").await.unwrap();
    let requests = ollama.requests_to("/api/chat");
    let second = requests[1].messages();
    assert!(second[0].1.contains("forge") || second[0].1 != requests[0].messages()[0].1);
    assert_eq!(second[0].1, chat.system_prompt());
    assert_eq!(second[1].1, "hello");
    assert_eq!(requests[1].json.as_ref().unwrap()["model"], "tiny");
    assert!(matches!(
        chat.switch_personality("../../etc/passwd"),
        Err(Error::Personality(_))
    ));
}

#[tokio::test]
async fn lines_split_anywhere_reassemble_exactly() {
    let ollama = StandIn::start().await;
    let tokens = [
        "Grüße",
        " 🦀",
        " naïve",
        " 日本語",
        "\n",
        "\"quoted\"",
        " done",
    ];
    let expected: String = tokens.concat();
    let conductor = conductor(&ollama);
    for chunking in [
        Chunking::SplitEvery(1),
        Chunking::SplitEvery(2),
        Chunking::SplitEvery(3),
        Chunking::SplitEvery(7),
        Chunking::SplitEvery(64),
        Chunking::Packed(3),
        Chunking::Whole,
    ] {
        ollama.push_reply(Reply::tokens(&tokens).chunking(chunking));
        let answer = conductor.ask_collect("utf-8 please").await.unwrap();
        assert_eq!(answer.content, expected, "{chunking:?}");
        assert!(answer.completion.is_some());
    }
}

#[tokio::test]
async fn recorded_h100_stream_decodes_at_every_split() {
    let raw = include_bytes!("../../fixtures/h100/a02.chat_turn1.response.ndjson");
    let text = String::from_utf8_lossy(raw);
    let expected: String = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["message"]["content"].as_str().map(str::to_owned))
        .collect();
    for split in [1, 2, 5, 13, 100, 4096] {
        let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = raw
            .chunks(split)
            .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
            .collect();
        let stream = decode_chat_stream(futures::stream::iter(chunks), Duration::from_secs(5));
        let answer = collect_answer(stream).await.unwrap();
        assert_eq!(answer.content, expected);
        let completion = answer.completion.unwrap();
        assert_eq!(completion.done_reason, Some(DoneReason::Length));
        assert_eq!(completion.stats.eval_count, 48);
        assert_eq!(completion.stats.prompt_eval_count, 515);
    }
}

#[tokio::test]
async fn thinking_arrives_as_its_own_events() {
    let ollama = StandIn::start().await;
    ollama.push_reply(Reply::tokens(&["42"]).thinking(&["Let me", " think"]));
    let conductor = conductor(&ollama);
    let answer = conductor.ask_collect("meaning?").await.unwrap();
    assert_eq!(answer.thinking, "Let me think");
    assert_eq!(answer.content, "42");
}

#[tokio::test]
async fn an_error_line_inside_a_200_stream_is_a_typed_error_and_keeps_the_partial_answer() {
    let ollama = StandIn::start().await;
    ollama.push_reply(
        Reply::tokens(&["Half", " an", " answer"]).fault(Fault::ErrorLine {
            after: 2,
            message: "an error was encountered while running the model: unexpected EOF".into(),
        }),
    );
    let conductor = conductor(&ollama);
    let mut chat = conductor.chat();
    let err = chat.send_collect("go").await.unwrap_err();
    assert_eq!(err.partial_answer(), Some("Half an"));
    match err.root() {
        Error::Server { message } => assert!(message.contains("while running the model")),
        other => panic!("{other:?}"),
    }
    let last = chat.history().last().unwrap();
    assert_eq!(last.content, "Half an");
    assert!(last.incomplete);
}

#[tokio::test]
async fn a_dropped_stream_keeps_the_partial_answer_marked_incomplete() {
    let ollama = StandIn::start().await;
    ollama.push_reply(Reply::tokens(&["kept", " words", " lost"]).fault(Fault::Drop { after: 2 }));
    let conductor = conductor(&ollama);
    let err = conductor.ask_collect("go").await.unwrap_err();
    assert_eq!(err.partial_answer(), Some("kept words"));
    assert!(
        matches!(err.root(), Error::Truncated | Error::ConnectionLost { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_malformed_line_is_a_protocol_error_not_a_silent_skip() {
    let ollama = StandIn::start().await;
    ollama.push_reply(Reply::tokens(&["a", "b"]).fault(Fault::Malformed {
        after: 1,
        line: "{\"model\":\"x\", this is not json".into(),
    }));
    let err = conductor(&ollama).ask_collect("go").await.unwrap_err();
    assert_eq!(err.partial_answer(), Some("a"));
    match err.root() {
        Error::Protocol { line, .. } => assert!(line.contains("this is not json")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_stalled_stream_times_out_but_a_slow_load_does_not() {
    let ollama = StandIn::start().await;
    let mut settings = settings(&ollama);
    settings.timeouts.idle = Duration::from_millis(200);
    settings.timeouts.load = Duration::from_secs(10);
    let conductor = Conductor::from_settings(&settings).unwrap();

    ollama
        .push_reply(Reply::tokens(&["slow", " load"]).first_byte_delay(Duration::from_millis(600)));
    assert_eq!(
        conductor.ask_collect("x").await.unwrap().content,
        "slow load"
    );

    ollama.push_reply(Reply::tokens(&["a", "b"]).fault(Fault::Stall {
        after: 1,
        stall: Duration::from_secs(5),
    }));
    let err = conductor.ask_collect("x").await.unwrap_err();
    assert_eq!(err.partial_answer(), Some("a"));
    assert!(matches!(err.root(), Error::Timeout { .. }), "{err:?}");
}

#[tokio::test]
async fn dropping_the_stream_aborts_the_request() {
    let ollama = StandIn::start().await;
    ollama.push_reply(
        Reply::tokens(&["one", "two", "three", "four"]).chunk_delay(Duration::from_millis(300)),
    );
    let conductor = conductor(&ollama);
    let mut stream = conductor.ask("x").await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first, ChatEvent::Content("one".into()));
    drop(stream);
    assert!(ollama.wait_for_aborts(1, Duration::from_secs(3)).await);
}

#[tokio::test]
async fn a_dropped_turn_keeps_the_partial_answer_in_history() {
    let ollama = StandIn::start().await;
    ollama.push_reply(
        Reply::tokens(&["one", "two", "three"]).chunk_delay(Duration::from_millis(200)),
    );
    let conductor = conductor(&ollama);
    let mut chat = conductor.chat();
    {
        let mut turn = chat.send("count").await.unwrap();
        let _ = turn.next().await;
    }
    assert_eq!(chat.history().len(), 2);
    assert_eq!(chat.history()[1].content, "one");
    assert!(chat.history()[1].incomplete);
}

/// A backend whose answers stop without their final event.
#[derive(Debug)]
struct EndsEarly;

#[async_trait::async_trait]
impl Backend for EndsEarly {
    async fn chat(
        &self,
        _: conductor_core::ChatRequest,
    ) -> conductor_core::Result<conductor_core::ChatStream> {
        Ok(Box::pin(futures::stream::iter([Ok(
            conductor_core::StreamEvent::Content("half".into()),
        )])))
    }
    fn endpoint(&self) -> String {
        "fake".into()
    }
    fn is_local(&self) -> bool {
        false
    }
}

#[tokio::test]
async fn a_turn_that_ends_without_its_final_event_says_so() {
    let conductor = Conductor::new(
        Arc::new(EndsEarly),
        conductor_core::PersonalityCatalog::builtin()
            .load("yollayah")
            .unwrap(),
        conductor_core::RequestDefaults::for_model("m"),
    );
    let mut chat = conductor.chat();
    let events: Vec<_> = chat.send("x").await.unwrap().collect().await;
    assert!(
        matches!(events.last(), Some(Err(Error::Truncated))),
        "{events:?}"
    );
    assert_eq!(chat.history()[1].content, "half");
    assert!(chat.history()[1].incomplete);
}
