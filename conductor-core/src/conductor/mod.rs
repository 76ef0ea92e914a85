//! The facade a library user holds: [`Conductor`] for one-shot questions, [`Chat`] for
//! conversations, and the conversation layer's [`ChatEvent`].

mod event;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use tracing::{Instrument, Span, debug, info, info_span, trace};

use crate::backend::{
    Answer, Backend, ChatRequest, ChatStream, KeepAlive, Message, Role, RunnerOptions, StreamEvent,
    collect_answer,
};
use crate::compose::system_message;
use crate::error::{Error, Result};
use crate::gpu::{Admission, GpuPolicy, RECHECK_AFTER, ResidencyGuard};
use crate::personality::{Personality, PersonalityCatalog};

pub use event::{AnswerStream, ChatEvent};

/// A load this long means Ollama (re)loaded the model for the request (a warm request shows
/// 66-98 ms on an H100): residency may have changed, so the next request checks again.
const RELOAD_SIGN: Duration = Duration::from_millis(500);

/// What every request carries besides its messages.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestDefaults {
    /// The model.
    pub model: String,
    /// Extra system text after the personality.
    pub system: Option<String>,
    /// Runner and sampling options.
    pub options: RunnerOptions,
    /// How long the model stays loaded.
    pub keep_alive: Option<KeepAlive>,
    /// Ask thinking models to think.
    pub think: Option<bool>,
}

impl RequestDefaults {
    /// Defaults for `model`: no extra system text, no options.
    #[must_use]
    pub fn for_model(model: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            system: None,
            options: RunnerOptions::default(),
            keep_alive: None,
            think: None,
        }
    }
}

/// A backend, a personality and request settings: everything needed to ask.
///
/// Cheap to clone (shared inside); use one per application and share it between tasks.
#[derive(Debug, Clone)]
pub struct Conductor {
    inner: Arc<Inner>,
}

#[derive(Debug, Clone)]
struct Inner {
    backend: Arc<dyn Backend>,
    catalog: PersonalityCatalog,
    personality: Arc<Personality>,
    defaults: RequestDefaults,
    guard: Option<Arc<ResidencyGuard>>,
}

impl Conductor {
    /// A conductor over `backend`, speaking as `personality`.
    #[must_use]
    pub fn new(
        backend: Arc<dyn Backend>,
        personality: Personality,
        defaults: RequestDefaults,
    ) -> Self {
        Self::with_catalog(
            backend,
            personality,
            defaults,
            PersonalityCatalog::builtin(),
        )
    }

    /// Like [`Conductor::new`], with the catalog used to switch personalities by name.
    #[must_use]
    pub fn with_catalog(
        backend: Arc<dyn Backend>,
        personality: Personality,
        defaults: RequestDefaults,
        catalog: PersonalityCatalog,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                backend,
                catalog,
                personality: Arc::new(personality),
                defaults,
                guard: None,
            }),
        }
    }

    /// Checks GPU residency with `guard` before generating (see [`ResidencyGuard`]).
    #[must_use]
    pub fn with_guard(self, guard: Arc<ResidencyGuard>) -> Self {
        let mut inner = (*self.inner).clone();
        inner.guard = Some(guard);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The residency guard, if any.
    #[must_use]
    pub fn guard(&self) -> Option<&Arc<ResidencyGuard>> {
        self.inner.guard.as_ref()
    }

    /// The backend, for model management and residency checks.
    #[must_use]
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.inner.backend
    }

    /// The personality new conversations start with.
    #[must_use]
    pub fn personality(&self) -> &Personality {
        &self.inner.personality
    }

    /// The personality catalog.
    #[must_use]
    pub fn catalog(&self) -> &PersonalityCatalog {
        &self.inner.catalog
    }

    /// The request defaults.
    #[must_use]
    pub fn defaults(&self) -> &RequestDefaults {
        &self.inner.defaults
    }

    /// Asks one question, without history, and streams the answer.
    ///
    /// The request is `[system: the composed personality, user: prompt]`.
    ///
    /// # Errors
    /// Errors before the first token (unreachable, model not found, busy); later errors are
    /// items of the stream.
    pub async fn ask(&self, prompt: &str) -> Result<AnswerStream> {
        let chat = self.chat();
        let messages = chat.messages_with(prompt);
        chat.start(messages).await
    }

    /// Asks one question and waits for the whole answer.
    ///
    /// # Errors
    /// As [`Conductor::ask`]; a failure mid-answer is [`Error::Incomplete`] with the partial text.
    pub async fn ask_collect(&self, prompt: &str) -> Result<Answer> {
        collect_answer(self.ask(prompt).await?).await
    }

    /// Starts a conversation with this conductor's personality and model.
    #[must_use]
    pub fn chat(&self) -> Chat {
        let personality = Some(Arc::clone(&self.inner.personality));
        let system = self.inner.defaults.system.clone();
        Chat {
            system_message: compose_system(personality.as_deref(), system.as_deref()),
            conductor: self.clone(),
            model: self.inner.defaults.model.clone(),
            personality,
            system,
            history: Vec::new(),
        }
    }

    fn request(&self, model: &str, messages: Vec<Message>) -> ChatRequest {
        let d = &self.inner.defaults;
        ChatRequest {
            model: model.to_owned(),
            messages,
            options: d.options.clone(),
            keep_alive: d.keep_alive,
            think: d.think,
        }
    }
}

