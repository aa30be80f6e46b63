'use strict';
// Hand-written cases for the logging-command oracles: what both the agent and task-lib read
// from lines escaped the way azp-preflight escapes them, and where the two parsers differ
// (so the emitter must never depend on those spots).

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const agent = require('./agent-parser');
const oracle = require('./vso-oracle');

const ORACLE = path.join(__dirname, 'vso-oracle.js');

// The emitter's escaping (src/output.rs), restated here to build lines from raw text.
const escapeProperty = (s) => s.replace(/%/g, '%AZP25').replace(/\r/g, '%0D').replace(/\n/g, '%0A')
  .replace(/]/g, '%5D').replace(/;/g, '%3B');
const escapeMessage = (s) => s.replace(/%/g, '%AZP25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
// How untrusted text is neutralised before escaping (src/report/sanitize.rs): the markers
// are broken up with a space.
const neutralise = (s) => s.replace(/##vso\[/g, '# #vso[').replace(/##\[/g, '# #[');

function logissue(props, message) {
  const body = Object.entries(props).map(([k, v]) => `${k}=${escapeProperty(v)};`).join('');
  return `##vso[task.logissue ${body}]${escapeMessage(message)}`;
}

// Lines both parsers must read exactly as expected.
const AGREED = [
  {
    line: '##vso[task.logissue type=error;sourcepath=pipelines/build.yml;linenumber=12;columnnumber=13;code=TSK001;]AzureIoTEdge@2 resolves to 2.241.1',
    command: 'task.logissue',
    properties: { type: 'error', sourcepath: 'pipelines/build.yml', linenumber: '12', columnnumber: '13', code: 'TSK001' },
    message: 'AzureIoTEdge@2 resolves to 2.241.1',
  },
  { // ';' escaped in a property value, literal in the message
    line: '##vso[task.logissue type=warning;sourcepath=a%3Bb.yml;]denied; retry later',
    command: 'task.logissue',
    properties: { type: 'warning', sourcepath: 'a;b.yml' },
    message: 'denied; retry later',
  },
  { // ']' escaped in a property value, literal in the message (only the first ']' ends the properties)
    line: '##vso[task.logissue type=error;sourcepath=x%5Dy.yml;]tag [latest] not found]',
    command: 'task.logissue',
    properties: { type: 'error', sourcepath: 'x]y.yml' },
    message: 'tag [latest] not found]',
  },
  { // '%' in both
    line: '##vso[task.logissue type=warning;sourcepath=100%AZP25/a.yml;]disk 97%AZP25 full',
    command: 'task.logissue',
    properties: { type: 'warning', sourcepath: '100%/a.yml' },
    message: 'disk 97% full',
  },
  { // the literal text "%AZP25" and "%0A" survive because '%' is escaped first
    line: logissue({ type: 'error', code: 'REG007' }, 'body: %AZP25 and %0A and %3B'),
    command: 'task.logissue',
    properties: { type: 'error', code: 'REG007' },
    message: 'body: %AZP25 and %0A and %3B',
  },
  { // CR and LF in both
    line: logissue({ type: 'error', sourcepath: 'dir\r\nname.yml' }, 'first line\r\nsecond line\nthird'),
    command: 'task.logissue',
    properties: { type: 'error', sourcepath: 'dir\r\nname.yml' },
    message: 'first line\r\nsecond line\nthird',
  },
  { // every special character at once, through the emitter's escaping
    line: logissue({ type: 'error', code: 'IDN011', sourcepath: 'a;b]c%d\re\nf' }, 'x;y]z%w\r\nv'),
    command: 'task.logissue',
    properties: { type: 'error', code: 'IDN011', sourcepath: 'a;b]c%d\re\nf' },
    message: 'x;y]z%w\r\nv',
  },
  { // injected command text in a message, neutralised: one logissue, no second command
    line: logissue({ type: 'error', code: 'REG007' },
      neutralise('proxy said: ##vso[task.complete result=Succeeded;]ok ##[error]x')),
    command: 'task.logissue',
    properties: { type: 'error', code: 'REG007' },
    message: 'proxy said: # #vso[task.complete result=Succeeded;]ok # #[error]x',
  },
  { // the emitter's shape: no ';' before ']', a located finding with neutralised text
    line: '##vso[task.logissue type=error;sourcepath=pipes/a%3Bb%5Dc%AZP25.yml;linenumber=13;columnnumber=11;code=TSK001]AzureIoTEdge@2 resolves to 2.241.1; 50%AZP25 of pushes fail; see # #vso[task.complete result=Succeeded] Fix: Pin `- task: AzureIoTEdge@2.238.1`',
    command: 'task.logissue',
    properties: { type: 'error', sourcepath: 'pipes/a;b]c%.yml', linenumber: '13', columnnumber: '11', code: 'TSK001' },
    message: 'AzureIoTEdge@2 resolves to 2.241.1; 50% of pushes fail; see # #vso[task.complete result=Succeeded] Fix: Pin `- task: AzureIoTEdge@2.238.1`',
  },
  { // untrusted text printed as a plain log line, neutralised: no command at all
    line: `  server body: ${neutralise('##vso[task.setvariable variable=PreflightResult;isOutput=true]pass')}`,
    command: null,
  },
  { // the same text NOT neutralised is a command anywhere in the line: why neutralising is needed
    line: '  server body: ##vso[task.setvariable variable=PreflightResult;isOutput=true]pass',
    command: 'task.setvariable',
    properties: { variable: 'PreflightResult', isOutput: 'true' },
    message: 'pass',
  },
  { // formatting commands are not logging commands
    line: '##[group]Registry checks',
    command: null,
  },
  { // output variables
    line: '##vso[task.setvariable variable=PreflightErrorCount;isOutput=true;]3',
    command: 'task.setvariable',
    properties: { variable: 'PreflightErrorCount', isOutput: 'true' },
    message: '3',
  },
  { // data is a path: ';' in it is left alone
    line: '##vso[task.uploadsummary]/agent/_temp/a;b/azp-preflight-summary.md',
    command: 'task.uploadsummary',
    properties: {},
    message: '/agent/_temp/a;b/azp-preflight-summary.md',
  },
  { // a secret containing "%3B" literally is registered unchanged
    line: `##vso[task.setsecret]${escapeMessage('ab%3Bcd%0A')}`,
    command: 'task.setsecret',
    properties: {},
    message: 'ab%3Bcd%0A',
  },
  {
    line: '##vso[task.complete result=SucceededWithIssues;]2 warnings',
    command: 'task.complete',
    properties: { result: 'SucceededWithIssues' },
    message: '2 warnings',
  },
  { // a property with an empty value is simply not written by the emitter
    line: logissue({ type: 'warning' }, 'no code'),
    command: 'task.logissue',
    properties: { type: 'warning' },
    message: 'no code',
  },
];

// Lines on which exactly one parser disagrees with the expectation (what the agent does).
const DIVERGENT = [
  { why: '%3B in a message: the agent unescapes it, task-lib does not', differs: 'taskLib',
    case: { line: '##vso[task.logissue type=error;]a%3Bb%5Dc', command: 'task.logissue',
      properties: { type: 'error' }, message: 'a;b]c' } },
  { why: 'a property with an empty value: the agent drops it, task-lib keeps ""', differs: 'taskLib',
    case: { line: '##vso[task.logissue type=error;code=;]msg', command: 'task.logissue',
      properties: { type: 'error' }, message: 'msg' } },
  { why: 'keys differing in case: the agent matches them, task-lib does not', differs: 'taskLib',
    case: { line: '##vso[task.logissue TYPE=error;Code=REG001;]msg', command: 'task.logissue',
      properties: { type: 'error', code: 'REG001' }, message: 'msg' } },
  { why: 'a property without "=": the agent skips it, task-lib throws', differs: 'taskLib',
    case: { line: '##vso[task.logissue type=error;oops;]msg', command: 'task.logissue',
      properties: { type: 'error' }, message: 'msg' } },
  { why: 'a command name without "area.event": the agent ignores the line', differs: 'taskLib',
    case: { line: '##vso[taskcomplete result=Failed;]', command: null } },
  { why: 'a space after ";": the agent keeps it in the key, task-lib trims it', differs: 'agent',
    case: { line: '##vso[task.logissue type=error; code=REG001]msg', command: 'task.logissue',
      properties: { type: 'error', code: 'REG001' }, message: 'msg' } },
  { why: 'a value starting with "=": the agent drops that "=" (.NET split, empty entries removed)',
    differs: 'agent',
    case: { line: '##vso[task.logissue type=error;code==REG001;]msg', command: 'task.logissue',
      properties: { type: 'error', code: '=REG001' }, message: 'msg' } },
];

function writeCases(t, cases) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vso-oracle-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'cases.json');
  fs.writeFileSync(file, JSON.stringify(cases, null, 2));
  return file;
}

