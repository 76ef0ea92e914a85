//! Syntax highlighting of fenced code blocks: syntect's engine (pure Rust regexes, no C) over
//! two-face's syntaxes and themes, those of `bat`.
//!
//! Nothing is loaded until the first code block with a language is drawn: the syntax set
//! (about 1 MB, compressed in the binary) and a theme are then decompressed once, in
//! [`OnceLock`]s. A program that never draws one, `conductor ask` for one, pays nothing.
//!
//! Highlighted lines are cached per block, without wrapping (so a resize re-wraps them but does
//! not highlight again): a finished block by its text, and a block that is still streaming
//! together with the parser's state after its last complete line, so each new token highlights
//! only the line being written. Past [`MAX_BLOCK_BYTES`] of a block, or from a line longer than
//! [`MAX_LINE_BYTES`] on, the rest of the block is shown plain: a huge answer cannot stall a
//! frame.

use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use ratatui::style::{Color, Modifier, Style};
use syntect::highlighting::{
    FontStyle, HighlightIterator, HighlightState, Highlighter, Style as SyntectStyle,
};
use syntect::parsing::{ParseState, ScopeStack, SyntaxReference, SyntaxSet};
use two_face::theme::{EmbeddedLazyThemeSet, EmbeddedThemeName};

use crate::markdown::sanitize;
use crate::theme::CodeTheme;

/// The most bytes of one block that are highlighted; the lines after are plain. Highlighting
/// runs at about 0.5 MB/s: a block at the cap costs some 60 ms once.
pub const MAX_BLOCK_BYTES: usize = 32 * 1024;
/// The longest line that is highlighted; from such a line on, the block is plain (regexes
/// over a minified file's one line can take seconds).
pub const MAX_LINE_BYTES: usize = 4 * 1024;
/// Bytes of finished blocks kept highlighted; past it the cache starts again.
const FINISHED_BUDGET: usize = 8 * 1024 * 1024;
/// Streaming blocks whose parser state is kept.
const OPEN_BLOCKS: usize = 8;
/// Bytes a streaming line grows by before it is highlighted again; until then the new
/// characters are drawn in the terminal's colour after the part already highlighted. A line
/// costs as much to highlight as it is long, and tokens arrive a few characters at a time: this
/// keeps the work per token small. A line is highlighted exactly once it is complete.
const PARTIAL_STEP: usize = 16;

/// The style of the characters of a streaming line not highlighted yet: that of the code
/// theme's default foreground once highlighted ([`convert`] leaves it to the terminal), so that
/// plain words (most of a line) keep their colour when the line is highlighted. (Not the
/// palette's `code_block`, the colour of blocks drawn without highlighting: the dark one's
/// yellow would turn to the terminal's colour every [`PARTIAL_STEP`] bytes.)
const UNHIGHLIGHTED: Style = Style::new();

/// One highlighted source line: runs of text and their style, without the newline, tabs
/// expanded and control characters dropped.
pub type StyledLine = Vec<(String, Style)>;

/// The highlighted lines of one block.
#[derive(Debug, Clone)]
pub struct HighlightedBlock {
    /// The block's complete lines, highlighted; fewer than the block has when a cap was
    /// reached (the rest is plain).
    pub lines: Arc<Vec<StyledLine>>,
    /// The last line of a block that is still streaming, highlighted as far as it goes.
    pub partial: Option<StyledLine>,
}

/// Highlights the lines of a fenced block whose info string is `info` (`rust`, `py`,
/// `sh title="x"`, `main.rs`...). `complete`: the fence is closed; otherwise the last line is
/// still being written. `None` when the language is not one syntect knows (or no language is
/// given): the block is then shown plain.
#[must_use]
pub fn highlight(
    info: &str,
    code: &[&str],
    complete: bool,
    theme: CodeTheme,
) -> Option<HighlightedBlock> {
    let token = language_token(info)?;
    let syntaxes = syntaxes();
    let syntax = find_syntax(syntaxes, token)?;
    let (whole, partial) = match (complete, code.split_last()) {
        (false, Some((last, rest))) => (rest, Some(*last)),
        _ => (code, None),
    };
    let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    let cache = cache.get_or_insert_with(Cache::default);
    // Hashing every line is only worth it for a finished block (an open one changes each call).
    let key = complete.then(|| finished_key(theme, &syntax.name, whole));
    if let Some(key) = key
        && let Some(lines) = cache.finished.get(&key)
    {
        return Some(HighlightedBlock {
            lines: Arc::clone(lines),
            partial: None,
        });
    }
    let mut block = cache
        .take_open(theme, &syntax.name, whole)
        .unwrap_or_else(|| OpenBlock::new(theme, syntax));
    let highlighter = highlighter(theme);
    block.extend(whole, syntaxes, highlighter);
    let partial = partial.and_then(|line| block.peek(line, syntaxes, highlighter));
    let lines = Arc::clone(&block.lines);
    match key {
        Some(key) => cache.finish(key, block),
        None => cache.keep_open(block),
    }
    Some(HighlightedBlock { lines, partial })
}

