//! `conductor ps`: the models loaded now, as `ollama ps` shows them, beside what the local
//! driver measures.
//!
//! Ollama's PROCESSOR for a partial load counts its compute-graph estimate as GPU memory and
//! overstates the GPU share; the GPU (NVML) column is the runner's GPU memory as NVML measures
//! it, over the load's size, when the server is on this machine: with one model loaded, all of
//! Ollama's GPU memory; with several, the runner whose command line names the model's weights.
//! A load Ollama reports wholly on the GPU shows 100% beside the memory measured.
//!
//! On a pool of several hosts a HOST column says where each model is loaded; a host that does
//! not answer is a warning on stderr, and only the models of hosts on this machine are measured.

use std::process::ExitCode;
use std::time::Duration;

use conductor_core::backend::ModelServer;
use conductor_core::backend::pool::{PoolBackend, PoolHost};
use conductor_core::gpu::{DeviceView, gib};
use conductor_core::{Backend, Conductor, RunningModel};
use futures::future;
use serde_json::json;

use crate::cli::GlobalArgs;
use crate::commands::load_config;
use crate::exit::Failure;
use crate::output::{bytes, outln, table};

/// One loaded model, and the host that reports it.
struct Loaded<'a> {
    /// The host, as it names itself.
    host: String,
    /// True when that host is this machine (only then can NVML measure its runners).
    local: bool,
    /// The host's own server, to ask which weights the model's runner serves.
    server: &'a dyn ModelServer,
    model: RunningModel,
}

