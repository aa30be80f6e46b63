//! Reads one pipeline file into task references and template includes, with 1-based line and
//! column (in characters) of each value.
//!
//! It walks the YAML event stream instead of deserialising: Azure Pipelines YAML has
//! `${{ if }}` / `${{ each }}` keys, repeats them in one mapping, and puts steps wherever a
//! template parameter carries them, so a typed model would reject or miss real files. A
//! `task` key counts when its mapping is a sequence item (a step) or sits under `${{ }}` keys
//! of one.
//!
//! A `template` key is an include only where Azure Pipelines reads it as one: an item of a
//! `steps`, `jobs`, `stages` or `variables` list, under `extends`, in the `default` of a
//! `stepList`/`jobList`/`stageList`/`deploymentList` (or `step`/`job`/…) parameter, and in
//! any other list when the item is shaped like an include (only `template` and `parameters`
//! keys: a step list passed as a template parameter). Anywhere else it is data: a matrix of
//! objects with `name:` and `template:` keys, a `strategy.matrix` entry, an `object`
//! parameter's default.

use std::borrow::Cow;
use std::cell::Cell;
use std::ops::Range;

mod block;
mod walk;

pub use walk::STEP_KINDS;

/// A string the scan kept, in `Scanned::strings`: read it with `Scanned::str`. A file's strings
/// share one buffer, so a scan of a file with hundreds of steps allocates a handful of times,
/// not once per value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Str {
    start: u32,
    end: u32,
}

impl Str {
    pub const EMPTY: Str = Str { start: 0, end: 0 };
}

/// A `task:` value as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawReference {
    /// The value as YAML reads it: `Scanned::value`.
    pub value: Str,
    pub line: u32,
    pub column: u32,
    /// The first line of the step (where `- ` is), for inline suppressions.
    pub step_line: u32,
    /// Byte range of the value's text in the file, when the text is exactly the value
    /// (plain, or quoted without escapes): what `fix` may rewrite.
    pub edit_span: Option<Range<usize>>,
    /// Literal `inputs:` of the step (name, value), for advisories narrowed to some inputs: a
    /// range of `Scanned::inputs`, read with `Scanned::inputs_of`.
    pub inputs: Range<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeKind {
    Template,
    Extends,
}

/// A `template:` include (steps/jobs/stages/variables, or `extends`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    pub value: String,
    pub kind: IncludeKind,
    pub line: u32,
    pub column: u32,
}

/// Why the file is not valid pipeline YAML (TSK008).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A YAML syntax error; references before it are still reported.
    Syntax { line: u32, column: u32, message: String },
    /// Handlebars placeholders (`{{ name }}` outside `${{ }}`): a starter template, not a pipeline.
    Handlebars { line: u32, column: u32, snippet: String },
}

#[derive(Debug, Clone, Default)]
pub struct Scanned {
    pub references: Vec<RawReference>,
    /// In the order they appear in the file.
    pub includes: Vec<Include>,
    /// In the order they appear; a syntax error is always the last (the scan stops there).
    pub problems: Vec<Problem>,
    /// Every kept string, one after the other (`Str` ranges).
    strings: String,
    /// Every reference's inputs, one reference's after the other (`RawReference::inputs`).
    inputs: Vec<(Str, Str)>,
}

impl Scanned {
    /// A kept string's text.
    pub fn str(&self, s: Str) -> &str {
        self.strings.get(s.start as usize..s.end as usize).unwrap_or("")
    }

    /// A reference's value.
    pub fn value(&self, r: &RawReference) -> &str {
        self.str(r.value)
    }

    /// A reference's literal inputs (name, value), in the order written.
    pub fn inputs_of(&self, r: &RawReference) -> impl Iterator<Item = (&str, &str)> + '_ {
        let pairs = self.inputs.get(r.inputs.start as usize..r.inputs.end as usize).unwrap_or(&[]);
        pairs.iter().map(|&(name, value)| (self.str(name), self.str(value)))
    }

    /// Keeps a copy of `text` with the others. Pipeline files are read up to a few MiB, far
    /// below what 32-bit offsets hold; past that, a string would be kept as empty.
    pub(crate) fn keep(&mut self, text: &str) -> Str {
        let (Ok(start), Ok(end)) = (u32::try_from(self.strings.len()), u32::try_from(self.strings.len() + text.len()))
        else {
            return Str::EMPTY;
        };
        self.strings.push_str(text);
        Str { start, end }
    }

    /// Where the scan stopped early, if it did: the syntax error's line.
    pub fn stopped_at(&self) -> Option<u32> {
        self.problems.iter().find_map(|p| match p {
            Problem::Syntax { line, .. } => Some(*line),
            Problem::Handlebars { .. } => None,
        })
    }
}

