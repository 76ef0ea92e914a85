//! The conversation as a session: resumed, continued as a copy, snapshotted for saving.

use conductor_core::text::one_line;
use conductor_core::{Message, Role};

use super::{Action, App, ChatEntry, Entry, EntryKind, MessageState, NoticeLevel};
use crate::session::{Session, SetAside};

impl App {
    /// Continues a saved conversation: shows it and hands it to the worker.
    pub fn resume(&mut self, session: Session) {
        self.entries.clear();
        let author = session.personality.clone();
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
                author: author.clone(),
                content: message.content.clone(),
                thinking: String::new(),
                state,
            })));
        }
        self.actions.push(Action::Restore {
            history: session.messages.clone(),
            personality: session.personality.clone(),
            system: session.system.clone(),
        });
        self.notice(
            NoticeLevel::Info,
            format!(
                "Resumed the conversation of {} ({} messages)",
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

    /// The conversation as the chat holds it: what a saved session contains.
    #[must_use]
    pub fn conversation(&self) -> Vec<Message> {
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
                Some(Message {
                    role: m.role,
                    content: m.content.clone(),
                    incomplete,
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
            messages: self.conversation(),
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
