//! Helpers: an app with known settings, key events, worker events, rendering.

use std::time::Duration;

use conductor_core::gpu::{Cause, Diagnosis, SettingSource};
use conductor_core::{Completion, DoneReason, GenerationStats, GpuPolicy, Role, RunningModel};
use conductor_tui::app::{App, AppInfo, EntryKind, MessageState, NoticeLevel};
use conductor_tui::event::Event;
use conductor_tui::worker::WorkerEvent;
use crossterm::event::{
    Event as TermEvent, KeyCode, KeyEvent, KeyModifiers, MouseEvent, MouseEventKind,
};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

pub fn info(policy: GpuPolicy) -> AppInfo {
    AppInfo {
        host: "http://127.0.0.1:11434".into(),
        model: "llama3.2:3b".into(),
        personality: "yollayah".into(),
        policy,
        backend: conductor_core::BackendKind::Ollama,
    }
}

pub fn app() -> App {
    App::new(info(GpuPolicy::Enforce))
}

pub fn key(code: KeyCode) -> Event {
    Event::Terminal(TermEvent::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

pub fn key_with(code: KeyCode, modifiers: KeyModifiers) -> Event {
    Event::Terminal(TermEvent::Key(KeyEvent::new(code, modifiers)))
}

pub fn ctrl(c: char) -> Event {
    key_with(KeyCode::Char(c), KeyModifiers::CONTROL)
}

pub fn alt(c: char) -> Event {
    key_with(KeyCode::Char(c), KeyModifiers::ALT)
}

pub fn wheel(kind: MouseEventKind) -> Event {
    Event::Terminal(TermEvent::Mouse(MouseEvent {
        kind,
        column: 0,
        row: 0,
        modifiers: KeyModifiers::NONE,
    }))
}

/// Types `text` key by key.
pub fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        app.update(key(KeyCode::Char(c)));
    }
}

/// Types `text` and presses Enter.
pub fn submit(app: &mut App, text: &str) {
    type_text(app, text);
    app.update(key(KeyCode::Enter));
}

pub fn worker(event: WorkerEvent) -> Event {
    Event::Worker(event)
}

/// A completion of `tokens` tokens in `ms` milliseconds.
pub fn completion(tokens: u64, ms: u64) -> Completion {
    Completion {
        done_reason: Some(DoneReason::Stop),
        stats: GenerationStats {
            eval_count: tokens,
            eval_duration: Duration::from_millis(ms),
            ..GenerationStats::default()
        },
    }
}

/// Asks `question` and streams `chunks` to the end, as the worker would report them.
pub fn answer(app: &mut App, question: &str, chunks: &[&str]) {
    submit(app, question);
    app.update(worker(WorkerEvent::Accepted));
    for chunk in chunks {
        app.update(worker(WorkerEvent::Content((*chunk).to_owned())));
    }
    app.update(worker(WorkerEvent::Finished {
        completion: completion(100, 2_000),
        ttft: Some(Duration::from_millis(180)),
        elapsed: Duration::from_millis(2_200),
    }));
    app.take_actions();
}

pub fn running(name: &str, size: u64, size_vram: u64) -> RunningModel {
    RunningModel {
        name: name.into(),
        size,
        size_vram,
        context_length: Some(131_072),
        expires_at: None,
        digest: String::new(),
        details: Default::default(),
    }
}

/// The H100 case of the README: the default 131072-token context does not fit.
pub fn context_diagnosis() -> Diagnosis {
    Diagnosis {
        model: "llama3.2:3b".into(),
        running: Some(running("llama3.2:3b", 25_712_097_280, 7_265_650_688)),
        runner_gpu_memory: Some(1_717_986_918),
        cause: Cause::ContextTooLarge {
            num_ctx: 131_072,
            source: SettingSource::OllamaDefault,
            kv_bytes: 14_495_514_624,
            max_fitting: 20_000,
        },
        notes: vec!["no num_ctx is set anywhere: Ollama used the model's maximum".into()],
    }
}

/// Renders `app` on a `width` × `height` test terminal.
pub fn render(app: &App, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| conductor_tui::ui::draw(frame, app))
        .unwrap();
    terminal
}

/// The screen as text, one line per row, trailing spaces trimmed.
pub fn screen(terminal: &Terminal<TestBackend>) -> String {
    let buffer = terminal.backend().buffer();
    let width = usize::from(buffer.area.width);
    buffer
        .content
        .chunks(width)
        .map(|row| {
            let mut line = String::new();
            let mut skip = 0;
            for cell in row {
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                line.push_str(cell.symbol());
                skip = unicode_width::UnicodeWidthStr::width(cell.symbol()).saturating_sub(1);
            }
            line.trim_end().to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The messages on screen, in order: who, what, and in which state.
pub fn messages(app: &App) -> Vec<(Role, String, MessageState)> {
    app.entries
        .iter()
        .filter_map(|e| e.message())
        .map(|m| (m.role, m.content.clone(), m.state.clone()))
        .collect()
}

/// The notices on screen, in order: their level and title.
pub fn notices(app: &App) -> Vec<(NoticeLevel, String)> {
    app.entries
        .iter()
        .filter_map(|e| match e.kind() {
            EntryKind::Notice(n) => Some((n.level, n.title.clone())),
            EntryKind::Message(_) => None,
        })
        .collect()
}
