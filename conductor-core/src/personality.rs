//! Personalities: who the assistant is, written as TOML files.
//!
//! A personality is text, never a model: it is composed into the system message of every request
//! ([`compose`](crate::compose)), so one stock model serves every personality and stays loaded.
//!
//! ```toml
//! name = "tutor"                      # must equal the file name (tutor.toml)
//! description = "A patient teacher."  # one line, shown in lists
//! prompt = """
//! You are a patient tutor ...
//! """
//! tone = "Warm, encouraging, never condescending."   # optional
//! rules = ["Check understanding with one question."]  # optional
//! boundaries = ["Do not write graded homework."]      # optional
//!
//! [[examples]]                        # optional, any number
//! user = "What is a derivative?"
//! assistant = "Think of driving a car ..."
//! ```
//!
//! Parsing is strict: unknown fields, missing fields and wrong types are errors that name the
//! file, line and column.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

use crate::error::{FileLocation, PersonalityError, ReadProblem, read_small_file};

/// The largest personality file read (256 KiB). A personality is a few KiB of text; the limit
/// keeps one stray huge file in a personality directory from taking the memory of `ask`.
pub const MAX_FILE_BYTES: u64 = 256 * 1024;

fn read_file(path: &Path) -> Result<String, PersonalityError> {
    read_small_file(path, MAX_FILE_BYTES).map_err(|problem| match problem {
        ReadProblem::Io(source) => PersonalityError::Read {
            path: path.to_owned(),
            source,
        },
        ReadProblem::Refused(reason) => PersonalityError::Refused {
            path: path.to_owned(),
            reason,
        },
    })
}

/// The personality used when nothing else says.
pub const DEFAULT_PERSONALITY: &str = "yollayah";

/// Longest accepted personality name.
pub const MAX_NAME_LEN: usize = 64;

/// A personality name: a plain identifier, `[a-z0-9_-]{1,64}`.
///
/// Names become file names, so anything that could leave the directory (`../x`, `/etc/x`) is
/// rejected here, before any file is opened.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PersonalityName(String);

impl PersonalityName {
    /// Validates a name.
    ///
    /// # Errors
    /// [`PersonalityError::InvalidName`] unless it is 1 to 64 of `a-z`, `0-9`, `-`, `_`.
    pub fn new(name: &str) -> Result<Self, PersonalityError> {
        let valid = !name.is_empty()
            && name.len() <= MAX_NAME_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(PersonalityError::InvalidName {
                name: name.to_owned(),
            })
        }
    }

    /// The default personality, `yollayah`.
    #[must_use]
    pub fn default_name() -> Self {
        Self(DEFAULT_PERSONALITY.to_owned())
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PersonalityName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PersonalityName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Self::new(&name).map_err(serde::de::Error::custom)
    }
}

/// One example exchange that shows the voice.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    /// What the person says.
    pub user: String,
    /// How this personality answers.
    pub assistant: String,
}

/// A personality: a name, a description and the text that becomes the system message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Personality {
    name: PersonalityName,
    description: String,
    prompt: String,
    tone: Option<String>,
    rules: Vec<String>,
    boundaries: Vec<String>,
    examples: Vec<Example>,
}

/// The file format, exactly.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PersonalityFile {
    name: PersonalityName,
    description: String,
    prompt: String,
    tone: Option<String>,
    #[serde(default)]
    rules: Vec<String>,
    #[serde(default)]
    boundaries: Vec<String>,
    #[serde(default)]
    examples: Vec<Example>,
}

impl Personality {
    /// A personality made in code, with just a name and a core prompt.
    ///
    /// # Errors
    /// When the name is invalid or the prompt is empty.
    pub fn new(name: &str, prompt: &str) -> Result<Self, PersonalityError> {
        let name = PersonalityName::new(name)?;
        let prompt = normalize(prompt);
        if prompt.is_empty() {
            return Err(PersonalityError::Parse {
                location: FileLocation {
                    path: PathBuf::from(format!("<{name}>")),
                    line: 1,
                    column: 1,
                },
                message: "the prompt is empty".into(),
            });
        }
        Ok(Self {
            description: String::new(),
            name,
            prompt,
            tone: None,
            rules: Vec::new(),
            boundaries: Vec::new(),
            examples: Vec::new(),
        })
    }

    /// Sets the one-line description.
    #[must_use]
    pub fn with_description(mut self, description: &str) -> Self {
        self.description = normalize(description);
        self
    }

