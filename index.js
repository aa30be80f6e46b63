'use strict';
// Entry point of the PipelinePreflight task: the agent's Node handler runs this file, and it
// runs the native azp-preflight binary for this platform.
//
// Deliberately dependency-free: loading azure-pipelines-task-lib/task would delete INPUT_* and
// ENDPOINT_AUTH_* from process.env, and the binary reads exactly those.

const childProcess = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const TOOL = 'azp-preflight';

/** bin/<platform>-<arch>/azp-preflight[.exe] inside the task folder. */
function binaryPath(taskDir = __dirname, platform = process.platform, arch = process.arch) {
  const file = platform === 'win32' ? `${TOOL}.exe` : TOOL;
  return path.join(taskDir, 'bin', `${platform}-${arch}`, file);
}

/** Logging-command message escaping: '%' first, so the other escapes are not re-escaped. */
function escapeData(text) {
  return String(text).replace(/%/g, '%AZP25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

/** Reports a failure the agent understands: one error issue and one failed result. */
function failTask(message, out = process.stdout) {
  const data = escapeData(message);
  out.write(`##vso[task.logissue type=error;]${data}\n##vso[task.complete result=Failed;]${data}\n`);
}

/**
 * The .vsix packaging drops the exec bit, so restore it. When the task folder cannot be
 * changed (read-only mount, another owner), run a private copy from the agent's temp folder.
 * Returns the path to run and the folder to remove afterwards (or null).
 */
function ensureExecutable(bin, env = process.env) {
  if (process.platform === 'win32') return { exe: bin, cleanup: null };
  try {
    fs.chmodSync(bin, 0o755);
    return { exe: bin, cleanup: null };
  } catch (_) {
    try {
      fs.accessSync(bin, fs.constants.X_OK);
      return { exe: bin, cleanup: null }; // already executable: nothing to fix
    } catch (_) {
      // fall through to the private copy
    }
  }
  const dir = fs.mkdtempSync(path.join(env.AGENT_TEMPDIRECTORY || os.tmpdir(), `${TOOL}-`));
  const exe = path.join(dir, path.basename(bin));
  fs.copyFileSync(bin, exe);
  fs.chmodSync(exe, 0o755);
  return { exe, cleanup: dir };
}

/**
 * The binary's arguments for the task's `mode` input: none for a pipeline's preflight (the
 * binary reads the INPUT_* variables itself), `org` for an organisation scan. Throws on a
 * value that is neither, naming the input, the value and the expected form.
 */
function argsForMode(env = process.env) {
  const mode = (env.INPUT_MODE || 'pipeline').trim().toLowerCase();
  if (mode === '' || mode === 'pipeline') return [];
  if (mode === 'organization') return ['org'];
  throw new Error(`mode: \`${env.INPUT_MODE}\` is not valid; expected pipeline or organization`);
}

function supportedPlatforms(taskDir) {
  try {
    return fs.readdirSync(path.join(taskDir, 'bin')).sort().join(', ') || 'none';
  } catch (_) {
    return 'none';
  }
}

function main(argv = process.argv.slice(2), env = process.env, taskDir = __dirname) {
  // The Node handler treats any non-zero exit as an infrastructure error; the result travels
  // as ##vso commands instead, so every path below ends with exit code 0.
  process.exitCode = 0;
  if (argv.length === 0) {
    try {
      argv = argsForMode(env);
    } catch (e) {
      failTask(`${TOOL}: bad input: ${e.message}`);
      return;
    }
  }
  const bin = binaryPath(taskDir);
  const platform = `${process.platform}-${process.arch}`;
  if (!fs.existsSync(bin)) {
    failTask(`${TOOL} does not support this agent platform (${platform}): ` +
      `${path.relative(taskDir, bin)} is not in the task. Supported: ${supportedPlatforms(taskDir)}.`);
    return;
  }

  let run;
  try {
    run = ensureExecutable(bin, env);
  } catch (e) {
    failTask(`${TOOL} could not be made executable (${bin}): ${e.message}`);
    return;
  }

  let settled = false;
  const finish = (message) => {
    if (settled) return;
    settled = true;
    process.removeListener('SIGINT', forward).removeListener('SIGTERM', forward);
    if (run.cleanup) fs.rmSync(run.cleanup, { recursive: true, force: true });
    if (message) failTask(message);
  };

  let child;
  try {
    child = childProcess.spawn(run.exe, argv, { stdio: 'inherit', env });
  } catch (e) {
    finish(`${TOOL} could not be started (${run.exe}): ${e.message}`); // rare errors throw here
    return;
  }
  // Cancellation signals reach this process; pass them on so the binary can stop cleanly.
  function forward(signal) {
    child.kill(signal);
  }
  process.on('SIGINT', forward).on('SIGTERM', forward);

  child.on('error', (e) => finish(`${TOOL} could not be started (${run.exe}): ${e.message}`));
  child.on('exit', (code, signal) => {
    if (signal) finish(`${TOOL} was terminated by signal ${signal}.`);
    // 0-3 are the binary's documented exit codes, each preceded by its own task.complete.
    else if (code > 3) finish(`${TOOL} stopped unexpectedly with exit code ${code}.`);
    else finish(null);
  });
}

module.exports = { argsForMode, binaryPath, escapeData, failTask, ensureExecutable, main };

if (require.main === module) main();
