//! What the user submits: a question to ask, or a slash command; `/help`'s lists.

use conductor_core::Role;

use super::{Action, App, ChatEntry, Entry, EntryKind, MessageState, NoticeLevel, Phase};
use crate::session::Session;

/// The commands, for `/help`.
pub const COMMANDS: &[(&str, &str)] = &[
    (
        "/personality [NAME]",
        "switch personality (no name: pick one)",
    ),
    (
        "/model [NAME]",
        "switch model (no name: pick a local one); a model the server lacks is not switched to",
    ),
    (
        "/pull NAME",
        "download a model through the server, then switch to it",
    ),
    (
        "/policy [NAME]",
        "show the GPU policy and the last check; enforce|warn|fix|off changes it",
    ),
    (
        "/copy [N]",
        "copy the last answer (N: its code block [N]) to the clipboard",
    ),
    (
        "/edit",
        "compose the message in $VISUAL/$EDITOR (also Ctrl+X Ctrl+E)",
    ),
    (
        "/system [TEXT]",
        "extra system text after the personality (none: clear it)",
    ),
    (
        "/clear",
        "start a new conversation (the old one stays saved)",
    ),
    ("/save", "save now and show where"),
    ("/sessions", "list saved conversations and resume one"),
    (
        "/rename NAME",
        "name this conversation (`chat --session NAME` opens it)",
    ),
    ("/retry", "send the last question again (also Alt+R)"),
    ("/help", "this help"),
    (
        "/quit",
        "leave (also Ctrl+D on an empty input, or Ctrl+C twice)",
    ),
];

/// The keys, for `/help`.
pub const KEYS: &[(&str, &str)] = &[
    ("Enter", "send"),
    ("Shift+Enter, Alt+Enter, Ctrl+J", "new line"),
    (
        "Up / Down",
        "move in the input; on its first/last line, recall earlier inputs",
    ),
    (
        "Esc",
        "stop the answer (the partial answer stays, marked stopped)",
    ),
    ("PageUp / PageDown, wheel", "scroll the conversation"),
    ("Ctrl+Home / Ctrl+End", "top / bottom of the conversation"),
    (
        "Ctrl+R",
        "search earlier inputs (again: older match; Enter: use it; Esc: cancel)",
    ),
    ("Alt+R", "retry the last question"),
    ("Ctrl+X Ctrl+E", "compose the message in your editor"),
    ("Ctrl+C", "stop the answer; clear the input; quit"),
];

impl App {
    pub(super) fn complete_command(&mut self) {
        let text = self.input.text();
        if !text.starts_with('/') || text.contains(char::is_whitespace) {
            return;
        }
        let matches: Vec<&str> = COMMANDS
            .iter()
            .filter_map(|(usage, _)| usage.split_whitespace().next())
            .filter(|name| name.starts_with(text))
            .collect();
        if let [one] = matches.as_slice() {
            let completed = format!("{one} ");
            self.input.set(&completed);
        } else if !matches.is_empty() {
            let list = matches.join(" ");
            self.hint(&list);
        }
    }

    pub(super) fn submit(&mut self) {
        let text = self.input.text().to_owned();
        if text.trim().is_empty() {
            return;
        }
        if let Some(command) = text.strip_prefix('/')
            && !command.starts_with('/')
        {
            self.history.push(&text);
            self.input.take();
            self.command(command.trim());
            return;
        }
        if self.busy() {
            self.hint("still answering: Esc stops it");
            return;
        }
        self.history.push(&text);
        self.input.take();
        // `//text` sends `/text`.
        let text = text.strip_prefix('/').map_or(text.clone(), str::to_owned);
        self.ask(text);
    }

