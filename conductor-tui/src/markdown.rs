//! Lightweight markdown to wrapped ratatui [`Line`]s, and the per-message render cache.
//!
//! Only what chat answers use: headings, paragraphs, bullet and numbered lists, block quotes,
//! rules, fenced code blocks, and inline bold, italic, strikethrough and `code`. Each source line
//! stays a line (answers use blank lines between paragraphs), so text that is still streaming
//! renders the same way it will when complete, and an unclosed fence is simply a code block that
//! has not ended yet.
//!
//! Wrapping is done here, once per message and width, not by a `Paragraph` on every frame: the
//! conversation view then only copies the visible lines (see [`RenderCache`]).
//!
//! Colours come from the active [`crate::theme`]; code blocks with a language are highlighted
//! by [`crate::highlight`], which caches them per block.

use std::cell::RefCell;

use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use unicode_width::UnicodeWidthChar;

use crate::highlight::{HighlightedBlock, StyledLine, highlight};
use crate::theme::{self, ThemeKind};
use crate::ui::StreamTail;

/// Columns a tab stands for.
const TAB: &str = "    ";

/// Renders markdown `text` into lines at most `width` columns wide.
#[must_use]
pub fn render_markdown(text: &str, width: u16, base: Style) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    render_markdown_into(text, width, base, &mut out, &mut Resume::default());
    out
}

/// Where the render of a growing text (a streaming answer) can go on from: the lines of the
/// source before it are complete and cannot render differently whatever is appended, so only
/// the source from there on is rendered again. Made by [`render_markdown_into`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resume {
    /// The text before the point (checked, so that a text that is not an extension of it is
    /// rendered from the start).
    seen: String,
    /// Lines rendered from `seen`.
    rows: usize,
    /// The width, style and theme it was rendered at.
    width: u16,
    base: Style,
    theme: Option<ThemeKind>,
    /// The last source line before the point was blank.
    previous_blank: bool,
    /// The point is inside a fenced block still open there.
    open: Option<OpenFence>,
}

/// A fenced block open at a [`Resume`] point.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OpenFence {
    /// Where its first code line starts in the text.
    code_start: usize,
    /// Code lines whose rows are rendered already.
    done: usize,
}

/// The source line at byte `at` of `text`: the line (without `\n`) and where the next one
/// starts, which is past the end (`text.len() + 1`) for the last line, the one without `\n`.
fn line_at(text: &str, at: usize) -> (&str, usize) {
    let rest = &text[at..];
    match rest.find('\n') {
        Some(i) => (&rest[..i], at + i + 1),
        None => (rest, text.len() + 1),
    }
}

