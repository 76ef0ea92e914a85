//! `conductor gpu verify|status`: where the model runs, with proof (on every host of a pool:
//! [`pool`]).

mod pool;
mod status;

use status::status;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use conductor_core::backend::ServerReports;
use conductor_core::gpu::{DeviceView, GpuProbe, ResidencyGuard, ResidencyReport, share_line};
use conductor_core::{
    Backend, ChatRequest, Conductor, Message, RunningModel, StreamEvent, TokenTiming,
};
use futures::StreamExt;
use serde_json::json;

use crate::cli::{GlobalArgs, GpuCommand};
use crate::commands::load_config;
use crate::exit::{Failure, NOT_RESIDENT};
use crate::output::outln;
use conductor_core::gpu::gib;

use crate::output::{self, bytes, paint, style, table};

/// Runs the command.
pub async fn run(global: &GlobalArgs, command: GpuCommand) -> Result<ExitCode, Failure> {
    let config = load_config(global)?;
    let conductor = Conductor::from_settings(&config.settings)?;
    let guard = conductor
        .guard()
        .cloned()
        .ok_or_else(|| Failure::other("no residency guard"))?;
    match command {
        GpuCommand::Verify { json, .. } => verify(&conductor, &guard, json).await,
        GpuCommand::Status { json, .. } => status(&conductor, &guard, json).await,
        GpuCommand::Forget { model, .. } => forget(&conductor, &guard, model.as_deref()),
    }
}

