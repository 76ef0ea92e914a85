//! `conductor bench`: what users see, then what Ollama does.
//!
//! 1. **Processes** ([`processes`]): whole `conductor ask` runs under each GPU policy beside a
//!    minimal client and `ollama run`: first output byte, CPU and peak RSS per run, with the
//!    per-ask residency check included.
//! 2. **In process**: time to first token, tokens/s, load time and the prompt-cache effect of a
//!    byte-stable personality, and the same request sent by a bare HTTP client in the same run.

use std::process::ExitCode;
use std::time::Duration;

use conductor_core::{ChatEvent, Conductor, GenerationStats, Message, RunnerOptions, TokenTiming};
use futures::StreamExt;
use serde_json::json;

mod processes;

use processes::{Client, on_path, report, run_rounds};
pub use processes::{measure_main, raw_chat_main};

use crate::cli::{BenchArgs, BenchPart, GlobalArgs};
use crate::commands::load_config;
use crate::exit::Failure;
use crate::output::outln;
use crate::output::table;

/// One timed answer.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    ttft: Option<Duration>,
    total: Duration,
    client_rate: Option<f64>,
    stats: GenerationStats,
}

impl Sample {
    fn new(timing: &TokenTiming, stats: GenerationStats) -> Self {
        Self {
            ttft: timing.ttft(),
            total: timing.elapsed(),
            client_rate: timing.tokens_per_second(),
            stats,
        }
    }
}

const QUESTIONS: &[&str] = &[
    "Name three uses of a hash map.",
    "What does a compiler do, in two sentences?",
    "Give one tip for writing clear commit messages.",
    "Why do CPUs have caches?",
    "What is a race condition?",
];

/// The question every process is asked.
const PROCESS_QUESTION: &str = "Why is the sky blue?";

