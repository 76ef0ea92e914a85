//! `ask -o KEY=VALUE`: model options for one request, typed.
//!
//! Options conductor knows (the fields of [`RunnerOptions`]) are parsed into their types, so a
//! wrong value is a usage error naming the option and what it takes. `stop` repeats: each
//! `-o stop=X` adds one stop string, taken literally (commas included). Any other key is passed
//! to Ollama as given, typed by its look: `true`/`false`, an integer, a number, else a string.
//! A scalar given twice takes the last value (so an alias's `-o` can be overridden).

use conductor_core::{BackendKind, RunnerOptions};
use serde_json::{Map, Value};

use crate::exit::Failure;

/// What a known option takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A whole number of at least `min`, at most `u32::MAX`.
    Count { min: u32 },
    /// A whole number that may be negative (`-1` means "no limit" or "all").
    Signed32,
    /// A 64-bit whole number.
    Signed64,
    /// A finite decimal number.
    Number,
    /// `true` or `false`.
    Bool,
    /// A list of strings, one per `-o`.
    List,
}

/// The options conductor has a field for, with their types.
const KNOWN: &[(&str, Kind)] = &[
    ("num_ctx", Kind::Count { min: 1 }),
    ("num_gpu", Kind::Signed32),
    ("num_predict", Kind::Signed32),
    ("num_batch", Kind::Count { min: 1 }),
    ("num_thread", Kind::Count { min: 1 }),
    ("main_gpu", Kind::Count { min: 0 }),
    ("use_mmap", Kind::Bool),
    ("temperature", Kind::Number),
    ("top_p", Kind::Number),
    ("top_k", Kind::Count { min: 0 }),
    ("min_p", Kind::Number),
    ("repeat_penalty", Kind::Number),
    ("seed", Kind::Signed64),
    ("stop", Kind::List),
];

impl Kind {
    fn describe(self) -> String {
        match self {
            Self::Count { min } => format!("a whole number of at least {min}"),
            Self::Signed32 => "a whole number (-1 for no limit)".to_owned(),
            Self::Signed64 => "a whole number".to_owned(),
            Self::Number => "a number such as 0.7".to_owned(),
            Self::Bool => "true or false".to_owned(),
            Self::List => "a string".to_owned(),
        }
    }

    fn parse(self, value: &str) -> Option<Value> {
        match self {
            Self::Count { min } => value
                .parse::<u32>()
                .ok()
                .filter(|n| *n >= min)
                .map(Value::from),
            Self::Signed32 => value.parse::<i32>().ok().map(Value::from),
            Self::Signed64 => value.parse::<i64>().ok().map(Value::from),
            Self::Number => value
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Value::from),
            Self::Bool => value.parse::<bool>().ok().map(Value::from),
            Self::List => Some(Value::from(value)),
        }
    }
}

/// Warns on stderr, once per option, of each `-o` that a backend of kind `backend` will not
/// send (an OpenAI-compatible server has no `num_ctx`, `top_k`, ... and takes no unknown
/// keys), so that it is not dropped in silence. `pairs` are the `-o` values as given; ones
/// that do not parse were refused before.
pub fn warn_unsent(pairs: &[String], backend: BackendKind) {
    if backend != BackendKind::OpenAi {
        return;
    }
    let Ok(options) = parse(pairs) else {
        return;
    };
    for name in conductor_core::OpenAiBackend::unsent_options(&options) {
        let why = if name == "num_predict" {
            "a negative num_predict (no limit) leaves max_tokens out, so the server's own limit applies"
        } else {
            "the OpenAI-compatible API has no such parameter"
        };
        crate::output::warn(&format!(
            "-o {}: not sent to this server ({why})",
            conductor_core::text::one_line(&name)
        ));
    }
}

