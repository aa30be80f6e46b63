//! How long the offline tasks check takes on a large repository: 1,000 pipeline files of
//! about 50 KB each (about 50 MB), found by the conventional names, scanned with their
//! templates and matched against the advisory database. Prints the median of a few runs.
//!
//!     cargo bench --bench scan
//!
//! On the idle two-core machine the median is 0.30–0.43 s (CPU time 0.58–0.74 s: the machine's
//! speed varies by a third), from 0.51–0.76 s before scanned values shared one buffer and 1.16 s
//! before the fast block-YAML reader. "last run" splits one run by stage; the CPU time tells
//! this work from a busy machine's.

use std::path::Path;
use std::time::{Duration, Instant};

use azp_preflight::checks::tasks::advisories;
use azp_preflight::checks::tasks::discover::{self, How};
use azp_preflight::checks::tasks::{advise_pipeline, scan_pipelines};

const FILES: usize = 1000;
const FILE_BYTES: usize = 50 * 1024;
const RUNS: usize = 5;

/// One stage of a realistic pipeline: jobs, conditional steps, floating tasks, a deployment
/// job and an inline script. The first stage also pins versions that have advisories.
fn stage(i: usize) -> String {
    let (nuget, docker) = if i == 0 {
        ("NuGetCommand@2.244.1", "Docker@2.240.5  # pinned by azp-preflight: AZP-ADV-0004, unpin at >= 2.247.0")
    } else {
        ("NuGetCommand@2", "Docker@2")
    };
    format!(
        r#"- stage: Stage{i}
  displayName: 'Build and deploy {i}'
  jobs:
  - job: Build{i}
    pool:
      vmImage: ubuntu-latest
    steps:
    - checkout: self
    - task: {nuget}
      inputs:
        command: restore
        restoreSolution: '**/*.sln'
    - task: DotNetCoreCLI@2
      displayName: Build
      inputs:
        command: build
        arguments: --configuration $(buildConfiguration)
    - ${{{{ if eq(parameters.publish, true) }}}}:
      - task: PublishBuildArtifacts@1
        inputs:
          pathToPublish: $(Build.ArtifactStagingDirectory)
    - script: |
        echo "Running tests for stage {i}"
        dotnet test --no-build --logger trx --results-directory $(Agent.TempDirectory)
        echo "done"
      displayName: Test
    - template: ../templates/common-steps.yml
  - deployment: Deploy{i}
    environment: production
    strategy:
      runOnce:
        deploy:
          steps:
          - task: AzureIoTEdge@2
            inputs:
              action: Push module images
              containerregistrytype: Azure Container Registry
          - task: {docker}
            inputs:
              command: push
              repository: app{i}
"#
    )
}

fn pipeline(n: usize) -> String {
    let mut text = format!(
        "# Generated pipeline {n}\ntrigger:\n- main\n\nparameters:\n- name: publish\n  type: boolean\n  default: true\n\nstages:\n"
    );
    let mut i = 0;
    while text.len() < FILE_BYTES {
        text.push_str(&stage(i));
        i += 1;
    }
    text
}

fn generate(dir: &Path) -> usize {
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::fs::write(
        dir.join("templates/common-steps.yml"),
        "steps:\n- task: AzureCLI@2\n  inputs:\n    scriptType: bash\n- task: FileTransform@2.248.1\n",
    )
    .unwrap();
    let mut bytes = 0;
    for n in 0..FILES {
        let text = pipeline(n);
        bytes += text.len();
        std::fs::write(dir.join(format!("pipelines/service{n:04}-azure-pipelines.yml")), text).unwrap();
    }
    bytes
}

/// CPU time used by this process so far (all threads), to tell our work from a busy machine.
#[cfg(unix)]
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

#[cfg(not(unix))]
fn cpu_time() -> Duration {
    Duration::ZERO
}

#[path = "../tests/corpus/realistic.rs"]
mod realistic;

/// The realistic monorepo (matrices, `@self`, backslash paths, CRLF, BOM): discovery by
/// content, scan and advice; the median of `RUNS` and the findings by code.
fn realistic_corpus(runtime: &tokio::runtime::Runtime, db: &std::sync::Arc<advisories::AdvisoryDb>) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let bytes = realistic::write(dir.path());
    let mut totals = Vec::new();
    let mut summary = String::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let files = discover::conventional(dir.path());
        let scans = scan_pipelines(&files, How::Conventional, dir.path());
        let codes: std::collections::BTreeMap<String, usize> = runtime.block_on(async {
            let mut codes = std::collections::BTreeMap::new();
            for scan in &scans {
                let (advice, _) = advise_pipeline(scan, db, None, None).await;
                for f in scan.findings.iter().chain(advice.iter().map(|a| &a.finding)) {
                    *codes.entry(f.code.to_string()).or_insert(0) += 1;
                }
            }
            codes
        });
        totals.push(started.elapsed());
        assert_eq!(scans.len(), realistic::ENTRIES, "templates are reported through their pipelines");
        summary =
            format!("{} files found, {} pipelines, findings before de-duplication {codes:?}", files.len(), scans.len());
    }
    totals.sort();
    println!(
        "realistic corpus: {} files, {:.1} KB; {summary}; median of {RUNS}: {} ms",
        realistic::PIPELINE_FILES,
        bytes as f64 / 1e3,
        totals[RUNS / 2].as_millis()
    );
}

fn main() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let bytes = generate(dir.path());
    // As in a run: one job per pipeline on a two-worker runtime.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().expect("a runtime");
    let db = std::sync::Arc::new(advisories::embedded().clone());
    let mut totals = Vec::new();
    let mut cpu = Vec::new();
    let mut last = (Duration::ZERO, Duration::ZERO, Duration::ZERO, 0usize, 0usize);
    for _ in 0..RUNS {
        let started = Instant::now();
        let cpu_started = cpu_time();
        let files = discover::conventional(dir.path());
        let discovered = started.elapsed();
        let scans = scan_pipelines(&files, How::Conventional, dir.path());
        let scanned = started.elapsed();
        let pipelines = scans.len();
        let findings: usize = runtime.block_on(async {
            let jobs: Vec<_> = scans
                .into_iter()
                .map(|scan| {
                    let db = db.clone();
                    tokio::spawn(async move {
                        let (advice, _) = advise_pipeline(&scan, &db, None, None).await;
                        advice.len() + scan.findings.len()
                    })
                })
                .collect();
            let mut total = 0;
            for job in jobs {
                total += job.await.unwrap_or(0);
            }
            total
        });
        let total = started.elapsed();
        totals.push(total);
        cpu.push(cpu_time().saturating_sub(cpu_started));
        last = (discovered, scanned - discovered, total - scanned, pipelines, findings);
    }
    totals.sort();
    cpu.sort();
    let (discovery, scan, advice, pipelines, findings) = last;
    println!(
        "tasks check, offline: {FILES} files, {:.1} MB, {pipelines} pipelines, {findings} findings",
        bytes as f64 / 1e6
    );
    println!(
        "last run: discovery {} ms, read+scan {} ms, advice {} ms",
        discovery.as_millis(),
        scan.as_millis(),
        advice.as_millis()
    );
    println!(
        "median of {RUNS}: {} ms (min {} ms, max {} ms)",
        totals[RUNS / 2].as_millis(),
        totals[0].as_millis(),
        totals[RUNS - 1].as_millis()
    );
    println!(
        "CPU time, median: {} ms on {} threads",
        cpu[RUNS / 2].as_millis(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    realistic_corpus(&runtime, &db);
}
