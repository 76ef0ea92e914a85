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

/// The lines of one entry at `width`: a header, then the indented body.
#[must_use]
pub fn entry_lines(entry: &Entry, width: u16) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    entry_lines_into(entry, width, &mut lines, &mut None);
    lines
}

/// What is kept beside the cached lines of an answer that streams, so that a token renders
/// only the tail of the answer again (from the last point of its source that cannot change,
/// see [`render_markdown_into`]) instead of the whole of it, every frame.
#[derive(Debug, Default)]
pub struct StreamTail {
    /// The body as the markdown renderer left it: not indented, code blocks not numbered.
    body: Vec<Line<'static>>,
    resume: Resume,
    /// Where the body starts in the entry's lines (after the header and the thinking).
    body_start: usize,
    /// The length of the thinking text the lines were made with.
    thinking: usize,
    /// Whether the code blocks' tops carry their numbers.
    numbered: bool,
    /// The line that ends with the cursor.
    cursor: Option<usize>,
    /// The code blocks in the text so far, counted as it grows.
    blocks: BlockCounter,
    /// The rows of `body` that are tops of code blocks, in order.
    tops: Vec<usize>,
}

impl StreamTail {
    /// Forgets the block tops from row `kept` of the body on, and finds those in the rows
    /// after it; returns how many tops come before `kept`. `None` when the body is shorter
    /// than `kept`.
    fn recount_tops(&mut self, kept: usize) -> Option<usize> {
        let new = self.body.get(kept..)?;
        let before = self.tops.partition_point(|&row| row < kept);
        self.tops.truncate(before);
        self.tops.extend(
            new.iter()
                .enumerate()
                .filter(|(_, l)| is_block_top(l))
                .map(|(i, _)| kept + i),
        );
        Some(before)
    }
}

/// The lines of one entry at `width`, into `lines`. For an answer that streams, `lines` and
/// `tail` may hold what an earlier call made of it (at this width and theme): only its tail is
/// rendered again, and the lines come out the same as rendered whole.
pub fn entry_lines_into(
    entry: &Entry,
    width: u16,
    lines: &mut Vec<Line<'static>>,
    tail: &mut Option<StreamTail>,
) {
    match entry.kind() {
        EntryKind::Message(message)
            if message.role == Role::Assistant
                && message.state == MessageState::Streaming
                && !message.content.is_empty() =>
        {
            streaming_lines(message, width, lines, tail);
        }
        EntryKind::Message(message) => {
            *tail = None;
            *lines = message_lines(message, width);
        }
        EntryKind::Notice(notice) => {
            *tail = None;
            *lines = notice_lines(notice, width);
        }
    }
}

/// An answer that streams: [`message_lines`], going on from `tail` when it can.
fn streaming_lines(
    message: &ChatEntry,
    width: u16,
    lines: &mut Vec<Line<'static>>,
    tail: &mut Option<StreamTail>,
) {
    let body_width = width.saturating_sub(2);
    if let Some(state) = tail.as_mut().filter(|s| {
        s.thinking == message.thinking.len() && s.body_start + s.body.len() == lines.len()
    }) {
        if let Some(line) = state.cursor.take().and_then(|row| lines.get_mut(row)) {
            line.spans.pop();
        }
        let kept = render_markdown_into(
            &message.content,
            body_width,
            Style::new(),
            &mut state.body,
            &mut state.resume,
        );
        if kept == 0 {
            // Rendered from the start (maybe another text): counted from the start too.
            state.blocks = BlockCounter::default();
        }
        let blocks = state.blocks.count(&message.content);
        // Otherwise (not expected: the renderer keeps at most the lines it had) all is made
        // again below.
        if let Some(kept_tops) = state.recount_tops(kept)
            && let Some(new) = state.body.get(kept..)
        {
            let numbered = blocks != 0 && state.tops.len() == blocks;
            // Numbers given (or not) to the blocks kept stand; otherwise all is made again.
            if kept_tops == 0 || numbered == state.numbered {
                let mut new = new.to_vec();
                lines.truncate(state.body_start + kept);
                if numbered {
                    number_tops(&mut new, kept_tops);
                }
                lines.extend(indent(new, "  "));
                state.numbered = numbered;
                state.cursor = add_cursor(lines);
                return;
            }
        }
    }
    let mut state = StreamTail::default();
    *lines = message_head(message, body_width);
    state.body_start = lines.len();
    state.thinking = message.thinking.len();
    render_markdown_into(
        &message.content,
        body_width,
        Style::new(),
        &mut state.body,
        &mut state.resume,
    );
    let blocks = state.blocks.count(&message.content);
    let _ = state.recount_tops(0);
    let mut body = state.body.clone();
    state.numbered = blocks != 0 && state.tops.len() == blocks;
    if state.numbered {
        number_tops(&mut body, 0);
    }
    lines.extend(indent(body, "  "));
    state.cursor = add_cursor(lines);
    *tail = Some(state);
}

