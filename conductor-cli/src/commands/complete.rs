//! Shell completion: `conductor completions SHELL` prints the script, and the script calls
//! `COMPLETE=SHELL conductor -- WORDS…` on every TAB (clap_complete's dynamic engine, run from
//! `main`). Values of `-p` come from the personality catalog, values of `-m` (and `show`/`stop`)
//! from the configured server's model list.

use std::ffi::OsStr;
use std::process::ExitCode;
use std::time::Duration;

use clap::CommandFactory;
use clap_complete::engine::CompletionCandidate;
use clap_complete::env::{Bash, Elvish, EnvCompleter, Fish, Powershell, Zsh};
use conductor_core::{Conductor, LoadedConfig, PersonalityCatalog};

use clap::ValueEnum;

use crate::cli::{BackendArg, Cli, GlobalArgs};
use crate::exit::Failure;

/// How long a TAB waits for the server's model list: long enough for a local server, short
/// enough that a server that is down costs the shell no noticeable pause.
pub const MODEL_LIST_TIMEOUT: Duration = Duration::from_millis(300);

/// The environment variable that switches the binary into completion mode.
pub const COMPLETE_VAR: &str = "COMPLETE";

/// `conductor completions SHELL [--static]`. The dynamic script (the default) asks conductor
/// for candidates, so it knows personality and model names and never goes stale; `--static` is
/// clap's fixed script of commands and flags. Generated into memory first: clap_complete
/// panics when its writer fails, and stdout may be closed or full.
pub fn script(shell: clap_complete::Shell, static_script: bool) -> Result<ExitCode, Failure> {
    let mut script = Vec::new();
    if static_script {
        clap_complete::generate(shell, &mut Cli::command(), "conductor", &mut script);
    } else {
        let completer: &dyn EnvCompleter = match shell {
            clap_complete::Shell::Bash => &Bash,
            clap_complete::Shell::Zsh => &Zsh,
            clap_complete::Shell::Fish => &Fish,
            clap_complete::Shell::PowerShell => &Powershell,
            clap_complete::Shell::Elvish => &Elvish,
            other => {
                return Err(Failure::Usage(format!(
                    "no dynamic completion for {other}: use `conductor completions {other} --static`"
                )));
            }
        };
        completer
            .write_registration(
                COMPLETE_VAR,
                "conductor",
                "conductor",
                "conductor",
                &mut script,
            )
            .map_err(|err| Failure::other(format!("cannot write the script: {err}")))?;
    }
    crate::output::write_out(format_args!("{}", String::from_utf8_lossy(&script)))?;
    Ok(ExitCode::SUCCESS)
}

/// The configuration as the command being completed would load it: the `--host`,
/// `--backend` and `--config` already typed on its line first (so `conductor --host gpu-box
/// ask -m <TAB>` lists gpu-box's models), then the environment and the config file. A config
/// file that does not load is passed over (the environment and the defaults still name the
/// server and the platform's personality directory): a typo in it must not empty every
/// completion. `None` only when even that does not load.
fn configuration() -> Option<LoadedConfig> {
    let typed = typed_flags(std::env::args_os().skip(1));
    LoadedConfig::load(typed.sources().ok()?)
        .or_else(|_| {
            let mut sources = typed.sources()?;
            sources.ignore_file = true;
            LoadedConfig::load(sources).map_err(Failure::from)
        })
        .ok()
}

/// The server flags among the words of the line being completed (`--host X`, `--host=X`,
/// and so for `--backend` and `--config`); a value that does not parse is left out, as the
/// shell's user is still typing.
fn typed_flags(words: impl Iterator<Item = std::ffi::OsString>) -> GlobalArgs {
    let words: Vec<String> = words.map(|w| w.to_string_lossy().into_owned()).collect();
    let mut flags = GlobalArgs::default();
    let value_of = |at: usize, flag: &str| -> Option<String> {
        let word = words.get(at)?;
        match word.strip_prefix(flag)? {
            "" => words.get(at + 1).cloned(),
            rest => rest.strip_prefix('=').map(str::to_owned),
        }
    };
    for at in 0..words.len() {
        if let Some(host) = value_of(at, "--host").filter(|h| !h.is_empty()) {
            flags.host = Some(host);
        }
        if let Some(kind) = value_of(at, "--backend") {
            flags.backend = BackendArg::from_str(&kind, true).ok().or(flags.backend);
        }
        if let Some(path) = value_of(at, "--config").filter(|p| !p.is_empty()) {
            flags.config = Some(path.into());
        }
    }
    flags
}

