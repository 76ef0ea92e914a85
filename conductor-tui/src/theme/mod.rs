//! The colours of the chat: a [`Theme`] for a dark terminal, one for a light terminal, and a
//! monochrome one for `NO_COLOR`; which one is in use, and how `auto` picks it ([`detect`]).
//!
//! Rendering reads the theme in use with [`active`]; [`set_active`] chooses it for the process
//! (once, before the UI starts) and [`scoped`] for what one thread renders (tests, embedding).
//! Cached lines carry the theme they were rendered with (see [`crate::markdown::RenderCache`]),
//! so a change of theme never shows stale colours.

pub mod detect;

use std::cell::Cell;
use std::sync::atomic::{AtomicU8, Ordering};

use ratatui::style::{Color, Modifier, Style};

/// Which palette.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThemeKind {
    /// For a dark background (the default).
    Dark,
    /// For a light background.
    Light,
    /// No colours at all (`NO_COLOR`): bold, italic, underline and reverse video only.
    Mono,
}

impl ThemeKind {
    /// The palette.
    #[must_use]
    pub fn theme(self) -> &'static Theme {
        match self {
            Self::Dark => &DARK,
            Self::Light => &LIGHT,
            Self::Mono => &MONO,
        }
    }

    /// `dark`, `light` or `mono`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dark => "dark",
            Self::Light => "light",
            Self::Mono => "mono",
        }
    }

    const fn to_u8(self) -> u8 {
        match self {
            Self::Dark => 0,
            Self::Light => 1,
            Self::Mono => 2,
        }
    }

    const fn from_u8(value: u8) -> Self {
        match value {
            1 => Self::Light,
            2 => Self::Mono,
            _ => Self::Dark,
        }
    }
}

/// The syntax-highlighting theme of code blocks (from two-face's set, see
/// [`crate::highlight`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodeTheme {
    /// One Half Dark.
    OneHalfDark,
    /// One Half Light.
    OneHalfLight,
}

/// The styles of everything the chat draws. Each field is the colour part of a style (plus a
/// modifier where the monochrome theme needs one to tell things apart); the UI adds bold and
/// the like where the layout calls for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Theme {
    /// Which palette this is.
    pub kind: ThemeKind,
    /// The user's name, the input box's border and title.
    pub user: Style,
    /// The assistant's name, the streaming cursor, the personality in the status bar, the
    /// picker's border.
    pub assistant: Style,
    /// The names of system and tool messages.
    pub other_role: Style,
    /// Hints, placeholders, separators, thinking text.
    pub dim: Style,
    /// Informational notices.
    pub info: Style,
    /// Warnings, and a message's `[stopped]` mark.
    pub warning: Style,
    /// Errors, and the `[interrupted]` and `[not sent]` marks.
    pub error: Style,
    /// Markdown headings.
    pub heading: Style,
    /// List bullets and numbers.
    pub list_marker: Style,
    /// Inline `code`.
    pub code: Style,
    /// Code blocks that are not highlighted (no language, an unknown one, no colours).
    pub code_block: Style,
    /// The frame around code blocks, quote bars and rules.
    pub gutter: Style,
    /// The activity on the right of the status bar (`answering`, hints).
    pub activity: Style,
    /// The "more lines below" marker over the conversation.
    pub scroll_hint: Style,
    /// The current item's mark in a picker.
    pub picker_mark: Style,
    /// The selected row of a picker.
    pub selected: Style,
    /// GPU badge: fully on the GPU.
    pub badge_gpu: Style,
    /// GPU badge: split between CPU and GPU.
    pub badge_split: Style,
    /// GPU badge: on the CPU, or the server down.
    pub badge_cpu: Style,
    /// GPU badge: not known yet, or the model not loaded.
    pub badge_unknown: Style,
    /// How code blocks are highlighted; `None`: not at all.
    pub code_theme: Option<CodeTheme>,
}

const fn fg(colour: Color) -> Style {
    Style::new().fg(colour)
}

/// For a dark background: the colours the chat has always had.
pub const DARK: Theme = Theme {
    kind: ThemeKind::Dark,
    user: fg(Color::Cyan),
    assistant: fg(Color::Magenta),
    other_role: fg(Color::Gray),
    dim: fg(Color::DarkGray),
    info: fg(Color::Blue),
    warning: fg(Color::Yellow),
    error: fg(Color::Red),
    heading: fg(Color::LightCyan),
    list_marker: fg(Color::LightBlue),
    code: fg(Color::LightYellow),
    code_block: fg(Color::LightYellow),
    gutter: fg(Color::DarkGray),
    activity: fg(Color::Yellow),
    scroll_hint: Style::new().fg(Color::Black).bg(Color::Yellow),
    picker_mark: fg(Color::Green),
    selected: Style::new().add_modifier(Modifier::REVERSED),
    badge_gpu: fg(Color::Green),
    badge_split: fg(Color::Yellow),
    badge_cpu: fg(Color::Red),
    badge_unknown: fg(Color::DarkGray),
    code_theme: Some(CodeTheme::OneHalfDark),
};

