//! Themes: the light and dark palettes draw the same screen in different colours, `NO_COLOR`
//! draws it without any, and `auto` reads the terminal's background from `COLORFGBG` or its
//! answer to the OSC 11 query.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt::Write as _;

use conductor_core::config::ThemeChoice;
use conductor_tui::app::App;
use conductor_tui::residency::{ResidencyState, ResidencyUpdate};
use conductor_tui::theme::detect::{Background, Decided, background_of, colorfgbg, resolve};
use conductor_tui::theme::{self, ThemeKind};
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier, Style};

use crate::common::*;

const ANSWER: &str = "## Loops

Use `for` over a range:

```rust
for i in 0..3 {
    println!(\"{i}\"); // prints
}
```

- done";

fn conversation() -> App {
    let mut app = app();
    app.update(conductor_tui::event::Event::Residency(ResidencyUpdate {
        model: "llama3.2:3b".into(),
        state: ResidencyState::Loaded(running("llama3.2:3b", 100, 60)),
    }));
    answer(&mut app, "A loop in Rust?", &[ANSWER]);
    app
}

fn buffer_in(kind: ThemeKind, app: &App) -> Buffer {
    theme::scoped(kind, || render(app, 60, 22).backend().buffer().clone())
}

/// The screen with its styles: each row's text, then each run of cells that share a style
/// other than the default, as `col..col fg/bg/modifiers`.
fn style_dump(buffer: &Buffer) -> String {
    let mut out = String::new();
    let width = buffer.area.width;
    for y in 0..buffer.area.height {
        let text: String = (0..width).map(|x| buffer[(x, y)].symbol()).collect();
        let _ = writeln!(out, "{:2} |{}", y, text.trim_end());
        let mut x = 0;
        while x < width {
            let cell = &buffer[(x, y)];
            let key = (cell.fg, cell.bg, cell.modifier);
            let start = x;
            while x < width {
                let c = &buffer[(x, y)];
                if (c.fg, c.bg, c.modifier) != key {
                    break;
                }
                x += 1;
            }
            if key != (Color::Reset, Color::Reset, Modifier::empty()) {
                let _ = writeln!(
                    out,
                    "   |  {start}..{x} {}/{}/{:?}",
                    colour(key.0),
                    colour(key.1),
                    key.2
                );
            }
        }
    }
    out
}

fn colour(c: Color) -> String {
    match c {
        Color::Reset => "-".into(),
        Color::Rgb(r, g, b) => format!("#{r:02x}{g:02x}{b:02x}"),
        other => format!("{other:?}"),
    }
}

#[test]
fn dark_theme_styles() {
    insta::assert_snapshot!(style_dump(&buffer_in(ThemeKind::Dark, &conversation())));
}

#[test]
fn light_theme_styles() {
    insta::assert_snapshot!(style_dump(&buffer_in(ThemeKind::Light, &conversation())));
}

