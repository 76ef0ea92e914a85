//! The facade a library user holds: [`Conductor`] for one-shot questions, [`Chat`] for
//! conversations, and the conversation layer's [`ChatEvent`].

mod chat;
mod event;
mod pooled;
mod send;
mod turn;

use std::sync::Arc;

use crate::backend::{
    Answer, Backend, ChatRequest, KeepAlive, Message, RunnerOptions, collect_answer,
};
use crate::error::Result;
use crate::gpu::ResidencyGuard;
use crate::personality::{Personality, PersonalityCatalog};

use chat::compose_system;

pub use chat::Chat;
pub use event::{AnswerStream, ChatEvent};
pub use turn::Turn;

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
    /// As [`Conductor::ask`]; a failure mid-answer is [`Error::Incomplete`](crate::Error::Incomplete) with the partial text.
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
            binding: pooled::Binding::default(),
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
