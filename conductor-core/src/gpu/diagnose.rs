//! Why a model is not fully on the GPU, with the evidence and a concrete fix.
//!
//! Pure functions of what Ollama and NVML report, so every cause can be tested on recorded
//! numbers. The SYSTEM prompt is never a cause: measured on an H100, a 7,125-token baked SYSTEM
//! left the model 100% on the GPU.

use std::fmt;

use crate::backend::{ModelDetails, Processor, RunnerOptions, RunningModel};
use crate::gpu::probe::{DeviceView, GpuProcess};

/// Head-room Ollama keeps free on a GPU (its minimum was 457 MiB on the H100); we keep 512 MiB.
pub const VRAM_MARGIN: u64 = 512 << 20;

/// Other processes holding less than this are not worth blaming.
const NOTABLE_OTHER_USE: u64 = 1 << 30;

/// Where a setting came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingSource {
    /// The request options conductor sends (config `[options]` or a flag).
    Request,
    /// A `PARAMETER` line in the model's Modelfile.
    Modelfile,
    /// Nobody set it: Ollama's own default. On a large card that is the model's maximum context.
    OllamaDefault,
}

impl fmt::Display for SettingSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Request => "conductor's request options",
            Self::Modelfile => "the model's Modelfile",
            Self::OllamaDefault => "Ollama's own default",
        })
    }
}

/// The most likely reason a model is not fully resident.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cause {
    /// Ollama does not list the model after loading it.
    NotLoaded,
    /// No GPU is visible here: no driver, no NVML, or NVML lists none.
    NoGpu {
        /// What NVML said.
        reason: String,
    },
    /// A local GPU has room, but the server placed nothing on it.
    NoGpuAccess {
        /// Free VRAM on the local GPU(s).
        free: u64,
    },
    /// A remote server placed nothing on a GPU (and no `num_gpu` explains it).
    NoGpuOnServer,
    /// `num_gpu` caps the layers on the GPU below the model's layer count.
    NumGpu {
        /// The value in force.
        num_gpu: i64,
        /// The model's layers (`block_count` + 1 output layer).
        layers: u64,
        /// Where it was set.
        source: SettingSource,
    },
    /// The context (KV cache) does not fit in the free VRAM; a smaller one would.
    ContextTooLarge {
        /// The context in use.
        num_ctx: u64,
        /// Where it came from.
        source: SettingSource,
        /// KV-cache bytes at that context.
        kv_bytes: u64,
        /// The largest context estimated to fit.
        max_fitting: u64,
    },
    /// Other processes hold the VRAM the model needs.
    VramHeldByOthers {
        /// The processes and their memory.
        processes: Vec<GpuProcess>,
        /// Their total.
        held: u64,
    },
    /// The weights alone are larger than the card.
    ModelTooLarge {
        /// Bytes of weights.
        weights: u64,
        /// Total VRAM.
        vram_total: u64,
    },
    /// The runner died while loading because GPU memory ran out (Ollama answers HTTP 500
    /// `CUDA error: the resource allocation failed` / `out of memory`).
    OutOfMemory {
        /// Ollama's message.
        message: String,
        /// The context the load asked for, when known.
        num_ctx: Option<u64>,
        /// Where that context came from.
        source: SettingSource,
        /// Free VRAM now (the dead runner holds none), when NVML sees the GPU.
        free: Option<u64>,
        /// The largest context estimated to fit in it.
        max_fitting: Option<u64>,
    },
    /// None of the known causes fits the evidence.
    Unknown,
    /// The backend does not report where its models live (it has no model server), so the
    /// policy could not be applied: the request was admitted unchecked.
    NotReported,
}

/// A diagnosis: where the model is, why it is not (fully) on the GPU, and what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnosis {
    /// The model.
    pub model: String,
    /// What Ollama's `/api/ps` reported, if it listed the model.
    pub running: Option<RunningModel>,
    /// GPU memory the Ollama runner holds, measured by NVML, when local.
    pub runner_gpu_memory: Option<u64>,
    /// The most likely cause.
    pub cause: Cause,
    /// Further evidence and contributing factors, one sentence each.
    pub notes: Vec<String>,
}

impl Diagnosis {
    /// Where Ollama says the model runs, e.g. `72%/28% CPU/GPU`.
    #[must_use]
    pub fn processor(&self) -> Option<Processor> {
        self.running.as_ref().map(RunningModel::processor)
    }

