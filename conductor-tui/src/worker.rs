//! The chat worker: a task that owns the [`Chat`], takes [`Command`]s and reports
//! [`WorkerEvent`]s into the UI's event channel.
//!
//! A [`conductor_core::Turn`] borrows its `Chat` mutably, so the chat lives here and nowhere
//! else. While an answer streams, the worker polls the turn and the command channel together:
//! [`Command::Cancel`] drops the turn (which closes the HTTP stream and records the partial
//! answer, marked incomplete, in the chat's history); other commands wait their turn.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use conductor_core::gpu::{AdmissionBasis, Diagnosis, FixReport};
use conductor_core::{Chat, ChatEvent, Completion, Error, GpuPolicy, Message};
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::event::{Event, EventSender};

/// What the UI asks of the worker.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Ask this and stream the answer.
    Send(String),
    /// Stop the request or the check in progress.
    Cancel,
    /// Check (and load) the model now, under the GPU policy, so the badge and any diagnosis
    /// show before the first question.
    Warm,
    /// Switch personality by name, from the next turn on.
    SwitchPersonality(String),
    /// Switch model, from the next turn on.
    SetModel(String),
    /// Set or clear the extra system text.
    SetSystem(Option<String>),
    /// Change the GPU policy of the chat's residency guard, then check the model under it.
    SetPolicy(GpuPolicy),
    /// Forget the conversation.
    Clear,
    /// Continue a saved conversation.
    Restore {
        /// Its messages.
        history: Vec<Message>,
        /// Its personality (kept as is when it cannot be loaded).
        personality: Option<String>,
        /// Its extra system text.
        system: Option<String>,
    },
}

/// What the worker reports.
#[derive(Debug)]
#[non_exhaustive]
pub enum WorkerEvent {
    /// The request was accepted: the user message is now in the conversation.
    Accepted,
    /// The request failed before it was accepted (unreachable, model not found, not resident
    /// under `enforce`): the conversation is unchanged.
    Rejected(Error),
    /// Cancelled before the request was accepted: the conversation is unchanged.
    Withdrawn,
    /// Under `warn`: the model is not fully on the GPU, and why.
    Warning(Arc<Diagnosis>),
    /// Under `fix`: what the guard changed to put the model on the GPU.
    Fixed(Arc<FixReport>),
    /// More of the answer.
    Content(String),
    /// More of the model's thinking.
    Thinking(String),
    /// The answer is complete.
    Finished {
        /// Ollama's statistics.
        completion: Completion,
        /// From sending to the first token (includes loading the model).
        ttft: Option<Duration>,
        /// From sending to the end.
        elapsed: Duration,
    },
    /// Cancelled while streaming; the partial answer is kept, marked incomplete.
    Stopped,
    /// The answer broke off (connection lost, server error); the partial answer is kept.
    Failed(Error),
    /// The model check of [`Command::Warm`] passed; under `warn` with a warning, under `fix`
    /// with what was fixed.
    Ready {
        /// The model checked.
        model: String,
        /// Under `warn`: why it is not fully on the GPU.
        warning: Option<Arc<Diagnosis>>,
        /// Under `fix`: what was changed.
        fixed: Option<Arc<FixReport>>,
        /// How the guard decided (`None`: the chat has no residency guard).
        basis: Option<AdmissionBasis>,
    },
    /// The model check of [`Command::Warm`] failed (not resident under `enforce`,
    /// unreachable, not found).
    NotReady {
        /// The model checked.
        model: String,
        /// Why.
        error: Error,
    },
    /// The personality is now this one.
    PersonalityChanged(String),
    /// The model is now this one.
    ModelChanged(String),
    /// The extra system text is now this.
    SystemChanged(Option<String>),
    /// The GPU policy is now this (a check under it follows).
    PolicyChanged(GpuPolicy),
    /// The GPU policy cannot be changed: the chat has no residency guard.
    PolicyUnavailable,
    /// The conversation was forgotten.
    Cleared,
    /// A saved conversation was restored.
    Restored {
        /// Messages restored.
        messages: usize,
    },
    /// A command could not be applied (e.g. an unknown personality).
    CommandFailed(Error),
}

/// The UI's handle on the worker.
#[derive(Debug, Clone)]
pub struct WorkerHandle {
    tx: mpsc::UnboundedSender<Command>,
}

impl WorkerHandle {
    /// Sends a command; ignored once the worker has stopped.
    pub fn send(&self, command: Command) {
        let _ = self.tx.send(command);
    }
}

/// Starts the worker on the current tokio runtime. It stops when every handle is dropped.
#[must_use]
pub fn spawn(chat: Chat, events: EventSender) -> (WorkerHandle, tokio::task::JoinHandle<Chat>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(run(chat, rx, events));
    (WorkerHandle { tx }, task)
}

