'use strict';
// Shared fixtures for the task tests: a throwaway task folder holding the real index.js and
// a fake "binary" (a small shell script), and a way to run the shim as the agent would.

const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { parseWithAgent, parseWithTaskLib } = require('../oracles/vso-oracle');

const REPO = path.resolve(__dirname, '..', '..');
const PLATFORM = `${process.platform}-${process.arch}`;
const BINARY = process.platform === 'win32' ? 'azp-preflight.exe' : 'azp-preflight';

/** A fresh temp folder, removed when the test ends. */
function tempDir(t, prefix = 'azp-preflight-test-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A task folder with index.js and, unless `script` is null, bin/<this platform>/azp-preflight
 * holding `script` with the given mode (0644 by default: as unpacked from a .vsix).
 */
function makeTask(t, script, mode = 0o644) {
  const root = tempDir(t);
  const taskDir = path.join(root, 'PipelinePreflight');
  fs.mkdirSync(taskDir);
  fs.copyFileSync(path.join(REPO, 'index.js'), path.join(taskDir, 'index.js'));
  const bin = path.join(taskDir, 'bin', PLATFORM, BINARY);
  if (script !== null) {
    fs.mkdirSync(path.dirname(bin), { recursive: true });
    fs.writeFileSync(bin, script);
    fs.chmodSync(bin, mode);
  }
  return { root, taskDir, bin };
}

/** Runs the shim like the agent's Node handler: `node <task>/index.js`, given env only. */
function runShim(taskDir, { args = [], env = {}, uid } = {}) {
  const result = spawnSync(process.execPath, [path.join(taskDir, 'index.js'), ...args], {
    cwd: taskDir,
    env: { PATH: process.env.PATH, ...env },
    encoding: 'utf8',
    timeout: 30000,
    uid,
  });
  if (result.error) throw result.error;
  return result;
}

/** Every stdout line that either parser reads as a logging command, with both readings. */
function commands(stdout) {
  return stdout.split('\n').filter((l) => l.length > 0).map((line) => ({
    line,
    agent: parseWithAgent(line).parsed,
    taskLib: parseWithTaskLib(line).parsed,
  })).filter((c) => c.agent || c.taskLib);
}

module.exports = { REPO, PLATFORM, BINARY, tempDir, makeTask, runShim, commands };
