//! What to do about a model that is not on the GPU, as data: the library never names a command
//! line flag or a slash command. Each frontend words a [`Remedy`] in its own terms (the CLI as
//! `--num-ctx 8192`, the chat UI as a config line); [`Remedy`]'s `Display` is a neutral wording
//! in terms of the configuration file, for library users and logs.

use std::fmt;

use crate::gpu::diagnose::{Cause, Diagnosis, SettingSource, gib, suggested_context};

/// One thing that would help, most useful first in [`crate::gpu::Diagnosis::remedies`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Remedy {
    /// Send a smaller context (`num_ctx`).
    SetContext {
        /// The context to send: a round number that fits.
        num_ctx: u64,
        /// The largest context estimated to fit, if known.
        max_fitting: Option<u64>,
        /// The context also comes from the Modelfile's `PARAMETER num_ctx`, which can be lowered.
        in_modelfile: bool,
    },
    /// Put every layer on the GPU (`num_gpu` counts layers, not GPUs).
    AllLayersOnGpu {
        /// The model's layer count.
        layers: u64,
        /// The cap is a Modelfile `PARAMETER num_gpu` (else the request options).
        in_modelfile: bool,
    },
    /// The `fix` policy applies the remedies above by itself and remembers them.
    FixPolicy,
    /// Free GPU memory held by other processes (labels with their memory).
    FreeGpu {
        /// E.g. `python3 (pid 12646) 73.2 GiB`.
        holders: Vec<String>,
    },
    /// Install a GPU driver here, or use a machine with a GPU.
    InstallDriver,
    /// Give the Ollama server access to the GPU (container, toolbox, VM).
    GiveServerTheGpu,
    /// Look at the (remote) server: `nvidia-smi`, `ollama ps`, its `inference compute` log line.
    CheckServer,
    /// Use a smaller model or quantization.
    SmallerModel,
    /// Retry (another client's request evicted the model).
    Retry,
    /// Read Ollama's server log for its `offload` and `model weights` lines.
    ReadServerLog,
    /// Run on the CPU deliberately: the `warn` policy (answers, with the diagnosis first) or `off`.
    ChooseCpu,
    /// Use a backend that reports residency (Ollama does).
    UseReportingBackend,
}

impl fmt::Display for Remedy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SetContext {
                num_ctx,
                max_fitting,
                in_modelfile,
            } => {
                write!(f, "set a smaller context: num_ctx = {num_ctx} under [options] in conductor.toml")?;
                if let Some(max) = max_fitting {
                    write!(f, " (at most ~{max} fits now)")?;
                }
                if *in_modelfile {
                    f.write_str(", or lower `PARAMETER num_ctx` in the Modelfile")?;
                }
                Ok(())
            }
            Self::AllLayersOnGpu {
                layers,
                in_modelfile: true,
            } => write!(
                f,
                "remove `PARAMETER num_gpu` from the Modelfile (or set it to {layers} or more)"
            ),
            Self::AllLayersOnGpu { layers, .. } => write!(
                f,
                "remove num_gpu from the options (or set it to {layers} or more)"
            ),
            Self::FixPolicy => f.write_str(
                "the `fix` GPU policy does this by itself, and remembers it for later runs",
            ),
            Self::FreeGpu { holders } if holders.is_empty() => f.write_str("free GPU memory"),
            Self::FreeGpu { holders } => write!(f, "free the GPU ({})", holders.join(", ")),
            Self::InstallDriver => f.write_str(
                "install the GPU driver (for NVIDIA, check with `nvidia-smi`) or run Ollama on a machine with a GPU",
            ),
            Self::GiveServerTheGpu => f.write_str(
                "give the Ollama server the GPU: in Docker `--gpus all` with the NVIDIA container toolkit, in a toolbox or VM pass the device and driver through; its log line `inference compute` must name the GPU",
            ),
            Self::CheckServer => f.write_str(
                "check the server: `nvidia-smi` and `ollama ps` there, and its log line `inference compute`",
            ),
            Self::SmallerModel => {
                f.write_str("use a smaller model or a smaller quantization (e.g. a q4_K_M tag)")
            }
            Self::Retry => f.write_str(
                "another client's request probably evicted it (two models that do not fit together evict each other); retry, and check `ollama ps`",
            ),
            Self::ReadServerLog => f.write_str(
                "look for the `offload` and `model weights` lines in Ollama's server log",
            ),
            Self::ChooseCpu => f.write_str(
                "to run on the CPU deliberately, set the GPU policy to warn (or policy = \"off\" under [gpu] in conductor.toml)",
            ),
            Self::UseReportingBackend => f.write_str(
                "nothing to fix here: to have residency checked, use a backend that reports it (Ollama does)",
            ),
        }
    }
}

impl Diagnosis {
    /// What to do, most useful first, as data for a frontend to word (see [`Remedy`]).
    #[must_use]
    pub fn remedies(&self) -> Vec<Remedy> {
        let context = |max_fitting: Option<u64>, source: SettingSource| Remedy::SetContext {
            num_ctx: max_fitting.map_or(8192, suggested_context),
            max_fitting,
            in_modelfile: source == SettingSource::Modelfile,
        };
        match &self.cause {
            Cause::NotLoaded => vec![Remedy::Retry],
            Cause::NoGpu { .. } => vec![Remedy::InstallDriver, Remedy::ChooseCpu],
            Cause::NoGpuAccess { .. } => vec![Remedy::GiveServerTheGpu],
            Cause::NoGpuOnServer => vec![Remedy::CheckServer, Remedy::ChooseCpu],
            Cause::NumGpu { layers, source, .. } => vec![
                Remedy::AllLayersOnGpu {
                    layers: *layers,
                    in_modelfile: *source == SettingSource::Modelfile,
                },
                Remedy::FixPolicy,
            ],
            Cause::ContextTooLarge {
                max_fitting,
                source,
                ..
            } => vec![context(Some(*max_fitting), *source), Remedy::FixPolicy],
            Cause::VramHeldByOthers { processes, .. } => vec![
                Remedy::FreeGpu {
                    holders: processes
                        .iter()
                        .take(3)
                        .map(|p| {
                            format!(
                                "{} {}",
                                p.label(),
                                p.used_memory.map_or_else(String::new, gib)
                            )
                        })
                        .collect(),
                },
                Remedy::SmallerModel,
            ],
            Cause::ModelTooLarge { .. } => vec![Remedy::SmallerModel],
            Cause::OutOfMemory {
                max_fitting: Some(max),
                source,
                ..
            } => vec![context(Some(*max), *source), Remedy::FixPolicy],
            Cause::OutOfMemory { source, .. } => vec![
                Remedy::FreeGpu {
                    holders: Vec::new(),
                },
                context(None, *source),
            ],
            Cause::Unknown => vec![Remedy::ReadServerLog],
            Cause::NotReported => vec![Remedy::UseReportingBackend],
        }
    }
}
