//! Server-Sent Events as OpenAI-compatible servers stream `/chat/completions`.
//!
//! The network cuts the bytes anywhere: an event may arrive in several reads, even inside a
//! multi-byte UTF-8 character, and one read may hold several events. [`SseDecoder`] buffers
//! bytes until a blank line completes an event, so reassembly is exact. Comment lines (`: ...`,
//! keep-alives) are skipped; `data:` lines of one event are joined with `\n` (the standard's
//! rule); `event:` names the event (`error` for a failure); `id:` and `retry:` are ignored.

use bytes::{Bytes, BytesMut};

use crate::ndjson::MAX_LINE_BYTES;

/// One complete event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SseEvent {
    /// The `event:` field, when the server named the event.
    pub(super) event: Option<String>,
    /// The `data:` lines, joined with `\n`.
    pub(super) data: Bytes,
}

/// More than [`MAX_LINE_BYTES`] buffered without completing an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct EventTooLong;

/// Splits a byte stream into [`SseEvent`]s.
#[derive(Debug, Default)]
pub(super) struct SseDecoder {
    buf: BytesMut,
    /// Bytes of `buf` already searched for a newline (so each byte is scanned once).
    scanned: usize,
    event: Option<String>,
    data: BytesMut,
    /// A `data:` field was seen (an empty `data:` still makes an event).
    has_data: bool,
}

impl SseDecoder {
    /// Appends bytes read from the network.
    pub(super) fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete event, if the buffered bytes hold one.
    pub(super) fn next_event(&mut self) -> Result<Option<SseEvent>, EventTooLong> {
        loop {
            let Some(pos) = memchr::memchr(b'\n', &self.buf[self.scanned..]) else {
                self.scanned = self.buf.len();
                if self.buf.len() + self.data.len() > MAX_LINE_BYTES {
                    return Err(EventTooLong);
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
            if line.is_empty() {
                if let Some(event) = self.dispatch() {
                    return Ok(Some(event));
                }
                continue;
            }
            self.field(&line);
            if self.data.len() > MAX_LINE_BYTES {
                return Err(EventTooLong);
            }
        }
    }

    /// At end of stream: an event the server did not close with a blank line, if any.
    pub(super) fn finish(&mut self) -> Option<SseEvent> {
        let rest = self.buf.split();
        self.scanned = 0;
        if !rest.iter().all(u8::is_ascii_whitespace) {
            let rest = rest.strip_suffix(b"\r").unwrap_or(&rest).to_vec();
            self.field(&rest);
        }
        self.dispatch()
    }

    fn field(&mut self, line: &[u8]) {
        if line.first() == Some(&b':') {
            return; // a comment: keep-alive
        }
        let (name, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"data" => {
                if self.has_data {
                    self.data.extend_from_slice(b"\n");
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            _ => {} // id, retry, unknown fields: ignored, as the standard says
        }
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = self.event.take();
        if !self.has_data {
            return None;
        }
        self.has_data = false;
        Some(SseEvent {
            event,
            data: self.data.split().freeze(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::default();
        let mut out = Vec::new();
        for chunk in chunks {
            decoder.push(chunk);
            while let Ok(Some(event)) = decoder.next_event() {
                out.push(event);
            }
        }
        out.extend(decoder.finish());
        out
    }

    fn data(event: &SseEvent) -> &[u8] {
        &event.data
    }

    #[test]
    fn splits_anywhere_reassemble_exactly() {
        let body = "data: {\"a\":\"é€😀\"}\n\n: keep-alive\n\ndata: [DONE]\n\n".as_bytes();
        let whole = events(&[body]);
        assert_eq!(whole.len(), 2);
        assert_eq!(data(&whole[0]), "{\"a\":\"é€😀\"}".as_bytes());
        assert_eq!(data(&whole[1]), b"[DONE]");
        for size in 1..body.len() {
            let chunks: Vec<&[u8]> = body.chunks(size).collect();
            assert_eq!(events(&chunks), whole, "chunks of {size} bytes");
        }
    }

    #[test]
    fn crlf_multi_line_data_named_events_and_an_unterminated_last_event() {
        let got = events(&[b"event: error\r\ndata: a\r\ndata: b\r\n\r\nid: 7\nretry: 10\ndata:x"]);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].event.as_deref(), Some("error"));
        assert_eq!(data(&got[0]), b"a\nb");
        assert_eq!(got[1].event, None);
        assert_eq!(data(&got[1]), b"x");
    }

    #[test]
    fn an_endless_event_is_refused() {
        let mut decoder = SseDecoder::default();
        let big = vec![b'x'; MAX_LINE_BYTES + 1];
        decoder.push(b"data: ");
        decoder.push(&big);
        assert_eq!(decoder.next_event(), Err(EventTooLong));
    }
}
