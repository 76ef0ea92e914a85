//! The conversation as a session: resumed, opened by name, named, continued as a copy,
//! snapshotted for saving (each answer with the model and personality that gave it).

use conductor_core::text::one_line;
use conductor_core::{Message, Role};

use super::{Action, App, ChatEntry, Entry, EntryKind, MessageState, NoticeLevel};
use crate::session::{Session, SessionError, SessionMessage, SetAside, validate_name};

impl App {
    /// Continues a saved conversation: shows it and hands it to the worker.
    pub fn resume(&mut self, session: Session) {
        self.entries.clear();
        for message in &session.messages {
            let state = match (message.role, message.incomplete) {
                (Role::Assistant, true) => MessageState::Stopped,
                (Role::Assistant, false) => MessageState::Complete,
                _ => MessageState::Sent,
            };
            if message.role == Role::User {
                self.history.push(&message.content);
            }
            self.entries.push(Entry::new(EntryKind::Message(ChatEntry {
                role: message.role,
                // Answers saved before personalities were recorded per answer show the last.
                author: message
                    .personality
                    .clone()
                    .unwrap_or_else(|| session.personality.clone()),
                model: message.model.clone(),
                content: message.content.clone(),
                thinking: String::new(),
                state,
            })));
        }
        self.actions.push(Action::Restore {
            history: session.history(),
            personality: session.personality.clone(),
            system: session.system.clone(),
        });
        let named = session
            .name
            .as_ref()
            .map(|n| format!(" '{}'", one_line(n)))
            .unwrap_or_default();
        self.notice(
            NoticeLevel::Info,
            format!(
                "Resumed the conversation{named} of {} ({} messages)",
                local_time(&session.created),
                session.messages.len()
            ),
            Vec::new(),
            None,
        );
        self.system.clone_from(&session.system);
        self.session = Session {
            messages: Vec::new(),
            ..session
        };
        self.scroll = None;
        self.retry = None;
    }

    /// `conductor chat --session NAME`: the session `found` under `query` (its id or name), or,
    /// when there is none, this new conversation takes `query` as its name.
    pub fn open_named(&mut self, query: &str, found: Result<Option<Session>, SessionError>) {
        match found {
            Ok(Some(session)) => self.resume(session),
            Ok(None) => match validate_name(query) {
                Ok(()) => {
                    self.session.name = Some(query.to_owned());
                    self.notice(
                        NoticeLevel::Info,
                        format!("New conversation '{}'", one_line(query)),
                        Vec::new(),
                        Some("it is saved under this name with its first question".into()),
                    );
                }
                Err(err) => self.notice(
                    NoticeLevel::Warning,
                    format!("Cannot name this conversation: {err}"),
                    Vec::new(),
                    Some("/rename NAME names it later".into()),
                ),
            },
            Err(err) => self.notice(
                NoticeLevel::Warning,
                format!(
                    "Cannot open the session '{}': starting a new conversation",
                    one_line(query)
                ),
                vec![one_line(&err.to_string()).into_owned()],
                Some("`conductor sessions list` shows the saved ones".into()),
            ),
        }
    }

    /// `/rename NAME`: names the conversation once the store says the name is free.
    pub(super) fn rename(&mut self, name: &str) {
        if name.is_empty() {
            let now = self.session.name.as_ref().map_or_else(
                || "This conversation has no name".to_owned(),
                |n| format!("This conversation is named '{}'", one_line(n)),
            );
            self.notice(
                NoticeLevel::Info,
                now,
                Vec::new(),
                Some("/rename NAME names it".into()),
            );
            return;
        }
        match validate_name(name) {
            Ok(()) => self.actions.push(Action::Rename {
                id: self.session.id.clone(),
                name: name.to_owned(),
            }),
            Err(err) => self.notice(NoticeLevel::Error, err.to_string(), Vec::new(), None),
        }
    }

    /// The store's answer to a rename: the name is taken on (and saved), or refused.
    pub(super) fn renamed(&mut self, id: &str, result: Result<String, String>) {
        if id != self.session.id {
            // The conversation changed (/clear, /sessions) while the store was asked.
            return;
        }
        match result {
            Ok(name) => {
                self.notice(
                    NoticeLevel::Info,
                    format!("This conversation is now named '{}'", one_line(&name)),
                    Vec::new(),
                    Some(format!(
                        "`conductor chat --session {}` opens it again",
                        one_line(&name)
                    )),
                );
                self.session.name = Some(name);
                self.save();
            }
            Err(err) => self.notice(
                NoticeLevel::Error,
                "Not renamed".to_owned(),
                vec![one_line(&err).into_owned()],
                None,
            ),
        }
    }

