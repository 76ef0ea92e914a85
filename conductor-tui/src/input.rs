//! The multi-line input box: a text buffer with a cursor, and the recall of earlier inputs.

use unicode_width::UnicodeWidthChar;

/// The text being typed, with a cursor (a byte offset on a character boundary).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Input {
    text: String,
    cursor: usize,
}

impl Input {
    /// The text.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The cursor, as a byte offset into [`Input::text`].
    #[must_use]
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// True when nothing is typed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Replaces the text, cursor at the end.
    pub fn set(&mut self, text: &str) {
        self.text = text.to_owned();
        self.cursor = self.text.len();
    }

    /// Takes the text out, leaving the box empty.
    pub fn take(&mut self) -> String {
        self.cursor = 0;
        std::mem::take(&mut self.text)
    }

    /// Inserts a character at the cursor.
    pub fn insert(&mut self, c: char) {
        self.text.insert(self.cursor, c);
        self.cursor += c.len_utf8();
    }

    /// Inserts text at the cursor (a paste); `\r\n` and `\r` become `\n`, tabs four spaces.
    pub fn insert_str(&mut self, text: &str) {
        let clean = text
            .replace("\r\n", "\n")
            .replace('\r', "\n")
            .replace('\t', "    ");
        let clean: String = clean
            .chars()
            .filter(|c| *c == '\n' || !c.is_control())
            .collect();
        self.text.insert_str(self.cursor, &clean);
        self.cursor += clean.len();
    }

    /// Deletes the character before the cursor.
    pub fn backspace(&mut self) {
        if let Some(c) = self.text[..self.cursor].chars().next_back() {
            self.cursor -= c.len_utf8();
            self.text.remove(self.cursor);
        }
    }

    /// Deletes the character under the cursor.
    pub fn delete(&mut self) {
        if self.cursor < self.text.len() {
            self.text.remove(self.cursor);
        }
    }

    /// Deletes the word before the cursor (Ctrl+W).
    pub fn delete_word(&mut self) {
        let before = &self.text[..self.cursor];
        let trimmed = before.trim_end_matches([' ', '\t']);
        let start = trimmed
            .rfind(|c: char| c.is_whitespace())
            .map_or(0, |i| i + 1);
        let start = if start == self.cursor {
            // Only spaces before: remove them.
            trimmed.len()
        } else {
            start
        };
        self.text.replace_range(start..self.cursor, "");
        self.cursor = start;
    }

    /// Deletes from the start of the line to the cursor (Ctrl+U).
    pub fn delete_to_line_start(&mut self) {
        let start = self.line_start();
        self.text.replace_range(start..self.cursor, "");
        self.cursor = start;
    }

    /// Moves one character left.
    pub fn left(&mut self) {
        if let Some(c) = self.text[..self.cursor].chars().next_back() {
            self.cursor -= c.len_utf8();
        }
    }

    /// Moves one character right.
    pub fn right(&mut self) {
        if let Some(c) = self.text[self.cursor..].chars().next() {
            self.cursor += c.len_utf8();
        }
    }

    /// Moves to the start of the line.
    pub fn home(&mut self) {
        self.cursor = self.line_start();
    }

    /// Moves to the end of the line.
    pub fn end(&mut self) {
        self.cursor = self.line_end();
    }

    /// True when the cursor is on the first line.
    #[must_use]
    pub fn on_first_line(&self) -> bool {
        !self.text[..self.cursor].contains('\n')
    }

    /// True when the cursor is on the last line.
    #[must_use]
    pub fn on_last_line(&self) -> bool {
        !self.text[self.cursor..].contains('\n')
    }

    /// Moves to the line above, keeping the column where it can.
    pub fn up(&mut self) {
        let start = self.line_start();
        if start == 0 {
            return;
        }
        let column = self.text[start..self.cursor].chars().count();
        let above_end = start - 1;
        let above_start = self.text[..above_end].rfind('\n').map_or(0, |i| i + 1);
        self.cursor = advance(&self.text, above_start, above_end, column);
    }

    /// Moves to the line below, keeping the column where it can.
    pub fn down(&mut self) {
        let end = self.line_end();
        if end == self.text.len() {
            return;
        }
        let column = self.text[self.line_start()..self.cursor].chars().count();
        let below_start = end + 1;
        let below_end = self.text[below_start..]
            .find('\n')
            .map_or(self.text.len(), |i| below_start + i);
        self.cursor = advance(&self.text, below_start, below_end, column);
    }

    fn line_start(&self) -> usize {
        self.text[..self.cursor].rfind('\n').map_or(0, |i| i + 1)
    }

    fn line_end(&self) -> usize {
        self.text[self.cursor..]
            .find('\n')
            .map_or(self.text.len(), |i| self.cursor + i)
    }

