//! The `runs` entries: for each pipeline this shard owns, its latest completed run within
//! `--since` and the exact task versions that run executed (from its timeline), judged
//! against the advisory database (TSK001) and the built-in task index (TSK003). Each
//! timeline is reduced to its distinct task versions as it arrives; none is kept.

use serde_json::json;

use super::{Scan, Unit};
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
                    Ok(Ok(tasks)) => Unit::Done { target, outcome: run_outcome(&build, &tasks) },
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
fn run_outcome(build: &Build, tasks: &[TaskRef]) -> TargetOutcome {
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
    let tasks_json: Vec<_> = tasks.iter().map(|t| json!({"id": t.id, "name": t.name, "version": t.version})).collect();
    outcome.extra.insert(
        "run".into(),
        json!({
            "definitionId": build.definition.id,
            "buildId": build.id,
            "buildNumber": build.build_number,
            "url": url,
            "finished": build.finish_time,
            "tasks": tasks_json,
        }),
    );
    outcome
}
