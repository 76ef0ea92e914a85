//! The lines of the conversation's entries: message headers and bodies (markdown, code blocks
//! numbered as drawn, the streaming cursor), notices; and the stream tail that lets a token
//! render only the end of a streaming answer again.

// The drawing vocabulary (ratatui, the app's types, the theme) is the parent's.
use super::*;

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
    // Which model wrote it: after a `/model` switch the conversation says who said what.
    if message.role == Role::Assistant
        && let Some(model) = &message.model
    {
        header.push(Span::styled(format!("  {}", one_line(model)), theme.dim));
    }
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
