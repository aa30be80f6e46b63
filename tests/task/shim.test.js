'use strict';
// The task's Node entry point (index.js): which binary it runs, how, and how it reports the
// failures that happen before the binary can report anything itself.

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');
const shim = require('../../index.js');
const { REPO, PLATFORM, makeTask, runShim, commands } = require('./helpers');

const posixOnly = process.platform === 'win32' ? 'the fake binary is a shell script' : false;

/** Exactly one error issue and one Failed result, both readable by both parsers. */
function assertFailedOnce(result, messagePart) {
  assert.equal(result.status, 0, 'the Node handler needs exit code 0');
  const cmds = commands(result.stdout);
  assert.equal(cmds.length, 2, `two logging commands, got:\n${result.stdout}`);
  const [issue, complete] = cmds;
  for (const reading of [issue.agent, issue.taskLib]) {
    assert.equal(reading.command, 'task.logissue');
    assert.deepEqual(reading.properties, { type: 'error' });
    assert.match(reading.message, messagePart);
  }
  for (const reading of [complete.agent, complete.taskLib]) {
    assert.equal(reading.command, 'task.complete');
    assert.deepEqual(reading.properties, { result: 'Failed' });
    assert.match(reading.message, messagePart);
  }
}

test('binaryPath picks bin/<platform>-<arch>/azp-preflight[.exe]', () => {
  const dir = path.join('/opt', 'task');
  const cases = [
    ['linux', 'x64', 'bin/linux-x64/azp-preflight'],
    ['linux', 'arm64', 'bin/linux-arm64/azp-preflight'],
    ['darwin', 'x64', 'bin/darwin-x64/azp-preflight'],
    ['darwin', 'arm64', 'bin/darwin-arm64/azp-preflight'],
    ['win32', 'x64', 'bin/win32-x64/azp-preflight.exe'],
    ['win32', 'arm64', 'bin/win32-arm64/azp-preflight.exe'],
  ];
  for (const [platform, arch, rel] of cases) {
    assert.equal(shim.binaryPath(dir, platform, arch), path.join(dir, ...rel.split('/')));
  }
  // By default: this platform, next to index.js.
  const exe = process.platform === 'win32' ? 'azp-preflight.exe' : 'azp-preflight';
  assert.equal(shim.binaryPath(), path.join(REPO, 'bin', PLATFORM, exe));
});

test('escapeData escapes % first, then CR and LF, and nothing else', () => {
  assert.equal(shim.escapeData('100% done'), '100%AZP25 done');
  assert.equal(shim.escapeData('a\r\nb'), 'a%0D%0Ab');
  assert.equal(shim.escapeData('literal %0A and %AZP25'), 'literal %AZP250A and %AZP25AZP25');
  assert.equal(shim.escapeData('keeps ; and ] as they are'), 'keeps ; and ] as they are');
});

test('failTask output reads back the same in the agent and in task-lib', () => {
  const message = 'disk 100% full; path [a]b]\r\nsecond line %0A %AZP25';
  let out = '';
  shim.failTask(message, { write: (s) => { out += s; } });
  assertFailedOnce({ status: 0, stdout: out }, /second line/);
  for (const c of commands(out)) {
    assert.equal(c.agent.message, message);
    assert.equal(c.taskLib.message, message);
  }
});

test('index.js uses no module outside Node itself', () => {
  // azure-pipelines-task-lib/task would delete INPUT_* and ENDPOINT_AUTH_* on load.
  const source = fs.readFileSync(path.join(REPO, 'index.js'), 'utf8');
  const required = [...source.matchAll(/require\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1]);
  assert.deepEqual([...new Set(required)].sort(), ['child_process', 'fs', 'os', 'path']);
});

test('restores the exec bit lost in packaging, then runs the binary', { skip: posixOnly }, (t) => {
  const { root, taskDir, bin } = makeTask(t, '#!/bin/sh\necho ran > "$MARKER"\n', 0o644);
  const marker = path.join(root, 'marker');
  const result = runShim(taskDir, { env: { MARKER: marker } });
  assert.equal(result.status, 0, result.stderr);
  assert.equal(fs.statSync(bin).mode & 0o777, 0o755);
  assert.equal(fs.readFileSync(marker, 'utf8'), 'ran\n');
});

