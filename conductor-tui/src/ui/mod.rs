//! Rendering: the conversation, the input box, the status bar and the picker, drawn from
//! `&App` (the state never changes here, except the view size that scrolling reads).
//!
//! The conversation is drawn from per-entry caches of wrapped lines (see
//! [`crate::markdown::RenderCache`]): a frame sums cached heights and copies only the visible
//! lines, so its cost does not grow with the length of the conversation.

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Widget};
use unicode_width::UnicodeWidthStr;

use crate::app::{match_span, searched_part};
use conductor_core::text::one_line;
use conductor_core::{Processor, Role};

use crate::app::{
    App, Badge, ChatEntry, Entry, EntryKind, MessageState, Notice, NoticeLevel, Phase, Picker, View,
};
use crate::codeblocks::{BlockCounter, code_blocks};
use crate::markdown::{Resume, render_markdown, render_markdown_into, render_plain};
use crate::theme;

mod entries;
mod overlays;

pub use entries::{StreamTail, entry_lines, entry_lines_into};
use overlays::{render_picker, render_search};

/// Hints, placeholders and separators, in the active theme.
fn dim() -> Style {
    theme::active().dim
}
const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
/// Most rows the input box grows to (it scrolls beyond).
const INPUT_MAX_ROWS: u16 = 10;

/// Draws the whole screen and places the cursor.
pub fn draw(frame: &mut Frame<'_>, app: &App) {
    let area = frame.area();
    let [conversation, input, status] = layout(app, area);
    let buf = frame.buffer_mut();
    render_conversation(app, conversation, buf);
    let cursor = render_input(app, input, buf);
    render_more_lines(app, input, buf);
    render_status(app, status, buf);
    if let Some(picker) = &app.picker {
        render_picker(picker, area, buf);
    } else if app.search.is_some() {
        render_search(app, conversation, buf);
    } else if let Some(cursor) = cursor {
        frame.set_cursor_position(cursor);
    }
}

impl Widget for &App {
    /// The screen without the terminal cursor (for tests and benches that render to a buffer).
    fn render(self, area: Rect, buf: &mut Buffer) {
        let [conversation, input, status] = layout(self, area);
        render_conversation(self, conversation, buf);
        render_input(self, input, buf);
        render_more_lines(self, input, buf);
        render_status(self, status, buf);
        if let Some(picker) = &self.picker {
            render_picker(picker, area, buf);
        } else if self.search.is_some() {
            render_search(self, conversation, buf);
        }
    }
}

fn layout(app: &App, area: Rect) -> [Rect; 3] {
    let inner_width = area.width.saturating_sub(2);
    let (rows, _) = app.input.layout(inner_width);
    let max_rows = INPUT_MAX_ROWS.min((area.height / 3).max(1));
    let rows = u16::try_from(rows.len())
        .unwrap_or(u16::MAX)
        .clamp(1, max_rows);
    Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(rows + 2),
        Constraint::Length(1),
    ])
    .areas(area)
}

// ---- conversation ----

fn render_conversation(app: &App, area: Rect, buf: &mut Buffer) {
    if area.is_empty() {
        return;
    }
    if app.entries.is_empty() {
        app.view.set(View {
            total: 0,
            height: usize::from(area.height),
            top: 0,
        });
        render_welcome(app, area, buf);
        return;
    }
    let width = area.width;
    // One blank line between entries.
    let heights: Vec<usize> = app
        .entries
        .iter()
        .map(|entry| {
            entry
                .cache
                .height_in_place(width, entry.version(), |lines, tail| {
                    entry_lines_into(entry, width, lines, tail);
                })
                + 1
        })
        .collect();
    let total = heights.iter().sum::<usize>().saturating_sub(1);
    let height = usize::from(area.height);
    let mut view = View {
        total,
        height,
        top: 0,
    };
    view.top = app.scroll.map_or(view.max_top(), |t| t.min(view.max_top()));
    app.view.set(view);

    // Global line g is drawn at row g - top.
    let bottom = view.top + height;
    let mut start = 0;
    for (entry, h) in app.entries.iter().zip(&heights) {
        if start >= bottom {
            break;
        }
        if start + h > view.top {
            entry.cache.with_lines_in_place(
                width,
                entry.version(),
                |lines, tail| entry_lines_into(entry, width, lines, tail),
                |lines| {
                    let skip = view.top.saturating_sub(start);
                    for (i, line) in lines.iter().enumerate().skip(skip) {
                        let g = start + i;
                        if g >= bottom {
                            break;
                        }
                        let y = area.y + u16::try_from(g - view.top).unwrap_or(u16::MAX);
                        buf.set_line(area.x, y, line, width);
                    }
                },
            );
        }
        start += h;
    }
}

