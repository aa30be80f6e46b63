//! Reads one pipeline file into task references and template includes, with 1-based line and
//! column (in characters) of each value.
//!
//! It walks the YAML event stream instead of deserialising: Azure Pipelines YAML has
//! `${{ if }}` / `${{ each }}` keys, repeats them in one mapping, and puts steps wherever a
//! template parameter carries them, so a typed model would reject or miss real files. A
//! `task` key counts when its mapping is a sequence item (a step) or sits under `${{ }}` keys
//! of one; `template` keys count there and under `extends`.

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
    pub includes: Vec<Include>,
    pub problem: Option<Problem>,
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
    let mut starts = vec![0];
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
    if let Some(Problem::Syntax { .. }) = out.problem {
        // Starter templates with Handlebars blocks are not YAML; blank the placeholders
        // (keeping every position) and read what is there.
        if let Some((line, column, snippet)) = first_handlebars(text, lines) {
            let blanked = blank_handlebars(text);
            let blanked_lines = Lines::new(&blanked);
            let mut again = walk(&blanked, &blanked_lines);
            for r in &mut again.references {
                r.edit_span = None;
            }
            again.problem = Some(Problem::Handlebars { line, column, snippet });
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
    Other,
}

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
    /// Index of this step's reference, to attach its inputs.
    reference: Option<usize>,
    collected: Vec<(String, String)>,
}

enum Frame {
    Seq,
    Map(MapFrame),
}

fn key_of(text: &str) -> Key {
    match text {
        "task" => Key::Task,
        "template" => Key::Template,
        "inputs" => Key::Inputs,
        "extends" => Key::Extends,
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
                out.problem = Some(Problem::Syntax {
                    line: e.marker().line() as u32,
                    column: e.marker().col() as u32 + 1,
                    message: e.info().to_string(),
                });
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
            Event::DocumentStart(_) | Event::DocumentEnd => stack.clear(),
            Event::Alias(_) => finish_node(&mut stack),
            Event::Scalar(value, style, ..) => {
                on_scalar(&mut out, &mut stack, lines, &value, style, span);
                finish_node(&mut stack);
            }
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                let is_map = matches!(event, Event::MappingStart(..));
                if is_map && out.problem.is_none() && starts_with_braces(lines, span) {
                    let line = span.start.line() as u32;
                    let snippet = lines.line(line).trim().chars().take(60).collect();
                    out.problem = Some(Problem::Handlebars { line, column: span.start.col() as u32 + 1, snippet });
                }
                let (in_key_position, parent) = match stack.last() {
                    Some(Frame::Map(m)) => (m.expect_key, Some(m)),
                    _ => (false, None),
                };
                if in_key_position {
                    skip_depth = 1;
                    continue;
                }
                let in_seq = matches!(stack.last(), Some(Frame::Seq)) || stack.is_empty();
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
                    })
                } else {
                    Frame::Seq
                };
                stack.push(frame);
            }
            Event::MappingEnd | Event::SequenceEnd => {
                if let Some(Frame::Map(done)) = stack.pop() {
                    if done.inputs {
                        if let Some(Frame::Map(step)) = stack.last_mut() {
                            step.collected.extend(done.collected);
                        }
                    } else if let Some(i) = done.reference {
                        if let Some(r) = out.references.get_mut(i) {
                            r.inputs = done.collected;
                        }
                    }
                }
                finish_node(&mut stack);
            }
        }
    }
    out
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
        Key::Template if m.step_like || m.extends => out.includes.push(Include {
            value: value.to_string(),
            kind: if m.extends { IncludeKind::Extends } else { IncludeKind::Template },
            line,
            column,
        }),
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
mod tests {
    use super::*;

    fn refs(text: &str) -> Vec<(String, u32, u32)> {
        scan(text).references.into_iter().map(|r| (r.value, r.line, r.column)).collect()
    }

    #[test]
    fn steps_jobs_stages_and_deployment_hooks() {
        let text = "\
trigger: none
steps:
- task: Docker@2
  inputs:
    command: push
stages:
- stage: Build
  jobs:
  - job: A
    steps:
    - task: AzureIoTEdge@2.238.1  # pinned
  - deployment: Deploy
    strategy:
      canary:
        increments: [10]
        deploy:
          steps:
          - task: HelmDeploy@0
        on:
          failure:
            steps:
            - task: 'Kubernetes@1'
";
        assert_eq!(
            refs(text),
            [
                ("Docker@2".into(), 3, 9),
                ("AzureIoTEdge@2.238.1".into(), 11, 13),
                ("HelmDeploy@0".into(), 18, 19),
                ("Kubernetes@1".into(), 22, 21)
            ]
        );
        let scanned = scan(text);
        assert_eq!(scanned.references[0].inputs, [("command".to_string(), "push".to_string())]);
        assert_eq!(scanned.references[0].step_line, 3);
        assert!(scanned.problem.is_none());
    }

    #[test]
    fn conditional_and_each_keys_even_when_repeated() {
        let text = "\
steps:
- ${{ if eq(parameters.a, true) }}:
  - task: A@1
- ${{ if eq(parameters.a, true) }}:
  - task: B@2
- ${{ each s in parameters.steps }}:
  - ${{ s }}
- task: C@3
  ${{ if parameters.x }}:
    displayName: x
- ${{ if true }}:
    task: D@4
parameters:
- name: steps
  type: stepList
  default:
  - task: E@5
";
        let names: Vec<String> = refs(text).into_iter().map(|r| r.0).collect();
        assert_eq!(names, ["A@1", "B@2", "C@3", "D@4", "E@5"]);
    }

