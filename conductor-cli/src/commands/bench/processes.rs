//! Whole processes, as a user runs them: `conductor ask` under each GPU policy beside a minimal
//! client (one reqwest POST to `/api/chat`) and `ollama run` when it is installed, in
//! interleaved rounds. Each run is timed to its first output byte by a small measuring process
//! (`conductor __measure`) that also reads the child's CPU time and peak RSS from the kernel
//! (`getrusage` of its only child), so the figures are exact per run and include start-up.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use conductor_core::BackendKind;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::exit::Failure;
use crate::output::table;

/// What one measured run showed.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Measurement {
    /// From spawn to the first byte on stdout.
    pub first_byte_ms: Option<f64>,
    /// From spawn to exit.
    pub total_ms: f64,
    /// User + system CPU time of the child.
    pub cpu_ms: Option<f64>,
    /// The child's peak resident set, KiB.
    pub max_rss_kib: Option<u64>,
    /// The child's exit code (`None`: killed by a signal).
    pub exit_code: Option<i32>,
    /// Bytes it wrote to stdout.
    pub stdout_bytes: u64,
}

/// `conductor __measure -- PROGRAM ARGS...`: runs the program, discards its stdout while timing
/// the first byte, and prints one JSON [`Measurement`].
pub fn measure_main(command: &[String]) -> Result<ExitCode, Failure> {
    let measurement = measure(command)?;
    let line = serde_json::to_string(&measurement).map_err(|e| Failure::other(e.to_string()))?;
    crate::output::print_line(&line)?;
    Ok(ExitCode::SUCCESS)
}

fn measure(command: &[String]) -> Result<Measurement, Failure> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| Failure::Usage("__measure needs a command".into()))?;
    let before = children_usage();
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|err| Failure::other(format!("cannot start {program}: {err}")))?;
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| Failure::other("no stdout pipe"))?;
    let mut first_byte = None;
    let mut total_bytes = 0u64;
    let mut buffer = [0u8; 8192];
    loop {
        match stdout.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                first_byte.get_or_insert_with(|| started.elapsed());
                total_bytes += n as u64;
            }
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(Failure::other(format!("reading {program}: {err}"))),
        }
    }
    let status = child
        .wait()
        .map_err(|err| Failure::other(format!("waiting for {program}: {err}")))?;
    let total = started.elapsed();
    let after = children_usage();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    Ok(Measurement {
        first_byte_ms: first_byte.map(ms),
        total_ms: ms(total),
        cpu_ms: after.zip(before).map(|(a, b)| ms(a.0.saturating_sub(b.0))),
        // The measuring process has one child, so the children's peak is this child's.
        max_rss_kib: after.map(|a| a.1),
        exit_code: status.code(),
        stdout_bytes: total_bytes,
    })
}

/// CPU time and peak RSS (KiB) of the waited-for children of this process.
#[cfg(unix)]
fn children_usage() -> Option<(Duration, u64)> {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).ok()?;
    let tv = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(u64::try_from(t.tv_sec()).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec()).unwrap_or(0))
    };
    // Linux reports ru_maxrss in KiB.
    let rss = u64::try_from(usage.max_rss()).unwrap_or(0);
    Some((tv(usage.user_time()) + tv(usage.system_time()), rss))
}

#[cfg(not(unix))]
fn children_usage() -> Option<(Duration, u64)> {
    None
}