/// Line start offsets, to turn parser markers (line, column in characters) into bytes.
pub struct Lines<'a> {
    text: &'a str,
    starts: Cow<'a, [usize]>,
    /// Columns are characters; in ASCII text they are bytes too.
    ascii: bool,
    /// The last (line, column, byte) found in non-ASCII text. The parser asks for positions
    /// in order, so going on from the last one keeps a long line linear, not quadratic.
    cursor: Cell<(usize, usize, usize)>,
}

/// Byte offsets where each line starts. Lines break where YAML breaks them: at `\n`, `\r\n`
/// and a lone `\r`, so the parser's line numbers and these offsets agree.
pub fn line_starts(text: &str) -> Vec<usize> {
    let bytes = text.as_bytes();
    // Most lines of a pipeline are shorter than 40 bytes; one allocation fits most files.
    let mut starts = Vec::with_capacity(bytes.len() / 40 + 1);
    starts.push(0);
    if memchr::memchr(b'\r', bytes).is_none() {
        // Without carriage returns only `\n` breaks lines, and a vectorised byte search finds
        // them many bytes at a time.
        starts.extend(memchr::memchr_iter(b'\n', bytes).map(|i| i + 1));
        return starts;
    }
    starts.extend(
        bytes
            .iter()
            .enumerate()
            .filter(|&(i, b)| *b == b'\n' || (*b == b'\r' && bytes.get(i + 1) != Some(&b'\n')))
            .map(|(i, _)| i + 1),
    );
    starts
}

impl<'a> Lines<'a> {
    pub fn new(text: &'a str) -> Self {
        Lines { text, starts: Cow::Owned(line_starts(text)), ascii: text.is_ascii(), cursor: Cell::new((0, 0, 0)) }
    }

    /// With offsets (from `line_starts`) and `text.is_ascii()` computed before: a caller that
    /// asks for lines of a large file once per reference would otherwise read the whole file
    /// each time.
    pub fn known(text: &'a str, starts: &'a [usize], ascii: bool) -> Self {
        debug_assert_eq!(ascii, text.is_ascii());
        Lines { text, starts: Cow::Borrowed(starts), ascii, cursor: Cell::new((0, 0, 0)) }
    }

    /// The text of a 1-based line, without its line break.
    pub fn line(&self, line: u32) -> &'a str {
        let Some(&start) = self.starts.get((line as usize).wrapping_sub(1)) else { return "" };
        let end = self.starts.get(line as usize).copied().unwrap_or(self.text.len());
        self.text[start..end].trim_end_matches(['\n', '\r'])
    }

    /// A parser position on this text. At the end of a text without a final line break, the
    /// parser counts one more line than there is (the end is a line break to it): that
    /// position is the end of the last line.
    pub(crate) fn within(&self, line: usize, col: usize) -> (usize, usize) {
        let last = self.starts.len();
        if line <= last {
            return (line, col);
        }
        (last, self.line(last as u32).chars().count())
    }

    /// Byte offset of a 1-based line and 0-based character column.
    pub fn offset(&self, line: usize, col: usize) -> Option<usize> {
        let start = *self.starts.get(line.checked_sub(1)?)?;
        if self.ascii {
            let end = self.starts.get(line).copied().unwrap_or(self.text.len());
            return (start + col <= end).then_some(start + col);
        }
        // Go on from the last position when it is on this line at or before this column.
        let (from_col, from) = match self.cursor.get() {
            (l, c, byte) if l == line && c <= col => (c, byte),
            _ => (0, start),
        };
        let rest = &self.text[from..];
        let found = match rest.char_indices().nth(col - from_col) {
            Some((i, _)) => from + i,
            None if rest.chars().count() == col - from_col => self.text.len(),
            None => return None,
        };
        self.cursor.set((line, col, found));
        Some(found)
    }
}