/// A conversation: keeps the history and sends it, after the personality, on every turn.
///
/// The system message is composed once and reused byte for byte on every turn (so Ollama's
/// prompt cache reuses it); it changes only when the personality or extra system text changes,
/// and then from the next turn on, keeping the conversation.
#[derive(Debug, Clone)]
pub struct Chat {
    conductor: Conductor,
    /// `None` when the personality is switched off (`--no-personality`).
    personality: Option<Arc<Personality>>,
    model: String,
    system: Option<String>,
    system_message: Option<Message>,
    history: Vec<Message>,
}

impl Chat {
    /// Sends a user message and streams the answer. The user message joins the history as soon
    /// as the request is accepted; the answer joins it when the stream ends — complete, or
    /// marked [`Message::incomplete`] if it was cut short or the stream was dropped.
    ///
    /// # Errors
    /// Errors before the first token; the history is then unchanged.
    pub async fn send(&mut self, text: &str) -> Result<Turn<'_>> {
        let messages = self.messages_with(text);
        let stream = self.start(messages).await?;
        self.history.push(Message::user(text));
        Ok(Turn {
            history: &mut self.history,
            stream,
            answer: String::new(),
            committed: false,
            ended: false,
        })
    }

    /// Sends a user message and waits for the whole answer.
    ///
    /// # Errors
    /// As [`Chat::send`]; a failure mid-answer is [`Error::Incomplete`] with the partial text
    /// (which is also kept in the history).
    pub async fn send_collect(&mut self, text: &str) -> Result<Answer> {
        collect_answer(self.send(text).await?).await
    }

    /// The messages a request for `text` would carry: system first, then history, then `text`.
    #[must_use]
    pub fn messages_with(&self, text: &str) -> Vec<Message> {
        let mut messages = Vec::with_capacity(self.history.len() + 2);
        messages.extend(self.system_message.clone());
        messages.extend(self.history.iter().cloned());
        messages.push(Message::user(text));
        messages
    }

    async fn start(&self, messages: Vec<Message>) -> Result<AnswerStream> {
        let span = info_span!(
            "chat",
            model = %self.model,
            personality = self.personality.as_ref().map_or("none", |p| p.name().as_str()),
            messages = messages.len(),
            system_bytes = self.system_prompt().len(),
        );
        let request = self.conductor.request(&self.model, messages);
        // The user's words go to their own target, which a log filter names to record them
        // (`conductor_core::prompts=trace`); no general level includes them.
        trace!(target: "conductor_core::prompts", parent: &span, prompt = ?request.messages.last().map(|m| &m.content), "request");
        let started = Instant::now();
        let Some(guard) = self.conductor.guard().cloned() else {
            let stream = self.open(request, &span).await?;
            return Ok(log_completion(stream, span, started)
                .map(|event| event.map(ChatEvent::from))
                .boxed());
        };
        let admission = guard
            .admit_request(&request)
            .instrument(span.clone())
            .await?;
        let (stream, admission) = self.open_guarded(&guard, request, admission, &span).await?;
        debug!(parent: &span, head_ms = started.elapsed().as_millis() as u64, "stream opened");
        let mut notices = Vec::new();
        notices.extend(admission.fixed.map(|f| Ok(ChatEvent::Fixed(f))));
        notices.extend(admission.warning.map(|w| Ok(ChatEvent::Warning(w))));
        let model = self.model.clone();
        let stream = log_completion(stream, span, started).inspect(move |event| {
            if let Ok(StreamEvent::Done(done)) = event
                && done.stats.load_duration > RELOAD_SIGN
            {
                guard.invalidate(&model);
            }
        });
        let stream = stream.map(|event| event.map(ChatEvent::from));
        Ok(Box::pin(futures::stream::iter(notices).chain(stream)))
    }

    /// Sends the request.
    async fn open(&self, request: ChatRequest, span: &Span) -> Result<ChatStream> {
        let backend = Arc::clone(self.conductor.backend());
        async move { backend.chat(request).await }
            .instrument(span.clone())
            .await
    }

    /// Sends an admitted request and holds its first event until residency is sure: a load that
    /// failed for want of GPU memory, or a first byte slow enough to be a reload, is judged
    /// under the policy before anything reaches the user. Under `fix`, the request is sent once
    /// more with the fixed options.
    async fn open_guarded(
        &self,
        guard: &ResidencyGuard,
        request: ChatRequest,
        admission: Admission,
        span: &Span,
    ) -> Result<(ChatStream, Admission)> {
        let requested = request.options.clone();
        let mut admission = admission;
        let mut request = request;
        for attempt in 0..2 {
            request.options = admission.options.clone();
            let sent_at = Instant::now();
            let mut stream = match self.open(request.clone(), span).await {
                Ok(stream) => stream,
                Err(err) if err.is_gpu_memory_failure() && attempt == 0 => {
                    admission = guard
                        .fix_load_failure(
                            &request.model,
                            &requested,
                            &request.options,
                            request.keep_alive,
                            &err,
                        )
                        .instrument(span.clone())
                        .await?;
                    continue;
                }
                Err(err) if err.is_gpu_memory_failure() => {
                    let diagnosis = guard
                        .explain_load_failure(&request.model, &request.options, &err)
                        .await;
                    return Err(Error::NotResident(Box::new(diagnosis)));
                }
                Err(err) => return Err(err),
            };
            if guard.policy() == GpuPolicy::Off || admission.warning.is_some() {
                return Ok((stream, admission));
            }
            let first = stream.next().await;
            if sent_at.elapsed() < RECHECK_AFTER || first.is_none() {
                return Ok((prepend(first, stream), admission));
            }
            let Some(diagnosis) = guard
                .recheck(&request.model, &request.options)
                .instrument(span.clone())
                .await?
            else {
                return Ok((prepend(first, stream), admission));
            };
            match guard.policy() {
                GpuPolicy::Warn => {
                    admission.warning = Some(Arc::new(diagnosis));
                    return Ok((prepend(first, stream), admission));
                }
                GpuPolicy::Fix if attempt == 0 => {
                    // Stop this answer (the connection closes) and admit again: the load is
                    // now in /api/ps, so the guard diagnoses and fixes it.
                    drop(stream);
                    admission = guard
                        .admit_request(&ChatRequest {
                            options: requested.clone(),
                            ..request.clone()
                        })
                        .instrument(span.clone())
                        .await?;
                }
                _ => return Err(Error::NotResident(Box::new(diagnosis))),
            }
        }
        let stream = self.open(request, span).await?;
        Ok((stream, admission))
    }

    /// Checks, under the policy, that the current model is on the GPU, with the options its
    /// requests will send (it loads the model). A frontend can call it when a conversation
    /// starts, to show the diagnosis before the first question. `None` without a guard.
    ///
    /// # Errors
    /// [`Error::NotResident`] under `enforce`; backend errors.
    pub async fn admit(&self) -> Result<Option<crate::gpu::Admission>> {
        let Some(guard) = self.conductor.guard() else {
            return Ok(None);
        };
        // The system message counts: a loaded context too small for it is not adopted.
        let messages = self.system_message.iter().cloned().collect();
        let request = self.conductor.request(&self.model, messages);
        guard.admit_request(&request).await.map(Some)
    }

    /// The composed system prompt, exactly as sent (empty when there is none).
    #[must_use]
    pub fn system_prompt(&self) -> &str {
        self.system_message
            .as_ref()
            .map_or("", |m| m.content.as_str())
    }

    /// The conversation so far (user and assistant messages; the system message is not in it).
    #[must_use]
    pub fn history(&self) -> &[Message] {
        &self.history
    }

    /// Replaces the history, e.g. to resume a saved session. System messages are dropped: the
    /// personality provides the system message.
    pub fn restore_history(&mut self, history: Vec<Message>) {
        self.history = history
            .into_iter()
            .filter(|m| m.role != Role::System)
            .collect();
    }

    /// Forgets the conversation (the personality and model stay).
    pub fn clear(&mut self) {
        self.history.clear();
    }

    /// The current personality; `None` when switched off.
    #[must_use]
    pub fn personality(&self) -> Option<&Personality> {
        self.personality.as_deref()
    }

    /// Switches personality from the next turn on; the conversation is kept.
    pub fn set_personality(&mut self, personality: Personality) {
        self.personality = Some(Arc::new(personality));
        self.recompose();
    }

    /// Sends no personality from the next turn on: only the extra system text, if any, is
    /// sent as the system message (and the model's own Modelfile SYSTEM applies when none is).
    pub fn disable_personality(&mut self) {
        self.personality = None;
        self.recompose();
    }

    /// Switches to the personality called `name` in the conductor's catalog.
    ///
    /// # Errors
    /// When it does not exist or does not parse; the current personality then stays.
    pub fn switch_personality(&mut self, name: &str) -> Result<()> {
        let personality = self.conductor.catalog().load(name)?;
        self.set_personality(personality);
        Ok(())
    }

    /// The current model.
    #[must_use]
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Switches model from the next turn on; the conversation is kept.
    pub fn set_model(&mut self, model: impl Into<String>) {
        self.model = model.into();
    }

    /// The extra system text after the personality.
    #[must_use]
    pub fn extra_system(&self) -> Option<&str> {
        self.system.as_deref()
    }

    /// Sets or clears the extra system text, from the next turn on.
    pub fn set_extra_system(&mut self, system: Option<String>) {
        self.system = system.filter(|s| !s.trim().is_empty());
        self.recompose();
    }

    /// The conductor this chat uses.
    #[must_use]
    pub fn conductor(&self) -> &Conductor {
        &self.conductor
    }

    fn recompose(&mut self) {
        self.system_message = compose_system(self.personality.as_deref(), self.system.as_deref());
    }
}

