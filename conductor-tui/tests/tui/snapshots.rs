//! Snapshots of the screen in its key states, rendered on ratatui's `TestBackend`; the GPU
//! badge with its styles (colours are part of the contract: green, amber, red).

use std::sync::Arc;
use std::time::Duration;

use conductor_core::{Error, GpuPolicy};
use conductor_tui::app::{App, Badge};
use conductor_tui::event::Event;
use conductor_tui::residency::{ResidencyState, ResidencyUpdate};
use conductor_tui::worker::WorkerEvent;
use crossterm::event::KeyCode;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};
use ratatui::widgets::Widget;

use crate::common::*;

const ANSWER: &str = "## Ownership in short

Every value has **one owner**; when the owner goes out of scope, the value is *dropped*.

1. Assignment *moves* a `String`.
2. `Copy` types such as `i32` are copied.
- Borrowing with `&` lends without moving.

```rust
fn main() {
    let s = String::from(\"hi\");
    let t = s; // moved
    println!(\"{t}\");
}
```

That is all there is to it.";

fn loaded(app: &mut App, size: u64, vram: u64) {
    app.update(Event::Residency(ResidencyUpdate {
        model: "llama3.2:3b".into(),
        state: ResidencyState::Loaded(running("llama3.2:3b", size, vram)),
    }));
}

#[test]
fn empty_chat() {
    let mut app = app();
    loaded(&mut app, 100, 100);
    insta::assert_snapshot!(screen(&render(&app, 80, 20)));
}

