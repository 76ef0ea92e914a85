//! Copying to the user's clipboard through the terminal: OSC 52 (`ESC ] 52 ; c ; <base64> BEL`).
//!
//! The terminal, not this machine, owns the clipboard, so a copy works over SSH as well. Inside
//! tmux the sequence is sent twice: as it is, which tmux turns into a paste buffer (and passes
//! on to the outer terminal) when `set-clipboard` is `on`; and wrapped in tmux's DCS passthrough
//! (`ESC P tmux ; … ESC \`, every `ESC` inside doubled), which reaches the outer terminal when
//! `allow-passthrough` is `on`. Either setting is enough; with both, the outer terminal is told
//! the same text twice. Neither sequence draws anything, so the screen is left as it is.
//!
//! Terminals bound what they take: sequences past about 100,000 bytes are dropped silently by
//! many (hterm's and vim-oscyank's limit, the size xterm and tmux are known to take whole), so
//! a longer text is refused before anything is sent (see [`fits`]). Nothing comes back from
//! the terminal either way: a copy that was sent is not known to have arrived.

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The longest OSC 52 sequence sent: `ESC ] 52 ; c ;`, the base64 text and `BEL` together.
pub const MAX_SEQUENCE: usize = 100_000;

/// The longest text (in bytes) whose sequence stays within [`MAX_SEQUENCE`]: 74,994 bytes,
/// whose base64 is 99,992 bytes.
pub const MAX_TEXT_BYTES: usize = (MAX_SEQUENCE - OVERHEAD) / 4 * 3;

/// `ESC ] 52 ; c ;` and `BEL`.
const OVERHEAD: usize = 8;

/// True when the sequence for `text` is short enough for terminals to take it whole.
#[must_use]
pub fn fits(text: &str) -> bool {
    text.len() <= MAX_TEXT_BYTES
}

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
    fn the_cap_is_the_longest_text_whose_sequence_fits() {
        assert_eq!(MAX_TEXT_BYTES, 74_994);
        let longest = "a".repeat(MAX_TEXT_BYTES);
        assert!(fits(&longest));
        assert_eq!(osc52(&longest).len(), MAX_SEQUENCE);
        assert!(!fits(&format!("{longest}a")));
        assert!(osc52(&format!("{longest}a")).len() > MAX_SEQUENCE);
    }

    #[test]
    fn copying_writes_and_flushes() {
        let mut out = Vec::new();
        copy_to(&mut out, "é", false).unwrap();
        assert_eq!(out, b"\x1b]52;c;w6k=\x07");
    }
}
