//! Composing a message in the user's editor: `$VISUAL`, else `$EDITOR`, else `vi`, run on a
//! temporary file (readable by the user only) that holds the current input.
//!
//! The terminal is handed to the editor by the runtime (see `runtime`); this module only
//! prepares the file, runs the editor and reads the result back.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The longest an editor session may last before it is stopped. The user is in it, so the
/// limit is generous; it exists so that no wait of the UI is unbounded.
pub const EDITOR_LIMIT: Duration = Duration::from_secs(8 * 3600);

/// The largest file read back from the editor (8 MiB): a message, not a data set. A larger
/// file is kept where it is and not read.
pub const MAX_EDITED_BYTES: u64 = 8 * 1024 * 1024;

/// Text the editor wrote that could not simply become the input (the editor exited with an
/// error, ran too long or was stopped; the file is not UTF-8 or could not be read back): the
/// file is kept rather than deleted, so that nothing the user wrote is lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    /// Where the file is now kept (the user's only, 0600).
    pub path: PathBuf,
    /// What could be read of it.
    pub text: KeptText,
}

/// What could be read of a [`Kept`] file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeptText {
    /// Its text, with the one trailing newline editors add taken off.
    Text(String),
    /// It is not valid UTF-8: its text as far as it decodes, each invalid sequence replaced by
    /// U+FFFD (`�`), the one trailing newline taken off. Only the file holds the exact bytes.
    Lossy(String),
    /// It could not be read back (why: unreadable, larger than [`MAX_EDITED_BYTES`]).
    Unreadable(String),
}

impl KeptText {
    /// The text that can go into the input; `None` when the file could not be read.
    #[must_use]
    pub fn text(&self) -> Option<&str> {
        match self {
            Self::Text(text) | Self::Lossy(text) => Some(text),
            Self::Unreadable(_) => None,
        }
    }
}

/// Why an edit did not produce a new input. The input is kept as it was, and anything the
/// editor wrote is kept in its file ([`Kept`]).
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
    /// The editor ended with an error status (e.g. `:cq` in vi; Vim also after an error
    /// earlier in the session, with the file saved).
    #[error("the editor `{editor}` exited with status {status}")]
    Failed {
        /// The editor command.
        editor: String,
        /// Its exit status (or the signal that ended it).
        status: String,
        /// What it had written, when the file changed.
        kept: Option<Kept>,
    },
    /// The editor ran past [`EDITOR_LIMIT`] and was stopped.
    #[error("the editor `{editor}` was still open after {limit} hours and was stopped", limit = EDITOR_LIMIT.as_secs() / 3600)]
    TimedOut {
        /// The editor command.
        editor: String,
        /// What it had written, when the file changed.
        kept: Option<Kept>,
    },
    /// The editor was stopped because the chat is ending (SIGTERM, SIGHUP).
    #[error("the editor `{editor}` was stopped: the chat is ending")]
    Stopped {
        /// The editor command.
        editor: String,
        /// What it had written, when the file changed.
        kept: Option<Kept>,
    },
    /// The editor succeeded but its file is not valid UTF-8: the text comes in as far as it
    /// decodes ([`KeptText::Lossy`]) and the file is kept, holding the exact bytes.
    #[error("the file the editor wrote is not valid UTF-8")]
    NotUtf8 {
        /// The file, and its text as far as it decodes.
        kept: Kept,
    },
    /// The editor succeeded but its file could not be read back ([`KeptText::Unreadable`]);
    /// it is kept, not deleted.
    #[error(
        "the file the editor wrote could not be read back: {}",
        unreadable_reason(kept)
    )]
    Unreadable {
        /// The file, and why it could not be read.
        kept: Kept,
    },
    /// The editor succeeded but removed its file: there is nothing to read back or keep.
    #[error("the editor `{0}` removed the file: nothing came back")]
    Removed(String),
    /// The terminal could not be handed over or taken back.
    #[error("the terminal could not be handed to the editor: {0}")]
    Terminal(#[source] std::io::Error),
}

/// Why a kept file could not be read, for [`EditorError::Unreadable`]'s message.
fn unreadable_reason(kept: &Kept) -> &str {
    match &kept.text {
        KeptText::Unreadable(why) => why,
        KeptText::Text(_) | KeptText::Lossy(_) => "unknown",
    }
}