/// Renders markdown `text` into `out` as [`render_markdown`] does, going on from `resume` when
/// `text` extends the text it was made on (at the same width, style and theme): `out` must then hold
/// what the call that made `resume` left in it. `resume` is moved to the last point that
/// cannot change. Returns how many of the lines in `out` were kept.
pub fn render_markdown_into(
    text: &str,
    width: u16,
    base: Style,
    out: &mut Vec<Line<'static>>,
    resume: &mut Resume,
) -> usize {
    let from = std::mem::take(resume);
    let theme_kind = theme::active_kind();
    let valid = from.width == width
        && from.base == base
        && from.theme == Some(theme_kind)
        && from.rows <= out.len()
        && text.starts_with(&from.seen);
    let (mut pos, mut previous_blank, open, kept) = if valid {
        (from.seen.len(), from.previous_blank, from.open, from.rows)
    } else {
        (0, true, None, 0)
    };
    out.truncate(kept);
    let mut seen = if valid { from.seen } else { String::new() };
    let mut mark = |at: usize, rows: usize, previous_blank: bool, open: Option<OpenFence>| {
        seen.push_str(&text[seen.len()..at]);
        (rows, previous_blank, open)
    };
    let mut point = mark(pos, kept, previous_blank, open.clone());
    let theme = theme::active();
    let wide = usize::from(width.max(4));
    let first = pos;
    if let Some(open) = open {
        pos = fenced_block(
            text,
            open.code_start,
            Some(open.done),
            wide,
            out,
            &mut |at, rows, open| {
                point = mark(at, rows, false, Some(open));
            },
        );
        previous_blank = false;
    }
    while pos <= text.len() {
        // Every line before `pos` is complete (it ends with a line break): a point to go on
        // from, unless the lines end with a blank one, which the end of the text may take off.
        if pos > first && out.last().is_none_or(|l| !l.spans.is_empty()) {
            point = mark(pos, out.len(), previous_blank, None);
        }
        let (raw, next) = line_at(text, pos);
        let complete = next <= text.len();
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = line.trim_start();
        if fence_open(trimmed).is_some() {
            pos = fenced_block(text, next, None, wide, out, &mut |at, rows, open| {
                point = mark(at, rows, false, Some(open));
            });
            previous_blank = false;
            continue;
        }
        pos = next;
        if trimmed.is_empty() {
            // One blank line between blocks, however many the source has; none at the end.
            if !previous_blank && complete {
                out.push(Line::default());
            }
            previous_blank = true;
            continue;
        }
        previous_blank = false;
        if let Some((level, title)) = heading(trimmed) {
            let heading = theme.heading.add_modifier(Modifier::BOLD);
            let style = match level {
                1 => heading.add_modifier(Modifier::UNDERLINED),
                2 => heading,
                _ => heading.add_modifier(Modifier::ITALIC),
            };
            let spans = inline(title, base.patch(style), theme.code);
            out.extend(wrap(&spans, wide, &[], &[]));
        } else if is_rule(trimmed) {
            out.push(Line::from(Span::styled(
                "─".repeat(wide.min(40)),
                theme.gutter,
            )));
        } else if let Some((marker, rest)) = list_item(trimmed) {
            let indent = " ".repeat((line.len() - trimmed.len()).min(12));
            let first = vec![
                Span::raw(indent.clone()),
                Span::styled(marker.clone(), base.patch(theme.list_marker)),
            ];
            let hanging = vec![Span::raw(indent + &" ".repeat(text_width(&marker)))];
            out.extend(wrap(
                &inline(rest, base, theme.code),
                wide,
                &first,
                &hanging,
            ));
        } else if let Some(rest) = trimmed.strip_prefix('>') {
            let bar = vec![Span::styled("▎ ", theme.gutter)];
            let style = base.add_modifier(Modifier::ITALIC);
            out.extend(wrap(
                &inline(rest.trim_start(), style, theme.code),
                wide,
                &bar,
                &bar,
            ));
        } else {
            out.extend(wrap(&inline(line, base, theme.code), wide, &[], &[]));
        }
    }
    while out.last().is_some_and(|l| l.spans.is_empty()) {
        out.pop();
    }
    let (rows, previous_blank, open) = point;
    // The end took off lines before the point: next time starts over.
    if rows <= out.len() {
        *resume = Resume {
            seen,
            rows,
            width,
            base,
            theme: Some(theme_kind),
            previous_blank,
            open,
        };
    }
    kept
}

/// Renders the fenced block whose fence line is the line before `code_start`: all of it, or
/// from its code line `done` on (its top and the rows of the lines before are in `out`
/// already). Calls `point` with the start of the block's last line, the rows
/// before it and the block, when the block is still open. Returns where the source goes on.
fn fenced_block(
    text: &str,
    code_start: usize,
    done: Option<usize>,
    width: usize,
    out: &mut Vec<Line<'static>>,
    point: &mut dyn FnMut(usize, usize, OpenFence),
) -> usize {
    // The fence line: the one that ends just before `code_start`.
    let fence_line_start = text[..code_start.saturating_sub(1).min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let (fence_raw, _) = line_at(text, fence_line_start);
    let fence_line = fence_raw.strip_suffix('\r').unwrap_or(fence_raw);
    let Some((fence, lang)) = fence_open(fence_line.trim_start()) else {
        return text.len() + 1;
    };
    let mut code = Vec::new();
    let mut starts = Vec::new();
    let mut closed = false;
    let mut pos = code_start;
    while pos <= text.len() {
        let (raw, next) = line_at(text, pos);
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if fence_closes(line.trim_start(), fence) {
            closed = true;
            pos = next;
            break;
        }
        code.push(line);
        starts.push(pos);
        pos = next;
    }
    let last_rows = code_block(out, lang, &code, closed, width, done);
    if !closed && let (Some(&start), Some(rows)) = (starts.last(), last_rows) {
        point(
            start,
            rows,
            OpenFence {
                code_start,
                done: code.len() - 1,
            },
        );
    }
    pos
}
/// Renders `text` as it is (no markdown), wrapped at `width` columns.
#[must_use]
pub fn render_plain(text: &str, width: u16, style: Style) -> Vec<Line<'static>> {
    let width = usize::from(width.max(4));
    let mut out = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        out.extend(wrap(&[(line.to_owned(), style)], width, &[], &[]));
    }
    out
}