/// The language word of a fence's info string: its first word, without the braces and dot of
/// `{.python}` or a `language-` prefix, and what follows a comma (`rust,no_run`).
fn language_token(info: &str) -> Option<&str> {
    let word = info.split_whitespace().next()?;
    let word = word.split(',').next()?;
    let word = word.trim_start_matches('{').trim_end_matches('}');
    let word = word.strip_prefix('.').unwrap_or(word);
    let word = word.strip_prefix("language-").unwrap_or(word);
    (!word.is_empty()).then_some(word)
}

/// Names that syntect's own lookup (by file extension, then by syntax name) misses.
const ALIASES: &[(&str, &str)] = &[
    ("shell", "sh"),
    ("console", "sh"),
    ("terminal", "sh"),
    ("shellsession", "sh"),
    ("zsh", "sh"),
    ("ksh", "sh"),
    ("python3", "py"),
    ("py3", "py"),
    ("c++", "cpp"),
    ("golang", "go"),
    ("javascript", "js"),
    ("typescript", "ts"),
    ("jsonc", "json"),
    ("json5", "json"),
    ("dockerfile", "Dockerfile"),
    ("docker", "Dockerfile"),
    ("objective-c", "m"),
    ("objc", "m"),
    ("csharp", "cs"),
    ("c#", "cs"),
    ("f#", "fs"),
    ("vim", "vim"),
    ("viml", "vim"),
    ("postgres", "sql"),
    ("postgresql", "sql"),
    ("mysql", "sql"),
    ("proto", "proto"),
];

/// Plain text by name: no highlighting, and no need to load the syntaxes to find that out.
const PLAIN: &[&str] = &["text", "txt", "plain", "plaintext", "output", "log"];

fn find_syntax<'a>(syntaxes: &'a SyntaxSet, token: &str) -> Option<&'a SyntaxReference> {
    let lower = token.to_ascii_lowercase();
    if PLAIN.contains(&lower.as_str()) {
        return None;
    }
    let token = ALIASES
        .iter()
        .find(|(alias, _)| *alias == lower)
        .map_or(token, |(_, to)| to);
    syntaxes
        .find_syntax_by_token(token)
        // A file name: `main.rs`, `Cargo.toml`.
        .or_else(|| {
            let (_, extension) = token.rsplit_once('.')?;
            syntaxes.find_syntax_by_extension(extension)
        })
        .filter(|syntax| syntax.name != "Plain Text")
}

fn syntaxes() -> &'static SyntaxSet {
    static SYNTAXES: OnceLock<SyntaxSet> = OnceLock::new();
    SYNTAXES.get_or_init(two_face::syntax::extra_newlines)
}

fn highlighter(theme: CodeTheme) -> &'static Highlighter<'static> {
    static THEMES: OnceLock<EmbeddedLazyThemeSet> = OnceLock::new();
    static DARK: OnceLock<Highlighter<'static>> = OnceLock::new();
    static LIGHT: OnceLock<Highlighter<'static>> = OnceLock::new();
    let (cell, name) = match theme {
        CodeTheme::OneHalfDark => (&DARK, EmbeddedThemeName::OneHalfDark),
        CodeTheme::OneHalfLight => (&LIGHT, EmbeddedThemeName::OneHalfLight),
    };
    cell.get_or_init(|| Highlighter::new(THEMES.get_or_init(two_face::theme::extra).get(name)))
}

/// Loads the syntaxes and `theme` now rather than for the first highlighted block (an
/// application may do it on a thread of its own; the render bench times it).
pub fn preload(theme: CodeTheme) {
    let _ = syntaxes();
    let _ = highlighter(theme);
}

static CACHE: Mutex<Option<Cache>> = Mutex::new(None);

