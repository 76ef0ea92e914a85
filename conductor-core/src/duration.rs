//! Durations written for people: parsed from and formatted to the Go-style text Ollama and the
//! configuration use (`250ms`, `45s`, `5m`, `1h30m`), exactly and within a ten-year cap.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration written for people: `250ms`, `45s`, `5m`, `1h30m`, or a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Seconds(secs) if Duration::from_secs(secs) > MAX_DURATION => {
                Err(serde::de::Error::custom("a duration longer than ten years"))
            }
            Raw::Seconds(secs) => Ok(Self(Duration::from_secs(secs))),
            Raw::Text(text) => parse_duration(&text)
                .map(Self)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// The longest duration accepted (ten years): longer values are typos, and "for ever" has its
/// own spelling (`-1`) for `keep_alive`.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 86_400);

/// Parses a Go-style duration (`300ms`, `1.5h`, `1h30m`) or a bare number of seconds.
/// Whole numbers are read exactly (no floating point), so a duration reads back as it prints.
///
/// # Errors
/// A sentence naming the accepted forms.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let bad = || format!("invalid duration {text:?}: use e.g. 500ms, 30s, 5m, 1h30m");
    if text.is_empty() {
        return Err(bad());
    }
    let bare_number = text.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let mut total_nanos: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let unit = if bare_number { "s" } else { unit };
        let nanos_per_unit: u128 = match unit {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        let nanos = match number.split_once('.') {
            None => number
                .parse::<u128>()
                .map_err(|_| bad())?
                .checked_mul(nanos_per_unit)
                .ok_or_else(bad)?,
            Some((whole, fraction)) => {
                if whole.is_empty() && fraction.is_empty() {
                    return Err(bad());
                }
                let value: f64 = number.parse().map_err(|_| bad())?;
                #[allow(
                    clippy::cast_precision_loss,
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss
                )]
                let nanos = (value * nanos_per_unit as f64).round() as u128;
                nanos
            }
        };
        total_nanos = total_nanos.checked_add(nanos).ok_or_else(bad)?;
        if total_nanos > MAX_DURATION.as_nanos() {
            return Err(format!("duration {text:?} is longer than ten years"));
        }
        rest = tail;
    }
    let secs = u64::try_from(total_nanos / 1_000_000_000).map_err(|_| bad())?;
    let nanos = u32::try_from(total_nanos % 1_000_000_000).map_err(|_| bad())?;
    Ok(Duration::new(secs, nanos))
}

/// Formats a duration the way [`parse_duration`] reads it, exactly: `250ms`, `45s`, `5m`,
/// `1h30m`, `1500us`.
#[must_use]
pub fn format_duration(d: Duration) -> String {
    let nanos = d.subsec_nanos();
    if d.is_zero() {
        return "0s".to_owned();
    }
    if nanos != 0 {
        let total = d.as_nanos();
        return if total.is_multiple_of(1_000_000) {
            format!("{}ms", total / 1_000_000)
        } else if total.is_multiple_of(1_000) {
            format!("{}us", total / 1_000)
        } else {
            format!("{total}ns")
        };
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// Formats a duration for messages, roughly: `750 ms`, `12 s`, `5 min`.
pub(crate) fn humanize(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1_000 {
        format!("{ms} ms")
    } else if ms < 120_000 {
        format!("{} s", ms / 1_000)
    } else {
        format!("{} min", ms / 60_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
        for d in [300, 5400, 45, 3600, 155_325_592] {
            let d = Duration::from_secs(d);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
        for d in [
            Duration::from_micros(1500),
            Duration::from_nanos(7),
            Duration::from_millis(250),
            Duration::ZERO,
        ] {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{d:?}");
        }
        assert!(
            parse_duration("155325592290448382")
                .unwrap_err()
                .contains("ten years")
        );
        assert!(parse_duration("1.").is_ok());
        assert!(parse_duration(".").is_err());
        assert!(parse_duration("5").is_ok());
    }
}