/// `` ```rust `` → (fence, "rust").
fn fence_open(trimmed: &str) -> Option<(&str, &str)> {
    for mark in ["```", "~~~"] {
        if trimmed.starts_with(mark) {
            let first = trimmed.chars().next()?;
            let len = trimmed.len() - trimmed.trim_start_matches(first).len();
            let (fence, info) = trimmed.split_at(len);
            // A backtick fence's info string cannot contain backticks (CommonMark).
            if first == '`' && info.contains('`') {
                return None;
            }
            return Some((fence, info.trim()));
        }
    }
    None
}

fn fence_closes(trimmed: &str, fence: &str) -> bool {
    let Some(first) = fence.chars().next() else {
        return false;
    };
    let run = trimmed.len() - trimmed.trim_start_matches(first).len();
    run >= fence.len() && trimmed[run..].trim().is_empty()
}

fn heading(trimmed: &str) -> Option<(usize, &str)> {
    let level = trimmed.len() - trimmed.trim_start_matches('#').len();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &trimmed[level..];
    if rest.is_empty() {
        return Some((level, ""));
    }
    rest.strip_prefix(' ')
        .map(|title| (level, title.trim().trim_end_matches('#').trim_end()))
}

fn is_rule(trimmed: &str) -> bool {
    let mut chars = trimmed.chars().filter(|c| !c.is_whitespace());
    let Some(first) = chars.next() else {
        return false;
    };
    matches!(first, '-' | '*' | '_')
        && trimmed.chars().filter(|c| !c.is_whitespace()).count() >= 3
        && chars.all(|c| c == first)
}

/// `- item` → ("• ", "item"); `12. item` → ("12. ", "item").
fn list_item(trimmed: &str) -> Option<(String, &str)> {
    for bullet in ["- ", "* ", "+ "] {
        if let Some(rest) = trimmed.strip_prefix(bullet) {
            return Some(("• ".to_owned(), rest));
        }
    }
    let digits = trimmed.len()
        - trimmed
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .len();
    if (1..=9).contains(&digits) {
        let rest = &trimmed[digits..];
        for close in [". ", ") "] {
            if let Some(text) = rest.strip_prefix(close) {
                return Some((format!("{}{close}", &trimmed[..digits]), text));
            }
        }
    }
    None
}

/// Renders a fenced block into `out`: its top and the rows of its code lines, or only the
/// rows from line `from` on (the top and the rows before are in `out` already); its bottom
/// when closed. Returns the number of lines in `out` before the rows of its last code line.
fn code_block(
    out: &mut Vec<Line<'static>>,
    lang: &str,
    code: &[&str],
    closed: bool,
    width: usize,
    from: Option<usize>,
) -> Option<usize> {
    let theme = theme::active();
    if from.is_none() {
        let top = if lang.is_empty() {
            "╭─".to_owned()
        } else {
            format!("╭─ {} ", sanitize(lang))
        };
        out.push(Line::from(Span::styled(top, theme.gutter)));
    }
    let highlighted = theme
        .code_theme
        .filter(|_| !lang.is_empty())
        .and_then(|code_theme| highlight(lang, code, closed, code_theme));
    let avail = width.saturating_sub(2).max(1);
    let bar = Span::styled("│ ", theme.gutter);
    let mut before_last = None;
    for (i, line) in code.iter().enumerate().skip(from.unwrap_or(0)) {
        if i + 1 == code.len() {
            before_last = Some(out.len());
        }
        match highlighted_line(highlighted.as_ref(), i, code.len(), closed) {
            // Already without control characters.
            Some(styled) => hard_wrap(out, &bar, styled, avail),
            None => hard_wrap(out, &bar, &[(sanitize(line), theme.code_block)], avail),
        }
    }
    if closed {
        out.push(Line::from(Span::styled("╰─", theme.gutter)));
    }
    before_last
}

