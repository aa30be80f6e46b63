//! The `tasks` check, `fix` and `advisories` against hostile repositories and inputs:
//! templates that lead out of the sources folder, FIFOs, devices and huge files where YAML or
//! TOML is expected, thousands of overlapping advisory ranges, and more pipeline files than
//! one run scans. Each must end quickly with a finding or an input error naming the path.
#![cfg(unix)]

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use crate::common::{findings, json_of, preflight};

/// Every run gets this long before the test fails instead of hanging.
const HANG: Duration = Duration::from_secs(30);

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo has no other preconditions.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", path.display());
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Contents and modification time, to prove a file was not written.
fn snapshot(path: &Path) -> (Vec<u8>, SystemTime) {
    (std::fs::read(path).unwrap(), std::fs::metadata(path).unwrap().modified().unwrap())
}

const PINNABLE: &str = "steps:\n- task: AzurePowerShell@5.247.5\n";

/// `outer/` holds the repository and, beside it, files no include may reach.
struct Layout {
    _outer: tempfile::TempDir,
    repo: std::path::PathBuf,
    outside: Vec<std::path::PathBuf>,
}

fn hostile_repo() -> Layout {
    let outer = tempfile::tempdir().unwrap();
    let repo = outer.path().join("repo");
    let outside_file = outer.path().join("outside.yml");
    let linked_target = outer.path().join("outside-linked.yml");
    let found_target = outer.path().join("outside-found.yml");
    for f in [&outside_file, &linked_target, &found_target] {
        write(f, PINNABLE);
    }
    mkfifo(&outer.path().join("pipe.yml"));
    write(&repo.join("inside.yml"), PINNABLE);
    symlink(&linked_target, repo.join("linked.yml")).unwrap();
    std::fs::create_dir_all(repo.join("ci")).unwrap();
    symlink(outer.path().join("pipe.yml"), repo.join("ci/fifo-link.yml")).unwrap();
    // Found by its conventional name, leads out of the checkout.
    symlink(&found_target, repo.join("link-azure-pipelines.yml")).unwrap();
    write(
        &repo.join("azure-pipelines.yml"),
        "steps:\n\
         - template: ../outside.yml\n\
         - template: linked.yml\n\
         - template: //proc/self/environ\n\
         - template: /proc/self/environ\n\
         - template: ../../../../../../../../../../../../etc/shadow\n\
         - template: ../pipe.yml\n\
         - template: ci/fifo-link.yml\n\
         - template: inside.yml\n",
    );
    Layout { repo, outside: vec![outside_file, linked_target, found_target], _outer: outer }
}

#[test]
fn includes_that_leave_the_sources_folder_are_tsk010_and_never_read() {
    let layout = hostile_repo();
    let started = Instant::now();
    let output = preflight(&layout.repo)
        .args(["--checks", "tasks", "--offline", "--format", "json"])
        .timeout(HANG)
        .output()
        .unwrap();
    // A FIFO named as a template (directly or through a link) would block a read forever.
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    let report = json_of(&output);
    let mut got = findings(&report);
    got.sort();
    let at = |code: &str, file: &str, line: u64| (code.to_string(), file.to_string(), line, 13);
    let mut expected = vec![
        at("TSK010", "azure-pipelines.yml", 2),
        at("TSK010", "azure-pipelines.yml", 3),
        at("TSK010", "azure-pipelines.yml", 4),
        // One leading `/` is the repository root, as in Azure Pipelines: not there.
        at("TSK009", "azure-pipelines.yml", 5),
        at("TSK010", "azure-pipelines.yml", 6),
        at("TSK010", "azure-pipelines.yml", 7),
        at("TSK010", "azure-pipelines.yml", 8),
        ("TSK010".to_string(), "link-azure-pipelines.yml".to_string(), 1, 1),
        ("TSK001".to_string(), "inside.yml".to_string(), 2, 9),
    ];
    expected.sort();
    // Only the template inside was read: one TSK001, from inside.yml.
    assert_eq!(got, expected, "{report:#}");
    let text = serde_json::to_string(&report).unwrap();
    assert!(text.contains("leads outside the sources folder"), "{text}");
    let targets: Vec<&str> =
        report["checks"].as_array().unwrap().iter().map(|c| c["target"].as_str().unwrap()).collect();
    assert_eq!(targets, ["azure-pipelines.yml", "pipeline files"]);
}

