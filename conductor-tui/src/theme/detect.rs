//! Which theme the chat starts with: `NO_COLOR`, then the `chat.theme` setting, and for `auto`
//! the terminal's background: `COLORFGBG` when the terminal sets it, else the OSC 11 query
//! (`ESC ] 11 ; ? BEL`, answered `rgb:RRRR/GGGG/BBBB`), else dark.
//!
//! The query is made by terminal-colorsaurus: it puts the terminal in raw mode for the
//! exchange, sends a DA1 query after OSC 11 so that a terminal which does not understand
//! OSC 11 is known at once by its DA1 answer (not by a timeout), sends nothing when
//! `TERM=dumb` (nor under GNU screen or tmux with `TERM=screen*`, which it takes for terminals
//! that cannot answer), and always restores the terminal. It runs once, before the chat takes
//! the terminal over, on a blocking thread.
//!
//! Two things keep the exchange out of the input box:
//! - Keys already typed ahead are waiting: the query is not made (colorsaurus would read them
//!   up to its answer and drop them), and the theme is dark unless `COLORFGBG` said otherwise.
//! - The answer is late (over SSH a round trip can pass the wait): once the wait is over, the
//!   terminal's input is read and dropped up to the end of the DA1 answer, for at most
//!   [`LATE_ANSWER_WAIT`], so that the answers are not read as keys. A key typed in that
//!   moment is dropped with them.

use std::time::Duration;

use conductor_core::config::ThemeChoice;

use super::ThemeKind;

/// The longest the chat waits for the terminal's answer to the OSC 11 query. Terminals
/// answer in a few milliseconds; one that does not understand the query is found out sooner
/// by its answer to DA1.
pub const QUERY_TIMEOUT: Duration = Duration::from_millis(100);
/// [`QUERY_TIMEOUT`] over SSH (`SSH_CONNECTION` or `SSH_TTY` set), where the answer makes a
/// network round trip.
pub const SSH_QUERY_TIMEOUT: Duration = Duration::from_secs(1);
/// After a query that timed out, the longest the chat waits for the late answer, to drop it.
/// The wait ends as soon as the answer to DA1 (the last one asked) is in.
pub const LATE_ANSWER_WAIT: Duration = Duration::from_secs(1);

/// How long to wait for the terminal's answer: [`SSH_QUERY_TIMEOUT`] over SSH, else
/// [`QUERY_TIMEOUT`].
#[must_use]
pub fn query_timeout(env: &dyn Fn(&str) -> Option<String>) -> Duration {
    let set = |name: &str| env(name).is_some_and(|v| !v.is_empty());
    if set("SSH_CONNECTION") || set("SSH_TTY") {
        SSH_QUERY_TIMEOUT
    } else {
        QUERY_TIMEOUT
    }
}

/// What the OSC 11 query came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The terminal told its background.
    Background(Background),
    /// No answer within the wait: it may still come.
    TimedOut,
    /// No answer to expect (not a terminal, an unsupported one, an error).
    None,
}

/// Asks the terminal for its background the careful way: not at all when `input_pending`
/// (keys typed ahead), with `query` given the wait for `env` ([`query_timeout`]), and when
/// it timed out `discard_late` to drop the late answer before anything reads the input.
pub fn ask_terminal(
    env: &dyn Fn(&str) -> Option<String>,
    input_pending: impl FnOnce() -> bool,
    query: impl FnOnce(Duration) -> Answer,
    discard_late: impl FnOnce(),
) -> Option<Background> {
    if input_pending() {
        tracing::debug!("keys typed ahead: the terminal is not asked for its background");
        return None;
    }
    match query(query_timeout(env)) {
        Answer::Background(background) => Some(background),
        Answer::TimedOut => {
            discard_late();
            None
        }
        Answer::None => None,
    }
}

/// Whether `bytes` hold the end of an answer to DA1 (`ESC [ ? 6 2 ; 2 2 c`).
#[must_use]
pub fn holds_da1_answer(bytes: &[u8]) -> bool {
    bytes.windows(3).enumerate().any(|(start, w)| {
        w == b"\x1b[?"
            && bytes[start + 3..]
                .iter()
                .find(|b| !(b.is_ascii_digit() || **b == b';'))
                == Some(&b'c')
    })
}

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