/// Candidates for `-p`: the names of the personalities that parse, built in and from the
/// configured directories.
pub fn personalities(current: &OsStr) -> Vec<CompletionCandidate> {
    let catalog = match configuration() {
        Some(config) => PersonalityCatalog::with_dirs(config.settings.personality_dirs),
        None => PersonalityCatalog::builtin(),
    };
    let prefix = current.to_string_lossy();
    catalog
        .list()
        .into_iter()
        .filter(|entry| entry.name.starts_with(prefix.as_ref()))
        .map(|entry| {
            let help = entry
                .personality
                .as_ref()
                .ok()
                .map(|p| conductor_core::text::one_line(p.description()).into_owned())
                .filter(|d| !d.is_empty());
            CompletionCandidate::new(entry.name).help(help.map(Into::into))
        })
        .collect()
}

/// Candidates for `-m`: the configured server's local models, fetched within
/// [`MODEL_LIST_TIMEOUT`]; nothing at all when the server is down, slow or not configured.
pub fn models(current: &OsStr) -> Vec<CompletionCandidate> {
    let prefix = current.to_string_lossy();
    model_names()
        .into_iter()
        .filter(|name| name.starts_with(prefix.as_ref()))
        .map(CompletionCandidate::new)
        .collect()
}

fn model_names() -> Vec<String> {
    let Some(config) = configuration() else {
        return Vec::new();
    };
    within(MODEL_LIST_TIMEOUT, async move {
        let conductor = Conductor::from_settings(&config.settings).ok()?;
        conductor.backend().models().await.ok()
    })
    .flatten()
    .unwrap_or_default()
    .into_iter()
    .map(|m| m.name)
    // A name that would break the shell's word list is not offered.
    .filter(|name| !name.is_empty() && !name.chars().any(char::is_control))
    .collect()
}

/// Runs `work` on a runtime of its own for at most `limit`; `None` when it takes longer. The
/// runtime is then abandoned, not waited for: its blocking tasks (reqwest's DNS lookup, a
/// `getaddrinfo` that may hang for seconds) would otherwise hold the shell's TAB past the
/// limit, and they end with the process.
fn within<T>(limit: Duration, work: impl std::future::Future<Output = T>) -> Option<T> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let result = runtime.block_on(async { tokio::time::timeout(limit, work).await.ok() });
    runtime.shutdown_background();
    result
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{typed_flags, within};

    fn flags(line: &str) -> super::GlobalArgs {
        typed_flags(line.split(' ').map(Into::into))
    }

    #[test]
    fn the_server_flags_typed_on_the_line_are_read() {
        let typed = flags("-- conductor --host gpu-box:11434 ask -m ");
        assert_eq!(typed.host.as_deref(), Some("gpu-box:11434"));
        let typed = flags("-- conductor ask --backend=openai --host=http://x:8000/v1 -m ");
        assert!(matches!(typed.backend, Some(super::BackendArg::Openai)));
        assert_eq!(typed.host.as_deref(), Some("http://x:8000/v1"));
        assert_eq!(
            flags("-- conductor --config /tmp/c.toml ask -p ")
                .config
                .as_deref(),
            Some(std::path::Path::new("/tmp/c.toml"))
        );
        // Still being typed, or not a value: left out.
        assert_eq!(flags("-- conductor --host ").host, None);
        assert!(
            flags("-- conductor --backend nope ask -m ")
                .backend
                .is_none()
        );
        assert_eq!(flags("-- conductor --hostile x").host, None);
    }

    #[test]
    fn a_hanging_blocking_task_does_not_hold_the_completion_past_its_limit() {
        let started = Instant::now();
        // As a DNS lookup that never returns: a blocking task the runtime cannot cancel.
        let answer = within(Duration::from_millis(100), async {
            tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_secs(5)))
                .await
                .ok()
        });
        assert!(answer.is_none());
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(within(Duration::from_secs(1), async { 7 }), Some(7));
    }
}
