use std::time::Duration;

use super::{Backoff, fails_over};
use crate::error::{Error, TimeoutPhase};

#[test]
fn backoff_doubles_from_the_base_up_to_the_cap() {
    let backoff = Backoff {
        base: Duration::from_secs(2),
        max: Duration::from_secs(60),
    };
    let rests: Vec<u64> = (0..8).map(|n| backoff.rest(n).as_secs()).collect();
    assert_eq!(rests, [0, 2, 4, 8, 16, 32, 60, 60]);
    assert_eq!(backoff.rest(u32::MAX), Duration::from_secs(60));
}

#[test]
fn host_failures_fail_over_and_request_failures_do_not() {
    let host_failures = [
        Error::Unreachable {
            host: "h".into(),
            reason: "connection refused".into(),
        },
        Error::Http {
            status: 500,
            message: "boom".into(),
        },
        Error::Busy {
            status: 503,
            attempts: 4,
            message: "busy".into(),
        },
        Error::Timeout {
            endpoint: "/api/chat".into(),
            phase: TimeoutPhase::Load,
            after: Duration::from_secs(1),
        },
        Error::ModelNotFound { model: "m".into() },
        Error::Truncated,
    ];
    for err in &host_failures {
        assert!(fails_over(err), "{err}");
    }
    let request_failures = [
        Error::Http {
            status: 400,
            message: "bad".into(),
        },
        Error::InvalidRequest("x".into()),
        Error::Incomplete {
            partial: "par".into(),
            source: Box::new(Error::Truncated),
        },
    ];
    for err in &request_failures {
        assert!(!fails_over(err), "{err}");
    }
}
