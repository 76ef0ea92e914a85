//! One answer of a chat as it streams, recorded in the history when it ends.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::{Stream, StreamExt};

use super::{AnswerStream, ChatEvent};
use crate::backend::Message;
use crate::error::{Error, Result};

/// One answer of a [`Chat`](super::Chat), streaming. Records the answer in the history when it ends, and
/// the partial answer (marked incomplete) if it fails or is dropped early.
#[must_use = "a turn does nothing unless polled"]
pub struct Turn<'a> {
    pub(super) history: &'a mut Vec<Message>,
    pub(super) stream: AnswerStream,
    pub(super) answer: String,
    /// The answer is in the history (complete, or partial and marked).
    pub(super) committed: bool,
    /// The stream has ended (or failed); nothing more is polled.
    pub(super) ended: bool,
}

impl Turn<'_> {
    /// The answer received so far.
    #[must_use]
    pub fn answer_so_far(&self) -> &str {
        &self.answer
    }

    fn commit(&mut self, complete: bool) {
        if self.committed {
            return;
        }
        self.committed = true;
        if complete || !self.answer.is_empty() {
            let mut message = Message::assistant(std::mem::take(&mut self.answer));
            message.incomplete = !complete;
            self.history.push(message);
        }
    }
}

impl Stream for Turn<'_> {
    type Item = Result<ChatEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        // Polled on after `Done` until the body ends, so the connection returns to the pool.
        let polled = self.stream.poll_next_unpin(cx);
        match &polled {
            Poll::Ready(Some(Ok(ChatEvent::Content(text)))) => {
                let text = text.clone();
                self.answer.push_str(&text);
            }
            Poll::Ready(Some(Ok(ChatEvent::Done(_)))) => self.commit(true),
            Poll::Ready(Some(Err(_))) => {
                // Say how much of the answer arrived (it is kept in the history).
                let partial = self.answer.clone();
                self.commit(false);
                self.ended = true;
                if let Poll::Ready(Some(Err(err))) = polled {
                    return Poll::Ready(Some(Err(Error::incomplete(partial, err))));
                }
            }
            Poll::Ready(None) => {
                self.ended = true;
                if !self.committed {
                    // A backend whose stream stops without its final event: say so.
                    self.commit(false);
                    return Poll::Ready(Some(Err(crate::error::Error::Truncated)));
                }
            }
            _ => {}
        }
        polled
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.commit(false);
    }
}
