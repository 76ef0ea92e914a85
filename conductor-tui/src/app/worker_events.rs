//! Reactions to the worker: the answer as it streams, its end, refusals with their diagnosis,
//! and confirmations of switches.

use conductor_core::gpu::Diagnosis;
use conductor_core::text::one_line;
use conductor_core::{Error, Role};

use super::notices::{error_notice, fix_advice, fix_title};
use super::{
    Action, AnswerStats, App, Badge, ChatEntry, Entry, EntryKind, MessageState, Notice,
    NoticeLevel, Phase, VerdictKind, diagnosis_notice,
};
use crate::session::shorten;
use crate::worker::WorkerEvent;

impl App {
    /// The title of the notice for a server that cannot be reached, named as it is.
    fn server_down_title(&self) -> &'static str {
        match self.info.backend {
            conductor_core::BackendKind::Ollama => "Ollama is down",
            _ => "The server is down",
        }
    }

    pub(super) fn streaming_entry(&mut self) -> Option<&mut ChatEntry> {
        let entry = self.entries.iter_mut().rev().find(|e| {
            e.message()
                .is_some_and(|m| m.role == Role::Assistant && m.state == MessageState::Streaming)
        })?;
        entry.message_mut()
    }

    fn pending_question(&mut self) -> Option<&mut ChatEntry> {
        let entry = self.entries.iter_mut().rev().find(|e| {
            e.message()
                .is_some_and(|m| m.role == Role::User && m.state == MessageState::Pending)
        })?;
        entry.message_mut()
    }

    /// Ends the streaming answer: `state` when it has text, removed when it has none.
    fn end_answer(&mut self, state: MessageState) {
        if let Some(pos) = self.entries.iter().rposition(|e| {
            e.message()
                .is_some_and(|m| m.role == Role::Assistant && m.state == MessageState::Streaming)
        }) {
            let empty = self.entries[pos]
                .message()
                .is_some_and(|m| m.content.is_empty() && m.thinking.is_empty());
            if empty && state != MessageState::Complete {
                self.entries.remove(pos);
            } else if let Some(m) = self.entries[pos].message_mut() {
                m.state = state;
            }
        }
        self.phase = Phase::Idle;
        // A hint about the answer ("still answering: Esc stops it") is stale now.
        self.status_hint = None;
        self.actions.push(Action::SetIdle(true));
    }

    pub(super) fn worker(&mut self, event: WorkerEvent) {
        self.dirty = true;
        match event {
            WorkerEvent::Accepted => {
                if let Some(q) = self.pending_question() {
                    q.state = MessageState::Sent;
                }
                self.save();
            }
            WorkerEvent::Content(text) => {
                self.phase = Phase::Streaming;
                if let Some(answer) = self.streaming_entry() {
                    answer.content.push_str(&text);
                }
                self.unsaved_since.get_or_insert(self.ticks);
            }
            WorkerEvent::Thinking(text) => {
                self.phase = Phase::Streaming;
                if let Some(answer) = self.streaming_entry() {
                    answer.thinking.push_str(&text);
                }
            }
            WorkerEvent::Finished {
                completion,
                ttft,
                elapsed: _,
            } => {
                self.stats = Some(AnswerStats {
                    tokens_per_second: completion.stats.tokens_per_second(),
                    ttft,
                });
                self.end_answer(MessageState::Complete);
                self.retry = None;
                self.save();
                self.actions.push(Action::RefreshResidency);
            }
            WorkerEvent::Stopped => {
                self.end_answer(MessageState::Stopped);
                self.save();
            }
            WorkerEvent::Failed(err) => {
                let reason = err.root().to_string();
                self.end_answer(MessageState::Interrupted(reason));
                let mut notice = error_notice(&err, "The answer broke off", self.info.backend);
                notice
                    .body
                    .push("What arrived is kept. Alt+R (/retry) asks again.".to_owned());
                self.push_notice(notice);
                self.save();
                self.actions.push(Action::RefreshResidency);
            }
            WorkerEvent::Rejected(err) => {
                self.end_answer(MessageState::Stopped);
                let reason = err.root().to_string();
                if let Some(q) = self.pending_question() {
                    q.state = MessageState::NotSent(reason);
                }
                self.rejected(&err, false);
            }
            WorkerEvent::Withdrawn => {
                self.end_answer(MessageState::Stopped);
                if let Some(q) = self.pending_question() {
                    q.state = MessageState::NotSent("cancelled".to_owned());
                }
            }
            WorkerEvent::Warning(diagnosis) => {
                self.verdict = Some(super::Verdict {
                    model: diagnosis.model.clone(),
                    kind: VerdictKind::Warned(diagnosis.summary()),
                });
                self.warn(&diagnosis);
            }
            WorkerEvent::Fixed(report) => {
                self.notice(
                    NoticeLevel::Info,
                    fix_title(&report, &report.model),
                    report.changes.clone(),
                    Some(fix_advice(&report)),
                );
                self.actions.push(Action::RefreshResidency);
            }
            WorkerEvent::Ready {
                model,
                warning,
                fixed,
                basis,
            } => {
                self.checking = false;
                let verdict = VerdictKind::admitted(
                    basis,
                    warning.as_ref().map(|d| d.summary()),
                    fixed.as_ref().map(|f| f.changes.clone()),
                );
                self.check_ended(&model, verdict);
                if let Some(report) = fixed {
                    self.notice(
                        NoticeLevel::Info,
                        fix_title(&report, &model),
                        report.changes.clone(),
                        Some(fix_advice(&report)),
                    );
                }
                if let Some(diagnosis) = warning {
                    self.warn(&diagnosis);
                }
                self.actions.push(Action::RefreshResidency);
            }
            WorkerEvent::NotReady { model, error } => {
                self.checking = false;
                self.check_ended(&model, VerdictKind::refused(&error));
                self.rejected(&error, true);
                self.actions.push(Action::RefreshResidency);
            }
            WorkerEvent::PersonalityChanged(name) => {
                let note = if self.entries.is_empty() {
                    String::new()
                } else {
                    " from the next answer on; the conversation is kept".to_owned()
                };
                self.notice(
                    NoticeLevel::Info,
                    format!("Personality: {name}{note}"),
                    Vec::new(),
                    None,
                );
                self.info.personality = name;
                self.save();
            }
            WorkerEvent::ModelChanged(model) => {
                let done = format!("Model: {model}");
                self.wait_for_check(&model, format!("{done} (checking where it runs…)"), done);
                self.info.model = model;
                self.badge = Badge::Unknown;
                // The figures were the old model's: the new one's show after its first answer.
                self.stats = None;
                self.checking = true;
                self.last_warning = None;
                self.save();
            }
            WorkerEvent::SystemChanged(system) => {
                let title = match &system {
                    Some(text) => format!("System text set: {}", shorten(text, 60)),
                    None => "System text cleared".to_owned(),
                };
                self.notice(NoticeLevel::Info, title, Vec::new(), None);
                self.system = system;
                self.save();
            }
            WorkerEvent::PolicyChanged(policy) => self.policy_changed(policy),
            WorkerEvent::PolicyUnavailable => self.notice(
                NoticeLevel::Error,
                "The GPU policy cannot be changed: this chat runs without a residency guard".into(),
                Vec::new(),
                None,
            ),
            WorkerEvent::Cleared | WorkerEvent::Restored { .. } => {}
            WorkerEvent::CommandFailed(err) => {
                self.push_notice(error_notice(&err, "Not changed", self.info.backend));
            }
        }
    }

    /// A request (or, `checking`, the start-up check) failed before any answer.
    fn rejected(&mut self, err: &Error, checking: bool) {
        match err.root() {
            Error::NotResident(diagnosis) => {
                self.verdict = Some(super::Verdict {
                    model: diagnosis.model.clone(),
                    kind: VerdictKind::Refused(diagnosis.summary()),
                });
                if let Some(processor) = diagnosis.processor() {
                    self.badge = Badge::Loaded(processor);
                }
                let title = if checking {
                    format!(
                        "{} is not fully on the GPU: questions will be refused until it is (GPU \
                         policy: {})",
                        diagnosis.model, self.info.policy
                    )
                } else {
                    format!(
                        "Not answering: {} is not fully on the GPU (GPU policy: {})",
                        diagnosis.model, self.info.policy
                    )
                };
                self.push_notice(diagnosis_notice(diagnosis, NoticeLevel::Error, &title));
            }
            // Known by its variant, not its wording: Ollama words a missing model several ways.
            Error::ModelNotFound { model } => {
                let model = one_line(model);
                let title = if checking {
                    format!("Model {model} is not on the server: questions will fail until it is")
                } else {
                    format!("Not sent: model {model} is not on the server")
                };
                let mut body = Vec::new();
                if self.retry.is_some() {
                    body.push(
                        "Your question is kept: Alt+R (/retry) sends it again once the model is there."
                            .into(),
                    );
                }
                self.push_notice(Notice {
                    level: NoticeLevel::Error,
                    title,
                    body,
                    hint: Some(format!(
                        "/pull {model} downloads it (or `ollama pull {model}`); /model picks a \
                         local model"
                    )),
                });
            }
            Error::Unreachable { .. } => {
                self.badge = Badge::Unreachable;
                let mut notice = error_notice(err, self.server_down_title(), self.info.backend);
                if self.retry.is_some() {
                    notice
                        .body
                        .push("Your question is kept: Alt+R (/retry) sends it again.".into());
                }
                self.push_notice(notice);
            }
            _ => {
                let mut notice = error_notice(err, "Not sent", self.info.backend);
                if self.retry.is_some() {
                    notice.body.push("Alt+R (/retry) sends it again.".into());
                }
                self.push_notice(notice);
            }
        }
    }

    fn warn(&mut self, diagnosis: &Diagnosis) {
        if let Some(processor) = diagnosis.processor() {
            self.badge = Badge::Loaded(processor);
        }
        let summary = diagnosis.summary();
        if self.last_warning.as_ref() == Some(&summary) {
            return;
        }
        self.last_warning = Some(summary);
        let notice = diagnosis_notice(
            diagnosis,
            NoticeLevel::Warning,
            &format!(
                "Warning: {} is not fully on the GPU; answering anyway (GPU policy: warn)",
                diagnosis.model
            ),
        );
        // Above the answer it concerns, when one is on its way.
        let at = self
            .entries
            .iter()
            .rposition(|e| {
                e.message().is_some_and(|m| {
                    m.role == Role::Assistant && m.state == MessageState::Streaming
                })
            })
            .unwrap_or(self.entries.len());
        self.entries
            .insert(at, Entry::new(EntryKind::Notice(notice)));
    }
}
