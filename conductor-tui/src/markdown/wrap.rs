//! Inline markdown (bold, italic, strikethrough, `code`) as styled runs, and wrapping runs into
//! rows of at most a width, keeping every character.

use super::*;

/// Adds styled runs as rows of at most `width` columns after `bar`, keeping every character;
/// an empty line is one row with the bar alone.
pub(super) fn hard_wrap(
    out: &mut Vec<Line<'static>>,
    bar: &Span<'static>,
    runs: &[(String, Style)],
    width: usize,
) {
    // Room for the bar, and for the indent and streaming cursor the conversation view adds, so
    // that no row is reallocated on the way to the screen.
    let new_row = |capacity: usize| {
        let mut row = Vec::with_capacity(capacity + 3);
        row.push(bar.clone());
        row
    };
    let mut row = new_row(runs.len());
    let mut used = 0;
    for (text, style) in runs {
        let run_width = if text.is_ascii() {
            text.len()
        } else {
            text_width(text)
        };
        if used + run_width <= width {
            // The common case: the whole run fits.
            row.push(Span::styled(text.clone(), *style));
            used += run_width;
            continue;
        }
        for c in text.chars() {
            let w = c.width().unwrap_or(0);
            if used + w > width && used > 0 {
                out.push(Line::from(std::mem::replace(&mut row, new_row(1))));
                used = 0;
            }
            match row.last_mut() {
                Some(span) if span.style == *style && used > 0 => span.content.to_mut().push(c),
                _ => row.push(Span::styled(c.to_string(), *style)),
            }
            used += w;
        }
    }
    out.push(Line::from(row));
}

