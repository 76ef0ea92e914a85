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

mod cache;
mod wrap;

pub use cache::RenderCache;
pub(crate) use wrap::sanitize;
use wrap::*;

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

#[cfg(test)]
mod tests;
