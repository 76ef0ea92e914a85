//! `conductor ask`: one question, the answer streamed to stdout as tokens arrive.

mod attach;
mod options;

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use conductor_core::text::one_line;
use conductor_core::{
    ChatEvent, Completion, Conductor, DoneReason, Error, LoadedConfig, RunningModel, TokenTiming,
};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use super::conversation::{Asked, Conversation};
use crate::cli::{AskArgs, GlobalArgs};
use crate::exit::{Failure, stop_signal};
use crate::output::{self, for_terminal, paint, style};

/// Most stdin accepted as a prompt (16 MiB): beyond that it cannot fit any model's context.
pub const MAX_STDIN: u64 = 16 << 20;

/// What one ask produced, whatever happened: the JSON report is built from it.
#[derive(Default)]
struct Outcome {
    model: Option<String>,
    personality: Option<String>,
    answer: String,
    thinking: String,
    completion: Option<Completion>,
    metrics: Option<TokenTiming>,
    residency: Option<RunningModel>,
    warnings: Vec<String>,
    /// The conversation, with this run's messages recorded but not yet written: saved once
    /// everything is printed, so that the user never waits for the disk before the answer.
    conversation: Option<Conversation>,
}

/// Runs the command. With `--json` every outcome, failures included, prints one JSON object.
pub async fn run(global: &GlobalArgs, args: AskArgs) -> Result<ExitCode, Failure> {
    let json = args.json;
    let mut outcome = Outcome::default();
    let result = ask(global, args, &mut outcome).await;
    if !json || matches!(result, Err(Failure::Closed)) {
        save(&mut outcome);
        return result;
    }
    let object = json_report(&outcome, result.as_ref().err());
    let printed = output::outln!("{object:#}");
    save(&mut outcome);
    printed?;
    result.map_err(|failure| Failure::Reported(Box::new(failure)))
}

/// Writes what the run recorded in its conversation (after the output: see [`Outcome`]).
fn save(outcome: &mut Outcome) {
    if let Some(conversation) = &mut outcome.conversation {
        conversation.save();
    }
}

