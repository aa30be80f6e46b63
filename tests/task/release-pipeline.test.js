'use strict';
// The project's own azure-pipelines.yml checked by the tool itself, and the release assets
// the pipeline attaches (names, SHA256SUMS that `sha256sum -c` accepts). The YAML structure
// is checked in crates/pipeline-scan/tests/release_pipeline.rs.

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { REPO, tempDir } = require('./helpers');

const TARGET = process.env.CARGO_TARGET_DIR ? path.resolve(REPO, process.env.CARGO_TARGET_DIR) : path.join(REPO, 'target');
const TOOL = path.join(TARGET, 'debug', process.platform === 'win32' ? 'azp-preflight.exe' : 'azp-preflight');
const PIPELINE = path.join(REPO, 'azure-pipelines.yml');
const bashOnly = process.platform === 'win32' ? 'the release scripts are bash' : false;

/** The debug binary (scripts/test.sh builds it with `cargo test` before the Node tests). */
function tool(args, cwd = REPO) {
  assert.ok(fs.existsSync(TOOL), `${TOOL} is built (cargo build)`);
  // A clean environment: not TF_BUILD (human output), no agent or credential variables.
  const env = { PATH: process.env.PATH, HOME: process.env.HOME || '' };
  return spawnSync(TOOL, args, { cwd, env, encoding: 'utf8', timeout: 60000 });
}

const CHECK = ['--offline', '--checks', 'tasks,agent', '--pipeline', 'azure-pipelines.yml', '--fail-on', 'warning'];

test('the tool finds nothing at warning level in azure-pipelines.yml', () => {
  // Exactly the command of the release issue, on the real file.
  const run = tool(CHECK);
  assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
  assert.match(run.stdout, /0 errors, 0 warnings/);
});

test('every task reference in azure-pipelines.yml is one the tool checked', () => {
  const run = tool([...CHECK, '--format', 'json']);
  assert.equal(run.status, 0, run.stderr);
  const report = JSON.parse(run.stdout);
  assert.equal(report.result, 'pass');
  assert.deepEqual(report.counts, { error: 0, warning: 0, note: 0 });
  const tasks = report.checks.filter((c) => c.check === 'tasks');
  assert.equal(tasks.length, 1);
  assert.equal(tasks[0].status, 'pass');

  // Every `task:` line of the file, found independently of the tool's scanner.
  const lines = fs.readFileSync(PIPELINE, 'utf8').split('\n');
  const written = lines.flatMap((l, i) => {
    const m = l.match(/^\s*- task: (\S+)\s*$/);
    return m ? [`${m[1]} line ${i + 1}`] : [];
  });
  assert.ok(written.length >= 10, `the pipeline uses tasks: ${written}`);
  const checked = tasks[0].references.map((r) => `${r.task}@${r.version} line ${r.line}`);
  assert.deepEqual(checked, written);
  for (const r of tasks[0].references) assert.match(r.version, /^\d+$/, `${r.task} floats within a major`);
});

test('the same check fails on a deprecated major, so a pass above means something', (t) => {
  const dir = tempDir(t);
  const text = fs.readFileSync(PIPELINE, 'utf8');
  assert.ok(text.includes('task: GitHubRelease@1'));
  fs.writeFileSync(path.join(dir, 'azure-pipelines.yml'), text.replace('task: GitHubRelease@1', 'task: GitHubRelease@0'));
  const run = tool([...CHECK, '--format', 'json'], dir);
  assert.equal(run.status, 1, run.stderr);
  const findings = JSON.parse(run.stdout).checks.flatMap((c) => c.findings);
  assert.deepEqual(findings.map((f) => [f.code, f.severity]), [['TSK003', 'warning']]);
});

test('release-assets.sh names each asset by version and platform and writes SHA256SUMS', { skip: bashOnly }, (t) => {
  const dir = tempDir(t);
  const bins = path.join(dir, 'bin');
  const files = { 'linux-x64/azp-preflight': 'x64', 'linux-arm64/azp-preflight': 'arm64', 'win32-x64/azp-preflight.exe': 'win' };
  for (const [file, body] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(bins, file)), { recursive: true });
    fs.writeFileSync(path.join(bins, file), body);
  }
  const version = spawnSync(process.execPath, [path.join(REPO, 'scripts', 'version.js'), 'print'], { encoding: 'utf8' })
    .stdout.trim();
  const vsix = path.join(dir, `test-publisher.azp-preflight-${version}.vsix`);
  fs.writeFileSync(vsix, 'vsix');
  const sboms = path.join(dir, 'sbom');
  fs.mkdirSync(sboms);
  fs.writeFileSync(path.join(sboms, `azp-preflight-${version}-linux-x64.cdx.json`), '{"bomFormat":"CycloneDX"}');
  const out = path.join(dir, 'release');
  const script = path.join(REPO, 'scripts', 'release-assets.sh');
  const env = { ...process.env, BIN_DIR: bins, OUT_DIR: out };

  const run = spawnSync('bash', [script, vsix, sboms], { env, encoding: 'utf8' });
  assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
  const expected = [
    `azp-preflight-${version}-linux-arm64`,
    `azp-preflight-${version}-linux-x64`,
    `azp-preflight-${version}-linux-x64.cdx.json`,
    `azp-preflight-${version}-win32-x64.exe`,
    `test-publisher.azp-preflight-${version}.vsix`,
  ];
  assert.deepEqual(fs.readdirSync(out).sort(), [...expected, 'SHA256SUMS'].sort());
  const sums = fs.readFileSync(path.join(out, 'SHA256SUMS'), 'utf8').trim().split('\n');
  assert.deepEqual(sums.map((l) => l.split(/\s+\*?/)[1]), expected);
  assert.match(sums[1], /^[0-9a-f]{64} {2}azp-preflight-.*-linux-x64$/);

  // What the README tells users to run, in the folder they downloaded to; and a tampered file fails it.
  const verify = () => spawnSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: out, encoding: 'utf8' });
  assert.equal(verify().status, 0, verify().stderr);
  fs.writeFileSync(path.join(out, `azp-preflight-${version}-linux-x64`), 'tampered');
  const tampered = verify();
  assert.equal(tampered.status, 1);
  assert.match(tampered.stdout, new RegExp(`azp-preflight-${version.replace(/\./g, '\\.')}-linux-x64: FAILED`));

  // A package of another version is not attached to this release.
  const other = path.join(dir, 'test-publisher.azp-preflight-0.0.1.vsix');
  fs.writeFileSync(other, 'old');
  const wrong = spawnSync('bash', [script, other], { env, encoding: 'utf8' });
  assert.equal(wrong.status, 1);
  assert.match(wrong.stderr, new RegExp(`is not a ${version.replace(/\./g, '\\.')} package`));
});