/// Runs the command.
pub async fn run(global: &GlobalArgs, args: BenchArgs) -> Result<ExitCode, Failure> {
    if args.runs == 0 {
        return Err(Failure::Usage("--runs must be at least 1".into()));
    }
    let mut json_out = serde_json::Map::new();
    if args.part != BenchPart::InProcess {
        let (text, json) = run_processes(global, &args).await?;
        if args.json {
            json_out.insert("processes".into(), json);
        } else {
            crate::output::print_line(&text)?;
        }
    }
    if args.part != BenchPart::Processes {
        let report = run_in_process(global, &args).await?;
        if args.json {
            json_out.insert("in_process".into(), report);
        }
    }
    if args.json {
        crate::output::print_line(&format!("{:#}", serde_json::Value::Object(json_out)))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Whole processes: a raw client, `conductor ask` under each policy, `ollama run` if installed.
async fn run_processes(
    global: &GlobalArgs,
    args: &BenchArgs,
) -> Result<(String, serde_json::Value), Failure> {
    let config = load_config(global)?;
    let settings = &config.settings;
    let exe = std::env::current_exe()
        .map_err(|err| Failure::other(format!("cannot find this program: {err}")))?;
    let dir = std::env::temp_dir().join(format!("conductor-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|err| Failure::other(format!("cannot create {}: {err}", dir.display())))?;
    let result = async {
        // Every client generates the same answer: fixed length, greedy, seeded.
        let mut options = format!(
            "[options]\nnum_predict = {}\ntemperature = 0.0\nseed = 42\n",
            args.tokens
        );
        if let Some(ctx) = settings.options.num_ctx {
            options.push_str(&format!("num_ctx = {ctx}\n"));
        }
        let config_file = dir.join("bench.toml");
        std::fs::write(&config_file, options)
            .map_err(|err| Failure::other(format!("cannot write the bench config: {err}")))?;
        // The children must authenticate as this process does: the address as configured,
        // password included (never printed).
        let host = settings.host.url_with_credentials();
        let sessions_dir = dir.join("sessions").display().to_string();
        let conductor_args = |policy: &str| -> Vec<String> {
            let mut command = vec![exe.display().to_string()];
            command.extend(
                [
                    "--backend",
                    settings.backend.as_str(),
                    "--host",
                    &host,
                    "-m",
                    &settings.model,
                    "-p",
                    settings.personality.as_str(),
                    "--config",
                    &config_file.display().to_string(),
                    "--gpu-policy",
                    policy,
                    "ask",
                    // Each ask saves its conversation, as a user's does (its cost is measured),
                    // but into the bench's own directory, not the user's store.
                    "--sessions-dir",
                    &sessions_dir,
                    PROCESS_QUESTION,
                ]
                .map(str::to_owned),
            );
            command
        };
        // Load the model as conductor will use it, then send the raw client the same context,
        // so neither makes Ollama reload it for the other.
        let warm = vec![Client {
            label: "warm-up".into(),
            command: conductor_args("enforce"),
        }];
        let exe_for_warm = exe.clone();
        tokio::task::spawn_blocking(move || run_rounds(&exe_for_warm, &warm, 0))
            .await
            .map_err(|err| Failure::other(err.to_string()))??;
        // The raw client sends the context conductor sends (configured, adopted or none).
        let mut warn_settings = settings.clone();
        warn_settings.gpu_policy = conductor_core::GpuPolicy::Warn;
        let conductor = Conductor::from_settings(&warn_settings)?;
        let sent_ctx = match conductor.guard() {
            Some(guard) => guard
                .admit(&settings.model, &settings.options, settings.keep_alive)
                .await
                .ok()
                .and_then(|a| a.options.num_ctx),
            None => settings.options.num_ctx,
        };
        let openai = settings.backend == conductor_core::BackendKind::OpenAi;
        let body = if openai {
            // The OpenAI protocol: the same fixed length, greedy and seeded.
            json!({
                "model": settings.model,
                "messages": [
                    {"role": "system", "content": conductor.chat().system_prompt()},
                    {"role": "user", "content": PROCESS_QUESTION},
                ],
                "max_tokens": args.tokens,
                "temperature": 0.0,
                "seed": 42,
                "stream": true,
            })
        } else {
            let mut raw_options =
                json!({"num_predict": args.tokens, "temperature": 0.0, "seed": 42});
            if let Some(ctx) = sent_ctx {
                raw_options["num_ctx"] = ctx.into();
            }
            json!({
                "model": settings.model,
                "messages": [
                    {"role": "system", "content": conductor.chat().system_prompt()},
                    {"role": "user", "content": PROCESS_QUESTION},
                ],
                "options": raw_options,
                "stream": true,
            })
        };
        let (path, protocol) = if openai {
            ("/chat/completions", "openai")
        } else {
            ("/api/chat", "ollama")
        };
        let body_file = dir.join("raw-body.json");
        std::fs::write(&body_file, body.to_string())
            .map_err(|err| Failure::other(format!("cannot write the raw request: {err}")))?;
        let clients = vec![
            Client {
                label: format!("minimal client (reqwest, one POST {path})"),
                command: vec![
                    exe.display().to_string(),
                    "__raw-chat".into(),
                    "--protocol".into(),
                    protocol.into(),
                    settings.host.join(path),
                    body_file.display().to_string(),
                ],
            },
            Client {
                label: "conductor ask --gpu-policy off".into(),
                command: conductor_args("off"),
            },
            Client {
                label: "conductor ask (default: enforce)".into(),
                command: conductor_args("enforce"),
            },
            Client {
                label: "conductor ask --gpu-policy warn".into(),
                command: conductor_args("warn"),
            },
            Client {
                label: "conductor ask --gpu-policy fix".into(),
                command: conductor_args("fix"),
            },
        ];
        // `ollama run` sends another prompt (no personality): interleaved, it would evict the
        // prompt cache the others share, and whoever follows it would pay for that. It runs in
        // rounds of its own, after the others.
        let mut separate = Vec::new();
        if let Some(ollama) = on_path("ollama").filter(|_| !openai) {
            separate.push(Client {
                label: "ollama run".into(),
                command: vec![
                    "env".into(),
                    format!("OLLAMA_HOST={host}"),
                    ollama.display().to_string(),
                    "run".into(),
                    settings.model.clone(),
                    PROCESS_QUESTION.into(),
                ],
            });
        }
        let rounds = args.runs;
        let exe_for_rounds = exe.clone();
        let figures = tokio::task::spawn_blocking(move || {
            let mut figures = run_rounds(&exe_for_rounds, &clients, rounds)?;
            if !separate.is_empty() {
                figures.extend(run_rounds(&exe_for_rounds, &separate, rounds)?);
            }
            Ok::<_, Failure>(figures)
        })
        .await
        .map_err(|err| Failure::other(err.to_string()))??;
        let (table, json) = report(&figures);
        let text = format!(
            "whole processes · {} · {} interleaved rounds (after one warm-up) · medians\n{table}",
            settings.model, args.runs
        );
        Ok::<_, Failure>((text, json))
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// The same conversation in one process: TTFT, tokens/s, load and the prompt cache.
async fn run_in_process(
    global: &GlobalArgs,
    args: &BenchArgs,
) -> Result<serde_json::Value, Failure> {
    let config = load_config(global)?;
    let mut settings = config.settings.clone();
    settings.options = RunnerOptions {
        num_predict: Some(args.tokens),
        temperature: Some(0.0),
        seed: Some(42),
        ..RunnerOptions::default()
    }
    .or(settings.options);
    let conductor = Conductor::from_settings(&settings)?;
    let model = settings.model.clone();
    let residency = match conductor.guard() {
        Some(guard) => {
            guard
                .check(&model, &settings.options, settings.keep_alive)
                .await?
        }
        None => return Err(Failure::other("no residency guard")),
    };
    let processor = residency
        .running
        .as_ref()
        .map_or_else(|| "not loaded".to_owned(), |r| r.processor().to_string());

    let http = reqwest::Client::new();
    let url = settings.host.join("/api/chat");
    let (mut turn1, mut turn2, mut raw) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..args.runs {
        let question = QUESTIONS[usize::try_from(i).unwrap_or(0) % QUESTIONS.len()];
        let mut chat = conductor.chat();
        turn1.push(timed(&mut chat, question).await?);
        turn2.push(timed(&mut chat, "Say that again in fewer words.").await?);
        // The same first request, bare: serde_json + reqwest, no conductor in between.
        let messages = vec![
            Message::system(conductor.chat().system_prompt()),
            Message::user(question),
        ];
        raw.push(raw_request(&http, &url, &model, &messages, &settings.options).await?);
    }
    let report = Report {
        model: &model,
        personality: settings.personality.as_str(),
        processor: &processor,
        runs: args.runs,
        tokens: args.tokens,
        turn1: &turn1,
        turn2: &turn2,
        raw: &raw,
    };
    if !args.json {
        report.print()?;
    }
    Ok(report.json())
}

async fn timed(chat: &mut conductor_core::Chat, text: &str) -> Result<Sample, Failure> {
    let mut timing = TokenTiming::start();
    let mut turn = chat.send(text).await?;
    let mut stats = GenerationStats::default();
    while let Some(event) = turn.next().await {
        match event? {
            ChatEvent::Content(_) => timing.token(),
            ChatEvent::Done(done) => stats = done.stats,
            _ => {}
        }
    }
    Ok(Sample::new(&timing, stats))
}

async fn raw_request(
    http: &reqwest::Client,
    url: &str,
    model: &str,
    messages: &[Message],
    options: &RunnerOptions,
) -> Result<Sample, Failure> {
    let body = json!({
        "model": model,
        "messages": messages.iter().map(|m| json!({"role": m.role, "content": m.content})).collect::<Vec<_>>(),
        "options": options,
        "stream": true,
    });
    let mut timing = TokenTiming::start();
    let response = http
        .post(url)
        .json(&body)
        .send()
        .await
        .map_err(|err| Failure::other(format!("raw request failed: {err}")))?;
    let mut bytes = response.bytes_stream();
    let mut buffer = Vec::new();
    let mut stats = GenerationStats::default();
    while let Some(chunk) = bytes.next().await {
        let chunk = chunk.map_err(|err| Failure::other(format!("raw stream failed: {err}")))?;
        buffer.extend_from_slice(&chunk);
        while let Some(pos) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=pos).collect();
            let Ok(value) = serde_json::from_slice::<serde_json::Value>(&line) else {
                continue;
            };
            if value["message"]["content"]
                .as_str()
                .is_some_and(|c| !c.is_empty())
            {
                timing.token();
            }
            if value["done"].as_bool() == Some(true) {
                let ns = |k: &str| Duration::from_nanos(value[k].as_u64().unwrap_or(0));
                stats = GenerationStats {
                    total_duration: ns("total_duration"),
                    load_duration: ns("load_duration"),
                    prompt_eval_count: value["prompt_eval_count"].as_u64().unwrap_or(0),
                    prompt_eval_duration: ns("prompt_eval_duration"),
                    eval_count: value["eval_count"].as_u64().unwrap_or(0),
                    eval_duration: ns("eval_duration"),
                };
            }
        }
    }
    Ok(Sample::new(&timing, stats))
}

/// min, median, max of the values present.
fn spread(values: impl Iterator<Item = Option<f64>>) -> Option<(f64, f64, f64)> {
    let mut v: Vec<f64> = values.flatten().collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some((v[0], v[v.len() / 2], v[v.len() - 1]))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

struct Report<'a> {
    model: &'a str,
    personality: &'a str,
    processor: &'a str,
    runs: u32,
    tokens: i32,
    turn1: &'a [Sample],
    turn2: &'a [Sample],
    raw: &'a [Sample],
}

type Metric = (&'static str, fn(&Sample) -> Option<f64>);

const METRICS: &[Metric] = &[
    ("ttft_ms", |s| s.ttft.map(ms)),
    ("total_ms", |s| Some(ms(s.total))),
    ("tokens_per_s_client", |s| s.client_rate),
    ("tokens_per_s_server", |s| s.stats.tokens_per_second()),
    ("load_ms", |s| Some(ms(s.stats.load_duration))),
    ("prompt_eval_ms", |s| Some(ms(s.stats.prompt_eval_duration))),
    ("prompt_tokens", |s| {
        #[allow(clippy::cast_precision_loss)]
        Some(s.stats.prompt_eval_count as f64)
    }),
];

impl Report<'_> {
    fn series(&self, name: &str, samples: &[Sample]) -> Option<(f64, f64, f64)> {
        let (_, get) = METRICS.iter().find(|(n, _)| *n == name)?;
        spread(samples.iter().map(get))
    }

    fn ratio(&self, name: &str) -> Option<f64> {
        let (_, conductor, _) = self.series(name, self.turn1)?;
        let (_, raw, _) = self.series(name, self.raw)?;
        (raw > 0.0).then(|| conductor / raw)
    }

    fn json(&self) -> serde_json::Value {
        let group = |samples: &[Sample]| {
            let mut object = serde_json::Map::new();
            for (name, _) in METRICS {
                if let Some((min, median, max)) = self.series(name, samples) {
                    object.insert(
                        (*name).to_owned(),
                        json!({"min": min, "median": median, "max": max}),
                    );
                }
            }
            serde_json::Value::Object(object)
        };
        json!({
            "model": self.model,
            "personality": self.personality,
            "processor": self.processor,
            "runs": self.runs,
            "tokens": self.tokens,
            "conductor_turn1": group(self.turn1),
            "conductor_turn2": group(self.turn2),
            "raw_http_turn1": group(self.raw),
            "first_request_prompt_eval_ms": self.turn1.first().map(|s| ms(s.stats.prompt_eval_duration)),
            "overhead_ratio": { "ttft": self.ratio("ttft_ms"), "total": self.ratio("total_ms") },
        })
    }

    fn print(&self) -> Result<(), Failure> {
        outln!(
            "{} · personality {} · {} · {} runs of {} tokens",
            self.model,
            self.personality,
            self.processor,
            self.runs,
            self.tokens
        )?;
        let fmt = |v: Option<(f64, f64, f64)>| {
            v.map_or_else(
                || vec!["-".into(), "-".into(), "-".into()],
                |(a, b, c)| vec![format!("{a:.1}"), format!("{b:.1}"), format!("{c:.1}")],
            )
        };
        let mut rows = Vec::new();
        for (label, name, samples) in [
            ("time to first token, ms", "ttft_ms", self.turn1),
            ("  same request, raw HTTP", "ttft_ms", self.raw),
            ("tokens/s as received", "tokens_per_s_client", self.turn1),
            ("tokens/s by Ollama", "tokens_per_s_server", self.turn1),
            ("load, ms", "load_ms", self.turn1),
            ("prompt eval turn 1, ms", "prompt_eval_ms", self.turn1),
            ("prompt eval turn 2, ms", "prompt_eval_ms", self.turn2),
            ("prompt tokens turn 2", "prompt_tokens", self.turn2),
            ("total, ms", "total_ms", self.turn1),
            ("  same request, raw HTTP", "total_ms", self.raw),
        ] {
            let mut row = vec![label.to_owned()];
            row.extend(fmt(self.series(name, samples)));
            rows.push(row);
        }
        outln!("{}", table(&["", "MIN", "MEDIAN", "MAX"], &rows))?;
        if let Some(first) = self.turn1.first() {
            outln!(
                "first request (personality not yet cached): {} prompt tokens in {:.1} ms",
                first.stats.prompt_eval_count,
                ms(first.stats.prompt_eval_duration)
            )?;
        }
        outln!(
            "conductor / raw HTTP (median): TTFT {} · total {}",
            self.ratio("ttft_ms")
                .map_or_else(|| "-".into(), |r| format!("{r:.3}×")),
            self.ratio("total_ms")
                .map_or_else(|| "-".into(), |r| format!("{r:.3}×"))
        )?;
        Ok(())
    }
}