    /// One sentence: what is wrong.
    #[must_use]
    pub fn summary(&self) -> String {
        let model = &self.model;
        if self.cause == Cause::NotReported {
            return format!(
                "GPU residency of model '{model}' is not reported by this server: it runs unchecked"
            );
        }
        let placed = self
            .processor()
            .map_or_else(|| "not loaded".to_owned(), |p| p.to_string());
        let why = match &self.cause {
            Cause::NotLoaded => "Ollama does not list it after loading it".to_owned(),
            Cause::NoGpu { reason } => format!("no GPU is visible on this machine ({reason})"),
            Cause::NoGpuAccess { free } => format!(
                "Ollama is running without GPU access (e.g. in a container): the local GPU has {} free, yet the server placed nothing on it",
                gib(*free)
            ),
            Cause::NoGpuOnServer => {
                "the Ollama server placed nothing on a GPU: it has no usable GPU or no GPU access"
                    .to_owned()
            }
            Cause::NumGpu {
                num_gpu,
                layers,
                source,
            } => format!(
                "num_gpu {num_gpu} from {source} puts only {} of its {layers} layers on the GPU (num_gpu counts layers, not GPUs)",
                (*num_gpu).clamp(0, i64::try_from(*layers).unwrap_or(i64::MAX))
            ),
            Cause::ContextTooLarge {
                num_ctx,
                source,
                kv_bytes,
                ..
            } => format!(
                "its context of {num_ctx} tokens (from {source}) needs a {} KV cache that does not fit in the free VRAM",
                gib(*kv_bytes)
            ),
            Cause::VramHeldByOthers { held, .. } => {
                format!("other processes hold {} of the GPU's memory", gib(*held))
            }
            Cause::ModelTooLarge {
                weights,
                vram_total,
            } => format!(
                "its weights ({}) are larger than the GPU ({})",
                gib(*weights),
                gib(*vram_total)
            ),
            Cause::OutOfMemory {
                message, num_ctx, ..
            } => format!(
                "the GPU ran out of memory while loading it{} (Ollama: {message})",
                num_ctx.map_or_else(String::new, |c| format!(" with a context of {c} tokens"))
            ),
            Cause::Unknown => "the cause is not clear from Ollama's and NVML's reports".to_owned(),
            Cause::NotReported => "this backend does not report it".to_owned(),
        };
        format!("model '{model}' is not fully on the GPU ({placed}): {why}")
    }

    /// What to do, in neutral words (configuration-file terms, no command-line flags); a
    /// frontend words [`Diagnosis::remedies`] in its own terms instead.
    #[must_use]
    pub fn fix(&self) -> String {
        self.remedies()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Ollama's figure next to NVML's measurement, when both exist:
    /// "Ollama reports 28% GPU; the runner holds 1.6 GiB of a 25.7 GB load: effectively CPU".
    #[must_use]
    pub fn share_line(&self) -> Option<String> {
        share_line(self.running.as_ref()?, self.runner_gpu_memory)
    }
}

/// See [`Diagnosis::share_line`]. Ollama's partial percentage counts its compute-graph estimate
/// as GPU memory, so for a partial load NVML's measurement of the runner is the truth.
#[must_use]
pub fn share_line(running: &RunningModel, runner_memory: Option<u64>) -> Option<String> {
    let measured = runner_memory?;
    if running.is_fully_resident() {
        return None;
    }
    #[allow(clippy::cast_precision_loss)]
    let share = if running.size == 0 {
        0.0
    } else {
        measured as f64 / running.size as f64
    };
    let verdict = if share < 0.15 {
        "effectively CPU"
    } else if share < 0.5 {
        "mostly CPU"
    } else {
        "partly on the GPU"
    };
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let reported = (running.gpu_fraction() * 100.0).round() as u32;
    Some(format!(
        "Ollama reports {reported}% GPU; the runner holds {} of a {} load: {verdict}",
        gib(measured),
        gb(running.size)
    ))
}

/// A round context to suggest: a power of two at or below the estimate, at least 2048.
#[must_use]
pub fn suggested_context(max_fitting: u64) -> u64 {
    let mut ctx = 2048;
    while ctx * 2 <= max_fitting && ctx < 131_072 {
        ctx *= 2;
    }
    ctx
}

/// Everything the diagnosis looks at.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    /// The model.
    pub model: &'a str,
    /// `/api/ps` for it, if listed.
    pub running: Option<&'a RunningModel>,
    /// `/api/show` for it, if available.
    pub show: Option<&'a ModelDetails>,
    /// The options conductor sends.
    pub options: &'a RunnerOptions,
    /// Bytes of weights (the model's size on disk), if known.
    pub weights: Option<u64>,
    /// The local device view.
    pub device: &'a DeviceView,
}

