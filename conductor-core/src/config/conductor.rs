//! Building a [`Conductor`] from [`Settings`]: the one place that knows every part.

use std::sync::Arc;

use super::Settings;
use crate::backend::{Backend, BackendKind, OllamaBackend, OpenAiBackend};
use crate::conductor::{Conductor, RequestDefaults};
use crate::error::{ConfigError, Error, ReadProblem, Result, read_small_file};
use crate::gpu::{FixStore, GpuProbe, NvmlProbe, RemoteProbe, ResidencyGuard};
use crate::personality::PersonalityCatalog;

impl Conductor {
    /// Builds everything from validated settings: the backend (Ollama, or an OpenAI-compatible
    /// server when `backend.kind` is `openai`), the personality catalog
    /// (built-ins plus the configured directories) and the configured personality.
    ///
    /// # Errors
    /// When the personality cannot be loaded or the HTTP client cannot be built.
    pub fn from_settings(settings: &Settings) -> Result<Self> {
        let ca_cert = match &settings.ca_cert {
            // A certificate bundle is text of a few KiB; a FIFO or a huge file is refused.
            Some(path) => Some(read_small_file(path, 1 << 20).map_err(|problem| {
                Error::Config(ConfigError::Invalid {
                    field: "ollama.ca_cert",
                    value: path.display().to_string(),
                    origin: "configuration".into(),
                    reason: match problem {
                        ReadProblem::Io(err) => format!("cannot read it: {err}"),
                        ReadProblem::Refused(why) => {
                            format!("will not read it: {why}")
                        }
                    },
                })
            })?),
            None => None,
        };
        let backend: Arc<dyn Backend> = match settings.backend {
            BackendKind::OpenAi => {
                let mut builder = OpenAiBackend::builder(settings.host.clone());
                if let Some(pem) = ca_cert {
                    builder = builder.ca_certificate(pem.into_bytes());
                }
                Arc::new(
                    builder
                        .token(settings.token.clone())
                        .timeouts(settings.timeouts)
                        .retry(settings.retry)
                        .build()?,
                )
            }
            BackendKind::Ollama => {
                let mut builder = OllamaBackend::builder(settings.host.clone());
                if let Some(pem) = ca_cert {
                    builder = builder.ca_certificate(pem.into_bytes());
                }
                Arc::new(
                    builder
                        .token(settings.token.clone())
                        .timeouts(settings.timeouts)
                        .retry(settings.retry)
                        .build()?,
                )
            }
        };
        let catalog = PersonalityCatalog::with_dirs(settings.personality_dirs.clone());
        let personality = catalog.load(settings.personality.as_str())?;
        let defaults = RequestDefaults {
            model: settings.model.clone(),
            system: settings.system.clone(),
            options: settings.options.clone(),
            keep_alive: settings.keep_alive,
            think: settings.think,
        };
        // NVML sees only this machine's GPUs: for a remote server, rely on /api/ps alone.
        let probe: Arc<dyn GpuProbe> = if backend.is_local() {
            Arc::new(NvmlProbe)
        } else {
            Arc::new(RemoteProbe)
        };
        // NVML is not touched here: a resident model is admitted from /api/ps alone, and the
        // driver is asked only to explain a model that is not on the GPU.
        let fixes = match FixStore::default_path() {
            Some(path) => FixStore::new(path, backend.endpoint()),
            None => FixStore::disabled(backend.endpoint()),
        };
        let guard = ResidencyGuard::new(
            Arc::clone(&backend),
            probe,
            settings.gpu_policy,
            settings.gpu_min_fraction,
        )
        .with_fix_store(fixes);
        Ok(Self::with_catalog(backend, personality, defaults, catalog).with_guard(Arc::new(guard)))
    }
}
