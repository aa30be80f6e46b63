#!/usr/bin/env node
'use strict';
// Checks logging-command lines against what they are meant to say, with two independent
// parsers: azure-pipelines-task-lib's commandFromString and a port of the agent's parser.
//
//   node tests/oracles/vso-oracle.js <cases.json>
//
// cases.json is an array of
//   {"line": "...", "command": "task.logissue", "properties": {...}, "message": "..."}
// where "command": null means the line must not parse as a command in either parser.
// Prints a diff for every disagreement and exits 1 if there is any; else "N passed, 0 failed".

const fs = require('fs');
const agentParser = require('./agent-parser');
const { commandFromString } = require('azure-pipelines-task-lib/taskcommand');

/** task-lib's reading of a line: null when it is no command (no prefix, or it throws). */
function parseWithTaskLib(line) {
  const at = line.indexOf(agentParser.PREFIX);
  if (at < 0) return { parsed: null, why: 'no ##vso[ prefix' };
  try {
    const cmd = commandFromString(line.slice(at)); // it reads the first '[' and ']' it sees
    return { parsed: { command: cmd.command, properties: cmd.properties, message: cmd.message } };
  } catch (e) {
    return { parsed: null, why: `commandFromString threw: ${e.message}` };
  }
}

function parseWithAgent(line) {
  const cmd = agentParser.parse(line);
  if (!cmd) return { parsed: null, why: 'Command.TryParse returns false' };
  return { parsed: { command: cmd.command, properties: cmd.properties, message: cmd.data } };
}

const show = (v) => (v === undefined ? '(absent)' : JSON.stringify(v));

/**
 * Differences between one parser's reading and the expectation. The agent looks up command
 * names and property keys case-insensitively; task-lib compares them exactly.
 */
function differences(expected, result, ignoreCase) {
  const { parsed, why } = result;
  if (expected.command === null) {
    return parsed ? [`parsed as command ${show(parsed.command)}, expected no command`] : [];
  }
  if (!parsed) return [`not parsed as a command (${why})`];

  const diffs = [];
  const norm = (s) => (ignoreCase ? s.toLowerCase() : s);
  if (norm(parsed.command) !== norm(expected.command)) {
    diffs.push(`command: expected ${show(expected.command)}, got ${show(parsed.command)}`);
  }
  const want = expected.properties || {};
  const got = parsed.properties || {};
  const lookup = (props, key) => {
    const found = Object.keys(props).find((k) => norm(k) === norm(key));
    return found === undefined ? undefined : props[found];
  };
  for (const key of Object.keys(want)) {
    const value = lookup(got, key);
    if (value !== want[key]) diffs.push(`property ${key}: expected ${show(want[key])}, got ${show(value)}`);
  }
  for (const key of Object.keys(got)) {
    if (lookup(want, key) === undefined) diffs.push(`property ${key}: unexpected, value ${show(got[key])}`);
  }
  const message = expected.message === undefined ? '' : expected.message;
  if (parsed.message !== message) diffs.push(`message: expected ${show(message)}, got ${show(parsed.message)}`);
  return diffs;
}

/** Checks one case; returns {agent: [...], taskLib: [...]} lists of differences. */
function checkCase(c) {
  if (/[\r\n]/.test(c.line)) {
    // The agent reads output line by line: a raw CR or LF would split this into two lines.
    const diff = ['line contains a raw CR or LF, so the agent would read it as several lines'];
    return { agent: diff, taskLib: diff };
  }
  return {
    agent: differences(c, parseWithAgent(c.line), true),
    taskLib: differences(c, parseWithTaskLib(c.line), false),
  };
}

function validateCases(cases) {
  if (!Array.isArray(cases)) throw new Error('the cases file must hold a JSON array');
  cases.forEach((c, i) => {
    const ok = c && typeof c === 'object' && typeof c.line === 'string' &&
      (c.command === null || typeof c.command === 'string') &&
      (c.properties === undefined || (typeof c.properties === 'object' && c.properties !== null)) &&
      (c.message === undefined || typeof c.message === 'string');
    if (!ok) {
      throw new Error(`case ${i + 1} must be {"line": string, "command": string|null, ` +
        '"properties"?: object, "message"?: string}');
    }
  });
}

/** Runs all cases, writing a report; returns the number of failed cases. */
function run(cases, out = process.stdout) {
  validateCases(cases);
  let failed = 0;
  cases.forEach((c, i) => {
    const { agent, taskLib } = checkCase(c);
    if (agent.length === 0 && taskLib.length === 0) return;
    failed += 1;
    out.write(`FAIL case ${i + 1}: ${show(c.line)}\n`);
    const expected = c.command === null ? 'no command'
      : `${c.command} ${show(c.properties || {})} message ${show(c.message === undefined ? '' : c.message)}`;
    out.write(`  expected: ${expected}\n`);
    for (const d of agent) out.write(`  agent   : ${d}\n`);
    for (const d of taskLib) out.write(`  task-lib: ${d}\n`);
  });
  out.write(`${cases.length - failed} passed, ${failed} failed\n`);
  return failed;
}

function main(argv = process.argv.slice(2)) {
  if (argv.length !== 1) {
    process.stderr.write('usage: node tests/oracles/vso-oracle.js <cases.json>\n');
    return 2;
  }
  let cases;
  try {
    cases = JSON.parse(fs.readFileSync(argv[0], 'utf8'));
    return run(cases) > 0 ? 1 : 0;
  } catch (e) {
    process.stderr.write(`vso-oracle: ${argv[0]}: ${e.message}\n`);
    return 2;
  }
}

module.exports = { checkCase, run, parseWithAgent, parseWithTaskLib };

if (require.main === module) process.exitCode = main();