    #[test]
    fn tasks_inside_inputs_scripts_and_comments_are_not_references() {
        let text = "\
steps:
# - task: Commented@1
- script: |
    task: NotAStep@1
- task: Real@1
  inputs:
    task: AnInput@1
env:
  task: NotAStep@2
";
        assert_eq!(refs(text), [("Real@1".into(), 5, 9)]);
    }

    #[test]
    fn templates_and_extends() {
        let text = "\
extends:
  ${{ if true }}:
    template: a.yml@templates
  ${{ else }}:
    template: /b.yml
jobs:
- template: jobs/build.yml
  parameters:
    steps:
    - template: steps.yml
variables:
- template: vars.yml
";
        let s = scan(text);
        let inc: Vec<(&str, IncludeKind, u32)> =
            s.includes.iter().map(|i| (i.value.as_str(), i.kind, i.line)).collect();
        assert_eq!(
            inc,
            [
                ("a.yml@templates", IncludeKind::Extends, 3),
                ("/b.yml", IncludeKind::Extends, 5),
                ("jobs/build.yml", IncludeKind::Template, 7),
                ("steps.yml", IncludeKind::Template, 10),
                ("vars.yml", IncludeKind::Template, 12),
            ]
        );
    }

    #[test]
    fn crlf_anchors_documents_flow_and_unicode_columns() {
        let text = "steps:\r\n- task: \"A@1\"  # c\r\n- &s\r\n  task: B@2\r\n- *s\r\n---\r\nsteps: [{task: C@3}]\r\n# é\r\n- task: x\r\n";
        let s =
            scan("steps:\r\n- task: \"A@1\"  # c\r\n- &s\r\n  task: B@2\r\n- *s\r\n---\r\nsteps: [{task: C@3}]\r\n");
        assert_eq!(
            s.references.iter().map(|r| (r.value.as_str(), r.line, r.column)).collect::<Vec<_>>(),
            [("A@1", 2, 9), ("B@2", 4, 9), ("C@3", 7, 16)]
        );
        let a = &s.references[0];
        let src = "steps:\r\n- task: \"A@1\"  # c\r\n";
        assert_eq!(&src[a.edit_span.clone().unwrap()], "A@1");
        assert!(scan(text).problem.is_some(), "a trailing sequence under a mapping is a syntax error");
        let u = scan("steps:\n- displayName: é\n  task: ÉTask@1\n");
        assert_eq!(u.references[0].column, 9);
        assert_eq!(
            &"steps:\n- displayName: é\n  task: ÉTask@1\n"[u.references[0].edit_span.clone().unwrap()],
            "ÉTask@1"
        );
    }

    #[test]
    fn syntax_errors_keep_earlier_references() {
        let s = scan("steps:\n- task: A@1\n- task: B@2\n  inputs: [unclosed\n- task: C@3\n");
        match s.problem {
            Some(Problem::Syntax { line, .. }) => assert!(line >= 4, "{line}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(s.references.iter().map(|r| r.value.as_str()).collect::<Vec<_>>(), ["A@1", "B@2"]);
    }

    #[test]
    fn handlebars_templates() {
        let valid_yaml = "trigger:\n- {{ branch }}\nsteps:\n- task: NuGetCommand@2\n";
        let s = scan(valid_yaml);
        assert_eq!(s.problem, Some(Problem::Handlebars { line: 2, column: 3, snippet: "- {{ branch }}".into() }));
        assert_eq!(s.references.len(), 1);
        let blocks = "variables:\n  x: '{{ a.b }}'\n  {{#if reviewApp}}\n  y: 1\n  {{/if}}\nsteps:\n- task: Docker@2\n";
        let s = scan(blocks);
        assert!(matches!(s.problem, Some(Problem::Handlebars { line: 2, .. })), "{:?}", s.problem);
        assert_eq!(refs(blocks), [("Docker@2".into(), 7, 9)]);
        assert!(scan("steps:\n- script: echo ${{ parameters.x }}\n").problem.is_none());
    }

    #[test]
    fn edit_spans_only_when_the_text_is_the_value() {
        let text = "steps:\n- task: 'A@1'\n- task: \"B@2\"\n- task: >\n    C@3\n- task: D@4 # x\n";
        let s = scan(text);
        let spans: Vec<Option<&str>> = s.references.iter().map(|r| r.edit_span.clone().map(|sp| &text[sp])).collect();
        assert_eq!(spans, [Some("A@1"), Some("B@2"), None, Some("D@4")]);
    }

    #[test]
    fn lone_carriage_returns_break_lines_as_yaml_does() {
        let text = "steps:\r- task: A@1\r- displayName: é\r  task: 'B@2'\r";
        let s = scan(text);
        assert_eq!(
            s.references.iter().map(|r| (r.value.as_str(), r.line, r.column)).collect::<Vec<_>>(),
            [("A@1", 2, 9), ("B@2", 4, 9)]
        );
        for r in &s.references {
            assert_eq!(&text[r.edit_span.clone().unwrap()], r.value);
        }
        // Found by fuzzing: the parser's error line lay past the last line counted here.
        let text = "\x01\r\x01\r\r\x00";
        match scan(text).problem {
            Some(Problem::Syntax { line, .. }) => assert!(line as usize <= line_starts(text).len(), "{line}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn positions_on_one_long_non_ascii_line_stay_linear() {
        // Found by fuzzing: each position on a non-ASCII line was counted from the line start.
        let text = format!("é: [{}]\n", "{task: A@1}, ".repeat(50_000));
        let start = std::time::Instant::now();
        assert!(scan(&text).problem.is_none());
        assert!(start.elapsed() < std::time::Duration::from_secs(2), "{:?}", start.elapsed());
    }
}