/// "↓ N more lines · Ctrl+End" while the view is pinned above the end: drawn in the top border
/// of the input box, right-aligned, so that it hides no line of the conversation.
fn render_more_lines(app: &App, input: Rect, buf: &mut Buffer) {
    let view = app.view.get();
    if app.scroll.is_none() || view.top >= view.max_top() || input.height == 0 {
        return;
    }
    let below = view.max_top() - view.top;
    let text = format!(" ↓ {below} more lines · Ctrl+End ");
    // Beside the rounded corner and the " Message " title.
    let room = usize::from(input.width.saturating_sub(12));
    if text.width() > room {
        return;
    }
    let w = u16::try_from(text.width()).unwrap_or(0);
    let x = input.right().saturating_sub(w + 1);
    buf.set_stringn(
        x,
        input.y,
        &text,
        usize::from(w),
        theme::active().scroll_hint,
    );
}

fn render_welcome(app: &App, area: Rect, buf: &mut Buffer) {
    let lines = [
        Line::from("conductor".bold()),
        Line::from(vec![
            Span::styled(
                capitalize(&app.info.personality),
                theme::active().assistant.bold(),
            ),
            Span::raw(" on "),
            Span::raw(one_line(&app.info.model).into_owned()),
        ]),
        Line::default(),
        Line::styled("Type a question and press Enter.", dim()),
        Line::styled("/help lists the commands and keys.", dim()),
    ];
    let top = area.y + area.height.saturating_sub(5) / 2;
    for (i, line) in lines.iter().enumerate() {
        let y = top + u16::try_from(i).unwrap_or(0);
        if y >= area.bottom() {
            break;
        }
        let w = u16::try_from(line.width())
            .unwrap_or(u16::MAX)
            .min(area.width);
        let x = area.x + (area.width - w) / 2;
        buf.set_line(x, y, line, w);
    }
}

