//! Conversations saved as they go, so a crash or a killed terminal loses at most the tokens in
//! flight.
//!
//! The files themselves (their shape, the atomic user-only writes, damaged files set aside,
//! names) are `conductor_core::session`'s, re-exported here; this module adds the [`Saver`], the
//! thread that writes them without stalling a frame and tells the UI what it must know.

use std::sync::mpsc;
use std::thread::JoinHandle;

pub use conductor_core::session::{
    FORMAT, Listed, Origin, Resumable, Session, SessionError, SessionMessage, SessionStore,
    SessionSummary, SetAside, shorten, validate_name,
};

use crate::event::{Event, EventSender};

/// A save to perform.
#[derive(Debug)]
pub struct SaveRequest {
    /// What to write.
    pub session: Session,
    /// Tell the UI where it went (for `/save`); failures are always told.
    pub announce: bool,
}

/// Writes sessions on a thread of its own, so a slow disk never stalls a frame. Requests that
/// pile up are coalesced: only the newest snapshot of each session is written.
#[derive(Debug)]
pub struct Saver {
    tx: Option<mpsc::Sender<SaveRequest>>,
    thread: Option<JoinHandle<()>>,
}

impl Saver {
    /// Starts the saver; results that the UI must see go to `events`.
    #[must_use]
    pub fn spawn(store: SessionStore, events: EventSender) -> Self {
        let (tx, rx) = mpsc::channel::<SaveRequest>();
        let thread = std::thread::Builder::new()
            .name("conductor-session-saver".into())
            .spawn(move || {
                // Names checked under the store's name lock once per session and name; a
                // name another session took first is dropped from this one's saves.
                let mut names = Claims::default();
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    batch.extend(rx.try_iter());
                    for mut request in coalesce(batch) {
                        let result = names.save(&store, &mut request.session);
                        match result {
                            Ok(path) if request.announce => {
                                events.send(Event::Saved(Ok(path)));
                            }
                            Ok(_) => {}
                            Err(SessionError::NameTaken { name, id: owner }) => {
                                events.send(Event::NameRefused {
                                    id: request.session.id.clone(),
                                    reason: format!("session {owner} is named '{name}'"),
                                    name,
                                });
                            }
                            Err(err) => {
                                tracing::warn!(error = %err, "session not saved");
                                events.send(Event::Saved(Err(err.to_string())));
                            }
                        }
                    }
                }
            })
            .ok();
        Self {
            tx: Some(tx),
            thread,
        }
    }

    /// Queues a save.
    pub fn save(&self, request: SaveRequest) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(request);
        }
    }

    /// Writes what is queued and stops the thread.
    pub fn finish(mut self) {
        self.tx.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The names this saver has claimed for its sessions, and those it was refused.
#[derive(Debug, Default)]
struct Claims {
    claimed: std::collections::HashSet<(String, String)>,
    refused: std::collections::HashSet<(String, String)>,
}

impl Claims {
    /// Saves `session`; the first save under a name claims it under the store's name lock.
    /// A name already taken by another session is not written: the conversation is saved
    /// without it (nothing of it is lost) and the error says whose it is.
    fn save(
        &mut self,
        store: &SessionStore,
        session: &mut Session,
    ) -> Result<std::path::PathBuf, SessionError> {
        let Some(name) = session.name.clone() else {
            return store.save(session);
        };
        let key = (session.id.clone(), name);
        if self.claimed.contains(&key) {
            return store.save(session);
        }
        if self.refused.contains(&key) {
            session.name = None;
            return store.save(session);
        }
        match store.save_claiming_name(session) {
            Ok(path) => {
                self.claimed.insert(key);
                Ok(path)
            }
            Err(taken @ SessionError::NameTaken { .. }) => {
                self.refused.insert(key);
                session.name = None;
                store.save(session)?;
                Err(taken)
            }
            Err(err) => Err(err),
        }
    }
}

/// The newest request per session id, in order of their last appearance; an announce wins.
fn coalesce(batch: Vec<SaveRequest>) -> Vec<SaveRequest> {
    let mut out: Vec<SaveRequest> = Vec::new();
    for request in batch {
        if let Some(pos) = out.iter().position(|r| r.session.id == request.session.id) {
            let old = out.remove(pos);
            out.push(SaveRequest {
                announce: old.announce || request.announce,
                session: request.session,
            });
        } else {
            out.push(request);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use conductor_core::Message;

    #[test]
    fn coalescing_keeps_the_newest_per_session() {
        let mut a = Session::new("m", "p");
        a.id = "a".into();
        let mut a2 = a.clone();
        a2.messages.push(Message::user("x").into());
        let mut b = a.clone();
        b.id = "b".into();
        let batch = vec![
            SaveRequest {
                session: a,
                announce: true,
            },
            SaveRequest {
                session: b,
                announce: false,
            },
            SaveRequest {
                session: a2.clone(),
                announce: false,
            },
        ];
        let out = coalesce(batch);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].session, a2);
        assert!(out[1].announce);
    }
}
