//! `conductor ps`: the models loaded now, as `ollama ps` shows them, beside what the local
//! driver measures.
//!
//! Ollama's PROCESSOR for a partial load counts its compute-graph estimate as GPU memory and
//! overstates the GPU share; the GPU (NVML) column is the runner's GPU memory as NVML measures
//! it, over the load's size, when the server is on this machine.

use std::process::ExitCode;
use std::time::Duration;

use conductor_core::gpu::{DeviceView, gib};
use conductor_core::{Conductor, RunningModel};
use serde_json::json;

use crate::cli::GlobalArgs;
use crate::commands::load_config;
use crate::exit::Failure;
use crate::output::{bytes, outln, table};

/// Runs the command; with `json`, one object `{"models": [...], "device": ...}`.
pub async fn run(global: &GlobalArgs, json: bool) -> Result<ExitCode, Failure> {
    let config = load_config(global)?;
    let conductor = Conductor::from_settings(&config.settings)?;
    let running = conductor.backend().server()?.running_models().await?;
    let view = device_view(&conductor).await;
    let now = jiff::Timestamp::now();
    let measured: Vec<Option<Measured>> = running
        .iter()
        .map(|m| measured_share(m, &running, view.as_ref()))
        .collect();
    if json {
        let models: Vec<_> = running
            .iter()
            .zip(&measured)
            .map(|(m, measured)| {
                json!({
                    "name": m.name,
                    "id": short_id(&m.digest),
                    "digest": m.digest,
                    "size": m.size,
                    "size_vram": m.size_vram,
                    "processor": m.processor().to_string(),
                    "gpu_measured": measured.as_ref().map(|s| json!({
                        "runner_gpu_memory": s.runner_memory,
                        "share": s.share,
                    })),
                    "context_length": m.context_length,
                    "expires_at": m.expires_at,
                    "until": until(m.expires_at.as_deref(), now),
                })
            })
            .collect();
        let device = match &view {
            Some(DeviceView::Devices { .. }) => json!({ "available": true }),
            Some(DeviceView::NoNvml { reason }) => json!({ "available": false, "reason": reason }),
            Some(DeviceView::Remote) | None => {
                json!({ "available": false, "reason": "remote server" })
            }
        };
        outln!("{:#}", json!({ "models": models, "device": device }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = running
        .iter()
        .zip(&measured)
        .map(|(m, measured)| {
            vec![
                m.name.clone(),
                short_id(&m.digest).to_owned(),
                bytes(m.size),
                m.processor().to_string(),
                measured
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), Measured::cell),
                m.context_length
                    .map_or_else(|| "-".to_owned(), |c| c.to_string()),
                until(m.expires_at.as_deref(), now),
            ]
        })
        .collect();
    outln!(
        "{}",
        table(
            &[
                "NAME",
                "ID",
                "SIZE",
                "PROCESSOR",
                "GPU (NVML)",
                "CONTEXT",
                "UNTIL"
            ],
            &rows
        )
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The local driver's view, when the server is on this machine (`None` without a guard).
async fn device_view(conductor: &Conductor) -> Option<DeviceView> {
    let probe = std::sync::Arc::clone(conductor.guard()?.probe());
    tokio::task::spawn_blocking(move || probe.snapshot())
        .await
        .ok()
}

/// The runner's GPU memory as NVML measures it, over the size of the load.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Measured {
    runner_memory: u64,
    share: f64,
}

impl Measured {
    fn cell(&self) -> String {
        format!("{:.0}% ({})", self.share * 100.0, gib(self.runner_memory))
    }
}

/// The measured share of `model`: NVML lists runner processes, not models, so it is known
/// when one model is loaded (all Ollama GPU memory is its runner's). With several loaded, the
/// runners cannot be told apart here and the column stays empty.
fn measured_share(
    model: &RunningModel,
    running: &[RunningModel],
    view: Option<&DeviceView>,
) -> Option<Measured> {
    let view = view?;
    if running.len() != 1 || model.size == 0 {
        return None;
    }
    let runner_memory = view.ollama_memory()?;
    #[allow(clippy::cast_precision_loss)]
    let share = (runner_memory as f64 / model.size as f64).min(1.0);
    Some(Measured {
        runner_memory,
        share,
    })
}

/// The first 12 hex digits of a digest, as `ollama ps` shows the ID.
fn short_id(digest: &str) -> &str {
    let digest = digest.strip_prefix("sha256:").unwrap_or(digest);
    digest.get(..12).unwrap_or(digest)
}

/// UNTIL as `ollama ps` words it: "4 minutes from now", "Forever" (kept loaded for ever),
/// "Stopping..." (the time has passed and the model is being unloaded).
pub fn until(expires_at: Option<&str>, now: jiff::Timestamp) -> String {
    let Some(at) = expires_at.and_then(|t| t.parse::<jiff::Timestamp>().ok()) else {
        return "-".to_owned();
    };
    let seconds = at.as_second() - now.as_second();
    if seconds < 0 {
        return "Stopping...".to_owned();
    }
    // Ollama: more than 20 years ahead is a keep_alive of -1.
    if seconds > 20 * 365 * 24 * 3600 {
        return "Forever".to_owned();
    }
    format!(
        "{} from now",
        human_duration(Duration::from_secs(seconds.unsigned_abs()))
    )
}

/// Ollama's `format.HumanDuration`.
fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    match seconds {
        0 => return "Less than a second".to_owned(),
        1 => return "1 second".to_owned(),
        2..=59 => return format!("{seconds} seconds"),
        _ => {}
    }
    let minutes = seconds / 60;
    if minutes == 1 {
        return "About a minute".to_owned();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (seconds + 1800) / 3600;
    match hours {
        1 => "About an hour".to_owned(),
        2..48 => format!("{hours} hours"),
        48..336 => format!("{} days", hours / 24),
        336..1440 => format!("{} weeks", hours / 24 / 7),
        1440..17520 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", hours / 24 / 365),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds_from_now: i64, now: jiff::Timestamp) -> String {
        let then = jiff::Timestamp::from_second(now.as_second() + seconds_from_now).unwrap();
        until(Some(&then.to_string()), now)
    }

    #[test]
    fn until_reads_like_ollama_ps() {
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        assert_eq!(at(4 * 60 + 30, now), "4 minutes from now");
        assert_eq!(at(59, now), "59 seconds from now");
        assert_eq!(at(90, now), "About a minute from now");
        assert_eq!(at(3 * 3600, now), "3 hours from now");
        assert_eq!(at(-2, now), "Stopping...");
        assert_eq!(
            until(Some("2319-03-07T16:35:46.005921383Z"), now),
            "Forever"
        );
        assert_eq!(until(None, now), "-");
        assert_eq!(until(Some("garbage"), now), "-");
    }

    #[test]
    fn ids_are_twelve_digits() {
        assert_eq!(short_id("sha256:a80c4f17acd55265feec"), "a80c4f17acd5");
        assert_eq!(short_id("a80c4f17acd55265feec"), "a80c4f17acd5");
        assert_eq!(short_id("abc"), "abc");
    }
}
