//! The terminal while the UI owns it: raw mode, the alternate screen, mouse capture, bracketed
//! paste and the keyboard protocol, given back on drop and on a panic.

use std::io::stdout;

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    KeyboardEnhancementFlags, PopKeyboardEnhancementFlags, PushKeyboardEnhancementFlags,
};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};

/// Restores the terminal when dropped (the panic hook covers panics).
pub(crate) struct TerminalGuard {
    pub(crate) terminal: ratatui::DefaultTerminal,
}

impl TerminalGuard {
    pub(crate) fn enter() -> std::io::Result<Self> {
        install_panic_hook();
        // After our hook, so that ratatui's runs first on a panic (it restores the terminal,
        // then calls ours, which undoes the extras).
        let terminal = ratatui::try_init()?;
        let guard = Self { terminal };
        enable_extras()?;
        Ok(guard)
    }

    /// Gives the terminal to another program (the user's editor): the main screen, cooked
    /// mode, no mouse reporting.
    pub(crate) fn suspend(&mut self) -> std::io::Result<()> {
        undo_extras();
        execute!(stdout(), LeaveAlternateScreen, crossterm::cursor::Show)?;
        disable_raw_mode()
    }

    /// Takes the terminal back after [`TerminalGuard::suspend`] and redraws everything on the
    /// next frame.
    pub(crate) fn resume(&mut self) -> std::io::Result<()> {
        enable_raw_mode()?;
        execute!(stdout(), EnterAlternateScreen)?;
        enable_extras()?;
        self.terminal.clear()
    }
}

fn enable_extras() -> std::io::Result<()> {
    execute!(stdout(), EnableMouseCapture, EnableBracketedPaste)?;
    if matches!(
        crossterm::terminal::supports_keyboard_enhancement(),
        Ok(true)
    ) {
        // Tells Shift+Enter from Enter in terminals that speak the kitty protocol.
        execute!(
            stdout(),
            PushKeyboardEnhancementFlags(KeyboardEnhancementFlags::DISAMBIGUATE_ESCAPE_CODES)
        )?;
    }
    Ok(())
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        undo_extras();
        let _ = ratatui::try_restore();
    }
}

fn undo_extras() {
    let _ = execute!(
        stdout(),
        PopKeyboardEnhancementFlags,
        DisableBracketedPaste,
        DisableMouseCapture
    );
}

fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        undo_extras();
        previous(info);
    }));
}