    /// The text wrapped at `width` columns (character wrap, so the cursor maps exactly), with
    /// the cursor's (row, column) in those rows.
    #[must_use]
    pub fn layout(&self, width: u16) -> (Vec<String>, (usize, usize)) {
        let width = usize::from(width.max(2));
        let mut rows = vec![String::new()];
        let mut used = 0;
        let mut cursor = (0, 0);
        for (i, c) in self.text.char_indices() {
            if i == self.cursor {
                cursor = (rows.len() - 1, used);
            }
            if c == '\n' {
                rows.push(String::new());
                used = 0;
                continue;
            }
            let w = c.width().unwrap_or(0);
            if used + w > width {
                rows.push(String::new());
                used = 0;
                if i == self.cursor {
                    cursor = (rows.len() - 1, 0);
                }
            }
            if let Some(row) = rows.last_mut() {
                row.push(c);
            }
            used += w;
        }
        if self.cursor >= self.text.len() {
            // At the very end: after the last character, or at the start of the next row when
            // the last row is full.
            if used >= width {
                rows.push(String::new());
                used = 0;
            }
            cursor = (rows.len() - 1, used);
        }
        (rows, cursor)
    }
}

/// The byte offset `column` characters after `start`, but not past `end`.
fn advance(text: &str, start: usize, end: usize, column: usize) -> usize {
    text[start..end]
        .char_indices()
        .nth(column)
        .map_or(end, |(i, _)| start + i)
}

/// Earlier inputs, recalled with Up and Down.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputHistory {
    entries: Vec<String>,
    /// Index into `entries` while browsing.
    position: Option<usize>,
    /// What was typed before browsing started.
    draft: String,
}

/// The most inputs remembered.
const HISTORY_MAX: usize = 500;

impl InputHistory {
    /// Remembers a sent input (not twice in a row) and stops browsing.
    pub fn push(&mut self, text: &str) {
        if self.entries.last().map(String::as_str) != Some(text) && !text.trim().is_empty() {
            self.entries.push(text.to_owned());
            if self.entries.len() > HISTORY_MAX {
                self.entries.remove(0);
            }
        }
        self.position = None;
    }

    /// The inputs remembered, oldest first.
    #[must_use]
    pub fn entries(&self) -> &[String] {
        &self.entries
    }

    /// The previous (older) input; `current` is kept as the draft when browsing starts.
    pub fn older(&mut self, current: &str) -> Option<&str> {
        let next = match self.position {
            None if self.entries.is_empty() => return None,
            None => {
                self.draft = current.to_owned();
                self.entries.len() - 1
            }
            Some(0) => return None,
            Some(p) => p - 1,
        };
        self.position = Some(next);
        self.entries.get(next).map(String::as_str)
    }

    /// The next (newer) input, or the draft after the newest.
    pub fn newer(&mut self) -> Option<&str> {
        let p = self.position?;
        if p + 1 < self.entries.len() {
            self.position = Some(p + 1);
            self.entries.get(p + 1).map(String::as_str)
        } else {
            self.position = None;
            Some(&self.draft)
        }
    }

    /// True while browsing.
    #[must_use]
    pub fn browsing(&self) -> bool {
        self.position.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editing_and_moving() {
        let mut input = Input::default();
        for c in "héllo".chars() {
            input.insert(c);
        }
        input.left();
        input.left();
        input.backspace();
        assert_eq!(input.text(), "hélo");
        input.insert_str("l\r\nwörld");
        assert_eq!(input.text(), "hél\nwörldlo");
        input.up();
        assert!(input.on_first_line());
        input.end();
        input.down();
        assert_eq!(&input.text()[..input.cursor()], "hél\nwör");
        input.delete_word();
        assert_eq!(input.text(), "hél\nldlo");
    }

    #[test]
    fn layout_wraps_and_places_the_cursor() {
        let mut input = Input::default();
        input.set("abcdef\ngh");
        let (rows, cursor) = input.layout(4);
        assert_eq!(rows, ["abcd", "ef", "gh"]);
        assert_eq!(cursor, (2, 2));
        input.set("abcd");
        let (rows, cursor) = input.layout(4);
        assert_eq!(rows, ["abcd", ""]);
        assert_eq!(cursor, (1, 0));
    }

    #[test]
    fn history_browses_and_restores_the_draft() {
        let mut history = InputHistory::default();
        history.push("one");
        history.push("two");
        assert_eq!(history.older("draft"), Some("two"));
        assert_eq!(history.older(""), Some("one"));
        assert_eq!(history.older(""), None);
        assert_eq!(history.newer(), Some("two"));
        assert_eq!(history.newer(), Some("draft"));
        assert!(!history.browsing());
    }
}
