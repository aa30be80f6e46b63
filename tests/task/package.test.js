'use strict';
// scripts/package-vsix.sh end to end: the layout it assembles and the .vsix tfx makes of it.

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const { REPO, tempDir } = require('./helpers');

const bashOnly = process.platform === 'win32' ? 'the packaging scripts are bash' : false;
const TFX = path.join(REPO, 'node_modules', '.bin', 'tfx');
const REPOSITORY = 'https://github.com/example/azp-preflight';

/** The entries of a zip, from its central directory: name -> { method, size, offset }. */
function zipDirectory(buf, file) {
  const eocd = buf.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  assert.ok(eocd >= 0, `${file} is a zip`);
  const count = buf.readUInt16LE(eocd + 10);
  let at = buf.readUInt32LE(eocd + 16);
  const entries = new Map();
  for (let i = 0; i < count; i += 1) {
    assert.equal(buf.readUInt32LE(at), 0x02014b50, 'central directory entry');
    const nameLen = buf.readUInt16LE(at + 28);
    const extraLen = buf.readUInt16LE(at + 30);
    const commentLen = buf.readUInt16LE(at + 32);
    entries.set(buf.toString('utf8', at + 46, at + 46 + nameLen), {
      method: buf.readUInt16LE(at + 10),
      size: buf.readUInt32LE(at + 20),
      offset: buf.readUInt32LE(at + 42),
    });
    at += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

/** File names in a zip. */
function zipEntries(file) {
  return [...zipDirectory(fs.readFileSync(file), file).keys()];
}

/** The text of one file in a zip (stored or deflated, as tfx writes them). */
function zipText(file, name) {
  const buf = fs.readFileSync(file);
  const entry = zipDirectory(buf, file).get(name);
  assert.ok(entry, `${name} is in ${file}`);
  assert.equal(buf.readUInt32LE(entry.offset), 0x04034b50, 'local file header');
  const start = entry.offset + 30 + buf.readUInt16LE(entry.offset + 26) + buf.readUInt16LE(entry.offset + 28);
  const data = buf.subarray(start, start + entry.size);
  if (entry.method === 0) return data.toString('utf8');
  assert.equal(entry.method, 8, `${name} is stored or deflated`);
  return zlib.inflateRawSync(data).toString('utf8');
}

/** A copy of the repository's packaging inputs, with node_modules linked. */
function packagingRepo(t) {
  const repo = path.join(tempDir(t), 'repo');
  for (const item of ['scripts', 'extension', 'index.js', 'Cargo.toml', 'task.json']) {
    fs.cpSync(path.join(REPO, item), path.join(repo, item), { recursive: true });
  }
  fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(repo, 'node_modules'));
  return repo;
}

/** Fake binaries for two platforms: packaging copies them, it never runs them. */
function fakeBinaries(dir) {
  const bins = path.join(dir, 'bin');
  for (const [platform, file] of [['linux-x64', 'azp-preflight'], ['win32-x64', 'azp-preflight.exe']]) {
    fs.mkdirSync(path.join(bins, platform), { recursive: true });
    fs.writeFileSync(path.join(bins, platform, file), '#!/bin/sh\necho fake\n');
  }
  return bins;
}

function packageVsix(repo, args, env) {
  return spawnSync('bash', [path.join(repo, 'scripts', 'package-vsix.sh'), ...args], {
    env: { ...process.env, AZP_PREFLIGHT_PUBLISHER: '', AZP_PREFLIGHT_EXTENSION_ID: '', AZP_PREFLIGHT_REPOSITORY_URL: '', ...env },
    encoding: 'utf8',
    timeout: 120000,
  });
}

function cargoVersion() {
  const toml = fs.readFileSync(path.join(REPO, 'Cargo.toml'), 'utf8');
  const pkg = toml.split(/^\[/m).find((s) => s.startsWith('package]'));
  return pkg.match(/^version\s*=\s*"([^"]+)"/m)[1];
}

test('the extension manifest declares the task contribution', () => {
  const dir = path.join(REPO, 'extension');
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'vss-extension.json'), 'utf8'));
  assert.equal(manifest.manifestVersion, 1);
  assert.equal(manifest.id, 'azp-preflight');
  assert.equal(manifest.publisher, undefined, 'the publisher is given when packaging, never kept in the tree');
  assert.deepEqual(manifest.targets, [{ id: 'Microsoft.VisualStudio.Services' }]);
  assert.deepEqual(manifest.categories, ['Azure Pipelines']);
  assert.ok(manifest.files.some((f) => f.path === 'PipelinePreflight'));
  const [task] = manifest.contributions;
  assert.equal(manifest.contributions.length, 1);
  assert.equal(task.type, 'ms.vss-distributed-task.task');
  // The agent finds the task in the folder named by properties.name.
  assert.equal(task.properties.name, 'PipelinePreflight');
  const icon = fs.readFileSync(path.join(dir, manifest.icons.default));
  assert.equal(icon.toString('latin1', 1, 4), 'PNG');
  assert.ok(fs.existsSync(path.join(dir, manifest.content.details.path)));
});

