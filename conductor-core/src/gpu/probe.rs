//! The device view: what the local NVIDIA driver says about GPUs and the processes on them.

use std::fmt;
use std::sync::{Mutex, OnceLock};

use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
use nvml_wrapper::enums::device::UsedGpuMemory;
use tracing::debug;

/// A compute process on a GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuProcess {
    /// Process id.
    pub pid: u32,
    /// Process name (from the driver, else `/proc`), if known.
    pub name: Option<String>,
    /// Command line, if readable (`/proc/<pid>/cmdline`).
    pub cmdline: Option<String>,
    /// GPU memory it holds, in bytes, if the driver reports it.
    pub used_memory: Option<u64>,
}

impl GpuProcess {
    /// True when this looks like an Ollama process (server or model runner).
    #[must_use]
    pub fn is_ollama(&self) -> bool {
        let has = |s: &Option<String>| {
            s.as_deref()
                .is_some_and(|s| s.to_ascii_lowercase().contains("ollama"))
        };
        has(&self.name) || has(&self.cmdline)
    }

    /// A short label for messages: `ollama (pid 740)`.
    #[must_use]
    pub fn label(&self) -> String {
        let name = self
            .name
            .clone()
            .or_else(|| {
                self.cmdline
                    .as_deref()
                    .and_then(|c| c.split_whitespace().next())
                    .map(|p| p.rsplit('/').next().unwrap_or(p).to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        format!("{name} (pid {})", self.pid)
    }
}

/// One GPU as NVML sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuDevice {
    /// NVML index.
    pub index: u32,
    /// Marketing name, e.g. `NVIDIA H100 80GB HBM3`.
    pub name: String,
    /// Total memory in bytes.
    pub memory_total: u64,
    /// Used memory in bytes.
    pub memory_used: u64,
    /// Free memory in bytes.
    pub memory_free: u64,
    /// GPU utilisation over the driver's last sample period, percent.
    pub utilization: Option<u32>,
    /// Temperature in °C.
    pub temperature: Option<u32>,
    /// Compute processes with their memory.
    pub processes: Vec<GpuProcess>,
}

/// What the local driver can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceView {
    /// NVML answered: these GPUs (possibly none).
    Devices {
        /// Driver version.
        driver: Option<String>,
        /// The GPUs.
        gpus: Vec<GpuDevice>,
    },
    /// No NVML here (no NVIDIA driver or library), with the reason.
    NoNvml {
        /// Why, e.g. "libnvidia-ml.so not found".
        reason: String,
    },
    /// The Ollama server is on another machine: local GPUs say nothing about it.
    Remote,
}

impl DeviceView {
    /// The GPUs, when NVML answered.
    #[must_use]
    pub fn gpus(&self) -> &[GpuDevice] {
        match self {
            Self::Devices { gpus, .. } => gpus,
            _ => &[],
        }
    }

    /// Ollama processes on any GPU.
    #[must_use]
    pub fn ollama_processes(&self) -> Vec<&GpuProcess> {
        self.gpus()
            .iter()
            .flat_map(|g| g.processes.iter())
            .filter(|p| p.is_ollama())
            .collect()
    }

    /// GPU memory held by Ollama processes (the runner), summed over GPUs, if any is listed.
    #[must_use]
    pub fn ollama_memory(&self) -> Option<u64> {
        used_memory(&self.ollama_processes())
    }

    /// GPU memory held by the Ollama runners serving the weights file `blob` (`sha256-…`,
    /// which a runner's command line names), if NVML lists any: one model's share when
    /// several are loaded.
    #[must_use]
    pub fn runner_memory(&self, blob: &str) -> Option<u64> {
        let runners: Vec<_> = self
            .ollama_processes()
            .into_iter()
            .filter(|p| p.cmdline.as_deref().is_some_and(|c| c.contains(blob)))
            .collect();
        used_memory(&runners)
    }

    /// Free memory over all GPUs.
    #[must_use]
    pub fn free_memory(&self) -> Option<u64> {
        let gpus = self.gpus();
        (!gpus.is_empty()).then(|| gpus.iter().map(|g| g.memory_free).sum())
    }

    /// Total memory over all GPUs.
    #[must_use]
    pub fn total_memory(&self) -> Option<u64> {
        let gpus = self.gpus();
        (!gpus.is_empty()).then(|| gpus.iter().map(|g| g.memory_total).sum())
    }
}

/// The GPU memory `processes` hold together; `None` when there are none.
fn used_memory(processes: &[&GpuProcess]) -> Option<u64> {
    (!processes.is_empty()).then(|| processes.iter().filter_map(|p| p.used_memory).sum())
}

/// Something that can look at the GPUs: NVML in production, a script in tests.
pub trait GpuProbe: Send + Sync + fmt::Debug {
    /// A snapshot of the devices now.
    fn snapshot(&self) -> DeviceView;

    /// Does any slow one-time set-up now (NVML's initialisation takes ~20 ms on an H100).
    /// [`crate::gpu::ResidencyGuard::check`] runs it on a blocking thread during the preload, so
    /// the check does not pay it; admissions never call it.
    fn warm_up(&self) {}
}

/// The NVML probe. NVML is initialised once per process and shared; without the library or the
/// driver it reports [`DeviceView::NoNvml`] with the reason, never a panic.
#[derive(Debug, Default, Clone, Copy)]
pub struct NvmlProbe;

fn nvml() -> &'static Result<Nvml, String> {
    static NVML: OnceLock<Result<Nvml, String>> = OnceLock::new();
    NVML.get_or_init(|| {
        let result = Nvml::init().map_err(|err| match err {
            nvml_wrapper::error::NvmlError::LibloadingError(e) => {
                format!("the NVIDIA management library (libnvidia-ml) is not installed ({e})")
            }
            nvml_wrapper::error::NvmlError::DriverNotLoaded => {
                "the NVIDIA driver is not loaded".to_owned()
            }
            other => format!("NVML failed to start: {other}"),
        });
        debug!(ok = result.is_ok(), "nvml init");
        result
    })
}

