//! `conductor gpu status`: this machine's GPUs, the models loaded in Ollama, the fixes in force.

use std::process::ExitCode;
use std::sync::Arc;

use conductor_core::gpu::{DeviceView, ResidencyGuard, gib};
use conductor_core::{Conductor, GpuPolicy, RunningModel};
use serde_json::json;

use super::{
    NOT_REPORTED, device_json, device_line, evidence_json, evidence_lines, pool, running_json,
};
use crate::exit::Failure;
use crate::output::{self, bytes, outln, table};

pub(super) async fn status(
    conductor: &Conductor,
    guard: &Arc<ResidencyGuard>,
    json: bool,
) -> Result<ExitCode, Failure> {
    // The device view needs no Ollama: show it even when the server is down.
    let probe = Arc::clone(guard.probe());
    let view = tokio::task::spawn_blocking(move || probe.snapshot())
        .await
        .unwrap_or(DeviceView::NoNvml {
            reason: "the GPU probe failed".into(),
        });
    if let Some(hosts) = conductor.backend().pool() {
        return pool::status(hosts, guard, &view, json).await;
    }
    if conductor.backend().model_server().is_none() {
        // An OpenAI-compatible server: say plainly that nobody measured where the model runs,
        // and show what it does report about itself beside that.
        let reports = conductor.backend().server_reports().await;
        if json {
            outln!(
                "{:#}",
                json!({
                    "device": device_json(&view),
                    "running": null,
                    "residency": NOT_REPORTED,
                    "evidence": evidence_json(reports.as_ref()),
                    "endpoint": conductor.backend().endpoint(),
                    "policy": guard.policy().to_string(),
                })
            )?;
        } else {
            print_device(&view)?;
            outln!()?;
            outln!(
                "residency: {NOT_REPORTED} ({}); policy {} admits requests as asked",
                conductor.backend().endpoint(),
                guard.policy()
            )?;
            for line in evidence_lines(reports.as_ref()) {
                outln!("evidence: {line}")?;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let running = match conductor.backend().server() {
        Ok(server) => server.running_models().await,
        Err(err) => Err(err),
    };
    let fixes = guard.fixes().for_host();
    if json {
        let out = json!({
            "device": device_json(&view),
            "running": running.as_ref().ok().map(|r| r.iter().map(running_json).collect::<Vec<_>>()),
            "ollama_error": running.as_ref().err().map(ToString::to_string),
            "remembered_fixes": fixes,
            "policy": guard.policy().to_string(),
        });
        outln!("{out:#}")?;
        return running.map(|_| ExitCode::SUCCESS).map_err(Failure::from);
    }
    print_device(&view)?;
    outln!()?;
    print_running(&running?)?;
    print_remembered_fixes(&fixes, guard.policy())?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn print_device(view: &DeviceView) -> Result<(), Failure> {
    match view {
        DeviceView::Devices { driver, gpus } if !gpus.is_empty() => {
            let rows: Vec<Vec<String>> = gpus
                .iter()
                .map(|g| {
                    vec![
                        g.index.to_string(),
                        g.name.clone(),
                        format!("{} / {}", gib(g.memory_used), gib(g.memory_total)),
                        g.utilization
                            .map_or_else(|| "-".into(), |u| format!("{u}%")),
                        g.processes
                            .iter()
                            .map(|p| {
                                format!(
                                    "{} {}",
                                    p.label(),
                                    p.used_memory.map_or_else(String::new, gib)
                                )
                            })
                            .collect::<Vec<_>>()
                            .join(", "),
                    ]
                })
                .collect();
            outln!(
                "{}",
                table(&["GPU", "NAME", "MEMORY", "UTIL", "PROCESSES"], &rows)
            )?;
            if let Some(driver) = driver {
                outln!("driver {driver}")?;
            }
        }
        other => outln!("{}", device_line(other))?,
    }
    Ok(())
}

pub(super) fn print_running(running: &[RunningModel]) -> Result<(), Failure> {
    if running.is_empty() {
        outln!("no model loaded in Ollama")?;
        return Ok(());
    }
    let now = jiff::Timestamp::now();
    let rows: Vec<Vec<String>> = running
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                bytes(r.size),
                r.processor().to_string(),
                r.context_length
                    .map_or_else(|| "-".into(), |c| c.to_string()),
                crate::commands::ps::until(r.expires_at.as_deref(), now),
            ]
        })
        .collect();
    outln!(
        "{}",
        table(&["NAME", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"], &rows)
    )?;
    Ok(())
}

pub(super) fn print_remembered_fixes(
    fixes: &[conductor_core::gpu::RememberedFix],
    policy: GpuPolicy,
) -> Result<(), Failure> {
    if fixes.is_empty() {
        return Ok(());
    }
    let applied = if policy == GpuPolicy::Fix {
        "applied now"
    } else {
        "applied under --gpu-policy fix"
    };
    outln!("\nGPU fixes remembered ({applied}; `conductor gpu forget` drops them):")?;
    for line in output::remembered_fix_lines(fixes) {
        outln!("  {line}")?;
    }
    Ok(())
}
