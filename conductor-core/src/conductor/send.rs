//! One request's way out: admitted by the residency guard, sent to the backend, its first event
//! held until residency is sure, its figures logged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use tracing::{Instrument, Span, debug, info, info_span, trace};

use super::{AnswerStream, Chat, ChatEvent};
use crate::backend::{Backend, ChatRequest, ChatStream, Message, StreamEvent};
use crate::error::{Error, Result};
use crate::gpu::{Admission, GpuPolicy, RECHECK_AFTER, ResidencyGuard};

/// A load this long means Ollama (re)loaded the model for the request (a warm request shows
/// 66-98 ms on an H100): residency may have changed, so the next request checks again.
const RELOAD_SIGN: Duration = Duration::from_millis(500);

impl Chat {
    pub(super) async fn start(&self, messages: Vec<Message>) -> Result<AnswerStream> {
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
        let backend = Arc::clone(self.conductor.backend());
        if let Some(pool) = backend.pool() {
            return self.start_pooled(pool, request, &span, started).await;
        }
        let guard = self.conductor.guard().cloned();
        self.start_on(backend, guard, request, span, started).await
    }

    /// Admits `request` with `guard` (if any), sends it to `backend` and streams the answer,
    /// the guard's notices first.
    pub(super) async fn start_on(
        &self,
        backend: Arc<dyn Backend>,
        guard: Option<Arc<ResidencyGuard>>,
        request: ChatRequest,
        span: Span,
        started: Instant,
    ) -> Result<AnswerStream> {
        let Some(guard) = guard else {
            let stream = open(&backend, request, &span).await?;
            return Ok(log_completion(stream, span, started)
                .map(|event| event.map(ChatEvent::from))
                .boxed());
        };
        let admission = guard
            .admit_request(&request)
            .instrument(span.clone())
            .await?;
        let (stream, admission) = self
            .open_guarded(&backend, &guard, request, admission, &span)
            .await?;
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

    /// Sends an admitted request and holds its first event until residency is sure: a load that
    /// failed for want of GPU memory, or a first byte slow enough to be a reload, is judged
    /// under the policy before anything reaches the user. Under `fix`, the request is sent once
    /// more with the fixed options.
    pub(super) async fn open_guarded(
        &self,
        backend: &Arc<dyn Backend>,
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
            let mut stream = match open(backend, request.clone(), span).await {
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
        let stream = open(backend, request, span).await?;
        Ok((stream, admission))
    }
}

/// Sends the request to `backend`.
async fn open(backend: &Arc<dyn Backend>, request: ChatRequest, span: &Span) -> Result<ChatStream> {
    backend.chat(request).instrument(span.clone()).await
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
