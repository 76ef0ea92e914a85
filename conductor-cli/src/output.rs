//! Terminal conventions: color only on a terminal and without NO_COLOR, errors once on stderr.

use std::io::IsTerminal;

use crate::exit::Failure;

/// True when stderr is a terminal and NO_COLOR is not set.
pub fn stderr_color() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// True when stdout is a terminal and NO_COLOR is not set.
pub fn stdout_color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Wraps text in an ANSI style when `on`.
pub fn paint(on: bool, style: &str, text: &str) -> String {
    if on {
        format!("\x1b[{style}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// ANSI styles used.
pub mod style {
    /// Bold red.
    pub const ERROR: &str = "1;31";
    /// Yellow.
    pub const WARN: &str = "33";
    /// Green.
    pub const OK: &str = "32";
    /// Dim.
    pub const DIM: &str = "2";
    /// Bold.
    pub const BOLD: &str = "1";
}

/// Writes to stdout. A closed pipe (`| head`) becomes [`Failure::Closed`]: the reader is gone,
/// so the program ends quietly, as ripgrep does; any other write error (a full disk,
/// `> /dev/full`) is [`Failure::Output`]. Never panics, unlike `print!`.
pub fn write_out(args: std::fmt::Arguments<'_>) -> Result<(), Failure> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)
        .and_then(|()| out.flush())
        .map_err(output_failure)
}

/// The failure for a failed write to stdout.
pub fn output_failure(err: std::io::Error) -> Failure {
    if err.kind() == std::io::ErrorKind::BrokenPipe {
        Failure::Closed
    } else {
        Failure::Output(err.to_string())
    }
}

/// Writes to stderr, ignoring failure: there is nowhere left to report it, and it must not
/// panic (unlike `eprint!`).
pub fn write_err(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.flush());
}

/// `println!` that returns a [`Failure`] instead of panicking; use with `?`.
macro_rules! outln {
    () => { $crate::output::write_out(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::write_out(format_args!("{}\n", format_args!($($arg)*))) };
}
pub(crate) use outln;

/// `eprintln!` that never panics.
macro_rules! errln {
    ($($arg:tt)*) => { $crate::output::write_err(format_args!("{}\n", format_args!($($arg)*))) };
}
pub(crate) use errln;

/// Server text for a terminal: control characters removed when `terminal` (escape sequences
/// from a hostile server must not retitle or clear the screen); unchanged for a pipe or file,
/// where the bytes are the user's data.
pub fn for_terminal(text: &str, terminal: bool) -> std::borrow::Cow<'_, str> {
    if terminal {
        conductor_core::text::strip_controls(text)
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// A remedy in command-line terms: flags first, then the conductor.toml line.
pub fn remedy_text(remedy: &conductor_core::gpu::Remedy) -> String {
    use conductor_core::gpu::Remedy;
    match remedy {
        Remedy::SetContext {
            num_ctx,
            max_fitting,
            in_modelfile,
        } => {
            let mut text = format!(
                "set a smaller context: `--num-ctx {num_ctx}` or `num_ctx = {num_ctx}` under [options] in conductor.toml"
            );
            if let Some(max) = max_fitting {
                text.push_str(&format!(" (at most ~{max} fits now)"));
            }
            if *in_modelfile {
                text.push_str(", or lower `PARAMETER num_ctx` in the Modelfile");
            }
            text
        }
        Remedy::AllLayersOnGpu { layers, .. } => format!("{remedy}, or send num_gpu {layers}"),
        Remedy::FixPolicy => "`--gpu-policy fix` does this, and remembers it".to_owned(),
        Remedy::ChooseCpu => "to run on the CPU deliberately, use `--gpu-policy warn` (or `policy = \"off\"` under [gpu] in conductor.toml)".to_owned(),
        other => other.to_string(),
    }
}

/// What to do about a diagnosis, in command-line terms.
pub fn fix_text(diagnosis: &conductor_core::gpu::Diagnosis) -> String {
    diagnosis
        .remedies()
        .iter()
        .map(remedy_text)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The kind of server this run talks to, once the configuration is loaded; errors and hints
/// name that server (Ollama, or "the server" for an OpenAI-compatible one).
static BACKEND: std::sync::OnceLock<conductor_core::BackendKind> = std::sync::OnceLock::new();

/// Records the backend kind of this run, for [`message_text`] and [`hint_text`]. The first call
/// wins: a run talks to one kind of server.
pub fn set_backend(kind: conductor_core::BackendKind) {
    let _ = BACKEND.set(kind);
}

/// The backend kind recorded by [`set_backend`], Ollama before any.
pub fn backend() -> conductor_core::BackendKind {
    BACKEND.get().copied().unwrap_or_default()
}

/// The one-line message of an error, naming the server of this run.
pub fn message_text(err: &conductor_core::Error) -> String {
    err.message_for(backend())
}

/// The hint for an error, in command-line terms where the core's is neutral.
pub fn hint_text(err: &conductor_core::Error) -> Option<String> {
    hint_text_for(err, backend())
}

/// The hint for an error from a server of kind `kind`, in command-line terms.
pub fn hint_text_for(
    err: &conductor_core::Error,
    kind: conductor_core::BackendKind,
) -> Option<String> {
    use conductor_core::error::PersonalityError;
    use conductor_core::{BackendKind, Error};
    let ollama = kind == BackendKind::Ollama;
    match err.root() {
        Error::ModelNotFound { model } if ollama => Some(format!(
            "download it with `ollama pull {model}` or `conductor pull {model}`"
        )),
        Error::NotResident(diagnosis) => Some(fix_text(diagnosis)),
        Error::Unreachable { reason, .. } if !reason.contains("certificate") && !reason.contains("TLS") => Some(
            if ollama {
                "start it with `ollama serve` (or the Ollama app), or point OLLAMA_HOST / --host at the server"
            } else {
                "start the server (vLLM, llama-server, ...), or point --host / OLLAMA_HOST at its base URL, e.g. http://host:8000/v1"
            }
            .to_owned(),
        ),
        Error::Config(conductor_core::error::ConfigError::Refused { .. }) => Some(
            "point --config / CONDUCTOR_CONFIG at a regular conductor.toml of a few KiB".to_owned(),
        ),
        Error::Personality(PersonalityError::NotFound { .. }) => Some(
            "list them with `conductor personality list`, or add NAME.toml to your personalities directory"
                .to_owned(),
        ),
        _ => err.hint_for(kind),
    }
}

/// Prints a failure and its hint on stderr, once. Everything in it may quote the server, so
/// control characters are always removed.
pub fn print_failure(failure: &Failure) {
    if matches!(failure, Failure::Closed) {
        return;
    }
    let color = stderr_color();
    let (message, hint) = match failure {
        Failure::Core(err) => (message_text(err), hint_text(err)),
        Failure::Usage(message) => (message.clone(), Some("see `conductor --help`".to_owned())),
        Failure::UsageHint(message, hint) => (message.clone(), Some(hint.clone())),
        Failure::Interrupted(signal) => (format!("interrupted ({})", signal.name()), None),
        Failure::Other(message) => (message.clone(), None),
        Failure::Output(message) => (format!("cannot write the output: {message}"), None),
        Failure::Closed => return,
        Failure::Reported(inner) => return print_failure(inner),
    };
    let clean = |text: &str| conductor_core::text::strip_controls(text).into_owned();
    errln!(
        "{} {}",
        paint(color, style::ERROR, "error:"),
        clean(&message)
    );
    if let Failure::Core(err) = failure
        && let conductor_core::Error::NotResident(diagnosis) = err.root()
    {
        for note in &diagnosis.notes {
            errln!("{} {}", paint(color, style::DIM, "  note:"), clean(note));
        }
    }
    if let Some(hint) = hint {
        errln!("{} {}", paint(color, style::BOLD, "  hint:"), clean(&hint));
    }
}

/// What `fix` changed, and how to keep it: remembered for later runs, and the lines that make
/// it part of the configuration.
pub fn fix_notice(
    fix: &conductor_core::gpu::FixReport,
    config_file: Option<&std::path::Path>,
) -> String {
    if fix.remembered {
        return format!(
            "using the GPU fix remembered for '{}': {} (`conductor gpu forget` drops it)",
            fix.model,
            fix.changes.join("; ")
        );
    }
    let mut notice = format!(
        "model '{}' did not fit on the GPU; changed: {}",
        fix.model,
        fix.changes.join("; ")
    );
    if let Some(path) = &fix.saved_in {
        notice.push_str(&format!(
            "\n  remembered for later runs with --gpu-policy fix ({})",
            path.display()
        ));
    }
    let lines = fix.config_lines();
    if !lines.is_empty() {
        let file = config_file.map_or_else(
            || "conductor.toml (`conductor config show` names it)".to_owned(),
            |p| p.display().to_string(),
        );
        notice.push_str(&format!(
            "\n  to make it part of your configuration, put under [options] in {file}: {}",
            lines.join(", ")
        ));
    }
    notice
}

/// One line per remembered fix: `m3b:latest on http://…: num_ctx … → 16384 (since …)`.
pub fn remembered_fix_lines(fixes: &[conductor_core::gpu::RememberedFix]) -> Vec<String> {
    fixes
        .iter()
        .map(|f| {
            format!(
                "{} on {}: {} (since {})",
                f.model,
                f.host,
                f.changes.join("; "),
                f.recorded_at.get(..19).unwrap_or(&f.recorded_at)
            )
        })
        .collect()
}

/// Writes `text` and a newline to stdout (see [`write_out`]).
pub fn print_line(text: &str) -> Result<(), Failure> {
    outln!("{text}")
}

/// Prints a warning on stderr.
pub fn warn(message: &str) {
    errln!(
        "{} {message}",
        paint(stderr_color(), style::WARN, "warning:")
    );
}

/// Bytes for people: `25.2 GB` (decimal, as `ollama ps` prints sizes).
pub fn bytes(n: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.1} GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.0} MB", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.0} KB", n / 1e3)
    } else {
        format!("{n} B")
    }
}

/// A table with left-aligned columns, like `ollama list`.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    // Cells quote the server (model names, errors): one line each, no control characters.
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|cell| conductor_core::text::one_line(cell).into_owned())
                .collect()
        })
        .collect();
    let rows = &rows;
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                let pad = widths[i].saturating_sub(cell.chars().count()) + 3;
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
            }
        }
        out.trim_end().to_owned()
    };
    let mut out = line(header.iter().map(|h| (*h).to_owned()).collect());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_like_ollama() {
        assert_eq!(bytes(25_182_500_864), "25.2 GB");
        assert_eq!(bytes(4_152_782_848), "4.2 GB");
    }

    #[test]
    fn tables_align() {
        let t = table(
            &["NAME", "SIZE"],
            &[
                vec!["a".into(), "1".into()],
                vec!["long-name".into(), "2".into()],
            ],
        );
        assert_eq!(t, "NAME        SIZE\na           1\nlong-name   2");
    }
}