test('package-vsix.sh builds a .vsix that tfx accepts', { skip: bashOnly }, (t) => {
  assert.ok(fs.existsSync(TFX), 'tfx-cli is installed (npm ci)');
  const dir = tempDir(t);
  const out = path.join(dir, 'out');
  // The publisher from the environment here; the dry run below passes it as an argument.
  const run = packageVsix(REPO, [], { BIN_DIR: fakeBinaries(dir), OUT_DIR: out,
    AZP_PREFLIGHT_PUBLISHER: 'test-publisher', AZP_PREFLIGHT_REPOSITORY_URL: REPOSITORY });
  assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);

  const version = cargoVersion();
  const vsix = path.join(out, `test-publisher.azp-preflight-${version}.vsix`);
  assert.ok(fs.existsSync(vsix), `expected ${vsix}; ${out} has ${fs.readdirSync(out)}`);
  const entries = zipEntries(vsix);
  for (const name of [
    'extension.vsixmanifest',
    'PipelinePreflight/task.json',
    'PipelinePreflight/index.js',
    'PipelinePreflight/bin/linux-x64/azp-preflight',
    'PipelinePreflight/bin/win32-x64/azp-preflight.exe',
    'images/icon.png',
    'overview.md',
  ]) {
    assert.ok(entries.includes(name), `${name} is packed; entries: ${entries.join(', ')}`);
  }

  // The packed copies carry the product version and the chosen publisher.
  const layout = path.join(out, 'extension');
  const packedTask = JSON.parse(fs.readFileSync(path.join(layout, 'PipelinePreflight', 'task.json'), 'utf8'));
  assert.equal(Object.values(packedTask.version).join('.'), version);
  const manifest = JSON.parse(fs.readFileSync(path.join(layout, 'vss-extension.json'), 'utf8'));
  assert.equal(manifest.publisher, 'test-publisher');
  assert.equal(manifest.version, version);
  assert.deepEqual(manifest.contributions.map((c) => [c.type, c.properties.name]),
    [['ms.vss-distributed-task.task', 'PipelinePreflight']]);
});

test('a packaging dry run stamps the Cargo version and the publisher into the .vsix itself', { skip: bashOnly }, (t) => {
  // A copy whose Cargo.toml moved on to 1.3.7 while task.json and the manifest still say
  // 1.0.0: what is packed follows Cargo.toml.
  const repo = packagingRepo(t);
  const toml = path.join(repo, 'Cargo.toml');
  fs.writeFileSync(toml, fs.readFileSync(toml, 'utf8').replace(/(\[package\][^[]*?\nversion\s*=\s*")[^"]*/, '$11.3.7'));
  const out = path.join(repo, 'out');
  const run = packageVsix(repo, ['--publisher', 'test-publisher', '--extension-id', 'azp-preflight-dev',
    '--repository-url', `${REPOSITORY}.git`], { BIN_DIR: fakeBinaries(repo), OUT_DIR: out });
  assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);

  const vsix = path.join(out, 'test-publisher.azp-preflight-dev-1.3.7.vsix');
  assert.ok(fs.existsSync(vsix), `expected ${vsix}; ${out} has ${fs.readdirSync(out)}`);
  const identity = zipText(vsix, 'extension.vsixmanifest').match(/<Identity\b[^>]*>/);
  assert.ok(identity, 'the vsixmanifest has an Identity');
  assert.match(identity[0], / Publisher="test-publisher"/);
  assert.match(identity[0], / Id="azp-preflight-dev"/);
  assert.match(identity[0], / Version="1\.3\.7"/);
  const task = JSON.parse(zipText(vsix, 'PipelinePreflight/task.json'));
  assert.deepEqual(task.version, { Major: 1, Minor: 3, Patch: 7 });
  assert.equal(zipText(vsix, 'PipelinePreflight/index.js'), fs.readFileSync(path.join(REPO, 'index.js'), 'utf8'));

  // Help links point at the README and the code pages of this very version.
  assert.ok(task.helpMarkDown.includes(`](${REPOSITORY}/blob/v1.3.7/README.md)`), task.helpMarkDown);
  assert.ok(task.helpMarkDown.includes(`](${REPOSITORY}/blob/v1.3.7/docs/codes)`), task.helpMarkDown);
  const overview = zipText(vsix, 'overview.md');
  const relative = [...overview.matchAll(/\]\(([^)]+)\)/g)].map((m) => m[1])
    .filter((l) => !/^https:\/\//.test(l) && !l.startsWith('images/'));
  assert.deepEqual(relative, [], 'the Marketplace page has no link into a repository it cannot see');
  assert.ok(overview.includes(`${REPOSITORY}/blob/v1.3.7/`), 'the overview links into the repository');
  const manifest = JSON.parse(fs.readFileSync(path.join(out, 'extension', 'vss-extension.json'), 'utf8'));
  assert.deepEqual(manifest.repository, { type: 'git', uri: REPOSITORY });
  // The sources were not touched.
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(repo, 'task.json'), 'utf8')).version,
    JSON.parse(fs.readFileSync(path.join(REPO, 'task.json'), 'utf8')).version);
});

