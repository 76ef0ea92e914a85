//! `conductor ask`'s conversations: every question and answer is saved as a `cli` session
//! (unless `--no-save`), so that `ask -c` continues the last one and `ask --session ID|NAME`
//! any one, a chat's too.
//!
//! The cost for a plain `ask` is one small atomic write after the answer; nothing is read
//! before it. A continued conversation is locked for as long as the command runs (a chat
//! window cannot write over it, nor a second `ask -c`), and its earlier messages are sent after
//! the personality's system message, which stays first and byte-identical. An answer cut short
//! (Ctrl-C, a dropped stream) is saved marked incomplete.

use std::borrow::Cow;
use std::time::Duration;

use conductor_core::config::ConfigSources;
use conductor_core::session::{
    Listed, Origin, Session, SessionError, SessionLock, SessionStore, looks_like_id, validate_name,
};
use conductor_core::{Chat, Message, Role};

use crate::cli::AskArgs;
use crate::exit::Failure;
use crate::output;

/// What joins an unanswered question to the next (as [`Session::history`] does).
const JOIN: &str = "\n\n";

/// How long `ask -c` waits for a conversation's lock: long enough for another `ask` that is
/// saving to finish, short enough not to hang on a chat window that has it open.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// The session an `ask` goes on in, and where it is saved.
pub struct Conversation {
    /// `None` when nothing is saved (`--no-save`, or no data directory).
    store: Option<SessionStore>,
    session: Session,
    /// True when earlier messages are continued.
    continued: bool,
    /// True when the continued conversation had no personality and `-p` names none.
    personality_off: bool,
    /// True once the session's file exists (a new one is created without replacing any).
    created: bool,
    /// True when messages were recorded and not yet written.
    unsaved: bool,
    /// The questions a continued conversation left unanswered at its end, joined: sent again
    /// before this run's question ([`Conversation::question`]).
    pending: Option<String>,
    /// How many of the chat's history messages the session already holds.
    known: usize,
    _lock: Option<SessionLock>,
}

impl Conversation {
    /// Finds the conversation to continue (`-c`, `--session`), locked, or starts a new one.
    pub fn open(args: &AskArgs) -> Result<Self, Failure> {
        let wanted = args.continue_last || args.session.is_some();
        let store = match &args.sessions_dir {
            Some(dir) => Some(SessionStore::new(dir)),
            None => match SessionStore::default_location() {
                Ok(store) => Some(store),
                Err(err) if wanted => return Err(failure(err)),
                Err(err) => {
                    if !args.no_save {
                        output::warn(&format!("this conversation will not be saved: {err}"));
                    }
                    None
                }
            },
        };
        let new = Session::new("", "").with_origin(Origin::Cli);
        let Some(store) = store else {
            return Ok(Self::fresh(None, new));
        };
        // Only the id is taken from this first look: the session is read again once it is
        // locked, so that a turn another process saved meanwhile is continued, not overwritten.
        let found = if args.continue_last {
            let latest = store.latest_of(Origin::Cli).map_err(failure)?;
            if latest.is_none() {
                output::warn("no earlier `conductor ask` conversation: starting a new one");
            }
            latest.map(|s| s.id)
        } else if let Some(query) = &args.session {
            match store.resolve(query) {
                Ok(Listed::Session(summary)) => Some(summary.id),
                Ok(Listed::Damaged(damaged)) => {
                    return Err(Failure::other(format!(
                        "session {} cannot be read ({}); it is at {}",
                        damaged.id,
                        conductor_core::text::one_line(&damaged.reason),
                        damaged.path.display()
                    )));
                }
                Err(SessionError::NotFound(_)) if looks_like_id(query) => {
                    // A mistyped id, not a new name.
                    return Err(failure(SessionError::NotFound(query.clone())));
                }
                Err(SessionError::NotFound(_)) => {
                    validate_name(query).map_err(failure)?;
                    return Ok(Self::fresh(
                        (!args.no_save).then_some(store),
                        Session {
                            name: Some(query.clone()),
                            ..new
                        },
                    ));
                }
                Err(err) => return Err(failure(err)),
            }
        } else {
            None
        };
        let Some(id) = found else {
            return Ok(Self::fresh((!args.no_save).then_some(store), new));
        };
        // Read-only when nothing is saved; otherwise no one else may write it meanwhile. A
        // holder that is only saving (another `ask` finishing) is waited for, briefly.
        let lock = if args.no_save {
            None
        } else {
            Some(
                store
                    .lock_within(&id, LOCK_WAIT)
                    .map_err(|e| failure(e.into()))?,
            )
        };
        let session = store.load(&id).map_err(failure)?;
        Ok(Self {
            store: (!args.no_save).then_some(store),
            session,
            continued: true,
            personality_off: false,
            known: 0,
            created: true,
            unsaved: false,
            pending: None,
            _lock: lock,
        })
    }

    fn fresh(store: Option<SessionStore>, session: Session) -> Self {
        Self {
            store,
            session,
            continued: false,
            personality_off: false,
            known: 0,
            created: false,
            unsaved: false,
            pending: None,
            _lock: None,
        }
    }

    /// A continued conversation keeps its model, personality and system text unless the
    /// command line names others; one sent without a personality stays without (see
    /// [`Conversation::restore`]).
    pub fn apply(&mut self, sources: &mut ConfigSources) {
        if !self.continued {
            return;
        }
        let flags = &mut sources.flags;
        if flags.model.is_none() && !self.session.model.is_empty() {
            flags.model = Some(self.session.model.clone());
        }
        if flags.personality.is_none() {
            if self.session.personality.is_empty() {
                self.personality_off = true;
            } else {
                flags.personality =
                    conductor_core::PersonalityName::new(&self.session.personality).ok();
            }
        }
        if flags.system.is_none() {
            flags.system.clone_from(&self.session.system);
        }
    }

