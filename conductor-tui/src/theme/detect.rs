//! Which theme the chat starts with: `NO_COLOR`, then the `chat.theme` setting, and for `auto`
//! the terminal's background: `COLORFGBG` when the terminal sets it, else the OSC 11 query
//! (`ESC ] 11 ; ? BEL`, answered `rgb:RRRR/GGGG/BBBB`), else dark.
//!
//! The query is made by terminal-colorsaurus: it puts the terminal in raw mode for the
//! exchange, sends a DA1 query after OSC 11 so that a terminal which does not understand
//! OSC 11 is known at once by its DA1 answer (not by a timeout), sends nothing when
//! `TERM=dumb`, and always restores the terminal. It runs once, before the chat takes the
//! terminal over, so its answer cannot reach the input box.

use std::time::Duration;

use conductor_core::config::ThemeChoice;

use super::ThemeKind;

/// The longest the chat waits for the terminal's answer to the OSC 11 query. Terminals
/// answer in a few milliseconds; one that does not understand the query is found out sooner
/// by its answer to DA1.
pub const QUERY_TIMEOUT: Duration = Duration::from_millis(100);

/// A terminal's background, as far as the theme cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Background {
    /// Dark: light text on a dark background.
    Dark,
    /// Light: dark text on a light background.
    Light,
}

impl Background {
    fn kind(self) -> ThemeKind {
        match self {
            Self::Dark => ThemeKind::Dark,
            Self::Light => ThemeKind::Light,
        }
    }
}

/// What decided the theme, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decided {
    /// `NO_COLOR` is set.
    NoColor,
    /// `chat.theme` is `dark` or `light`.
    Setting,
    /// The `COLORFGBG` variable.
    ColorFgBg,
    /// The terminal's answer to the OSC 11 query.
    Terminal,
    /// Nothing said: dark.
    Fallback,
}

/// The theme for `choice`, reading the environment through `env` and asking the terminal
/// with `query` only when nothing else decides (`auto` without a usable `COLORFGBG`).
pub fn resolve(
    choice: ThemeChoice,
    env: &dyn Fn(&str) -> Option<String>,
    query: impl FnOnce() -> Option<Background>,
) -> (ThemeKind, Decided) {
    // https://no-color.org: set and not empty.
    if env("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        return (ThemeKind::Mono, Decided::NoColor);
    }
    match choice {
        ThemeChoice::Dark => return (ThemeKind::Dark, Decided::Setting),
        ThemeChoice::Light => return (ThemeKind::Light, Decided::Setting),
        ThemeChoice::Auto => {}
    }
    if let Some(background) = env("COLORFGBG").as_deref().and_then(colorfgbg) {
        return (background.kind(), Decided::ColorFgBg);
    }
    match query() {
        Some(background) => (background.kind(), Decided::Terminal),
        None => (ThemeKind::Dark, Decided::Fallback),
    }
}

/// The background in a `COLORFGBG` value (`"15;0"`, rxvt's `"0;default;15"`): the last field
/// is the background's number in the 16-colour palette. 0 to 6 and 8 are dark; 7 and 9 to 15
/// light (as Vim reads it). `None` when the value says nothing usable (`default`, garbage).
#[must_use]
pub fn colorfgbg(value: &str) -> Option<Background> {
    let background: u8 = value.rsplit(';').next()?.trim().parse().ok()?;
    match background {
        0..=6 | 8 => Some(Background::Dark),
        7 | 9..=15 => Some(Background::Light),
        _ => None,
    }
}

/// Light when the colour's perceived lightness (CIE L*) is above the middle grey.
#[must_use]
pub fn background_of(colour: &terminal_colorsaurus::Color) -> Background {
    if colour.perceived_lightness() > 0.5 {
        Background::Light
    } else {
        Background::Dark
    }
}

/// Asks the terminal for its background colour (OSC 11), waiting at most `timeout`. `None`
/// when the terminal does not answer, does not support the query, or is not a terminal.
#[must_use]
pub fn query_terminal(timeout: Duration) -> Option<Background> {
    let mut options = terminal_colorsaurus::QueryOptions::default();
    options.timeout = timeout;
    match terminal_colorsaurus::background_color(options) {
        Ok(colour) => Some(background_of(&colour)),
        Err(err) => {
            tracing::debug!(%err, "the terminal did not tell its background colour");
            None
        }
    }
}

/// The theme the chat starts with, from the process environment and, for `auto`, the
/// terminal. Call it before the terminal is taken over (raw mode, alternate screen).
#[must_use]
pub fn detect(choice: ThemeChoice) -> ThemeKind {
    let started = std::time::Instant::now();
    let (kind, decided) = resolve(choice, &|name| std::env::var(name).ok(), || {
        query_terminal(QUERY_TIMEOUT)
    });
    tracing::debug!(
        theme = kind.as_str(),
        ?decided,
        elapsed_ms = started.elapsed().as_millis(),
        "chat theme"
    );
    kind
}
