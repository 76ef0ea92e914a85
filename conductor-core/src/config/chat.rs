//! `[chat]`: settings of the terminal chat UI that live in the shared configuration (the UI
//! itself is `conductor-tui`; the library only reads and validates them).

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

/// The colours of the chat UI: follow the terminal, or force a dark or light palette.
///
/// Read case-insensitively from the file as from `CONDUCTOR_THEME` (`Dark` is `dark`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
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

impl<'de> Deserialize<'de> for ThemeChoice {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse()
            .map_err(|_| serde::de::Error::unknown_variant(&text, &["auto", "dark", "light"]))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The file and `CONDUCTOR_THEME` read the same spellings.
    #[test]
    fn the_file_reads_the_theme_as_the_environment_does() {
        for (text, choice) in [
            ("Dark", ThemeChoice::Dark),
            ("LIGHT", ThemeChoice::Light),
            ("auto", ThemeChoice::Auto),
        ] {
            let layer: ChatLayer = toml::from_str(&format!("theme = \"{text}\"")).unwrap();
            assert_eq!(layer.theme, Some(choice), "{text}");
            assert_eq!(text.parse::<ThemeChoice>(), Ok(choice), "{text}");
        }
        let err = toml::from_str::<ChatLayer>("theme = \"solarized\"").unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown variant `solarized`, expected one of `auto`, `dark`, `light`"),
            "{err}"
        );
        assert!("solarized".parse::<ThemeChoice>().is_err());
    }
}
