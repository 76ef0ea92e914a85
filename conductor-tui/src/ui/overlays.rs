//! What is drawn over the conversation: the Ctrl+R history search and the pickers.

// The drawing vocabulary (ratatui, the app's types, the theme) is the parent's.
use super::*;

// ---- history search ----

/// Most matches the Ctrl+R box lists.
const SEARCH_ROWS: usize = 6;

/// The Ctrl+R box, at the bottom of the conversation: the query, then the matches, newest
/// first, the chosen one highlighted.
pub(super) fn render_search(app: &App, area: Rect, buf: &mut Buffer) {
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
    let inner = framed(
        popup,
        buf,
        theme::active().user,
        " History search ".to_owned(),
        " Ctrl+R older · Enter use · Esc cancel ",
    );
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

pub(super) fn render_picker(picker: &Picker, area: Rect, buf: &mut Buffer) {
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
    let inner = framed(
        popup,
        buf,
        theme::active().assistant,
        format!(" {} ", picker.kind.title()),
        " ↑↓ move · Enter choose · Esc close · type to filter ",
    );
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

/// Clears `popup` and draws the rounded frame every overlay has: its title in bold at the
/// top, its keys dimmed at the bottom right. Returns the area inside the frame.
fn framed(popup: Rect, buf: &mut Buffer, border: Style, title: String, keys: &str) -> Rect {
    Clear.render(popup, buf);
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(border)
        .title(Line::from(title).bold())
        .title_bottom(Line::from(keys.to_owned()).style(dim()).right_aligned());
    let inner = block.inner(popup);
    block.render(popup, buf);
    inner
}
