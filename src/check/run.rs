//! The `run` field of a `runs` entry (ORG-CONTRACT), held typed rather than as a JSON tree.
//! An organisation report holds one per pipeline, tens of thousands of them, until it is
//! written: as `serde_json` objects a run of three tasks took over 4 KB (an ordered map per
//! task), which made the report, not the timelines, what bounded the scan's memory. The tasks
//! repeat across thousands of runs, so each distinct `{id, name, version}` is held once and
//! shared. Written back it is the same JSON, field for field.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{json, Value};

use crate::secret::Redactor;

/// One task version a run executed: `{id, name, version}` in the report.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TaskRun {
    pub id: String,
    pub name: String,
    pub version: String,
}

/// What a `runs` entry says of the run it judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub definition_id: i64,
    pub build_id: i64,
    pub build_number: Option<String>,
    pub url: String,
    pub finished: Option<String>,
    pub tasks: Vec<Arc<TaskRun>>,
}

impl RunRecord {
    /// The report's `run` object.
    pub fn to_value(&self) -> Value {
        let tasks: Vec<Value> =
            self.tasks.iter().map(|t| json!({"id": t.id, "name": t.name, "version": t.version})).collect();
        json!({
            "definitionId": self.definition_id,
            "buildId": self.build_id,
            "buildNumber": self.build_number,
            "url": self.url,
            "finished": self.finished,
            "tasks": tasks,
        })
    }

    /// The record of a `run` object read from a report, only when it is exactly the shape
    /// this version writes (so that `to_value` gives it back unchanged); anything else stays
    /// an untyped field of the entry.
    pub fn from_value(value: &Value, tasks: &TaskInterner) -> Option<RunRecord> {
        let obj = value.as_object()?;
        let text = |key: &str| obj.get(key).and_then(Value::as_str).map(str::to_string);
        let optional_text = |key: &str| match obj.get(key)? {
            Value::Null => Some(None),
            Value::String(s) => Some(Some(s.clone())),
            _ => None,
        };
        let mut triples = Vec::new();
        for task in obj.get("tasks")?.as_array()? {
            let field = |key: &str| task.get(key).and_then(Value::as_str);
            triples.push(tasks.intern(field("id")?, field("name")?, field("version")?));
        }
        let record = RunRecord {
            definition_id: obj.get("definitionId")?.as_i64()?,
            build_id: obj.get("buildId")?.as_i64()?,
            build_number: optional_text("buildNumber")?,
            url: text("url")?,
            finished: optional_text("finished")?,
            tasks: triples,
        };
        (record.to_value() == *value).then_some(record)
    }

    /// Every string passed through the redactor. A shared task is replaced by its own
    /// redacted copy only when redaction changed it.
    pub fn redact(&mut self, redactor: &Redactor) {
        for text in [&mut self.build_number, &mut self.finished].into_iter().flatten() {
            redactor.redact_in_place(text);
        }
        redactor.redact_in_place(&mut self.url);
        for task in &mut self.tasks {
            let redacted = TaskRun {
                id: redactor.redact(&task.id),
                name: redactor.redact(&task.name),
                version: redactor.redact(&task.version),
            };
            if redacted != **task {
                *task = Arc::new(redacted);
            }
        }
    }
}

/// The distinct task versions seen so far, each held once. Shared by the concurrent jobs of
/// a scan; a few hundred entries for a whole organisation.
#[derive(Debug, Default)]
pub struct TaskInterner(Mutex<HashSet<Arc<TaskRun>>>);

impl TaskInterner {
    pub fn intern(&self, id: &str, name: &str, version: &str) -> Arc<TaskRun> {
        let wanted = TaskRun { id: id.to_string(), name: name.to_string(), version: version.to_string() };
        // A panic elsewhere cannot leave the set half-updated: insert is the only write.
        let mut seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = seen.get(&wanted) {
            return Arc::clone(found);
        }
        let shared = Arc::new(wanted);
        seen.insert(Arc::clone(&shared));
        shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(tasks: &TaskInterner) -> RunRecord {
        RunRecord {
            definition_id: 7,
            build_id: 9007,
            build_number: Some("2026.12.7".into()),
            url: "https://dev.azure.com/contoso/Edge/_build/results?buildId=9007".into(),
            finished: None,
            tasks: vec![tasks.intern("1f1a", "Docker", "2.247.1"), tasks.intern("2e2b", "AzureCLI", "2.250.0")],
        }
    }

    #[test]
    fn reads_back_what_it_writes_and_shares_repeated_tasks() {
        let tasks = TaskInterner::default();
        let record = sample(&tasks);
        let again = RunRecord::from_value(&record.to_value(), &tasks).unwrap();
        assert_eq!(again, record);
        assert!(Arc::ptr_eq(&again.tasks[0], &record.tasks[0]));
        assert_eq!(record.to_value()["tasks"][1], json!({"id": "2e2b", "name": "AzureCLI", "version": "2.250.0"}));
        assert_eq!(record.to_value()["finished"], Value::Null);
    }

    #[test]
    fn another_shape_is_not_taken_for_a_record() {
        let tasks = TaskInterner::default();
        let mut value = sample(&tasks).to_value();
        value["comment"] = json!("added by hand");
        assert_eq!(RunRecord::from_value(&value, &tasks), None);
        let mut value = sample(&tasks).to_value();
        value["tasks"][0]["version"] = json!(2);
        assert_eq!(RunRecord::from_value(&value, &tasks), None);
        assert_eq!(RunRecord::from_value(&json!([]), &tasks), None);
    }

    #[test]
    fn redaction_reaches_shared_tasks_without_changing_the_others() {
        let tasks = TaskInterner::default();
        let mut record = sample(&tasks);
        let redactor = Redactor::default();
        redactor.register("AzureCLI");
        record.redact(&redactor);
        assert_eq!(record.tasks[1].name, "***");
        assert!(Arc::ptr_eq(&record.tasks[0], &tasks.intern("1f1a", "Docker", "2.247.1")));
        assert_eq!(tasks.intern("2e2b", "AzureCLI", "2.250.0").name, "AzureCLI");
    }
}