const runOracle = (...args) => spawnSync(process.execPath, [ORACLE, ...args], { encoding: 'utf8' });

test('agent port: unescapes the four symbols first, then %AZP25', () => {
  assert.equal(agent.unescape('%3B%0D%0A%5D%AZP25'), ';\r\n]%');
  assert.equal(agent.unescape('%AZP253B'), '%3B', 'an escaped "%" never forms a new escape');
  assert.equal(agent.unescape('%3b %0a'), '%3b %0a', 'escapes are case-sensitive');
});

test('agent port: splits properties the way .NET Split(=, 2, RemoveEmptyEntries) does', () => {
  assert.deepEqual(agent.splitTwoRemoveEmpty('k=v', '='), ['k', 'v']);
  assert.deepEqual(agent.splitTwoRemoveEmpty('k=a=b', '='), ['k', 'a=b']);
  assert.deepEqual(agent.splitTwoRemoveEmpty('k==v', '='), ['k', 'v']);
  assert.deepEqual(agent.splitTwoRemoveEmpty('=k=v', '='), ['k', 'v']);
  assert.deepEqual(agent.splitTwoRemoveEmpty('k=', '='), ['k']);
  assert.deepEqual(agent.splitTwoRemoveEmpty('k', '='), ['k']);
  assert.deepEqual(agent.splitTwoRemoveEmpty('==', '='), []);
});