/// The system message for a personality (if any) and extra text (if any).
fn compose_system(personality: Option<&Personality>, extra: Option<&str>) -> Option<Message> {
    match (personality, extra.map(str::trim).filter(|e| !e.is_empty())) {
        (Some(personality), extra) => Some(system_message(personality, extra)),
        (None, Some(extra)) => Some(Message::system(extra.replace("\r\n", "\n"))),
        (None, None) => None,
    }
}

/// One answer of a [`Chat`], streaming. Records the answer in the history when it ends, and
/// the partial answer (marked incomplete) if it fails or is dropped early.
#[must_use = "a turn does nothing unless polled"]
pub struct Turn<'a> {
    history: &'a mut Vec<Message>,
    stream: AnswerStream,
    answer: String,
    /// The answer is in the history (complete, or partial and marked).
    committed: bool,
    /// The stream has ended (or failed); nothing more is polled.
    ended: bool,
}

impl Turn<'_> {
    /// The answer received so far.
    #[must_use]
    pub fn answer_so_far(&self) -> &str {
        &self.answer
    }

    fn commit(&mut self, complete: bool) {
        if self.committed {
            return;
        }
        self.committed = true;
        if complete || !self.answer.is_empty() {
            let mut message = Message::assistant(std::mem::take(&mut self.answer));
            message.incomplete = !complete;
            self.history.push(message);
        }
    }
}

