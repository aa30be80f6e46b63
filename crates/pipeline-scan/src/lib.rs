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

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// A `task:` value as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawReference {
    pub value: String,
    pub line: u32,
    pub column: u32,
    /// The first line of the step (where `- ` is), for inline suppressions.
    pub step_line: u32,
    /// Byte range of the value's text in the file, when the text is exactly the value
    /// (plain, or quoted without escapes): what `fix` may rewrite.
    pub edit_span: Option<Range<usize>>,
    /// Literal `inputs:` of the step (name, value), for advisories narrowed to some inputs.
    pub inputs: Vec<(String, String)>,
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
}

impl Scanned {
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
    if !bytes.contains(&b'\r') {
        // Without carriage returns only `\n` breaks lines, and a byte search finds them fast.
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
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

    /// With offsets computed before by `line_starts` for this text.
    pub fn with_starts(text: &'a str, starts: &'a [usize]) -> Self {
        Lines { text, starts: Cow::Borrowed(starts), ascii: text.is_ascii(), cursor: Cell::new((0, 0, 0)) }
    }

    /// The text of a 1-based line, without its line break.
    pub fn line(&self, line: u32) -> &'a str {
        let Some(&start) = self.starts.get((line as usize).wrapping_sub(1)) else { return "" };
        let end = self.starts.get(line as usize).copied().unwrap_or(self.text.len());
        self.text[start..end].trim_end_matches(['\n', '\r'])
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
    let mut out = walk(text, lines);
    if out.stopped_at().is_some() {
        // Starter templates with Handlebars blocks are not YAML; blank the placeholders
        // (keeping every position) and read what is there. A syntax error that is still
        // there after blanking is a stop of its own and is kept.
        if let Some((line, column, snippet)) = first_handlebars(text, lines) {
            let blanked = blank_handlebars(text);
            let blanked_lines = Lines::new(&blanked);
            let mut again = walk(&blanked, &blanked_lines);
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    None,
    Task,
    Template,
    Inputs,
    Extends,
    Expression,
    /// `steps`, `jobs`, `stages`, `variables`: their items may be template includes.
    List,
    Parameters,
    Default,
    Type,
    Other,
}

/// Whether a `template:` key in a mapping is an include, from where the mapping sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Not a list item: a plain mapping, whose `template:` is data.
    Plain,
    /// An item of a `steps`/`jobs`/`stages`/`variables` list: an include.
    List,
    /// In a parameter declaration's `default`: an include when the declared type is a step,
    /// job, stage or deployment (list), decided when the declaration ends.
    Default,
    /// An item of the root `parameters` list: a parameter declaration.
    Declaration,
    /// An item of any other list: an include only when shaped like one.
    Other,
}

/// The keys that make a mapping an Azure Pipelines step, one per step (`task`, `script`, …,
/// `template` for a steps template).
pub const STEP_KINDS: &[&str] = &[
    "task",
    "script",
    "bash",
    "pwsh",
    "powershell",
    "checkout",
    "download",
    "downloadBuild",
    "getPackage",
    "publish",
    "reviewApp",
    "template",
];

/// Declared parameter types whose values are steps, jobs, stages or deployments.
const LIST_TYPES: &[&str] =
    &["steplist", "joblist", "stagelist", "deploymentlist", "step", "job", "stage", "deployment"];

struct MapFrame {
    /// A step (or job/stage/variable item), or inserted into one through `${{ }}` keys.
    step_like: bool,
    /// Directly under `extends:` (or `${{ }}` keys below it).
    extends: bool,
    /// The `inputs:` mapping of a step: its scalar pairs are collected.
    inputs: bool,
    expect_key: bool,
    key: Key,
    key_text: String,
    /// The first line of the step this mapping belongs to.
    step_line: u32,
    role: Role,
    /// The document's top mapping (where `parameters` declares parameters).
    root: bool,
    /// Every key so far is `template`, `parameters` or a `${{ }}` expression.
    include_shape: bool,
    /// A declaration's `type` names a step/job/stage/deployment (list) type.
    list_type: bool,
    /// Includes whose fate is decided when this mapping (or its declaration) ends.
    pending: Vec<Include>,
    /// Index of this step's reference, to attach its inputs.
    reference: Option<usize>,
    collected: Vec<(String, String)>,
}

enum Frame {
    Seq(Role),
    Map(MapFrame),
}

fn key_of(text: &str) -> Key {
    match text {
        "task" => Key::Task,
        "template" => Key::Template,
        "inputs" => Key::Inputs,
        "extends" => Key::Extends,
        "steps" | "jobs" | "stages" | "variables" => Key::List,
        "parameters" => Key::Parameters,
        "default" => Key::Default,
        "type" => Key::Type,
        t if t.starts_with("${{") => Key::Expression,
        _ => Key::Other,
    }
}

fn walk(text: &str, lines: &Lines<'_>) -> Scanned {
    let mut out = Scanned::default();
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    // Keys that are themselves collections (complex keys) are skipped whole.
    let mut skip_depth = 0usize;
    while let Some(next) = parser.next_event() {
        let (event, span) = match next {
            Ok(pair) => pair,
            Err(e) => {
                out.problems.push(Problem::Syntax {
                    line: e.marker().line() as u32,
                    column: e.marker().col() as u32 + 1,
                    message: e.info().to_string(),
                });
                // What was seen before the stop still counts: settle the open mappings.
                while let Some(frame) = stack.pop() {
                    if let Frame::Map(done) = frame {
                        close_map(done, &mut stack, &mut out);
                    }
                }
                break;
            }
        };
        if skip_depth > 0 {
            match event {
                Event::MappingStart(..) | Event::SequenceStart(..) => skip_depth += 1,
                Event::MappingEnd | Event::SequenceEnd => {
                    skip_depth -= 1;
                    if skip_depth == 0 {
                        finish_node(&mut stack);
                    }
                }
                _ => {}
            }
            continue;
        }
        match event {
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
            Event::DocumentStart(_) | Event::DocumentEnd => {
                while let Some(frame) = stack.pop() {
                    if let Frame::Map(done) = frame {
                        close_map(done, &mut stack, &mut out);
                    }
                }
            }
            Event::Alias(_) => finish_node(&mut stack),
            Event::Scalar(value, style, ..) => {
                on_scalar(&mut out, &mut stack, lines, &value, style, span);
                finish_node(&mut stack);
            }
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                let is_map = matches!(event, Event::MappingStart(..));
                if is_map && out.problems.is_empty() && starts_with_braces(lines, span) {
                    let line = span.start.line() as u32;
                    let snippet = lines.line(line).trim().chars().take(60).collect();
                    out.problems.push(Problem::Handlebars { line, column: span.start.col() as u32 + 1, snippet });
                }
                let (in_key_position, parent) = match stack.last() {
                    Some(Frame::Map(m)) => (m.expect_key, Some(m)),
                    _ => (false, None),
                };
                if in_key_position {
                    if let Some(Frame::Map(m)) = stack.last_mut() {
                        m.include_shape = false;
                    }
                    skip_depth = 1;
                    continue;
                }
                let in_seq = matches!(stack.last(), Some(Frame::Seq(_))) || stack.is_empty();
                let role = role_of(stack.last(), is_map);
                let frame = if is_map {
                    let line = span.start.line() as u32;
                    let (step_like, extends, inputs, step_line) = match parent {
                        Some(p) => (
                            p.key == Key::Expression && p.step_like,
                            p.key == Key::Extends || (p.key == Key::Expression && p.extends),
                            p.key == Key::Inputs && p.step_like,
                            if p.key == Key::Expression && p.step_like { p.step_line } else { line },
                        ),
                        None => (in_seq && !stack.is_empty(), false, false, line),
                    };
                    Frame::Map(MapFrame {
                        step_like,
                        extends,
                        inputs,
                        expect_key: true,
                        key: Key::None,
                        key_text: String::new(),
                        step_line,
                        reference: None,
                        collected: Vec::new(),
                        role,
                        root: stack.is_empty(),
                        include_shape: true,
                        list_type: false,
                        pending: Vec::new(),
                    })
                } else {
                    Frame::Seq(role)
                };
                stack.push(frame);
            }
            Event::MappingEnd | Event::SequenceEnd => {
                if let Some(Frame::Map(done)) = stack.pop() {
                    close_map(done, &mut stack, &mut out);
                }
                finish_node(&mut stack);
            }
        }
    }
    // Includes held back until their mapping ended are back in file order.
    out.includes.sort_by_key(|i| (i.line, i.column));
    out
}

/// The role of a mapping or sequence that starts under `parent`.
fn role_of(parent: Option<&Frame>, is_map: bool) -> Role {
    match parent {
        None => {
            if is_map {
                Role::Plain
            } else {
                Role::Other
            }
        }
        Some(Frame::Seq(Role::Declaration)) if is_map => Role::Declaration,
        Some(Frame::Seq(Role::Declaration)) => Role::Other,
        // Items share their list's role; a list in a list is some other list.
        Some(Frame::Seq(role)) if is_map => *role,
        Some(Frame::Seq(_)) => Role::Other,
        Some(Frame::Map(p)) => match p.key {
            // `${{ if }}` / `${{ each }}` insert into whatever holds them.
            Key::Expression if p.role != Role::Declaration => match (p.role, is_map) {
                (Role::Plain, false) => Role::Other,
                (role, _) => role,
            },
            Key::Default if p.role == Role::Declaration => Role::Default,
            _ if is_map => Role::Plain,
            Key::List => Role::List,
            Key::Parameters if p.root => Role::Declaration,
            _ => Role::Other,
        },
    }
}

/// A mapping ended: hand its step inputs to its step, and settle the includes it held back.
fn close_map(done: MapFrame, stack: &mut [Frame], out: &mut Scanned) {
    if done.inputs {
        if let Some(Frame::Map(step)) = stack.last_mut() {
            step.collected.extend(done.collected);
        }
    } else if let Some(i) = done.reference {
        if let Some(r) = out.references.get_mut(i) {
            r.inputs = done.collected;
        }
    }
    match done.role {
        Role::Other if done.include_shape => out.includes.extend(done.pending),
        Role::Declaration if done.list_type => out.includes.extend(done.pending),
        // Held by the declaration, which knows its type only once it has ended.
        Role::Default => {
            let declaration = stack.iter_mut().rev().find_map(|f| match f {
                Frame::Map(m) if m.role == Role::Declaration => Some(m),
                _ => None,
            });
            if let Some(d) = declaration {
                d.pending.extend(done.pending);
            }
        }
        _ => {}
    }
}

/// A node just ended: the enclosing mapping now expects a key again (or a value, after a key).
fn finish_node(stack: &mut [Frame]) {
    if let Some(Frame::Map(m)) = stack.last_mut() {
        m.expect_key = !m.expect_key;
        if m.expect_key {
            m.key = Key::None;
        }
    }
}

fn starts_with_braces(lines: &Lines<'_>, span: Span) -> bool {
    lines.offset(span.start.line(), span.start.col()).is_some_and(|at| lines.text[at..].starts_with("{{"))
}

fn on_scalar(out: &mut Scanned, stack: &mut [Frame], lines: &Lines<'_>, value: &str, style: ScalarStyle, span: Span) {
    // A sequence item that is a plain mapping is handled when it starts; scalars in a sequence
    // are not references.
    let Some(Frame::Map(m)) = stack.last_mut() else { return };
    if m.expect_key {
        m.key = key_of(value);
        if m.inputs {
            m.key_text = value.to_string();
        }
        if !matches!(m.key, Key::Template | Key::Parameters | Key::Expression) {
            m.include_shape = false;
        }
        return;
    }
    let line = span.start.line() as u32;
    let column = span.start.col() as u32 + 1;
    match m.key {
        Key::Task if m.step_like => {
            m.reference = Some(out.references.len());
            out.references.push(RawReference {
                value: value.to_string(),
                line,
                column,
                step_line: m.step_line,
                edit_span: edit_span(lines, span, value, style),
                inputs: Vec::new(),
            });
        }
        Key::Template if m.extends || m.role == Role::List => out.includes.push(Include {
            value: value.to_string(),
            kind: if m.extends { IncludeKind::Extends } else { IncludeKind::Template },
            line,
            column,
        }),
        Key::Template if matches!(m.role, Role::Other | Role::Default) => {
            m.pending.push(Include { value: value.to_string(), kind: IncludeKind::Template, line, column })
        }
        Key::Type if m.role == Role::Declaration => {
            m.list_type = LIST_TYPES.iter().any(|t| value.trim().eq_ignore_ascii_case(t));
        }
        _ if m.inputs
            && matches!(style, ScalarStyle::Plain | ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted) =>
        {
            let key = std::mem::take(&mut m.key_text);
            m.collected.push((key, value.to_string()));
        }
        _ => {}
    }
}

/// The byte range of the value's own characters, when the source spells the value exactly.
fn edit_span(lines: &Lines<'_>, span: Span, value: &str, style: ScalarStyle) -> Option<Range<usize>> {
    let start = lines.offset(span.start.line(), span.start.col())?;
    let inner = match style {
        ScalarStyle::Plain => start,
        ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => start + 1,
        _ => return None,
    };
    let end = inner.checked_add(value.len())?;
    let slice = lines.text.get(inner..end)?;
    let closing_ok = match style {
        ScalarStyle::SingleQuoted => lines.text[end..].starts_with('\'') && !value.contains('\''),
        ScalarStyle::DoubleQuoted => lines.text[end..].starts_with('"') && !value.contains(['\\', '"']),
        _ => true,
    };
    (slice == value && closing_ok && !value.contains('\n')).then_some(inner..end)
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
