'use strict';
// task.json against the contract (README, "Inputs" and the output variables under "In a
// pipeline"), the checks tfx applies, and the official schema.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const AjvDraft04 = require('ajv-draft-04');
const { REPO } = require('./helpers');

const task = JSON.parse(fs.readFileSync(path.join(REPO, 'task.json'), 'utf8'));

// The contract: names are the INPUT_<NAME> variables the binary reads.
const INPUTS = [
  ['mode', 'pickList', 'pipeline'],
  ['organization', 'string', undefined],
  ['projects', 'multiLine', undefined],
  ['sinceDays', 'int', '30'],
  ['azureSubscription', 'connectedService:AzureRM', undefined],
  ['containerRegistry', 'connectedService:dockerregistry', undefined],
  ['registries', 'multiLine', undefined],
  ['deployTargets', 'multiLine', undefined],
  ['pipelineFiles', 'multiLine', undefined],
  ['checks', 'string', 'registry,identity,tasks,agent'],
  ['expiryWarningDays', 'int', '30'],
  ['expiryErrorDays', 'int', '7'],
  ['failOn', 'pickList', 'error'],
  ['advisoryFile', 'filePath', undefined],
  ['advisoryUpdate', 'string', 'auto'],
  ['offline', 'boolean', 'false'],
  ['timeoutSeconds', 'int', '60'],
];
const OUTPUTS = ['PreflightResult', 'PreflightErrorCount', 'PreflightWarningCount', 'PreflightReportPath'];

function validator() {
  const schema = JSON.parse(fs.readFileSync(path.join(REPO, 'schemas', 'tasks.schema.json'), 'utf8'));
  // The schema's patterns are plain ECMAScript regexes ("\:" is not valid with the u flag).
  const ajv = new AjvDraft04({ allErrors: true, strict: false, unicodeRegExp: false });
  return ajv.compile(schema);
}

test('identity: name, GUID id, version 1.0.0 as numbers, category', () => {
  assert.equal(task.name, 'PipelinePreflight');
  assert.match(task.name, /^[A-Za-z0-9-]+$/);
  assert.match(task.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
  assert.deepEqual(task.version, { Major: 1, Minor: 0, Patch: 0 });
  assert.equal(task.category, 'Utility');
});

test('tfx checks: friendlyName of 1 to 40 characters, instanceNameFormat present', () => {
  assert.equal(typeof task.friendlyName, 'string');
  assert.ok(task.friendlyName.length >= 1 && task.friendlyName.length <= 40, task.friendlyName);
  assert.equal(typeof task.instanceNameFormat, 'string');
  assert.ok(task.instanceNameFormat.length > 0);
});

test('handlers: Node20_1 and Node24 run index.js, and every target exists', () => {
  assert.deepEqual(Object.keys(task.execution).sort(), ['Node20_1', 'Node24']);
  for (const section of ['prejobexecution', 'execution', 'postjobexecution']) {
    for (const [handler, data] of Object.entries(task[section] || {})) {
      assert.equal(data.target, 'index.js', `${section}.${handler}`);
      assert.ok(fs.existsSync(path.join(REPO, data.target)), `${section}.${handler} target exists`);
    }
  }
});

test('minimumAgentVersion is one that has the Node20_1 handler', () => {
  const [major, minor, patch] = task.minimumAgentVersion.split('.').map(Number);
  const atLeast = (a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
  // 3.232.1 is the first agent release that runs Node20_1 handlers.
  assert.ok(atLeast([major, minor, patch || 0], [3, 232, 1]) >= 0, task.minimumAgentVersion);
});

test('inputs are exactly the contract, none required, each documented', () => {
  assert.deepEqual(task.inputs.map((i) => [i.name, i.type, i.defaultValue]), INPUTS);
  for (const input of task.inputs) {
    assert.notEqual(input.required, true, `${input.name} is not required`);
    assert.ok(input.label && input.label.length > 0, `${input.name} has a label`);
    assert.ok(input.helpMarkDown && input.helpMarkDown.length > 0, `${input.name} has help`);
  }
  const failOn = task.inputs.find((i) => i.name === 'failOn');
  assert.deepEqual(Object.keys(failOn.options), ['error', 'warning', 'never']);
  const groups = new Set((task.groups || []).map((g) => g.name));
  for (const input of task.inputs.filter((i) => i.groupName)) {
    assert.ok(groups.has(input.groupName), `${input.name}: group ${input.groupName} is declared`);
  }
});

test('output variables are exactly the contract, each described', () => {
  assert.deepEqual(task.outputVariables.map((v) => v.name), OUTPUTS);
  for (const v of task.outputVariables) assert.ok(v.description, `${v.name} has a description`);
});

test('validates against the official tasks.schema.json', () => {
  const validate = validator();
  assert.ok(validate(task), JSON.stringify(validate.errors, null, 2));
});

test('the schema validator does reject broken manifests', () => {
  // Guards the test above against a validator that accepts anything.
  const validate = validator();
  const broken = JSON.parse(JSON.stringify(task));
  broken.version.Major = '1';
  broken.execution.Process = { target: 'azp-preflight.exe' };
  broken.inputs[0].name = 'azure_subscription';
  broken.ecosystem = 'rust';
  assert.equal(validate(broken), false);
  const where = validate.errors.map((e) => `${e.instancePath} ${e.message}`).sort();
  assert.deepEqual(where, [
    ' must NOT have additional properties',
    '/execution must NOT have additional properties',
    '/inputs/0/name must match pattern "^[A-Za-z][A-Za-z0-9]*$"',
    '/version/Major must be number',
  ]);
});