    /// Sets the tone section.
    #[must_use]
    pub fn with_tone(mut self, tone: &str) -> Self {
        self.tone = Some(normalize(tone)).filter(|t| !t.is_empty());
        self
    }

    /// Adds a rule.
    #[must_use]
    pub fn with_rule(mut self, rule: &str) -> Self {
        self.rules.push(normalize(rule));
        self
    }

    /// Parses a personality file's text. `path` is used in error messages and, when it has a
    /// file stem, must match the `name` inside.
    ///
    /// # Errors
    /// [`PersonalityError::Parse`] with file, line and column.
    pub fn from_toml(path: &Path, text: &str) -> Result<Self, PersonalityError> {
        let error_at = |offset: usize, message: String| PersonalityError::Parse {
            location: FileLocation::at_offset(path, text, offset),
            message,
        };
        let file: PersonalityFile =
            toml::from_str(text).map_err(|err| PersonalityError::Parse {
                location: FileLocation::of_toml_error(path, text, &err),
                message: err.message().to_owned(),
            })?;
        // Rule checks that TOML cannot express point at the key they concern.
        let key_offset = |key: &str| find_key(text, key);
        if let Some(stem) = path.file_stem().and_then(|s| s.to_str())
            && path.extension().is_some_and(|e| e == "toml")
            && stem != file.name.as_str()
        {
            return Err(error_at(
                key_offset("name"),
                format!(
                    "the name {:?} does not match the file name {stem:?}.toml; rename one of them",
                    file.name.as_str()
                ),
            ));
        }
        let description = normalize(&file.description);
        if description.is_empty() || description.contains('\n') {
            return Err(error_at(
                key_offset("description"),
                "the description must be one non-empty line".into(),
            ));
        }
        let prompt = normalize(&file.prompt);
        if prompt.is_empty() {
            return Err(error_at(key_offset("prompt"), "the prompt is empty".into()));
        }
        let list = |items: Vec<String>, key: &str| -> Result<Vec<String>, PersonalityError> {
            let items: Vec<String> = items.iter().map(|s| normalize(s)).collect();
            if items.iter().any(String::is_empty) {
                return Err(error_at(
                    key_offset(key),
                    format!("`{key}` has an empty entry"),
                ));
            }
            Ok(items)
        };
        let examples = file
            .examples
            .into_iter()
            .map(|e| Example {
                user: normalize(&e.user),
                assistant: normalize(&e.assistant),
            })
            .collect::<Vec<_>>();
        if examples
            .iter()
            .any(|e| e.user.is_empty() || e.assistant.is_empty())
        {
            return Err(error_at(
                key_offset("[[examples]]"),
                "an example needs both `user` and `assistant` text".into(),
            ));
        }
        Ok(Self {
            name: file.name,
            description,
            prompt,
            tone: file.tone.map(|t| normalize(&t)).filter(|t| !t.is_empty()),
            rules: list(file.rules, "rules")?,
            boundaries: list(file.boundaries, "boundaries")?,
            examples,
        })
    }

    /// Reads and parses a personality file: a regular file of at most [`MAX_FILE_BYTES`].
    ///
    /// # Errors
    /// [`PersonalityError::Refused`] for a FIFO, directory, device or a file over the limit,
    /// [`PersonalityError::Read`] or [`PersonalityError::Parse`].
    pub fn from_file(path: &Path) -> Result<Self, PersonalityError> {
        let text = read_file(path)?;
        Self::from_toml(path, &text)
    }

    /// Its name.
    #[must_use]
    pub fn name(&self) -> &PersonalityName {
        &self.name
    }
    /// Its one-line description.
    #[must_use]
    pub fn description(&self) -> &str {
        &self.description
    }
    /// The core prompt.
    #[must_use]
    pub fn prompt(&self) -> &str {
        &self.prompt
    }
    /// The tone section.
    #[must_use]
    pub fn tone(&self) -> Option<&str> {
        self.tone.as_deref()
    }
    /// The rules, in file order.
    #[must_use]
    pub fn rules(&self) -> &[String] {
        &self.rules
    }
    /// The boundaries, in file order.
    #[must_use]
    pub fn boundaries(&self) -> &[String] {
        &self.boundaries
    }
    /// The example exchanges, in file order.
    #[must_use]
    pub fn examples(&self) -> &[Example] {
        &self.examples
    }
}

