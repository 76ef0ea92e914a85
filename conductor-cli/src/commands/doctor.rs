//! `conductor doctor`: one screen, every dependency, a fix for each problem.

use std::process::ExitCode;
use std::sync::Arc;

use conductor_core::Backend;
use conductor_core::config::ConfigSources;
use conductor_core::config::Settings;
use conductor_core::gpu::{DeviceView, ResidencyGuard};
use conductor_core::{Conductor, Error, LoadedConfig, PersonalityCatalog};

use crate::cli::GlobalArgs;
use crate::exit::{CONFIG, Failure, MODEL_NOT_FOUND, NOT_RESIDENT, OLLAMA};
use conductor_core::gpu::gib;

use crate::output::{self, paint, style};
use conductor_core::text::{one_line, strip_controls};

struct Report {
    color: bool,
    worst: Option<u8>,
    /// How many checks failed so far: a host's residency is checked only when its own checks
    /// before it passed.
    failures: usize,
    /// The first failed write to stdout; later lines are not attempted.
    output: Option<Failure>,
}

impl Report {
    fn line(&mut self, text: std::fmt::Arguments<'_>) {
        if self.output.is_none()
            && let Err(failure) = output::write_out(format_args!("{text}\n"))
        {
            self.output = Some(failure);
        }
    }

    fn ok(&mut self, what: &str, detail: &str) {
        let mark = paint(self.color, style::OK, "✓");
        self.line(format_args!("{mark} {what}: {}", one_line(detail)));
    }

    fn info(&mut self, what: &str, detail: &str) {
        let mark = paint(self.color, style::DIM, "–");
        self.line(format_args!("{mark} {what}: {}", one_line(detail)));
    }

    fn fail(&mut self, code: u8, what: &str, detail: &str, fix: Option<String>) {
        let mark = paint(self.color, style::ERROR, "✗");
        self.line(format_args!("{mark} {what}: {}", strip_controls(detail)));
        if let Some(fix) = fix {
            self.line(format_args!("    fix: {}", strip_controls(&fix)));
        }
        // Exit with the code of the first failure, which the others usually follow from.
        self.worst.get_or_insert(code);
        self.failures += 1;
    }
}

