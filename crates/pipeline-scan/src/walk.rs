//! The walk over a file's events: which mapping is a step, which `task:` is a reference,
//! which `template:` is an include. It sees events, not text, so either reader can feed it.

use std::borrow::Cow;
use std::ops::Range;

use saphyr_parser::{Parser, ScalarStyle, Span};

use crate::{Include, IncludeKind, Lines, Problem, RawReference, Scanned, Str};

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
    key_text: Str,
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
    /// Where this mapping's part of `Walker::collecting` starts.
    collected_from: usize,
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

/// One parser event, as much of it as the walk reads. Both readers produce these: the
/// general YAML parser (`general` below) and the fast reader of plain block YAML
/// (`block.rs`). Lines are 1-based, columns 0-based characters, as the parser counts them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event<'a> {
    MappingStart {
        line: usize,
        col: usize,
    },
    SequenceStart,
    /// The end of a mapping or a sequence: the walk treats both alike.
    End,
    Scalar {
        value: Cow<'a, str>,
        style: ScalarStyle,
        line: usize,
        col: usize,
    },
    Alias,
    /// A document starts or ends: whatever is still open is settled.
    DocumentBoundary,
}

/// Reads the events of one file into references, includes and problems.
pub(crate) struct Walker<'l, 't> {
    lines: &'l Lines<'t>,
    out: Scanned,
    stack: Vec<Frame>,
    /// Keys that are themselves collections (complex keys) are skipped whole.
    skip_depth: usize,
    /// Input pairs of the open steps, innermost last: mappings open and close in turn, so
    /// each step's pairs are the end of this list when it closes, and one list serves all.
    collecting: Vec<(Str, Str)>,
}

impl<'l, 't> Walker<'l, 't> {
    pub(crate) fn new(lines: &'l Lines<'t>) -> Self {
        // Pipelines nest a dozen levels or so: one allocation holds the stack.
        Walker { lines, out: Scanned::default(), stack: Vec::with_capacity(32), skip_depth: 0, collecting: Vec::new() }
    }

    /// Includes held back until their mapping ended are put back in file order.
    pub(crate) fn finish(mut self) -> Scanned {
        self.out.includes.sort_by_key(|i| (i.line, i.column));
        self.out
    }

    /// The file stops being YAML here: what was seen before the stop still counts.
    pub(crate) fn stop(&mut self, line: u32, column: u32, message: String) {
        self.out.problems.push(Problem::Syntax { line, column, message });
        self.settle_open();
    }

    fn settle_open(&mut self) {
        while let Some(frame) = self.stack.pop() {
            if let Frame::Map(done) = frame {
                close_map(done, &mut self.stack, &mut self.out, &mut self.collecting);
            }
        }
    }