/// Line endings to `\n` and outer whitespace trimmed, so the same personality composes to the
/// same bytes whichever editor saved it.
fn normalize(text: &str) -> String {
    text.replace("\r\n", "\n").trim().to_owned()
}

/// Byte offset of `key` at the start of a line, for pointing an error at it.
fn find_key(text: &str, key: &str) -> usize {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with(key) {
            return offset + (line.len() - trimmed.len());
        }
        offset += line.len();
    }
    0
}

/// The personalities shipped with conductor (the files in `personality/`), built in so the
/// binary works from any directory.
const BUILTIN: &[(&str, &str)] = &[
    ("yollayah", include_str!("../../personality/yollayah.toml")),
    ("forge", include_str!("../../personality/forge.toml")),
    ("sage", include_str!("../../personality/sage.toml")),
];

/// Where a personality was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonalitySource {
    /// Shipped with conductor.
    Builtin,
    /// A file in a personality directory.
    File(PathBuf),
}

impl fmt::Display for PersonalitySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Builtin => f.write_str("built in"),
            Self::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// One personality found by [`PersonalityCatalog::list`]: parsed, or the error that stopped it.
#[derive(Debug)]
pub struct CatalogEntry {
    /// The name (from the file name).
    pub name: String,
    /// Where it was found (the one that wins when several share the name).
    pub source: PersonalitySource,
    /// The personality, or why it could not be read.
    pub personality: Result<Personality, PersonalityError>,
}

/// The personalities available: the built-in ones, then each directory in order; a later
/// directory overrides an earlier one (and the built-ins) by name.
///
/// Files are read only from these directories, and only as `<name>.toml` for a valid name.
#[derive(Debug, Clone)]
pub struct PersonalityCatalog {
    builtin: bool,
    dirs: Vec<PathBuf>,
}

impl Default for PersonalityCatalog {
    fn default() -> Self {
        Self::builtin()
    }
}

impl PersonalityCatalog {
    /// The built-in personalities only.
    #[must_use]
    pub fn builtin() -> Self {
        Self {
            builtin: true,
            dirs: Vec::new(),
        }
    }

    /// The built-ins plus these directories (lowest precedence first).
    #[must_use]
    pub fn with_dirs(dirs: Vec<PathBuf>) -> Self {
        Self {
            builtin: true,
            dirs,
        }
    }

    /// These directories only, without the built-ins.
    #[must_use]
    pub fn only_dirs(dirs: Vec<PathBuf>) -> Self {
        Self {
            builtin: false,
            dirs,
        }
    }