/// `conductor __raw-chat [--protocol P] URL BODY_FILE`: the minimal client: one POST, each
/// line's content printed as it arrives. The baseline conductor is measured against. For
/// [`BackendKind::OpenAi`] the lines are SSE events (`data: {...}`, `data: [DONE]`) and the
/// content is each `choices[0].delta.content`; for Ollama, NDJSON with `message.content`.
pub fn raw_chat_main(
    protocol: BackendKind,
    url: &str,
    body_file: &Path,
) -> Result<ExitCode, Failure> {
    let body = std::fs::read(body_file)
        .map_err(|err| Failure::other(format!("cannot read {}: {err}", body_file.display())))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| Failure::other(err.to_string()))?;
    runtime.block_on(async {
        use std::io::Write;
        let response = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|err| Failure::other(format!("raw request failed: {err}")))?;
        let mut response = response;
        let mut pending = Vec::new();
        let mut out = std::io::stdout().lock();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| Failure::other(format!("raw stream failed: {err}")))?
        {
            pending.extend_from_slice(&chunk);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                if let Some(text) = raw_content(protocol, &line)
                    && out
                        .write_all(text.as_bytes())
                        .and_then(|()| out.flush())
                        .is_err()
                {
                    return Ok(ExitCode::SUCCESS);
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// The answer text one streamed line carries, in the backend's protocol; `None` for lines
/// without any (SSE comments, `[DONE]`, the usage chunk, blank lines).
fn raw_content(protocol: BackendKind, line: &[u8]) -> Option<String> {
    let json = if protocol == BackendKind::OpenAi {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let data = line.strip_prefix(b"data:")?;
        data.strip_prefix(b" ").unwrap_or(data)
    } else {
        line
    };
    let value = serde_json::from_slice::<serde_json::Value>(json).ok()?;
    let text = if protocol == BackendKind::OpenAi {
        &value["choices"][0]["delta"]["content"]
    } else {
        &value["message"]["content"]
    };
    text.as_str().map(str::to_owned)
}

/// One client in the comparison.
#[derive(Debug, Clone)]
pub struct Client {
    /// How the table names it.
    pub label: String,
    /// The program and its arguments.
    pub command: Vec<String>,
}

/// The figures of one client over all rounds.
#[derive(Debug, Clone)]
pub struct ClientFigures {
    /// The client.
    pub label: String,
    /// Every run.
    pub runs: Vec<Measurement>,
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        f64::midpoint(values[mid - 1], values[mid])
    } else {
        values[mid]
    })
}

impl ClientFigures {
    /// Median first byte, ms.
    #[must_use]
    pub fn first_byte(&self) -> Option<f64> {
        median(self.runs.iter().filter_map(|r| r.first_byte_ms).collect())
    }

    /// Median CPU, ms.
    #[must_use]
    pub fn cpu(&self) -> Option<f64> {
        median(self.runs.iter().filter_map(|r| r.cpu_ms).collect())
    }

    /// Median peak RSS, MiB.
    #[must_use]
    pub fn rss_mib(&self) -> Option<f64> {
        #[allow(clippy::cast_precision_loss)]
        median(
            self.runs
                .iter()
                .filter_map(|r| r.max_rss_kib)
                .map(|k| k as f64 / 1024.0)
                .collect(),
        )
    }

    /// Runs that failed (non-zero exit or no output).
    #[must_use]
    pub fn failures(&self) -> usize {
        self.runs
            .iter()
            .filter(|r| r.exit_code != Some(0) || r.stdout_bytes == 0)
            .count()
    }
}

/// Runs every client `rounds` times, interleaved (round by round), after one discarded warm-up
/// round, each run through `conductor __measure`.
pub fn run_rounds(
    exe: &Path,
    clients: &[Client],
    rounds: u32,
) -> Result<Vec<ClientFigures>, Failure> {
    let mut figures: Vec<ClientFigures> = clients
        .iter()
        .map(|c| ClientFigures {
            label: c.label.clone(),
            runs: Vec::new(),
        })
        .collect();
    for round in 0..=rounds {
        for (client, figures) in clients.iter().zip(figures.iter_mut()) {
            let output = Command::new(exe)
                .arg("__measure")
                .arg("--")
                .args(&client.command)
                .stdin(Stdio::null())
                .stderr(Stdio::inherit())
                .output()
                .map_err(|err| Failure::other(format!("cannot run the measurer: {err}")))?;
            let measurement: Measurement =
                serde_json::from_slice(&output.stdout).map_err(|err| {
                    Failure::other(format!("the measurer's report did not parse: {err}"))
                })?;
            if round > 0 {
                figures.runs.push(measurement);
            }
        }
    }
    Ok(figures)
}

