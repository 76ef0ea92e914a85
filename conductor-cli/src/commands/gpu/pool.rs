//! `conductor gpu verify|status` on a pool of hosts (`ollama.hosts`): each host checked by its
//! own guard; `verify` exits 3 when any host is not fully on the GPU, naming it.

use std::process::ExitCode;
use std::sync::Arc;

use conductor_core::backend::PoolBackend;
use conductor_core::gpu::{DeviceView, ResidencyGuard};
use conductor_core::{Backend, Conductor};
use serde_json::json;

use super::status::{print_device, print_remembered_fixes, print_running};
use super::{device_json, print_verdict, running_json, verify_host, verify_json};
use crate::exit::{Failure, NOT_RESIDENT};
use crate::output::{errln, outln};

/// `gpu verify` on every host, one after another.
pub(super) async fn verify(
    conductor: &Conductor,
    pool: &PoolBackend,
    guard: &ResidencyGuard,
    json: bool,
) -> Result<ExitCode, Failure> {
    let mut not_resident = Vec::new();
    let mut first_error = None;
    let mut hosts_json = Vec::new();
    for host in pool.hosts() {
        let endpoint = host.endpoint();
        let backend: Arc<dyn Backend> = Arc::new(host.backend().clone());
        let host_guard = guard.for_host(Arc::clone(&backend));
        if !json {
            outln!("host {endpoint}")?;
        }
        match verify_host(conductor, &backend, &host_guard).await {
            Ok((report, generation)) => {
                if !report.resident {
                    not_resident.push(endpoint.clone());
                }
                if json {
                    let mut one = verify_json(&report, &generation);
                    one["host"] = endpoint.into();
                    hosts_json.push(one);
                } else {
                    print_verdict(&report, &generation)?;
                    outln!()?;
                }
            }
            Err(failure) => {
                let message = failure.message();
                if json {
                    hosts_json.push(json!({ "host": endpoint, "error": message }));
                } else {
                    outln!("cannot verify {endpoint}: {message}\n")?;
                }
                first_error.get_or_insert(failure);
            }
        }
    }
    if json {
        let out = json!({
            "resident": not_resident.is_empty() && first_error.is_none(),
            "not_resident": not_resident,
            "hosts": hosts_json,
        });
        outln!("{out:#}")?;
    }
    if !not_resident.is_empty() {
        errln!(
            "not fully on the GPU on {} of {} hosts: {}",
            not_resident.len(),
            pool.len(),
            not_resident.join(", ")
        );
        return Ok(ExitCode::from(NOT_RESIDENT));
    }
    match first_error {
        Some(failure) if json => Err(Failure::Reported(Box::new(failure))),
        Some(failure) => Err(failure),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// `gpu status`: this machine's GPUs once, then each host's loaded models, health and fixes.
pub(super) async fn status(
    pool: &PoolBackend,
    guard: &ResidencyGuard,
    view: &DeviceView,
    json: bool,
) -> Result<ExitCode, Failure> {
    let hosts = pool.hosts();
    let running = futures::future::join_all(hosts.iter().map(|host| async move {
        conductor_core::ModelServer::running_models(host.backend()).await
    }))
    .await;
    let mut failed = 0;
    let mut hosts_json = Vec::new();
    if !json {
        print_device(view)?;
    }
    for (host, running) in hosts.iter().zip(running) {
        let endpoint = host.endpoint();
        let backend: Arc<dyn Backend> = Arc::new(host.backend().clone());
        let fixes = guard.for_host(backend).fixes().for_host();
        failed += usize::from(running.is_err());
        if json {
            hosts_json.push(json!({
                "host": endpoint,
                "running": running.as_ref().ok().map(|r| r.iter().map(running_json).collect::<Vec<_>>()),
                "ollama_error": running.as_ref().err().map(ToString::to_string),
                "remembered_fixes": fixes,
            }));
            continue;
        }
        outln!("\nhost {endpoint}")?;
        match &running {
            Ok(running) => print_running(running)?,
            Err(err) => outln!("cannot reach it: {err}")?,
        }
        print_remembered_fixes(&fixes, guard.policy())?;
    }
    if json {
        let out = json!({
            "device": device_json(view),
            "hosts": hosts_json,
            "policy": guard.policy().to_string(),
        });
        outln!("{out:#}")?;
    }
    if failed == hosts.len() {
        return Err(Failure::Core(conductor_core::Error::Unreachable {
            host: pool.endpoint(),
            reason: "no host of the pool answered".into(),
        }));
    }
    Ok(ExitCode::SUCCESS)
}