/// KV-cache bytes per token of context: K and V, per layer, per KV head, f16.
#[must_use]
pub fn kv_bytes_per_token(show: &ModelDetails) -> Option<u64> {
    let blocks = show.block_count()?;
    let heads_kv = show
        .arch_u64("attention.head_count_kv")
        .or_else(|| show.arch_u64("attention.head_count"))?;
    let head_dim = show.arch_u64("attention.key_length").or_else(|| {
        let width = show.arch_u64("embedding_length")?;
        let heads = show.arch_u64("attention.head_count")?;
        (heads > 0).then(|| width / heads)
    })?;
    Some(2 * blocks * heads_kv * head_dim * 2)
}

/// The memory model of a load: weights plus, per token of context, KV cache and compute graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadEstimate {
    /// Bytes of weights.
    pub weights: u64,
    /// KV-cache bytes per token.
    pub kv_per_token: u64,
    /// Compute-graph bytes per token (derived from the observed load).
    pub graph_per_token: u64,
}

impl LoadEstimate {
    /// Derives the per-token graph cost from an observed load of `size` bytes at `ctx` tokens.
    #[must_use]
    pub fn from_observed(weights: u64, kv_per_token: u64, size: u64, ctx: u64) -> Self {
        let graph = size
            .saturating_sub(weights)
            .saturating_sub(kv_per_token * ctx);
        Self {
            weights,
            kv_per_token,
            graph_per_token: graph.checked_div(ctx).unwrap_or(0),
        }
    }

    /// Bytes a load at `ctx` tokens needs on the GPU, with head-room.
    #[must_use]
    pub fn need(&self, ctx: u64) -> u64 {
        self.weights + ctx * (self.kv_per_token + self.graph_per_token) + VRAM_MARGIN
    }

    /// The largest context that fits `budget` bytes, rounded down to 1024; `None` below 2048.
    #[must_use]
    pub fn max_fitting(&self, budget: u64) -> Option<u64> {
        let per_token = self.kv_per_token + self.graph_per_token;
        if per_token == 0 {
            return None;
        }
        let room = budget.checked_sub(self.weights + VRAM_MARGIN)?;
        let ctx = room / per_token / 1024 * 1024;
        (ctx >= 2048).then_some(ctx)
    }
}

/// Where the context of a load came from.
fn context_source(options: &RunnerOptions, show: Option<&ModelDetails>) -> SettingSource {
    if options.num_ctx.is_some() {
        SettingSource::Request
    } else if show.and_then(|s| s.parameter("num_ctx")).is_some() {
        SettingSource::Modelfile
    } else {
        SettingSource::OllamaDefault
    }
}

/// One line naming the evidence a diagnosis rests on, so a reader knows how far to trust it.
fn evidence_note(e: &Evidence<'_>) -> String {
    let mut parts = Vec::new();
    if let Some(r) = e.running {
        parts.push(format!(
            "Ollama's /api/ps (load {}, {} in VRAM{})",
            gb(r.size),
            gb(r.size_vram),
            r.context_length
                .map_or_else(String::new, |c| format!(", context {c}"))
        ));
    }
    if let Some(show) = e.show {
        match (show.block_count(), kv_bytes_per_token(show)) {
            (Some(blocks), Some(kv)) => parts.push(format!(
                "/api/show ({blocks} blocks, KV cache {} KiB per token)",
                kv >> 10
            )),
            _ => parts.push("/api/show".to_owned()),
        }
    }
    if let Some(weights) = e.weights {
        parts.push(format!("weights {} (/api/tags)", gb(weights)));
    }
    parts.push(match e.device {
        DeviceView::Devices { gpus, .. } if !gpus.is_empty() => format!(
            "NVML ({} GPU{}, {} free)",
            gpus.len(),
            if gpus.len() == 1 { "" } else { "s" },
            gib(e.device.free_memory().unwrap_or(0))
        ),
        DeviceView::Devices { .. } => "NVML (no GPU listed)".to_owned(),
        DeviceView::NoNvml { reason } => format!("no NVML here ({reason})"),
        DeviceView::Remote => "no NVML (the server is remote)".to_owned(),
    });
    format!("evidence: {}", parts.join("; "))
}

