//! Text from the server, made safe to show: a model name, an error body or an answer may hold
//! terminal escape sequences (set the window title, clear the screen, rewrite what was
//! printed). Frontends pass anything the server sent through these before a terminal sees it.

use std::borrow::Cow;

/// A control character a terminal acts on: C0 other than tab and newline, DEL, and C1 (which
/// includes the 8-bit CSI and OSC introducers).
fn is_control(c: char, keep_newlines: bool) -> bool {
    match c {
        '\n' | '\t' => !keep_newlines,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        _ => false,
    }
}

/// `text` without control characters (escape sequences lose their ESC and so print as plain
/// text); newlines and tabs are kept. Borrowed when there was nothing to remove.
#[must_use]
pub fn strip_controls(text: &str) -> Cow<'_, str> {
    if text.chars().any(|c| is_control(c, true)) {
        Cow::Owned(text.chars().filter(|c| !is_control(*c, true)).collect())
    } else {
        Cow::Borrowed(text)
    }
}

/// `text` on one line: control characters removed, newlines and tabs made spaces. For names,
/// excerpts and messages shown inside a line.
#[must_use]
pub fn one_line(text: &str) -> Cow<'_, str> {
    if text.chars().any(|c| is_control(c, false)) {
        Cow::Owned(
            text.chars()
                .filter_map(|c| match c {
                    '\n' | '\t' => Some(' '),
                    c if is_control(c, false) => None,
                    c => Some(c),
                })
                .collect(),
        )
    } else {
        Cow::Borrowed(text)
    }
}

/// One line (runs of whitespace, line breaks included, become one space), at most `max`
/// characters, with an ellipsis when cut: a title, a label, a preview.
#[must_use]
pub fn shorten(text: &str, max: usize) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_lose_their_power() {
        let hostile = "bad\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31mred\r\nnext\tcol";
        assert_eq!(strip_controls(hostile), "bad]0;pwned[2J31mred\nnext\tcol");
        assert_eq!(one_line(hostile), "bad]0;pwned[2J31mred next col");
        assert!(matches!(
            strip_controls("plain ünïcödé\n"),
            Cow::Borrowed(_)
        ));
    }
}
