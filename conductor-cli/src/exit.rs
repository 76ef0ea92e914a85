//! Failures and their documented exit codes (see `--help` and docs/cli.md).

use std::process::ExitCode;

use conductor_core::Error;
use conductor_core::error::{ConfigError, PersonalityError};

/// Exit code: usage error.
pub const USAGE: u8 = 2;
/// Exit code: the model is not fully on the GPU under `enforce`.
pub const NOT_RESIDENT: u8 = 3;
/// Exit code: Ollama unreachable, HTTP error, or an answer cut short.
pub const OLLAMA: u8 = 4;
/// Exit code: model not found.
pub const MODEL_NOT_FOUND: u8 = 5;
/// Exit code: bad configuration or personality.
pub const CONFIG: u8 = 6;
/// Exit code: interrupted by Ctrl-C.
pub const INTERRUPTED: u8 = 130;

/// Why a command failed; rendered once by `main`.
#[derive(Debug)]
pub enum Failure {
    /// An error from conductor-core.
    Core(Error),
    /// Bad input on the command line or stdin.
    Usage(String),
    /// Ctrl-C.
    Interrupted,
    /// Anything else (I/O on stdout, runtime start-up).
    Other(String),
}

impl Failure {
    /// A failure that is neither Ollama's nor the user's.
    pub fn other(message: impl Into<String>) -> Self {
        Self::Other(message.into())
    }

    /// The documented exit code.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code())
    }

    /// The numeric exit code.
    pub fn code(&self) -> u8 {
        match self {
            Self::Core(err) => core_code(err),
            Self::Usage(_) => USAGE,
            Self::Interrupted => INTERRUPTED,
            Self::Other(_) => 1,
        }
    }
}

fn core_code(err: &Error) -> u8 {
    match err.root() {
        Error::ModelNotFound { .. } => MODEL_NOT_FOUND,
        Error::NotResident(_) => NOT_RESIDENT,
        Error::Config(_) | Error::Personality(_) | Error::InvalidRequest(_) => CONFIG,
        _ => OLLAMA,
    }
}

impl From<Error> for Failure {
    fn from(err: Error) -> Self {
        Self::Core(err)
    }
}

impl From<ConfigError> for Failure {
    fn from(err: ConfigError) -> Self {
        Self::Core(Error::Config(err))
    }
}

impl From<PersonalityError> for Failure {
    fn from(err: PersonalityError) -> Self {
        Self::Core(Error::Personality(err))
    }
}