test('passes the environment through untouched', { skip: posixOnly }, (t) => {
  // The fake binary is a Node script, not sh: a POSIX shell drops variables whose names are
  // not shell identifiers, such as ENDPOINT_AUTH_<guid>, before they reach its children.
  const dumper = `#!${process.execPath}\nrequire('fs').writeFileSync(process.env.DUMP, JSON.stringify(process.env));\n`;
  const { root, taskDir } = makeTask(t, dumper);
  const guid = '1dfdea68-9549-409e-abee-c5da69cfec5f';
  const given = {
    INPUT_AZURESUBSCRIPTION: guid,
    INPUT_REGISTRIES: 'contoso.azurecr.io/app push\n# a comment\nghcr.io/o/i:1 platform=linux/arm64',
    INPUT_CHECKS: 'registry,identity,tasks,agent',
    INPUT_OFFLINE: 'false',
    [`ENDPOINT_AUTH_${guid}`]: '{"parameters":{"serviceprincipalkey":"s3cr;t%AZP25=]"},"scheme":"ServicePrincipal"}',
    [`ENDPOINT_AUTH_SCHEME_${guid}`]: 'ServicePrincipal',
    [`ENDPOINT_AUTH_PARAMETER_${guid}_SERVICEPRINCIPALKEY`]: 's3cr;t %AZP25 = ] ü',
    ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN: 'eyJ0eXAiOiJKV1QifQ.e30.sig',
    [`ENDPOINT_DATA_${guid}_CREATIONMODE`]: 'Manual',
    SYSTEM_ACCESSTOKEN: 'token with spaces',
    AGENT_TEMPDIRECTORY: root,
    TF_BUILD: 'True',
  };
  const dump = path.join(root, 'env.dump');
  const result = runShim(taskDir, { env: { ...given, DUMP: dump } });
  assert.equal(result.status, 0, result.stderr);

  // Exactly the environment the agent gave: nothing dropped, renamed, re-cased or added.
  const seen = JSON.parse(fs.readFileSync(dump, 'utf8'));
  assert.deepEqual(seen, { PATH: process.env.PATH, ...given, DUMP: dump });
});

test('forwards its arguments and nothing else', { skip: posixOnly }, (t) => {
  const { root, taskDir } = makeTask(t, '#!/bin/sh\nprintf \'%s\\0\' "$@" > "$ARGS"\n');
  const file = path.join(root, 'args');
  const args = ['run', '--format', 'json', 'two words', '', 'quote"d', 'ü;%AZP25]'];
  const result = runShim(taskDir, { args, env: { ARGS: file } });
  assert.equal(result.status, 0, result.stderr);
  assert.deepEqual(fs.readFileSync(file, 'utf8').split('\0').slice(0, -1), args);
});

test('the mode input picks the command: nothing for a pipeline, `org` for an organisation', () => {
  assert.deepEqual(shim.argsForMode({}), []);
  assert.deepEqual(shim.argsForMode({ INPUT_MODE: 'pipeline' }), []);
  assert.deepEqual(shim.argsForMode({ INPUT_MODE: 'Organization' }), ['org']);
  assert.throws(() => shim.argsForMode({ INPUT_MODE: 'org scan' }),
    /^Error: mode: `org scan` is not valid; expected pipeline or organization$/);
});

test('organisation mode runs `azp-preflight org`; a bad mode fails the task once', { skip: posixOnly }, (t) => {
  const { root, taskDir } = makeTask(t, '#!/bin/sh\nprintf \'%s\\0\' "$@" > "$ARGS"\n');
  const file = path.join(root, 'args');
  const result = runShim(taskDir, { env: { ARGS: file, INPUT_MODE: 'organization' } });
  assert.equal(result.status, 0, result.stderr);
  assert.deepEqual(fs.readFileSync(file, 'utf8').split('\0').slice(0, -1), ['org']);
  const bad = runShim(taskDir, { env: { ARGS: file, INPUT_MODE: 'everything' } });
  assertFailedOnce(bad, /bad input: mode: `everything` is not valid; expected pipeline or organization/);
});

test('exits 0 whatever the binary returns, adding nothing to its output', { skip: posixOnly }, (t) => {
  const script = '#!/bin/sh\necho \'##vso[task.complete result=Failed;]1 error\'\nexit 1\n';
  const { taskDir } = makeTask(t, script);
  const result = runShim(taskDir);
  assert.equal(result.status, 0);
  assert.equal(result.stdout, '##vso[task.complete result=Failed;]1 error\n');
});

test('a missing binary (unsupported platform) fails the task once', (t) => {
  const { taskDir } = makeTask(t, null);
  fs.mkdirSync(path.join(taskDir, 'bin', 'other-arch'), { recursive: true });
  const result = runShim(taskDir);
  assertFailedOnce(result, new RegExp(`does not support this agent platform \\(${PLATFORM}\\)`));
  assert.match(result.stdout, /Supported: other-arch\./);
});