    pub(crate) fn event(&mut self, event: Event<'_>) {
        let stack = &mut self.stack;
        if self.skip_depth > 0 {
            match event {
                Event::MappingStart { .. } | Event::SequenceStart => self.skip_depth += 1,
                Event::End => {
                    self.skip_depth -= 1;
                    if self.skip_depth == 0 {
                        finish_node(stack);
                    }
                }
                _ => {}
            }
            return;
        }
        match event {
            Event::DocumentBoundary => self.settle_open(),
            Event::Alias => finish_node(stack),
            Event::Scalar { value, style, line, col } => {
                let position = self.lines.within(line, col);
                on_scalar(&mut self.out, stack, &mut self.collecting, self.lines, &value, style, position);
                finish_node(stack);
            }
            Event::SequenceStart | Event::MappingStart { .. } => {
                let start = match event {
                    Event::MappingStart { line, col } => Some(self.lines.within(line, col)),
                    _ => None,
                };
                if let Some((line, col)) = start {
                    if self.out.problems.is_empty() && starts_with_braces(self.lines, line, col) {
                        let line = line as u32;
                        let snippet = self.lines.line(line).trim().chars().take(60).collect();
                        self.out.problems.push(Problem::Handlebars { line, column: col as u32 + 1, snippet });
                    }
                }
                let (in_key_position, parent) = match stack.last() {
                    Some(Frame::Map(m)) => (m.expect_key, Some(m)),
                    _ => (false, None),
                };
                if in_key_position {
                    if let Some(Frame::Map(m)) = stack.last_mut() {
                        m.include_shape = false;
                    }
                    self.skip_depth = 1;
                    return;
                }
                let in_seq = matches!(stack.last(), Some(Frame::Seq(_))) || stack.is_empty();
                let role = role_of(stack.last(), start.is_some());
                let frame = if let Some((line, _)) = start {
                    let line = line as u32;
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
                        key_text: Str::EMPTY,
                        step_line,
                        reference: None,
                        collected_from: self.collecting.len(),
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
            Event::End => {
                if let Some(Frame::Map(done)) = stack.pop() {
                    close_map(done, stack, &mut self.out, &mut self.collecting);
                }
                finish_node(stack);
            }
        }
    }
}

/// Reads a file with the general YAML parser: any YAML, and the position of a syntax error.
pub(crate) fn general(text: &str, lines: &Lines<'_>) -> Scanned {
    let mut walker = Walker::new(lines);
    let mut parser = Parser::new_from_str(text);
    while let Some(next) = parser.next_event() {
        match next {
            Ok((event, span)) => {
                if let Some(event) = from_parser(event, span) {
                    walker.event(event);
                }
            }
            Err(e) => {
                walker.stop(e.marker().line() as u32, e.marker().col() as u32 + 1, e.info().to_string());
                break;
            }
        }
    }
    walker.finish()
}

/// The parser's event as the walk reads it; stream events carry nothing for it.
pub(crate) fn from_parser(event: saphyr_parser::Event<'_>, span: Span) -> Option<Event<'_>> {
    use saphyr_parser::Event as E;
    Some(match event {
        E::StreamStart | E::StreamEnd | E::Nothing => return None,
        E::DocumentStart(_) | E::DocumentEnd => Event::DocumentBoundary,
        E::Alias(_) => Event::Alias,
        E::Scalar(value, style, ..) => Event::Scalar { value, style, line: span.start.line(), col: span.start.col() },
        E::SequenceStart(..) => Event::SequenceStart,
        E::MappingStart(..) => Event::MappingStart { line: span.start.line(), col: span.start.col() },
        E::MappingEnd | E::SequenceEnd => Event::End,
    })
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
fn close_map(done: MapFrame, stack: &mut [Frame], out: &mut Scanned, collecting: &mut Vec<(Str, Str)>) {
    // An `inputs:` mapping leaves its pairs where they are: they are now the end of its
    // step's part. A step with a reference keeps its part; any other mapping drops it.
    if !done.inputs {
        if let Some(r) = done.reference.and_then(|i| out.references.get_mut(i)) {
            let start = out.inputs.len() as u32;
            out.inputs.extend(collecting.drain(done.collected_from.min(collecting.len())..));
            r.inputs = start..out.inputs.len() as u32;
        }
        collecting.truncate(done.collected_from);
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

fn starts_with_braces(lines: &Lines<'_>, line: usize, col: usize) -> bool {
    lines.offset(line, col).is_some_and(|at| lines.text[at..].starts_with("{{"))
}

fn on_scalar(
    out: &mut Scanned,
    stack: &mut [Frame],
    collecting: &mut Vec<(Str, Str)>,
    lines: &Lines<'_>,
    value: &str,
    style: ScalarStyle,
    (line, col): (usize, usize),
) {
    // A sequence item that is a plain mapping is handled when it starts; scalars in a sequence
    // are not references.
    let Some(Frame::Map(m)) = stack.last_mut() else { return };
    if m.expect_key {
        m.key = key_of(value);
        if m.inputs {
            m.key_text = out.keep(value);
        }
        if !matches!(m.key, Key::Template | Key::Parameters | Key::Expression) {
            m.include_shape = false;
        }
        return;
    }
    let position = (line, col);
    let line = line as u32;
    let column = col as u32 + 1;
    match m.key {
        Key::Task if m.step_like => {
            m.reference = Some(out.references.len());
            let edit_span = edit_span(lines, position, value, style);
            let value = out.keep(value);
            out.references.push(RawReference { value, line, column, step_line: m.step_line, edit_span, inputs: 0..0 });
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
            let key = std::mem::replace(&mut m.key_text, Str::EMPTY);
            let value = out.keep(value);
            collecting.push((key, value));
        }
        _ => {}
    }
}

/// The byte range of the value's own characters, when the source spells the value exactly.
fn edit_span(lines: &Lines<'_>, (line, col): (usize, usize), value: &str, style: ScalarStyle) -> Option<Range<usize>> {
    let start = lines.offset(line, col)?;
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