/// Drops control characters (a model's output must not move the cursor or change colours) and
/// expands tabs.
pub(crate) fn sanitize(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\t' => out.push_str(TAB),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

pub(super) fn text_width(text: &str) -> usize {
    text.chars().map(|c| c.width().unwrap_or(0)).sum()
}

/// Inline markdown: `code`, **bold**, __bold__, *italic*, ~~strike~~, and `\` escapes. A marker
/// without its closing twin is shown as it is (a streaming answer may not have closed it yet).
pub(super) fn inline(text: &str, base: Style, code: Style) -> Vec<(String, Style)> {
    let mut runs: Vec<(String, Style)> = Vec::new();
    let mut current = String::new();
    let (mut bold, mut italic, mut strike) = (false, false, false);
    let style_of = |bold: bool, italic: bool, strike: bool| {
        let mut style = base;
        if bold {
            style = style.add_modifier(Modifier::BOLD);
        }
        if italic {
            style = style.add_modifier(Modifier::ITALIC);
        }
        if strike {
            style = style.add_modifier(Modifier::CROSSED_OUT);
        }
        style
    };
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < text.len() {
        let rest = &text[i..];
        let flush = |current: &mut String, runs: &mut Vec<(String, Style)>, style: Style| {
            if !current.is_empty() {
                runs.push((std::mem::take(current), style));
            }
        };
        let style = style_of(bold, italic, strike);
        match bytes[i] {
            b'\\' if rest.len() > 1 && rest.as_bytes()[1].is_ascii_punctuation() => {
                current.push(char::from(rest.as_bytes()[1]));
                i += 2;
                continue;
            }
            b'`' => {
                let ticks = rest.len() - rest.trim_start_matches('`').len();
                let fence = &rest[..ticks];
                if let Some(end) = rest[ticks..].find(fence) {
                    flush(&mut current, &mut runs, style);
                    let text = rest[ticks..ticks + end].trim();
                    runs.push((text.to_owned(), base.patch(code)));
                    i += ticks + end + ticks;
                    continue;
                }
                current.push_str(fence);
                i += ticks;
                continue;
            }
            b'*' | b'_' if rest.starts_with("**") || rest.starts_with("__") => {
                let marker = &rest[..2];
                if bold || rest[2..].contains(marker) {
                    flush(&mut current, &mut runs, style);
                    bold = !bold;
                    i += 2;
                    continue;
                }
            }
            b'~' if rest.starts_with("~~") && (strike || rest[2..].contains("~~")) => {
                flush(&mut current, &mut runs, style);
                strike = !strike;
                i += 2;
                continue;
            }
            // `_` alone is left alone: snake_case identifiers are far more common than _emphasis_.
            b'*' => {
                let opens = !italic
                    && rest[1..].starts_with(|c: char| !c.is_whitespace())
                    && rest[1..].contains('*');
                if italic || opens {
                    flush(&mut current, &mut runs, style);
                    italic = !italic;
                    i += 1;
                    continue;
                }
            }
            _ => {}
        }
        let Some(c) = rest.chars().next() else {
            break;
        };
        current.push(c);
        i += c.len_utf8();
    }
    if !current.is_empty() {
        runs.push((current, style_of(bold, italic, strike)));
    }
    runs
}

/// One word (or run of spaces) made of styled pieces.
pub(super) struct Word {
    pieces: Vec<(String, Style)>,
    width: usize,
    space: bool,
}

pub(super) fn words(runs: &[(String, Style)]) -> Vec<Word> {
    let mut words: Vec<Word> = Vec::new();
    for (text, style) in runs {
        for c in text.chars() {
            let c = if c == '\t' { ' ' } else { c };
            if c.is_control() {
                continue;
            }
            let space = c == ' ';
            let w = c.width().unwrap_or(0);
            let word = match words.last_mut() {
                Some(word) if word.space == space => word,
                _ => {
                    words.push(Word {
                        pieces: Vec::new(),
                        width: 0,
                        space,
                    });
                    let Some(word) = words.last_mut() else {
                        continue;
                    };
                    word
                }
            };
            match word.pieces.last_mut() {
                Some((piece, s)) if s == style => piece.push(c),
                _ => word.pieces.push((c.to_string(), *style)),
            }
            word.width += w;
        }
    }
    words
}

/// Word-wraps styled runs to `width` columns; `first` prefixes the first line and `rest` the
/// others (list markers, quote bars). Words longer than a line are broken; spaces at a break
/// are dropped.
pub(super) fn wrap(
    runs: &[(String, Style)],
    width: usize,
    first: &[Span<'static>],
    rest: &[Span<'static>],
) -> Vec<Line<'static>> {
    let mut w = Wrapper {
        lines: Vec::new(),
        line: first.to_vec(),
        avail: width.saturating_sub(spans_width(first)).max(1),
        used: 0,
        width,
        rest,
    };
    for word in words(runs) {
        if word.space {
            if w.used == 0 && !w.lines.is_empty() {
                continue;
            }
            if w.used + word.width > w.avail {
                w.break_line();
                continue;
            }
        } else if w.used + word.width > w.avail && w.used > 0 {
            w.break_line();
        }
        if w.used + word.width <= w.avail {
            for (text, style) in word.pieces {
                push_piece(&mut w.line, text, style);
            }
            w.used += word.width;
            continue;
        }
        // Longer than a whole line: break it anywhere.
        for (text, style) in word.pieces {
            for c in text.chars() {
                let cw = c.width().unwrap_or(0);
                if w.used + cw > w.avail && w.used > 0 {
                    w.break_line();
                }
                push_piece(&mut w.line, c.to_string(), style);
                w.used += cw;
            }
        }
    }
    trim_trailing_spaces(&mut w.line);
    w.lines.push(Line::from(w.line));
    w.lines
}

pub(super) struct Wrapper<'a> {
    lines: Vec<Line<'static>>,
    line: Vec<Span<'static>>,
    avail: usize,
    used: usize,
    width: usize,
    rest: &'a [Span<'static>],
}

impl Wrapper<'_> {
    fn break_line(&mut self) {
        trim_trailing_spaces(&mut self.line);
        self.lines.push(Line::from(std::mem::take(&mut self.line)));
        self.line.extend_from_slice(self.rest);
        self.avail = self.width.saturating_sub(spans_width(self.rest)).max(1);
        self.used = 0;
    }
}

pub(super) fn push_piece(line: &mut Vec<Span<'static>>, text: String, style: Style) {
    match line.last_mut() {
        Some(span) if span.style == style => span.content.to_mut().push_str(&text),
        _ => line.push(Span::styled(text, style)),
    }
}

pub(super) fn trim_trailing_spaces(line: &mut Vec<Span<'static>>) {
    loop {
        let len = line.len();
        let Some(span) = line.last_mut() else {
            return;
        };
        let trimmed = span.content.trim_end_matches(' ').len();
        if trimmed == 0 && len > 1 {
            line.pop();
            continue;
        }
        span.content.to_mut().truncate(trimmed);
        return;
    }
}

pub(super) fn spans_width(spans: &[Span<'_>]) -> usize {
    spans.iter().map(|s| text_width(&s.content)).sum()
}