test('a binary that cannot be started fails the task once', { skip: posixOnly }, (t) => {
  // The interpreter named by the script does not exist: spawn reports ENOENT.
  const { taskDir } = makeTask(t, '#!/nonexistent/interpreter\n');
  assertFailedOnce(runShim(taskDir), /could not be started .*ENOENT/);
});

test('a directory where the binary should be fails the task once', { skip: posixOnly }, (t) => {
  const { taskDir, bin } = makeTask(t, null);
  fs.mkdirSync(bin, { recursive: true });
  assertFailedOnce(runShim(taskDir), /could not be started .*EACCES/);
});

test('a binary killed by a signal fails the task once', { skip: posixOnly }, (t) => {
  const { taskDir } = makeTask(t, '#!/bin/sh\nkill -KILL $$\n');
  assertFailedOnce(runShim(taskDir), /terminated by signal SIGKILL/);
});

test('a binary that dies outside its exit codes fails the task', { skip: posixOnly }, (t) => {
  const { taskDir } = makeTask(t, '#!/bin/sh\nexit 101\n');
  assertFailedOnce(runShim(taskDir), /exit code 101/);
});

test('runs a private copy when the task folder cannot be changed', { skip: posixOnly }, (t) => {
  const { root, bin } = makeTask(t, '#!/bin/sh\necho copy\n', 0o644);
  const agentTemp = path.join(root, 'agent-temp');
  fs.mkdirSync(agentTemp);
  const realChmod = fs.chmodSync;
  t.after(() => { fs.chmodSync = realChmod; });
  fs.chmodSync = (p, mode) => {
    if (p === bin) throw Object.assign(new Error(`EROFS: read-only file system, chmod '${p}'`), { code: 'EROFS' });
    return realChmod(p, mode);
  };
  const { exe, cleanup } = shim.ensureExecutable(bin, { AGENT_TEMPDIRECTORY: agentTemp });
  assert.equal(path.dirname(path.dirname(exe)), agentTemp);
  assert.equal(path.dirname(exe), cleanup);
  assert.equal(fs.statSync(exe).mode & 0o777, 0o755);
  assert.equal(fs.readFileSync(exe, 'utf8'), fs.readFileSync(bin, 'utf8'));
  assert.equal(fs.statSync(bin).mode & 0o777, 0o644, 'the original is left alone');
});

const canSwitchUser = process.platform !== 'win32' && process.getuid && process.getuid() === 0;
test('end to end: a task folder owned by another user runs from AGENT_TEMPDIRECTORY',
  { skip: canSwitchUser ? false : 'needs root to run the shim as another user' }, (t) => {
    const { root, taskDir, bin } = makeTask(t, '#!/bin/sh\necho "ran from $0"\n', 0o644);
    const agentTemp = path.join(root, 'agent-temp');
    fs.mkdirSync(agentTemp);
    fs.chmodSync(agentTemp, 0o777);
    fs.chmodSync(root, 0o755); // mkdtemp makes it private; the other user must get in
    const nobody = 65534;
    const result = runShim(taskDir, { env: { AGENT_TEMPDIRECTORY: agentTemp }, uid: nobody });
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`^ran from ${agentTemp}/azp-preflight-[^/]+/azp-preflight\n$`));
    assert.equal(fs.statSync(bin).mode & 0o777, 0o644);
    assert.deepEqual(fs.readdirSync(agentTemp), [], 'the private copy is removed afterwards');
  });

test('passes cancellation (SIGTERM) on to the binary', { skip: posixOnly }, async (t) => {
  const script = [
    '#!/bin/sh',
    'trap \'echo stopped > "$OUT"; exit 0\' TERM',
    'echo started > "$OUT"',
    'while :; do sleep 0.05; done',
  ].join('\n');
  const { root, taskDir } = makeTask(t, `${script}\n`);
  const out = path.join(root, 'out');
  const child = spawn(process.execPath, [path.join(taskDir, 'index.js')], {
    env: { PATH: process.env.PATH, OUT: out }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const deadline = Date.now() + 10000;
  while (!(fs.existsSync(out) && fs.readFileSync(out, 'utf8') === 'started\n')) {
    assert.ok(Date.now() < deadline, 'the fake binary did not start');
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill('SIGTERM');
  assert.deepEqual(await exited, { code: 0, signal: null });
  assert.equal(fs.readFileSync(out, 'utf8'), 'stopped\n');
});

