//! `conductor ask`: one question, the answer streamed to stdout as tokens arrive.

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use conductor_core::{
    ChatEvent, Completion, Conductor, Error, LoadedConfig, RunningModel, TokenTiming,
};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::cli::{AskArgs, GlobalArgs};
use crate::exit::Failure;
use crate::output::{self, paint, style};

/// Most stdin accepted as a prompt (16 MiB): beyond that it cannot fit any model's context.
pub const MAX_STDIN: u64 = 16 << 20;

/// Runs the command.
pub async fn run(global: &GlobalArgs, args: AskArgs) -> Result<ExitCode, Failure> {
    let prompt = read_prompt(
        &args.prompt,
        &mut std::io::stdin().lock(),
        std::io::stdin().is_terminal(),
    )?;
    let mut sources = global.sources()?;
    if args.think {
        sources.flags.think = Some(true);
    }
    if args.system.is_some() {
        sources.flags.system.clone_from(&args.system);
    }
    let config = LoadedConfig::load(sources)?;
    let conductor = Conductor::from_settings(&config.settings)?;
    let mut chat = conductor.chat();
    if args.no_personality {
        chat.disable_personality();
    }
    let model = chat.model().to_owned();
    let personality = chat.personality().map(|p| p.name().to_string());

    let spinner = (!args.json && std::io::stderr().is_terminal())
        .then(|| spinner(&format!("waiting for {model} (loading it if needed)…")));
    let mut interrupt = std::pin::pin!(tokio::signal::ctrl_c());
    let mut metrics = TokenTiming::start();
    let mut turn = tokio::select! {
        _ = &mut interrupt => {
            if let Some(s) = &spinner { s.finish_and_clear(); }
            return Err(Failure::Interrupted);
        }
        turn = chat.send(&prompt) => match turn {
            Ok(turn) => turn,
            Err(err) => {
                if let Some(s) = &spinner { s.finish_and_clear(); }
                return Err(err.into());
            }
        },
    };

    let mut answer = String::new();
    let mut thinking = String::new();
    let mut completion: Option<Completion> = None;
    let mut failure: Option<Failure> = None;
    let mut warnings: Vec<String> = Vec::new();
    let mut stdout = std::io::stdout().lock();
    let color = output::stderr_color();
    loop {
        let event = tokio::select! {
            _ = &mut interrupt => { failure = Some(Failure::Interrupted); break; }
            event = turn.next() => event,
        };
        let Some(event) = event else { break };
        if let Some(s) = &spinner {
            s.finish_and_clear();
        }
        match event {
            Ok(ChatEvent::Content(text)) => {
                metrics.token();
                answer.push_str(&text);
                if !args.json && !write_out(&mut stdout, &text) {
                    // stdout closed (e.g. piped into `head`): stop quietly, like other tools.
                    return Ok(ExitCode::SUCCESS);
                }
            }
            Ok(ChatEvent::Thinking(text)) => {
                if !args.json {
                    eprint!("{}", paint(color, style::DIM, &text));
                }
                thinking.push_str(&text);
            }
            Ok(ChatEvent::Done(done)) => completion = Some(done),
            Ok(ChatEvent::Warning(diagnosis)) => {
                output::warn(&format!(
                    "{}\n  fix: {}",
                    diagnosis.summary(),
                    diagnosis.fix()
                ));
                warnings.push(diagnosis.summary());
            }
            Ok(ChatEvent::Fixed(fix)) => {
                // A remembered fix is routine: said only when asked (-v); a new one always.
                if !fix.remembered || args.verbose {
                    output::warn(&output::fix_notice(&fix, config.file.as_deref()));
                }
                warnings.push(format!(
                    "{}: {}",
                    if fix.remembered {
                        "remembered fix"
                    } else {
                        "fixed"
                    },
                    fix.changes.join("; ")
                ));
            }
            Ok(_) => {}
            Err(err) => {
                failure = Some(Failure::Core(err));
                break;
            }
        }
    }
    drop(turn);
    let total = metrics.elapsed();
    if !args.json && !answer.is_empty() && !answer.ends_with('\n') {
        let _ = writeln!(stdout);
    }
    let _ = stdout.flush();
    drop(stdout);

    let residency = if completion.is_some() && (args.json || args.verbose) {
        conductor
            .backend()
            .running_models()
            .await
            .ok()
            .and_then(|running| running.into_iter().find(|m| m.is_model(&model)))
    } else {
        None
    };
    if args.json {
        let object = json_report(&JsonReport {
            model: &model,
            personality: personality.as_deref(),
            answer: &answer,
            thinking: &thinking,
            completion: completion.as_ref(),
            metrics: &metrics,
            total,
            residency: residency.as_ref(),
            failure: failure.as_ref(),
            warnings: &warnings,
        });
        println!("{object:#}");
    } else if args.verbose {
        eprintln!(
            "{}",
            paint(
                color,
                style::DIM,
                &stats_line(&metrics, completion.as_ref(), residency.as_ref())
            )
        );
    }
    match failure {
        Some(failure) => Err(failure),
        None if completion.is_none() => Err(Failure::Core(Error::Truncated)),
        None => Ok(ExitCode::SUCCESS),
    }
}