/// Parses every `-o` into runner options: known keys into their fields, others into
/// [`RunnerOptions::extra`].
pub fn parse(pairs: &[String]) -> Result<RunnerOptions, Failure> {
    let mut known = Map::new();
    let mut stop: Vec<Value> = Vec::new();
    let mut extra = Map::new();
    for pair in pairs {
        let (key, value) = pair.split_once('=').ok_or_else(|| {
            Failure::Usage(format!(
                "invalid -o {pair:?}: expected KEY=VALUE, e.g. -o temperature=0.2"
            ))
        })?;
        let key = key.trim();
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(Failure::Usage(format!(
                "invalid -o {pair:?}: an option name is lowercase letters, digits and _ (e.g. num_ctx)"
            )));
        }
        if value.is_empty() {
            return Err(Failure::Usage(format!(
                "invalid -o {key}=: give a value, e.g. -o {key}=1"
            )));
        }
        match KNOWN.iter().find(|(name, _)| *name == key) {
            Some((_, Kind::List)) => stop.push(Value::from(value)),
            Some((name, kind)) => {
                let parsed = kind.parse(value.trim()).ok_or_else(|| {
                    Failure::Usage(format!(
                        "invalid -o {name}={value}: {name} takes {}",
                        kind.describe()
                    ))
                })?;
                known.insert((*name).to_owned(), parsed);
            }
            None => {
                extra.insert(key.to_owned(), infer(value));
            }
        }
    }
    if !stop.is_empty() {
        known.insert("stop".to_owned(), Value::Array(stop));
    }
    let mut options: RunnerOptions = serde_json::from_value(Value::Object(known))
        .map_err(|err| Failure::Usage(format!("invalid -o: {err}")))?;
    options.extra = extra;
    Ok(options)
}

/// The JSON value of an option conductor does not know, by its look.
fn infer(value: &str) -> Value {
    if let Ok(b) = value.parse::<bool>() {
        return Value::from(b);
    }
    if let Ok(n) = value.parse::<i64>() {
        return Value::from(n);
    }
    if let Ok(f) = value.parse::<f64>()
        && f.is_finite()
    {
        return Value::from(f);
    }
    Value::from(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[&str]) -> Result<RunnerOptions, String> {
        let pairs: Vec<String> = pairs.iter().map(|s| (*s).to_owned()).collect();
        parse(&pairs).map_err(|f| match f {
            Failure::Usage(m) => m,
            other => format!("{other:?}"),
        })
    }

    #[test]
    fn known_options_are_typed() {
        let o = options(&[
            "temperature=0.2",
            "num_ctx=8192",
            "num_predict=-1",
            "use_mmap=false",
            "seed=42",
            "stop=a,b",
            "stop=END",
            "temperature=0.3",
        ])
        .unwrap();
        assert_eq!(o.temperature, Some(0.3));
        assert_eq!(o.num_ctx, Some(8192));
        assert_eq!(o.num_predict, Some(-1));
        assert_eq!(o.use_mmap, Some(false));
        assert_eq!(o.seed, Some(42));
        assert_eq!(o.stop, Some(vec!["a,b".to_owned(), "END".to_owned()]));
        assert!(o.extra.is_empty());
    }

    #[test]
    fn unknown_options_are_passed_through_by_their_look() {
        let o = options(&[
            "mirostat=2",
            "mirostat_tau=4.5",
            "penalize_newline=true",
            "x=abc",
        ])
        .unwrap();
        let json = serde_json::to_value(&o).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"mirostat": 2, "mirostat_tau": 4.5, "penalize_newline": true, "x": "abc"})
        );
    }

    #[test]
    fn bad_values_say_what_the_option_takes() {
        let err = options(&["temperature=hot"]).unwrap_err();
        assert!(err.contains("temperature takes a number"), "{err}");
        let err = options(&["num_ctx=-3"]).unwrap_err();
        assert!(
            err.contains("num_ctx takes a whole number of at least 1"),
            "{err}"
        );
        assert!(options(&["num_ctx"]).unwrap_err().contains("KEY=VALUE"));
        assert!(
            options(&["use_mmap=yes"])
                .unwrap_err()
                .contains("true or false")
        );
        assert!(options(&["temperature=NaN"]).is_err());
        assert!(options(&["Bad-Key=1"]).unwrap_err().contains("option name"));
        assert!(options(&["top_k="]).unwrap_err().contains("give a value"));
    }

    #[test]
    fn every_known_option_is_a_field_of_runner_options() {
        let full: Vec<String> = KNOWN
            .iter()
            .map(|(name, kind)| {
                let value = match kind {
                    Kind::Bool => "true",
                    Kind::List => "x",
                    _ => "1",
                };
                format!("{name}={value}")
            })
            .collect();
        let options = parse(&full).map_err(|_| ()).unwrap();
        assert!(options.extra.is_empty());
        let json = serde_json::to_value(&options).unwrap();
        assert_eq!(json.as_object().unwrap().len(), KNOWN.len());
    }
}
