'use strict';
// scripts/version.js: Cargo.toml is the one version; task.json, the extension manifest and
// package.json follow it, in the tree (check/sync) and in what is packed (stamp).

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { REPO, tempDir } = require('./helpers');

const SCRIPT = path.join(REPO, 'scripts', 'version.js');
const REPOSITORY = ['--repository-url', 'https://github.com/example/azp-preflight'];
const readJson = (file) => JSON.parse(fs.readFileSync(file, 'utf8'));

/** Runs version.js as the packaging script and the pipeline do. */
function version(args) {
  return spawnSync(process.execPath, [SCRIPT, ...args], { encoding: 'utf8', timeout: 30000 });
}

/** A copy of the files that carry a version, with Cargo.toml's [package] version replaced. */
function repoWithCargoVersion(t, cargoVersion) {
  const root = path.join(tempDir(t), 'repo');
  fs.mkdirSync(path.join(root, 'extension'), { recursive: true });
  for (const file of ['task.json', 'package.json', 'CHANGELOG.md', 'extension/vss-extension.json', 'extension/overview.md']) {
    fs.copyFileSync(path.join(REPO, file), path.join(root, file));
  }
  const toml = fs.readFileSync(path.join(REPO, 'Cargo.toml'), 'utf8');
  const replaced = toml.replace(/(\[package\][^[]*?\nversion\s*=\s*")[^"]*(")/, `$1${cargoVersion}$2`);
  assert.ok(replaced.includes(`\nversion = "${cargoVersion}"`), 'the [package] version was replaced');
  fs.writeFileSync(path.join(root, 'Cargo.toml'), replaced);
  return root;
}

test('the versions in the tree agree with Cargo.toml now', () => {
  const run = version(['check']);
  assert.equal(run.status, 0, run.stderr);
  const cargo = version(['print']).stdout.trim();
  assert.match(cargo, /^\d+\.\d+\.\d+$/);
  assert.equal(Object.values(readJson(path.join(REPO, 'task.json')).version).join('.'), cargo);
  assert.equal(readJson(path.join(REPO, 'extension', 'vss-extension.json')).version, cargo);
  assert.equal(readJson(path.join(REPO, 'package.json')).version, cargo);
});

test('the tree carries no publisher: packaging must be given one', () => {
  const manifest = readJson(path.join(REPO, 'extension', 'vss-extension.json'));
  assert.equal('publisher' in manifest, false, `publisher in the tree: ${manifest.publisher}`);
});

test('stamp writes the Cargo version, publisher and id into the packed copies only', (t) => {
  const root = repoWithCargoVersion(t, '1.4.2');
  const out = tempDir(t);
  const run = version(['stamp', '--root', root, '--task-dir', path.join(out, 'PipelinePreflight'),
    '--manifest', path.join(out, 'vss-extension.json'), '--publisher', 'test-publisher',
    '--extension-id', 'azp-preflight-dev', ...REPOSITORY]);
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout, 'stamped test-publisher.azp-preflight-dev 1.4.2\n');

  const task = readJson(path.join(out, 'PipelinePreflight', 'task.json'));
  assert.deepEqual(task.version, { Major: 1, Minor: 4, Patch: 2 });
  const tree = readJson(path.join(root, 'task.json'));
  assert.deepEqual({ ...task, version: tree.version, helpMarkDown: tree.helpMarkDown }, tree,
    'only the version and the help links differ');

  const manifest = readJson(path.join(out, 'vss-extension.json'));
  assert.equal(manifest.version, '1.4.2');
  assert.equal(manifest.publisher, 'test-publisher');
  assert.equal(manifest.id, 'azp-preflight-dev');
  assert.equal(manifest.public, false, 'private unless --public');

  // The tree is left as it was: the packed copies are stamped, not the sources.
  assert.deepEqual(tree.version, { Major: 1, Minor: 0, Patch: 0 });
  assert.equal(readJson(path.join(root, 'extension', 'vss-extension.json')).version, '1.0.0');
});

test('stamp --public lists the extension publicly; without --manifest it needs no publisher', (t) => {
  const out = tempDir(t);
  let run = version(['stamp', '--task-dir', path.join(out, 't'), '--manifest', path.join(out, 'm.json'),
    '--publisher', 'p', '--public', ...REPOSITORY]);
  assert.equal(run.status, 0, run.stderr);
  assert.equal(readJson(path.join(out, 'm.json')).public, true);
  run = version(['stamp', '--task-dir', path.join(out, 'only-task')]);
  assert.equal(run.status, 0, run.stderr);
  assert.ok(fs.existsSync(path.join(out, 'only-task', 'task.json')));
});

test('stamp refuses a missing or malformed publisher and a silent change of major', (t) => {
  const out = tempDir(t);
  const manifest = ['--task-dir', path.join(out, 't'), '--manifest', path.join(out, 'm.json')];
  let run = version(['stamp', ...manifest]);
  assert.equal(run.status, 2);
  assert.match(run.stderr, /stamp needs --publisher ID/);
  run = version(['stamp', ...manifest, '--publisher', 'p']);
  assert.equal(run.status, 2);
  assert.match(run.stderr, /stamp needs --repository-url URL/);
  run = version(['stamp', ...manifest, '--publisher', 'p', '--repository-url', 'http://example.test/o/r']);
  assert.equal(run.status, 2);
  assert.match(run.stderr, /--repository-url must be an https URL of a repository, got 'http:\/\/example\.test\/o\/r'/);
  run = version(['stamp', ...manifest, '--publisher', 'your publisher', ...REPOSITORY]);
  assert.equal(run.status, 2);
  assert.match(run.stderr, /--publisher must be letters, digits and '-', got 'your publisher'/);
  run = version(['stamp', ...manifest, '--publisher', 'p', '--extension-id', 'a.b', ...REPOSITORY]);
  assert.equal(run.status, 2);
  assert.equal(fs.existsSync(path.join(out, 'm.json')), false, 'nothing written on bad input');

  const root = repoWithCargoVersion(t, '2.0.0');
  run = version(['stamp', '--root', root, ...manifest, '--publisher', 'p', ...REPOSITORY]);
  assert.equal(run.status, 1);
  assert.match(run.stderr, /Cargo.toml major 2 differs from task.json major 1/);
});

test('check fails on each copy that disagrees; sync brings them back in step', (t) => {
  const root = repoWithCargoVersion(t, '1.1.0');
  let run = version(['check', '--root', root]);
  assert.equal(run.status, 1);
  assert.match(run.stderr, /task\.json has version 1\.0\.0, Cargo\.toml has 1\.1\.0/);
  assert.match(run.stderr, /extension\/vss-extension\.json has version 1\.0\.0, Cargo\.toml has 1\.1\.0/);
  assert.match(run.stderr, /package\.json has version 1\.0\.0, Cargo\.toml has 1\.1\.0/);

  const before = readJson(path.join(root, 'task.json'));
  run = version(['sync', '--root', root]);
  assert.equal(run.status, 0, run.stderr);
  run = version(['check', '--root', root]);
  assert.equal(run.status, 0, run.stderr);
  const after = readJson(path.join(root, 'task.json'));
  assert.deepEqual(after.version, { Major: 1, Minor: 1, Patch: 0 });
  assert.deepEqual({ ...after, version: before.version }, before, 'sync changes the version only');

  // A lone disagreement is caught too.
  const manifestFile = path.join(root, 'extension', 'vss-extension.json');
  fs.writeFileSync(manifestFile, JSON.stringify({ ...readJson(manifestFile), version: '1.0.9' }));
  run = version(['check', '--root', root]);
  assert.equal(run.status, 1);
  assert.equal(run.stderr.split('\n').filter((l) => / has version /.test(l)).length, 1, run.stderr);
});

test('the version is [package] version, not a dependency or another table', (t) => {
  const root = tempDir(t);
  fs.writeFileSync(path.join(root, 'Cargo.toml'), [
    '[workspace]', 'members = ["crates/x"]', '', '[dependencies.foo]', 'version = "9.9.9"', '',
    '[package]', 'name = "x"', 'version = "3.2.1"', '', '[dev-dependencies]', 'bar = { version = "8" }', '',
  ].join('\n'));
  assert.equal(version(['print', '--root', root]).stdout, '3.2.1\n');
  fs.writeFileSync(path.join(root, 'Cargo.toml'), '[package]\nname = "x"\nversion = "1.0.0-rc.1"\n');
  const run = version(['print', '--root', root]);
  assert.equal(run.status, 1);
  assert.match(run.stderr, /not a plain x\.y\.z version/);
});

test('a release tag must name the Cargo version', () => {
  const cargo = version(['print']).stdout.trim();
  assert.equal(version(['tag', `v${cargo}`]).status, 0);
  for (const bad of [cargo, `v${cargo}.1`, 'v0.0.0', `refs/tags/v${cargo}`]) {
    const run = version(['tag', bad]);
    assert.equal(run.status, 1, bad);
    assert.match(run.stderr, new RegExp(`expected v${cargo.replace(/\./g, '\\.')}`));
  }
});

test('CHANGELOG.md has a section for the version, which becomes the release notes', (t) => {
  const run = version(['notes']);
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /^### /m, 'Keep a Changelog subsections');
  assert.doesNotMatch(run.stdout, /^## /m, 'only this version\'s section');

  const root = repoWithCargoVersion(t, '1.9.0');
  const missing = version(['notes', '--root', root]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /CHANGELOG\.md has no '## \[1\.9\.0\]' section/);
});

test('the task help links to the README and the code pages, at the release tag once packed', (t) => {
  const task = readJson(path.join(REPO, 'task.json'));
  const links = [...task.helpMarkDown.matchAll(/\]\(([^)]+)\)/g)].map((m) => m[1]);
  assert.deepEqual(links, ['README.md', 'docs/codes']);
  for (const link of links) assert.ok(fs.existsSync(path.join(REPO, link)), `${link} exists in the tree`);
  assert.match(task.helpMarkDown, /azp-preflight explain <CODE>/);
  // The Marketplace page's links into the repository exist too (packaged images aside).
  const overview = fs.readFileSync(path.join(REPO, 'extension', 'overview.md'), 'utf8');
  for (const [, link] of overview.matchAll(/\]\(([^)]+)\)/g)) {
    if (/^https:/.test(link)) continue;
    const file = link.startsWith('images/') ? path.join(REPO, 'extension', link) : path.join(REPO, link.split('#')[0]);
    assert.ok(fs.existsSync(file), `overview.md links to ${link}, which exists`);
  }

  const out = tempDir(t);
  const run = version(['stamp', '--task-dir', out, '--manifest', path.join(out, 'm.json'), '--publisher', 'p',
    '--repository-url', 'https://github.com/example/azp-preflight/']);
  assert.equal(run.status, 0, run.stderr);
  const packed = readJson(path.join(out, 'task.json'));
  const cargo = version(['print']).stdout.trim();
  assert.deepEqual([...packed.helpMarkDown.matchAll(/\]\(([^)]+)\)/g)].map((m) => m[1]), [
    `https://github.com/example/azp-preflight/blob/v${cargo}/README.md`,
    `https://github.com/example/azp-preflight/blob/v${cargo}/docs/codes`,
  ]);
  // Absolute links and packaged images are left as they are.
  const { absoluteLinks } = require(SCRIPT);
  assert.equal(absoluteLinks('[a](https://x.test/y) ![i](images/icon.png) [b](#top) [c](./docs/x.md)', 'https://r.test/o/p', 'v1.2.3'),
    '[a](https://x.test/y) ![i](images/icon.png) [b](#top) [c](https://r.test/o/p/blob/v1.2.3/docs/x.md)');
});