#[test]
fn light_and_dark_draw_the_same_text_in_different_colours() {
    let app = conversation();
    let dark = buffer_in(ThemeKind::Dark, &app);
    let light = buffer_in(ThemeKind::Light, &app);
    let symbols = |b: &Buffer| {
        b.content
            .iter()
            .map(|c| c.symbol().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(symbols(&dark), symbols(&light));
    let differing = dark
        .content
        .iter()
        .zip(&light.content)
        .filter(|(d, l)| d.fg != l.fg)
        .count();
    assert!(differing > 20, "only {differing} cells differ");
    // The code is highlighted in both, with the theme's own colours.
    let (x, y) = find(&dark, "for i in");
    assert!(matches!(dark[(x, y)].fg, Color::Rgb(..)));
    assert!(matches!(light[(x, y)].fg, Color::Rgb(..)));
    assert_ne!(dark[(x, y)].fg, light[(x, y)].fg);
    // No light yellow or light cyan on a light background.
    for cell in &light.content {
        assert!(
            ![Color::LightYellow, Color::LightCyan, Color::Yellow].contains(&cell.fg),
            "{cell:?}"
        );
    }
}

#[test]
fn no_color_draws_without_any_colour() {
    let mut app = conversation();
    app.notice(
        conductor_tui::app::NoticeLevel::Error,
        "Something failed".into(),
        vec!["details".into()],
        Some("try again".into()),
    );
    let buffer = buffer_in(ThemeKind::Mono, &app);
    for (i, cell) in buffer.content.iter().enumerate() {
        assert_eq!(
            (cell.fg, cell.bg),
            (Color::Reset, Color::Reset),
            "cell {i} {cell:?}"
        );
    }
    // What colour told apart, attributes still do: the badge, the headers, the code.
    let (x, y) = find(&buffer, "40%/60% CPU/GPU");
    assert!(buffer[(x, y)].modifier.contains(Modifier::UNDERLINED));
    let (x, y) = find(&buffer, "Yollayah");
    assert!(buffer[(x, y)].modifier.contains(Modifier::BOLD));
    // Inline code is underlined; a code block, set apart by its frame, is not.
    let (x, y) = find(&buffer, "for over");
    assert!(buffer[(x, y)].modifier.contains(Modifier::UNDERLINED));
    let (x, y) = find(&buffer, "for i in 0..3");
    assert!(!buffer[(x, y)].modifier.contains(Modifier::UNDERLINED));
}

#[test]
fn the_render_cache_follows_a_change_of_theme() {
    let app = conversation();
    let dark = buffer_in(ThemeKind::Dark, &app);
    let mono = buffer_in(ThemeKind::Mono, &app);
    let again = buffer_in(ThemeKind::Dark, &app);
    assert_ne!(dark, mono);
    assert_eq!(dark, again);
}

fn find(buffer: &Buffer, text: &str) -> (u16, u16) {
    let width = usize::from(buffer.area.width);
    for (y, row) in buffer.content.chunks(width).enumerate() {
        let line: String = row.iter().map(|c| c.symbol()).collect();
        if let Some(at) = line.find(text) {
            let x = line[..at].chars().count();
            return (u16::try_from(x).unwrap(), u16::try_from(y).unwrap());
        }
    }
    panic!("{text:?} not on screen");
}

// ---- detection ----

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |k| map.get(k).cloned()
}

fn never_asked() -> Option<Background> {
    panic!("the terminal must not be queried")
}

#[test]
fn no_color_wins_over_every_choice() {
    for choice in [ThemeChoice::Auto, ThemeChoice::Dark, ThemeChoice::Light] {
        let got = resolve(
            choice,
            &env(&[("NO_COLOR", "1"), ("COLORFGBG", "0;15")]),
            never_asked,
        );
        assert_eq!(got, (ThemeKind::Mono, Decided::NoColor));
    }
    // Set but empty does not count (no-color.org).
    let got = resolve(ThemeChoice::Light, &env(&[("NO_COLOR", "")]), never_asked);
    assert_eq!(got, (ThemeKind::Light, Decided::Setting));
}

#[test]
fn a_dark_or_light_setting_asks_nothing() {
    let env = env(&[("COLORFGBG", "0;15")]);
    assert_eq!(
        resolve(ThemeChoice::Dark, &env, never_asked),
        (ThemeKind::Dark, Decided::Setting)
    );
    assert_eq!(
        resolve(ThemeChoice::Light, &env, never_asked),
        (ThemeKind::Light, Decided::Setting)
    );
}

#[test]
fn auto_reads_colorfgbg_before_asking_the_terminal() {
    for (value, kind) in [
        ("15;0", ThemeKind::Dark),
        ("7;8", ThemeKind::Dark),
        ("0;15", ThemeKind::Light),
        ("0;7", ThemeKind::Light),
        ("0;default;15", ThemeKind::Light),
        ("15;default;0", ThemeKind::Dark),
    ] {
        assert_eq!(
            resolve(
                ThemeChoice::Auto,
                &env(&[("COLORFGBG", value)]),
                never_asked
            ),
            (kind, Decided::ColorFgBg),
            "COLORFGBG={value}"
        );
    }
}

#[test]
fn auto_asks_the_terminal_when_colorfgbg_says_nothing() {
    for value in [
        None,
        Some("default;default"),
        Some("garbage"),
        Some("0;99"),
        Some(""),
    ] {
        let pairs: Vec<(&str, &str)> = value.map(|v| ("COLORFGBG", v)).into_iter().collect();
        let asked = Cell::new(false);
        let got = resolve(ThemeChoice::Auto, &env(&pairs), || {
            asked.set(true);
            Some(Background::Light)
        });
        assert!(asked.get(), "{value:?}");
        assert_eq!(got, (ThemeKind::Light, Decided::Terminal), "{value:?}");
    }
    // No answer (a timeout, no terminal, TERM=dumb): dark.
    assert_eq!(
        resolve(ThemeChoice::Auto, &env(&[]), || None),
        (ThemeKind::Dark, Decided::Fallback)
    );
}

#[test]
fn colorfgbg_values() {
    assert_eq!(colorfgbg("15;0"), Some(Background::Dark));
    assert_eq!(colorfgbg("0;15"), Some(Background::Light));
    assert_eq!(colorfgbg(" 0 ; 15 "), Some(Background::Light));
    assert_eq!(colorfgbg("12;default;4"), Some(Background::Dark));
    assert_eq!(colorfgbg("0;default"), None);
    assert_eq!(colorfgbg("0;16"), None);
    assert_eq!(colorfgbg("-1;-1"), None);
    assert_eq!(colorfgbg(""), None);
}

/// The colour in an OSC 11 reply's payload (`ESC ] 11 ; <payload> BEL`), parsed as
/// terminal-colorsaurus parses it (with xterm-color's XParseColor), then judged light or dark.
fn reply(payload: &str) -> Background {
    let parsed = xterm_color::Color::parse(payload.as_bytes()).unwrap();
    background_of(&terminal_colorsaurus::Color::rgb(
        parsed.red,
        parsed.green,
        parsed.blue,
    ))
}

#[test]
fn osc_11_replies_are_judged_by_perceived_lightness() {
    // xterm, default white; Solarized Light; GNOME's light grey.
    assert_eq!(reply("rgb:ffff/ffff/ffff"), Background::Light);
    assert_eq!(reply("rgb:fdfd/f6f6/e3e3"), Background::Light);
    assert_eq!(reply("rgb:fafa/fafa/fafa"), Background::Light);
    // Black; VS Code's dark grey; Solarized Dark; Gruvbox (2-digit and #rgb forms).
    assert_eq!(reply("rgb:0000/0000/0000"), Background::Dark);
    assert_eq!(reply("rgb:1e1e/1e1e/1e1e"), Background::Dark);
    assert_eq!(reply("rgb:00/2b/36"), Background::Dark);
    assert_eq!(reply("#282828"), Background::Dark);
    // Around the middle grey (L* 50 is sRGB 0x77): darker is dark, lighter is light; a pale
    // yellow is light though its blue is low.
    assert_eq!(reply("rgb:6666/6666/6666"), Background::Dark);
    assert_eq!(reply("rgb:8888/8888/8888"), Background::Light);
    assert_eq!(reply("rgb:ffff/ffff/aaaa"), Background::Light);
}

#[test]
fn styles_of_the_themes_are_distinct_where_it_matters() {
    for theme in [&theme::DARK, &theme::LIGHT, &theme::MONO] {
        let badges = [theme.badge_gpu, theme.badge_split, theme.badge_cpu];
        assert!(
            badges[0] != badges[1] && badges[1] != badges[2] && badges[0] != badges[2],
            "{:?}",
            theme.kind
        );
        assert_ne!(theme.error, theme.info, "{:?}", theme.kind);
    }
    assert!(theme::MONO.code_theme.is_none());
    let no_colour = |s: Style| s.fg.is_none() && s.bg.is_none();
    let mono = &theme::MONO;
    for style in [
        mono.user,
        mono.assistant,
        mono.dim,
        mono.info,
        mono.warning,
        mono.error,
        mono.code,
        mono.gutter,
        mono.scroll_hint,
        mono.badge_gpu,
        mono.badge_split,
        mono.badge_cpu,
    ] {
        assert!(no_colour(style), "{style:?}");
    }
}

/// Over SSH the answer makes a network round trip: the query waits longer for it.
#[test]
fn the_query_waits_longer_over_ssh() {
    use conductor_tui::theme::detect::{QUERY_TIMEOUT, SSH_QUERY_TIMEOUT, query_timeout};
    assert_eq!(query_timeout(&env(&[])), QUERY_TIMEOUT);
    assert_eq!(
        query_timeout(&env(&[("SSH_CONNECTION", "")])),
        QUERY_TIMEOUT
    );
    let remote = [("SSH_CONNECTION", "10.0.0.2 51000 10.0.0.1 22")];
    assert_eq!(query_timeout(&env(&remote)), SSH_QUERY_TIMEOUT);
    assert_eq!(
        query_timeout(&env(&[("SSH_TTY", "/dev/pts/3")])),
        SSH_QUERY_TIMEOUT
    );
    assert!(SSH_QUERY_TIMEOUT >= 10 * QUERY_TIMEOUT);
}

/// Keys typed ahead are not eaten by a query; a query that timed out has its late answer
/// dropped; one that was answered or cannot be has nothing to drop.
#[test]
fn the_query_is_skipped_for_typed_ahead_keys_and_its_late_answer_dropped() {
    use conductor_tui::theme::detect::{Answer, SSH_QUERY_TIMEOUT, ask_terminal};
    let ssh = env(&[("SSH_TTY", "/dev/pts/3")]);
    let asked = Cell::new(None);
    let dropped = Cell::new(0);
    let ask = |pending: bool, answer: Answer| {
        ask_terminal(
            &ssh,
            || pending,
            |wait| {
                asked.set(Some(wait));
                answer
            },
            || dropped.set(dropped.get() + 1),
        )
    };

    assert_eq!(ask(true, Answer::Background(Background::Light)), None);
    assert_eq!(
        (asked.get(), dropped.get()),
        (None, 0),
        "keys waiting: not asked"
    );

    let light = ask(false, Answer::Background(Background::Light));
    assert_eq!(light, Some(Background::Light));
    assert_eq!((asked.get(), dropped.get()), (Some(SSH_QUERY_TIMEOUT), 0));

    assert_eq!(ask(false, Answer::None), None);
    assert_eq!(dropped.get(), 0);

    assert_eq!(ask(false, Answer::TimedOut), None);
    assert_eq!(dropped.get(), 1, "the late answer is dropped");
}

#[test]
fn the_end_of_a_da1_answer_is_recognised() {
    use conductor_tui::theme::detect::holds_da1_answer;
    assert!(holds_da1_answer(b"\x1b[?62;22c"));
    assert!(holds_da1_answer(
        b"\x1b]11;rgb:ffff/ffff/ffff\x07\x1b[?1;2c"
    ));
    assert!(holds_da1_answer(b"\x1b]11;rgb:0/0/0\x1b\\\x1b[?6c"));
    assert!(!holds_da1_answer(b"\x1b]11;rgb:ffff/ffff/ffff\x07"));
    assert!(!holds_da1_answer(
        b"\x1b]11;rgb:ffff/ffff/ffff\x07\x1b[?62;22"
    ));
    assert!(!holds_da1_answer(b"\x1b[?25h"));
    assert!(!holds_da1_answer(b""));
}

/// On a pseudo-terminal: a late answer is read and dropped up to the end of its DA1 part,
/// and what follows (a key typed after) is left for the chat; keys waiting are seen even
/// before their line ends.
#[cfg(unix)]
#[test]
fn a_late_answer_is_dropped_from_a_terminal_and_keys_after_it_kept() {
    use std::io::{Read as _, Write as _};
    use std::time::{Duration, Instant};

    use conductor_tui::theme::detect::tty::{discard_on, pending_on};

    let pty = nix::pty::openpty(None, None).unwrap();
    let mut master = std::fs::File::from(pty.master);
    let slave = std::fs::File::from(pty.slave);
    assert!(!pending_on(&slave), "nothing typed yet");

    let answer = b"\x1b]11;rgb:ffff/ffff/ffff\x07\x1b[?62;22c";
    master.write_all(answer).unwrap();
    master.write_all(b"typed\n").unwrap();
    assert!(pending_on(&slave));
    let dropped = discard_on(&slave, Duration::from_secs(5));
    assert_eq!(dropped, answer.len());
    let mut kept = [0_u8; 6];
    (&slave).read_exact(&mut kept).unwrap();
    assert_eq!(&kept, b"typed\n");

    // Keys typed ahead, their line not ended: waiting all the same.
    master.write_all(b"ab").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert!(pending_on(&slave));

    // No answer at all: the wait ends at its limit.
    let started = Instant::now();
    let fresh = nix::pty::openpty(None, None).unwrap();
    let _fresh_master = fresh.master;
    let fresh_slave = std::fs::File::from(fresh.slave);
    assert_eq!(discard_on(&fresh_slave, Duration::from_millis(50)), 0);
    assert!(started.elapsed() < Duration::from_secs(2));
}
