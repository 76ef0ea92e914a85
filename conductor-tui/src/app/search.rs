//! Ctrl+R: searching earlier inputs as a shell does. Typing narrows the search, Ctrl+R again
//! (or Up) goes to the next older match, Down back to a newer one, Enter puts the match in the
//! input box (without sending it; what was typed goes to the input history, one Up away), Esc
//! leaves the input as it was.
//!
//! This conversation's inputs come first, newest first, then the user's messages of earlier
//! conversations ([`App::past_inputs`]); each text once. Matching ignores case, and a line
//! break in an input matches a space. An input is matched on its first [`SEARCHED_BYTES`]
//! bytes: inputs can be whole files (`ask -f`), and the search must stay quick with thousands.
//!
//! Each input is folded (lower case, line breaks as spaces, cut at [`SEARCHED_BYTES`]) once,
//! when the search opens or the earlier conversations arrive; the matches are worked out when
//! the query changes, not at every frame.

use std::collections::HashSet;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::App;

/// How much of an input (in bytes, from its start) is searched and shown.
pub const SEARCHED_BYTES: usize = 4096;

/// The open history search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistorySearch {
    /// What is typed (matched case-insensitively anywhere in an input).
    pub query: String,
    /// Which match is shown: 0 is the newest.
    pub selected: usize,
    /// Every earlier input, newest first, each text once.
    candidates: Vec<Candidate>,
    /// The candidates that match `query`, newest first (indices into `candidates`).
    matches: Vec<usize>,
}

/// An earlier input and its folded form.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Candidate {
    source: Source,
    /// [`fold`] of the input.
    folded: String,
}

/// Where an input is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// `App::history`, by index.
    Typed(usize),
    /// `App::past_inputs`, by index.
    Past(usize),
}

/// The start of `text`: at most [`SEARCHED_BYTES`] bytes, cut at a character boundary.
#[must_use]
pub fn searched_part(text: &str) -> &str {
    if text.len() <= SEARCHED_BYTES {
        return text;
    }
    let mut end = SEARCHED_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Folds a character for matching: lower case, and a line break or tab as a space.
fn fold_char(c: char, out: &mut String) {
    match c {
        '\n' | '\r' | '\t' => out.push(' '),
        c => out.extend(c.to_lowercase()),
    }
}

/// `text` as the search compares it: its [`searched_part`], lower case, line breaks as spaces.
#[must_use]
pub fn fold(text: &str) -> String {
    let part = searched_part(text);
    let mut out = String::with_capacity(part.len());
    for c in part.chars() {
        fold_char(c, &mut out);
    }
    out
}

/// Where the first match of `query` lies in `text` (byte offsets into `text`), found as the
/// search finds it: on the folded forms. Folding can change lengths (the Kelvin sign `K` is 3
/// bytes, its lower case `k` 1; `İ` becomes two characters), so the match is mapped back
/// through the characters of `text` rather than assumed to be `query.len()` long. A match that
/// begins or ends inside a character's folded form covers the whole character.
#[must_use]
pub fn match_span(text: &str, query: &str) -> Option<(usize, usize)> {
    let query = fold(query);
    if query.is_empty() {
        return None;
    }
    let part = searched_part(text);
    let mut folded = String::with_capacity(part.len());
    // For each character of `text`: where its folded form starts, and its own span.
    let mut map = Vec::with_capacity(part.len());
    for (at, c) in part.char_indices() {
        map.push((folded.len(), at, at + c.len_utf8()));
        fold_char(c, &mut folded);
    }
    let found = folded.find(&query)?;
    let end = found + query.len();
    let first = map
        .partition_point(|&(f, _, _)| f <= found)
        .checked_sub(1)?;
    let last = map.partition_point(|&(f, _, _)| f < end).checked_sub(1)?;
    Some((map[first].1, map[last].2))
}

impl HistorySearch {
    /// Works out the matches of the current query (after it changed), from the newest.
    pub(super) fn refilter(&mut self) {
        let query = fold(&self.query);
        self.matches = self
            .candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| c.folded.contains(&query))
            .map(|(i, _)| i)
            .collect();
        self.selected = 0;
    }
}