#[test]
fn fix_never_writes_outside_the_sources_folder() {
    let layout = hostile_repo();
    let before: Vec<_> = layout.outside.iter().map(|p| snapshot(p)).collect();
    // Coarse file-system clocks: a write now would show as a later mtime.
    std::thread::sleep(Duration::from_millis(20));
    for dry_run in [true, false] {
        let mut cmd = preflight(&layout.repo);
        cmd.args(["fix", "--offline"]);
        if dry_run {
            cmd.arg("--dry-run");
        }
        let started = Instant::now();
        let output = cmd.timeout(HANG).output().unwrap();
        assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
        assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
        let err = String::from_utf8_lossy(&output.stderr);
        // The advice itself (pin or unpin) follows the advisory data; what matters here is
        // that the file inside is the one edited.
        assert!(err.contains("inside.yml:2: AzurePowerShell@5.247.5 -> "), "{err}");
        assert!(!err.contains("outside"), "only the file inside is edited: {err}");
    }
    let after: Vec<_> = layout.outside.iter().map(|p| snapshot(p)).collect();
    assert_eq!(before, after, "files outside the sources folder are byte-identical with the same mtime");
    let inside = std::fs::read_to_string(layout.repo.join("inside.yml")).unwrap();
    assert!(!inside.contains("AzurePowerShell@5.247.5"), "the template inside was fixed: {inside}");
}

#[test]
fn fix_refuses_a_file_with_another_hard_link() {
    let outer = tempfile::tempdir().unwrap();
    let repo = outer.path().join("repo");
    let elsewhere = outer.path().join("elsewhere.yml");
    write(&elsewhere, PINNABLE);
    std::fs::create_dir_all(&repo).unwrap();
    // A hard link is the same file under two names; the other name may be anywhere.
    std::fs::hard_link(&elsewhere, repo.join("azure-pipelines.yml")).unwrap();
    let before = snapshot(&elsewhere);
    std::thread::sleep(Duration::from_millis(20));
    let output = preflight(&repo).args(["fix", "--offline"]).timeout(HANG).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("azure-pipelines.yml is not changed: it has other hard links"), "{err}");
    assert_eq!(snapshot(&elsewhere), before);
}

/// Runs the binary in `dir` with `args`; fails the test if it takes more than 5 s.
fn quick(dir: &Path, args: &[&str]) -> std::process::Output {
    let started = Instant::now();
    let output = preflight(dir).args(args).timeout(HANG).output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "{args:?} took {:?}", started.elapsed());
    output
}

fn big_file(path: &Path, bytes: usize) {
    let line = "# padding padding padding padding padding padding padding padding padding\n";
    std::fs::write(path, line.repeat(bytes / line.len() + 1)).unwrap();
}

#[test]
fn fifos_devices_and_huge_files_as_pipeline_files_and_templates() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    mkfifo(&repo.join("pipe.yml"));
    symlink("/dev/zero", repo.join("zero.yml")).unwrap();
    big_file(&repo.join("big.yml"), 20 << 20);
    write(&repo.join("ok.yml"), "steps:\n- template: pipe.yml\n- template: big.yml\n- template: zero.yml\n");

    // Named as pipeline files: bad input naming the input, the value and what is wrong.
    let fifo = quick(repo, &["--checks", "tasks", "--offline", "--pipeline", "pipe.yml"]);
    assert_eq!(fifo.status.code(), Some(2));
    let err = String::from_utf8_lossy(&fifo.stderr);
    assert!(err.contains("--pipeline") && err.contains("pipe.yml") && err.contains("it is a FIFO"), "{err}");
    let zero = quick(repo, &["--checks", "tasks", "--offline", "--pipeline", "zero.yml"]);
    assert_eq!(zero.status.code(), Some(2));
    let err = String::from_utf8_lossy(&zero.stderr);
    assert!(err.contains("zero.yml") && err.contains("outside the sources folder"), "{err}");

    // A huge pipeline file is a finding; so are the templates, each naming its path.
    let output = quick(
        repo,
        &["--checks", "tasks", "--offline", "--format", "json", "--pipeline", "big.yml", "--pipeline", "ok.yml"],
    );
    let report = json_of(&output);
    let messages: Vec<String> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["findings"].as_array().unwrap().iter())
        .map(|f| format!("{} {}", f["code"].as_str().unwrap(), f["message"].as_str().unwrap()))
        .collect();
    assert!(messages.contains(&"TSK008 cannot read big.yml: it is larger than 8 MiB".to_string()), "{messages:?}");
    assert!(
        messages.contains(&"TSK008 cannot read pipe.yml: it is a FIFO, not a regular file".to_string()),
        "{messages:?}"
    );
    assert!(messages.iter().any(|m| m.starts_with("TSK010 template `zero.yml`")), "{messages:?}");
}

