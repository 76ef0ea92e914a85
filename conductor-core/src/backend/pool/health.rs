//! A pool member's health: consecutive failures, and how long it rests before it is tried
//! again (exponential backoff, probed lazily when a conversation starts; no background task).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a failed host is skipped: `base` after the first failure, doubled after each
/// further one, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The rest after one failure.
    pub base: Duration,
    /// The longest rest.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(2),
            max: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The rest after `failures` consecutive failures (1-based; 0 means none).
    #[must_use]
    pub fn rest(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        self.base
            .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(16)))
            .min(self.max)
    }
}

/// What is known of one host's health, as shown by `gpu status` and `doctor`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostHealth {
    /// Consecutive failures (0: the last contact succeeded, or there was none).
    pub failures: u32,
    /// How much longer the host is skipped; `None` when it is not resting.
    pub resting_for: Option<Duration>,
    /// The last failure, in words.
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
pub(super) struct Health {
    state: Mutex<HealthState>,
}

#[derive(Debug, Default)]
struct HealthState {
    failures: u32,
    until: Option<Instant>,
    last_error: Option<String>,
}

impl Health {
    fn state(&self) -> std::sync::MutexGuard<'_, HealthState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// True while the host rests after a failure.
    pub(super) fn resting(&self, now: Instant) -> bool {
        self.state().until.is_some_and(|until| until > now)
    }

    /// When the rest ends (for ordering resting hosts); `None` when not resting.
    pub(super) fn rest_ends(&self) -> Option<Instant> {
        self.state().until
    }

    pub(super) fn failures(&self) -> u32 {
        self.state().failures
    }

    pub(super) fn failed(&self, backoff: &Backoff, error: String) -> Duration {
        let mut state = self.state();
        state.failures = state.failures.saturating_add(1);
        let rest = backoff.rest(state.failures);
        state.until = Some(Instant::now() + rest);
        state.last_error = Some(error);
        rest
    }

    pub(super) fn succeeded(&self) {
        let mut state = self.state();
        state.failures = 0;
        state.until = None;
    }

    pub(super) fn snapshot(&self) -> HostHealth {
        let state = self.state();
        let now = Instant::now();
        HostHealth {
            failures: state.failures,
            resting_for: state
                .until
                .and_then(|until| until.checked_duration_since(now))
                .filter(|d| !d.is_zero()),
            last_error: state.last_error.clone(),
        }
    }
}
