//! Errors about files a person wrote (the configuration, personalities), and the one careful
//! way such a file is read.

use std::fmt;
use std::path::PathBuf;

/// A position in a file that failed to parse: `path:line:column: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLocation {
    /// The file (or a label such as `builtin:yollayah.toml`).
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl fmt::Display for FileLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.column)
    }
}

impl FileLocation {
    /// The location of byte `offset` in `text`, read from `path`.
    #[must_use]
    pub fn at_offset(path: impl Into<PathBuf>, text: &str, offset: usize) -> Self {
        let offset = offset.min(text.len());
        let before = text.get(..offset).unwrap_or(text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        Self {
            path: path.into(),
            line,
            column,
        }
    }

    /// The location of a TOML parse error, from its span (start of file when it has none).
    #[must_use]
    pub fn of_toml_error(path: impl Into<PathBuf>, text: &str, err: &toml::de::Error) -> Self {
        let offset = err.span().map_or(0, |span| span.start);
        Self::at_offset(path, text, offset)
    }
}

/// Errors of configuration loading and validation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not one conductor will read: not a regular file, or too large.
    #[error("will not read config file {}: {reason}", path.display())]
    Refused {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: FileRefusal,
    },
    /// The config file is not valid (TOML syntax, unknown field, wrong type).
    #[error("{location}: {message}")]
    Parse {
        /// Where.
        location: FileLocation,
        /// What, as the TOML parser says it.
        message: String,
    },
    /// A value is present but unusable.
    #[error("invalid {field} {value:?} (from {origin}): {reason}")]
    Invalid {
        /// The setting, e.g. `ollama.host`.
        field: &'static str,
        /// The value as given (never a secret).
        value: String,
        /// Where it came from.
        origin: String,
        /// Why it is rejected and what is accepted.
        reason: String,
    },
}

/// Errors of personality lookup, parsing and validation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PersonalityError {
    /// The name is not a plain identifier (`[a-z0-9_-]+`).
    #[error(
        "invalid personality name {name:?}: use lowercase letters, digits, '-' and '_' only (at \
         most 64)"
    )]
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// No personality of that name exists in any configured directory.
    #[error("personality '{name}' not found (available: {})", available.join(", "))]
    NotFound {
        /// The name asked for.
        name: String,
        /// The names that exist.
        available: Vec<String>,
    },
    /// The file could not be read.
    #[error("cannot read personality file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not one conductor will read: not a regular file, or too large.
    #[error("will not read personality file {}: {reason}", path.display())]
    Refused {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: FileRefusal,
    },
    /// The file is not a valid personality (syntax, unknown or missing field, wrong type, rule).
    #[error("{location}: {message}")]
    Parse {
        /// Where.
        location: FileLocation,
        /// What.
        message: String,
    },
}

impl PersonalityError {
    /// What to do about it.
    #[must_use]
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::InvalidName { .. } => Some("pick a name such as `yollayah`".to_owned()),
            Self::NotFound { .. } => Some(
                "pick one of those listed, or add NAME.toml to your personalities directory"
                    .to_owned(),
            ),
            Self::Read { .. } => None,
            Self::Refused {
                reason: FileRefusal::TooLarge { .. },
                ..
            } => Some("a personality is a few KiB of text: shorten it".to_owned()),
            Self::Refused { .. } => Some(
                "a personality must be a regular NAME.toml file: replace or remove that entry in \
                 the personalities directory"
                    .to_owned(),
            ),
            Self::Parse { .. } => Some(
                "see docs/personalities.md for the format (name, description, prompt, tone, \
                 rules, boundaries, [[examples]])"
                    .to_owned(),
            ),
        }
    }
}

/// Why a file was not read ([`ConfigError::Refused`], [`PersonalityError::Refused`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FileRefusal {
    /// A FIFO, socket, device or directory: reading it could block for ever or never end.
    #[error("not a regular file ({kind})")]
    NotRegular {
        /// What it is instead, e.g. "a FIFO" or "a directory".
        kind: &'static str,
    },
    /// Larger than the limit for its kind of file.
    #[error("larger than {} KiB", limit / 1024)]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
}

/// Why [`read_small_file`] did not return the text.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReadProblem {
    /// The file could not be opened or read.
    Io(std::io::Error),
    /// The file is not one to read: not a regular file, or over the limit.
    Refused(FileRefusal),
}

/// Reads a small text file that a person wrote, defensively (see [`read_small_bytes`]); text
/// that is not UTF-8 is an [`std::io::ErrorKind::InvalidData`] error.
///
/// # Errors
/// [`ReadProblem::Refused`] for a file that is not regular or is over `limit` bytes,
/// [`ReadProblem::Io`] when it cannot be read or is not UTF-8.
pub fn read_small_file(path: &std::path::Path, limit: u64) -> Result<String, ReadProblem> {
    String::from_utf8(read_small_bytes(path, limit)?)
        .map_err(|err| ReadProblem::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, err)))
}

/// Reads a small file defensively: only a regular file (checked before opening and again on
/// the open file, which is opened non-blocking on Unix: opening a FIFO for reading would
/// otherwise wait for a writer, and one may be swapped in between the two), and never more
/// than `limit` bytes (a huge, growing or endless file is refused, not loaded).
///
/// # Errors
/// [`ReadProblem::Refused`] for a file that is not regular or is over `limit` bytes,
/// [`ReadProblem::Io`] when it cannot be opened or read.
pub fn read_small_bytes(path: &std::path::Path, limit: u64) -> Result<Vec<u8>, ReadProblem> {
    use std::io::Read;
    let check = |meta: &std::fs::Metadata| {
        if let Some(kind) = not_regular(meta) {
            return Err(ReadProblem::Refused(FileRefusal::NotRegular { kind }));
        }
        if meta.len() > limit {
            return Err(ReadProblem::Refused(FileRefusal::TooLarge { limit }));
        }
        Ok(())
    };
    check(&std::fs::metadata(path).map_err(ReadProblem::Io)?)?;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(ReadProblem::Io)?;
    check(&file.metadata().map_err(ReadProblem::Io)?)?;
    let mut bytes = Vec::new();
    // A file that grows while being read (or a /proc-like file reporting size 0) stops here.
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(ReadProblem::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadProblem::Refused(FileRefusal::TooLarge { limit }));
    }
    Ok(bytes)
}

/// What a file that is not a regular file is, for a message ("a FIFO", "a directory"); `None`
/// for a regular file.
#[must_use]
pub fn not_regular(meta: &std::fs::Metadata) -> Option<&'static str> {
    let kind = meta.file_type();
    if kind.is_file() {
        return None;
    }
    if kind.is_dir() {
        return Some("a directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return Some("a FIFO");
        }
        if kind.is_socket() {
            return Some("a socket");
        }
        if kind.is_char_device() || kind.is_block_device() {
            return Some("a device");
        }
    }
    Some("a special file")
}