/// The highlighted runs of line `i` of a block of `count` lines, if it was highlighted.
fn highlighted_line(
    block: Option<&HighlightedBlock>,
    i: usize,
    count: usize,
    closed: bool,
) -> Option<&StyledLine> {
    let block = block?;
    if let Some(line) = block.lines.get(i) {
        return Some(line);
    }
    if !closed && i + 1 == count {
        return block.partial.as_ref();
    }
    None
}

/// Adds styled runs as rows of at most `width` columns after `bar`, keeping every character;
/// an empty line is one row with the bar alone.
fn hard_wrap(
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

fn text_width(text: &str) -> usize {
    text.chars().map(|c| c.width().unwrap_or(0)).sum()
}

/// Inline markdown: `code`, **bold**, __bold__, *italic*, ~~strike~~, and `\` escapes. A marker
/// without its closing twin is shown as it is (a streaming answer may not have closed it yet).
fn inline(text: &str, base: Style, code: Style) -> Vec<(String, Style)> {
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
struct Word {
    pieces: Vec<(String, Style)>,
    width: usize,
    space: bool,
}

fn words(runs: &[(String, Style)]) -> Vec<Word> {
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
fn wrap(
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

struct Wrapper<'a> {
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

fn push_piece(line: &mut Vec<Span<'static>>, text: String, style: Style) {
    match line.last_mut() {
        Some(span) if span.style == style => span.content.to_mut().push_str(&text),
        _ => line.push(Span::styled(text, style)),
    }
}

fn trim_trailing_spaces(line: &mut Vec<Span<'static>>) {
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

fn spans_width(spans: &[Span<'_>]) -> usize {
    spans.iter().map(|s| text_width(&s.content)).sum()
}

/// Cached wrapped lines of one conversation entry, valid for one width, one version of the
/// entry's content and one theme. Only the entry that changes (the streaming answer) is wrapped again; every
/// other entry is wrapped once per terminal width.
#[derive(Debug, Default)]
pub struct RenderCache {
    inner: RefCell<Option<Cached>>,
}

#[derive(Debug)]
struct Cached {
    width: u16,
    version: u64,
    theme: ThemeKind,
    lines: Vec<Line<'static>>,
    /// Of an answer that streams: what lets the next version render only its tail.
    tail: Option<StreamTail>,
}

impl RenderCache {
    /// The number of lines at `width` for `version`, rendering with `render` if not cached.
    pub fn height(
        &self,
        width: u16,
        version: u64,
        render: impl FnOnce() -> Vec<Line<'static>>,
    ) -> usize {
        self.with_lines(width, version, render, <[Line<'static>]>::len)
    }

    /// Runs `f` on the lines at `width` for `version`, rendering with `render` if not cached.
    pub fn with_lines<R>(
        &self,
        width: u16,
        version: u64,
        render: impl FnOnce() -> Vec<Line<'static>>,
        f: impl FnOnce(&[Line<'static>]) -> R,
    ) -> R {
        let mut cache = self.inner.borrow_mut();
        let theme = theme::active_kind();
        let fresh = cache
            .as_ref()
            .is_some_and(|c| c.width == width && c.version == version && c.theme == theme);
        if !fresh {
            *cache = Some(Cached {
                width,
                version,
                theme,
                lines: render(),
                tail: None,
            });
        }
        match cache.as_ref() {
            Some(cached) => f(&cached.lines),
            None => f(&[]),
        }
    }

    /// [`RenderCache::height`] with [`RenderCache::with_lines_in_place`]'s `render`.
    pub fn height_in_place(
        &self,
        width: u16,
        version: u64,
        render: impl FnOnce(&mut Vec<Line<'static>>, &mut Option<StreamTail>),
    ) -> usize {
        self.with_lines_in_place(width, version, render, <[Line<'static>]>::len)
    }

    /// As [`RenderCache::with_lines`], but `render` updates the lines in place: when they are
    /// of an earlier version at the same width and theme, it gets them with what it kept
    /// beside them (see [`crate::ui::entry_lines_into`]); otherwise it gets none.
    pub fn with_lines_in_place<R>(
        &self,
        width: u16,
        version: u64,
        render: impl FnOnce(&mut Vec<Line<'static>>, &mut Option<StreamTail>),
        f: impl FnOnce(&[Line<'static>]) -> R,
    ) -> R {
        let mut cache = self.inner.borrow_mut();
        let theme = theme::active_kind();
        // Checked in place: this runs for every entry at every frame.
        let reusable = cache
            .as_ref()
            .is_some_and(|c| c.width == width && c.theme == theme);
        if !reusable {
            *cache = Some(Cached {
                width,
                version: version.wrapping_add(1),
                theme,
                lines: Vec::new(),
                tail: None,
            });
        }
        let Some(cached) = cache.as_mut() else {
            return f(&[]);
        };
        if cached.version != version {
            render(&mut cached.lines, &mut cached.tail);
            cached.version = version;
        }
        f(&cached.lines)
    }

    /// Forgets the cached lines.
    pub fn clear(&self) {
        self.inner.borrow_mut().take();
    }
}

impl Clone for RenderCache {
    /// A clone starts empty: cached lines are cheap to rebuild and not worth copying.
    fn clone(&self) -> Self {
        Self::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(lines: &[Line<'_>]) -> Vec<String> {
        lines
            .iter()
            .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect()
    }

    #[test]
    fn wraps_words_and_breaks_long_ones() {
        let lines = render_plain("the quick brown fox jumps", 10, Style::new());
        assert_eq!(text(&lines), ["the quick", "brown fox", "jumps"]);
        let lines = render_plain("abcdefghijklmnop", 6, Style::new());
        assert_eq!(text(&lines), ["abcdef", "ghijkl", "mnop"]);
    }

    #[test]
    fn wide_characters_count_twice() {
        let lines = render_plain("日本語のテキスト", 8, Style::new());
        assert_eq!(text(&lines), ["日本語の", "テキスト"]);
    }

    #[test]
    fn inline_styles() {
        let code = Style::new().fg(ratatui::style::Color::LightYellow);
        let runs = inline(
            "a **bold** and *it* and `x*y` and snake_case_name",
            Style::new(),
            code,
        );
        let bold = runs.iter().find(|(t, _)| t == "bold").map(|(_, s)| *s);
        assert_eq!(bold.map(|s| s.add_modifier), Some(Modifier::BOLD));
        let it = runs.iter().find(|(t, _)| t == "it").map(|(_, s)| *s);
        assert_eq!(it.map(|s| s.add_modifier), Some(Modifier::ITALIC));
        assert!(runs.iter().any(|(t, s)| t == "x*y" && s.fg == code.fg));
        assert!(runs.iter().any(|(t, _)| t.contains("snake_case_name")));
    }

    #[test]
    fn unclosed_markers_stay_literal() {
        let runs = inline("2 * 3 and **not closed", Style::new(), Style::new());
        let all: String = runs.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(all, "2 * 3 and **not closed");
    }

    #[test]
    fn blocks() {
        let md = "# Title\n\nSome text.\n\n- one\n- two long item here\n\n```rust\nfn main() {}\n```\n\n> quoted\n\n---";
        let lines = render_markdown(md, 16, Style::new());
        assert_eq!(
            text(&lines),
            [
                "Title",
                "",
                "Some text.",
                "",
                "• one",
                "• two long item",
                "  here",
                "",
                "╭─ rust ",
                "│ fn main() {}",
                "╰─",
                "",
                "▎ quoted",
                "",
                "────────────────",
            ]
        );
    }

    #[test]
    fn unclosed_fence_is_an_open_code_block() {
        let lines = render_markdown("```\nlet x = 1;", 20, Style::new());
        assert_eq!(text(&lines), ["╭─", "│ let x = 1;"]);
    }

    #[test]
    fn control_characters_are_dropped() {
        let lines = render_plain("a\u{1b}[31mb", 20, Style::new());
        assert_eq!(text(&lines), ["a[31mb"]);
    }

    #[test]
    fn cache_renders_once_per_width_and_version() {
        let cache = RenderCache::default();
        let mut calls = 0;
        for _ in 0..3 {
            cache.height(10, 1, || {
                calls += 1;
                vec![Line::from("x")]
            });
        }
        assert_eq!(calls, 1);
        cache.height(11, 1, || {
            calls += 1;
            Vec::new()
        });
        assert_eq!(calls, 2);
    }
}
