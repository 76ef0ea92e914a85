//! `/copy` (the last answer, or one of its code blocks, to the clipboard), `/edit` (the input
//! composed in the user's editor) and the check behind `/model NAME`.

use conductor_core::Role;
use conductor_core::text::one_line;

use super::{Action, App, NoticeLevel};
use crate::codeblocks::code_blocks;
use crate::editor::{EditorError, KeptText};

/// `1,234`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `text` with its first letter in upper case.
fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

impl App {
    /// The text of the last answer that has any.
    fn last_answer(&self) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .filter_map(|e| e.message())
            .find(|m| m.role == Role::Assistant && !m.content.is_empty())
            .map(|m| m.content.as_str())
    }

    /// `/copy` and `/copy N`.
    pub(super) fn copy(&mut self, arg: &str) {
        let Some(answer) = self.last_answer() else {
            self.notice(
                NoticeLevel::Error,
                "Nothing to copy: there is no answer yet".into(),
                Vec::new(),
                None,
            );
            return;
        };
        if arg.is_empty() {
            let text = answer.to_owned();
            let blocks = code_blocks(answer).len();
            self.copy_if_it_fits(text, "the last answer".into(), blocks);
            return;
        }
        let blocks = code_blocks(answer);
        let Ok(n) = arg.parse::<usize>() else {
            self.notice(
                NoticeLevel::Error,
                format!(
                    "/copy takes the number of a code block, not `{}`",
                    one_line(arg)
                ),
                Vec::new(),
                Some("/copy copies the last answer; /copy 2 its code block [2]".into()),
            );
            return;
        };
        match blocks.len() {
            0 => self.notice(
                NoticeLevel::Error,
                "The last answer has no code blocks".into(),
                Vec::new(),
                Some("/copy copies the whole answer".into()),
            ),
            count if n == 0 || n > count => {
                let range = if count == 1 {
                    "one code block, [1]".to_owned()
                } else {
                    format!("{count} code blocks, [1] to [{count}]")
                };
                self.notice(
                    NoticeLevel::Error,
                    format!("There is no code block {n}: the last answer has {range}"),
                    Vec::new(),
                    None,
                );
            }
            _ => {
                let text = blocks[n - 1].code.clone();
                self.copy_if_it_fits(text, format!("code block {n}"), 0);
            }
        }
    }

    /// Asks the runtime to copy `text`, unless its OSC 52 sequence is longer than terminals
    /// take (they drop it silently, so the user would believe it copied). `blocks` is how many
    /// code blocks the answer has, for the way out.
    fn copy_if_it_fits(&mut self, text: String, what: String, blocks: usize) {
        if crate::clipboard::fits(&text) {
            self.actions.push(Action::Copy { text, what });
            return;
        }
        let mut ways = Vec::new();
        if blocks > 0 {
            ways.push(format!("/copy 1 to /copy {blocks} copy one code block"));
        }
        ways.push(format!(
            "conductor sessions export {} -o FILE writes the whole conversation to a file",
            self.session.id
        ));
        self.notice(
            NoticeLevel::Error,
            format!(
                "Not copied: {what} is {} bytes, more than the {} a terminal clipboard takes",
                thousands(text.len()),
                thousands(crate::clipboard::MAX_TEXT_BYTES)
            ),
            vec![
                "Terminals drop longer OSC 52 sequences without a word, so nothing was sent."
                    .into(),
            ],
            Some(ways.join("; ")),
        );
    }

    /// The copy was written to the terminal (or not).
    pub(super) fn copied(
        &mut self,
        what: &str,
        chars: usize,
        tmux: bool,
        result: Result<(), String>,
    ) {
        match result {
            Ok(()) => {
                let hint = if tmux {
                    "inside tmux it reaches the clipboard with `set -g set-clipboard on` (or \
                     `allow-passthrough on`) in tmux.conf"
                } else {
                    "sent through the terminal (OSC 52), so it works over SSH; a terminal \
                     without OSC 52 (or with it turned off) ignores it without a word"
                };
                self.notice(
                    NoticeLevel::Info,
                    // The terminal does not answer: sent is all that is known.
                    format!(
                        "Sent {} characters ({what}) to the terminal's clipboard",
                        thousands(chars)
                    ),
                    Vec::new(),
                    Some(hint.into()),
                );
            }
            Err(err) => self.notice(
                NoticeLevel::Error,
                format!("Could not copy {what}: {err}"),
                Vec::new(),
                None,
            ),
        }
    }

    /// `/edit`, Ctrl+X Ctrl+E.
    pub(super) fn edit(&mut self) {
        self.actions
            .push(Action::Edit(self.input.text().to_owned()));
    }

    /// True when an action that hands the terminal away (the editor of `/edit`) waits to be
    /// carried out: the events after it must not reach the chat, whose input the editor has
    /// been given.
    #[must_use]
    pub fn hands_terminal_away(&self) -> bool {
        self.actions.iter().any(|a| matches!(a, Action::Edit(_)))
    }

    /// The editor returned.
    pub(super) fn edited(&mut self, result: Result<String, EditorError>) {
        match result {
            Ok(text) if text.trim().is_empty() && !self.input.is_empty() => self.notice(
                NoticeLevel::Warning,
                "The editor left the message empty: your input is kept".into(),
                Vec::new(),
                Some("Ctrl+U or Ctrl+C clears the input".into()),
            ),
            Ok(text) => {
                // As a paste: tabs become spaces, control characters go.
                self.input.take();
                self.input.insert_str(&text);
                self.hint("edited: Enter sends it");
            }
            Err(err) => match err.kept() {
                Some(kept) => match kept.text.text() {
                    Some(text) => {
                        // The editor wrote something it could not hand over as it should (Vim
                        // exits non-zero after an error earlier in the session, even when the
                        // file was saved; the file is not UTF-8): the text comes in, and the
                        // input it replaces stays one Up away.
                        let earlier = self.input.take();
                        self.history.push(&earlier);
                        self.input.insert_str(text);
                        let mut details = vec![format!(
                            "What it wrote is in the input, and kept in {}.",
                            kept.path.display()
                        )];
                        if matches!(kept.text, KeptText::Lossy(_)) {
                            details.push(
                                "It is not valid UTF-8: what does not decode shows as \u{fffd}; \
                                 the file holds the exact bytes."
                                    .into(),
                            );
                        }
                        if !earlier.trim().is_empty() {
                            details.push(
                                "Your earlier input is in the history: Up brings it back.".into(),
                            );
                        }
                        let title = match &err {
                            EditorError::NotUtf8 { .. } => capitalized(&err.to_string()),
                            _ => {
                                format!("{}, after writing the file", capitalized(&err.to_string()))
                            }
                        };
                        self.notice(
                            NoticeLevel::Warning,
                            title,
                            details,
                            Some("check the text before sending it (Enter sends)".into()),
                        );
                    }
                    None => {
                        // An `Unreadable` error says why in its title already.
                        let why = match (&err, &kept.text) {
                            (EditorError::Unreadable { .. }, _) => String::new(),
                            (_, KeptText::Unreadable(why)) => format!(" ({why})"),
                            _ => String::new(),
                        };
                        let mut details = vec![format!(
                            "What it wrote could not be read back{why}; the file is kept: {}.",
                            kept.path.display()
                        )];
                        details.push("Your input is unchanged.".into());
                        self.notice(
                            NoticeLevel::Error,
                            format!("Not edited: {err}"),
                            details,
                            None,
                        );
                    }
                },
                None => {
                    // Only an editor that cannot be started calls for another one.
                    let hint = matches!(err, EditorError::NotFound(_) | EditorError::Spawn { .. })
                        .then(|| {
                            "set $VISUAL or $EDITOR to your editor, e.g. export EDITOR=nano".into()
                        });
                    self.notice(
                        NoticeLevel::Error,
                        format!("Not edited: {err}"),
                        vec!["Your input is unchanged.".into()],
                        hint,
                    );
                }
            },
        }
        self.dirty = true;
    }

    /// `/model NAME`: ask the server first.
    pub(super) fn check_model(&mut self, model: &str) {
        if conductor_core::backend::same_model(model, &self.info.model) {
            let text = format!("already {model}");
            self.hint(&text);
            return;
        }
        self.hint(&format!("looking for {model} on the server…"));
        self.actions.push(Action::CheckModel(model.to_owned()));
    }

    /// The server said whether it has `model`.
    pub(super) fn model_looked_up(&mut self, model: String, found: Result<bool, String>) {
        self.status_hint = None;
        match found {
            Ok(true) => self.actions.push(Action::SetModel(model)),
            Ok(false) => {
                let current = one_line(&self.info.model).into_owned();
                let shown = one_line(&model).into_owned();
                self.notice(
                    NoticeLevel::Warning,
                    format!("Model {shown} is not on the server: still using {current}"),
                    Vec::new(),
                    Some(format!(
                        "/pull {shown} downloads it and switches to it; /model picks a local one"
                    )),
                );
            }
            Err(err) => self.notice(
                NoticeLevel::Error,
                format!(
                    "Cannot tell whether {} is on the server: {}",
                    one_line(&model),
                    one_line(&err)
                ),
                vec![format!("Still using {}.", one_line(&self.info.model))],
                None,
            ),
        }
        self.dirty = true;
    }
}