impl App {
    /// The earlier conversations' inputs arrived: they are kept, and folded once for the
    /// search.
    pub(super) fn set_past_inputs(&mut self, inputs: Vec<String>) {
        self.past_folded = inputs.iter().map(|text| fold(text)).collect();
        self.past_inputs = inputs;
        if let Some(search) = self.search.take() {
            let mut reopened = self.new_search();
            reopened.query = search.query;
            reopened.refilter();
            self.search = Some(reopened);
        }
    }

    /// A search over every earlier input, newest first, each text once; nothing typed yet.
    fn new_search(&mut self) -> HistorySearch {
        if self.past_folded.len() != self.past_inputs.len() {
            self.past_folded = self.past_inputs.iter().map(|text| fold(text)).collect();
        }
        let typed = self.history.entries();
        let mut seen: HashSet<&str> = HashSet::new();
        let mut candidates = Vec::new();
        for (i, text) in typed.iter().enumerate().rev() {
            if seen.insert(text) {
                candidates.push(Candidate {
                    source: Source::Typed(i),
                    folded: fold(text),
                });
            }
        }
        // Earlier conversations' inputs can be long (whole files): only one whose length is
        // that of a text already seen is hashed whole.
        let mut lengths: HashSet<usize> = seen.iter().map(|t| t.len()).collect();
        for (i, text) in self.past_inputs.iter().enumerate().rev() {
            if lengths.contains(&text.len()) && seen.contains(text.as_str()) {
                continue;
            }
            lengths.insert(text.len());
            seen.insert(text);
            candidates.push(Candidate {
                source: Source::Past(i),
                folded: self.past_folded.get(i).cloned().unwrap_or_default(),
            });
        }
        let matches = (0..candidates.len()).collect();
        HistorySearch {
            query: String::new(),
            selected: 0,
            candidates,
            matches,
        }
    }

    /// The text of a candidate.
    fn candidate_text(&self, candidate: &Candidate) -> &str {
        match candidate.source {
            Source::Typed(i) => self.history.entries().get(i),
            Source::Past(i) => self.past_inputs.get(i),
        }
        .map_or("", String::as_str)
    }

    /// The earlier inputs that match the search, newest first.
    #[must_use]
    pub fn search_matches(&self) -> Vec<&str> {
        let Some(search) = &self.search else {
            return Vec::new();
        };
        search
            .matches
            .iter()
            .filter_map(|&i| search.candidates.get(i))
            .map(|c| self.candidate_text(c))
            .collect()
    }

    /// How many earlier inputs match the search.
    #[must_use]
    pub fn search_match_count(&self) -> usize {
        self.search.as_ref().map_or(0, |s| s.matches.len())
    }

    /// The `n`th match, newest first.
    #[must_use]
    pub fn search_match_at(&self, n: usize) -> Option<&str> {
        let search = self.search.as_ref()?;
        let candidate = search.candidates.get(*search.matches.get(n)?)?;
        Some(self.candidate_text(candidate))
    }

    /// The match shown, if any.
    #[must_use]
    pub fn search_match(&self) -> Option<&str> {
        self.search_match_at(self.search.as_ref()?.selected)
    }

    /// Ctrl+R outside the search: opens it.
    pub(super) fn open_search(&mut self) {
        let search = self.new_search();
        if search.candidates.is_empty() {
            self.hint("no earlier inputs to search yet");
            return;
        }
        self.search = Some(search);
    }

    /// A key while the search is open.
    pub(super) fn search_key(&mut self, key: KeyEvent) {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let Some(search) = &mut self.search else {
            return;
        };
        let found = search.matches.len();
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
            KeyCode::Backspace if search.query.pop().is_some() => search.refilter(),
            KeyCode::Char('u') if ctrl => {
                search.query.clear();
                search.refilter();
            }
            KeyCode::Char(c) if !ctrl => {
                search.query.push(c);
                search.refilter();
            }
            KeyCode::Enter => {
                if let Some(text) = self.search_match().map(str::to_owned) {
                    // What was typed is not thrown away: Up brings it back.
                    let draft = self.input.take();
                    self.history.push(&draft);
                    // As a paste: an earlier conversation's file could hold control characters.
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
