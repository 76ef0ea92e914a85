//! Slash commands and pickers: the list, tab completion, `/clear`, personality and model.

use conductor_tui::app::{Action, Badge, NoticeLevel, PickerKind};
use conductor_tui::event::Event;
use conductor_tui::worker::WorkerEvent;
use crossterm::event::KeyCode;

use crate::common::*;

#[test]
fn commands() {
    let mut app = app();
    submit(&mut app, "/personality sage");
    assert_eq!(
        app.take_actions(),
        [Action::SwitchPersonality("sage".into())]
    );
    submit(&mut app, "/model qwen3:8b");
    assert_eq!(app.take_actions(), [Action::CheckModel("qwen3:8b".into())]);
    submit(&mut app, "/model");
    assert_eq!(app.take_actions(), [Action::ListModels]);
    submit(&mut app, "/system Answer in French.");
    assert_eq!(
        app.take_actions(),
        [Action::SetSystem(Some("Answer in French.".into()))]
    );
    submit(&mut app, "/system");
    assert_eq!(app.take_actions(), [Action::SetSystem(None)]);
    submit(&mut app, "/save");
    assert_eq!(app.take_actions(), [Action::Save { announce: true }]);
    submit(&mut app, "/sessions");
    assert_eq!(app.take_actions(), [Action::ListSessions]);
    submit(&mut app, "//not a command");
    assert!(
        app.take_actions()
            .contains(&Action::Send("/not a command".into()))
    );
    app.update(worker(WorkerEvent::Stopped));
    app.take_actions();
    submit(&mut app, "/frobnicate");
    assert!(app.take_actions().is_empty());
    assert!(
        notices(&app)
            .iter()
            .any(|(l, t)| *l == NoticeLevel::Error && t.contains("/frobnicate"))
    );
    submit(&mut app, "/help");
    assert!(notices(&app).iter().any(|(_, t)| t == "Help"));
    submit(&mut app, "/quit");
    assert!(app.should_quit);
}

#[test]
fn tab_completes_commands() {
    let mut app = app();
    type_text(&mut app, "/pers");
    app.update(key(KeyCode::Tab));
    assert_eq!(app.input.text(), "/personality ");
}

#[test]
fn clear_starts_a_new_session_and_saves_the_old() {
    let mut app = app();
    answer(&mut app, "hi", &["hello"]);
    let old = app.session.id.clone();
    submit(&mut app, "/clear");
    let actions = app.take_actions();
    assert_eq!(actions, [Action::Save { announce: false }, Action::Clear]);
    assert!(app.entries.is_empty());
    assert_ne!(app.session.id, old);
}

#[test]
fn personality_picker_switches_and_keeps_the_conversation() {
    let mut app = app();
    answer(&mut app, "hi", &["hello"]);
    submit(&mut app, "/personality");
    assert_eq!(app.take_actions(), [Action::ListPersonalities]);
    app.update(Event::Personalities(vec![
        ("forge".into(), "terse engineer".into()),
        ("sage".into(), "patient tutor".into()),
        ("yollayah".into(), "the default".into()),
    ]));
    let picker = app.picker.as_ref().unwrap();
    assert_eq!(picker.kind, PickerKind::Personality);
    assert_eq!(picker.selected, 2, "the current one is selected");
    app.update(key(KeyCode::Up));
    app.update(key(KeyCode::Enter));
    assert!(app.picker.is_none());
    assert_eq!(
        app.take_actions(),
        [Action::SwitchPersonality("sage".into())]
    );
    app.update(worker(WorkerEvent::PersonalityChanged("sage".into())));
    assert_eq!(app.info.personality, "sage");
    assert_eq!(app.conversation().len(), 2, "the conversation is kept");
    assert!(notices(&app)[0].1.contains("from the next answer on"));
    // Typing filters.
    submit(&mut app, "/personality");
    app.update(Event::Personalities(vec![
        ("forge".into(), String::new()),
        ("sage".into(), String::new()),
    ]));
    type_text(&mut app, "forg");
    app.update(key(KeyCode::Enter));
    assert!(
        app.take_actions()
            .contains(&Action::SwitchPersonality("forge".into()))
    );
}

#[test]
fn model_picker_lists_local_models() {
    let mut app = app();
    submit(&mut app, "/model");
    app.take_actions();
    app.update(Event::Models(Ok(vec![
        conductor_core::backend::LocalModel {
            name: "llama3.2:3b".into(),
            size: 2_019_393_189,
            modified_at: String::new(),
        },
        conductor_core::backend::LocalModel {
            name: "qwen3:8b".into(),
            size: 5_225_388_164,
            modified_at: String::new(),
        },
    ])));
    let picker = app.picker.as_ref().unwrap();
    assert_eq!(picker.kind, PickerKind::Model);
    assert_eq!(picker.items[0].detail, "2.0 GB");
    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Enter));
    assert_eq!(app.take_actions(), [Action::SetModel("qwen3:8b".into())]);
    app.update(worker(WorkerEvent::ModelChanged("qwen3:8b".into())));
    assert_eq!(app.info.model, "qwen3:8b");
    assert_eq!(app.badge, Badge::Unknown);
}
