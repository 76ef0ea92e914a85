//! Composing a message in the user's editor: `$VISUAL`, else `$EDITOR`, else `vi`, run on a
//! temporary file (readable by the user only) that holds the current input.
//!
//! The terminal is handed to the editor by the runtime (see `runtime`); this module only
//! prepares the file, runs the editor and reads the result back.

use std::io::Write;
use std::time::{Duration, Instant};

/// The longest an editor session may last before it is stopped. The user is in it, so the
/// limit is generous; it exists so that no wait of the UI is unbounded.
pub const EDITOR_LIMIT: Duration = Duration::from_secs(8 * 3600);

/// Why an edit did not produce a new input; the input is kept as it was in every case.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EditorError {
    /// The temporary file could not be made, written or read back.
    #[error("cannot prepare the file to edit: {0}")]
    File(#[source] std::io::Error),
    /// The editor could not be started.
    #[error("cannot start the editor `{editor}`: {source}")]
    Spawn {
        /// The editor command.
        editor: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The shell could not find the editor (exit status 127).
    #[error("the editor `{0}` was not found")]
    NotFound(String),
    /// The editor ended with an error status (e.g. `:cq` in vi).
    #[error("the editor `{editor}` exited with status {status}")]
    Failed {
        /// The editor command.
        editor: String,
        /// Its exit status (or the signal that ended it).
        status: String,
    },
    /// The editor ran past [`EDITOR_LIMIT`] and was stopped.
    #[error("the editor `{0}` was still open after {limit} hours and was stopped", limit = EDITOR_LIMIT.as_secs() / 3600)]
    TimedOut(String),
    /// The terminal could not be handed over or taken back.
    #[error("the terminal could not be handed to the editor: {0}")]
    Terminal(#[source] std::io::Error),
}

/// The editor command: `$VISUAL`, else `$EDITOR`, else `vi` (empty values are skipped).
#[must_use]
pub fn editor_command(visual: Option<&str>, editor: Option<&str>) -> String {
    [visual, editor]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|v| !v.is_empty())
        .unwrap_or("vi")
        .to_owned()
}

/// The editor command from this process's environment.
#[must_use]
pub fn editor_from_env() -> String {
    let visual = std::env::var("VISUAL").ok();
    let editor = std::env::var("EDITOR").ok();
    editor_command(visual.as_deref(), editor.as_deref())
}

/// Runs `editor` on a temporary file seeded with `text`; returns the file's text afterwards,
/// with the one trailing newline editors add taken off. The terminal must be the editor's
/// (cooked mode, main screen) while this runs.
///
/// The editor is run by `sh -c`, so a command with arguments (`code --wait`, `emacs -nw`)
/// works as it does in a shell.
///
/// # Errors
/// See [`EditorError`]; the text is not changed on any error.
pub async fn edit(editor: &str, text: &str) -> Result<String, EditorError> {
    // tempfile creates the file readable and writable by the user only (0600).
    let mut file = tempfile::Builder::new()
        .prefix("conductor-message-")
        .suffix(".md")
        .tempfile()
        .map_err(EditorError::File)?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.flush())
        .map_err(EditorError::File)?;
    // Closed (the editor may replace the file), deleted when `path` drops.
    let path = file.into_temp_path();
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("conductor-edit")
        .arg(&path)
        .spawn()
        .map_err(|source| EditorError::Spawn {
            editor: editor.to_owned(),
            source,
        })?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= EDITOR_LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(EditorError::TimedOut(editor.to_owned()));
            }
            Ok(None) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(source) => {
                return Err(EditorError::Spawn {
                    editor: editor.to_owned(),
                    source,
                });
            }
        }
    };
    if status.code() == Some(127) {
        return Err(EditorError::NotFound(editor.to_owned()));
    }
    if !status.success() {
        let status = status
            .code()
            .map_or_else(|| "(killed by a signal)".to_owned(), |c| c.to_string());
        return Err(EditorError::Failed {
            editor: editor.to_owned(),
            status,
        });
    }
    let edited = std::fs::read_to_string(&path).map_err(EditorError::File)?;
    let edited = edited
        .strip_suffix("\r\n")
        .or_else(|| edited.strip_suffix('\n'))
        .unwrap_or(&edited);
    Ok(edited.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visual_then_editor_then_vi() {
        assert_eq!(editor_command(Some("nvim"), Some("nano")), "nvim");
        assert_eq!(editor_command(Some(" "), Some("nano")), "nano");
        assert_eq!(editor_command(None, None), "vi");
    }
}
