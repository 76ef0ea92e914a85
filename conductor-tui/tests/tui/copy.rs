//! `/copy`: the last answer or one of its numbered code blocks, to the terminal's clipboard
//! (the OSC 52 bytes themselves are checked in `clipboard`'s unit tests and, in tmux, by the
//! CLI's end-to-end tests).

use conductor_tui::app::{Action, App, EntryKind, NoticeLevel};
use conductor_tui::event::Event;

use crate::common::*;

const TWO_BLOCKS: &str =
    "First:\n\n```sh\ncargo test\n```\n\nThen:\n\n~~~python\nprint(1)\nprint(2)\n~~~\n";

fn last_notice(app: &App) -> (NoticeLevel, String, Option<String>) {
    app.entries
        .iter()
        .rev()
        .find_map(|e| match e.kind() {
            EntryKind::Notice(n) => Some((n.level, n.title.clone(), n.hint.clone())),
            EntryKind::Message(_) => None,
        })
        .expect("a notice")
}

#[test]
fn nothing_to_copy_is_said() {
    let mut app = app();
    submit(&mut app, "/copy");
    assert!(app.take_actions().is_empty());
    let (level, title, _) = last_notice(&app);
    assert_eq!(level, NoticeLevel::Error);
    assert_eq!(title, "Nothing to copy: there is no answer yet");
}

#[test]
fn copy_takes_the_last_answer() {
    let mut app = app();
    answer(&mut app, "first", &["an older answer"]);
    answer(&mut app, "second", &[TWO_BLOCKS]);
    submit(&mut app, "/copy");
    assert_eq!(
        app.take_actions(),
        [Action::Copy {
            text: TWO_BLOCKS.into(),
            what: "the last answer".into()
        }]
    );
    // The runtime writes it and reports back.
    app.update(Event::Copied {
        what: "the last answer".into(),
        chars: 1234,
        tmux: false,
        result: Ok(()),
    });
    let (level, title, hint) = last_notice(&app);
    assert_eq!(level, NoticeLevel::Info);
    assert_eq!(
        title,
        "Sent 1,234 characters (the last answer) to the terminal's clipboard"
    );
    assert!(hint.unwrap().contains("OSC 52"));
    // Inside tmux: what tmux needs.
    app.update(Event::Copied {
        what: "the last answer".into(),
        chars: 5,
        tmux: true,
        result: Ok(()),
    });
    let (_, title, hint) = last_notice(&app);
    assert_eq!(
        title,
        "Sent 5 characters (the last answer) to the terminal's clipboard"
    );
    assert!(hint.unwrap().contains("set -g set-clipboard on"));
}

#[test]
fn copy_n_takes_code_block_n() {
    let mut app = app();
    answer(&mut app, "how?", &[TWO_BLOCKS]);
    submit(&mut app, "/copy 2");
    assert_eq!(
        app.take_actions(),
        [Action::Copy {
            text: "print(1)\nprint(2)".into(),
            what: "code block 2".into()
        }]
    );
    submit(&mut app, "/copy 1");
    assert_eq!(
        app.take_actions(),
        [Action::Copy {
            text: "cargo test".into(),
            what: "code block 1".into()
        }]
    );
}

#[test]
fn a_block_out_of_range_or_no_number_is_refused_clearly() {
    let mut app = app();
    answer(&mut app, "how?", &[TWO_BLOCKS]);
    for (arg, expected) in [
        (
            "3",
            "There is no code block 3: the last answer has 2 code blocks, [1] to [2]",
        ),
        (
            "0",
            "There is no code block 0: the last answer has 2 code blocks, [1] to [2]",
        ),
        ("two", "/copy takes the number of a code block, not `two`"),
    ] {
        submit(&mut app, &format!("/copy {arg}"));
        assert!(app.take_actions().is_empty(), "/copy {arg}");
        let (level, title, _) = last_notice(&app);
        assert_eq!(level, NoticeLevel::Error);
        assert_eq!(title, expected);
    }
    let mut app = crate::common::app();
    answer(&mut app, "plain?", &["No code here."]);
    submit(&mut app, "/copy 1");
    assert!(app.take_actions().is_empty());
    assert_eq!(last_notice(&app).1, "The last answer has no code blocks");
}

#[test]
fn a_failed_write_is_said() {
    let mut app = app();
    app.update(Event::Copied {
        what: "code block 1".into(),
        chars: 10,
        tmux: false,
        result: Err("broken pipe".into()),
    });
    let (level, title, _) = last_notice(&app);
    assert_eq!(level, NoticeLevel::Error);
    assert_eq!(title, "Could not copy code block 1: broken pipe");
}

#[test]
fn code_blocks_are_numbered_on_screen() {
    let mut app = app();
    answer(&mut app, "how?", &[TWO_BLOCKS]);
    let text = screen(&render(&app, 60, 30));
    assert!(text.contains("╭─ sh [1]"), "{text}");
    assert!(text.contains("╭─ python [2]"), "{text}");
}

#[test]
fn a_text_longer_than_terminals_take_is_refused_with_the_ways_out() {
    use conductor_tui::clipboard::MAX_TEXT_BYTES;
    let mut app = app();
    let code = "x".repeat(100);
    let huge = format!(
        "{}\n\n```sh\n{code}\n```\n",
        "word ".repeat(MAX_TEXT_BYTES / 5 + 1)
    );
    answer(&mut app, "a long one", &[&huge]);
    submit(&mut app, "/copy");
    assert!(app.take_actions().is_empty(), "nothing is sent");
    let (level, title, hint) = last_notice(&app);
    assert_eq!(level, NoticeLevel::Error);
    assert_eq!(huge.len(), 75_108);
    assert_eq!(
        title,
        "Not copied: the last answer is 75,108 bytes, more than the 74,994 a terminal clipboard \
         takes"
    );
    let hint = hint.unwrap();
    assert!(hint.contains("/copy 1 to /copy 1"), "{hint}");
    assert!(
        hint.contains(&format!("conductor sessions export {}", app.session.id)),
        "{hint}"
    );
    // Its code block is small enough.
    submit(&mut app, "/copy 1");
    assert_eq!(
        app.take_actions(),
        [Action::Copy {
            text: code,
            what: "code block 1".into()
        }]
    );
    // Exactly at the cap still goes.
    let mut app = crate::common::app();
    let longest = "y".repeat(MAX_TEXT_BYTES);
    answer(&mut app, "at the cap", &[&longest]);
    submit(&mut app, "/copy");
    assert_eq!(app.take_actions().len(), 1);
}