impl EditorError {
    /// What the editor had written before it went wrong, kept in a file.
    #[must_use]
    pub fn kept(&self) -> Option<&Kept> {
        match self {
            Self::Failed { kept, .. }
            | Self::TimedOut { kept, .. }
            | Self::Stopped { kept, .. } => kept.as_ref(),
            Self::NotUtf8 { kept } | Self::Unreadable { kept } => Some(kept),
            _ => None,
        }
    }
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
/// The editor is run by `sh -c` (as `exec EDITOR FILE`), so a command with arguments
/// (`code --wait`, `emacs -nw`) works as it does in a shell, and stopping the child stops the
/// editor itself.
///
/// # Errors
/// See [`EditorError`]; the text is not changed on any error.
pub async fn edit(editor: &str, text: &str) -> Result<String, EditorError> {
    edit_until(editor, text, std::future::pending()).await
}

/// [`edit`], stopping the editor when `stop` completes (the chat is ending): the editor is
/// killed and anything it wrote is kept in its file ([`EditorError::Stopped`]).
///
/// # Errors
/// See [`EditorError`].
pub async fn edit_until(
    editor: &str,
    text: &str,
    stop: impl Future<Output = ()>,
) -> Result<String, EditorError> {
    // tempfile creates the file readable and writable by the user only (0600).
    let mut file = tempfile::Builder::new()
        .prefix("conductor-message-")
        .suffix(".md")
        .tempfile()
        .map_err(EditorError::File)?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.flush())
        .map_err(EditorError::File)?;
    // Closed (the editor may replace the file), deleted when `path` drops unless kept.
    let path = file.into_temp_path();
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("exec {editor} \"$1\""))
        .arg("conductor-edit")
        .arg(&path)
        .spawn()
        .map_err(|source| EditorError::Spawn {
            editor: editor.to_owned(),
            source,
        })?;
    let started = Instant::now();
    tokio::pin!(stop);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= EDITOR_LIMIT => {
                end(&mut child).await;
                let kept = keep_if_changed(path, text);
                return Err(EditorError::TimedOut {
                    editor: editor.to_owned(),
                    kept,
                });
            }
            Ok(None) => {
                tokio::select! {
                    () = &mut stop => {
                        end(&mut child).await;
                        let kept = keep_if_changed(path, text);
                        return Err(EditorError::Stopped { editor: editor.to_owned(), kept });
                    }
                    () = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
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
        let kept = keep_if_changed(path, text);
        return Err(EditorError::Failed {
            editor: editor.to_owned(),
            status,
            kept,
        });
    }
    if !path.exists() {
        return Err(EditorError::Removed(editor.to_owned()));
    }
    match read_back(&path) {
        // Read: the file goes (`path` drops).
        KeptText::Text(text) => Ok(text),
        text @ KeptText::Lossy(_) => Err(EditorError::NotUtf8 {
            kept: Kept {
                path: keep(path),
                text,
            },
        }),
        text @ KeptText::Unreadable(_) => Err(EditorError::Unreadable {
            kept: Kept {
                path: keep(path),
                text,
            },
        }),
    }
}

/// How long an editor asked to end (SIGTERM) has before it is killed.
const END_GRACE: Duration = Duration::from_secs(2);

/// Ends the editor: SIGTERM first, so that it gives the terminal back as it found it (Vim,
/// Neovim, nano and Emacs restore the screen and the terminal mode on SIGTERM, and Vim keeps
/// its swap file), then SIGKILL after [`END_GRACE`].
async fn end(child: &mut std::process::Child) {
    #[cfg(unix)]
    if let Ok(pid) = i32::try_from(child.id()) {
        // Our child, not yet reaped: its id cannot have been reused.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
        let asked = Instant::now();
        while asked.elapsed() < END_GRACE {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// `text` less the one trailing newline editors add.
fn without_final_newline(text: &str) -> &str {
    text.strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text)
}

/// The file the editor wrote, read back: its text less the one trailing newline, lossy when it
/// is not UTF-8, or why it could not be read (larger than [`MAX_EDITED_BYTES`] included).
fn read_back(path: &Path) -> KeptText {
    let mut bytes = Vec::new();
    let read = std::fs::File::open(path)
        .and_then(|file| file.take(MAX_EDITED_BYTES + 1).read_to_end(&mut bytes));
    if let Err(err) = read {
        return KeptText::Unreadable(err.to_string());
    }
    if !u64::try_from(bytes.len()).is_ok_and(|len| len <= MAX_EDITED_BYTES) {
        return KeptText::Unreadable(format!(
            "it is larger than {} MiB",
            MAX_EDITED_BYTES / (1024 * 1024)
        ));
    }
    match String::from_utf8(bytes) {
        Ok(text) => KeptText::Text(without_final_newline(&text).to_owned()),
        Err(err) => {
            let text = String::from_utf8_lossy(err.as_bytes());
            KeptText::Lossy(without_final_newline(&text).to_owned())
        }
    }
}

/// The file is kept, never deleted: it holds what the user wrote.
fn keep(path: tempfile::TempPath) -> PathBuf {
    match path.keep() {
        Ok(path) => {
            tracing::warn!(path = %path.display(), "the editor's file is kept");
            path
        }
        Err(err) => {
            tracing::warn!(error = %err.error, "the editor's file could not be marked kept");
            let kept = err.path.to_path_buf();
            // Dropping the `TempPath` would delete the file, and the user's text with it.
            std::mem::forget(err.path);
            kept
        }
    }
}

/// After an edit that went wrong: the file is kept (not deleted) unless it holds the seed
/// unchanged, or is gone. A file that is not UTF-8 or cannot be read is kept.
fn keep_if_changed(path: tempfile::TempPath, seed: &str) -> Option<Kept> {
    if !path.exists() {
        return None;
    }
    let text = read_back(&path);
    if text.text() == Some(without_final_newline(seed)) && matches!(text, KeptText::Text(_)) {
        return None;
    }
    Some(Kept {
        path: keep(path),
        text,
    })
}

/// Keeps `text` in a new file of the temporary directory (the user's only, 0600), as the
/// editor's file is kept: for a text the editor returned as the chat was ending.
///
/// # Errors
/// When the file cannot be made or written.
pub fn keep_text(text: &str) -> std::io::Result<PathBuf> {
    let mut file = tempfile::Builder::new()
        .prefix("conductor-message-")
        .suffix(".md")
        .tempfile()?;
    file.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        file.write_all(b"\n")?;
    }
    file.flush()?;
    Ok(keep(file.into_temp_path()))
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
