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
/// Exit code: interrupted by Ctrl-C (128 + SIGINT); SIGTERM gives 143, SIGHUP 129.
pub const INTERRUPTED: u8 = 130;
/// Exit code: anything else, such as output that could not be written.
pub const OTHER: u8 = 1;

/// The signal that stopped a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Ctrl-C.
    Interrupt,
    /// `kill` (the default signal).
    Terminate,
    /// The terminal went away.
    Hangup,
}

impl Signal {
    /// The conventional exit code: 128 + the signal's number.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Interrupt => INTERRUPTED,
            Self::Terminate => 143,
            Self::Hangup => 129,
        }
    }

    /// `SIGINT`, `SIGTERM`, `SIGHUP`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Interrupt => "SIGINT",
            Self::Terminate => "SIGTERM",
            Self::Hangup => "SIGHUP",
        }
    }
}

/// Resolves when SIGINT, SIGTERM or SIGHUP arrives (SIGINT alone where there are no others).
pub async fn stop_signal() -> Signal {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            let _ = tokio::signal::ctrl_c().await;
            return Signal::Interrupt;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => Signal::Interrupt,
            _ = term.recv() => Signal::Terminate,
            _ = hup.recv() => Signal::Hangup,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        Signal::Interrupt
    }
}

/// Why a command failed; rendered once by `main`.
#[derive(Debug)]
pub enum Failure {
    /// An error from conductor-core.
    Core(Error),
    /// Bad input on the command line or stdin.
    Usage(String),
    /// Bad input, with a hint of its own (instead of `see conductor --help`).
    UsageHint(String, String),
    /// Stopped by a signal.
    Interrupted(Signal),
    /// Anything else (runtime start-up, a helper process).
    Other(String),
    /// Output could not be written (not a closed pipe).
    Output(String),
    /// stdout was closed by its reader (`| head`): end quietly, successfully.
    Closed,
    /// Already reported on stdout as JSON; `main` prints only the human message on stderr.
    Reported(Box<Failure>),
}

impl Failure {
    /// A failure that is neither Ollama's nor the user's.
    pub fn other(message: impl Into<String>) -> Self {
        Self::Other(message.into())
    }

    /// For `.server().map_err(..)`: a command that manages models (`ps`, `stop`, `show`,
    /// `pull`) asked of a backend without model management is a usage error (exit 2) that
    /// says what to use instead; any other error stays as it is.
    pub fn model_management(command: &'static str) -> impl FnOnce(Error) -> Self {
        move |err| match err {
            Error::Unsupported { endpoint, .. } => {
                let backend = if crate::output::backend() == conductor_core::BackendKind::OpenAi {
                    "the OpenAI-compatible backend"
                } else {
                    "this backend"
                };
                Self::Usage(format!(
                    "`conductor {command}` needs model management, which {backend} at {endpoint} \
                     does not have: run it against Ollama (`--backend ollama --host ADDRESS`), \
                     or use the server's own tools (`conductor models` still lists its models)"
                ))
            }
            other => Self::Core(other),
        }
    }

    /// The documented exit code.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code())
    }

    /// The numeric exit code.
    pub fn code(&self) -> u8 {
        match self {
            Self::Core(err) => core_code(err),
            Self::Usage(_) | Self::UsageHint(..) => USAGE,
            Self::Interrupted(signal) => signal.exit_code(),
            Self::Other(_) | Self::Output(_) => OTHER,
            Self::Closed => 0,
            Self::Reported(inner) => inner.code(),
        }
    }

    /// A short machine-readable name for `--json` output.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Core(err) => match err.root() {
                Error::ModelNotFound { .. } => "model_not_found",
                Error::NotResident(_) => "not_resident",
                Error::Unreachable { .. } => "unreachable",
                Error::Busy { .. } => "busy",
                Error::Http { .. } => "http",
                Error::Timeout { .. } => "timeout",
                Error::Truncated | Error::ConnectionLost { .. } => "cut_short",
                Error::Server { .. } => "server",
                Error::Protocol { .. } => "protocol",
                Error::Config(_) => "config",
                Error::Personality(_) => "personality",
                _ => "error",
            },
            Self::Usage(_) | Self::UsageHint(..) => "usage",
            Self::Interrupted(_) => "interrupted",
            Self::Other(_) => "other",
            Self::Output(_) => "output",
            Self::Closed => "closed",
            Self::Reported(inner) => inner.kind(),
        }
    }

    /// The one-line message, as `main` prints it after `error:`.
    pub fn message(&self) -> String {
        match self {
            Self::Core(err) => crate::output::message_text(err),
            Self::Usage(m) | Self::UsageHint(m, _) | Self::Other(m) => m.clone(),
            Self::Interrupted(signal) => format!("interrupted ({})", signal.name()),
            Self::Output(m) => format!("cannot write the output: {m}"),
            Self::Closed => "stdout closed".to_owned(),
            Self::Reported(inner) => inner.message(),
        }
    }

    /// The failure as the JSON object `--json` prints on stdout.
    pub fn json(&self) -> serde_json::Value {
        let hint = match self {
            Self::Core(err) => crate::output::hint_text(err),
            Self::UsageHint(_, hint) => Some(hint.clone()),
            _ => None,
        };
        serde_json::json!({
            "kind": self.kind(),
            "message": conductor_core::text::strip_controls(&self.message()),
            "hint": hint,
            "exit_code": self.code(),
        })
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
