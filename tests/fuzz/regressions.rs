//! What fuzzing found in code other tests own, each as the smallest input that showed it.
//! (Findings in the parsers' own modules are unit tests there.)

use std::time::Duration;

use azp_preflight::checks::registry::tags;
use azp_preflight::checks::tasks::advice::{Edit, PIN_MARKER};
use azp_preflight::checks::tasks::{fix, scan};

use crate::thread_cpu_time;

#[test]
fn fix_keeps_lines_that_end_in_a_lone_carriage_return() {
    // `fix` looked for the end of the line at `\n` only: in a file with `\r` line breaks it
    // took the next step for the rest of the line, and dropped it after an old pin comment.
    let text = "steps:\r- task: A@1 # pinned by azp-preflight: x\r- task: B@2\n";
    let found = scan::scan(text);
    let a = &found.references[0];
    let edit = Edit {
        path: "p.yml".into(),
        display: "p.yml".into(),
        line: a.line,
        span: a.edit_span.clone().expect("a plain value can be edited"),
        old_value: found.value(a).to_string(),
        new_value: "A@1.2.3".into(),
        comment: Some(format!("{PIN_MARKER} why")),
    };
    let (fixed, applied) = fix::apply(text, &[&edit]);
    assert_eq!(applied, 1);
    assert_eq!(fixed, format!("steps:\r- task: A@1.2.3  {PIN_MARKER} why\r- task: B@2\n"));
    azp_preflight::fuzz::pipeline_yaml(text.as_bytes());
}

#[test]
fn closest_tags_compare_only_the_tags_asked_for() {
    // A registry answering 2 MB of 70-character tags made this take minutes in a debug
    // build (and one 2 MB tag needed a 2 GB table): only the tags asked for are compared.
    let wanted = "t".repeat(128);
    let many: Vec<String> = (0..30_000).map(|i| format!("{i:0>70}")).collect();
    let start = thread_cpu_time();
    assert!(tags::closest_tags(&wanted, &many).is_empty());
    assert_eq!(tags::closest_tags("1.0.3", &["x".repeat(2 << 20), "1.0.2".into()]), ["1.0.2"]);
    let took = thread_cpu_time().saturating_sub(start);
    assert!(took < Duration::from_secs(2), "{took:?}");
}