/// The table and its ratios to the first client (the baseline).
pub fn report(figures: &[ClientFigures]) -> (String, serde_json::Value) {
    let base = figures.first();
    let ratio = |v: Option<f64>, b: Option<f64>| match (v, b) {
        (Some(v), Some(b)) if b > 0.0 => format!(" ({:.2}×)", v / b),
        _ => String::new(),
    };
    let cell =
        |v: Option<f64>, unit: &str| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1} {unit}"));
    let mut rows = Vec::new();
    let mut json_rows = Vec::new();
    for f in figures {
        let (fb, cpu, rss) = (f.first_byte(), f.cpu(), f.rss_mib());
        let delta = match (fb, base.and_then(ClientFigures::first_byte)) {
            (Some(v), Some(b)) if !std::ptr::eq(f, base.unwrap_or(f)) => {
                format!(" {:+.1} ms", v - b)
            }
            _ => String::new(),
        };
        rows.push(vec![
            f.label.clone(),
            format!("{}{delta}", cell(fb, "ms")),
            format!(
                "{}{}",
                cell(cpu, "ms"),
                ratio(cpu, base.and_then(ClientFigures::cpu))
            ),
            format!(
                "{}{}",
                cell(rss, "MiB"),
                ratio(rss, base.and_then(ClientFigures::rss_mib))
            ),
            format!("{}/{}", f.runs.len() - f.failures(), f.runs.len()),
        ]);
        json_rows.push(json!({
            "client": f.label,
            "first_byte_ms_median": fb,
            "cpu_ms_median": cpu,
            "peak_rss_mib_median": rss,
            "first_byte_delta_ms": fb.zip(base.and_then(ClientFigures::first_byte)).map(|(v, b)| v - b),
            "cpu_ratio": cpu.zip(base.and_then(ClientFigures::cpu)).map(|(v, b)| v / b),
            "rss_ratio": rss.zip(base.and_then(ClientFigures::rss_mib)).map(|(v, b)| v / b),
            "ok_runs": f.runs.len() - f.failures(),
            "runs": f.runs,
        }));
    }
    let text = table(
        &[
            "CLIENT",
            "FIRST BYTE (median)",
            "CPU PER RUN",
            "PEAK RSS",
            "OK",
        ],
        &rows,
    );
    (text, serde_json::Value::Array(json_rows))
}

/// Finds `name` on `PATH`.
#[must_use]
pub fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn medians_are_medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(Vec::new()), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_measured_process_reports_its_first_byte_cpu_and_memory() {
        let m = measure(&[
            "sh".to_owned(),
            "-c".to_owned(),
            "sleep 0.05; printf hi".to_owned(),
        ])
        .unwrap();
        assert_eq!(m.exit_code, Some(0));
        assert_eq!(m.stdout_bytes, 2);
        assert!(m.first_byte_ms.unwrap() >= 50.0, "{m:?}");
        assert!(m.max_rss_kib.unwrap() > 0, "{m:?}");
        assert!(m.cpu_ms.is_some());
    }

    #[test]
    fn raw_content_reads_both_protocols() {
        let sse = br#"data: {"choices":[{"delta":{"content":"H\u00e9"}}]}"#;
        assert_eq!(
            raw_content(BackendKind::OpenAi, sse).as_deref(),
            Some("H\u{e9}")
        );
        assert_eq!(raw_content(BackendKind::OpenAi, b"data: [DONE]\n"), None);
        assert_eq!(raw_content(BackendKind::OpenAi, b": keep-alive\n"), None);
        let ndjson = br#"{"message":{"content":"a"}}"#;
        assert_eq!(
            raw_content(BackendKind::Ollama, ndjson).as_deref(),
            Some("a")
        );
        assert_eq!(raw_content(BackendKind::Ollama, sse), None);
    }
}