/// Dark orange (xterm 256 colour 130): amber that stays readable on white, where the basic
/// yellow does not.
const AMBER_ON_LIGHT: Color = Color::Indexed(130);
/// Dark green (xterm 256 colour 28).
const GREEN_ON_LIGHT: Color = Color::Indexed(28);

/// For a light background: no light yellow or cyan text, which white backgrounds wash out.
pub const LIGHT: Theme = Theme {
    kind: ThemeKind::Light,
    user: fg(Color::Blue),
    assistant: fg(Color::Magenta),
    other_role: fg(Color::DarkGray),
    dim: fg(Color::DarkGray),
    info: fg(Color::Blue),
    warning: fg(AMBER_ON_LIGHT),
    error: fg(Color::Red),
    heading: fg(Color::Blue),
    list_marker: fg(Color::Blue),
    code: fg(Color::Red),
    // The frame sets a block apart; a whole block in red would shout.
    code_block: Style::new(),
    gutter: fg(Color::DarkGray),
    activity: fg(AMBER_ON_LIGHT),
    scroll_hint: Style::new().fg(Color::White).bg(Color::Blue),
    picker_mark: fg(GREEN_ON_LIGHT),
    selected: Style::new().add_modifier(Modifier::REVERSED),
    badge_gpu: fg(GREEN_ON_LIGHT),
    badge_split: fg(AMBER_ON_LIGHT),
    badge_cpu: fg(Color::Red),
    badge_unknown: fg(Color::DarkGray),
    code_theme: Some(CodeTheme::OneHalfLight),
};

const fn attr(modifier: Modifier) -> Style {
    Style::new().add_modifier(modifier)
}

/// No colours (`NO_COLOR`, <https://no-color.org>): what colour told apart, attributes do.
pub const MONO: Theme = Theme {
    kind: ThemeKind::Mono,
    user: Style::new(),
    assistant: Style::new(),
    other_role: Style::new(),
    dim: attr(Modifier::DIM),
    info: Style::new(),
    warning: Style::new(),
    error: attr(Modifier::REVERSED),
    heading: Style::new(),
    list_marker: Style::new(),
    code: attr(Modifier::UNDERLINED),
    code_block: Style::new(),
    gutter: attr(Modifier::DIM),
    activity: Style::new(),
    scroll_hint: attr(Modifier::REVERSED),
    picker_mark: Style::new(),
    selected: attr(Modifier::REVERSED),
    badge_gpu: Style::new(),
    badge_split: attr(Modifier::UNDERLINED),
    badge_cpu: attr(Modifier::REVERSED),
    badge_unknown: attr(Modifier::DIM),
    code_theme: None,
};

static ACTIVE: AtomicU8 = AtomicU8::new(ThemeKind::Dark.to_u8());

thread_local! {
    static SCOPED: Cell<Option<ThemeKind>> = const { Cell::new(None) };
}

/// The theme rendering uses now: this thread's [`scoped`] one if any, else the process's
/// ([`set_active`]; dark until set).
#[must_use]
pub fn active() -> &'static Theme {
    active_kind().theme()
}

/// The kind of [`active`].
#[must_use]
pub fn active_kind() -> ThemeKind {
    SCOPED
        .with(Cell::get)
        .unwrap_or_else(|| ThemeKind::from_u8(ACTIVE.load(Ordering::Relaxed)))
}

/// Chooses the theme of the whole process (the chat sets it once, before its first frame).
pub fn set_active(kind: ThemeKind) {
    ACTIVE.store(kind.to_u8(), Ordering::Relaxed);
}

/// Runs `f` with `kind` as this thread's theme, whatever the process's is; the previous one
/// comes back afterwards, also if `f` panics.
pub fn scoped<R>(kind: ThemeKind, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<ThemeKind>);
    impl Drop for Restore {
        fn drop(&mut self) {
            SCOPED.with(|cell| cell.set(self.0));
        }
    }
    let _restore = Restore(SCOPED.with(|cell| cell.replace(Some(kind))));
    f()
}