async fn ask(
    global: &GlobalArgs,
    args: AskArgs,
    outcome: &mut Outcome,
) -> Result<ExitCode, Failure> {
    // Flags first (no I/O), then files, then stdin.
    let options = options::parse(&args.options)?;
    let attached = attach::read_all(&args.files)?;
    // Files alone are a question: `conductor ask -f notes.txt` needs no PROMPT.
    let prompt = read_prompt(
        &args.prompt,
        &mut std::io::stdin().lock(),
        std::io::stdin().is_terminal(),
        !attached.is_empty(),
    )?;
    let prompt = attach::message(&attached, &prompt);
    if let (Some(flag), Some(option)) = (global.num_ctx, options.num_ctx)
        && flag != option
    {
        return Err(Failure::Usage(format!(
            "--num-ctx {flag} and -o num_ctx={option} disagree: give one"
        )));
    }
    let mut sources = global.sources()?;
    // Over the flags' own options (--num-ctx): the same layer, so the GPU guard sees them all.
    sources.flags.options = options.or(std::mem::take(&mut sources.flags.options));
    if args.think {
        sources.flags.think = Some(true);
    }
    if args.system.is_some() {
        sources.flags.system.clone_from(&args.system);
    }
    let conversation = outcome.conversation.insert(Conversation::open(&args)?);
    conversation.apply(&mut sources);
    let config = LoadedConfig::load(sources)?;
    crate::output::set_backend(config.settings.backend);
    options::warn_unsent(&args.options, config.settings.backend);
    let conductor = Conductor::from_settings(&config.settings)?;
    let mut chat = conductor.chat();
    if args.no_personality {
        chat.disable_personality();
    }
    conversation.restore(&mut chat);
    let sent_prompt = conversation.question(&prompt).into_owned();
    let model = chat.model().to_owned();
    outcome.model = Some(model.clone());
    outcome.personality = chat.personality().map(|p| p.name().to_string());

    let spinner = (!args.json && std::io::stderr().is_terminal()).then(|| {
        spinner(&format!(
            "waiting for {} (loading it if needed)…",
            one_line(&model)
        ))
    });
    let mut interrupt = std::pin::pin!(stop_signal());
    let metrics = outcome.metrics.insert(TokenTiming::start());
    // Who is asked, for a question that gets no answer (the chat is borrowed while it sends).
    let asked = Asked::of(&chat);
    let mut turn = match tokio::select! {
        signal = &mut interrupt => Err(Failure::Interrupted(signal)),
        turn = chat.send(&sent_prompt) => turn.map_err(Failure::from),
    } {
        Ok(turn) => turn,
        Err(failure) => {
            if let Some(s) = &spinner {
                s.finish_and_clear();
            }
            // Stopped before the chat took the question (the model loading, a refusal, an
            // unreachable server): the question is kept, for `ask -c`, marked unanswered.
            conversation.record_unanswered(&asked, &prompt);
            return Err(failure);
        }
    };

    let mut failure: Option<Failure> = None;
    let mut stdout = std::io::stdout().lock();
    // Escape sequences in an answer act on a terminal; in a pipe or file they are data.
    let stdout_terminal = std::io::stdout().is_terminal();
    let stderr_terminal = std::io::stderr().is_terminal();
    let color = output::stderr_color();
    loop {
        let event = tokio::select! {
            signal = &mut interrupt => { failure = Some(Failure::Interrupted(signal)); break; }
            event = turn.next() => event,
        };
        let Some(event) = event else { break };
        if let Some(s) = &spinner {
            s.finish_and_clear();
        }
        match event {
            Ok(ChatEvent::Content(text)) => {
                metrics.token();
                outcome.answer.push_str(&text);
                if !args.json
                    && let Err(err) = write_text(&mut stdout, &for_terminal(&text, stdout_terminal))
                {
                    // A closed pipe ends quietly; a failed write is an error. Either way the
                    // answer so far is in the history and in `outcome`.
                    failure = Some(err);
                    break;
                }
            }
            Ok(ChatEvent::Thinking(text)) => {
                if !args.json {
                    output::write_err(format_args!(
                        "{}",
                        paint(color, style::DIM, &for_terminal(&text, stderr_terminal))
                    ));
                }
                outcome.thinking.push_str(&text);
            }
            Ok(ChatEvent::Done(done)) => outcome.completion = Some(done),
            Ok(ChatEvent::Warning(diagnosis)) => {
                output::warn(&format!(
                    "{}\n  fix: {}",
                    diagnosis.summary(),
                    output::fix_text(&diagnosis)
                ));
                outcome.warnings.push(diagnosis.summary());
            }
            Ok(ChatEvent::Fixed(fix)) => {
                // A remembered fix is routine: said only when asked (-v); a new one always.
                if !fix.remembered || args.verbose {
                    output::warn(&output::fix_notice(&fix, config.file.as_deref()));
                }
                outcome.warnings.push(format!(
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
                // Say how much of the answer arrived (and was kept).
                let err = if outcome.answer.is_empty() || err.partial_answer().is_some() {
                    err
                } else {
                    Error::Incomplete {
                        partial: outcome.answer.clone(),
                        source: Box::new(err),
                    }
                };
                failure = Some(Failure::Core(err));
                break;
            }
        }
    }
    drop(turn);
    conversation.record(&chat);
    if matches!(failure, Some(Failure::Closed | Failure::Output(_))) {
        return Err(failure.unwrap_or(Failure::Closed));
    }
    if !args.json && !outcome.answer.is_empty() && !outcome.answer.ends_with('\n') {
        write_text(&mut stdout, "\n")?;
    }
    // Every byte of the answer is flushed (write_text flushes); the conversation is written
    // after the command's last output (see `run`).
    drop(stdout);

    let cut_by_length = outcome
        .completion
        .as_ref()
        .is_some_and(|c| matches!(c.done_reason, Some(DoneReason::Length)));
    if cut_by_length && failure.is_none() {
        let limit = config.settings.options.num_predict.map_or_else(
            || "the model's num_predict".to_owned(),
            |n| format!("num_predict {n}"),
        );
        let note = format!(
            "the answer was cut at the token limit ({limit}); for longer answers raise num_predict \
             under [options] in conductor.toml, or for one question pass `-o num_predict=N` \
             (-1: no limit)"
        );
        if !args.json {
            output::warn(&note);
        }
        outcome.warnings.push(note);
    }
    if outcome.completion.is_some() && (args.json || args.verbose) {
        outcome.residency = match conductor.backend().model_server() {
            Some(server) => server.running_models().await.ok(),
            None => None,
        }
        .and_then(|running| running.into_iter().find(|m| m.is_model(&model)));
    }
    if !args.json && args.verbose {
        output::errln!(
            "{}",
            paint(
                color,
                style::DIM,
                &stats_line(
                    metrics,
                    outcome.completion.as_ref(),
                    outcome.residency.as_ref()
                )
            )
        );
    }
    match failure {
        Some(failure) => Err(failure),
        None if outcome.completion.is_none() => Err(Failure::Core(if outcome.answer.is_empty() {
            Error::Truncated
        } else {
            Error::Incomplete {
                partial: outcome.answer.clone(),
                source: Box::new(Error::Truncated),
            }
        })),
        None => Ok(ExitCode::SUCCESS),
    }
}

fn write_text(stdout: &mut impl Write, text: &str) -> Result<(), Failure> {
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(output::output_failure)
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
/// `files_attached` makes an empty prompt (no PROMPT and a terminal, or empty stdin) valid: the
/// files are the question. Bad stdin is an error either way.
pub fn read_prompt(
    parts: &[String],
    stdin: &mut impl Read,
    stdin_is_terminal: bool,
    files_attached: bool,
) -> Result<String, Failure> {
    let from_stdin_only = parts.is_empty() || parts == ["-"];
    let args = (!from_stdin_only).then(|| parts.join(" "));
    if files_attached && parts.is_empty() && stdin_is_terminal {
        return Ok(String::new());
    }
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
        if files_attached {
            return Ok(String::new());
        }
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

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// The one JSON object `ask --json` prints, for every outcome.
fn json_report(o: &Outcome, failure: Option<&Failure>) -> serde_json::Value {
    let stats = o.completion.as_ref().map(|c| c.stats);
    let done_reason = o
        .completion
        .as_ref()
        .and_then(|c| c.done_reason.as_ref())
        .map(|d| d.as_str().to_owned());
    let cut_by_length = done_reason.as_deref() == Some("length");
    let mut object = json!({
        "model": o.model,
        "personality": o.personality,
        "answer": o.answer,
        "done_reason": done_reason,
        // Complete: the model finished its answer (not cut by the token limit, an error or a signal).
        "complete": o.completion.is_some() && failure.is_none() && !cut_by_length,
        "cut_by_length": cut_by_length,
        "metrics": {
            "ttft_ms": o.metrics.as_ref().and_then(TokenTiming::ttft).map(ms),
            "tokens_per_s_server": stats.and_then(|s| s.tokens_per_second()),
            "tokens_per_s_client": o.metrics.as_ref().and_then(TokenTiming::tokens_per_second),
            "eval_count": stats.map(|s| s.eval_count),
            "prompt_eval_count": stats.map(|s| s.prompt_eval_count),
            "prompt_eval_ms": stats.map(|s| ms(s.prompt_eval_duration)),
            "load_ms": stats.map(|s| ms(s.load_duration)),
            "total_ms": o.metrics.as_ref().map(|m| ms(m.elapsed())),
        },
        "residency": o.residency.as_ref().map(|m| json!({
            "size": m.size,
            "size_vram": m.size_vram,
            "processor": m.processor().to_string(),
            "context_length": m.context_length,
        })),
        "exit_code": failure.map_or(0, Failure::code),
    });
    if !o.warnings.is_empty() {
        object["warnings"] = o.warnings.clone().into();
    }
    if !o.thinking.is_empty() {
        object["thinking"] = o.thinking.clone().into();
    }
    if let Some(failure) = failure {
        object["error"] = failure.json();
        if let Failure::Core(Error::NotResident(diagnosis)) = failure {
            object["error"]["diagnosis"] = json!({
                "summary": diagnosis.summary(),
                "fix": output::fix_text(diagnosis),
                "notes": diagnosis.notes,
            });
        }
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
        read_prompt(&parts, &mut &stdin[..], terminal, false).map_err(|f| match f {
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
        // With files attached an empty prompt is fine, bad stdin is not.
        let parts: Vec<String> = Vec::new();
        assert_eq!(read_prompt(&parts, &mut &b""[..], true, true).unwrap(), "");
        assert_eq!(
            read_prompt(&parts, &mut &b" \n"[..], false, true).unwrap(),
            ""
        );
        assert!(read_prompt(&parts, &mut &b"\xff"[..], false, true).is_err());
        let eight = vec![b'a'; 8 << 20];
        assert_eq!(prompt(&[], &eight, false).unwrap().len(), 8 << 20);
    }
}
