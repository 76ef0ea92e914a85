//! Building a [`Conductor`] from [`Settings`]: the one place that knows every part.

use std::sync::Arc;

use super::Settings;
use crate::backend::{Backend, BackendKind, OllamaBackend, OllamaHost, OpenAiBackend, PoolBackend};
use crate::conductor::{Conductor, RequestDefaults};
use crate::error::{ConfigError, Error, ReadProblem, Result, read_small_file};
use crate::gpu::{FixStore, GpuProbe, NvmlProbe, RemoteProbe, ResidencyGuard};
use crate::personality::PersonalityCatalog;

impl Conductor {
    /// Builds everything from validated settings: the Ollama backend, the personality catalog
    /// (built-ins plus the configured directories) and the configured personality.
    ///
    /// # Errors
    /// When the personality cannot be loaded or the HTTP client cannot be built.
    pub fn from_settings(settings: &Settings) -> Result<Self> {
        let backend: Arc<dyn Backend> = if settings.backend == BackendKind::OpenAi {
            let mut builder = OpenAiBackend::builder(settings.host.clone());
            if let Some(pem) = ca_certificate(settings)? {
                builder = builder.ca_certificate(pem);
            }
            Arc::new(
                builder
                    .token(settings.token.clone())
                    .timeouts(settings.timeouts)
                    .retry(settings.retry)
                    .build()?,
            )
        } else if settings.hosts.len() > 1 {
            let hosts = settings
                .hosts
                .iter()
                .map(|host| ollama_backend(settings, host))
                .collect::<Result<Vec<_>>>()?;
            Arc::new(PoolBackend::new(hosts)?)
        } else {
            Arc::new(ollama_backend(settings, &settings.host)?)
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
        // NVML sees only this machine's GPUs: for remote servers, rely on /api/ps alone (a
        // pool's guard gives each remote host a guard without NVML).
        let local = backend.is_local()
            || backend
                .pool()
                .is_some_and(|pool| pool.hosts().iter().any(|h| h.is_local()));
        let probe: Arc<dyn GpuProbe> = if local {
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

/// The backend of one Ollama host, with the configured credentials, timeouts and retries.
fn ollama_backend(settings: &Settings, host: &OllamaHost) -> Result<OllamaBackend> {
    let mut builder = OllamaBackend::builder(host.clone());
    if let Some(pem) = ca_certificate(settings)? {
        builder = builder.ca_certificate(pem);
    }
    builder
        .token(settings.token.clone())
        .timeouts(settings.timeouts)
        .retry(settings.retry)
        .build()
}

/// The configured certificate authority (`ollama.ca_cert`), read defensively: a bundle is text
/// of a few KiB; a FIFO or a huge file is refused.
fn ca_certificate(settings: &Settings) -> Result<Option<Vec<u8>>> {
    let Some(path) = &settings.ca_cert else {
        return Ok(None);
    };
    let pem = read_small_file(path, 1 << 20).map_err(|problem| {
        Error::Config(ConfigError::Invalid {
            field: "ollama.ca_cert",
            value: path.display().to_string(),
            origin: "configuration".into(),
            reason: match problem {
                ReadProblem::Io(err) => format!("cannot read it: {err}"),
                ReadProblem::Refused(why) => format!("will not read it: {why}"),
            },
        })
    })?;
    Ok(Some(pem.into_bytes()))
}