fn write_out(stdout: &mut impl Write, text: &str) -> bool {
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .is_ok()
}

fn spinner(message: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message.to_owned());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// Reads the prompt from the arguments and/or stdin.
///
/// No PROMPT (or `-`): stdin is the prompt. PROMPT and piped stdin: stdin is appended as context.
pub fn read_prompt(
    parts: &[String],
    stdin: &mut impl Read,
    stdin_is_terminal: bool,
) -> Result<String, Failure> {
    let from_stdin_only = parts.is_empty() || parts == ["-"];
    let args = (!from_stdin_only).then(|| parts.join(" "));
    let piped = if from_stdin_only || !stdin_is_terminal {
        if from_stdin_only && stdin_is_terminal {
            return Err(Failure::Usage(
                "nothing to ask: give a PROMPT, or pipe text on stdin".into(),
            ));
        }
        Some(read_stdin(stdin)?)
    } else {
        None
    };
    let prompt = match (args, piped) {
        (Some(args), Some(input)) if !input.trim().is_empty() => format!("{args}\n\n{input}"),
        (Some(args), _) => args,
        (None, Some(input)) => input,
        (None, None) => String::new(),
    };
    if prompt.trim().is_empty() {
        return Err(Failure::Usage(
            "nothing to ask: the prompt is empty (give a PROMPT, or pipe text on stdin)".into(),
        ));
    }
    Ok(prompt)
}

fn read_stdin(stdin: &mut impl Read) -> Result<String, Failure> {
    let mut bytes = Vec::new();
    stdin
        .take(MAX_STDIN + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| Failure::Usage(format!("cannot read stdin: {err}")))?;
    if bytes.len() as u64 > MAX_STDIN {
        return Err(Failure::Usage(format!(
            "stdin is larger than {} MiB, more than any model's context holds; send a smaller \
             part (e.g. `head -c 1M file | conductor ask ...`)",
            MAX_STDIN >> 20
        )));
    }
    String::from_utf8(bytes).map_err(|err| {
        Failure::Usage(format!(
            "stdin is not UTF-8 text (invalid byte at offset {}); conductor sends text to the \
             model — convert it first (e.g. `iconv -f latin1 -t utf-8`)",
            err.utf8_error().valid_up_to()
        ))
    })
}