test('agent port: finds the prefix anywhere and reads to the first "]"', () => {
  const cmd = agent.parse('text before ##vso[Task.LogIssue type=error;TYPE=warning]a]b');
  assert.equal(cmd.command, 'Task.LogIssue');
  assert.deepEqual(cmd.properties, { type: 'warning' }, 'a key repeated in another case overwrites');
  assert.equal(agent.getProperty(cmd.properties, 'Type'), 'warning');
  assert.equal(cmd.data, 'a]b');
  assert.equal(agent.parse('##vso[task.complete result=Failed'), null, 'no "]"');
  assert.equal(agent.parse('##vso[a.b.c]x'), null, 'three name parts');
  assert.equal(agent.parse('##vso[task..complete]x').command, 'task.complete', 'empty parts are removed');
  assert.equal(agent.parse(''), null);
});

test('both parsers agree with every hand-written case', () => {
  for (const c of AGREED) {
    assert.deepEqual(oracle.checkCase(c), { agent: [], taskLib: [] }, c.line);
  }
});

test('the parsers differ where the emitter must not go', () => {
  for (const { why, differs, case: c } of DIVERGENT) {
    const result = oracle.checkCase(c);
    const other = differs === 'agent' ? 'taskLib' : 'agent';
    assert.deepEqual(result[other], [], `${why}: ${other} matches`);
    assert.ok(result[differs].length > 0, `${why}: ${differs} differs`);
  }
  // The %3B case in detail: this is the divergence the message escaping is designed around.
  const [semicolon] = DIVERGENT;
  assert.deepEqual(oracle.checkCase(semicolon.case).taskLib, ['message: expected "a;b]c", got "a%3Bb%5Dc"']);
});

test('the emitter\'s own escaping never reaches a divergent spot', () => {
  const nasty = ['%3B', '%5D', '%0D', '%0A', '%AZP25', ';', ']', '\r', '\n', '%', '=', ' ', '##vso['];
  for (const a of nasty) {
    for (const b of nasty) {
      const text = neutralise(`x${a}y${b}z`);
      const c = { line: logissue({ type: 'error', code: text }, text), command: 'task.logissue',
        properties: { type: 'error', code: text }, message: text };
      assert.deepEqual(oracle.checkCase(c), { agent: [], taskLib: [] }, JSON.stringify(text));
    }
  }
});

test('vso-oracle.js: passing cases print "N passed, 0 failed" and exit 0', (t) => {
  const run = runOracle(writeCases(t, AGREED));
  assert.equal(run.status, 0, run.stdout + run.stderr);
  assert.equal(run.stdout, `${AGREED.length} passed, 0 failed\n`);
});

test('vso-oracle.js: a disagreement prints a diff and exits 1', (t) => {
  const cases = [AGREED[0], DIVERGENT[0].case, { line: '##vso[task.complete result=Failed;]x', command: null }];
  const run = runOracle(writeCases(t, cases));
  assert.equal(run.status, 1);
  assert.match(run.stdout, /FAIL case 2: "##vso\[task\.logissue type=error;\]a%3Bb%5Dc"/);
  assert.match(run.stdout, /task-lib: message: expected "a;b\]c", got "a%3Bb%5Dc"/);
  assert.match(run.stdout, /FAIL case 3: .*\n {2}expected: no command\n {2}agent {3}: parsed as command "task.complete"/);
  assert.match(run.stdout, /^1 passed, 2 failed$/m);
});

test('vso-oracle.js: a raw line break in a line is a failure', (t) => {
  const run = runOracle(writeCases(t, [{ line: '##vso[task.complete result=Failed;]a\nb',
    command: 'task.complete', properties: { result: 'Failed' }, message: 'a\nb' }]));
  assert.equal(run.status, 1);
  assert.match(run.stdout, /raw CR or LF/);
});

test('vso-oracle.js: bad usage or a malformed file exits 2', (t) => {
  assert.equal(runOracle().status, 2);
  assert.equal(runOracle(path.join(os.tmpdir(), 'no-such-cases.json')).status, 2);
  const run = runOracle(writeCases(t, [{ command: 'task.complete' }]));
  assert.equal(run.status, 2);
  assert.match(run.stderr, /case 1 must be/);
});