#[derive(Default)]
struct Cache {
    finished: HashMap<u64, Arc<Vec<StyledLine>>>,
    finished_bytes: usize,
    /// Most recent first.
    open: VecDeque<OpenBlock>,
}

impl Cache {
    /// The streaming block whose lines so far begin `lines`, the longest if several.
    fn take_open(&mut self, theme: CodeTheme, syntax: &str, lines: &[&str]) -> Option<OpenBlock> {
        let found = self
            .open
            .iter()
            .enumerate()
            .filter(|(_, b)| b.theme == theme && b.syntax == syntax && b.count <= lines.len())
            // Only the lines highlighted are compared: those after are plain whatever they say.
            .filter(|(_, b)| b.source.iter().zip(lines).all(|(a, b)| a == b))
            .max_by_key(|(_, b)| b.count)
            .map(|(i, _)| i)?;
        self.open.remove(found)
    }

    fn keep_open(&mut self, block: OpenBlock) {
        self.open.push_front(block);
        self.open.truncate(OPEN_BLOCKS);
    }

    fn finish(&mut self, key: u64, block: OpenBlock) {
        if self.finished_bytes + block.bytes > FINISHED_BUDGET {
            self.finished.clear();
            self.finished_bytes = 0;
        }
        self.finished_bytes += block.bytes;
        self.finished.insert(key, block.lines);
    }
}

fn finished_key(theme: CodeTheme, syntax: &str, lines: &[&str]) -> u64 {
    let mut hasher = DefaultHasher::new();
    (theme, syntax, lines).hash(&mut hasher);
    hasher.finish()
}

/// A block being highlighted: its lines so far and the parser after the last one.
struct OpenBlock {
    theme: CodeTheme,
    syntax: String,
    /// The lines given to the highlighter; none is kept after highlighting stopped (the rest
    /// of the block is plain, whatever it says).
    source: Vec<String>,
    /// The block's complete lines seen, highlighted or not.
    count: usize,
    /// Bytes highlighted (with their newlines): what the block weighs in the cache.
    bytes: usize,
    lines: Arc<Vec<StyledLine>>,
    /// `None` once a cap is reached: the rest of the block is plain.
    state: Option<(ParseState, HighlightState)>,
    /// The line being written as last highlighted, and its runs.
    partial: Option<(String, StyledLine)>,
}

impl OpenBlock {
    fn new(theme: CodeTheme, syntax: &SyntaxReference) -> Self {
        let state = HighlightState::new(highlighter(theme), ScopeStack::new());
        Self {
            theme,
            syntax: syntax.name.clone(),
            source: Vec::new(),
            count: 0,
            bytes: 0,
            lines: Arc::new(Vec::new()),
            state: Some((ParseState::new(syntax), state)),
            partial: None,
        }
    }

    /// Highlights the lines of `whole` after those already done.
    fn extend(&mut self, whole: &[&str], syntaxes: &SyntaxSet, highlighter: &Highlighter<'_>) {
        let new = whole.get(self.count..).unwrap_or_default();
        if new.is_empty() {
            return;
        }
        self.count = whole.len();
        self.partial = None;
        if self.state.is_none() {
            return;
        }
        let lines = Arc::make_mut(&mut self.lines);
        for line in new {
            let bytes = self.bytes + line.len() + 1;
            if line.len() > MAX_LINE_BYTES || bytes > MAX_BLOCK_BYTES {
                self.state = None;
            }
            let Some((parse, highlight)) = &mut self.state else {
                break;
            };
            self.source.push((*line).to_owned());
            self.bytes = bytes;
            match highlight_line(line, parse, highlight, syntaxes, highlighter) {
                Some(styled) => lines.push(styled),
                None => self.state = None,
            }
        }
    }

    /// Highlights `line`, the one being written, without keeping the parser's state after it;
    /// while it has grown by less than [`PARTIAL_STEP`] bytes since it was last highlighted,
    /// the new characters follow the old runs unhighlighted.
    fn peek(
        &mut self,
        line: &str,
        syntaxes: &SyntaxSet,
        highlighter: &Highlighter<'_>,
    ) -> Option<StyledLine> {
        if line.len() > MAX_LINE_BYTES || self.bytes + line.len() > MAX_BLOCK_BYTES {
            return None;
        }
        if let Some((done, runs)) = &self.partial
            && let Some(tail) = line.strip_prefix(done.as_str())
            && tail.len() < PARTIAL_STEP
        {
            let mut runs = runs.clone();
            let tail = sanitize(tail);
            match runs.last_mut() {
                Some((run, style)) if *style == UNHIGHLIGHTED => run.push_str(&tail),
                _ if tail.is_empty() => {}
                _ => runs.push((tail, UNHIGHLIGHTED)),
            }
            return Some(runs);
        }
        let (parse, highlight) = self.state.as_ref()?;
        let (mut parse, mut highlight) = (parse.clone(), highlight.clone());
        let runs = highlight_line(line, &mut parse, &mut highlight, syntaxes, highlighter)?;
        self.partial = Some((line.to_owned(), runs.clone()));
        Some(runs)
    }
}