pub fn scan(text: &str) -> Scanned {
    scan_with(text, &Lines::new(text))
}

/// As `scan`, with the line offsets of `text` already computed.
pub fn scan_with(text: &str, lines: &Lines<'_>) -> Scanned {
    let mut out = read(text, lines);
    if out.stopped_at().is_some() {
        // Starter templates with Handlebars blocks are not YAML; blank the placeholders
        // (keeping every position) and read what is there. A syntax error that is still
        // there after blanking is a stop of its own and is kept.
        if let Some((line, column, snippet)) = first_handlebars(text, lines) {
            let blanked = blank_handlebars(text);
            let blanked_lines = Lines::new(&blanked);
            let mut again = walk::general(&blanked, &blanked_lines);
            for r in &mut again.references {
                r.edit_span = None;
            }
            again.problems.retain(|p| matches!(p, Problem::Syntax { .. }));
            again.problems.insert(0, Problem::Handlebars { line, column, snippet });
            out = again;
        }
    }
    out
}

/// Reads a file with the fast reader when it is plain block YAML (nearly every pipeline is),
/// else with the general parser. The fast reader gives up at the first thing outside what it
/// reads, before anything of its walk is kept, so the result is the general parser's either way.
fn read(text: &str, lines: &Lines<'_>) -> Scanned {
    let mut walker = walk::Walker::new(lines);
    match block::read(text, lines, &mut |event| walker.event(event)) {
        Ok(()) => walker.finish(),
        Err(block::Unsupported) => walk::general(text, lines),
    }
}

/// Where a Handlebars placeholder first appears (`{{` not part of `${{`).
fn first_handlebars(text: &str, lines: &Lines<'_>) -> Option<(u32, u32, String)> {
    let at = handlebars_ranges(text).into_iter().next()?.start;
    let line = lines.starts.partition_point(|&s| s <= at);
    let line_start = lines.starts[line - 1];
    let column = text[line_start..at].chars().count() as u32 + 1;
    Some((line as u32, column, lines.line(line as u32).trim().chars().take(60).collect()))
}

/// Byte ranges of `{{ ... }}` placeholders that are not `${{ ... }}` expressions.
fn handlebars_ranges(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(pos) = text[i..].find("{{") {
        let start = i + pos;
        let Some(len) = text[start + 2..].find("}}") else { break };
        let end = start + 2 + len + 2;
        if start == 0 || bytes[start - 1] != b'$' {
            found.push(start..end);
        }
        i = end;
    }
    found
}

/// The text with every Handlebars placeholder replaced by spaces, character for character,
/// so lines and columns stay where they were.
fn blank_handlebars(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for r in handlebars_ranges(text) {
        out.push_str(&text[last..r.start]);
        out.extend(text[r.clone()].chars().map(|c| if c == '\n' || c == '\r' { c } else { ' ' }));
        last = r.end;
    }
    out.push_str(&text[last..]);
    out
}

#[cfg(test)]
mod tests;

/// For tests and fuzzing: whether the fast reader agrees with the general parser on `text`.
/// `Ok(true)`: the fast reader read the file and its events are the parser's, position for
/// position; `Ok(false)`: it left the file to the parser; `Err`: how they differ.
#[doc(hidden)]
pub fn fast_reader_agrees(text: &str) -> Result<bool, String> {
    let lines = Lines::new(text);
    let mut fast = Vec::new();
    if block::read(text, &lines, &mut |e| fast.push(e)).is_err() {
        return Ok(false);
    }
    let mut general = Vec::new();
    for next in saphyr_parser::Parser::new_from_str(text) {
        match next {
            Ok((event, span)) => match walk::from_parser(event, span) {
                Some(walk::Event::DocumentBoundary) | None => {}
                Some(e) => general.push(e),
            },
            Err(e) => return Err(format!("the fast reader read a file the parser rejects: {e}")),
        }
    }
    match fast.iter().zip(&general).position(|(a, b)| a != b) {
        Some(i) => Err(format!("event {i}: fast {:?}, parser {:?}", fast[i], general[i])),
        None if fast.len() != general.len() => {
            Err(format!("{} events from the fast reader, {} from the parser", fast.len(), general.len()))
        }
        None => Ok(true),
    }
}