/// The cursor of an answer that streams, at the end of its last line; returns that line.
fn add_cursor(lines: &mut [Line<'static>]) -> Option<usize> {
    let row = lines.len().checked_sub(1)?;
    lines[row]
        .spans
        .push(Span::styled("▌", theme::active().assistant));
    Some(row)
}

/// The header of a message and its thinking, if any.
fn message_head(message: &ChatEntry, body_width: u16) -> Vec<Line<'static>> {
    let theme = theme::active();
    let (name, colour) = match message.role {
        Role::User => ("You".to_owned(), theme.user),
        Role::Assistant => (capitalize(&message.author), theme.assistant),
        Role::System => ("System".to_owned(), theme.other_role),
        Role::Tool => ("Tool".to_owned(), theme.other_role),
    };
    let mut header = vec![Span::styled(name, colour.add_modifier(Modifier::BOLD))];
    match &message.state {
        MessageState::Stopped => {
            header.push(Span::styled("  [stopped]", theme.warning));
        }
        // The reason is in the notice that follows.
        MessageState::Interrupted(_) => {
            header.push(Span::styled("  [interrupted]", theme.error));
        }
        MessageState::NotSent(_) => {
            header.push(Span::styled("  [not sent]", theme.error));
        }
        MessageState::Pending
        | MessageState::Sent
        | MessageState::Streaming
        | MessageState::Complete => {}
    }
    let mut lines = vec![Line::from(header)];
    if !message.thinking.is_empty() {
        let style = theme.dim.add_modifier(Modifier::ITALIC);
        lines.extend(indent(
            render_plain(&message.thinking, body_width, style),
            "  ",
        ));
    }
    lines
}

fn message_lines(message: &ChatEntry, width: u16) -> Vec<Line<'static>> {
    let body_width = width.saturating_sub(2);
    let theme = theme::active();
    let mut lines = message_head(message, body_width);
    let body = match message.role {
        Role::Assistant => number_code_blocks(
            render_markdown(&message.content, body_width, Style::new()),
            &message.content,
        ),
        _ => render_plain(&message.content, body_width, Style::new()),
    };
    if message.content.is_empty() && message.state == MessageState::Streaming {
        lines.push(Line::from(Span::styled("  …", theme.dim)));
    } else {
        lines.extend(indent(body, "  "));
    }
    if message.state == MessageState::Streaming
        && !message.content.is_empty()
        && let Some(last) = lines.last_mut()
    {
        last.spans.push(Span::styled("▌", theme.assistant));
    }
    lines
}

/// The top line of a code block's frame, as the renderer draws it (`╭─`, alone).
fn is_block_top(line: &Line<'_>) -> bool {
    line.spans.len() == 1
        && line
            .spans
            .first()
            .is_some_and(|s| s.content.starts_with("╭─"))
}