    fn ask(&mut self, text: String) {
        self.entries.push(Entry::new(EntryKind::Message(ChatEntry {
            role: Role::User,
            author: String::new(),
            model: None,
            content: text.clone(),
            thinking: String::new(),
            state: MessageState::Pending,
        })));
        self.entries.push(Entry::new(EntryKind::Message(ChatEntry {
            role: Role::Assistant,
            author: self.info.personality.clone(),
            model: Some(self.info.model.clone()),
            content: String::new(),
            thinking: String::new(),
            state: MessageState::Streaming,
        })));
        self.phase = Phase::Waiting;
        self.scroll = None;
        self.retry = Some(text.clone());
        self.actions.push(Action::SetIdle(false));
        self.actions.push(Action::Send(text));
        self.dirty = true;
    }

    pub(super) fn retry(&mut self) {
        if self.busy() {
            self.hint("still answering: Esc stops it");
            return;
        }
        let Some(text) = self.retry.clone() else {
            self.hint("nothing to retry");
            return;
        };
        // A question that never reached the conversation is sent again in place.
        if let Some(pos) = self.entries.iter().rposition(|e| {
            e.message().is_some_and(|m| {
                m.role == Role::User && matches!(m.state, MessageState::NotSent(_))
            })
        }) && self.entries[pos]
            .message()
            .is_some_and(|m| m.content == text)
        {
            self.entries.truncate(pos);
        }
        self.ask(text);
    }

    fn command(&mut self, line: &str) {
        let (name, arg) = line
            .split_once(char::is_whitespace)
            .map_or((line, ""), |(n, a)| (n, a.trim()));
        match name {
            "help" | "h" | "?" => self.help(),
            "quit" | "q" | "exit" => self.quit(),
            "clear" | "new" => {
                if self.busy() {
                    self.hint("stop the answer first (Esc)");
                    return;
                }
                self.save();
                self.entries.clear();
                self.session = Session::new(&self.info.model, &self.info.personality);
                self.retry = None;
                self.scroll = None;
                self.actions.push(Action::Clear);
            }
            "save" => {
                self.unsaved_since = None;
                self.actions.push(Action::Save { announce: true });
            }
            "sessions" | "resume" => self.actions.push(Action::ListSessions),
            "personality" | "p" if arg.is_empty() => self.actions.push(Action::ListPersonalities),
            "personality" | "p" => self.actions.push(Action::SwitchPersonality(arg.to_owned())),
            "model" | "m" if arg.is_empty() => self.actions.push(Action::ListModels),
            "model" | "m" => self.check_model(arg),
            "pull" => self.start_pull(arg),
            "policy" if arg.is_empty() => self.show_policy(),
            "policy" => self.set_policy(arg),
            "copy" => self.copy(arg),
            "edit" => self.edit(),
            "system" => self
                .actions
                .push(Action::SetSystem((!arg.is_empty()).then(|| arg.to_owned()))),
            "retry" => self.retry(),
            "rename" | "name" => self.rename(arg),
            _ => self.notice(
                NoticeLevel::Error,
                format!("unknown command /{name}"),
                Vec::new(),
                Some("/help lists the commands; start a message with // to send a slash".into()),
            ),
        }
    }

    fn help(&mut self) {
        let w = COMMANDS
            .iter()
            .chain(KEYS)
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        let mut body = vec!["Commands:".to_owned()];
        body.extend(COMMANDS.iter().map(|(c, d)| format!("  {c:<w$}  {d}")));
        body.push("Keys:".to_owned());
        body.extend(KEYS.iter().map(|(k, d)| format!("  {k:<w$}  {d}")));
        self.notice(
            NoticeLevel::Info,
            "Help".to_owned(),
            body,
            Some("conversations are saved as they go; /sessions resumes one".into()),
        );
    }

    /// Ends the chat: an answer in progress is stopped (and kept), the conversation saved.
    pub fn quit(&mut self) {
        if self.busy() {
            self.actions.push(Action::Cancel);
            if let Some(entry) = self.streaming_entry() {
                entry.state = MessageState::Stopped;
            }
            self.phase = Phase::Idle;
        }
        self.save();
        self.should_quit = true;
    }
}