fn highlight_line(
    line: &str,
    parse: &mut ParseState,
    highlight: &mut HighlightState,
    syntaxes: &SyntaxSet,
    highlighter: &Highlighter<'_>,
) -> Option<StyledLine> {
    // The syntaxes are the "newlines" kind: each line ends with its newline.
    let text = format!("{line}\n");
    let ops = match parse.parse_line(&text, syntaxes) {
        Ok(ops) => ops,
        Err(err) => {
            tracing::debug!(%err, "highlighting stopped");
            return None;
        }
    };
    let default = highlighter.get_default().foreground;
    let mut styled: StyledLine = Vec::new();
    for (style, piece) in HighlightIterator::new(highlight, &ops, &text, highlighter) {
        let piece = piece.strip_suffix('\n').unwrap_or(piece);
        if piece.is_empty() {
            continue;
        }
        let style = convert(style, default);
        // Sanitized once here rather than on every frame that draws the line.
        let piece = sanitize(piece);
        // Spaces look the same in any colour: they join the run before them, which halves the
        // spans a line is drawn with (unless that run is underlined, which would show).
        let blank = piece.bytes().all(|b| b == b' ');
        match styled.last_mut() {
            Some((run, last))
                if *last == style
                    || (blank && !last.add_modifier.contains(Modifier::UNDERLINED)) =>
            {
                run.push_str(&piece);
            }
            _ => styled.push((piece, style)),
        }
    }
    Some(styled)
}

