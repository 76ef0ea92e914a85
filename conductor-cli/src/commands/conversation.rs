//! `conductor ask`'s conversations: every question and answer is saved as a `cli` session
//! (unless `--no-save`), so that `ask -c` continues the last one and `ask --session ID|NAME`
//! any one, a chat's too.
//!
//! The cost for a plain `ask` is one small atomic write after the answer; nothing is read
//! before it. A continued conversation is locked for as long as the command runs (a chat
//! window cannot write over it, nor a second `ask -c`), and its earlier messages are sent after
//! the personality's system message, which stays first and byte-identical. An answer cut short
//! (Ctrl-C, a dropped stream) is saved marked incomplete.

use conductor_core::Chat;
use conductor_core::config::ConfigSources;
use conductor_core::session::{
    Listed, Origin, Session, SessionError, SessionLock, SessionStore, validate_name,
};

use crate::cli::AskArgs;
use crate::exit::Failure;
use crate::output;

/// The session an `ask` goes on in, and where it is saved.
pub struct Conversation {
    /// `None` when nothing is saved (`--no-save`, or no data directory).
    store: Option<SessionStore>,
    session: Session,
    /// True when earlier messages are continued.
    continued: bool,
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
        let found = if args.continue_last {
            let latest = store.latest_of(Origin::Cli).map_err(failure)?;
            if latest.is_none() {
                output::warn("no earlier `conductor ask` conversation: starting a new one");
            }
            latest
        } else if let Some(query) = &args.session {
            match store.resolve(query) {
                Ok(Listed::Session(summary)) => Some(store.load(&summary.id).map_err(failure)?),
                Ok(Listed::Damaged(damaged)) => {
                    return Err(Failure::other(format!(
                        "session {} cannot be read ({}); it is at {}",
                        damaged.id,
                        conductor_core::text::one_line(&damaged.reason),
                        damaged.path.display()
                    )));
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
        let Some(session) = found else {
            return Ok(Self::fresh((!args.no_save).then_some(store), new));
        };
        // Read-only when nothing is saved; otherwise no one else may write it meanwhile.
        let lock = if args.no_save {
            None
        } else {
            Some(store.lock(&session.id).map_err(|e| failure(e.into()))?)
        };
        Ok(Self {
            known: session.messages.len(),
            store: (!args.no_save).then_some(store),
            session,
            continued: true,
            _lock: lock,
        })
    }

    fn fresh(store: Option<SessionStore>, session: Session) -> Self {
        Self {
            store,
            session,
            continued: false,
            known: 0,
            _lock: None,
        }
    }

    /// A continued conversation keeps its model, personality and system text unless the
    /// command line names others.
    pub fn apply(&self, sources: &mut ConfigSources) {
        if !self.continued {
            return;
        }
        let flags = &mut sources.flags;
        if flags.model.is_none() && !self.session.model.is_empty() {
            flags.model = Some(self.session.model.clone());
        }
        if flags.personality.is_none() {
            flags.personality =
                conductor_core::PersonalityName::new(&self.session.personality).ok();
        }
        if flags.system.is_none() {
            flags.system.clone_from(&self.session.system);
        }
    }

    /// Gives the chat the earlier messages, sent after the personality.
    pub fn restore(&self, chat: &mut Chat) {
        if self.continued {
            chat.restore_history(self.session.history());
        }
    }

    /// Saves what this run added to the chat's history (the question, and the answer,
    /// complete or marked incomplete): one atomic write. A failure is a warning: the answer
    /// was given.
    pub fn record(&mut self, chat: &Chat) {
        let Some(store) = &self.store else {
            return;
        };
        let Some(added) = chat.history().get(self.known..).filter(|a| !a.is_empty()) else {
            return;
        };
        let personality = chat.personality().map(|p| p.name().to_string());
        self.session
            .record(added, chat.model(), personality.as_deref().unwrap_or(""));
        self.session.system = chat.extra_system().map(str::to_owned);
        self.known = chat.history().len();
        if let Err(err) = store.save(&self.session) {
            output::warn(&format!("this conversation was not saved: {err}"));
        }
    }
}

/// A session error as the CLI reports it: a name or id that matches nothing (or several),
/// or a bad name, is a usage error (exit 2); the rest (a session open elsewhere, a damaged
/// file, the disk) exit 1.
pub fn failure(err: SessionError) -> Failure {
    let message = conductor_core::text::one_line(&err.to_string()).into_owned();
    match err {
        SessionError::NotFound(_) => Failure::Usage(format!(
            "{message} (`conductor sessions list` shows ids and names)"
        )),
        SessionError::Ambiguous { .. } => {
            Failure::Usage(format!("{message}; give more of the id, or its name"))
        }
        SessionError::InvalidName { .. } | SessionError::NameTaken { .. } => {
            Failure::Usage(message)
        }
        SessionError::InUse { .. } => Failure::other(format!(
            "{message}; close it there first (or continue it there)"
        )),
        _ => Failure::other(message),
    }
}