#[test]
fn streaming() {
    let mut app = app();
    loaded(&mut app, 100, 100);
    submit(&mut app, "Show me a loop in Rust");
    app.update(worker(WorkerEvent::Accepted));
    for chunk in [
        "Here is ",
        "one:\n\n```rust\nfor i in 0..3 {\n",
        "    println!(\"{i}\");",
    ] {
        app.update(worker(WorkerEvent::Content(chunk.into())));
    }
    let screen = screen(&render(&app, 80, 20));
    assert!(screen.contains("answering"), "{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn finished_answer_with_code_block() {
    let mut app = app();
    loaded(&mut app, 100, 100);
    answer(&mut app, "Explain ownership", &[ANSWER]);
    let terminal = render(&app, 80, 32);
    let screen = screen(&terminal);
    assert!(
        screen.contains("50.0 tok/s") && screen.contains("TTFT 180 ms"),
        "{screen}"
    );
    insta::assert_snapshot!(screen);
    // Markdown styles: the heading is bold, the code is highlighted.
    let buffer = terminal.backend().buffer();
    let (x, y) = find(buffer, "Ownership in short");
    assert!(buffer[(x, y)].modifier.contains(Modifier::BOLD));
    let (x, y) = find(buffer, "let t = s;");
    assert!(
        matches!(buffer[(x, y)].fg, Color::Rgb(..)),
        "{:?}",
        buffer[(x, y)]
    );
    let (x, y) = find(buffer, "one owner");
    assert!(buffer[(x, y)].modifier.contains(Modifier::BOLD));
}

#[test]
fn stopped_answer() {
    let mut app = app();
    submit(&mut app, "Count to ten");
    app.update(worker(WorkerEvent::Accepted));
    app.update(worker(WorkerEvent::Content("one two three".into())));
    app.update(key(KeyCode::Esc));
    app.update(worker(WorkerEvent::Stopped));
    insta::assert_snapshot!(screen(&render(&app, 60, 12)));
}

#[test]
fn long_lines_wrap_and_follow_resizes() {
    let mut app = app();
    answer(
        &mut app,
        "a question",
        &[
            "A long line that has to wrap at the edge of a narrow terminal, word by word, \
           and a_very_long_identifier_that_cannot_fit_on_one_line_at_all_so_it_breaks.",
        ],
    );
    let wide = screen(&render(&app, 80, 14));
    let narrow = screen(&render(&app, 36, 14));
    assert_ne!(wide, narrow);
    assert!(
        narrow
            .lines()
            .all(|l| unicode_width::UnicodeWidthStr::width(l) <= 36)
    );
    insta::assert_snapshot!(narrow);
}

/// The status bar row with its styles, and the badge cell's colour.
fn badge(app: &App, label: &str, colour: Color) -> String {
    let area = Rect::new(0, 0, 80, 5);
    let mut buffer = Buffer::empty(area);
    app.render(area, &mut buffer);
    let (x, y) = find(&buffer, label);
    assert_eq!(y, 4, "the badge is on the status bar");
    assert_eq!(buffer[(x, y)].fg, colour, "badge colour of {label}");
    assert!(buffer[(x, y)].modifier.contains(Modifier::BOLD));
    let mut row = Buffer::empty(Rect::new(0, 0, 80, 1));
    for x in 0..80 {
        row[(x, 0)] = buffer[(x, 4)].clone();
    }
    format!("{row:?}")
}

#[test]
fn gpu_badge_green() {
    let mut app = app();
    loaded(&mut app, 4_152_782_848, 4_152_782_848);
    insta::assert_snapshot!(badge(&app, "100% GPU", Color::Green));
}

#[test]
fn gpu_badge_amber_when_split() {
    let mut app = app();
    loaded(&mut app, 100, 52);
    insta::assert_snapshot!(badge(&app, "48%/52% CPU/GPU", Color::Yellow));
}

#[test]
fn gpu_badge_red_on_the_cpu() {
    let mut app = app();
    loaded(&mut app, 18_446_446_592, 0);
    insta::assert_snapshot!(badge(&app, "100% CPU", Color::Red));
}

#[test]
fn enforce_diagnosis() {
    let mut app = app();
    submit(&mut app, "Hello?");
    app.update(worker(WorkerEvent::Rejected(Error::NotResident(Box::new(
        context_diagnosis(),
    )))));
    let terminal = render(&app, 80, 24);
    let buffer = terminal.backend().buffer();
    let (x, y) = find(buffer, "Not answering");
    assert_eq!(buffer[(x, y)].fg, Color::Red);
    insta::assert_snapshot!(screen(&terminal));
}

#[test]
fn warn_warning() {
    let mut app = App::new(info(GpuPolicy::Warn));
    submit(&mut app, "Hello?");
    app.update(worker(WorkerEvent::Accepted));
    app.update(worker(WorkerEvent::Warning(Arc::new(context_diagnosis()))));
    app.update(worker(WorkerEvent::Content("Hi! (slowly)".into())));
    app.update(worker(WorkerEvent::Finished {
        completion: completion(20, 2_000),
        ttft: Some(Duration::from_millis(2_400)),
        elapsed: Duration::from_secs(4),
    }));
    let terminal = render(&app, 80, 24);
    let buffer = terminal.backend().buffer();
    let (x, y) = find(buffer, "Warning:");
    assert_eq!(buffer[(x, y)].fg, Color::Yellow);
    insta::assert_snapshot!(screen(&terminal));
}

#[test]
fn error_banner_when_ollama_is_down() {
    let mut app = app();
    submit(&mut app, "Are you there?");
    app.update(worker(WorkerEvent::Rejected(Error::Unreachable {
        host: "http://127.0.0.1:11434".into(),
        reason: "connection refused".into(),
    })));
    assert_eq!(app.badge, Badge::Unreachable);
    insta::assert_snapshot!(screen(&render(&app, 80, 16)));
}

#[test]
fn personality_picker() {
    let mut app = app();
    loaded(&mut app, 100, 100);
    submit(&mut app, "/personality");
    app.update(Event::Personalities(vec![
        (
            "forge".into(),
            "Terse senior engineer: code first, trade-offs stated.".into(),
        ),
        (
            "sage".into(),
            "Patient tutor: Socratic, step by step.".into(),
        ),
        (
            "yollayah".into(),
            "Warm, concise and a little playful.".into(),
        ),
    ]));
    app.update(key(KeyCode::Up));
    let terminal = render(&app, 80, 16);
    let buffer = terminal.backend().buffer();
    let (x, y) = find(buffer, "sage");
    assert!(
        buffer[(x, y)].modifier.contains(Modifier::REVERSED),
        "the selected row is highlighted"
    );
    insta::assert_snapshot!(screen(&terminal));
}

#[test]
fn multi_line_input() {
    let mut app = app();
    type_text(&mut app, "first line");
    app.update(ctrl('j'));
    type_text(&mut app, "second line");
    let terminal = render(&app, 60, 10);
    insta::assert_snapshot!(screen(&terminal));
}

/// The first cell of `text` in `buffer` (searching row by row).
fn find(buffer: &Buffer, text: &str) -> (u16, u16) {
    let width = buffer.area.width;
    for y in 0..buffer.area.height {
        let row: Vec<&str> = (0..width).map(|x| buffer[(x, y)].symbol()).collect();
        let first = text.chars().next().unwrap().to_string();
        for x in 0..usize::from(width) {
            if row[x] != first {
                continue;
            }
            let mut candidate = String::new();
            for symbol in &row[x..] {
                candidate.push_str(symbol);
                if candidate.len() >= text.len() {
                    break;
                }
            }
            if candidate.starts_with(text) {
                return (u16::try_from(x).unwrap(), y);
            }
        }
    }
    panic!("{text:?} is not on the screen");
}

#[test]
fn history_search_overlay() {
    let mut app = app();
    loaded(&mut app, 100, 100);
    for question in ["cargo build --release", "What is a lifetime?", "cargo test"] {
        answer(&mut app, question, &["Done."]);
    }
    app.update(ctrl('r'));
    type_text(&mut app, "cargo");
    app.update(ctrl('r'));
    insta::assert_snapshot!(screen(&render(&app, 80, 24)));
}

#[test]
fn pull_progress() {
    let mut app = app();
    loaded(&mut app, 100, 100);
    submit(&mut app, "/model qwen3:8b");
    app.update(Event::ModelLookup {
        model: "qwen3:8b".into(),
        found: Ok(false),
    });
    submit(&mut app, "/pull qwen3:8b");
    app.update(Event::Pull {
        model: "qwen3:8b".into(),
        update: conductor_tui::event::PullUpdate::Progress(conductor_core::backend::PullProgress {
            status: "pulling a3de86cd1c13".into(),
            digest: Some("sha256:a3de86cd1c13".into()),
            total: Some(5_225_375_040),
            completed: Some(1_306_343_760),
        }),
    });
    insta::assert_snapshot!(screen(&render(&app, 80, 16)));
}

#[test]
fn policy_notice() {
    let mut app = App::new(info(GpuPolicy::Warn));
    loaded(&mut app, 25_712_097_280, 7_265_650_688);
    submit(&mut app, "/policy enforce");
    app.update(worker(WorkerEvent::PolicyChanged(GpuPolicy::Enforce)));
    app.update(worker(WorkerEvent::NotReady {
        model: "llama3.2:3b".into(),
        error: Error::NotResident(Box::new(context_diagnosis())),
    }));
    submit(&mut app, "/policy");
    insta::assert_snapshot!(screen(&render(&app, 90, 30)));
}
