//! The `runs` entries: for each pipeline this shard owns, its latest completed run within
//! `--since` and the exact task versions that run executed (from its timeline), judged
//! against the advisory database (TSK001) and the built-in task index (TSK003). Each
//! timeline is reduced to its distinct task versions as it arrives; none is kept.

use super::{Scan, Unit};
use crate::check::run::{RunRecord, TaskInterner};
use crate::check::TargetOutcome;
use crate::checks::tasks::advisories;
use crate::checks::tasks::index;
use crate::checks::tasks::reference::TaskVersion;
use crate::codes::Code;
use crate::devops::model::{lower, Build, Definition, Project, TaskRef};
use crate::devops::BUILD_BATCH;
use crate::finding::Finding;

/// What one project's pipelines gave: the entries, and how many pipelines this shard owns.
pub struct ProjectRuns {
    pub units: Vec<Unit>,
    pub pipelines: u64,
}

pub async fn scan_project(scan: &Scan<'_>, project: &Project) -> Result<ProjectRuns, String> {
    let definitions = scan.client.definitions(&project.id).await.map_err(|e| e.to_string())?;
    let project_id = lower(&project.id);
    let owned: Vec<Definition> =
        definitions.into_iter().filter(|d| scan.options.shard.owns(&format!("{project_id}/{}", d.id))).collect();
    let pipelines = owned.len() as u64;
    let min_time = jiff::Timestamp::from_second(scan.now.as_second() - i64::from(scan.options.since_days) * 86_400)
        .unwrap_or(scan.now)
        .to_string();
    let mut units = Vec::new();
    for batch in owned.chunks(BUILD_BATCH) {
        let ids: Vec<i64> = batch.iter().map(|d| d.id).collect();
        let builds = match tokio::time::timeout_at(
            scan.options.deadline,
            scan.client.latest_builds(&project.id, &ids, &min_time),
        )
        .await
        {
            Ok(Ok(builds)) => builds,
            Ok(Err(e)) => {
                units.extend(batch.iter().map(|d| Unit::Missed {
                    scope: format!("{}/{}", project.name, d.name),
                    reason: format!("its runs could not be listed ({e})"),
                }));
                continue;
            }
            Err(_) => {
                units.extend(batch.iter().map(|d| Unit::Late { scope: format!("{}/{}", project.name, d.name) }));
                continue;
            }
        };
        // The newest completed run per definition (the service sends one each; be sure).
        let mut latest: Vec<Build> = Vec::new();
        for build in builds {
            if !ids.contains(&build.definition.id) {
                continue;
            }
            match latest.iter_mut().find(|b| b.definition.id == build.definition.id) {
                Some(kept) if kept.finish_time >= build.finish_time => {}
                Some(kept) => *kept = build,
                None => latest.push(build),
            }
        }
        let jobs = latest.into_iter().map(|build| {
            let name = batch.iter().find(|d| d.id == build.definition.id).map(|d| d.name.clone()).unwrap_or_default();
            async move {
                let target = format!("{}/{name}", project.name);
                match tokio::time::timeout_at(scan.options.deadline, scan.client.build_tasks(&project.id, build.id))
                    .await
                {
                    Ok(Ok(tasks)) => Unit::Done { target, outcome: run_outcome(&build, &tasks, &scan.tasks) },
                    Ok(Err(e)) => {
                        Unit::Missed { scope: target, reason: format!("its run's timeline could not be read ({e})") }
                    }
                    Err(_) => Unit::Late { scope: target },
                }
            }
        });
        units.extend(super::bounded(jobs).await);
    }
    Ok(ProjectRuns { units, pipelines })
}