fn forget(
    conductor: &Conductor,
    guard: &ResidencyGuard,
    model: Option<&str>,
) -> Result<ExitCode, Failure> {
    if let Some(hosts) = conductor.backend().pool() {
        for host in hosts.hosts() {
            let backend: Arc<dyn Backend> = Arc::new(host.backend().clone());
            forget_on(&guard.for_host(backend), model)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    forget_on(guard, model)
}

fn forget_on(guard: &ResidencyGuard, model: Option<&str>) -> Result<ExitCode, Failure> {
    let store = guard.fixes();
    let forgotten = store.forget(model).map_err(|err| {
        Failure::other(format!(
            "cannot update {}: {err}",
            store.path().map_or_else(
                || "the remembered fixes".to_owned(),
                |p| p.display().to_string()
            )
        ))
    })?;
    outln!(
        "forgot {forgotten} GPU fix{} for {}{}",
        if forgotten == 1 { "" } else { "es" },
        store.host(),
        model.map_or_else(String::new, |m| format!(" ({m})"))
    )?;
    Ok(ExitCode::SUCCESS)
}

/// What the generation during `verify` showed.
#[derive(Debug, Default)]
struct Generation {
    tokens: u64,
    client_rate: Option<f64>,
    server_rate: Option<f64>,
    ttft: Option<Duration>,
    util_avg: Option<f64>,
    util_max: Option<u32>,
    samples: usize,
}

async fn verify(
    conductor: &Conductor,
    guard: &Arc<ResidencyGuard>,
    json: bool,
) -> Result<ExitCode, Failure> {
    if conductor.backend().model_server().is_none() {
        let model = conductor.defaults().model.clone();
        return verify_unreported(conductor, guard, &model, json).await;
    }
    if let Some(hosts) = conductor.backend().pool() {
        return pool::verify(conductor, hosts, guard, json).await;
    }
    let (report, generation) = verify_host(conductor, conductor.backend(), guard).await?;
    let code = if report.resident {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(NOT_RESIDENT)
    };
    if json {
        outln!("{:#}", verify_json(&report, &generation))?;
    } else {
        print_verdict(&report, &generation)?;
    }
    Ok(code)
}

/// `gpu verify` against a server that does not report residency (an OpenAI-compatible one):
/// the generation is measured and shown, the residency is said to be unknown, and the exit is
/// 4 (cannot verify), never 0 with a ✓ nor 3 (a claim nobody measured).
async fn verify_unreported(
    conductor: &Conductor,
    guard: &Arc<ResidencyGuard>,
    model: &str,
    json: bool,
) -> Result<ExitCode, Failure> {
    let generation =
        generate_sampling(conductor, conductor.backend(), guard.probe(), model).await?;
    let endpoint = conductor.backend().endpoint();
    let reports = conductor.backend().server_reports().await;
    if json {
        outln!(
            "{:#}",
            json!({
                "model": model,
                "resident": null,
                "residency": NOT_REPORTED,
                "endpoint": endpoint,
                "evidence": evidence_json(reports.as_ref()),
                "generation": generation_json(&generation),
            })
        )?;
    } else {
        let mut rows = vec![
            vec!["model".into(), model.to_owned()],
            vec!["server".into(), endpoint.clone()],
            vec!["residency".into(), NOT_REPORTED.into()],
        ];
        rows.extend(
            evidence_lines(reports.as_ref())
                .into_iter()
                .map(|line| vec!["evidence".into(), line]),
        );
        rows.extend(generation_rows(&generation, "the server"));
        let verdict = paint(
            output::stdout_color(),
            style::WARN,
            "? cannot verify: the server does not say where the model runs",
        );
        rows.push(vec!["verdict".into(), verdict]);
        outln!("{}", table(&["CHECK", "RESULT"], &rows))?;
    }
    Err(Failure::Reported(Box::new(Failure::Core(
        conductor_core::Error::Unsupported {
            capability: "residency reports",
            endpoint,
        },
    ))))
}

/// What `gpu verify`, `gpu status` and `doctor` say of a server without residency reports.
pub(super) const NOT_REPORTED: &str = "not reported by this server";

/// What such a server does report about itself, one line per source, worded as evidence: a
/// KV cache's fill and a context size say nothing of where the weights run.
pub(super) fn evidence_lines(reports: Option<&ServerReports>) -> Vec<String> {
    let Some(reports) = reports else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    if let Some(kv) = &reports.kv_cache {
        let server = if kv.metric.starts_with("vllm:") {
            "vLLM"
        } else {
            "llama-server"
        };
        let series = if kv.series > 1 {
            format!(", highest of {} series", kv.series)
        } else {
            String::new()
        };
        lines.push(format!(
            "{server} reports KV-cache usage {:.1}% ({}{series})",
            kv.ratio * 100.0,
            kv.metric
        ));
    }
    if let Some(props) = &reports.props {
        let mut parts = Vec::new();
        if let Some(n_ctx) = props.n_ctx {
            parts.push(format!("n_ctx {n_ctx}"));
        }
        if let Some(slots) = props.total_slots {
            parts.push(format!("{slots} slot{}", if slots == 1 { "" } else { "s" }));
        }
        if let Some(path) = &props.model_path {
            parts.push(format!("model {path}"));
        }
        if let Some(build) = &props.build_info {
            parts.push(format!("build {build}"));
        }
        lines.push(format!("llama-server: {} (/props)", parts.join(", ")));
    }
    lines
}

/// [`evidence_lines`] for `--json`: `null` for a backend without such reports, else the
/// `kv_cache` and `props` objects (each `null` when the server did not answer it).
pub(super) fn evidence_json(reports: Option<&ServerReports>) -> serde_json::Value {
    reports.map_or(serde_json::Value::Null, |r| {
        serde_json::to_value(r).unwrap_or(serde_json::Value::Null)
    })
}

/// The generation's rows of a `gpu verify` table; `server` names who reported the tokens/s.
fn generation_rows(generation: &Generation, server: &str) -> Vec<Vec<String>> {
    vec![
        vec![
            "GPU utilisation".into(),
            generation.util_avg.map_or_else(
                || "not sampled".into(),
                |avg| {
                    format!(
                        "{avg:.0}% average, {}% peak during generation ({} samples)",
                        generation.util_max.unwrap_or(0),
                        generation.samples
                    )
                },
            ),
        ],
        vec![
            "tokens/s".into(),
            format!(
                "{} as received · {} by {server} ({} tokens)",
                generation
                    .client_rate
                    .map_or_else(|| "-".into(), |r| format!("{r:.0}")),
                generation
                    .server_rate
                    .map_or_else(|| "-".into(), |r| format!("{r:.0}")),
                generation.tokens
            ),
        ],
        vec![
            "time to first token".into(),
            generation
                .ttft
                .map_or_else(|| "-".into(), |t| format!("{} ms", t.as_millis())),
        ],
    ]
}

fn generation_json(g: &Generation) -> serde_json::Value {
    json!({
        "tokens": g.tokens,
        "tokens_per_s_client": g.client_rate,
        "tokens_per_s_server": g.server_rate,
        "ttft_ms": g.ttft.map(|t| t.as_secs_f64() * 1e3),
        "gpu_utilization_avg": g.util_avg,
        "gpu_utilization_max": g.util_max,
        "samples": g.samples,
    })
}

/// Checks the configured model on `backend` with its `guard`, then generates a little.
async fn verify_host(
    conductor: &Conductor,
    backend: &Arc<dyn Backend>,
    guard: &ResidencyGuard,
) -> Result<(ResidencyReport, Generation), Failure> {
    let defaults = conductor.defaults();
    let model = defaults.model.clone();
    let report = guard
        .check(&model, &defaults.options, defaults.keep_alive)
        .await?;
    let generation = generate_sampling(conductor, backend, guard.probe(), &model).await?;
    Ok((report, generation))
}

/// A short generation with the configured options, sampling GPU utilisation every 50 ms.
async fn generate_sampling(
    conductor: &Conductor,
    backend: &Arc<dyn Backend>,
    probe: &Arc<dyn GpuProbe>,
    model: &str,
) -> Result<Generation, Failure> {
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = Arc::clone(&stop);
        let probe = Arc::clone(probe);
        tokio::task::spawn_blocking(move || {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                if let DeviceView::Devices { gpus, .. } = probe.snapshot()
                    && let Some(util) = gpus.iter().filter_map(|g| g.utilization).max()
                {
                    samples.push(util);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            samples
        })
    };
    let defaults = conductor.defaults();
    let mut request = ChatRequest::new(
        model,
        vec![Message::user("Count from 1 to 40, separated by spaces.")],
    );
    request.options = defaults.options.clone();
    request.options.num_predict = Some(64);
    request.keep_alive = defaults.keep_alive;
    let mut timing = TokenTiming::start();
    let result = async {
        let mut stream = backend.chat(request).await?;
        let mut generation = Generation::default();
        while let Some(event) = stream.next().await {
            match event? {
                StreamEvent::Content(_) => timing.token(),
                StreamEvent::Done(done) => generation.server_rate = done.stats.tokens_per_second(),
                _ => {}
            }
        }
        generation.tokens = timing.tokens();
        generation.ttft = timing.ttft();
        generation.client_rate = timing.tokens_per_second();
        Ok::<_, conductor_core::Error>(generation)
    }
    .await;
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.await.unwrap_or_default();
    let mut generation = result?;
    generation.samples = samples.len();
    if !samples.is_empty() {
        #[allow(clippy::cast_precision_loss)]
        let avg = samples.iter().map(|s| f64::from(*s)).sum::<f64>() / samples.len() as f64;
        generation.util_avg = Some(avg);
        generation.util_max = samples.iter().copied().max();
    }
    Ok(generation)
}

fn device_line(view: &DeviceView) -> String {
    match view {
        DeviceView::Remote => "remote Ollama: no local device view (relying on /api/ps)".into(),
        DeviceView::NoNvml { reason } => format!("no NVML: {reason}"),
        DeviceView::Devices { gpus, .. } if gpus.is_empty() => "NVML lists no GPU".into(),
        DeviceView::Devices { gpus, .. } => gpus
            .iter()
            .map(|g| {
                format!(
                    "{} ({} of {} free)",
                    g.name,
                    gib(g.memory_free),
                    gib(g.memory_total)
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
    }
}

fn runner_line(report: &ResidencyReport) -> String {
    let processes = report.device.ollama_processes();
    match (report.runner_gpu_memory(), &report.device) {
        (Some(memory), _) => format!(
            "{} (NVML: {})",
            gib(memory),
            processes
                .iter()
                .map(|p| p.label())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (None, DeviceView::Devices { .. }) => "none: no Ollama process on the GPU (NVML)".into(),
        (None, _) => "not measurable here".into(),
    }
}

fn print_verdict(report: &ResidencyReport, generation: &Generation) -> Result<(), Failure> {
    let color = output::stdout_color();
    let running = report.running.as_ref();
    let mut rows: Vec<Vec<String>> = vec![
        vec!["model".into(), report.model.clone()],
        vec![
            "size".into(),
            running.map_or_else(|| "-".into(), |r| bytes(r.size)),
        ],
        vec![
            "in VRAM".into(),
            running.map_or_else(|| "-".into(), |r| bytes(r.size_vram)),
        ],
        vec![
            "PROCESSOR".into(),
            running.map_or_else(|| "not loaded".into(), |r| r.processor().to_string()),
        ],
        vec![
            "context".into(),
            running
                .and_then(|r| r.context_length)
                .map_or_else(|| "-".into(), |c| c.to_string()),
        ],
        vec!["runner on GPU".into(), runner_line(report)],
        vec!["device".into(), device_line(&report.device)],
    ];
    rows.extend(generation_rows(generation, "Ollama"));
    if let Some(line) = running.and_then(|r| share_line(r, report.runner_gpu_memory())) {
        rows.push(vec!["measured".into(), line]);
    }
    let verdict = if report.resident {
        paint(color, style::OK, "✓ fully on the GPU")
    } else {
        paint(color, style::ERROR, "✗ not fully on the GPU")
    };
    rows.push(vec!["verdict".into(), verdict]);
    if let Some(d) = &report.diagnosis {
        rows.push(vec!["cause".into(), d.summary()]);
        for note in &d.notes {
            rows.push(vec![String::new(), note.clone()]);
        }
        rows.push(vec!["fix".into(), output::fix_text(d)]);
    }
    outln!("{}", table(&["CHECK", "RESULT"], &rows))?;
    Ok(())
}

fn running_json(r: &RunningModel) -> serde_json::Value {
    json!({
        "name": r.name,
        "size": r.size,
        "size_vram": r.size_vram,
        "processor": r.processor().to_string(),
        "context_length": r.context_length,
        "expires_at": r.expires_at,
    })
}

fn device_json(view: &DeviceView) -> serde_json::Value {
    match view {
        DeviceView::Remote => json!({ "available": false, "reason": "remote Ollama host" }),
        DeviceView::NoNvml { reason } => json!({ "available": false, "reason": reason }),
        DeviceView::Devices { driver, gpus } => json!({
            "available": true,
            "driver": driver,
            "gpus": gpus.iter().map(|g| json!({
                "index": g.index, "name": g.name,
                "memory_total": g.memory_total, "memory_used": g.memory_used, "memory_free": g.memory_free,
                "utilization": g.utilization, "temperature": g.temperature,
                "processes": g.processes.iter().map(|p| json!({
                    "pid": p.pid, "name": p.name, "used_memory": p.used_memory, "ollama": p.is_ollama(),
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        }),
    }
}

fn verify_json(report: &ResidencyReport, g: &Generation) -> serde_json::Value {
    json!({
        "model": report.model,
        "resident": report.resident,
        "running": report.running.as_ref().map(running_json),
        "runner_gpu_memory": report.runner_gpu_memory(),
        "measured": report.running.as_ref().and_then(|r| share_line(r, report.runner_gpu_memory())),
        "device": device_json(&report.device),
        "generation": generation_json(g),
        "diagnosis": report.diagnosis.as_ref().map(|d| json!({
            "cause": format!("{:?}", d.cause),
            "summary": d.summary(),
            "fix": output::fix_text(d),
            "notes": d.notes,
        })),
        "check_ms": report.check_time.as_secs_f64() * 1e3,
    })
}
