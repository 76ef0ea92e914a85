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

/// Prints a failure and its hint on stderr, once.
pub fn print_failure(failure: &Failure) {
    let color = stderr_color();
    let (message, hint) = match failure {
        Failure::Core(err @ conductor_core::Error::ModelNotFound { model }) => (
            err.to_string(),
            Some(format!(
                "download it with `ollama pull {model}` or `conductor pull {model}`"
            )),
        ),
        Failure::Core(err) => (err.to_string(), err.hint()),
        Failure::Usage(message) => (message.clone(), Some("see `conductor --help`".to_owned())),
        Failure::Interrupted => ("interrupted".to_owned(), None),
        Failure::Other(message) => (message.clone(), None),
    };
    eprintln!("{} {message}", paint(color, style::ERROR, "error:"));
    if let Failure::Core(conductor_core::Error::NotResident(diagnosis)) = failure {
        for note in &diagnosis.notes {
            eprintln!("{} {note}", paint(color, style::DIM, "  note:"));
        }
    }
    if let Some(hint) = hint {
        eprintln!("{} {hint}", paint(color, style::BOLD, "  hint:"));
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
    let lines = fix_toml(&fix.options);
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

/// The `[options]` lines that hold a fix's runner options.
pub fn fix_toml(options: &conductor_core::RunnerOptions) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(n) = options.num_ctx {
        lines.push(format!("num_ctx = {n}"));
    }
    if let Some(n) = options.num_gpu {
        lines.push(format!("num_gpu = {n}"));
    }
    lines
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

/// Writes `text` and a newline to stdout. A closed pipe (`| head`) is not an error: the reader
/// is gone, so the program ends quietly; any other write error is reported.
pub fn print_line(text: &str) -> Result<(), Failure> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(err) => Err(Failure::other(format!("cannot write to stdout: {err}"))),
    }
}

/// Prints a warning on stderr.
pub fn warn(message: &str) {
    eprintln!(
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