/// Diagnoses a model that is not fully resident.
#[must_use]
pub fn diagnose(e: &Evidence<'_>) -> Diagnosis {
    let runner_gpu_memory = e.device.ollama_memory();
    let mut notes = Vec::new();
    let cause = find_cause(e, runner_gpu_memory, &mut notes);
    notes.push(evidence_note(e));
    Diagnosis {
        model: e.model.to_owned(),
        running: e.running.cloned(),
        runner_gpu_memory,
        cause,
        notes,
    }
}

/// Diagnoses a load that killed Ollama's runner for want of GPU memory (HTTP 500 `CUDA error:
/// the resource allocation failed`, `out of memory`): what holds the VRAM, and the largest
/// context estimated to fit in what is free.
#[must_use]
pub fn diagnose_failed_load(e: &Evidence<'_>, message: &str) -> Diagnosis {
    let source = context_source(e.options, e.show);
    let num_ctx = match source {
        SettingSource::Request => e.options.num_ctx.map(u64::from),
        SettingSource::Modelfile => e
            .show
            .and_then(|s| s.parameter("num_ctx"))
            .and_then(|v| v.parse().ok()),
        // On a large card Ollama's default is the model's trained maximum.
        SettingSource::OllamaDefault => e.show.and_then(ModelDetails::trained_context_length),
    };
    let free = e.device.free_memory();
    let max_fitting = match (e.weights, e.show.and_then(kv_bytes_per_token), free) {
        // No load to measure the compute graph on: take it as large as the KV cache (on
        // llama3.2:3b it was about half), so the suggestion errs on the small side.
        (Some(weights), Some(kv), Some(free)) => LoadEstimate {
            weights,
            kv_per_token: kv,
            graph_per_token: kv,
        }
        .max_fitting(free)
        .filter(|max| num_ctx.is_none_or(|ctx| *max < ctx)),
        _ => None,
    };
    let mut notes = Vec::new();
    let others: Vec<&GpuProcess> = e
        .device
        .gpus()
        .iter()
        .flat_map(|g| g.processes.iter())
        .filter(|p| !p.is_ollama())
        .collect();
    let held: u64 = others.iter().filter_map(|p| p.used_memory).sum();
    if held >= NOTABLE_OTHER_USE {
        notes.push(format!(
            "other processes hold {} of VRAM: {}",
            gib(held),
            others
                .iter()
                .map(|p| format!(
                    "{} {}",
                    p.label(),
                    p.used_memory.map_or_else(String::new, gib)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if source == SettingSource::OllamaDefault && num_ctx.is_some() {
        notes.push(
            "nobody set num_ctx: on a large card Ollama's default is the model's maximum context"
                .to_owned(),
        );
    }
    notes.push(evidence_note(e));
    Diagnosis {
        model: e.model.to_owned(),
        running: None,
        runner_gpu_memory: None,
        cause: Cause::OutOfMemory {
            message: message.to_owned(),
            num_ctx,
            source,
            free,
            max_fitting,
        },
        notes,
    }
}

fn find_cause(e: &Evidence<'_>, runner_memory: Option<u64>, notes: &mut Vec<String>) -> Cause {
    let Some(running) = e.running else {
        return Cause::NotLoaded;
    };
    let others: Vec<GpuProcess> = e
        .device
        .gpus()
        .iter()
        .flat_map(|g| g.processes.iter())
        .filter(|p| !p.is_ollama())
        .cloned()
        .collect();
    let others_held: u64 = others.iter().filter_map(|p| p.used_memory).sum();
    if others_held >= NOTABLE_OTHER_USE {
        notes.push(format!(
            "other processes hold {} of VRAM: {}",
            gib(others_held),
            others
                .iter()
                .map(GpuProcess::label)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Some(line) = share_line(running, runner_memory) {
        notes.push(line);
    }

    // 2. num_gpu below the layer count (checked first: it also explains a 0-byte VRAM share).
    let layers = e.show.and_then(ModelDetails::block_count).map(|b| b + 1);
    let num_gpu = e
        .options
        .num_gpu
        .map(|n| (i64::from(n), SettingSource::Request))
        .or_else(|| {
            let value = e.show?.parameter("num_gpu")?.parse::<i64>().ok()?;
            Some((value, SettingSource::Modelfile))
        });
    if let (Some((num_gpu, source)), Some(layers)) = (num_gpu, layers)
        && num_gpu >= 0
        && u64::try_from(num_gpu).is_ok_and(|n| n < layers)
    {
        return Cause::NumGpu {
            num_gpu,
            layers,
            source,
        };
    }

    let ctx = running.context_length.unwrap_or(0);
    let kv_per_token = e.show.and_then(kv_bytes_per_token);
    let estimate = match (e.weights, kv_per_token) {
        (Some(weights), Some(kv)) if ctx > 0 => {
            Some(LoadEstimate::from_observed(weights, kv, running.size, ctx))
        }
        _ => None,
    };
    // What the model could use on the GPU: free VRAM plus what its runner holds now (freed by a
    // reload). Remote, Ollama's own VRAM figure is the best evidence.
    let budget = match e.device {
        DeviceView::Devices { gpus, .. } if !gpus.is_empty() => e
            .device
            .free_memory()
            .map(|free| free + runner_memory.unwrap_or(0)),
        // Without NVML (a remote server, AMD or Apple GPUs, a container without the driver),
        // what Ollama placed in VRAM is what it found room for: the budget a smaller load gets.
        _ => (running.size_vram > 0).then_some(running.size_vram),
    };

    // 1. No GPU at all.
    if running.size_vram == 0 {
        match e.device {
            DeviceView::Remote => return Cause::NoGpuOnServer,
            DeviceView::NoNvml { reason } => {
                return Cause::NoGpu {
                    reason: reason.clone(),
                };
            }
            DeviceView::Devices { gpus, .. } if gpus.is_empty() => {
                return Cause::NoGpu {
                    reason: "NVML lists no GPU".into(),
                };
            }
            DeviceView::Devices { .. } => {
                let free = e.device.free_memory().unwrap_or(0);
                let room_for_model =
                    estimate.map_or(free >= running.size, |est| free >= est.need(ctx.min(8192)));
                if room_for_model && runner_memory.is_none() {
                    return Cause::NoGpuAccess { free };
                }
            }
        }
    }

    // 3. A context too large for the free VRAM, when a smaller one would fit.
    if let (Some(est), Some(budget)) = (estimate, budget)
        && est.need(ctx) > budget
        && let Some(max_fitting) = est.max_fitting(budget)
        && max_fitting < ctx
    {
        let source = context_source(e.options, e.show);
        if source == SettingSource::OllamaDefault {
            let trained = e.show.and_then(ModelDetails::trained_context_length);
            notes.push(format!(
                "nobody set num_ctx, so Ollama chose {ctx}{}: on a large card its default is the model's maximum context",
                trained.filter(|t| *t == ctx).map_or_else(String::new, |_| " (the model's trained maximum)".to_owned())
            ));
        }
        return Cause::ContextTooLarge {
            num_ctx: ctx,
            source,
            kv_bytes: est.kv_per_token * ctx,
            max_fitting,
        };
    }

    // The VRAM has room for this load now: what is on the GPU does not explain the split.
    if let (Some(est), Some(budget), DeviceView::Devices { .. }) = (estimate, budget, e.device)
        && est.need(ctx) <= budget
    {
        if runner_memory.is_none() {
            return Cause::NoGpuAccess {
                free: e.device.free_memory().unwrap_or(0),
            };
        }
        notes.push(format!(
            "{} of VRAM is free now, enough for this load: memory was probably busy when Ollama loaded it; unload and load it again (`ollama stop {}`)",
            gib(e.device.free_memory().unwrap_or(0)),
            e.model
        ));
        return Cause::Unknown;
    }

    // 5. Weights larger than the card.
    if let (Some(weights), Some(total)) = (e.weights, e.device.total_memory())
        && weights + VRAM_MARGIN > total
    {
        return Cause::ModelTooLarge {
            weights,
            vram_total: total,
        };
    }

    // 4. VRAM held by other processes.
    if others_held >= NOTABLE_OTHER_USE {
        return Cause::VramHeldByOthers {
            processes: others,
            held: others_held,
        };
    }
    if running.size_vram == 0 && matches!(e.device, DeviceView::Devices { .. }) {
        return Cause::NoGpuAccess {
            free: e.device.free_memory().unwrap_or(0),
        };
    }
    Cause::Unknown
}

/// `18.7 GiB` / `512 MiB`.
#[must_use]
pub fn gib(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let b = bytes as f64;
    if b >= (1u64 << 30) as f64 {
        format!("{:.1} GiB", b / (1u64 << 30) as f64)
    } else {
        format!("{:.0} MiB", b / (1u64 << 20) as f64)
    }
}

/// `25.7 GB`, as `ollama ps` prints sizes.
#[must_use]
pub fn gb(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let b = bytes as f64;
    format!("{:.1} GB", b / 1e9)
}
