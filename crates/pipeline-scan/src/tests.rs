//! The scanner's tests: positions, forms of references, where `template:` is an include, and
//! where scanning stops.

use super::*;

fn refs(text: &str) -> Vec<(String, u32, u32)> {
    let s = scan(text);
    s.references.iter().map(|r| (s.value(r).to_string(), r.line, r.column)).collect()
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
    assert_eq!(scanned.inputs_of(&scanned.references[0]).collect::<Vec<_>>(), [("command", "push")]);
    assert_eq!(scanned.references[0].step_line, 3);
    assert!(scanned.problems.is_empty());
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
fn each_step_keeps_its_own_inputs_when_steps_nest_and_inputs_are_split() {
    // Inputs are gathered on one list shared by every open step: a step that closes inside
    // another takes only its own, a step without a task drops its own, and inputs on either
    // side of a step's `task:` stay with that step. Inputs under a step's `${{ if }}` may not
    // apply, so they are not taken as written (an advisory narrowed by them still applies).
    let text = "\
steps:
- inputs:
    first: 1
  task: Outer@1
  ${{ if true }}:
    inputs:
      conditional: 'yes'
  env:
    steps:
    - task: Inner@2
      inputs:
        inner: \"a\\tb\"
    - script: echo
      inputs:
        dropped: x
  inputs:
    last: \"z\"
- task: Plain@3
";
    let s = scan(text);
    let inputs: Vec<(&str, Vec<(&str, &str)>)> =
        s.references.iter().map(|r| (s.value(r), s.inputs_of(r).collect())).collect();
    assert_eq!(
        inputs,
        [("Outer@1", vec![("first", "1"), ("last", "z")]), ("Inner@2", vec![("inner", "a\tb")]), ("Plain@3", vec![]),]
    );
    // Both readers agree on the file, so the general parser's walk gives the same.
    assert_eq!(fast_reader_agrees(text), Ok(true));
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
    let inc: Vec<(&str, IncludeKind, u32)> = s.includes.iter().map(|i| (i.value.as_str(), i.kind, i.line)).collect();
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
    let s = scan("steps:\r\n- task: \"A@1\"  # c\r\n- &s\r\n  task: B@2\r\n- *s\r\n---\r\nsteps: [{task: C@3}]\r\n");
    assert_eq!(
        s.references.iter().map(|r| (s.value(r), r.line, r.column)).collect::<Vec<_>>(),
        [("A@1", 2, 9), ("B@2", 4, 9), ("C@3", 7, 16)]
    );
    let a = &s.references[0];
    let src = "steps:\r\n- task: \"A@1\"  # c\r\n";
    assert_eq!(&src[a.edit_span.clone().unwrap()], "A@1");
    assert!(scan(text).stopped_at().is_some(), "a trailing sequence under a mapping is a syntax error");
    let u = scan("steps:\n- displayName: é\n  task: ÉTask@1\n");
    assert_eq!(u.references[0].column, 9);
    assert_eq!(&"steps:\n- displayName: é\n  task: ÉTask@1\n"[u.references[0].edit_span.clone().unwrap()], "ÉTask@1");
}

#[test]
fn syntax_errors_keep_earlier_references() {
    let s = scan("steps:\n- task: A@1\n- task: B@2\n  inputs: [unclosed\n- task: C@3\n");
    match s.problems.as_slice() {
        [Problem::Syntax { line, .. }] => assert!(*line >= 4, "{line}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.references.iter().map(|r| s.value(r)).collect::<Vec<_>>(), ["A@1", "B@2"]);
}

#[test]
fn handlebars_templates() {
    let valid_yaml = "trigger:\n- {{ branch }}\nsteps:\n- task: NuGetCommand@2\n";
    let s = scan(valid_yaml);
    assert_eq!(s.problems, [Problem::Handlebars { line: 2, column: 3, snippet: "- {{ branch }}".into() }]);
    assert_eq!(s.references.len(), 1);
    let blocks = "variables:\n  x: '{{ a.b }}'\n  {{#if reviewApp}}\n  y: 1\n  {{/if}}\nsteps:\n- task: Docker@2\n";
    let s = scan(blocks);
    assert!(matches!(s.problems.as_slice(), [Problem::Handlebars { line: 2, .. }]), "{:?}", s.problems);
    assert_eq!(refs(blocks), [("Docker@2".into(), 7, 9)]);
    assert!(scan("steps:\n- script: echo ${{ parameters.x }}\n").problems.is_empty());
}

#[test]
fn edit_spans_only_when_the_text_is_the_value() {
    let text = "steps:\n- task: 'A@1'\n- task: \"B@2\"\n- task: >\n    C@3\n- task: D@4 # x\n";
    let s = scan(text);
    let spans: Vec<Option<&str>> = s.references.iter().map(|r| r.edit_span.clone().map(|sp| &text[sp])).collect();
    assert_eq!(spans, [Some("A@1"), Some("B@2"), None, Some("D@4")]);
}

fn includes(text: &str) -> Vec<(String, u32)> {
    scan(text).includes.into_iter().map(|i| (i.value, i.line)).collect()
}

#[test]
fn template_keys_in_object_parameters_and_matrices_are_data() {
    // A matrix passed as an object parameter, later used as `${{ matrix.template }}`.
    let text = "\
parameters:
- name: matrix
  type: object
  default:
  - name: linux
    template: cpp-app
  - template: cpp-lib
    name: windows
- name: buildSteps
  type: stepList
  default:
  - template: steps/restore.yml
  - ${{ if true }}:
    - template: steps/extra.yml
- name: untyped
  default:
  - template: not-an-include
- name: single
  default:
    template: also-data
  type: object
- name: oneJob
  default:
    template: jobs/one.yml
  type: job
jobs:
- ${{ each m in parameters.matrix }}:
  - job: ${{ m.name }}
    strategy:
      matrix:
        a:
          template: matrix-value
    steps:
    - script: echo ${{ m.template }}
    - template: steps/build.yml
      parameters:
        flavours:
        - name: debug
          template: flavour-debug
        preSteps:
        - template: steps/pre.yml
        - ${{ if true }}:
          - template: steps/pre-if.yml
variables:
- template: vars.yml
";
    assert_eq!(
        includes(text),
        [
            ("steps/restore.yml".into(), 12),
            ("steps/extra.yml".into(), 14),
            ("jobs/one.yml".into(), 24),
            ("steps/build.yml".into(), 35),
            ("steps/pre.yml".into(), 41),
            ("steps/pre-if.yml".into(), 43),
            ("vars.yml".into(), 45),
        ]
    );
}

#[test]
fn includes_under_extends_and_extends_parameters() {
    let text = "\
extends:
  template: /pipelines/main.yml@self
  parameters:
    stages:
    - template: stages/build.yml
    matrix:
      template: cpp-app
    customSteps:
    - template: steps/custom.yml
      parameters: {x: 1}
    targets:
    - template: arm64
      os: linux
";
    assert_eq!(
        includes(text),
        [("/pipelines/main.yml@self".into(), 2), ("stages/build.yml".into(), 5), ("steps/custom.yml".into(), 9),]
    );
}

#[test]
fn a_late_syntax_error_after_handlebars_is_a_stop_of_its_own() {
    let text = "\
trigger:
- {{ branch }}
steps:
- task: Docker@2
- task: NuGetCommand@2
  inputs: [oops
- task: PowerShell@2
";
    let s = scan(text);
    assert!(matches!(s.problems.first(), Some(Problem::Handlebars { line: 2, .. })), "{:?}", s.problems);
    assert_eq!(s.stopped_at(), Some(7), "{:?}", s.problems);
    assert_eq!(s.problems.len(), 2);
    let names: Vec<&str> = s.references.iter().map(|r| s.value(r)).collect();
    assert_eq!(names, ["Docker@2", "NuGetCommand@2"]);
    // Blocks that are not YAML, then a real error further down.
    let blocks = "steps:\n{{#if x}}\n- task: A@1\n{{/if}}\n- task: B@2\n  x: [\n- task: C@3\n";
    let s = scan(blocks);
    assert_eq!(s.problems.len(), 2, "{:?}", s.problems);
    assert!(s.stopped_at().is_some_and(|l| l >= 6));
    assert_eq!(s.references.iter().map(|r| s.value(r)).collect::<Vec<_>>(), ["A@1", "B@2"]);
}

#[test]
fn a_value_the_parser_places_past_the_end_of_the_text_is_at_the_end_of_the_last_line() {
    // Found by the `pipeline_yaml` fuzz target: for `- {task` the parser gives the missing
    // value a position on line 2 of a one-line text.
    for (text, line, column) in [("- {task", 1, 8), ("- {task\n", 2, 1), ("steps:\n- {task", 2, 8)] {
        let s = scan(text);
        let found: Vec<(&str, u32, u32)> = s.references.iter().map(|r| (s.value(r), r.line, r.column)).collect();
        assert_eq!(found, [("", line, column)], "{text:?}");
        assert!(s.stopped_at().is_some(), "{text:?}");
    }
}

#[test]
fn includes_seen_before_a_syntax_error_are_kept() {
    let text = "steps:\n- template: a.yml\n- template: b.yml\n  parameters:\n    x: [\n";
    let s = scan(text);
    assert!(s.stopped_at().is_some());
    assert_eq!(includes(text), [("a.yml".into(), 2), ("b.yml".into(), 3)]);
}

#[test]
fn lone_carriage_returns_break_lines_as_yaml_does() {
    let text = "steps:\r- task: A@1\r- displayName: é\r  task: 'B@2'\r";
    let s = scan(text);
    assert_eq!(
        s.references.iter().map(|r| (s.value(r), r.line, r.column)).collect::<Vec<_>>(),
        [("A@1", 2, 9), ("B@2", 4, 9)]
    );
    for r in &s.references {
        assert_eq!(&text[r.edit_span.clone().unwrap()], s.value(r));
    }
    // Found by fuzzing: the parser's error line lay past the last line counted here.
    let text = "\x01\r\x01\r\r\x00";
    match scan(text).problems.first() {
        Some(Problem::Syntax { line, .. }) => assert!(*line as usize <= line_starts(text).len(), "{line}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn positions_on_one_long_non_ascii_line_stay_linear() {
    // Found by fuzzing: each position on a non-ASCII line was counted from the line start.
    let text = format!("é: [{}]\n", "{task: A@1}, ".repeat(50_000));
    let start = std::time::Instant::now();
    assert!(scan(&text).problems.is_empty());
    assert!(start.elapsed() < std::time::Duration::from_secs(2), "{:?}", start.elapsed());
}

/// The fast path for text without carriage returns and the general path agree with a plain
/// reading of YAML's line breaks (`\n`, `\r\n`, a lone `\r`).
#[test]
fn line_starts_agree_with_yaml_line_breaks_on_both_paths() {
    fn by_hand(text: &str) -> Vec<usize> {
        let b = text.as_bytes();
        let mut starts = vec![0];
        for i in 0..b.len() {
            if b[i] == b'\n' || (b[i] == b'\r' && b.get(i + 1) != Some(&b'\n')) {
                starts.push(i + 1);
            }
        }
        starts
    }
    for text in ["", "\n", "a", "a\n", "a\nb", "a\n\nb\n", "a\r\nb\r\n", "a\rb\r", "a\r\n\rb\n\r", "é\nü\r\nx"] {
        assert_eq!(line_starts(text), by_hand(text), "{text:?}");
    }
}