    /// The saver found this conversation's new name taken by another session first (another
    /// window or `ask --session` named theirs alike a moment earlier): the name goes, the
    /// conversation stays saved without it.
    pub(super) fn name_refused(&mut self, id: &str, name: &str, reason: &str) {
        if id != self.session.id || self.session.name.as_deref() != Some(name) {
            return;
        }
        self.session.name = None;
        self.notice(
            NoticeLevel::Warning,
            format!(
                "Another conversation took the name '{}' first: this one is saved without a name",
                one_line(name)
            ),
            vec![one_line(reason).into_owned()],
            Some("/rename NAME gives it another".into()),
        );
    }

    /// The session is open in another window (`holder`, its pid when known): from now on this
    /// window saves the conversation under a new id, so that both windows keep their turns. The
    /// copy is written with the next save: a window that only reads adds no file.
    pub fn continue_as_copy(&mut self, holder: Option<u32>) {
        let old = self.session.id.clone();
        self.session = self.session.fork();
        let who = holder.map_or_else(
            || "another window".to_owned(),
            |pid| format!("another window (pid {pid})"),
        );
        self.notice(
            NoticeLevel::Warning,
            format!("This conversation is open in {who}: continuing it here as a new conversation"),
            vec![format!(
                "Both are kept: the other window goes on saving {old}, this one saves {}.",
                self.session.id
            )],
            None,
        );
    }

    /// Damaged session files that `--resume` moved aside: said, not hidden.
    pub fn report_set_aside(&mut self, set_aside: &[SetAside]) {
        if set_aside.is_empty() {
            return;
        }
        let mut body = Vec::new();
        for file in set_aside {
            let line = match &file.to {
                Some(to) => format!("{} → {}", file.from.display(), to.display()),
                None => format!("{} (left in place)", file.from.display()),
            };
            body.push(one_line(&line).into_owned());
            body.push(format!("  {}", one_line(&file.reason)));
        }
        let (what, verb) = if set_aside.len() == 1 {
            ("A saved conversation is damaged", "it was moved aside")
        } else {
            ("Saved conversations are damaged", "they were moved aside")
        };
        self.notice(
            NoticeLevel::Warning,
            format!("{what} and cannot be resumed; {verb}, not deleted"),
            body,
            Some("the newest readable conversation is resumed instead, if there is one".into()),
        );
    }

    /// The conversation as the chat holds it: what the model is sent again.
    #[must_use]
    pub fn conversation(&self) -> Vec<Message> {
        self.session_messages()
            .into_iter()
            .map(|m| m.message)
            .collect()
    }

    /// The conversation as a session saves it: each answer with its model and personality.
    #[must_use]
    pub fn session_messages(&self) -> Vec<SessionMessage> {
        self.entries
            .iter()
            .filter_map(Entry::message)
            .filter_map(|m| {
                let incomplete = match &m.state {
                    MessageState::Sent | MessageState::Complete => false,
                    MessageState::Streaming
                    | MessageState::Stopped
                    | MessageState::Interrupted(_) => true,
                    MessageState::Pending | MessageState::NotSent(_) => return None,
                };
                if incomplete && m.content.is_empty() {
                    return None;
                }
                let message = Message {
                    role: m.role,
                    content: m.content.clone(),
                    incomplete,
                };
                Some(match &m.model {
                    Some(model) => SessionMessage::answer(message, model, &m.author),
                    None => message.into(),
                })
            })
            .collect()
    }

    /// The session to save now.
    #[must_use]
    pub fn session_snapshot(&self) -> Session {
        Session {
            updated: jiff::Timestamp::now().to_string(),
            model: self.info.model.clone(),
            personality: self.info.personality.clone(),
            system: self.system.clone(),
            messages: self.session_messages(),
            ..self.session.clone()
        }
    }
}

/// An RFC 3339 time as local `YYYY-MM-DD HH:MM` (as given when it does not parse).
fn local_time(rfc3339: &str) -> String {
    rfc3339.parse::<jiff::Timestamp>().map_or_else(
        |_| rfc3339.to_owned(),
        |t| {
            t.to_zoned(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%d %H:%M")
                .to_string()
        },
    )
}
