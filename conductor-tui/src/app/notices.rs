//! Notices: conductor speaking in the conversation (errors with what to do, the GPU
//! diagnosis, fixes), never sent and never saved.

use conductor_core::BackendKind;
use conductor_core::Error;
use conductor_core::gpu::{Diagnosis, FixReport};

use super::{App, Entry, EntryKind};

/// How serious a notice is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeLevel {
    /// For information.
    Info,
    /// Something works, but not as it should (e.g. the model is partly on the CPU).
    Warning,
    /// Something failed.
    Error,
}

/// A message from conductor itself, shown in place in the conversation (never sent, never saved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// How serious.
    pub level: NoticeLevel,
    /// One line: what happened.
    pub title: String,
    /// More lines: the evidence.
    pub body: Vec<String>,
    /// What to do about it.
    pub hint: Option<String>,
}

impl App {
    /// Adds a notice at the end of the conversation.
    pub fn notice(
        &mut self,
        level: NoticeLevel,
        title: String,
        body: Vec<String>,
        hint: Option<String>,
    ) {
        self.push_notice(Notice {
            level,
            title,
            body,
            hint,
        });
    }

    pub(super) fn push_notice(&mut self, notice: Notice) {
        self.entries.push(Entry::new(EntryKind::Notice(notice)));
        self.dirty = true;
    }
}

/// A notice for an error: `title: error`, with the error's hint.
pub(super) fn error_notice(err: &Error, title: &str, backend: BackendKind) -> Notice {
    Notice {
        level: NoticeLevel::Error,
        title: format!("{title}: {}", err.root().message_for(backend)),
        body: Vec::new(),
        hint: err.hint_for(backend),
    }
}

/// A notice for a residency diagnosis: what is wrong, the evidence, the fix.
#[must_use]
pub fn diagnosis_notice(diagnosis: &Diagnosis, level: NoticeLevel, title: &str) -> Notice {
    let mut body = vec![diagnosis.summary()];
    body.extend(diagnosis.share_line());
    body.extend(diagnosis.notes.iter().cloned());
    Notice {
        level,
        title: title.to_owned(),
        body,
        hint: Some(format!("fix: {}", diagnosis.fix())),
    }
}

/// The notice title for a GPU fix: made now, or remembered from an earlier run.
pub(super) fn fix_title(report: &FixReport, model: &str) -> String {
    if report.remembered {
        format!("Using the GPU fix remembered for {model}")
    } else {
        format!("GPU fix applied to {model}")
    }
}

/// Where the fix is kept, and how to make it part of the configuration.
pub(super) fn fix_advice(report: &FixReport) -> String {
    let lines = report.config_lines();
    let kept = if report.saved_in.is_some() {
        "remembered for later runs; "
    } else {
        ""
    };
    format!(
        "{kept}to make it permanent put {} under [options] in conductor.toml",
        lines.join(", ")
    )
}
