//! The guard's policy: what to do when the model is not (fully) on the GPU, and how much of it
//! must be.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

/// What to do when the model is not fully on the GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GpuPolicy {
    /// Refuse to generate unless the model is fully resident (the default).
    #[default]
    Enforce,
    /// Generate, but surface a warning with the diagnosis.
    Warn,
    /// Try to make the model resident (smaller context, no layer cap), then enforce.
    Fix,
    /// Do not check.
    Off,
}

impl GpuPolicy {
    /// The config spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::Warn => "warn",
            Self::Fix => "fix",
            Self::Off => "off",
        }
    }
}

impl fmt::Display for GpuPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GpuPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "enforce" => Ok(Self::Enforce),
            "warn" => Ok(Self::Warn),
            "fix" => Ok(Self::Fix),
            "off" => Ok(Self::Off),
            _ => Err("expected one of: enforce, warn, fix, off".into()),
        }
    }
}

/// The smallest share of the model that must be on the GPU, 0.0..=1.0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinFraction(f64);

impl MinFraction {
    /// Fully resident.
    pub const FULL: Self = Self(1.0);

    /// Validates a fraction.
    ///
    /// # Errors
    /// When it is not within 0.0..=1.0.
    pub fn new(value: f64) -> Result<Self, String> {
        if (0.0..=1.0).contains(&value) {
            Ok(Self(value))
        } else {
            Err(format!("{value} is not a fraction between 0.0 and 1.0"))
        }
    }

    /// The value.
    #[must_use]
    pub fn get(self) -> f64 {
        self.0
    }
}

impl<'de> Deserialize<'de> for MinFraction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::new(f64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}