/// The entry of one run: its tasks, and what the advisories and the index say of them.
fn run_outcome(build: &Build, tasks: &[TaskRef], interner: &TaskInterner) -> TargetOutcome {
    let mut outcome = TargetOutcome::default();
    let url = build.links.web.href.clone().unwrap_or_default();
    let db = advisories::embedded();
    for task in tasks {
        let Some(version) = TaskVersion::parse(&task.version) else { continue };
        let id = (!task.id.is_empty()).then_some(task.id.as_str());
        for advisory in db.for_task(id, &task.name, version.major).filter(|a| a.affects(version)) {
            outcome.findings.push(
                Finding::new(
                    Code::TSK001,
                    format!(
                        "Run {} executed {}@{version}, affected by {}: {}.",
                        build.build_number.as_deref().unwrap_or("?"),
                        task.name,
                        advisory.id,
                        advisory.title
                    ),
                )
                .remedy(match advisory.fixed {
                    Some(fixed) => format!(
                        "Pin {}@{} or later, or apply the advisory's workaround (`azp-preflight advisories show {}`).",
                        task.name, fixed, advisory.id
                    ),
                    None => {
                        format!("Apply the advisory's workaround (`azp-preflight advisories show {}`).", advisory.id)
                    }
                })
                .data("buildId", build.id)
                .data("url", url.clone())
                .data("version", version.to_string())
                .data("advisory", advisory.id.clone()),
            );
        }
        let deprecated = index::builtin()
            .and_then(|index| index.find(id.unwrap_or(&task.name), version.major))
            .filter(|found| found.info.deprecated);
        if let Some(found) = deprecated {
            outcome.findings.push(
                Finding::new(
                    Code::TSK003,
                    format!(
                        "Run {} used {}@{}, a deprecated major version.",
                        build.build_number.as_deref().unwrap_or("?"),
                        found.name(),
                        version.major
                    ),
                )
                .remedy("Move the pipeline to the task's supported major version (see `azp-preflight explain TSK003`).")
                .data("buildId", build.id)
                .data("url", url.clone())
                .data("version", version.to_string()),
            );
        }
    }
    outcome.run = Some(Box::new(RunRecord {
        definition_id: build.definition.id,
        build_id: build.id,
        build_number: build.build_number.clone(),
        url,
        finished: build.finish_time.clone(),
        tasks: tasks.iter().map(|t| interner.intern(&t.id, &t.name, &t.version)).collect(),
    }));
    outcome
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::check::CheckResult;
    use crate::devops::model::{BuildLinks, DefinitionRef, Link};
    use crate::settings::CheckId;

    /// A run as the benchmark's fake organisation answers it: three tasks, one of them
    /// affected by an advisory.
    fn bench_like_run(n: i64) -> (Build, Vec<TaskRef>) {
        let build = Build {
            id: 100_000 + n,
            build_number: Some(format!("2026.{n}")),
            finish_time: Some("2026-11-30T03:00:00Z".into()),
            result: Some("succeeded".into()),
            definition: DefinitionRef { id: n },
            links: BuildLinks {
                web: Link {
                    href: Some(format!(
                        "https://dev.azure.com/contoso/6f1e2d3c/_build/results?buildId={}",
                        100_000 + n
                    )),
                },
            },
        };
        let task =
            |id: &str, name: &str, version: &str| TaskRef { id: id.into(), name: name.into(), version: version.into() };
        let tasks = vec![
            task("e213ff0f-5d5c-4791-802d-52ea3e7be1f1", "PowerShell", "2.247.1"),
            task("80f3f6a0-82a6-4a22-ba7a-e5b8c541b9b8", "AzureIoTEdge", "2.241.1"),
            task("46e4be58-730b-4389-8a2f-ea10b3e5e815", "AzureCLI", "2.276.2"),
        ];
        (build, tasks)
    }

    #[test]
    fn a_run_entry_stays_small_on_the_heap() {
        const ENTRIES: i64 = 200;
        let runs: Vec<_> = (1..=ENTRIES).map(bench_like_run).collect();
        let interner = TaskInterner::default();
        // The advisory database and the task index are read once, on first use; the tasks
        // are held once by the interner: neither belongs to an entry.
        drop(run_outcome(&runs[0].0, &runs[0].1, &interner));
        let (report, held) = crate::heap_count::held_by(|| {
            let mut checks = Vec::with_capacity(ENTRIES as usize);
            for (build, tasks) in &runs {
                let outcome = run_outcome(build, tasks, &interner);
                let target = format!("project-001/pipeline-{:03}", build.definition.id);
                checks.push(CheckResult::from_outcome(CheckId::Runs, target, Duration::from_millis(5), outcome));
            }
            let redactor = crate::secret::Redactor::default();
            crate::report::Report::new(checks, Duration::ZERO, crate::cli::FailOn::Error, None, &redactor)
        });
        assert_eq!(report.counts().error + report.counts().warning, ENTRIES as usize);
        // 1.6 KB when this was written; 6.4 KB with the run as a JSON tree, which made a
        // 20,000-pipeline scan peak at 155 MiB.
        let per_entry = held / ENTRIES as isize;
        assert!(per_entry <= 2_000, "a run entry holds {per_entry} bytes");
    }
}
