//! A conversation: its history, personality and model, and what each turn sends.

use std::sync::Arc;

use super::{Conductor, Turn};
use crate::backend::{Answer, Message, Role, collect_answer};
use crate::compose::system_message;
use crate::error::Result;
use crate::personality::Personality;

/// A conversation: keeps the history and sends it, after the personality, on every turn.
///
/// The system message is composed once and reused byte for byte on every turn (so Ollama's
/// prompt cache reuses it); it changes only when the personality or extra system text changes,
/// and then from the next turn on, keeping the conversation.
#[derive(Debug, Clone)]
pub struct Chat {
    pub(super) conductor: Conductor,
    /// `None` when the personality is switched off (`--no-personality`).
    pub(super) personality: Option<Arc<Personality>>,
    pub(super) model: String,
    pub(super) system: Option<String>,
    pub(super) system_message: Option<Message>,
    pub(super) history: Vec<Message>,
    /// The pool host of this conversation, when the backend is a pool.
    pub(super) binding: super::pooled::Binding,
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
    /// As [`Chat::send`]; a failure mid-answer is [`Error::Incomplete`](crate::Error::Incomplete) with the partial text
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

    /// Checks, under the policy, that the current model is on the GPU, with the options its
    /// requests will send (it loads the model). A frontend can call it when a conversation
    /// starts, to show the diagnosis before the first question. `None` without a guard.
    ///
    /// # Errors
    /// [`Error::NotResident`](crate::Error::NotResident) under `enforce`; backend errors.
    pub async fn admit(&self) -> Result<Option<crate::gpu::Admission>> {
        let Some(guard) = self.conductor.guard() else {
            return Ok(None);
        };
        // The system message counts: a loaded context too small for it is not adopted.
        let messages = self.system_message.iter().cloned().collect();
        let request = self.conductor.request(&self.model, messages);
        if let Some(pool) = self.conductor.backend().pool() {
            return self.admit_pooled(pool, &request).await;
        }
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

    /// Switches model from the next turn on; the conversation is kept. On a pool, the next
    /// turn is placed anew (the new model may be resident on another host).
    pub fn set_model(&mut self, model: impl Into<String>) {
        self.model = model.into();
        self.binding.clear();
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
pub(super) fn compose_system(
    personality: Option<&Personality>,
    extra: Option<&str>,
) -> Option<Message> {
    match (personality, extra.map(str::trim).filter(|e| !e.is_empty())) {
        (Some(personality), extra) => Some(system_message(personality, extra)),
        (None, Some(extra)) => Some(Message::system(extra.replace("\r\n", "\n"))),
        (None, None) => None,
    }
}
