//! `/pull`: a model downloaded through the server's model-server capability, its progress
//! sent into the event channel as it comes.

use std::time::Duration;

use conductor_core::Backend;
use futures::StreamExt;

use crate::event::{Event, EventSender, PullUpdate};

/// The longest a pull may go without a progress line (verifying a large model's digest sends
/// none for a while).
pub const PULL_IDLE: Duration = Duration::from_secs(300);

/// Downloads `model`, sending each progress line; the last update (done, failed) is returned.
pub async fn pull(backend: &dyn Backend, model: &str, events: &EventSender) -> PullUpdate {
    let Some(server) = backend.model_server() else {
        return PullUpdate::Failed("this server cannot download models".into());
    };
    let idle = || format!("no progress for {} s", PULL_IDLE.as_secs());
    let mut stream = match tokio::time::timeout(PULL_IDLE, server.pull_model(model)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(err)) => return PullUpdate::Failed(err.to_string()),
        Err(_) => return PullUpdate::Failed(idle()),
    };
    loop {
        match tokio::time::timeout(PULL_IDLE, stream.next()).await {
            Ok(Some(Ok(progress))) => {
                let done = progress.is_success();
                events.send(Event::Pull {
                    model: model.to_owned(),
                    update: PullUpdate::Progress(progress),
                });
                if done {
                    return PullUpdate::Done;
                }
            }
            Ok(Some(Err(err))) => return PullUpdate::Failed(err.to_string()),
            Ok(None) => return PullUpdate::Failed("the server ended the download early".into()),
            Err(_) => return PullUpdate::Failed(idle()),
        }
    }
}
