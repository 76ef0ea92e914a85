//! Fuzzes `conductor_core::config::ConfigLayer::from_toml` (the `conductor.toml` file), then
//! validates the layer the way `LoadedConfig::load_with` does (no disk, no environment).
//!
//! The input is the file text (invalid UTF-8 is replaced lossily).
//!
//! Checked (panics if violated):
//! - nothing panics (parsing, merging, validation, `explain`, error `Display` and `hint`);
//! - a file error is `ConfigError::Parse` whose `FileLocation` names the path given, with a
//!   1-based line and column that lie inside the text;
//! - relative `personality_dirs` are resolved against the (absolute) file's directory;
//! - validated settings keep their documented guarantees (model without whitespace, non-zero
//!   timeouts, `num_ctx` >= 256, min_fraction within 0..=1);
//! - values shown by `config show` read back to the same value: the Ollama host's `Display`
//!   parses to the same host (same URL, same endpoints), and every duration / keep_alive
//!   survives `format_duration` -> `parse_duration` exactly; durations respect the ten-year
//!   cap (`MAX_DURATION`).
//!
//! Regression inputs for what this target found are in fuzz/artifacts/config_toml/.
#![no_main]

use std::path::Path;
use std::time::Duration;

use conductor_core::KeepAlive;
use conductor_core::config::{
    ConfigLayer, ConfigSources, LoadedConfig, MAX_DURATION, OllamaHost, format_duration,
    parse_duration,
};
use conductor_core::error::ConfigError;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

const PATH: &str = "/home/fuzz/.config/conductor/conductor.toml";

fn render(err: ConfigError) -> String {
    let shown = err.to_string();
    let _ = format!("{err:?}");
    let err = conductor_core::Error::from(err);
    let _ = err.hint();
    assert_eq!(err.to_string(), shown, "Error::Config is not transparent");
    shown
}

fn check_file_error(err: ConfigError, path: &Path, text: &str) {
    match &err {
        ConfigError::Parse { location, message } => {
            let shown = err.to_string();
            common::check_location(location, message, &shown, path, text);
        }
        other => panic!("from_toml returned a non-Parse error: {other:?}"),
    }
    render(err);
}

fn check_duration_round_trip(what: &str, d: Duration) {
    assert!(d <= MAX_DURATION, "{what}: {d:?} is over the ten-year cap");
    let shown = format_duration(d);
    assert_eq!(
        parse_duration(&shown),
        Ok(d),
        "{what}: {d:?} is shown as {shown:?}, which does not read back"
    );
}

fn check_layer(layer: &ConfigLayer) {
    let _ = format!("{layer:?}");
    if let Some(dirs) = &layer.personality_dirs {
        for dir in dirs {
            assert!(dir.is_absolute(), "personality dir {dir:?} left relative");
        }
    }
    if let Some(host) = &layer.ollama.host {
        let shown = host.to_string();
        let _ = host.join("/api/chat");
        let _ = host.is_local();
        let again = match OllamaHost::parse(&shown) {
            Ok(again) => again,
            Err(err) => panic!("host shown as {shown:?} does not read back: {err}"),
        };
        assert_eq!(again.to_string(), shown, "host Display is not stable");
        assert_eq!(
            again.join("/api/chat"),
            host.join("/api/chat"),
            "host shown as {shown:?} reads back to another endpoint"
        );
        // A password is shown as `***` (never printed), so such an address reads back with
        // another password; everything else must be identical.
        if !host.has_credentials() {
            assert_eq!(
                &again, host,
                "host shown as {shown:?} reads back differently"
            );
        }
    }
    for (what, d) in [
        ("connect_timeout", layer.ollama.connect_timeout),
        ("load_timeout", layer.ollama.load_timeout),
        ("idle_timeout", layer.ollama.idle_timeout),
    ] {
        if let Some(d) = d {
            check_duration_round_trip(what, d.0);
        }
    }
    if let Some(keep_alive) = layer.keep_alive {
        let shown = keep_alive.to_string();
        let _ = keep_alive.to_json();
        if let KeepAlive::For(d) = keep_alive {
            check_duration_round_trip("keep_alive", d);
        }
        assert_eq!(
            shown.parse::<KeepAlive>(),
            Ok(keep_alive),
            "keep_alive {keep_alive:?} is shown as {shown:?}, which does not read back"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();
    let path = Path::new(PATH);
    let layer = match ConfigLayer::from_toml(path, text) {
        Ok(layer) => layer,
        Err(err) => return check_file_error(err, path, text),
    };
    check_layer(&layer);

    // Merge with the defaults and validate, as `conductor` does with a file and no env/flags.
    let sources = ConfigSources {
        config_file: None,
        flags: layer,
        ignore_file: true,
    };
    match LoadedConfig::load_with(sources, &|_| None, None) {
        Ok(loaded) => {
            let s = &loaded.settings;
            assert!(
                !s.model.trim().is_empty() && !s.model.chars().any(char::is_whitespace),
                "model {:?} accepted",
                s.model
            );
            for d in [s.timeouts.connect, s.timeouts.load, s.timeouts.idle] {
                assert!(!d.is_zero(), "zero timeout accepted: {:?}", s.timeouts);
            }
            if let Some(num_ctx) = s.options.num_ctx {
                assert!(num_ctx >= 256, "num_ctx {num_ctx} accepted");
            }
            let fraction = s.gpu_min_fraction.get();
            assert!((0.0..=1.0).contains(&fraction), "min_fraction {fraction}");
            let _ = format!("{loaded:?}");
            for line in loaded.explain() {
                let _ = format!("{} = {} ({})", line.key, line.value, line.origin);
                if line.key == "ollama.token" {
                    assert_eq!(line.value, "(set, hidden)", "token shown");
                }
            }
            let _ = s.host.to_string();
            let _ = s.keep_alive.map(|k| k.to_string());
        }
        Err(err) => {
            render(err);
        }
    }
});