impl Stream for Turn<'_> {
    type Item = Result<ChatEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        // Polled on after `Done` until the body ends, so the connection returns to the pool.
        let polled = self.stream.poll_next_unpin(cx);
        match &polled {
            Poll::Ready(Some(Ok(ChatEvent::Content(text)))) => {
                let text = text.clone();
                self.answer.push_str(&text);
            }
            Poll::Ready(Some(Ok(ChatEvent::Done(_)))) => self.commit(true),
            Poll::Ready(Some(Err(_))) => {
                // Say how much of the answer arrived (it is kept in the history).
                let partial = self.answer.clone();
                self.commit(false);
                self.ended = true;
                if let Poll::Ready(Some(Err(err))) = polled {
                    return Poll::Ready(Some(Err(Error::incomplete(partial, err))));
                }
            }
            Poll::Ready(None) => {
                self.ended = true;
                if !self.committed {
                    // A backend whose stream stops without its final event: say so.
                    self.commit(false);
                    return Poll::Ready(Some(Err(crate::error::Error::Truncated)));
                }
            }
            _ => {}
        }
        polled
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.commit(false);
    }
}

/// `first` (an event already taken from `stream`) followed by the rest of `stream`.
fn prepend(first: Option<Result<StreamEvent>>, stream: ChatStream) -> ChatStream {
    Box::pin(futures::stream::iter(first).chain(stream))
}

/// Logs the request's figures when its final event passes (never the text).
fn log_completion(
    stream: ChatStream,
    span: Span,
    started: Instant,
) -> impl Stream<Item = Result<StreamEvent>> {
    let mut first_token: Option<u128> = None;
    stream.inspect(move |event| match event {
        Ok(StreamEvent::Content(_)) if first_token.is_none() => {
            first_token = Some(started.elapsed().as_millis());
        }
        Ok(StreamEvent::Done(completion)) => {
            let stats = &completion.stats;
            info!(
                parent: &span,
                done_reason = completion.done_reason.as_ref().map(|r| r.as_str()),
                ttft_ms = first_token.map(|t| t as u64),
                total_ms = started.elapsed().as_millis() as u64,
                load_ms = stats.load_duration.as_millis() as u64,
                prompt_tokens = stats.prompt_eval_count,
                prompt_eval_ms = stats.prompt_eval_duration.as_millis() as u64,
                eval_tokens = stats.eval_count,
                tokens_per_s = stats.tokens_per_second(),
                "answer complete"
            );
        }
        Err(err) => info!(parent: &span, error = %err, "answer failed"),
        _ => {}
    })
}
