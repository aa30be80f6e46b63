'use strict';
// scripts/package-vsix.sh end to end: the layout it assembles and the .vsix tfx makes of it.

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { REPO, tempDir } = require('./helpers');

const bashOnly = process.platform === 'win32' ? 'the packaging scripts are bash' : false;
const TFX = path.join(REPO, 'node_modules', '.bin', 'tfx');

/** File names in a zip, from its central directory. */
function zipEntries(file) {
  const buf = fs.readFileSync(file);
  const eocd = buf.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  assert.ok(eocd >= 0, `${file} is a zip`);
  const count = buf.readUInt16LE(eocd + 10);
  let at = buf.readUInt32LE(eocd + 16);
  const names = [];
  for (let i = 0; i < count; i += 1) {
    assert.equal(buf.readUInt32LE(at), 0x02014b50, 'central directory entry');
    const nameLen = buf.readUInt16LE(at + 28);
    const extraLen = buf.readUInt16LE(at + 30);
    const commentLen = buf.readUInt16LE(at + 32);
    names.push(buf.toString('utf8', at + 46, at + 46 + nameLen));
    at += 46 + nameLen + extraLen + commentLen;
  }
  return names;
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
  const bins = path.join(dir, 'bin');
  for (const [platform, file] of [['linux-x64', 'azp-preflight'], ['win32-x64', 'azp-preflight.exe']]) {
    fs.mkdirSync(path.join(bins, platform), { recursive: true });
    fs.writeFileSync(path.join(bins, platform, file), '#!/bin/sh\necho fake\n');
  }
  const out = path.join(dir, 'out');
  const run = spawnSync('bash', [path.join(REPO, 'scripts', 'package-vsix.sh')], {
    env: { ...process.env, BIN_DIR: bins, OUT_DIR: out, AZP_PREFLIGHT_PUBLISHER: 'test-publisher' },
    encoding: 'utf8',
    timeout: 120000,
  });
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

test('package-vsix.sh fails when tfx finds a problem in task.json', { skip: bashOnly }, (t) => {
  // A copy of the repository's packaging inputs with a friendlyName over tfx's 40 characters.
  const repo = path.join(tempDir(t), 'repo');
  for (const item of ['scripts', 'extension', 'index.js', 'Cargo.toml']) {
    fs.cpSync(path.join(REPO, item), path.join(repo, item), { recursive: true });
  }
  fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(repo, 'node_modules'));
  const task = JSON.parse(fs.readFileSync(path.join(REPO, 'task.json'), 'utf8'));
  fs.writeFileSync(path.join(repo, 'task.json'), JSON.stringify({ ...task, friendlyName: 'x'.repeat(41) }));
  fs.mkdirSync(path.join(repo, 'bin', 'linux-x64'), { recursive: true });
  fs.writeFileSync(path.join(repo, 'bin', 'linux-x64', 'azp-preflight'), 'fake');

  const out = path.join(repo, 'out');
  const run = spawnSync('bash', [path.join(repo, 'scripts', 'package-vsix.sh')], {
    env: { ...process.env, BIN_DIR: path.join(repo, 'bin'), OUT_DIR: out },
    encoding: 'utf8',
    timeout: 120000,
  });
  assert.equal(run.status, 1, `${run.stdout}\n${run.stderr}`);
  assert.match(run.stdout, /friendlyName is a required string <= 40 chars/);
  assert.match(run.stderr, /tfx reported warnings/);
  assert.deepEqual(fs.readdirSync(out).filter((f) => f.endsWith('.vsix')), [], 'no .vsix is left');
});

test('package-vsix.sh refuses to pack without binaries', { skip: bashOnly }, (t) => {
  const dir = tempDir(t);
  const run = spawnSync('bash', [path.join(REPO, 'scripts', 'package-vsix.sh')], {
    env: { ...process.env, BIN_DIR: path.join(dir, 'none'), OUT_DIR: path.join(dir, 'out') },
    encoding: 'utf8',
  });
  assert.equal(run.status, 1);
  assert.match(run.stderr, /no binaries in .*build-binaries\.sh/);
});
