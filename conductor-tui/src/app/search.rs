//! Ctrl+R: searching earlier inputs as a shell does. Typing narrows the search, Ctrl+R again
//! (or Up) goes to the next older match, Down back to a newer one, Enter puts the match in the
//! input box (without sending it), Esc leaves the input as it was.
//!
//! This conversation's inputs come first, newest first, then the user's messages of earlier
//! conversations ([`App::past_inputs`]); each text once. Matching ignores case, and a line
//! break in an input matches a space.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::App;

/// The open history search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistorySearch {
    /// What is typed (matched case-insensitively anywhere in an input).
    pub query: String,
    /// Which match is shown: 0 is the newest.
    pub selected: usize,
}

impl App {
    /// Every earlier input, newest first, each text once.
    fn search_candidates(&self) -> Vec<&str> {
        let mut seen = std::collections::HashSet::new();
        self.history
            .entries()
            .iter()
            .rev()
            .chain(self.past_inputs.iter().rev())
            .map(String::as_str)
            .filter(|text| seen.insert(*text))
            .collect()
    }

    /// The earlier inputs that match the search, newest first.
    #[must_use]
    pub fn search_matches(&self) -> Vec<&str> {
        let Some(search) = &self.search else {
            return Vec::new();
        };
        let query = search.query.to_lowercase();
        self.search_candidates()
            .into_iter()
            // A line break in an input matches a space in the query.
            .filter(|text| text.replace('\n', " ").to_lowercase().contains(&query))
            .collect()
    }

    /// The match shown, if any.
    #[must_use]
    pub fn search_match(&self) -> Option<&str> {
        let selected = self.search.as_ref()?.selected;
        self.search_matches().get(selected).copied()
    }

    /// Ctrl+R outside the search: opens it.
    pub(super) fn open_search(&mut self) {
        if self.search_candidates().is_empty() {
            self.hint("no earlier inputs to search yet");
            return;
        }
        self.search = Some(HistorySearch::default());
    }

    /// A key while the search is open.
    pub(super) fn search_key(&mut self, key: KeyEvent) {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let found = self.search_matches().len();
        let Some(search) = &mut self.search else {
            return;
        };
        match key.code {
            KeyCode::Esc => self.search = None,
            KeyCode::Char('c' | 'g') if ctrl => self.search = None,
            KeyCode::Char('r') if ctrl => {
                if search.selected + 1 < found {
                    search.selected += 1;
                } else {
                    self.hint("no older match");
                }
            }
            KeyCode::Up if search.selected + 1 < found => search.selected += 1,
            KeyCode::Down => search.selected = search.selected.saturating_sub(1),
            KeyCode::Backspace => {
                search.query.pop();
                search.selected = 0;
            }
            KeyCode::Char('u') if ctrl => {
                search.query.clear();
                search.selected = 0;
            }
            KeyCode::Char(c) if !ctrl => {
                search.query.push(c);
                search.selected = 0;
            }
            KeyCode::Enter => {
                if let Some(text) = self.search_match().map(str::to_owned) {
                    // As a paste: an earlier conversation's file could hold control characters.
                    self.input.take();
                    self.input.insert_str(&text);
                    self.search = None;
                } else {
                    self.hint("nothing matches: Esc leaves the search");
                }
            }
            _ => {}
        }
    }
}