/// The worker loop; returns the chat when the command channel closes.
pub async fn run(
    mut chat: Chat,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: EventSender,
) -> Chat {
    let mut queue: VecDeque<Command> = VecDeque::new();
    let emit = |event: WorkerEvent| events.send(Event::Worker(event));
    loop {
        let command = match queue.pop_front() {
            Some(command) => command,
            None => match commands.recv().await {
                Some(command) => command,
                None => return chat,
            },
        };
        match command {
            Command::Send(text) => {
                if !send(&mut chat, &text, &mut commands, &mut queue, &emit).await {
                    return chat;
                }
            }
            Command::Warm => {
                if !warm(&chat, &mut commands, &mut queue, &emit).await {
                    return chat;
                }
            }
            Command::Cancel => {}
            Command::SwitchPersonality(name) => match chat.switch_personality(&name) {
                Ok(()) => emit(WorkerEvent::PersonalityChanged(name)),
                Err(err) => emit(WorkerEvent::CommandFailed(err)),
            },
            Command::SetModel(model) => {
                chat.set_model(model.clone());
                emit(WorkerEvent::ModelChanged(model));
            }
            Command::SetSystem(system) => {
                chat.set_extra_system(system);
                emit(WorkerEvent::SystemChanged(
                    chat.extra_system().map(str::to_owned),
                ));
            }
            Command::SetPolicy(policy) => match chat.conductor().guard() {
                Some(guard) => {
                    guard.set_policy(policy);
                    emit(WorkerEvent::PolicyChanged(policy));
                    if !warm(&chat, &mut commands, &mut queue, &emit).await {
                        return chat;
                    }
                }
                None => emit(WorkerEvent::PolicyUnavailable),
            },
            Command::Clear => {
                chat.clear();
                emit(WorkerEvent::Cleared);
            }
            Command::Restore {
                history,
                personality,
                system,
            } => {
                if let Some(name) = personality.filter(|p| {
                    chat.personality()
                        .is_none_or(|current| current.name().as_str() != p)
                }) {
                    match chat.switch_personality(&name) {
                        Ok(()) => emit(WorkerEvent::PersonalityChanged(name)),
                        Err(err) => emit(WorkerEvent::CommandFailed(err)),
                    }
                }
                if system.as_deref() != chat.extra_system() {
                    chat.set_extra_system(system);
                    emit(WorkerEvent::SystemChanged(
                        chat.extra_system().map(str::to_owned),
                    ));
                }
                chat.restore_history(history);
                emit(WorkerEvent::Restored {
                    messages: chat.history().len(),
                });
            }
        }
    }
}

/// What to do with a command that arrives while a request runs.
enum Interrupt {
    Cancel,
    Closed,
}

fn triage(command: Option<Command>, queue: &mut VecDeque<Command>) -> Result<(), Interrupt> {
    match command {
        None => Err(Interrupt::Closed),
        Some(Command::Cancel) => Err(Interrupt::Cancel),
        Some(other) => {
            queue.push_back(other);
            Ok(())
        }
    }
}

/// One turn. Returns false when the command channel closed (the UI is gone).
async fn send(
    chat: &mut Chat,
    text: &str,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    queue: &mut VecDeque<Command>,
    emit: &impl Fn(WorkerEvent),
) -> bool {
    let started = Instant::now();
    let sent = {
        let request = chat.send(text);
        tokio::pin!(request);
        loop {
            tokio::select! {
                result = &mut request => break result,
                command = commands.recv() => match triage(command, queue) {
                    Ok(()) => {}
                    Err(interrupt) => {
                        emit(WorkerEvent::Withdrawn);
                        return matches!(interrupt, Interrupt::Cancel);
                    }
                },
            }
        }
    };
    let mut turn = match sent {
        Ok(turn) => turn,
        Err(err) => {
            emit(WorkerEvent::Rejected(err));
            return true;
        }
    };
    emit(WorkerEvent::Accepted);
    let mut ttft = None;
    loop {
        tokio::select! {
            // Commands first: Esc must win over a fast stream.
            biased;
            command = commands.recv() => match triage(command, queue) {
                Ok(()) => {}
                Err(interrupt) => {
                    // Dropping the turn closes the stream and records the partial answer.
                    drop(turn);
                    emit(WorkerEvent::Stopped);
                    return matches!(interrupt, Interrupt::Cancel);
                }
            },
            event = turn.next() => match event {
                Some(Ok(ChatEvent::Content(text))) => {
                    ttft.get_or_insert_with(|| started.elapsed());
                    emit(WorkerEvent::Content(text));
                }
                Some(Ok(ChatEvent::Thinking(text))) => {
                    ttft.get_or_insert_with(|| started.elapsed());
                    emit(WorkerEvent::Thinking(text));
                }
                Some(Ok(ChatEvent::Done(completion))) => {
                    emit(WorkerEvent::Finished { completion, ttft, elapsed: started.elapsed() });
                }
                Some(Ok(ChatEvent::Warning(diagnosis))) => emit(WorkerEvent::Warning(diagnosis)),
                Some(Ok(ChatEvent::Fixed(report))) => emit(WorkerEvent::Fixed(report)),
                Some(Ok(_)) => {}
                Some(Err(err)) => {
                    emit(WorkerEvent::Failed(err));
                    return true;
                }
                // The turn reports a stream that ends without `Done` as an error itself.
                None => return true,
            },
        }
    }
}

/// The start-up (or model-switch) check. Returns false when the command channel closed.
async fn warm(
    chat: &Chat,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    queue: &mut VecDeque<Command>,
    emit: &impl Fn(WorkerEvent),
) -> bool {
    let model = chat.model().to_owned();
    let result = {
        let check = chat.admit();
        tokio::pin!(check);
        loop {
            tokio::select! {
                result = &mut check => break result,
                command = commands.recv() => match triage(command, queue) {
                    Ok(()) => {}
                    Err(Interrupt::Cancel) => return true,
                    Err(Interrupt::Closed) => return false,
                },
            }
        }
    };
    match result {
        Ok(admission) => emit(WorkerEvent::Ready {
            model,
            warning: admission.as_ref().and_then(|a| a.warning.clone()),
            basis: admission.as_ref().map(|a| a.basis),
            fixed: admission.and_then(|a| a.fixed),
        }),
        Err(error) => emit(WorkerEvent::NotReady { model, error }),
    }
    true
}