struct JsonReport<'a> {
    model: &'a str,
    personality: Option<&'a str>,
    answer: &'a str,
    thinking: &'a str,
    completion: Option<&'a Completion>,
    metrics: &'a TokenTiming,
    total: Duration,
    residency: Option<&'a RunningModel>,
    failure: Option<&'a Failure>,
    warnings: &'a [String],
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn json_report(r: &JsonReport<'_>) -> serde_json::Value {
    let stats = r.completion.map(|c| c.stats);
    let mut object = json!({
        "model": r.model,
        "personality": r.personality,
        "answer": r.answer,
        "done_reason": r.completion.and_then(|c| c.done_reason.as_ref()).map(|d| d.as_str()),
        "complete": r.completion.is_some() && r.failure.is_none(),
        "metrics": {
            "ttft_ms": r.metrics.ttft().map(ms),
            "tokens_per_s_server": stats.and_then(|s| s.tokens_per_second()),
            "tokens_per_s_client": r.metrics.tokens_per_second(),
            "eval_count": stats.map(|s| s.eval_count),
            "prompt_eval_count": stats.map(|s| s.prompt_eval_count),
            "prompt_eval_ms": stats.map(|s| ms(s.prompt_eval_duration)),
            "load_ms": stats.map(|s| ms(s.load_duration)),
            "total_ms": ms(r.total),
        },
        "residency": r.residency.map(|m| json!({
            "size": m.size,
            "size_vram": m.size_vram,
            "processor": m.processor().to_string(),
            "context_length": m.context_length,
        })),
    });
    if !r.warnings.is_empty() {
        object["warnings"] = r.warnings.into();
    }
    if !r.thinking.is_empty() {
        object["thinking"] = r.thinking.into();
    }
    if let Some(failure) = r.failure {
        object["error"] = match failure {
            Failure::Core(err) => err.to_string(),
            Failure::Interrupted => "interrupted".to_owned(),
            Failure::Usage(m) | Failure::Other(m) => m.clone(),
        }
        .into();
    }
    object
}

fn stats_line(
    metrics: &TokenTiming,
    completion: Option<&Completion>,
    residency: Option<&RunningModel>,
) -> String {
    let mut parts = Vec::new();
    if let Some(ttft) = metrics.ttft() {
        parts.push(format!("TTFT {} ms", ttft.as_millis()));
    }
    if let Some(rate) = metrics.tokens_per_second() {
        parts.push(format!("{rate:.0} tok/s (client)"));
    }
    if let Some(rate) = completion.and_then(|c| c.stats.tokens_per_second()) {
        parts.push(format!("{rate:.0} tok/s (Ollama)"));
    }
    if let Some(stats) = completion.map(|c| c.stats) {
        parts.push(format!(
            "prompt {} tok in {} ms",
            stats.prompt_eval_count,
            stats.prompt_eval_duration.as_millis()
        ));
    }
    parts.push(residency.map_or_else(
        || "PROCESSOR unknown".to_owned(),
        |m| m.processor().to_string(),
    ));
    parts.join(" · ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(parts: &[&str], stdin: &[u8], terminal: bool) -> Result<String, String> {
        let parts: Vec<String> = parts.iter().map(|s| (*s).to_owned()).collect();
        read_prompt(&parts, &mut &stdin[..], terminal).map_err(|f| match f {
            Failure::Usage(m) => m,
            other => format!("{other:?}"),
        })
    }

    #[test]
    fn prompt_from_args_stdin_or_both() {
        assert_eq!(
            prompt(&["what", "is", "x"], b"", true).unwrap(),
            "what is x"
        );
        assert_eq!(prompt(&[], b"from stdin", false).unwrap(), "from stdin");
        assert_eq!(prompt(&["-"], b"dash", false).unwrap(), "dash");
        assert_eq!(
            prompt(&["review this"], b"diff --git", false).unwrap(),
            "review this\n\ndiff --git"
        );
        assert_eq!(prompt(&["only args"], b"  \n", false).unwrap(), "only args");
    }

    #[test]
    fn bad_stdin_is_refused_with_a_reason() {
        assert!(
            prompt(&[], b"", true)
                .unwrap_err()
                .contains("nothing to ask")
        );
        assert!(prompt(&[], b"   ", false).unwrap_err().contains("empty"));
        assert!(
            prompt(&[], b"ok \xff\xfe", false)
                .unwrap_err()
                .contains("offset 3")
        );
        let big = vec![b'a'; usize::try_from(MAX_STDIN).unwrap() + 1];
        assert!(
            prompt(&[], &big, false)
                .unwrap_err()
                .contains("larger than 16 MiB")
        );
        let eight = vec![b'a'; 8 << 20];
        assert_eq!(prompt(&[], &eight, false).unwrap().len(), 8 << 20);
    }
}
