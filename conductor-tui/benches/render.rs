//! Render time per frame and memory for a 2,000-message conversation, with baselines measured
//! in the same run so the figures read as ratios:
//!
//! - an empty chat (the fixed cost of a frame: input box, status bar, diffing the buffer);
//! - the same conversation drawn the naive way, one wrapped `Paragraph` of every line,
//!   scrolled to the end (what the per-message cache avoids);
//! - a streaming code block drawn plain (the monochrome theme) beside the same highlighted.
//!
//! It also times the first highlighted code block (loading the syntaxes and the theme).
//!
//! `-- streaming` runs only the streaming rows: a code block (plain and highlighted) and a
//! 200 KB answer that goes on a token per frame. A second
//! table (`cargo bench -p conductor-tui --bench render -- search` prints only it)
//! times Ctrl+R over 50 earlier messages of 1 MiB each (`ask -f` with large files): a key that
//! changes the query, and a frame with the search open.
//!
//! `cargo bench -p conductor-tui --bench render` prints a table; frames are drawn through
//! `Terminal::draw` on a 120×40 `TestBackend`, so buffer diffing is included.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use conductor_core::GpuPolicy;
use conductor_tui::app::{App, AppInfo};
use conductor_tui::event::Event;
use conductor_tui::markdown::render_markdown;
use conductor_tui::theme::{self, ThemeKind};
use conductor_tui::worker::WorkerEvent;
use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Style;
use ratatui::text::{Line, Text};
use ratatui::widgets::{Paragraph, Wrap};

const MESSAGES: usize = 2_000;
const WIDTH: u16 = 120;
const HEIGHT: u16 = 40;
const FRAMES: usize = 300;

fn info() -> AppInfo {
    AppInfo {
        host: "http://127.0.0.1:11434".into(),
        model: "llama3.2:3b".into(),
        personality: "yollayah".into(),
        policy: GpuPolicy::Enforce,
        backend: conductor_core::BackendKind::Ollama,
    }
}

/// An answer of a few hundred characters with the markdown answers use.
fn answer_text(i: usize) -> String {
    let mut text = format!(
        "## Answer {i}\n\nHere is **the point** of answer {i}, with `inline code` and a sentence long enough to wrap at least once on a normal terminal width, as real answers do.\n\n"
    );
    match i % 3 {
        0 => text.push_str("- first item\n- second item with *emphasis*\n- third item\n"),
        1 => text.push_str(
            "```rust\nfn main() {\n    let v: Vec<u32> = (0..10).collect();\n    println!(\"{v:?}\");\n}\n```\n",
        ),
        _ => text.push_str("1. one\n2. two\n\n> a quoted remark to finish\n"),
    }
    text
}

fn conversation() -> App {
    let mut app = App::new(info());
    for i in 0..MESSAGES / 2 {
        for c in format!("Question number {i}: how does this work?").chars() {
            app.update(Event::Terminal(TermEvent::Key(KeyEvent::new(
                KeyCode::Char(c),
                KeyModifiers::NONE,
            ))));
        }
        app.update(Event::Terminal(TermEvent::Key(KeyEvent::new(
            KeyCode::Enter,
            KeyModifiers::NONE,
        ))));
        app.update(Event::Worker(WorkerEvent::Accepted));
        app.update(Event::Worker(WorkerEvent::Content(answer_text(i))));
        app.update(Event::Worker(WorkerEvent::Stopped));
        app.take_actions();
    }
    app
}

fn terminal(width: u16) -> Terminal<TestBackend> {
    Terminal::new(TestBackend::new(width, HEIGHT)).unwrap()
}

fn draw(terminal: &mut Terminal<TestBackend>, app: &App) {
    terminal
        .draw(|frame| conductor_tui::ui::draw(frame, app))
        .unwrap();
}