impl GpuProbe for NvmlProbe {
    fn warm_up(&self) {
        let _ = nvml();
    }

    fn snapshot(&self) -> DeviceView {
        let nvml = match nvml() {
            Ok(nvml) => nvml,
            Err(reason) => {
                return DeviceView::NoNvml {
                    reason: reason.clone(),
                };
            }
        };
        let count = match nvml.device_count() {
            Ok(count) => count,
            Err(err) => {
                return DeviceView::NoNvml {
                    reason: format!("NVML cannot count devices: {err}"),
                };
            }
        };
        let mut gpus = Vec::new();
        for index in 0..count {
            let Ok(device) = nvml.device_by_index(index) else {
                continue;
            };
            let Ok(memory) = device.memory_info() else {
                continue;
            };
            let processes = device
                .running_compute_processes()
                .unwrap_or_default()
                .into_iter()
                .map(|p| GpuProcess {
                    pid: p.pid,
                    name: nvml
                        .sys_process_name(p.pid, 64)
                        .ok()
                        .filter(|n| !n.is_empty())
                        .or_else(|| proc_comm(p.pid)),
                    cmdline: proc_cmdline(p.pid),
                    used_memory: match p.used_gpu_memory {
                        UsedGpuMemory::Used(bytes) => Some(bytes),
                        UsedGpuMemory::Unavailable => None,
                    },
                })
                .collect();
            gpus.push(GpuDevice {
                index,
                name: device.name().unwrap_or_else(|_| format!("GPU {index}")),
                memory_total: memory.total,
                memory_used: memory.used,
                memory_free: memory.free,
                utilization: device.utilization_rates().ok().map(|u| u.gpu),
                temperature: device.temperature(TemperatureSensor::Gpu).ok(),
                processes,
            });
        }
        DeviceView::Devices {
            driver: nvml.sys_driver_version().ok(),
            gpus,
        }
    }
}

fn proc_comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn proc_cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let text: String = String::from_utf8_lossy(&raw)
        .replace('\0', " ")
        .trim()
        .to_owned();
    (!text.is_empty()).then_some(text)
}

/// The probe for a remote Ollama: local GPUs say nothing about it.
#[derive(Debug, Default, Clone, Copy)]
pub struct RemoteProbe;

impl GpuProbe for RemoteProbe {
    fn snapshot(&self) -> DeviceView {
        DeviceView::Remote
    }
}

/// A probe that answers scripted snapshots (the last one repeats): for tests and replays.
#[derive(Debug)]
pub struct ScriptedProbe {
    views: Mutex<Vec<DeviceView>>,
}

impl ScriptedProbe {
    /// Answers `view` every time.
    #[must_use]
    pub fn new(view: DeviceView) -> Self {
        Self::sequence(vec![view])
    }

    /// Answers these views in order, then the last one forever.
    #[must_use]
    pub fn sequence(views: Vec<DeviceView>) -> Self {
        let mut views = views;
        views.reverse();
        Self {
            views: Mutex::new(views),
        }
    }

    /// Parses an NVML snapshot in the recorded format of `shared/ollama/v0.24.0-h100/*.nvml.json`
    /// (`name`, `driver`, `memory{total,used,free}`, `utilization{gpu}`,
    /// `compute_processes[{pid, used_gpu_memory, cmdline}]`).
    ///
    /// # Errors
    /// When the text is not such a snapshot.
    pub fn view_from_recording(json: &str) -> Result<DeviceView, String> {
        let v: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let u = |value: &serde_json::Value| value.as_u64();
        let memory = &v["memory"];
        let processes = v["compute_processes"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|p| {
                        let cmdline = p["cmdline"].as_str().map(|s| s.trim().to_owned());
                        GpuProcess {
                            pid: u(&p["pid"])
                                .and_then(|p| u32::try_from(p).ok())
                                .unwrap_or(0),
                            name: cmdline
                                .as_deref()
                                .and_then(|c| c.split_whitespace().next())
                                .map(|p| p.rsplit('/').next().unwrap_or(p).to_owned()),
                            cmdline,
                            used_memory: u(&p["used_gpu_memory"]),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let gpu = GpuDevice {
            index: 0,
            name: v["name"].as_str().ok_or("no `name`")?.to_owned(),
            memory_total: u(&memory["total"]).ok_or("no `memory.total`")?,
            memory_used: u(&memory["used"]).unwrap_or(0),
            memory_free: u(&memory["free"]).unwrap_or(0),
            utilization: u(&v["utilization"]["gpu"]).and_then(|g| u32::try_from(g).ok()),
            temperature: None,
            processes,
        };
        Ok(DeviceView::Devices {
            driver: v["driver"].as_str().map(str::to_owned),
            gpus: vec![gpu],
        })
    }
}

impl GpuProbe for ScriptedProbe {
    fn snapshot(&self) -> DeviceView {
        let mut views = self
            .views
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if views.len() > 1 {
            views.pop().unwrap_or(DeviceView::Remote)
        } else {
            views.last().cloned().unwrap_or(DeviceView::Remote)
        }
    }
}
