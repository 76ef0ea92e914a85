//! `conductor ps`: the models loaded now, as `ollama ps` shows them, beside what the local
//! driver measures.
//!
//! Ollama's PROCESSOR for a partial load counts its compute-graph estimate as GPU memory and
//! overstates the GPU share; the GPU (NVML) column is the runner's GPU memory as NVML measures
//! it, over the load's size, when the server is on this machine: with one model loaded, all of
//! Ollama's GPU memory; with several, the runner whose command line names the model's weights.

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
    let server = conductor.backend().server()?;
    let running = server.running_models().await?;
    let view = device_view(&conductor).await;
    let now = jiff::Timestamp::now();
    let mut measured: Vec<Option<Measured>> = Vec::with_capacity(running.len());
    for model in &running {
        let runner_memory = match view.as_ref() {
            Some(view @ DeviceView::Devices { .. }) if running.len() == 1 => view.ollama_memory(),
            Some(view @ DeviceView::Devices { .. }) => {
                // Several runners: each one's command line names the weights it serves.
                let blob = server
                    .show_model(&model.name)
                    .await
                    .ok()
                    .and_then(|d| d.weights_blob().map(str::to_owned));
                blob.and_then(|blob| runner_memory_of(view, &blob))
            }
            _ => None,
        };
        measured.push(runner_memory.and_then(|memory| Measured::of(model, memory)));
    }
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

impl Measured {
    /// `runner_memory` over the load's size (at most 1).
    fn of(model: &RunningModel, runner_memory: u64) -> Option<Self> {
        if model.size == 0 {
            return None;
        }
        #[allow(clippy::cast_precision_loss)]
        let share = (runner_memory as f64 / model.size as f64).min(1.0);
        Some(Self {
            runner_memory,
            share,
        })
    }
}

/// The GPU memory of the Ollama runner processes serving the weights file `blob`
/// (`sha256-…`, which their command line names), when NVML lists any.
fn runner_memory_of(view: &DeviceView, blob: &str) -> Option<u64> {
    let runners: Vec<_> = view
        .ollama_processes()
        .into_iter()
        .filter(|p| p.cmdline.as_deref().is_some_and(|c| c.contains(blob)))
        .collect();
    (!runners.is_empty()).then(|| runners.iter().filter_map(|p| p.used_memory).sum())
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
    fn runners_are_told_apart_by_the_weights_they_serve() {
        use conductor_core::gpu::{GpuDevice, GpuProcess};
        let runner = |pid, blob: &str, memory| GpuProcess {
            pid,
            name: Some("ollama".into()),
            cmdline: Some(format!(
                "/usr/bin/ollama runner --model /root/.ollama/models/blobs/{blob} --port 1"
            )),
            used_memory: Some(memory),
        };
        let view = DeviceView::Devices {
            driver: None,
            gpus: vec![GpuDevice {
                index: 0,
                name: "H100".into(),
                memory_total: 80 << 30,
                memory_used: 10 << 30,
                memory_free: 70 << 30,
                utilization: None,
                temperature: None,
                processes: vec![
                    runner(1, "sha256-aaa", 3 << 30),
                    runner(2, "sha256-bbb", 1 << 30),
                ],
            }],
        };
        assert_eq!(runner_memory_of(&view, "sha256-aaa"), Some(3 << 30));
        assert_eq!(runner_memory_of(&view, "sha256-bbb"), Some(1 << 30));
        assert_eq!(runner_memory_of(&view, "sha256-ccc"), None);
        let loaded = |size| RunningModel {
            name: "m:latest".into(),
            size,
            size_vram: size,
            context_length: None,
            expires_at: None,
            digest: String::new(),
            details: conductor_core::backend::ModelFamily::default(),
        };
        let model = loaded(4 << 30);
        let measured = Measured::of(&model, 1 << 30).unwrap();
        assert!((measured.share - 0.25).abs() < 1e-9);
        assert_eq!(measured.cell(), "25% (1.0 GiB)");
        assert!(Measured::of(&loaded(0), 1).is_none());
    }

    #[test]
    fn ids_are_twelve_digits() {
        assert_eq!(short_id("sha256:a80c4f17acd55265feec"), "a80c4f17acd5");
        assert_eq!(short_id("a80c4f17acd55265feec"), "a80c4f17acd5");
        assert_eq!(short_id("abc"), "abc");
    }
}