struct Timing {
    mean: Duration,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

fn time(frames: usize, mut frame: impl FnMut(usize)) -> Timing {
    // Warm up.
    for i in 0..frames.min(20) {
        frame(i);
    }
    let mut samples: Vec<Duration> = (0..frames)
        .map(|i| {
            let started = Instant::now();
            frame(i);
            started.elapsed()
        })
        .collect();
    samples.sort();
    let total: Duration = samples.iter().sum();
    Timing {
        mean: total / u32::try_from(frames).unwrap(),
        p50: samples[frames / 2],
        p99: samples[(frames * 99 / 100).min(frames - 1)],
        max: samples[frames - 1],
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// (VmRSS, VmHWM) in KiB, from /proc (Linux only).
fn rss() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse::<u64>()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

fn mib(kib: u64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let m = kib as f64 / 1024.0;
    m
}

/// The first highlighted block loads the syntaxes and the theme; later ones only highlight.
fn first_highlighted_block() -> (Duration, Duration) {
    let started = Instant::now();
    black_box(render_markdown(
        "```rust\nfn main() { let x = 1; }\n```",
        80,
        Style::new(),
    ));
    let cold = started.elapsed();
    let started = Instant::now();
    black_box(render_markdown(
        "```rust\nfn other() -> u32 { 2 }\n```",
        80,
        Style::new(),
    ));
    (cold, started.elapsed())
}

/// Streaming a code block: the answer is one growing fenced block (~150 lines of Rust),
/// highlighted (the dark theme) and, in the same run, plain (no colours: what every theme drew
/// before highlighting).
fn code_block_rows(app: &mut App, t: &mut Terminal<TestBackend>) -> Vec<(String, Timing)> {
    let mut rows = Vec::new();
    for (kind, label) in [
        (ThemeKind::Mono, "streaming a code block, plain"),
        (ThemeKind::Dark, "streaming a code block, highlighted"),
    ] {
        theme::set_active(kind);
        let question = format!("code please ({label})");
        for c in question.chars() {
            app.update(Event::Terminal(TermEvent::Key(KeyEvent::new(
                KeyCode::Char(c),
                KeyModifiers::NONE,
            ))));
        }
        app.update(Event::Terminal(TermEvent::Key(KeyEvent::new(
            KeyCode::Enter,
            KeyModifiers::NONE,
        ))));
        app.update(Event::Worker(WorkerEvent::Accepted));
        app.update(Event::Worker(WorkerEvent::Content(
            "Here:\n\n```rust\n".into(),
        )));
        let code_tokens = [
            "pub fn ",
            "step",
            "(x: u32, name: &str) ",
            "-> String ",
            "{ format!(\"{name}: {}\", x + 1) } ",
            "// next\n",
        ];
        rows.push((
            format!("2,000 messages: {label}"),
            time(FRAMES * 3, |i| {
                app.update(Event::Worker(WorkerEvent::Content(
                    code_tokens[i % code_tokens.len()].into(),
                )));
                draw(t, app);
            }),
        ));
        app.update(Event::Worker(WorkerEvent::Stopped));
    }
    rows
}

/// A long answer streaming: some 200 KB of prose and small code blocks already in, a token
/// of prose per frame (what the tail-only rendering of the streaming answer keeps cheap).
fn long_answer_row(app: &mut App, t: &mut Terminal<TestBackend>) -> (String, Timing) {
    theme::set_active(ThemeKind::Dark);
    for c in "a long answer please".chars() {
        app.update(key(KeyCode::Char(c), KeyModifiers::NONE));
    }
    app.update(key(KeyCode::Enter, KeyModifiers::NONE));
    app.update(Event::Worker(WorkerEvent::Accepted));
    let section = "Some prose about the step, long enough to wrap over the width of the \
                   terminal at least once or twice, with `inline code` in it.\n\n\
                   ```rust\nfn step(x: u32) -> u32 {\n    x + 1\n}\n```\n\n";
    let mut answer = String::new();
    while answer.len() < 200 * 1024 {
        answer.push_str(section);
    }
    app.update(Event::Worker(WorkerEvent::Content(answer)));
    draw(t, app);
    let tokens = [
        "The ", "answer ", "goes ", "on, ", "word ", "by ", "word.\n",
    ];
    let timing = time(FRAMES, |i| {
        app.update(Event::Worker(WorkerEvent::Content(
            tokens[i % tokens.len()].into(),
        )));
        draw(t, app);
    });
    app.update(Event::Worker(WorkerEvent::Stopped));
    ("2,000 messages: streaming a 200 KB answer".into(), timing)
}

fn key(code: KeyCode, modifiers: KeyModifiers) -> Event {
    Event::Terminal(TermEvent::Key(KeyEvent::new(code, modifiers)))
}

/// Ctrl+R over 50 earlier messages of 1 MiB each, the searched words at their start.
fn search_rows() -> Vec<(String, Timing)> {
    let mut app = App::new(info());
    let inputs: Vec<String> = (0..50)
        .map(|i| format!("needle {i} {}", "Haystack line\n".repeat(75_000)))
        .collect();
    app.update(Event::PastInputs(inputs));
    app.update(key(KeyCode::Char('r'), KeyModifiers::CONTROL));
    for c in "needle 4".chars() {
        app.update(key(KeyCode::Char(c), KeyModifiers::NONE));
    }
    let mut t = terminal(WIDTH);
    let mut rows = Vec::new();
    rows.push((
        "Ctrl+R, 50 x 1 MiB inputs: a key (query changes)".into(),
        time(40, |i| {
            let code = if i % 2 == 0 {
                KeyCode::Char('2')
            } else {
                KeyCode::Backspace
            };
            app.update(key(code, KeyModifiers::NONE));
        }),
    ));
    rows.push((
        "Ctrl+R, 50 x 1 MiB inputs: a frame".into(),
        time(40, |_| draw(&mut t, &app)),
    ));
    rows
}

fn print_rows(rows: &[(String, Timing)]) {
    println!(
        "{:<52} {:>9} {:>9} {:>9} {:>9}",
        "", "mean ms", "p50 ms", "p99 ms", "max ms"
    );
    for (name, t) in rows {
        println!(
            "{name:<52} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
            ms(t.mean),
            ms(t.p50),
            ms(t.p99),
            ms(t.max),
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a word is a filter.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    if filter.as_deref() == Some("search") {
        print_rows(&search_rows());
        return;
    }
    if filter.as_deref() == Some("streaming") {
        let mut app = conversation();
        let mut t = terminal(WIDTH);
        draw(&mut t, &app);
        let mut rows = code_block_rows(&mut app, &mut t);
        rows.push(long_answer_row(&mut app, &mut t));
        print_rows(&rows);
        println!(
            "highlighted / plain: {:.2}x",
            ms(rows[1].1.mean) / ms(rows[0].1.mean)
        );
        return;
    }
    let rss_start = rss();
    let (first_block, second_block) = first_highlighted_block();
    let rss_highlighting = rss();
    println!(
        "conductor-tui render bench: {MESSAGES} messages, {WIDTH}x{HEIGHT}, {FRAMES} frames per row\n"
    );
    let mut rows: Vec<(String, Timing)> = Vec::new();

    // Baseline 1: an empty chat.
    let empty = App::new(info());
    let mut t = terminal(WIDTH);
    rows.push((
        "baseline: empty chat".into(),
        time(FRAMES, |_| draw(&mut t, &empty)),
    ));

    // The conversation.
    let build_started = Instant::now();
    let mut app = conversation();
    let build = build_started.elapsed();
    let rss_built = rss();

    let mut t = terminal(WIDTH);
    let started = Instant::now();
    draw(&mut t, &app);
    let cold = started.elapsed();
    let rss_rendered = rss();

    rows.push((
        "2,000 messages: steady frame (at the end)".into(),
        time(FRAMES, |_| draw(&mut t, &app)),
    ));

    app.scroll_up(app.view.get().max_top() / 2);
    rows.push((
        "2,000 messages: scrolled to the middle".into(),
        time(FRAMES, |_| draw(&mut t, &app)),
    ));
    app.scroll = None;

    // Streaming: a token arrives before every frame (the last answer grows to ~6 KB).
    app.update(Event::Terminal(TermEvent::Key(KeyEvent::new(
        KeyCode::Char('q'),
        KeyModifiers::NONE,
    ))));
    app.update(Event::Terminal(TermEvent::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    ))));
    app.update(Event::Worker(WorkerEvent::Accepted));
    let tokens = [
        "Streaming ",
        "tokens ",
        "**arrive** ",
        "`fast`, ",
        "and ",
        "wrap.\n",
    ];
    rows.push((
        "2,000 messages: streaming, 1 token per frame".into(),
        time(FRAMES * 3, |i| {
            app.update(Event::Worker(WorkerEvent::Content(
                tokens[i % tokens.len()].into(),
            )));
            draw(&mut t, &app);
        }),
    ));
    // A burst: many tokens between two frames (hundreds of tokens per second).
    rows.push((
        "2,000 messages: streaming, 10 tokens per frame".into(),
        time(FRAMES, |i| {
            for k in 0..10 {
                app.update(Event::Worker(WorkerEvent::Content(
                    tokens[(i + k) % tokens.len()].into(),
                )));
            }
            draw(&mut t, &app);
        }),
    ));
    app.update(Event::Worker(WorkerEvent::Stopped));

    rows.extend(code_block_rows(&mut app, &mut t));
    theme::set_active(ThemeKind::Dark);

    // Resize every frame: every message is wrapped again.
    let mut narrow = terminal(WIDTH - 20);
    rows.push((
        "2,000 messages: resize (re-wrap all) per frame".into(),
        time(20, |i| {
            if i % 2 == 0 {
                draw(&mut narrow, &app);
            } else {
                draw(&mut t, &app);
            }
        }),
    ));

    // Baseline 2: the naive way, a wrapped Paragraph of the whole conversation every frame.
    let mut lines: Vec<Line<'static>> = Vec::new();
    for entry in &app.entries {
        if let Some(m) = entry.message() {
            lines.push(Line::from(m.role.to_string()));
            lines.extend(m.content.lines().map(|l| Line::from(l.to_owned())));
            lines.push(Line::default());
        }
    }
    let text = Text::from(lines);
    let line_count = u16::try_from(text.lines.len()).unwrap_or(u16::MAX);
    let mut naive = terminal(WIDTH);
    rows.push((
        "baseline: naive wrapped Paragraph of it all".into(),
        time(20, |_| {
            naive
                .draw(|frame| {
                    let p = Paragraph::new(black_box(text.clone()))
                        .wrap(Wrap { trim: false })
                        .scroll((line_count.saturating_sub(HEIGHT), 0));
                    frame.render_widget(p, frame.area());
                })
                .unwrap();
        }),
    ));

    let empty_mean = ms(rows[0].1.mean);
    println!(
        "{:<48} {:>9} {:>9} {:>9} {:>9} {:>8}",
        "frame", "mean ms", "p50 ms", "p99 ms", "max ms", "x empty"
    );
    for (name, t) in &rows {
        println!(
            "{name:<48} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>8.1}",
            ms(t.mean),
            ms(t.p50),
            ms(t.p99),
            ms(t.max),
            ms(t.mean) / empty_mean
        );
    }
    println!(
        "{:<48} {:>9.3}   (once: wraps every message)",
        "2,000 messages: first frame, cold cache",
        ms(cold)
    );
    println!(
        "{:<48} {:>9.3}",
        "building the 2,000-message app state",
        ms(build)
    );
    println!(
        "{:<48} {:>9.3}   (once: loads the syntaxes and the theme)",
        "first highlighted code block",
        ms(first_block)
    );
    println!(
        "{:<48} {:>9.3}",
        "second highlighted code block",
        ms(second_block)
    );
    let row = |name: &str| {
        rows.iter()
            .find(|(n, _)| n.ends_with(name))
            .map_or(f64::NAN, |(_, t)| ms(t.mean))
    };
    println!(
        "highlighted / plain, streaming a code block: {:.2}x",
        row("highlighted") / row("plain")
    );
    if let (Some(start), Some(loaded)) = (rss_start, rss_highlighting) {
        println!(
            "RSS for the syntaxes and theme: +{:.1} MiB",
            mib(loaded.0.saturating_sub(start.0))
        );
    }
    let steady = ms(rows[1].1.mean);
    println!(
        "\ntarget: <= 4 ms per frame with 2,000 messages: steady {steady:.3} ms, streaming p99 {:.3} ms -> {}",
        ms(rows[3].1.p99),
        if steady <= 4.0 && ms(rows[3].1.p99) <= 4.0 {
            "met"
        } else {
            "NOT met"
        }
    );
    match (rss_start, rss_built, rss_rendered, rss()) {
        (Some(start), Some(built), Some(rendered), Some(end)) => {
            println!(
                "\nRSS: start {:.1} MiB; with 2,000 messages {:.1} MiB (+{:.1}); after the first frame (all lines cached) {:.1} MiB (+{:.1}); end {:.1} MiB, peak {:.1} MiB",
                mib(start.0),
                mib(built.0),
                mib(built.0.saturating_sub(start.0)),
                mib(rendered.0),
                mib(rendered.0.saturating_sub(built.0)),
                mib(end.0),
                mib(end.1)
            );
        }
        _ => println!("\nRSS: not available on this platform (/proc/self/status)"),
    }
    println!();
    print_rows(&search_rows());
}