/// Adds `[N]` to the top of each code block drawn, the number `/copy N` takes. The blocks are
/// found in the text by [`code_blocks`] and on screen by the renderer's frame (`╭─`); when the
/// two counts differ (a line of prose that starts with `╭─`), no numbers are shown rather than
/// wrong ones.
fn number_code_blocks(mut lines: Vec<Line<'static>>, text: &str) -> Vec<Line<'static>> {
    let count = code_blocks(text).len();
    if count == 0 || lines.iter().filter(|l| is_block_top(l)).count() != count {
        return lines;
    }
    number_tops(&mut lines, 0);
    lines
}

/// Numbers the code blocks' tops in `lines`, the first `[before + 1]`.
fn number_tops(lines: &mut [Line<'static>], before: usize) {
    let mut n = before;
    for line in lines.iter_mut().filter(|l| is_block_top(l)) {
        n += 1;
        let gap = if line.spans[0].content.ends_with(' ') {
            ""
        } else {
            " "
        };
        line.spans.push(Span::styled(
            format!("{gap}[{n}]"),
            theme::active().gutter.add_modifier(Modifier::BOLD),
        ));
    }
}

fn notice_lines(notice: &Notice, width: u16) -> Vec<Line<'static>> {
    let theme = theme::active();
    let (colour, icon) = match notice.level {
        NoticeLevel::Info => (theme.info, "ℹ"),
        NoticeLevel::Warning => (theme.warning, "⚠"),
        NoticeLevel::Error => (theme.error, "✖"),
    };
    let bar = Span::styled("▌ ", colour);
    let inner = width.saturating_sub(4);
    let title_style = colour.add_modifier(Modifier::BOLD);
    let mut lines = Vec::new();
    for (i, line) in render_plain(&one_line(&notice.title), inner, title_style)
        .into_iter()
        .enumerate()
    {
        let lead = if i == 0 {
            Span::styled(format!("{icon} "), title_style)
        } else {
            Span::raw("  ")
        };
        let mut spans = vec![bar.clone(), lead];
        spans.extend(line.spans);
        lines.push(Line::from(spans));
    }
    for text in &notice.body {
        for line in render_plain(text, inner, Style::new()) {
            let mut spans = vec![bar.clone(), Span::raw("  ")];
            spans.extend(line.spans);
            lines.push(Line::from(spans));
        }
    }
    if let Some(hint) = &notice.hint {
        let style = Style::new().add_modifier(Modifier::ITALIC);
        for (i, line) in render_plain(hint, inner, style).into_iter().enumerate() {
            let lead = if i == 0 { "→ " } else { "  " };
            let mut spans = vec![bar.clone(), Span::styled(lead, colour)];
            spans.extend(line.spans);
            lines.push(Line::from(spans));
        }
    }
    lines
}

fn indent(lines: Vec<Line<'static>>, prefix: &'static str) -> impl Iterator<Item = Line<'static>> {
    lines.into_iter().map(move |mut line| {
        line.spans.insert(0, Span::raw(prefix));
        line
    })
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

// ---- history search ----

/// Most matches the Ctrl+R box lists.
const SEARCH_ROWS: usize = 6;

/// The Ctrl+R box, at the bottom of the conversation: the query, then the matches, newest
/// first, the chosen one highlighted.
fn render_search(app: &App, area: Rect, buf: &mut Buffer) {
    let Some(search) = &app.search else {
        return;
    };
    let found = app.search_match_count();
    let rows = found.clamp(1, SEARCH_ROWS);
    let height = u16::try_from(rows + 3).unwrap_or(u16::MAX).min(area.height);
    if height < 3 || area.width < 10 {
        return;
    }
    let popup = Rect {
        x: area.x,
        y: area.bottom() - height,
        width: area.width,
        height,
    };
    Clear.render(popup, buf);
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(theme::active().user)
        .title(Line::from(" History search ").bold())
        .title_bottom(
            Line::from(" Ctrl+R older · Enter use · Esc cancel ")
                .style(dim())
                .right_aligned(),
        );
    let inner = block.inner(popup);
    block.render(popup, buf);
    if inner.is_empty() {
        return;
    }
    let query = Line::from(vec![
        Span::styled("search: ", dim()),
        Span::raw(one_line(&search.query).into_owned()),
        Span::styled("▏", theme::active().user),
    ]);
    buf.set_line(inner.x, inner.y, &query, inner.width);
    let shown = usize::from(inner.height.saturating_sub(1));
    if found == 0 {
        buf.set_stringn(
            inner.x,
            inner.y + 1,
            "  (no earlier input matches)",
            usize::from(inner.width),
            dim(),
        );
        return;
    }
    let first = search.selected.saturating_sub(shown.saturating_sub(1));
    for i in (first..found).take(shown) {
        let Some(text) = app.search_match_at(i) else {
            break;
        };
        let y = inner.y + 1 + u16::try_from(i - first).unwrap_or(0);
        // Only the start of an input is searched, and a row shows less still.
        let mut line = highlight(&one_line(searched_part(text)), &search.query);
        line.spans.insert(0, Span::raw("  "));
        if i == search.selected {
            line = line.style(Style::new().add_modifier(Modifier::REVERSED));
            buf.set_style(Rect::new(inner.x, y, inner.width, 1), line.style);
        }
        buf.set_line(inner.x, y, &line, inner.width);
    }
}

/// `text` with the first case-insensitive occurrence of `query` in bold (found as the search
/// finds it, so that a character whose lower case is longer or shorter moves nothing).
fn highlight(text: &str, query: &str) -> Line<'static> {
    match match_span(text, query) {
        Some((start, end)) => Line::from(vec![
            Span::raw(text[..start].to_owned()),
            Span::styled(
                text[start..end].to_owned(),
                theme::active().user.add_modifier(Modifier::BOLD),
            ),
            Span::raw(text[end..].to_owned()),
        ]),
        None => Line::from(text.to_owned()),
    }
}