/// Runs the command; with `json`, one object `{"models": [...], "device": ...}`.
pub async fn run(global: &GlobalArgs, json: bool) -> Result<ExitCode, Failure> {
    let config = load_config(global)?;
    let conductor = Conductor::from_settings(&config.settings)?;
    let backend = conductor.backend();
    let server = backend.server().map_err(Failure::model_management("ps"))?;
    let pool = backend.pool().filter(|p| p.len() > 1);
    let hosts = pool.map(PoolBackend::hosts);
    let running = match &hosts {
        Some(hosts) => running_on_hosts(hosts).await?,
        None => server
            .running_models()
            .await?
            .into_iter()
            .map(|model| Loaded {
                host: backend.endpoint(),
                local: backend.is_local(),
                server,
                model,
            })
            .collect(),
    };
    let local_count = running.iter().filter(|l| l.local).count();
    let view = if local_count > 0 {
        device_view(&conductor).await
    } else {
        None
    };
    let now = jiff::Timestamp::now();
    let mut measured: Vec<Option<Measured>> = Vec::with_capacity(running.len());
    for loaded in &running {
        let runner_memory = match view.as_ref() {
            // A model on another machine: this machine's driver knows nothing of it.
            _ if !loaded.local => None,
            Some(view @ DeviceView::Devices { .. }) if local_count == 1 => view.ollama_memory(),
            Some(view @ DeviceView::Devices { .. }) => {
                // Several runners: each one's command line names the weights it serves.
                let blob = loaded
                    .server
                    .show_model(&loaded.model.name)
                    .await
                    .ok()
                    .and_then(|d| d.weights_blob().map(str::to_owned));
                blob.and_then(|blob| view.runner_memory(&blob))
            }
            _ => None,
        };
        measured.push(runner_memory.and_then(|memory| Measured::of(&loaded.model, memory)));
    }
    if json {
        let models: Vec<_> = running
            .iter()
            .zip(&measured)
            .map(|(loaded, measured)| {
                let m = &loaded.model;
                json!({
                    "name": m.name,
                    "host": loaded.host,
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
    let several_hosts = hosts.is_some();
    let rows: Vec<Vec<String>> = running
        .iter()
        .zip(&measured)
        .map(|(loaded, measured)| {
            let m = &loaded.model;
            let mut row = vec![m.name.clone()];
            if several_hosts {
                row.push(loaded.host.clone());
            }
            row.extend([
                short_id(&m.digest).to_owned(),
                bytes(m.size),
                m.processor().to_string(),
                measured
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), Measured::cell),
                m.context_length
                    .map_or_else(|| "-".to_owned(), |c| c.to_string()),
                until(m.expires_at.as_deref(), now),
            ]);
            row
        })
        .collect();
    let mut header = vec!["NAME"];
    if several_hosts {
        header.push("HOST");
    }
    header.extend(["ID", "SIZE", "PROCESSOR", "GPU (NVML)", "CONTEXT", "UNTIL"]);
    outln!("{}", table(&header, &rows))?;
    Ok(ExitCode::SUCCESS)
}

/// The models loaded on each host of a pool, host after host. A host that does not answer is
/// a warning naming it; an error only when none answers.
async fn running_on_hosts(hosts: &[PoolHost]) -> Result<Vec<Loaded<'_>>, Failure> {
    let answers = future::join_all(hosts.iter().map(|h| h.backend().running_models())).await;
    let mut loaded = Vec::new();
    let mut first_error = None;
    let mut answered = false;
    for (host, answer) in hosts.iter().zip(answers) {
        match answer {
            Ok(running) => {
                answered = true;
                loaded.extend(running.into_iter().map(|model| Loaded {
                    host: host.endpoint(),
                    local: host.is_local(),
                    server: host.backend(),
                    model,
                }));
            }
            Err(err) => {
                crate::output::warn(&format!(
                    "host {} did not answer; its models are not listed: {}",
                    conductor_core::text::one_line(&host.endpoint()),
                    crate::output::message_text(&err)
                ));
                first_error.get_or_insert(err);
            }
        }
    }
    match first_error {
        Some(err) if !answered => Err(err.into()),
        _ => Ok(loaded),
    }
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
    /// `runner_memory` over the load's size (at most 1), for a load Ollama reports in part on
    /// the CPU. A load Ollama reports wholly on the GPU is 100%: its size includes estimates
    /// (the compute graph) that the runner need not hold, so the quotient would read low for a
    /// model that is all there.
    fn of(model: &RunningModel, runner_memory: u64) -> Option<Self> {
        if model.size == 0 {
            return None;
        }
        #[allow(clippy::cast_precision_loss)]
        let share = if model.size_vram >= model.size {
            1.0
        } else {
            (runner_memory as f64 / model.size as f64).min(1.0)
        };
        Some(Self {
            runner_memory,
            share,
        })
    }
}

/// The first 12 hex digits of a digest, as `ollama ps` shows the ID.
fn short_id(digest: &str) -> &str {
    let digest = digest.strip_prefix("sha256:").unwrap_or(digest);
    digest.get(..12).unwrap_or(digest)
}

/// UNTIL as `ollama ps` words it: "4 minutes from now", "Forever" (kept loaded for ever),
/// "Stopping..." (the time has passed and the model is being unloaded).
pub fn until(expires_at: Option<&str>, now: jiff::Timestamp) -> String {
    let Some(seconds) = seconds_left(expires_at, now) else {
        return "-".to_owned();
    };
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

/// True when a loaded model's time is up: Ollama is unloading it (it stays in `/api/ps` for a
/// moment after `stop`).
pub fn is_stopping(expires_at: Option<&str>, now: jiff::Timestamp) -> bool {
    seconds_left(expires_at, now).is_some_and(|seconds| seconds < 0)
}

/// Seconds from `now` to `expires_at` (negative once past); `None` when there is no time or
/// it does not parse.
fn seconds_left(expires_at: Option<&str>, now: jiff::Timestamp) -> Option<i64> {
    let at = expires_at?.parse::<jiff::Timestamp>().ok()?;
    Some(at.as_second() - now.as_second())
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
        // What `stop` reads to tell a model being unloaded from one still loaded.
        let past = jiff::Timestamp::from_second(1_800_000_000 - 2)
            .unwrap()
            .to_string();
        let future = jiff::Timestamp::from_second(1_800_000_060)
            .unwrap()
            .to_string();
        assert!(is_stopping(Some(&past), now));
        assert!(!is_stopping(Some(&future), now));
        assert!(!is_stopping(None, now));
        assert!(!is_stopping(Some("garbage"), now));
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
        assert_eq!(view.runner_memory("sha256-aaa"), Some(3 << 30));
        assert_eq!(view.runner_memory("sha256-bbb"), Some(1 << 30));
        assert_eq!(view.runner_memory("sha256-ccc"), None);
        let loaded = |size| RunningModel {
            name: "m:latest".into(),
            size,
            size_vram: size / 2,
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
    fn a_load_wholly_on_the_gpu_reads_100_percent_whatever_its_estimates() {
        // Ollama's size counts the compute graph's estimate; the runner holds less.
        let model = RunningModel {
            name: "m:latest".into(),
            size: 6 << 30,
            size_vram: 6 << 30,
            context_length: None,
            expires_at: None,
            digest: String::new(),
            details: conductor_core::backend::ModelFamily::default(),
        };
        let measured = Measured::of(&model, 4 << 30).unwrap();
        assert!((measured.share - 1.0).abs() < 1e-9, "{measured:?}");
        assert_eq!(measured.cell(), "100% (4.0 GiB)");
        // In part on the CPU: the measured share.
        let split = RunningModel {
            size_vram: 3 << 30,
            ..model
        };
        let measured = Measured::of(&split, 3 << 30).unwrap();
        assert_eq!(measured.cell(), "50% (3.0 GiB)");
    }

    #[test]
    fn ids_are_twelve_digits() {
        assert_eq!(short_id("sha256:a80c4f17acd55265feec"), "a80c4f17acd5");
        assert_eq!(short_id("a80c4f17acd55265feec"), "a80c4f17acd5");
        assert_eq!(short_id("abc"), "abc");
    }
}
