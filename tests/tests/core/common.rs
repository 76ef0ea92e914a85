//! Shared helpers of the core tests: settings and a conductor pointed at the stand-in.

use std::time::Duration;

use conductor_core::{Conductor, Settings};
use conductor_tests::StandIn;

pub(crate) fn settings(ollama: &StandIn) -> Settings {
    let mut settings = Settings::defaults();
    settings.host = ollama.host().parse().unwrap();
    settings.retry.base_delay = Duration::from_millis(1);
    settings.retry.max_delay = Duration::from_millis(5);
    settings
}

pub(crate) fn conductor(ollama: &StandIn) -> Conductor {
    Conductor::from_settings(&settings(ollama)).unwrap()
}
