//! `[chat]`: settings of the terminal chat UI that live in the shared configuration (the UI
//! itself is `conductor-tui`; the library only reads and validates them).

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

/// The colours of the chat UI: follow the terminal, or force a dark or light palette.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThemeChoice {
    /// Ask the terminal for its background (`COLORFGBG`, then the OSC 11 query) and pick the
    /// matching palette; dark when the terminal does not say (the default).
    #[default]
    Auto,
    /// Colours for a dark background.
    Dark,
    /// Colours for a light background.
    Light,
}

impl ThemeChoice {
    /// The config spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Dark => "dark",
            Self::Light => "light",
        }
    }
}

impl fmt::Display for ThemeChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ThemeChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "dark" => Ok(Self::Dark),
            "light" => Ok(Self::Light),
            _ => Err("expected one of: auto, dark, light".into()),
        }
    }
}

/// `[chat]` as one layer of configuration; every field optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatLayer {
    /// `auto`, `dark` or `light`.
    pub theme: Option<ThemeChoice>,
}

impl ChatLayer {
    /// Fills every unset field from `lower`; `self` wins.
    #[must_use]
    pub fn combine(self, lower: Self) -> Self {
        Self {
            theme: self.theme.or(lower.theme),
        }
    }
}