test('package-vsix.sh refuses to pack without a well-formed publisher', { skip: bashOnly }, (t) => {
  const dir = tempDir(t);
  const bins = fakeBinaries(dir);
  let run = packageVsix(REPO, [], { BIN_DIR: bins, OUT_DIR: path.join(dir, 'none') });
  assert.equal(run.status, 2);
  assert.match(run.stderr, /a \.vsix needs a publisher: --publisher ID or AZP_PREFLIGHT_PUBLISHER/);
  assert.equal(fs.existsSync(path.join(dir, 'none')), false, 'nothing assembled');

  run = packageVsix(REPO, ['--publisher', 'test-publisher'], { BIN_DIR: bins, OUT_DIR: path.join(dir, 'none') });
  assert.equal(run.status, 2);
  assert.match(run.stderr, /needs the repository's address for its help links: --repository-url URL/);

  run = packageVsix(REPO, ['--publisher', 'not a publisher', '--repository-url', REPOSITORY],
    { BIN_DIR: bins, OUT_DIR: path.join(dir, 'bad') });
  assert.equal(run.status, 2, run.stderr);
  assert.match(run.stderr, /--publisher must be letters, digits and '-'/);
  assert.deepEqual(fs.readdirSync(path.join(dir, 'bad')).filter((f) => f.endsWith('.vsix')), []);
});

test('package-vsix.sh --layout-only assembles the task folder the pipeline runs, without tfx', { skip: bashOnly }, (t) => {
  const dir = tempDir(t);
  const out = path.join(dir, 'out');
  const run = packageVsix(REPO, ['--layout-only'], { BIN_DIR: fakeBinaries(dir), OUT_DIR: out });
  assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
  const task = path.join(out, 'extension', 'PipelinePreflight');
  assert.deepEqual(fs.readdirSync(task).sort(), ['bin', 'index.js', 'task.json']);
  assert.equal(Object.values(JSON.parse(fs.readFileSync(path.join(task, 'task.json'), 'utf8')).version).join('.'),
    cargoVersion());
  assert.ok(fs.existsSync(path.join(task, 'bin', 'linux-x64', 'azp-preflight')));
  assert.deepEqual(fs.readdirSync(out), ['extension'], 'no .vsix, no tfx log');
  assert.equal(fs.existsSync(path.join(out, 'extension', 'vss-extension.json')), false);
});

test('package-vsix.sh fails when tfx finds a problem in task.json', { skip: bashOnly }, (t) => {
  // A copy of the repository's packaging inputs with a friendlyName over tfx's 40 characters.
  const repo = packagingRepo(t);
  const task = JSON.parse(fs.readFileSync(path.join(REPO, 'task.json'), 'utf8'));
  fs.writeFileSync(path.join(repo, 'task.json'), JSON.stringify({ ...task, friendlyName: 'x'.repeat(41) }));
  fs.mkdirSync(path.join(repo, 'bin', 'linux-x64'), { recursive: true });
  fs.writeFileSync(path.join(repo, 'bin', 'linux-x64', 'azp-preflight'), 'fake');

  const out = path.join(repo, 'out');
  const run = packageVsix(repo, [], { BIN_DIR: path.join(repo, 'bin'), OUT_DIR: out,
    AZP_PREFLIGHT_PUBLISHER: 'test-publisher', AZP_PREFLIGHT_REPOSITORY_URL: REPOSITORY });
  assert.equal(run.status, 1, `${run.stdout}\n${run.stderr}`);
  assert.match(run.stdout, /friendlyName is a required string <= 40 chars/);
  assert.match(run.stderr, /tfx reported warnings/);
  assert.deepEqual(fs.readdirSync(out).filter((f) => f.endsWith('.vsix')), [], 'no .vsix is left');
});

test('package-vsix.sh refuses to pack without binaries', { skip: bashOnly }, (t) => {
  const dir = tempDir(t);
  const run = packageVsix(REPO, ['--publisher', 'test-publisher', '--repository-url', REPOSITORY],
    { BIN_DIR: path.join(dir, 'none'), OUT_DIR: path.join(dir, 'out') });
  assert.equal(run.status, 1);
  assert.match(run.stderr, /no binaries in .*build-binaries\.sh/);
});
