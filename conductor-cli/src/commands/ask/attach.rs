//! `ask -f PATH`: text files attached to the question.
//!
//! Layout of the user message (documented in docs/cli.md): each file, in the order given, as
//!
//! ````text
//! File: src/main.rs
//! ```rs
//! …its text…
//! ```
//! ````
//!
//! separated by blank lines, then a blank line and the prompt as without files (the question,
//! then any piped stdin). The fence is longer than any run of backticks in the file, so a
//! Markdown file cannot close it early; the info string is the file's extension.

use std::path::{Path, PathBuf};

use conductor_core::files::{FileRefusal, ReadProblem, read_small_bytes};

use crate::exit::Failure;

/// The most one attached file may hold (256 KiB): a few thousand lines of code, already more
/// than a small model's context.
pub const MAX_FILE: u64 = 256 << 10;
/// The most all attached files may hold together (1 MiB).
pub const MAX_TOTAL: u64 = 1 << 20;

/// One attached file: the path as given and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The path as the user wrote it (not made absolute: the model sees what the user typed).
    pub path: PathBuf,
    /// The file's text.
    pub text: String,
}

/// Reads every file, refusing (exit 2, naming the file) what is not a readable regular text
/// file within the limits.
pub fn read_all(paths: &[PathBuf]) -> Result<Vec<Attachment>, Failure> {
    let mut total = 0u64;
    let mut attachments = Vec::with_capacity(paths.len());
    for path in paths {
        let text = read_text(path, MAX_FILE)?;
        total += text.len() as u64;
        if total > MAX_TOTAL {
            return Err(Failure::Usage(format!(
                "cannot attach {}: with it the attached files come to {} KiB, more than the {} KiB allowed in all; attach fewer or smaller files",
                path.display(),
                total >> 10,
                MAX_TOTAL >> 10
            )));
        }
        attachments.push(Attachment {
            path: path.clone(),
            text,
        });
    }
    Ok(attachments)
}

/// The user message: the attachments, then the prompt (see the module docs).
pub fn message(attachments: &[Attachment], prompt: &str) -> String {
    let mut out = String::new();
    for file in attachments {
        let fence = "`".repeat(longest_backtick_run(&file.text).max(2) + 1);
        let info = file
            .path
            .extension()
            .and_then(|e| e.to_str())
            .filter(|e| e.chars().all(|c| c.is_ascii_alphanumeric()))
            .unwrap_or_default();
        // The header is one line whatever the name holds (a newline or an escape sequence
        // would break the layout, or the terminal of whoever reads the conversation back).
        let shown = file.path.display().to_string();
        out.push_str(&format!(
            "File: {}\n{fence}{info}\n",
            conductor_core::text::one_line(&shown)
        ));
        out.push_str(&file.text);
        if !file.text.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&fence);
        out.push_str("\n\n");
    }
    out.push_str(prompt);
    if prompt.is_empty() {
        // Files alone: no trailing blank line after the last fence.
        out.truncate(out.trim_end().len());
    }
    out
}

fn longest_backtick_run(text: &str) -> usize {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest
}

fn refuse(path: &Path, why: &str) -> Failure {
    Failure::Usage(format!("cannot attach {}: {why}", path.display()))
}

/// Reads one text file through the core's defensive reader (a regular file only, opened
/// non-blocking, at most `limit` bytes), then refuses what is not UTF-8 text without NUL bytes.
fn read_text(path: &Path, limit: u64) -> Result<String, Failure> {
    let bytes = read_small_bytes(path, limit).map_err(|problem| match problem {
        ReadProblem::Refused(FileRefusal::NotRegular { kind }) => refuse(
            path,
            &format!(
                "it is {kind}; only regular text files can be attached (pipe other input on stdin)"
            ),
        ),
        ReadProblem::Refused(FileRefusal::TooLarge { limit }) => too_large(path, limit),
        ReadProblem::Refused(other) => refuse(path, &other.to_string()),
        ReadProblem::Io(err) => refuse(path, &err.to_string()),
        other => refuse(path, &format!("{other:?}")),
    })?;
    if let Some(at) = bytes.iter().position(|b| *b == 0) {
        return Err(refuse(
            path,
            &format!(
                "it looks binary (a NUL byte at offset {at}); only text files can be attached"
            ),
        ));
    }
    String::from_utf8(bytes).map_err(|err| {
        refuse(
            path,
            &format!(
                "it is not UTF-8 text (invalid byte at offset {}); convert it first (e.g. `iconv -f latin1 -t utf-8`)",
                err.utf8_error().valid_up_to()
            ),
        )
    })
}

fn too_large(path: &Path, limit: u64) -> Failure {
    refuse(
        path,
        &format!(
            "it is larger than {} KiB, the most one attached file may hold; attach a part (e.g. `head -c 200K FILE | conductor ask ...`)",
            limit >> 10
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_with_a_newline_or_an_escape_keeps_the_header_on_one_line() {
        let files = [Attachment {
            path: PathBuf::from("evil\n```\n\u{1b}[2Jname.txt"),
            text: "body\n".into(),
        }];
        let text = message(&files, "Q");
        assert_eq!(text, "File: evil ``` [2Jname.txt\n```txt\nbody\n```\n\nQ");
    }

    #[test]
    fn files_come_first_in_fences_that_cannot_be_closed_early() {
        let files = [
            Attachment {
                path: "src/a.rs".into(),
                text: "fn a() {}\n".into(),
            },
            Attachment {
                path: "README.md".into(),
                text: "```sh\nls\n```".into(),
            },
        ];
        assert_eq!(
            message(&files, "why?"),
            "File: src/a.rs\n```rs\nfn a() {}\n```\n\nFile: README.md\n````md\n```sh\nls\n```\n````\n\nwhy?"
        );
        assert_eq!(
            message(&files[..1], ""),
            "File: src/a.rs\n```rs\nfn a() {}\n```"
        );
        assert_eq!(message(&[], "just this"), "just this");
    }
}
