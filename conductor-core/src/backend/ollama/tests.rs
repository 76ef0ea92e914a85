use std::fmt::Write as _;
use std::sync::Mutex;

use std::time::Duration;

use super::*;

/// Records every span and event field, at every level, as text.
#[derive(Default)]
struct Recorder(Arc<Mutex<String>>);

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        let _ = writeln!(self.0, "{}={value:?}", field.name());
    }
}

impl tracing::Subscriber for Recorder {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut text = self.0.lock().unwrap();
        span.record(&mut Fields(&mut text));
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut text = self.0.lock().unwrap();
        values.record(&mut Fields(&mut text));
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut text = self.0.lock().unwrap();
        event.record(&mut Fields(&mut text));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test]
async fn no_log_line_holds_the_password_of_the_address() {
    let recorded = Arc::new(Mutex::new(String::new()));
    let _guard = tracing::subscriber::set_default(Recorder(Arc::clone(&recorded)));
    let ollama = conductor_tests::StandIn::start().await;
    ollama.push_reply(conductor_tests::Reply::status(503, "busy"));
    let host = ollama.host().replace("http://", "http://user:s3cret@");
    let backend = OllamaBackend::builder(host.parse().unwrap())
        .retry(RetryPolicy {
            max_retries: 1,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(1),
        })
        .build()
        .unwrap();
    backend.version().await.unwrap();
    let request = super::super::ChatRequest {
        model: "llama3.2:3b".into(),
        messages: vec![super::super::Message::user("hi")],
        options: super::super::RunnerOptions::default(),
        keep_alive: None,
        think: None,
    };
    // A retried 503 logs a warning; the answer logs its head.
    let stream = backend.chat(request).await.unwrap();
    super::super::collect_answer(stream).await.unwrap();
    let text = recorded.lock().unwrap().clone();
    assert!(text.contains("retrying"), "the logs were recorded: {text}");
    assert!(!text.contains("s3cret"), "{text}");
}
