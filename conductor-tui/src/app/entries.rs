//! The entries of the conversation view: messages and notices, each with its render cache.

use conductor_core::Role;

use super::Notice;
use crate::markdown::RenderCache;

/// Where a message stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageState {
    /// A question on its way; not yet accepted.
    Pending,
    /// A question accepted into the conversation.
    Sent,
    /// The answer, still arriving.
    Streaming,
    /// A complete answer.
    Complete,
    /// An answer stopped with Esc; what arrived is kept.
    Stopped,
    /// An answer that broke off (the reason); what arrived is kept.
    Interrupted(String),
    /// A question that never reached the conversation (the reason).
    NotSent(String),
}

/// A user or assistant message as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatEntry {
    /// Who wrote it.
    pub role: Role,
    /// Who answered (the personality's name), for assistant messages.
    pub author: String,
    /// The model that wrote an answer, when known (answers saved before it was recorded).
    pub model: Option<String>,
    /// The text.
    pub content: String,
    /// The model's thinking, if it thought aloud (shown, not saved).
    pub thinking: String,
    /// Where it stands.
    pub state: MessageState,
}

/// What an entry of the conversation view is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A message of the conversation.
    Message(ChatEntry),
    /// A notice.
    Notice(Notice),
}

/// One entry of the conversation view, with its render cache.
#[derive(Debug, Clone)]
pub struct Entry {
    kind: EntryKind,
    version: u64,
    /// Wrapped lines, per width and version (see [`crate::markdown`]).
    pub cache: RenderCache,
}

impl Entry {
    /// A new entry.
    #[must_use]
    pub fn new(kind: EntryKind) -> Self {
        Self {
            kind,
            version: 0,
            cache: RenderCache::default(),
        }
    }

    /// What it is.
    #[must_use]
    pub fn kind(&self) -> &EntryKind {
        &self.kind
    }

    /// Changes it (and so invalidates its cached lines).
    pub fn kind_mut(&mut self) -> &mut EntryKind {
        self.version += 1;
        &mut self.kind
    }

    /// Bumped on every change.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The message, if this is one.
    #[must_use]
    pub fn message(&self) -> Option<&ChatEntry> {
        match &self.kind {
            EntryKind::Message(m) => Some(m),
            EntryKind::Notice(_) => None,
        }
    }

    pub(super) fn message_mut(&mut self) -> Option<&mut ChatEntry> {
        match self.kind_mut() {
            EntryKind::Message(m) => Some(m),
            EntryKind::Notice(_) => None,
        }
    }
}
