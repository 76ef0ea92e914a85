//! Terminal input: keys, paste, the mouse wheel, and scrolling the conversation.

use crossterm::event::{
    Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEventKind,
};

use super::{Action, App};

/// Lines scrolled by one turn of the mouse wheel.
const WHEEL_LINES: usize = 3;

/// The size of the conversation view at the last frame (set while rendering, read by
/// scrolling).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct View {
    /// Lines of the whole conversation at the current width.
    pub total: usize,
    /// Lines visible.
    pub height: usize,
    /// The first visible line.
    pub top: usize,
}

impl View {
    /// The top line when showing the end.
    #[must_use]
    pub fn max_top(&self) -> usize {
        self.total.saturating_sub(self.height)
    }
}

impl App {
    pub(super) fn terminal(&mut self, event: TermEvent) {
        match event {
            TermEvent::Key(key) if key.kind != KeyEventKind::Release => self.key(key),
            TermEvent::Paste(text) => {
                if let Some(search) = &mut self.search {
                    search.query.push_str(&text.replace(['\r', '\n'], " "));
                    search.refilter();
                } else if let Some(picker) = &mut self.picker {
                    picker.filter.push_str(text.trim());
                    picker.selected = 0;
                } else {
                    self.input.insert_str(&text);
                }
                self.dirty = true;
            }
            TermEvent::Mouse(mouse) => match mouse.kind {
                MouseEventKind::ScrollUp => self.scroll_up(WHEEL_LINES),
                MouseEventKind::ScrollDown => self.scroll_down(WHEEL_LINES),
                _ => {}
            },
            TermEvent::Resize(..) => self.dirty = true,
            _ => {}
        }
    }

    fn key(&mut self, key: KeyEvent) {
        self.dirty = true;
        self.status_hint = None;
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let is_ctrl_c = ctrl && key.code == KeyCode::Char('c');
        if !is_ctrl_c {
            self.ctrl_c_armed = false;
        }
        if self.picker.is_some() {
            self.picker_key(key);
            return;
        }
        if self.search.is_some() {
            self.search_key(key);
            return;
        }
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        let shift = key.modifiers.contains(KeyModifiers::SHIFT);
        // Ctrl+X Ctrl+E opens the editor, as in bash; Ctrl+X then any other key is that key.
        if std::mem::take(&mut self.ctrl_x_armed) && ctrl && key.code == KeyCode::Char('e') {
            self.edit();
            return;
        }
        match key.code {
            KeyCode::Char('c') if ctrl => self.ctrl_c(),
            KeyCode::Char('d') if ctrl && self.input.is_empty() => self.quit(),
            KeyCode::Char('r') if ctrl => self.open_search(),
            KeyCode::Char('r') if alt => self.retry(),
            KeyCode::Char('x') if ctrl => {
                self.ctrl_x_armed = true;
                self.hint("Ctrl+X: Ctrl+E opens your editor");
            }
            KeyCode::Char('j') if ctrl => self.input.insert('\n'),
            KeyCode::Char('w') if ctrl => self.input.delete_word(),
            KeyCode::Char('u') if ctrl => self.input.delete_to_line_start(),
            KeyCode::Char('a') if ctrl => self.input.home(),
            KeyCode::Char('e') if ctrl => self.input.end(),
            KeyCode::Char('l') if ctrl => self.scroll = None,
            KeyCode::Char(c) if !ctrl => self.input.insert(c),
            KeyCode::Enter if alt || shift => self.input.insert('\n'),
            KeyCode::Enter => self.submit(),
            KeyCode::Esc => self.escape(),
            KeyCode::Backspace => self.input.backspace(),
            KeyCode::Delete => self.input.delete(),
            KeyCode::Left => self.input.left(),
            KeyCode::Right => self.input.right(),
            KeyCode::Home if ctrl => self.scroll = Some(0),
            KeyCode::End if ctrl => self.scroll = None,
            KeyCode::Home => self.input.home(),
            KeyCode::End => self.input.end(),
            KeyCode::Up if ctrl || shift => self.scroll_up(1),
            KeyCode::Down if ctrl || shift => self.scroll_down(1),
            KeyCode::Up => {
                if self.input.on_first_line() {
                    if let Some(text) = self.history.older(self.input.text()) {
                        let text = text.to_owned();
                        self.input.set(&text);
                    }
                } else {
                    self.input.up();
                }
            }
            KeyCode::Down => {
                if self.input.on_last_line() && self.history.browsing() {
                    if let Some(text) = self.history.newer() {
                        let text = text.to_owned();
                        self.input.set(&text);
                    }
                } else {
                    self.input.down();
                }
            }
            KeyCode::PageUp => self.scroll_up(self.page()),
            KeyCode::PageDown => self.scroll_down(self.page()),
            KeyCode::Tab => self.complete_command(),
            _ => {}
        }
    }

    fn ctrl_c(&mut self) {
        if self.busy() {
            self.actions.push(Action::Cancel);
        } else if !self.input.is_empty() {
            self.input.take();
        } else if self.ctrl_c_armed {
            self.quit();
        } else {
            self.ctrl_c_armed = true;
            self.hint("press Ctrl+C again to quit");
        }
    }

    fn escape(&mut self) {
        if self.busy() {
            self.actions.push(Action::Cancel);
        } else if self.checking {
            self.checking = false;
            self.actions.push(Action::Cancel);
            self.check_stopped();
        } else if self.pull.is_some() {
            self.cancel_pull();
        } else if self.scroll.is_some() {
            self.scroll = None;
        }
    }

    fn page(&self) -> usize {
        self.view.get().height.saturating_sub(2).max(1)
    }

    /// Scrolls towards the start of the conversation.
    pub fn scroll_up(&mut self, lines: usize) {
        let view = self.view.get();
        let top = self.scroll.unwrap_or(view.max_top()).min(view.max_top());
        self.scroll = Some(top.saturating_sub(lines));
        self.dirty = true;
    }

    /// Scrolls towards the end; reaching it follows new text again.
    pub fn scroll_down(&mut self, lines: usize) {
        if let Some(top) = self.scroll {
            let top = top + lines;
            self.scroll = (top < self.view.get().max_top()).then_some(top);
            self.dirty = true;
        }
    }
}
