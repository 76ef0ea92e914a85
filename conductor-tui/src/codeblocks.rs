//! The fenced code blocks of a message, numbered for `/copy N`.
//!
//! Found with the same fence rules the renderer uses (a line that starts, after indentation,
//! with three or more backticks or tildes opens a block; a run of the same character at least
//! as long closes it; an unclosed block runs to the end), so block N here is the N-th block
//! drawn on the screen.

/// One fenced code block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeBlock {
    /// The info string's first word (`rust`), empty when none.
    pub lang: String,
    /// The code, lines joined with `\n`, without the fences.
    pub code: String,
}

/// The fenced code blocks of `text`, in order.
#[must_use]
pub fn code_blocks(text: &str) -> Vec<CodeBlock> {
    let mut blocks = Vec::new();
    let mut lines = text.split('\n');
    while let Some(raw) = lines.next() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let Some((fence, info)) = fence_open(line.trim_start()) else {
            continue;
        };
        let mut code = Vec::new();
        for next in lines.by_ref() {
            let next = next.strip_suffix('\r').unwrap_or(next);
            if fence_closes(next.trim_start(), fence) {
                break;
            }
            code.push(next);
        }
        blocks.push(CodeBlock {
            lang: info.split_whitespace().next().unwrap_or("").to_owned(),
            code: code.join("\n"),
        });
    }
    blocks
}

/// Counts the blocks [`code_blocks`] finds in a text that grows at its end (an answer that
/// streams), reading each complete line once: the count for the text so far is had for the
/// cost of the text added since the last call.
#[derive(Debug, Clone, Default)]
pub struct BlockCounter {
    /// Bytes of complete lines read.
    read: usize,
    /// Blocks opened in them.
    blocks: usize,
    /// The fence of the block open at `read`, if any.
    open: Option<String>,
}

impl BlockCounter {
    /// The number of blocks in `text`, which extends the text of the last call; a text that
    /// is shorter (another text) is counted from its start.
    pub fn count(&mut self, text: &str) -> usize {
        if text.len() < self.read || !text.is_char_boundary(self.read) {
            *self = Self::default();
        }
        let done = text.rfind('\n').map_or(0, |i| i + 1).max(self.read);
        for raw in text[self.read..done].split_terminator('\n') {
            self.read_line(raw.strip_suffix('\r').unwrap_or(raw));
        }
        self.read = done;
        // The line being written opens a block as soon as it is a fence.
        let last = &text[done..];
        let last = last.strip_suffix('\r').unwrap_or(last);
        let opens = self.open.is_none() && fence_open(last.trim_start()).is_some();
        self.blocks + usize::from(opens)
    }

    fn read_line(&mut self, line: &str) {
        let trimmed = line.trim_start();
        match &self.open {
            Some(fence) => {
                if fence_closes(trimmed, fence) {
                    self.open = None;
                }
            }
            None => {
                if let Some((fence, _)) = fence_open(trimmed) {
                    self.open = Some(fence.to_owned());
                    self.blocks += 1;
                }
            }
        }
    }
}

/// `` ```rust `` → (the fence, the info string).
fn fence_open(trimmed: &str) -> Option<(&str, &str)> {
    let first = trimmed.chars().next()?;
    if first != '`' && first != '~' {
        return None;
    }
    let len = trimmed.len() - trimmed.trim_start_matches(first).len();
    if len < 3 {
        return None;
    }
    let (fence, info) = trimmed.split_at(len);
    // A backtick fence's info string cannot contain backticks (CommonMark).
    if first == '`' && info.contains('`') {
        return None;
    }
    Some((fence, info.trim()))
}

fn fence_closes(trimmed: &str, fence: &str) -> bool {
    let Some(first) = fence.chars().next() else {
        return false;
    };
    let run = trimmed.len() - trimmed.trim_start_matches(first).len();
    run >= fence.len() && trimmed[run..].trim().is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_in_order_with_their_language() {
        let text = "Two:\n\n```rust\nfn a() {}\n```\n\ntext\n  ~~~~\nx = 1\n~~~\ny\n~~~~\n";
        let blocks = code_blocks(text);
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].lang, "rust");
        assert_eq!(blocks[0].code, "fn a() {}");
        // A shorter closing run does not close the block.
        assert_eq!(blocks[1].code, "x = 1\n~~~\ny");
    }

    #[test]
    fn an_unclosed_block_runs_to_the_end_and_inline_code_is_no_block() {
        assert!(code_blocks("use `x` and ``y``").is_empty());
        let blocks = code_blocks("```\nstill streaming\n");
        assert_eq!(blocks[0].code, "still streaming\n");
    }

    /// Fed a text a piece at a time, cut anywhere, the counter says what [`code_blocks`] says
    /// of the text so far.
    #[test]
    fn the_counter_follows_a_growing_text() {
        let text = "Two:\r\n\n```rust\nfn a() {}\n```\n\ntext\n  ~~~~\nx = 1\n~~~\ny\n~~~~\n\
                    ``inline`` then\n````\n```\n````\nend ```x\n```";
        for step in 1..8 {
            let mut counter = BlockCounter::default();
            let mut end = 0;
            while end < text.len() {
                end = (end + step).min(text.len());
                let so_far = &text[..end];
                assert_eq!(
                    counter.count(so_far),
                    code_blocks(so_far).len(),
                    "{so_far:?}"
                );
            }
        }
        let mut counter = BlockCounter::default();
        assert_eq!(counter.count(text), code_blocks(text).len());
        assert_eq!(
            counter.count("```\n"),
            1,
            "another, shorter text is counted anew"
        );
    }
}