// ---- picker ----

fn render_picker(picker: &Picker, area: Rect, buf: &mut Buffer) {
    let visible = picker.visible();
    let width = area.width.saturating_sub(4).min(90);
    let wanted = u16::try_from(visible.len())
        .unwrap_or(u16::MAX)
        .saturating_add(3);
    let height = wanted
        .clamp(5, area.height.saturating_sub(2).max(5))
        .min(area.height);
    let popup = Rect {
        x: area.x + (area.width.saturating_sub(width)) / 2,
        y: area.y + (area.height.saturating_sub(height)) / 2,
        width,
        height,
    };
    Clear.render(popup, buf);
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(theme::active().assistant)
        .title(Line::from(format!(" {} ", picker.kind.title())).bold())
        .title_bottom(
            Line::from(" ↑↓ move · Enter choose · Esc close · type to filter ")
                .style(dim())
                .right_aligned(),
        );
    let inner = block.inner(popup);
    block.render(popup, buf);
    if inner.is_empty() {
        return;
    }
    let filter = Line::from(vec![
        Span::styled("filter: ", dim()),
        Span::raw(picker.filter.clone()),
    ]);
    buf.set_line(inner.x, inner.y, &filter, inner.width);
    let rows = usize::from(inner.height.saturating_sub(1));
    if rows == 0 {
        return;
    }
    let first = picker.selected.saturating_sub(rows - 1);
    let label_width = visible.iter().map(|i| i.label.width()).max().unwrap_or(0);
    for (i, item) in visible.iter().enumerate().skip(first).take(rows) {
        let y = inner.y + 1 + u16::try_from(i - first).unwrap_or(0);
        let mark = if item.current { "● " } else { "  " };
        let mut line = Line::from(vec![
            Span::styled(mark, theme::active().picker_mark),
            Span::styled(format!("{:<label_width$}", item.label), Style::new().bold()),
        ]);
        if !item.detail.is_empty() {
            line.spans
                .push(Span::styled(format!("  {}", item.detail), dim()));
        }
        if i == picker.selected {
            line = line.style(theme::active().selected);
            buf.set_style(Rect::new(inner.x, y, inner.width, 1), line.style);
        }
        buf.set_line(inner.x, y, &line, inner.width);
    }
    if visible.is_empty() {
        buf.set_stringn(
            inner.x,
            inner.y + 1,
            "  (nothing matches)",
            usize::from(inner.width),
            dim(),
        );
    }
}