#[test]
fn fifos_devices_huge_files_and_folders_as_advisory_files_are_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    write(&repo.join("azure-pipelines.yml"), "steps:\n- task: Docker@2\n");
    mkfifo(&repo.join("pipe.toml"));
    symlink("/dev/zero", repo.join("zero.toml")).unwrap();
    big_file(&repo.join("big.toml"), 20 << 20);
    std::fs::create_dir_all(repo.join("advisories")).unwrap();
    for (value, why) in [
        ("pipe.toml", "not a FIFO, socket or device"),
        ("zero.toml", "not a FIFO, socket or device"),
        ("big.toml", "larger than 256 KiB"),
        ("advisories", "not a directory"),
    ] {
        let run = quick(repo, &["--checks", "tasks", "--offline", "--advisories", value]);
        assert_eq!(run.status.code(), Some(2), "{value}");
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(err.contains("--advisories") && err.contains(value) && err.contains(why), "{value}: {err}");
        for action in ["list", "lint"] {
            let run = quick(repo, &["advisories", action, "--advisories", value]);
            assert_eq!(run.status.code(), Some(2), "{action} {value}");
            assert!(String::from_utf8_lossy(&run.stderr).contains(value), "{action} {value}");
        }
    }

    // In a pipeline the agent passes the sources folder for an empty advisoryFile: none.
    let in_pipeline = |value: &Path| {
        let mut cmd = preflight(repo);
        cmd.envs(crate::common::pipeline_env(repo))
            .env("INPUT_CHECKS", "tasks")
            .env("INPUT_OFFLINE", "true")
            .env("INPUT_ADVISORYFILE", value)
            .timeout(HANG);
        cmd.output().unwrap()
    };
    let default = in_pipeline(repo);
    assert_eq!(default.status.code(), Some(0), "{}", String::from_utf8_lossy(&default.stdout));
    let folder = in_pipeline(&repo.join("advisories"));
    assert_eq!(folder.status.code(), Some(2));
    let out = String::from_utf8_lossy(&folder.stdout);
    assert!(out.contains("advisoryFile") && out.contains("advisories") && out.contains("not a directory"), "{out}");
}

#[test]
fn thousands_of_overlapping_advisory_ranges_lint_fast_with_bounded_output() {
    let dir = tempfile::tempdir().unwrap();
    let ranges: Vec<String> = (0..5_000).map(|i| format!("\">= 2.{i}.0, < 2.99999.0\"")).collect();
    let file = dir.path().join("many.toml");
    std::fs::write(
        &file,
        format!(
            "id = \"CONTOSO-ADV-0003\"\ntitle = \"t\"\ntask = \"Docker\"\n\
             task-id = \"e28912f1-0114-4464-802a-a3a35437fd16\"\nmajor = 2\nupdated = \"2026-10-01\"\n\
             symptom = \"x\"\nconfidence = \"low\"\n\n[versions]\naffected = [{}]\n\n[sources]\n\
             issues = [\"https://example.com/1\"]\n",
            ranges.join(", ")
        ),
    )
    .unwrap();
    let started = Instant::now();
    let lint = quick(dir.path(), &["advisories", "lint", "--advisories", "many.toml"]);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(lint.status.code(), Some(1));
    assert!(lint.stdout.len() < 100_000, "{} bytes", lint.stdout.len());
    let text = String::from_utf8_lossy(&lint.stdout);
    assert!(text.contains("many.toml: affected ranges `>= 2.0.0, < 2.99999.0` and `>= 2.1.0, < 2.99999.0` overlap"));
    assert!(text.contains("many.toml: …and 4979 more problems"), "{text}");
    let run = quick(dir.path(), &["--checks", "tasks", "--offline", "--advisories", "many.toml"]);
    assert_eq!(run.status.code(), Some(2));
    assert!(run.stderr.len() < 100_000, "{} bytes", run.stderr.len());
}

#[test]
fn more_pipeline_files_than_the_cap_give_one_note_not_thousands_of_entries() {
    let dir = tempfile::tempdir().unwrap();
    let ci = dir.path().join("ci");
    std::fs::create_dir_all(&ci).unwrap();
    let total = 10_050;
    for i in 0..total {
        std::fs::write(ci.join(format!("p{i:05}.yml")), "steps:\n- script: echo\n").unwrap();
    }
    let started = Instant::now();
    let output = preflight(dir.path())
        .args(["--checks", "tasks", "--offline", "--format", "json", "--timeout", "60", "--pipeline", "ci/*.yml"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
    let report = json_of(&output);
    let entries = report["checks"].as_array().unwrap();
    assert_eq!(entries.len(), 10_000 + 1, "one entry per file scanned, and one about the search");
    let got = findings(&report);
    assert_eq!(got.iter().filter(|f| f.0 == "RUN001").count(), 0);
    assert_eq!(got.len(), 1, "{:?}", &got[..got.len().min(5)]);
    let last = entries.last().unwrap();
    assert_eq!(last["target"], "pipeline files");
    assert!(
        last["findings"][0]["message"].as_str().unwrap().starts_with("more than 10000 pipeline files matched"),
        "{last:#}"
    );
    assert_eq!(last["findings"][0]["code"], "TSK007");
}
