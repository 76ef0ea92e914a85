//! The pickers: a filtered list of personalities, local models or saved sessions, and what
//! choosing from it does.

use conductor_core::backend::{LocalModel, same_model};
use conductor_core::text::one_line;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::{Action, App, NoticeLevel};
use crate::session::SessionSummary;

/// Which list a picker chooses from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickerKind {
    /// Personalities.
    Personality,
    /// Local models.
    Model,
    /// Saved sessions.
    Session,
}

impl PickerKind {
    /// The picker's title.
    #[must_use]
    pub fn title(self) -> &'static str {
        match self {
            Self::Personality => "Personality",
            Self::Model => "Model",
            Self::Session => "Resume a session",
        }
    }
}

/// One choice of a picker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickerItem {
    /// What choosing it selects (a name, an id).
    pub value: String,
    /// What is shown.
    pub label: String,
    /// Shown dimmed after the label.
    pub detail: String,
    /// The one in use now.
    pub current: bool,
}

/// A list to choose from, filtered by typing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picker {
    /// What it chooses.
    pub kind: PickerKind,
    /// Every choice.
    pub items: Vec<PickerItem>,
    /// Typed filter (case-insensitive substring of label or detail).
    pub filter: String,
    /// Index into [`Picker::visible`].
    pub selected: usize,
}

impl Picker {
    /// A picker with the current item selected.
    #[must_use]
    pub fn new(kind: PickerKind, items: Vec<PickerItem>) -> Self {
        let selected = items.iter().position(|i| i.current).unwrap_or(0);
        Self {
            kind,
            items,
            filter: String::new(),
            selected,
        }
    }

    /// The items that match the filter.
    #[must_use]
    pub fn visible(&self) -> Vec<&PickerItem> {
        let filter = self.filter.to_lowercase();
        self.items
            .iter()
            .filter(|i| {
                filter.is_empty()
                    || i.label.to_lowercase().contains(&filter)
                    || i.detail.to_lowercase().contains(&filter)
            })
            .collect()
    }

    fn chosen(&self) -> Option<String> {
        self.visible().get(self.selected).map(|i| i.value.clone())
    }

    fn step(&mut self, delta: isize) {
        let n = self.visible().len();
        if n == 0 {
            self.selected = 0;
            return;
        }
        let max = n - 1;
        self.selected = self.selected.saturating_add_signed(delta).min(max);
    }
}

impl App {
    /// The server's local models arrived: a picker of them.
    pub(super) fn models_listed(&mut self, models: Vec<LocalModel>) {
        let items = models
            .into_iter()
            .map(|m| PickerItem {
                current: same_model(&m.name, &self.info.model),
                detail: format_size(m.size),
                label: m.name.clone(),
                value: m.name,
            })
            .collect();
        self.open_picker(
            PickerKind::Model,
            items,
            "No models on the server: `ollama pull llama3.2:3b` downloads one.",
        );
    }

    /// The personalities arrived: a picker of them.
    pub(super) fn personalities_listed(&mut self, list: Vec<(String, String)>) {
        let items = list
            .into_iter()
            .map(|(name, description)| PickerItem {
                current: name == self.info.personality,
                label: name.clone(),
                value: name,
                detail: description,
            })
            .collect();
        self.open_picker(PickerKind::Personality, items, "No personalities found.");
    }

    /// The saved sessions arrived: a picker of them.
    pub(super) fn sessions_listed(&mut self, list: Vec<SessionSummary>) {
        let items = list
            .into_iter()
            .map(|s| session_item(&s, &self.session.id))
            .collect();
        self.open_picker(PickerKind::Session, items, "No saved sessions yet.");
    }

    fn open_picker(&mut self, kind: PickerKind, items: Vec<PickerItem>, empty: &str) {
        // Model names and session titles come from the server and from files: shown on one
        // line, without control characters; the value chosen stays as it was.
        let items: Vec<PickerItem> = items
            .into_iter()
            .map(|item| PickerItem {
                label: one_line(&item.label).into_owned(),
                detail: one_line(&item.detail).into_owned(),
                ..item
            })
            .collect();
        if items.is_empty() {
            self.notice(NoticeLevel::Info, empty.to_owned(), Vec::new(), None);
        } else {
            self.picker = Some(Picker::new(kind, items));
            self.dirty = true;
        }
    }

    pub(super) fn picker_key(&mut self, key: KeyEvent) {
        let Some(picker) = &mut self.picker else {
            return;
        };
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Esc => self.picker = None,
            KeyCode::Char('c') if ctrl => self.picker = None,
            KeyCode::Up => picker.step(-1),
            KeyCode::Down => picker.step(1),
            KeyCode::PageUp => picker.step(-10),
            KeyCode::PageDown => picker.step(10),
            KeyCode::Home => picker.selected = 0,
            KeyCode::End => picker.step(isize::MAX),
            KeyCode::Backspace => {
                picker.filter.pop();
                picker.selected = 0;
            }
            KeyCode::Char(c) if !ctrl => {
                picker.filter.push(c);
                picker.selected = 0;
            }
            KeyCode::Enter => {
                let kind = picker.kind;
                let chosen = picker.chosen();
                self.picker = None;
                if let Some(value) = chosen {
                    self.choose(kind, value);
                }
            }
            _ => {}
        }
    }

    fn choose(&mut self, kind: PickerKind, value: String) {
        match kind {
            PickerKind::Personality if value == self.info.personality => {
                self.hint(&format!("already {value}"));
            }
            PickerKind::Personality => self.actions.push(Action::SwitchPersonality(value)),
            PickerKind::Model if same_model(&value, &self.info.model) => {
                self.hint(&format!("already {value}"));
            }
            PickerKind::Model => self.actions.push(Action::SetModel(value)),
            PickerKind::Session if value == self.session.id => {
                self.hint("that is this conversation");
            }
            PickerKind::Session if self.busy() => self.hint("stop the answer first (Esc)"),
            PickerKind::Session => self.actions.push(Action::OpenSession(value)),
        }
    }
}

fn session_item(summary: &SessionSummary, current: &str) -> PickerItem {
    PickerItem {
        value: summary.id.clone(),
        label: summary.label(),
        detail: String::new(),
        current: summary.id == current,
    }
}

/// `2.0 GB`.
fn format_size(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)] // sizes far below 2^52
    let gb = bytes as f64 / 1e9;
    format!("{gb:.1} GB")
}
