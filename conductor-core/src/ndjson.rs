//! A line-buffered NDJSON decoder.
//!
//! Ollama streams one JSON object per line, but the network cuts the bytes wherever it likes: a
//! line may arrive in several reads (even inside a multi-byte UTF-8 character), and one read may
//! hold several lines. ollama-rs parses each read on its own and loses split lines; this decoder
//! keeps the bytes until a newline completes them, so reassembly is exact.

use bytes::{Buf, Bytes, BytesMut};

/// Longest line accepted (16 MiB): a server that never sends a newline cannot exhaust memory.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// Splits a byte stream into complete lines.
#[derive(Debug, Default)]
pub struct LineDecoder {
    buf: BytesMut,
    /// Bytes of `buf` already searched for a newline (so each byte is scanned once).
    scanned: usize,
}

/// A line longer than [`MAX_LINE_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTooLong;

impl LineDecoder {
    /// An empty decoder.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the network.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete line without its `\n` (or `\r\n`), skipping empty lines.
    ///
    /// # Errors
    /// [`LineTooLong`] when more than [`MAX_LINE_BYTES`] are buffered without a newline.
    pub fn next_line(&mut self) -> Result<Option<Bytes>, LineTooLong> {
        loop {
            let Some(pos) = memchr::memchr(b'\n', &self.buf[self.scanned..]) else {
                self.scanned = self.buf.len();
                if self.buf.len() > MAX_LINE_BYTES {
                    return Err(LineTooLong);
                }
                return Ok(None);
            };
            let end = self.scanned + pos;
            let mut line = self.buf.split_to(end + 1);
            self.scanned = 0;
            line.truncate(end);
            if line.last() == Some(&b'\r') {
                line.truncate(end - 1);
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Ok(Some(line.freeze()));
        }
    }

    /// At end of stream: what is left without a final newline, if anything but whitespace.
    pub fn finish(&mut self) -> Option<Bytes> {
        self.scanned = 0;
        let rest = self.buf.split().freeze();
        if rest.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            Some(rest)
        }
    }

    /// Bytes buffered and not yet returned.
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buf.remaining()
    }
}

/// Shortens a line for an error message (at a character boundary, lossily decoded).
#[must_use]
pub fn excerpt(line: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(line);
    if text.chars().count() <= MAX {
        text.into_owned()
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(decoder: &mut LineDecoder) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(Some(line)) = decoder.next_line() {
            out.push(String::from_utf8(line.to_vec()).unwrap());
        }
        out
    }

    #[test]
    fn reassembles_lines_split_at_every_byte() {
        let text = "{\"a\":\"héllo 🦀\"}\n{\"b\":2}\r\n\n{\"c\":3}\n";
        for split in 1..text.len() {
            let mut decoder = LineDecoder::new();
            let mut got = Vec::new();
            for chunk in text.as_bytes().chunks(split) {
                decoder.push(chunk);
                got.extend(lines_of(&mut decoder));
            }
            assert_eq!(
                got,
                ["{\"a\":\"héllo 🦀\"}", "{\"b\":2}", "{\"c\":3}"],
                "split {split}"
            );
            assert_eq!(decoder.finish(), None);
        }
    }

    #[test]
    fn keeps_an_unterminated_tail_for_finish() {
        let mut decoder = LineDecoder::new();
        decoder.push(b"{\"a\":1}\n{\"b\"");
        assert_eq!(lines_of(&mut decoder), ["{\"a\":1}"]);
        assert_eq!(decoder.finish().as_deref(), Some(&b"{\"b\""[..]));
    }

    #[test]
    fn refuses_endless_lines() {
        let mut decoder = LineDecoder::new();
        decoder.push(&vec![b'x'; MAX_LINE_BYTES + 1]);
        assert_eq!(decoder.next_line(), Err(LineTooLong));
    }

    #[test]
    fn excerpt_cuts_long_lines_at_char_boundaries() {
        let line = "é".repeat(300);
        let short = excerpt(line.as_bytes());
        assert_eq!(short.chars().count(), 201);
    }
}
