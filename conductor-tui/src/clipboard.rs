//! Copying to the user's clipboard through the terminal: OSC 52 (`ESC ] 52 ; c ; <base64> BEL`).
//!
//! The terminal, not this machine, owns the clipboard, so a copy works over SSH as well. Inside
//! tmux the sequence is sent twice: as it is, which tmux turns into a paste buffer (and passes
//! on to the outer terminal) when `set-clipboard` is `on`; and wrapped in tmux's DCS passthrough
//! (`ESC P tmux ; … ESC \`, every `ESC` inside doubled), which reaches the outer terminal when
//! `allow-passthrough` is `on`. Either setting is enough; with both, the outer terminal is told
//! the same text twice. Neither sequence draws anything, so the screen is left as it is.

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The OSC 52 sequence that puts `text` on the clipboard (`c`, the system clipboard).
#[must_use]
pub fn osc52(text: &str) -> String {
    format!("\x1b]52;c;{}\x07", STANDARD.encode(text))
}

/// `sequence` wrapped in tmux's passthrough: `ESC P tmux ;`, the sequence with every `ESC`
/// doubled, `ESC \`.
#[must_use]
pub fn tmux_passthrough(sequence: &str) -> String {
    format!("\x1bPtmux;{}\x1b\\", sequence.replace('\x1b', "\x1b\x1b"))
}

/// The bytes to write for a copy of `text`: the OSC 52 sequence, and inside tmux also its
/// passthrough form (see the module documentation).
#[must_use]
pub fn copy_sequence(text: &str, in_tmux: bool) -> String {
    let plain = osc52(text);
    if in_tmux {
        let wrapped = tmux_passthrough(&plain);
        plain + &wrapped
    } else {
        plain
    }
}

/// True when running inside tmux (`$TMUX` is set).
#[must_use]
pub fn in_tmux() -> bool {
    std::env::var_os("TMUX").is_some_and(|v| !v.is_empty())
}

/// Writes the copy of `text` to `out` (the terminal ratatui draws on) and flushes it.
///
/// # Errors
/// When the terminal cannot be written.
pub fn copy_to(out: &mut impl Write, text: &str, in_tmux: bool) -> std::io::Result<()> {
    out.write_all(copy_sequence(text, in_tmux).as_bytes())?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_carries_the_text_in_base64() {
        assert_eq!(osc52("hi"), "\x1b]52;c;aGk=\x07");
        assert_eq!(copy_sequence("hi", false), "\x1b]52;c;aGk=\x07");
        assert_eq!(
            copy_sequence("hi", true),
            "\x1b]52;c;aGk=\x07\x1bPtmux;\x1b\x1b]52;c;aGk=\x07\x1b\\"
        );
    }

    #[test]
    fn copying_writes_and_flushes() {
        let mut out = Vec::new();
        copy_to(&mut out, "é", false).unwrap();
        assert_eq!(out, b"\x1b]52;c;w6k=\x07");
    }
}
