//! One window per conversation: the session lock, `conductor_core::session::lock`'s,
//! re-exported here. The runtime holds the lock of the session the app is saving.

pub use conductor_core::session::lock::{LockError, SessionLock};