/// Asks the terminal for its background colour (OSC 11), waiting at most `timeout`.
#[must_use]
pub fn query_terminal(timeout: Duration) -> Answer {
    let mut options = terminal_colorsaurus::QueryOptions::default();
    options.timeout = timeout;
    match terminal_colorsaurus::background_color(options) {
        Ok(colour) => Answer::Background(background_of(&colour)),
        Err(err) => {
            tracing::debug!(%err, "the terminal did not tell its background colour");
            match err {
                terminal_colorsaurus::Error::Timeout(_) => Answer::TimedOut,
                _ => Answer::None,
            }
        }
    }
}

/// The theme the chat starts with, from the process environment and, for `auto`, the
/// terminal. Call it before the terminal is taken over (raw mode, alternate screen); it
/// blocks (up to [`SSH_QUERY_TIMEOUT`] and [`LATE_ANSWER_WAIT`]).
#[must_use]
pub fn detect(choice: ThemeChoice) -> ThemeKind {
    let started = std::time::Instant::now();
    let env = |name: &str| std::env::var(name).ok();
    let (kind, decided) = resolve(choice, &env, || {
        ask_terminal(&env, tty::input_pending, query_terminal, || {
            tty::discard_late_answer(LATE_ANSWER_WAIT);
        })
    });
    tracing::debug!(
        theme = kind.as_str(),
        ?decided,
        elapsed_ms = started.elapsed().as_millis(),
        "chat theme"
    );
    kind
}

/// The controlling terminal's input, read without the chat's event loop.
#[cfg(unix)]
pub mod tty {
    use std::fs::File;
    use std::os::fd::AsFd;
    use std::time::{Duration, Instant};

    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};

    use super::holds_da1_answer;

    fn open() -> Option<File> {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .ok()
    }

    /// Runs `f` with `tty` in raw mode (so that a line not yet ended can be read), restoring
    /// its mode after. `None` when `tty` is not a terminal.
    fn in_raw_mode<T>(tty: &impl AsFd, f: impl FnOnce() -> T) -> Option<T> {
        let saved = tcgetattr(tty).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(tty, SetArg::TCSANOW, &raw).ok()?;
        let out = f();
        if let Err(err) = tcsetattr(tty, SetArg::TCSANOW, &saved) {
            tracing::debug!(%err, "the terminal's mode could not be restored");
        }
        Some(out)
    }

    fn readable(tty: &impl AsFd, timeout: PollTimeout) -> bool {
        let mut fds = [PollFd::new(tty.as_fd(), PollFlags::POLLIN)];
        poll(&mut fds, timeout).is_ok_and(|n| n > 0)
    }

    /// Whether keys are waiting on the controlling terminal.
    #[must_use]
    pub fn input_pending() -> bool {
        open().is_some_and(|tty| pending_on(&tty))
    }

    /// Whether input is waiting on `tty`, a line not yet ended included.
    #[must_use]
    pub fn pending_on(tty: &impl AsFd) -> bool {
        in_raw_mode(tty, || readable(tty, PollTimeout::ZERO)).unwrap_or(false)
    }

    /// Drops what the controlling terminal sends up to the end of an answer to DA1, or
    /// for at most `wait`.
    pub fn discard_late_answer(wait: Duration) {
        if let Some(tty) = open() {
            let dropped = discard_on(&tty, wait);
            tracing::debug!(dropped, "late answer to the colour query dropped");
        }
    }

    /// [`discard_late_answer`] on `tty`; returns the bytes dropped. Reads a byte at a time,
    /// so that nothing after the answer is taken.
    pub fn discard_on(tty: &impl AsFd, wait: Duration) -> usize {
        let deadline = Instant::now() + wait;
        in_raw_mode(tty, || {
            let mut seen = Vec::new();
            let mut byte = [0_u8; 1];
            while !holds_da1_answer(&seen) {
                let left = deadline.saturating_duration_since(Instant::now());
                let left = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
                if left == PollTimeout::ZERO || !readable(tty, left) {
                    break;
                }
                match nix::unistd::read(tty, &mut byte) {
                    Ok(1) => seen.push(byte[0]),
                    _ => break,
                }
            }
            seen.len()
        })
        .unwrap_or(0)
    }
}

/// The controlling terminal's input: nothing to check or drop where there is no `/dev/tty`.
#[cfg(not(unix))]
pub mod tty {
    use std::time::Duration;

    /// Never: without a way to look, the query is made.
    #[must_use]
    pub fn input_pending() -> bool {
        false
    }

    /// Nothing to do.
    pub fn discard_late_answer(_wait: Duration) {}
}
