//! Helpers the session tests share: a home's session store, what was sent, fixed-time sessions.

use std::path::PathBuf;

use conductor_core::Message;
use conductor_core::session::{Session, SessionMessage, SessionStore};

use crate::common::{Env, code, stderr, stdout};

impl Env {
    /// Runs and expects success.
    pub(crate) async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
        stdout(&out)
    }

    pub(crate) fn dir(&self) -> PathBuf {
        self.home.path().join(".local/share/conductor/sessions")
    }

    pub(crate) fn store(&self) -> SessionStore {
        SessionStore::new(self.dir())
    }

    pub(crate) fn sessions(&self) -> Vec<Session> {
        let store = self.store();
        store
            .list()
            .unwrap()
            .iter()
            .map(|s| store.load(&s.id).unwrap())
            .collect()
    }

    /// The messages of the last chat request, without the system message.
    pub(crate) fn last_sent(&self) -> Vec<(String, String)> {
        let request = self.ollama.requests_to("/api/chat").pop().unwrap();
        request.messages()
    }
}

pub(crate) fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// A saved session with fixed times, written as the chat UI or `ask` would.
pub(crate) fn saved(store: &SessionStore, id: &str, updated: &str, question: &str) -> Session {
    let mut session = Session::new("llama3.2:3b", "yollayah");
    session.id = id.into();
    session.created = updated.into();
    session.updated = updated.into();
    session.messages = vec![
        Message::user(question).into(),
        SessionMessage::answer(Message::assistant("an answer"), "llama3.2:3b", "yollayah"),
    ];
    store.save(&session).unwrap();
    session
}

/// The roles and texts of every chat request the stand-in received, system messages included.
pub(crate) fn all_sent(env: &Env) -> Vec<Vec<(String, String)>> {
    env.ollama
        .requests_to("/api/chat")
        .iter()
        .map(|r| {
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            body["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    (
                        m["role"].as_str().unwrap().to_owned(),
                        m["content"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .collect()
}