/// The theme's colours as the terminal's: the theme's default foreground is left to the
/// terminal (its own text colour), and no background is set.
fn convert(style: SyntectStyle, default: syntect::highlighting::Color) -> Style {
    let mut out = Style::new();
    let fg = style.foreground;
    if fg != default {
        out = out.fg(Color::Rgb(fg.r, fg.g, fg.b));
    }
    for (font, modifier) in [
        (FontStyle::BOLD, Modifier::BOLD),
        (FontStyle::ITALIC, Modifier::ITALIC),
        (FontStyle::UNDERLINE, Modifier::UNDERLINED),
    ] {
        if style.font_style.contains(font) {
            out = out.add_modifier(modifier);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Highlighting a block line by line as it streams gives what highlighting it whole does,
    /// and the line being written looks as it will once complete.
    #[test]
    fn streaming_matches_highlighting_at_once() {
        let code = [
            "/// Docs with `code`.",
            "fn main() {",
            "    let s = \"a string that",
            "spans lines\";",
            "    /* a comment",
            "       that goes on */ let n: u32 = 42;",
            "}",
        ];
        let theme = CodeTheme::OneHalfDark;
        let syntax = find_syntax(syntaxes(), "rust").unwrap();
        let mut whole = OpenBlock::new(theme, syntax);
        whole.extend(&code, syntaxes(), highlighter(theme));
        assert_eq!(whole.lines.len(), code.len());

        let mut streamed = OpenBlock::new(theme, syntax);
        for done in 0..code.len() {
            streamed.extend(&code[..done], syntaxes(), highlighter(theme));
            let partial = streamed.peek(code[done], syntaxes(), highlighter(theme));
            assert_eq!(partial.as_ref(), Some(&whole.lines[done]), "line {done}");
            // As the tokens arrive: the text is always all there, highlighted or not yet.
            let line = code[done];
            for end in (0..line.len()).filter(|&i| line.is_char_boundary(i)) {
                let runs = streamed
                    .peek(&line[..end], syntaxes(), highlighter(theme))
                    .unwrap();
                let text: String = runs.iter().map(|(t, _)| t.as_str()).collect();
                assert_eq!(text, line[..end]);
            }
        }
        streamed.extend(&code, syntaxes(), highlighter(theme));
        assert_eq!(streamed.lines, whole.lines);
    }

    #[test]
    fn language_words() {
        assert_eq!(language_token("rust"), Some("rust"));
        assert_eq!(language_token("rust,no_run"), Some("rust"));
        assert_eq!(language_token("{.python}"), Some("python"));
        assert_eq!(language_token("language-go"), Some("go"));
        assert_eq!(language_token("sh title=\"x\""), Some("sh"));
        assert_eq!(language_token("  "), None);
    }

    #[test]
    fn aliases_extensions_and_file_names_find_a_syntax() {
        let set = syntaxes();
        let name = |token: &str| find_syntax(set, token).map(|s| s.name.clone());
        assert_eq!(name("rust").as_deref(), Some("Rust"));
        assert_eq!(name("rs").as_deref(), Some("Rust"));
        assert_eq!(name("py").as_deref(), Some("Python"));
        assert_eq!(name("Python").as_deref(), Some("Python"));
        assert_eq!(name("python3").as_deref(), Some("Python"));
        assert!(
            name("sh").is_some_and(|n| n.contains("bash")),
            "{:?}",
            name("sh")
        );
        assert_eq!(name("shell"), name("sh"));
        assert_eq!(name("bash"), name("sh"));
        assert_eq!(name("Cargo.toml").as_deref(), Some("TOML"));
        assert_eq!(name("ts").as_deref(), Some("TypeScript"));
        assert_eq!(name("typescript").as_deref(), Some("TypeScript"));
        assert_eq!(name("text"), None);
        assert_eq!(name("no-such-language"), None);
    }

    /// A block far over the cap weighs in the cache only what was highlighted of it, keeps no
    /// copy of its plain lines, and does not push the other blocks out.
    #[test]
    fn a_huge_block_weighs_only_what_was_highlighted() {
        let theme = CodeTheme::OneHalfLight;
        let small = ["{\"cached\": \"after a huge block\"}"];
        assert!(highlight("json", &small, true, theme).is_some());
        let row = "{\"key\": \"value\", \"n\": 12345},";
        let huge: Vec<&str> = std::iter::repeat_n(row, FINISHED_BUDGET / row.len() + 1).collect();
        // Streamed, then finished: the open block keeps only the lines it highlighted.
        assert!(highlight("json", &huge, false, theme).is_some());
        {
            let cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
            let open = cache
                .as_ref()
                .unwrap()
                .open
                .iter()
                .find(|b| b.count + 1 == huge.len());
            let open = open.expect("the huge block is open");
            assert!(
                open.source.len() * row.len() <= MAX_BLOCK_BYTES,
                "{}",
                open.source.len()
            );
            assert!(open.bytes <= MAX_BLOCK_BYTES);
        }
        let done = highlight("json", &huge, true, theme).unwrap();
        assert!(done.lines.len() * row.len() <= MAX_BLOCK_BYTES);
        let cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
        let cache = cache.as_ref().unwrap();
        let key = finished_key(theme, "JSON", &small);
        assert!(
            cache.finished.contains_key(&key),
            "the small block was flushed"
        );
        assert!(
            cache
                .finished
                .contains_key(&finished_key(theme, "JSON", &huge))
        );
    }

    /// A plain word at the end of a streaming line is drawn in the colour it keeps once the
    /// line is highlighted, on either code theme.
    #[test]
    fn the_unhighlighted_tail_has_the_colour_of_plain_code() {
        let syntax = find_syntax(syntaxes(), "rust").unwrap();
        for theme in [CodeTheme::OneHalfDark, CodeTheme::OneHalfLight] {
            let mut block = OpenBlock::new(theme, syntax);
            block.extend(&["fn main() {"], syntaxes(), highlighter(theme));
            let start = "    let total = count";
            block.peek(start, syntaxes(), highlighter(theme)).unwrap();
            let grown = "    let total = counter";
            let streamed = block.peek(grown, syntaxes(), highlighter(theme)).unwrap();
            let (tail, tail_style) = streamed.last().unwrap();
            assert!(tail.ends_with("er"), "{streamed:?}");
            let mut fresh = OpenBlock::new(theme, syntax);
            fresh.extend(&["fn main() {"], syntaxes(), highlighter(theme));
            let whole = fresh.peek(grown, syntaxes(), highlighter(theme)).unwrap();
            let (word, word_style) = whole.last().unwrap();
            assert!(word.ends_with("counter"), "{whole:?}");
            assert_eq!(tail_style, word_style, "{theme:?}");
        }
    }
}
