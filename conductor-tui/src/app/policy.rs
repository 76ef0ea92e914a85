//! `/policy`: the GPU policy of this chat, the outcome of the last residency check, and the
//! notices that wait for a check's outcome (after `/model NAME` and `/policy NAME`).

use conductor_core::gpu::AdmissionBasis;
use conductor_core::{Error, GpuPolicy};

use super::{App, EntryKind, NoticeLevel};

/// The outcome of the last residency check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The model checked.
    pub model: String,
    /// What the check found.
    pub kind: VerdictKind,
}

/// What a residency check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerdictKind {
    /// Fully on the GPU (or as much of it as the policy asks).
    Resident,
    /// Not checked: the policy is `off`.
    Unchecked,
    /// The server does not report where models run.
    Unreported,
    /// Under `warn`: not fully on the GPU, answering anyway (the diagnosis summary).
    Warned(String),
    /// Under `fix`: made to fit (the changes).
    Fixed(Vec<String>),
    /// Under `enforce` (or `fix` that could not fix it): refused (the diagnosis summary).
    Refused(String),
    /// The check itself failed (the reason).
    Failed(String),
    /// Stopped with Esc before it ended.
    Stopped,
}

impl VerdictKind {
    /// The outcome in a few words, for a notice title.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Resident => "on the GPU".to_owned(),
            Self::Unchecked => "not checked (GPU policy: off)".to_owned(),
            Self::Unreported => "this server does not report where models run".to_owned(),
            Self::Warned(_) => "not fully on the GPU: answering anyway (see below)".to_owned(),
            Self::Fixed(_) => "on the GPU after a fix (see below)".to_owned(),
            Self::Refused(_) => {
                "not fully on the GPU: questions will be refused (see below)".to_owned()
            }
            Self::Failed(reason) => format!("check failed: {reason}"),
            Self::Stopped => "check stopped".to_owned(),
        }
    }

    /// How serious the outcome is.
    #[must_use]
    pub fn level(&self) -> NoticeLevel {
        match self {
            Self::Resident | Self::Unchecked | Self::Unreported | Self::Fixed(_) => {
                NoticeLevel::Info
            }
            Self::Warned(_) | Self::Stopped => NoticeLevel::Warning,
            Self::Refused(_) | Self::Failed(_) => NoticeLevel::Error,
        }
    }

    /// The verdict of a passed check.
    pub(super) fn admitted(
        basis: Option<AdmissionBasis>,
        warning: Option<String>,
        fixed: Option<Vec<String>>,
    ) -> Self {
        if let Some(summary) = warning {
            return Self::Warned(summary);
        }
        if let Some(changes) = fixed {
            return Self::Fixed(changes);
        }
        match basis {
            None | Some(AdmissionBasis::Unchecked) => Self::Unchecked,
            Some(AdmissionBasis::Unreported) => Self::Unreported,
            Some(_) => Self::Resident,
        }
    }

    /// The verdict of a failed check.
    pub(super) fn refused(error: &Error) -> Self {
        match error.root() {
            Error::NotResident(diagnosis) => Self::Refused(diagnosis.summary()),
            Error::ModelNotFound { .. } => Self::Failed("the model is not on the server".into()),
            other => Self::Failed(other.to_string()),
        }
    }
}

/// A notice waiting for a check's outcome: its title now, and the start of its title once the
/// outcome is known (`Model: X` → `Model: X: on the GPU`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CheckNotice {
    pub(super) model: String,
    pub(super) waiting: String,
    pub(super) done: String,
}

/// What each policy does, in a line.
fn meaning(policy: GpuPolicy) -> &'static str {
    match policy {
        GpuPolicy::Enforce => "questions are refused unless the model is fully on the GPU",
        GpuPolicy::Warn => "answers even when the model is not fully on the GPU, with a warning",
        GpuPolicy::Fix => {
            "makes the model fit (smaller context, no layer cap), and refuses when it cannot"
        }
        GpuPolicy::Off => "where the model runs is not checked",
    }
}

impl App {
    /// `/policy` without an argument: the policy and the last verdict.
    pub(super) fn show_policy(&mut self) {
        let mut body = vec![meaning(self.info.policy).to_owned()];
        body.push(match &self.verdict {
            Some(verdict) => format!("Last check of {}: {}", verdict.model, verdict_line(verdict)),
            None => "No check has finished yet.".to_owned(),
        });
        self.notice(
            NoticeLevel::Info,
            format!("GPU policy: {}", self.info.policy),
            body,
            Some("/policy enforce|warn|fix|off changes it for this chat".into()),
        );
    }

    /// `/policy NAME`.
    pub(super) fn set_policy(&mut self, arg: &str) {
        match arg.parse::<GpuPolicy>() {
            Ok(policy) => self.actions.push(super::Action::SetPolicy(policy)),
            Err(expected) => self.notice(
                NoticeLevel::Error,
                format!("Unknown GPU policy `{arg}`: {expected}"),
                Vec::new(),
                Some("/policy alone shows the current one".into()),
            ),
        }
    }

    /// The worker applied a new policy; its check follows.
    pub(super) fn policy_changed(&mut self, policy: GpuPolicy) {
        self.info.policy = policy;
        self.last_warning = None;
        self.checking = true;
        let model = self.info.model.clone();
        let done = format!("GPU policy: {policy} for this chat; {model}");
        let waiting = format!("{done} (checking where it runs…)");
        self.wait_for_check(&model, waiting, done);
    }

    /// Shows `waiting` now; the check's outcome replaces it.
    pub(super) fn wait_for_check(&mut self, model: &str, waiting: String, done: String) {
        self.notice(NoticeLevel::Info, waiting.clone(), Vec::new(), None);
        self.check_notice = Some(CheckNotice {
            model: model.to_owned(),
            waiting,
            done,
        });
    }

    /// A check of `model` ended: remembered for `/policy`, and said in the notice that waits
    /// for it.
    pub(super) fn check_ended(&mut self, model: &str, kind: VerdictKind) {
        if let Some(waiting) = self
            .check_notice
            .take_if(|c| conductor_core::backend::same_model(&c.model, model))
        {
            let found = self.entries.iter().rposition(
                |e| matches!(e.kind(), EntryKind::Notice(n) if n.title == waiting.waiting),
            );
            if let Some(pos) = found
                && let EntryKind::Notice(notice) = self.entries[pos].kind_mut()
            {
                notice.title = format!("{}: {}", waiting.done, kind.describe());
                notice.level = kind.level();
            }
        }
        if kind != VerdictKind::Stopped {
            self.verdict = Some(Verdict {
                model: model.to_owned(),
                kind,
            });
        }
        self.dirty = true;
    }

    /// The check in progress was stopped with Esc.
    pub(super) fn check_stopped(&mut self) {
        if let Some(model) = self.check_notice.as_ref().map(|c| c.model.clone()) {
            self.check_ended(&model, VerdictKind::Stopped);
        }
    }
}

fn verdict_line(verdict: &Verdict) -> String {
    match &verdict.kind {
        VerdictKind::Warned(summary) => format!("answered anyway: {summary}"),
        VerdictKind::Refused(summary) => format!("refused: {summary}"),
        VerdictKind::Fixed(changes) => format!("on the GPU after a fix ({})", changes.join(", ")),
        other => other.describe(),
    }
}
