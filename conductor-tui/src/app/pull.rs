//! `/pull NAME`: a model downloaded through the server, its progress in a notice that updates
//! in place, Esc to stop it, and the switch to the model once it is there.

use conductor_core::backend::PullProgress;
use conductor_core::gpu::gb;
use conductor_core::text::one_line;

use super::{Action, App, EntryKind, Notice, NoticeLevel};
use crate::event::PullUpdate;

/// The `/pull` in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullState {
    /// The model.
    pub model: String,
    /// The server's last status line (`pulling 6a0746a1ec1a`).
    pub status: String,
    /// Bytes of the current layer downloaded.
    pub completed: u64,
    /// Size of the current layer, when known.
    pub total: u64,
}

impl PullState {
    /// The progress notice's title: `Pulling qwen3:8b: pulling 6a0746a1ec1a 1.2 GB of 4.9 GB
    /// (24%)`.
    #[must_use]
    pub fn title(&self) -> String {
        let mut title = format!("Pulling {}: {}", self.model, self.status);
        if let Some(percent) = self.completed.saturating_mul(100).checked_div(self.total) {
            title.push_str(&format!(
                " {} of {} ({percent}%)",
                gb(self.completed),
                gb(self.total)
            ));
        }
        title
    }
}

fn is_pull_notice(notice: &Notice, model: &str) -> bool {
    notice.title.starts_with(&format!("Pulling {model}:"))
}

impl App {
    /// `/pull NAME`.
    pub(super) fn start_pull(&mut self, model: &str) {
        if model.is_empty() {
            self.notice(
                NoticeLevel::Error,
                "/pull needs a model name: /pull llama3.2:3b".into(),
                Vec::new(),
                Some("the names are at https://ollama.com/library".into()),
            );
            return;
        }
        if let Some(pull) = &self.pull {
            let text = format!("already pulling {}: Esc stops it", pull.model);
            self.hint(&text);
            return;
        }
        let state = PullState {
            model: model.to_owned(),
            status: "starting".into(),
            completed: 0,
            total: 0,
        };
        self.push_notice(Notice {
            level: NoticeLevel::Info,
            title: state.title(),
            body: Vec::new(),
            hint: Some("Esc stops the download".into()),
        });
        self.pull = Some(state);
        self.actions.push(Action::Pull(model.to_owned()));
    }

    /// Esc while a pull runs.
    pub(super) fn cancel_pull(&mut self) {
        if self.pull.is_some() {
            self.actions.push(Action::CancelPull);
        }
    }

    /// The pull of `model` moved on.
    pub(super) fn pull_update(&mut self, model: &str, update: PullUpdate) {
        if self.pull.as_ref().is_none_or(|p| p.model != model) {
            return;
        }
        match update {
            PullUpdate::Progress(progress) => self.pull_progress(&progress),
            PullUpdate::Done => {
                self.pull = None;
                self.pull_notice(model, |notice| {
                    notice.title = format!("Pulled {model}: switching to it");
                    notice.hint = None;
                });
                self.actions.push(Action::SetModel(model.to_owned()));
            }
            PullUpdate::Failed(reason) => {
                self.pull = None;
                let reason = one_line(&reason).into_owned();
                self.pull_notice(model, |notice| {
                    notice.level = NoticeLevel::Error;
                    notice.title = format!("Cannot pull {model}: {reason}");
                    notice.hint = Some(
                        "check the name (https://ollama.com/library) and that the server can \
                         reach the internet; the model in use is unchanged"
                            .into(),
                    );
                });
            }
            PullUpdate::Cancelled => {
                self.pull = None;
                self.pull_notice(model, |notice| {
                    notice.level = NoticeLevel::Warning;
                    notice.title = format!("Pull of {model} stopped");
                    notice.hint = Some(format!(
                        "/pull {model} carries on where it stopped; the model in use is unchanged"
                    ));
                });
            }
        }
        self.dirty = true;
    }

    fn pull_progress(&mut self, progress: &PullProgress) {
        let Some(pull) = &mut self.pull else {
            return;
        };
        pull.status = one_line(&progress.status).into_owned();
        pull.total = progress.total.unwrap_or(0);
        pull.completed = progress.completed.unwrap_or(0).min(pull.total);
        let title = pull.title();
        let model = pull.model.clone();
        self.pull_notice(&model, |notice| notice.title = title);
    }

    /// Changes the progress notice of `model`'s pull (the last one, if the conversation still
    /// shows it).
    fn pull_notice(&mut self, model: &str, change: impl FnOnce(&mut Notice)) {
        let found = self
            .entries
            .iter()
            .rposition(|e| matches!(e.kind(), EntryKind::Notice(n) if is_pull_notice(n, model)));
        if let Some(pos) = found
            && let EntryKind::Notice(notice) = self.entries[pos].kind_mut()
        {
            change(notice);
        }
    }
}
