//! `conductor pull NAME`: download a model through Ollama with real progress bars.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::process::ExitCode;

use conductor_core::Conductor;
use futures::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::GlobalArgs;
use crate::commands::load_config;
use crate::exit::Failure;
use crate::output::{errln, outln};
use conductor_core::text::one_line;

/// Runs the command.
pub async fn run(global: &GlobalArgs, name: &str) -> Result<ExitCode, Failure> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Failure::Usage(
            "nothing to pull: give a model name, e.g. `conductor pull llama3.2:3b`".into(),
        ));
    }
    let config = load_config(global)?;
    let conductor = Conductor::from_settings(&config.settings)?;
    let server = conductor
        .backend()
        .server()
        .map_err(Failure::model_management("pull"))?;
    let terminal = std::io::stderr().is_terminal();
    let bars = MultiProgress::with_draw_target(if terminal {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let style = ProgressStyle::with_template(
        "{msg:>14} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12} ETA {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    let mut layers: HashMap<String, ProgressBar> = HashMap::new();
    let mut interrupt = std::pin::pin!(crate::exit::stop_signal());
    let mut stream = tokio::select! {
        signal = &mut interrupt => return Err(Failure::Interrupted(signal)),
        stream = server.pull_model(name) => stream?,
    };
    let mut last_status = String::new();
    loop {
        let item = tokio::select! {
            signal = &mut interrupt => {
                for bar in layers.values() { bar.abandon(); }
                // Dropping the stream closes the connection; Ollama keeps what it downloaded.
                return Err(Failure::Interrupted(signal));
            }
            item = stream.next() => item,
        };
        let Some(item) = item else { break };
        let progress = item?;
        match (&progress.digest, progress.total) {
            (Some(digest), Some(total)) => {
                let bar = layers.entry(digest.clone()).or_insert_with(|| {
                    let bar = bars.add(ProgressBar::new(total));
                    bar.set_style(style.clone());
                    let short = digest.trim_start_matches("sha256:");
                    bar.set_message(short.get(..12).unwrap_or(short).to_owned());
                    bar
                });
                bar.set_position(progress.completed.unwrap_or(0).min(total));
                if progress.completed == Some(total) {
                    bar.finish();
                }
                if !terminal && progress.status != last_status {
                    errln!("{}", one_line(&progress.status));
                }
            }
            _ => {
                if terminal {
                    let _ = bars.println(one_line(&progress.status));
                } else {
                    errln!("{}", one_line(&progress.status));
                }
            }
        }
        last_status.clone_from(&progress.status);
        if progress.is_success() {
            for bar in layers.values() {
                bar.finish();
            }
            outln!("pulled {name}")?;
            return Ok(ExitCode::SUCCESS);
        }
    }
    Err(Failure::Core(conductor_core::Error::Truncated))
}