    /// The directories searched, lowest precedence first.
    #[must_use]
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Loads the personality called `name`.
    ///
    /// # Errors
    /// [`PersonalityError::InvalidName`] before touching the disk for a name like `../x`;
    /// [`PersonalityError::NotFound`] listing what exists; parse errors with file:line:column.
    pub fn load(&self, name: &str) -> Result<Personality, PersonalityError> {
        let name = PersonalityName::new(name)?;
        for dir in self.dirs.iter().rev() {
            let path = dir.join(format!("{name}.toml"));
            match read_file(&path) {
                Ok(text) => return Personality::from_toml(&path, &text),
                Err(PersonalityError::Read { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        if self.builtin
            && let Some((file, text)) = BUILTIN.iter().find(|(n, _)| *n == name.as_str())
        {
            return Personality::from_toml(&builtin_path(file), text);
        }
        Err(PersonalityError::NotFound {
            name: name.as_str().to_owned(),
            available: self.list().into_iter().map(|e| e.name).collect(),
        })
    }

    /// Every personality found, sorted by name, each parsed or with its error.
    /// Unreadable directories and files whose names are not valid are skipped; an entry named
    /// like a personality that cannot be one (a FIFO, a directory, a huge file) is listed with
    /// its error, as [`PersonalityCatalog::load`] would meet it.
    #[must_use]
    pub fn list(&self) -> Vec<CatalogEntry> {
        let mut found: BTreeMap<String, CatalogEntry> = BTreeMap::new();
        if self.builtin {
            for (name, text) in BUILTIN {
                found.insert(
                    (*name).to_owned(),
                    CatalogEntry {
                        name: (*name).to_owned(),
                        source: PersonalitySource::Builtin,
                        personality: Personality::from_toml(&builtin_path(name), text),
                    },
                );
            }
        }
        for dir in &self.dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut paths: Vec<PathBuf> =
                entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            paths.sort();
            for path in paths {
                let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                    continue;
                };
                if path.extension().is_none_or(|e| e != "toml")
                    || PersonalityName::new(stem).is_err()
                {
                    continue;
                }
                found.insert(
                    stem.to_owned(),
                    CatalogEntry {
                        name: stem.to_owned(),
                        source: PersonalitySource::File(path.clone()),
                        personality: Personality::from_file(&path),
                    },
                );
            }
        }
        found.into_values().collect()
    }
}

fn builtin_path(name: &str) -> PathBuf {
    PathBuf::from(format!("personality/{name}.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "name = \"x\"\ndescription = \"d\"\nprompt = \"p\"\n";

    #[test]
    fn names_are_plain_identifiers() {
        for good in ["yollayah", "a", "terse-engineer", "tutor_2"] {
            assert!(PersonalityName::new(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "../x",
            "x/y",
            "X",
            "a b",
            "café",
            ".hidden",
            &"a".repeat(65),
        ] {
            assert!(PersonalityName::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_shipped_personality_parses() {
        let catalog = PersonalityCatalog::builtin();
        let entries = catalog.list();
        assert!(entries.len() >= 3);
        for entry in entries {
            let p = entry.personality.unwrap();
            assert!(!p.description().is_empty());
            assert!(p.prompt().len() > 200, "{} has a real prompt", p.name());
        }
        assert_eq!(
            catalog.load("yollayah").unwrap().name().as_str(),
            "yollayah"
        );
    }

    #[test]
    fn strict_parsing_names_file_line_and_column() {
        let path = Path::new("dir/x.toml");
        let cases = [
            (
                format!("{MINIMAL}colour = \"blue\"\n"),
                "dir/x.toml:4:1: unknown field `colour`",
            ),
            (
                "name = \"x\"\ndescription = \"d\"\n".to_owned(),
                "missing field `prompt`",
            ),
            (
                format!("{MINIMAL}rules = \"be nice\"\n"),
                "dir/x.toml:4:9: ",
            ),
            (
                "name = \"x\"\ndescription = \"d\"\nprompt = \"\"\"\n   \n\"\"\"\n".to_owned(),
                "dir/x.toml:3:1: the prompt is empty",
            ),
            (
                "name = \"y\"\ndescription = \"d\"\nprompt = \"p\"\n".to_owned(),
                "dir/x.toml:1:1: the name \"y\" does not match",
            ),
            (
                format!("{MINIMAL}[[examples]]\nuser = \"hi\"\n"),
                "missing field `assistant`",
            ),
            (
                "name = \"x\"\ndescription = \"d\"\nprompt = 3\n".to_owned(),
                "dir/x.toml:3:10: ",
            ),
            ("name = \"x\n".to_owned(), "dir/x.toml:1:"),
        ];
        for (text, expected) in cases {
            let err = Personality::from_toml(path, &text).unwrap_err().to_string();
            assert!(
                err.contains(expected),
                "{err:?} should contain {expected:?}"
            );
        }
    }

    #[test]
    fn user_directory_overrides_builtin_by_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("yollayah.toml"),
            "name = \"yollayah\"\ndescription = \"mine\"\nprompt = \"my own\"\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("broken.toml"), "name = 1").unwrap();
        std::fs::write(dir.path().join("Not A Name.toml"), "").unwrap();
        let catalog = PersonalityCatalog::with_dirs(vec![dir.path().to_owned()]);
        assert_eq!(catalog.load("yollayah").unwrap().prompt(), "my own");
        let list = catalog.list();
        let names: Vec<_> = list.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["broken", "forge", "sage", "yollayah"]);
        assert!(list[0].personality.is_err());
        assert!(matches!(list[3].source, PersonalitySource::File(_)));
    }

    #[test]
    fn path_traversal_is_refused_before_any_file_is_read() {
        let catalog = PersonalityCatalog::builtin();
        for name in ["../../etc/passwd", "/etc/passwd", "..", "x/../y"] {
            assert!(matches!(
                catalog.load(name),
                Err(PersonalityError::InvalidName { .. })
            ));
        }
    }

    #[test]
    fn unknown_names_list_what_exists() {
        let err = PersonalityCatalog::builtin().load("nobody").unwrap_err();
        assert!(
            err.to_string().contains("available: forge, sage, yollayah"),
            "{err}"
        );
    }
}