/// Runs the command.
pub async fn run(global: &GlobalArgs) -> Result<ExitCode, Failure> {
    let mut report = Report {
        color: output::stdout_color(),
        worst: None,
        failures: 0,
        output: None,
    };
    let sources = global.sources()?;
    let config = match LoadedConfig::load(sources) {
        Ok(config) => {
            let file = config.file.as_ref().map_or_else(
                || "none (defaults and environment)".to_owned(),
                |p| p.display().to_string(),
            );
            report.ok("config file", &file);
            config
        }
        Err(err) => {
            report.fail(
                CONFIG,
                "config",
                &err.to_string(),
                Some("fix the line named above".into()),
            );
            // Keep checking with the defaults so the rest of the screen is still useful.
            LoadedConfig::load(ConfigSources {
                ignore_file: true,
                ..ConfigSources::default()
            })?
        }
    };
    let settings = &config.settings;
    output::set_backend(settings.backend);

    // Personalities.
    let catalog = PersonalityCatalog::with_dirs(settings.personality_dirs.clone());
    let entries = catalog.list();
    let good = entries.iter().filter(|e| e.personality.is_ok()).count();
    report.ok(
        "personalities",
        &format!(
            "{good} found ({})",
            entries
                .iter()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    for entry in entries.iter().filter(|e| e.personality.is_err()) {
        if let Err(err) = &entry.personality {
            report.fail(
                CONFIG,
                &format!("personality {}", entry.name),
                &err.to_string(),
                err.hint(),
            );
        }
    }
    if let Err(err) = catalog.load(settings.personality.as_str()) {
        report.fail(
            CONFIG,
            "configured personality",
            &err.to_string(),
            err.hint(),
        );
    }

    let conductor = match Conductor::from_settings(settings) {
        Ok(conductor) => conductor,
        Err(err) => {
            report.fail(CONFIG, "setup", &err.to_string(), err.hint());
            return finish(report);
        }
    };
    if let Some(pool) = conductor.backend().pool() {
        // A pool: every host checked on its own and named, so the broken one is plain.
        for host in pool.hosts() {
            let backend: Arc<dyn Backend> = Arc::new(host.backend().clone());
            let guard = conductor
                .guard()
                .map(|guard| guard.for_host(Arc::clone(&backend)));
            let name = backend.endpoint();
            check_server(
                &mut report,
                &conductor,
                settings,
                &backend,
                guard.as_ref(),
                Some(&name),
            )
            .await;
        }
    } else {
        let backend = Arc::clone(conductor.backend());
        let guard = conductor.guard().cloned();
        if !check_server(
            &mut report,
            &conductor,
            settings,
            &backend,
            guard.as_ref(),
            None,
        )
        .await
        {
            print_device(&mut report, &conductor);
            return finish(report);
        }
    }
    print_device(&mut report, &conductor);
    finish(report)
}

/// Checks one server: reachable (and its version), the model present, the model's residency;
/// `host` names it in every line when it is one host of a pool. False when the server cannot
/// be reached at all, so nothing more can be learnt from it.
async fn check_server(
    report: &mut Report,
    conductor: &Conductor,
    settings: &Settings,
    backend: &Arc<dyn Backend>,
    guard: Option<&Arc<ResidencyGuard>>,
    host: Option<&str>,
) -> bool {
    let on = |what: &str| host.map_or_else(|| what.to_owned(), |h| format!("{what} on host {h}"));
    // A single server's residency waits for everything before it; a pool host's for its own
    // checks only, so one broken host does not hide the others.
    let failures_before = if host.is_some() { report.failures } else { 0 };
    match backend.model_server() {
        Some(server) => match server.version().await {
            Ok(version) => report.ok(
                &on("Ollama"),
                &format!("version {version} at {}", backend.endpoint()),
            ),
            Err(err) => {
                report.fail(
                    OLLAMA,
                    &on("Ollama"),
                    &output::message_text(&err),
                    output::hint_text(&err),
                );
                return false;
            }
        },
        // An OpenAI-compatible server has no version endpoint: the model list below is the
        // reachability check.
        None => report.info(
            &on("server"),
            &format!("{} server at {}", settings.backend, backend.endpoint()),
        ),
    }

    // The model.
    let model = &settings.model;
    match backend.models().await {
        Ok(models)
            if models
                .iter()
                .any(|m| conductor_core::backend::same_model(&m.name, model)) =>
        {
            report.ok(&on("model"), &format!("{model} is present"));
        }
        Ok(models) => report.fail(
            MODEL_NOT_FOUND,
            &on("model"),
            &format!(
                "{model} is not on the server (it has: {})",
                models
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Some(if backend.model_server().is_some() {
                format!("`ollama pull {model}` or `conductor pull {model}`")
            } else {
                "use one of the models listed: this server serves those it was started with"
                    .to_owned()
            }),
        ),
        Err(err) => report.fail(
            OLLAMA,
            &on("model list"),
            &output::message_text(&err),
            output::hint_text(&err),
        ),
    }

    // Residency, checked the way a request would load the model.
    if report.failures == failures_before && backend.model_server().is_none() {
        report.info(
            &on("residency"),
            &if settings.gpu_policy == conductor_core::GpuPolicy::Off {
                "not reported by this server (policy off: not checked)".to_owned()
            } else {
                format!(
                    "not reported by this server; under policy {} requests are admitted as \
                     asked, with a notice (never a refusal)",
                    settings.gpu_policy
                )
            },
        );
    } else if report.failures == failures_before
        && let Some(guard) = guard
    {
        let defaults = conductor.defaults();
        match guard
            .check(model, &defaults.options, defaults.keep_alive)
            .await
        {
            Ok(check) if check.resident => {
                let running = check.running.as_ref();
                report.ok(
                    &on("residency"),
                    &format!(
                        "{} ({}, context {}) under policy {}",
                        running.map_or_else(|| "?".into(), |r| r.processor().to_string()),
                        running.map_or_else(|| "?".into(), |r| output::bytes(r.size)),
                        running
                            .and_then(|r| r.context_length)
                            .map_or_else(|| "?".into(), |c| c.to_string()),
                        settings.gpu_policy
                    ),
                );
            }
            Ok(check) => {
                let diagnosis = check.diagnosis.clone();
                let summary = diagnosis
                    .as_ref()
                    .map_or_else(|| "not resident".into(), |d| d.summary());
                report.fail(
                    NOT_RESIDENT,
                    &on("residency"),
                    &summary,
                    diagnosis.as_ref().map(output::fix_text),
                );
                for note in diagnosis.iter().flat_map(|d| d.notes.iter()) {
                    report.line(format_args!("    note: {}", strip_controls(note)));
                }
            }
            Err(err @ Error::ModelNotFound { .. }) => report.fail(
                MODEL_NOT_FOUND,
                &on("residency"),
                &output::message_text(&err),
                output::hint_text(&err),
            ),
            Err(err) => report.fail(
                OLLAMA,
                &on("residency"),
                &output::message_text(&err),
                output::hint_text(&err),
            ),
        }
    }
    true
}

fn print_device(report: &mut Report, conductor: &Conductor) {
    let Some(guard) = conductor.guard() else {
        return;
    };
    match guard.probe().snapshot() {
        DeviceView::Devices { gpus, driver } if !gpus.is_empty() => {
            for g in &gpus {
                report.ok(
                    &format!("GPU {}", g.index),
                    &format!(
                        "{} ({} free of {}, driver {})",
                        g.name,
                        gib(g.memory_free),
                        gib(g.memory_total),
                        driver.as_deref().unwrap_or("?")
                    ),
                );
            }
        }
        DeviceView::Devices { .. } => report.fail(
            NOT_RESIDENT,
            "GPU",
            "NVML lists no GPU on this machine",
            Some("check `nvidia-smi`".into()),
        ),
        DeviceView::NoNvml { reason } => {
            report.info("GPU", &format!("no NVML on this machine ({reason})"))
        }
        // A server without a model server (OpenAI-compatible) reports no residency at all.
        DeviceView::Remote if conductor.backend().model_server().is_none() => report.info(
            "GPU",
            "the server is remote: local NVML does not see its GPUs, and it does not report where \
             the model runs",
        ),
        DeviceView::Remote => report.info(
            "GPU",
            "Ollama is remote: local NVML does not see its GPUs; residency relies on /api/ps",
        ),
    }
}

fn finish(mut report: Report) -> Result<ExitCode, Failure> {
    let code = match report.worst {
        None => {
            report.line(format_args!("all good"));
            ExitCode::SUCCESS
        }
        Some(code) => ExitCode::from(code),
    };
    // Output that could not be written outranks what it said.
    report.output.map_or(Ok(code), Err)
}