/// `name` with its first letter in capitals, on one line without control characters.
fn capitalize(name: &str) -> String {
    let name = one_line(name);
    let mut chars = name.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

// ---- input ----

fn render_input(app: &App, area: Rect, buf: &mut Buffer) -> Option<Position> {
    if area.is_empty() {
        return None;
    }
    let busy = app.busy();
    let border = if busy { dim() } else { theme::active().user };
    // The longest hint that fits beside the corners and the title.
    let hint = [
        " Enter send · Alt+Enter new line · Esc stop · /help ",
        " Enter send · Alt+Enter new line · /help ",
        " Enter send · /help ",
    ]
    .into_iter()
    .find(|h| h.width() + 4 <= usize::from(area.width))
    .unwrap_or("");
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(border)
        .title(Line::from(" Message ").style(theme::active().user))
        .title_bottom(Line::from(hint).style(dim()).right_aligned());
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.is_empty() {
        return None;
    }
    if app.input.is_empty() {
        let placeholder = format!("Ask {} anything…", capitalize(&app.info.personality));
        buf.set_stringn(
            inner.x,
            inner.y,
            placeholder,
            usize::from(inner.width),
            dim(),
        );
        return Some(Position::new(inner.x, inner.y));
    }
    let (rows, (row, col)) = app.input.layout(inner.width);
    let visible = usize::from(inner.height);
    let first = row.saturating_sub(visible.saturating_sub(1));
    for (i, text) in rows.iter().skip(first).take(visible).enumerate() {
        let y = inner.y + u16::try_from(i).unwrap_or(0);
        buf.set_stringn(inner.x, y, text, usize::from(inner.width), Style::new());
    }
    let x = inner.x
        + u16::try_from(col)
            .unwrap_or(0)
            .min(inner.width.saturating_sub(1));
    let y = inner.y + u16::try_from(row - first).unwrap_or(0);
    Some(Position::new(x, y))
}

// ---- status bar ----

/// The style of the GPU badge: green on the GPU, amber split, red on the CPU (in the active
/// theme; without colours, plain, underlined and reversed).
#[must_use]
pub fn badge_style(badge: Badge) -> Style {
    let theme = theme::active();
    let colour = match badge {
        Badge::Loaded(Processor::Gpu) => theme.badge_gpu,
        Badge::Loaded(Processor::Split { .. }) => theme.badge_split,
        Badge::Loaded(Processor::Cpu) | Badge::Unreachable => theme.badge_cpu,
        Badge::Unknown | Badge::NotLoaded => theme.badge_unknown,
    };
    colour.add_modifier(Modifier::BOLD)
}

fn render_status(app: &App, area: Rect, buf: &mut Buffer) {
    if area.is_empty() {
        return;
    }
    // (priority, spans): when the bar is too narrow, the highest numbers go first.
    let host = app
        .info
        .host
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .to_owned();
    let mut segments: Vec<(u8, Vec<Span<'static>>)> = vec![
        (6, vec![Span::raw(one_line(&host).into_owned())]),
        // A model name can come from the server (the `/model` picker).
        (1, vec![Span::raw(one_line(&app.info.model).into_owned())]),
        (
            3,
            vec![Span::styled(
                one_line(&app.info.personality).into_owned(),
                theme::active().assistant,
            )],
        ),
        (
            0,
            vec![
                Span::styled(app.badge.label(), badge_style(app.badge)),
                Span::styled(format!(" {}", app.info.policy), dim()),
            ],
        ),
    ];
    if let Some(stats) = app.stats {
        let tps = match stats.tokens_per_second {
            Some(tps) if tps < 100.0 => format!("{tps:.1} tok/s"),
            Some(tps) => format!("{tps:.0} tok/s"),
            None => "– tok/s".to_owned(),
        };
        segments.push((4, vec![Span::raw(tps)]));
        let ttft = match stats.ttft {
            Some(t) if t.as_millis() < 1_000 => format!("TTFT {} ms", t.as_millis()),
            Some(t) => format!("TTFT {:.1} s", t.as_secs_f64()),
            None => "TTFT –".to_owned(),
        };
        segments.push((5, vec![Span::raw(ttft)]));
    }
    let spinner = SPINNER[usize::try_from(app.ticks / 4).unwrap_or(0) % SPINNER.len()];
    let activity = if let Some(hint) = &app.status_hint {
        Some(hint.clone())
    } else {
        match app.phase {
            Phase::Waiting => Some(format!("{spinner} waiting for the model")),
            Phase::Streaming => Some(format!("{spinner} answering")),
            Phase::Idle if app.checking => Some(format!("{spinner} checking the model")),
            Phase::Idle => None,
        }
    };
    let right = activity.map(|text| Span::styled(format!("{text} "), theme::active().activity));
    let right_width = right.as_ref().map_or(0, |r| r.width() + 1);
    let width = |segments: &[(u8, Vec<Span<'static>>)]| {
        1 + segments
            .iter()
            .map(|(_, spans)| spans.iter().map(Span::width).sum::<usize>())
            .sum::<usize>()
            + 3 * segments.len().saturating_sub(1)
    };
    let available = usize::from(area.width);
    while width(&segments) + right_width > available {
        // The policy goes before the badge itself.
        if let Some((_, badge)) = segments.iter_mut().find(|(p, _)| *p == 0)
            && badge.len() > 1
        {
            badge.truncate(1);
            continue;
        }
        let Some(drop) = segments
            .iter()
            .enumerate()
            .filter(|(_, (p, _))| *p > 0)
            .max_by_key(|(_, (p, _))| *p)
            .map(|(i, _)| i)
        else {
            break;
        };
        segments.remove(drop);
    }
    let mut spans = vec![Span::raw(" ")];
    for (i, (_, segment)) in segments.into_iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" │ ", dim()));
        }
        spans.extend(segment);
    }
    let left = Line::from(spans);
    buf.set_line(area.x, area.y, &left, area.width);
    if let Some(right) = right {
        let w = u16::try_from(right.width()).unwrap_or(u16::MAX);
        if left.width() + usize::from(w) < available {
            buf.set_span(area.right() - w, area.y, &right, w);
        }
    }
}