    /// Gives the chat the earlier messages, sent after the personality; a conversation that
    /// had no personality (`--no-personality`) goes on without one, so that its system message
    /// stays what it was.
    pub fn restore(&mut self, chat: &mut Chat) {
        if !self.continued {
            return;
        }
        if self.personality_off {
            chat.disable_personality();
        }
        let mut history = self.session.history();
        // A question left unanswered at the end is asked again with this run's question.
        let unanswered_at_end = self
            .session
            .messages
            .last()
            .is_some_and(|m| m.role == Role::User && m.unanswered);
        if unanswered_at_end {
            self.pending = history.pop().map(|m| m.content);
        }
        chat.restore_history(history);
        // Unanswered questions are joined to the next: the history may be shorter.
        self.known = chat.history().len();
    }

    /// The question to send: `prompt`, after any question the conversation left unanswered
    /// (joined by a blank line, as [`Session::history`] joins them).
    pub fn question<'a>(&self, prompt: &'a str) -> Cow<'a, str> {
        match &self.pending {
            Some(pending) => Cow::Owned(format!("{pending}{JOIN}{prompt}")),
            None => Cow::Borrowed(prompt),
        }
    }

    /// Records what this run added to the chat's history (the question, and the answer,
    /// complete or marked incomplete; a question with no answer at all is marked unanswered),
    /// to be written by [`Conversation::save`].
    pub fn record(&mut self, chat: &Chat) {
        let Some(added) = chat.history().get(self.known..).filter(|a| !a.is_empty()) else {
            return;
        };
        let mut added = added.to_vec();
        self.known = chat.history().len();
        // The unanswered question sent again is saved once: this run's message is its own.
        if let Some(pending) = self.pending.take()
            && let Some(first) = added.first_mut()
            && first.role == Role::User
            && let Some(own) = first
                .content
                .strip_prefix(pending.as_str())
                .and_then(|rest| rest.strip_prefix(JOIN))
        {
            first.content = own.to_owned();
        }
        self.stage(&Asked::of(chat), &added);
    }

    /// Records `question`, which got no answer at all: the request failed or the run was
    /// stopped before the chat took it (the model still loading). It is saved marked
    /// unanswered, and sent again with the next question of `ask -c`.
    pub fn record_unanswered(&mut self, asked: &Asked, question: &str) {
        self.stage(asked, &[Message::user(question)]);
    }

    fn stage(&mut self, asked: &Asked, added: &[Message]) {
        if self.store.is_none() {
            return;
        }
        self.session.record(
            added,
            &asked.model,
            asked.personality.as_deref().unwrap_or(""),
        );
        self.session.system.clone_from(&asked.system);
        self.unsaved = true;
    }

    /// Writes what was recorded, if anything: one atomic write (a new conversation is created
    /// without replacing any file). A failure is a warning: the answer was given.
    pub fn save(&mut self) {
        let Some(store) = &self.store else {
            return;
        };
        if !self.unsaved {
            return;
        }
        let saved = if self.created {
            store.save(&self.session)
        } else {
            match store.create(&mut self.session) {
                Err(SessionError::NameTaken { name, id }) => {
                    // Another run took the name since it was looked up: keep the conversation,
                    // without the name.
                    output::warn(&format!(
                        "the name '{}' was taken meanwhile by session {id}; this conversation is \
                         saved without it",
                        conductor_core::text::one_line(&name)
                    ));
                    self.session.name = None;
                    store.create(&mut self.session)
                }
                other => other,
            }
        };
        match saved {
            Ok(_) => {
                self.created = true;
                self.unsaved = false;
            }
            Err(err) => output::warn(&format!("this conversation was not saved: {err}")),
        }
    }
}

/// Who a question was put to: the model, personality and extra system text it was sent with.
pub struct Asked {
    model: String,
    personality: Option<String>,
    system: Option<String>,
}

impl Asked {
    /// Who `chat` sends to now.
    pub fn of(chat: &Chat) -> Self {
        Self {
            model: chat.model().to_owned(),
            personality: chat.personality().map(|p| p.name().to_string()),
            system: chat.extra_system().map(str::to_owned),
        }
    }
}

/// A session error as the CLI reports it: a name or id that matches nothing (or several),
/// or a bad name, is a usage error (exit 2); the rest (a session open elsewhere, a damaged
/// file, the disk) exit 1.
pub fn failure(err: SessionError) -> Failure {
    let message = conductor_core::text::one_line(&err.to_string()).into_owned();
    match err {
        SessionError::NotFound(_) => Failure::UsageHint(
            message,
            "`conductor sessions list` shows ids and names".to_owned(),
        ),
        SessionError::Ambiguous { .. } => Failure::UsageHint(
            message,
            "give more of the id, or its name; `conductor sessions list` shows ids and names"
                .to_owned(),
        ),
        SessionError::InvalidName { .. } => Failure::UsageHint(
            message,
            "a name has 1 to 64 characters, no `/`, `\\` or control characters, no surrounding \
             spaces, and does not read as an id (only digits and dashes, or `YYYYMMDD-…`)"
                .to_owned(),
        ),
        SessionError::NameTaken { .. } => Failure::UsageHint(
            message,
            "choose another name; `conductor sessions list` shows the names in use".to_owned(),
        ),
        SessionError::InUse { .. } => Failure::other(format!(
            "{message}; wait for it to finish, or close that chat window (or continue there)"
        )),
        _ => Failure::other(message),
    }
}
