#!/usr/bin/env node
'use strict';
// The product has one version: the [package] version of Cargo.toml. This script reads it and
// keeps every other copy in step with it. Dependency-free, so it runs before `npm ci`.
//
//   node scripts/version.js print              the version
//   node scripts/version.js check              fail when task.json, extension/vss-extension.json
//                                              or package.json in the tree disagree with it
//   node scripts/version.js sync               write it into those files (after a bump)
//   node scripts/version.js stamp --task-dir DIR [--manifest FILE --publisher ID
//                          --repository-url URL [--extension-id ID] [--public]]
//                                              write the packaged copies: DIR/task.json (from the
//                                              tree's task.json), FILE (from the tree's manifest,
//                                              with the publisher, which the tree does not carry)
//                                              and overview.md beside FILE. Relative links in help
//                                              texts and the overview (README.md, docs/codes) point
//                                              into the repository at the release tag vX.Y.Z.
//   node scripts/version.js tag vX.Y.Z         fail unless the release tag names this version
//   node scripts/version.js notes              print this version's CHANGELOG.md section
//
// Every command takes --root DIR (default: the repository holding this script).

const fs = require('fs');
const path = require('path');

class UsageError extends Error {}

const PLAIN_VERSION = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$/;
// Marketplace publisher and extension ids: letters, digits, '-' (and '_' for extension ids).
const PUBLISHER_ID = /^[A-Za-z0-9][A-Za-z0-9-]*$/;
const EXTENSION_ID = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
const REPOSITORY_URL = /^https:\/\/[A-Za-z0-9.-]+(:\d+)?(\/[A-Za-z0-9._~%-]+)+\/?$/;
// A Markdown link target without a scheme or fragment start: a path in the repository.
const RELATIVE_LINK = /\]\((?![A-Za-z][A-Za-z0-9+.-]*:|#|\/)([^)\s]+)\)/g;

function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`cannot read ${file}: ${e.message}`);
  }
}

function writeJson(file, value) {
  fs.writeFileSync(file, JSON.stringify(value, null, 2) + '\n');
}

/** The `version` of the [package] table, not of a dependency or another table. */
function cargoVersion(root) {
  const file = path.join(root, 'Cargo.toml');
  const text = fs.readFileSync(file, 'utf8');
  let inPackage = false;
  for (const line of text.split(/\r?\n/)) {
    const table = line.match(/^\s*\[([^\]]*)\]/);
    if (table) {
      inPackage = table[1].trim() === 'package';
      continue;
    }
    const m = inPackage && line.match(/^\s*version\s*=\s*"([^"]*)"/);
    if (m) {
      if (!PLAIN_VERSION.test(m[1])) {
        throw new Error(`${file}: [package] version '${m[1]}' is not a plain x.y.z version`);
      }
      return m[1];
    }
  }
  throw new Error(`${file}: no version in [package]`);
}

function parts(version) {
  const [major, minor, patch] = version.split('.').map(Number);
  return { Major: major, Minor: minor, Patch: patch };
}

/** The files in the tree that carry a copy of the version, and how to read and set it. */
function copies(root) {
  return [
    {
      file: path.join(root, 'task.json'),
      get: (j) => (j.version ? [j.version.Major, j.version.Minor, j.version.Patch].join('.') : undefined),
      set: (j, v) => { j.version = parts(v); },
    },
    {
      file: path.join(root, 'extension', 'vss-extension.json'),
      get: (j) => j.version,
      set: (j, v) => { j.version = v; },
    },
    {
      file: path.join(root, 'package.json'),
      get: (j) => j.version,
      set: (j, v) => { j.version = v; },
    },
  ];
}

/** One line per copy that disagrees with Cargo.toml; empty when all agree. */
function disagreements(root) {
  const version = cargoVersion(root);
  const out = [];
  for (const copy of copies(root)) {
    const found = copy.get(readJson(copy.file));
    if (found !== version) {
      out.push(`${path.relative(root, copy.file)} has version ${found}, Cargo.toml has ${version}`);
    }
  }
  return out;
}

function sync(root) {
  const version = cargoVersion(root);
  const task = readJson(path.join(root, 'task.json'));
  // The task's major is what pipelines reference (PipelinePreflight@1): a new major is a
  // deliberate change of task.json (and of every pipeline), never a side effect of a bump.
  if (task.version && task.version.Major !== parts(version).Major) {
    throw new Error(`Cargo.toml major ${parts(version).Major} differs from task.json major ` +
      `${task.version.Major}; change the task's major in task.json by hand first`);
  }
  for (const copy of copies(root)) {
    const json = readJson(copy.file);
    copy.set(json, version);
    writeJson(copy.file, json);
  }
  return version;
}

/**
 * Relative links point into the repository at the release tag, so that help read in the
 * pipeline editor or on the Marketplace matches the version installed. Links to packaged
 * images stay relative: the Marketplace serves them from the .vsix.
 */
function absoluteLinks(markdown, repositoryUrl, ref) {
  return markdown.replace(RELATIVE_LINK, (whole, target) => (target.startsWith('images/')
    ? whole : `](${repositoryUrl}/blob/${ref}/${target.replace(/^\.\//, '')})`));
}

/** Writes the packaged copies of task.json and the manifest, stamped with the version. */
function stamp(root, { taskDir, manifest, publisher, extensionId, isPublic, repositoryUrl }) {
  if (!taskDir) throw new UsageError('stamp needs --task-dir DIR');
  if (manifest && !publisher) {
    throw new UsageError('stamp needs --publisher ID (the Marketplace publisher id; the tree ' +
      'carries none so that no package goes out under a made-up publisher)');
  }
  if (publisher !== undefined && !PUBLISHER_ID.test(publisher)) {
    throw new UsageError(`--publisher must be letters, digits and '-', got '${publisher}'`);
  }
  if (extensionId !== undefined && !EXTENSION_ID.test(extensionId)) {
    throw new UsageError(`--extension-id must be letters, digits, '-' and '_', got '${extensionId}'`);
  }
  if (manifest && !repositoryUrl) {
    throw new UsageError('stamp needs --repository-url URL (the https address of the repository, ' +
      'e.g. $(Build.Repository.Uri)): the help links of a published task must not be relative');
  }
  const repo = repositoryUrl && repositoryUrl.replace(/\/$/, '').replace(/\.git$/, '');
  if (repositoryUrl !== undefined && !REPOSITORY_URL.test(repositoryUrl)) {
    throw new UsageError(`--repository-url must be an https URL of a repository, got '${repositoryUrl}'`);
  }
  const version = cargoVersion(root);
  const ref = `v${version}`;

  const task = readJson(path.join(root, 'task.json'));
  if (task.version.Major !== parts(version).Major) {
    throw new Error(`Cargo.toml major ${parts(version).Major} differs from task.json major ` +
      `${task.version.Major}; a new major needs its own task.json`);
  }
  task.version = parts(version);
  if (repo) {
    task.helpMarkDown = absoluteLinks(task.helpMarkDown, repo, ref);
    for (const input of task.inputs || []) {
      if (input.helpMarkDown) input.helpMarkDown = absoluteLinks(input.helpMarkDown, repo, ref);
    }
  }
  fs.mkdirSync(taskDir, { recursive: true });
  writeJson(path.join(taskDir, 'task.json'), task);

  if (!manifest) return { version }; // the task folder alone (a layout to run, not to publish)
  const ext = readJson(path.join(root, 'extension', 'vss-extension.json'));
  ext.version = version;
  ext.publisher = publisher;
  if (extensionId !== undefined) ext.id = extensionId;
  if (isPublic) ext.public = true;
  ext.repository = { type: 'git', uri: repo };
  ext.links = { ...ext.links, getstarted: { uri: `${repo}/blob/${ref}/README.md` }, repository: { uri: repo } };
  fs.mkdirSync(path.dirname(manifest), { recursive: true });
  writeJson(manifest, ext);
  const overview = fs.readFileSync(path.join(root, 'extension', 'overview.md'), 'utf8');
  fs.writeFileSync(path.join(path.dirname(manifest), 'overview.md'), absoluteLinks(overview, repo, ref));
  return { version, publisher, id: ext.id };
}

function checkTag(root, tag) {
  const version = cargoVersion(root);
  if (tag !== `v${version}`) {
    throw new Error(`tag '${tag}' does not name the version in Cargo.toml (expected v${version})`);
  }
  return version;
}

/** The body of `## [x.y.z] ...` up to the next `## ` heading, trimmed. */
function notes(root) {
  const version = cargoVersion(root);
  const text = fs.readFileSync(path.join(root, 'CHANGELOG.md'), 'utf8');
  const lines = text.split(/\r?\n/);
  const heading = new RegExp(`^## \\[${version.replace(/\./g, '\\.')}\\]`);
  const start = lines.findIndex((l) => heading.test(l));
  if (start < 0) throw new Error(`CHANGELOG.md has no '## [${version}]' section`);
  let end = lines.findIndex((l, i) => i > start && /^## /.test(l));
  if (end < 0) end = lines.length;
  const body = lines.slice(start + 1, end).join('\n').replace(/\n\[[^\]]+\]: .*$/gm, '').trim();
  if (!body) throw new Error(`CHANGELOG.md's '## [${version}]' section is empty`);
  return body + '\n';
}

function parseArgs(argv) {
  const opts = { root: path.resolve(__dirname, '..'), positional: [] };
  const takesValue = { '--root': 'root', '--task-dir': 'taskDir', '--manifest': 'manifest',
    '--publisher': 'publisher', '--extension-id': 'extensionId', '--repository-url': 'repositoryUrl' };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (takesValue[arg]) {
      if (i + 1 >= argv.length) throw new UsageError(`${arg} needs a value`);
      opts[takesValue[arg]] = argv[(i += 1)];
    } else if (arg === '--public') {
      opts.isPublic = true;
    } else if (arg.startsWith('--')) {
      throw new UsageError(`unknown option ${arg}`);
    } else {
      opts.positional.push(arg);
    }
  }
  return opts;
}

function main(argv, out = process.stdout) {
  const opts = parseArgs(argv);
  const [command, ...rest] = opts.positional;
  const root = path.resolve(opts.root);
  switch (command) {
    case 'print':
      out.write(`${cargoVersion(root)}\n`);
      return 0;
    case 'check': {
      const bad = disagreements(root);
      if (bad.length === 0) {
        out.write(`version ${cargoVersion(root)}: task.json, vss-extension.json and package.json agree\n`);
        return 0;
      }
      for (const line of bad) process.stderr.write(`version: ${line}\n`);
      process.stderr.write("version: run 'node scripts/version.js sync' after changing Cargo.toml\n");
      return 1;
    }
    case 'sync':
      out.write(`version ${sync(root)} written to task.json, vss-extension.json and package.json\n`);
      return 0;
    case 'stamp': {
      const s = stamp(root, { ...opts, taskDir: opts.taskDir && path.resolve(opts.taskDir),
        manifest: opts.manifest && path.resolve(opts.manifest) });
      out.write(s.publisher ? `stamped ${s.publisher}.${s.id} ${s.version}\n` : `stamped task ${s.version}\n`);
      return 0;
    }
    case 'tag':
      if (rest.length !== 1) throw new UsageError('tag needs the tag name, e.g. v1.2.3');
      out.write(`tag ${rest[0]} names version ${checkTag(root, rest[0])}\n`);
      return 0;
    case 'notes':
      out.write(notes(root));
      return 0;
    default:
      throw new UsageError(`expected a command: print, check, sync, stamp, tag or notes (got '${command || ''}')`);
  }
}

module.exports = { cargoVersion, disagreements, sync, stamp, absoluteLinks, checkTag, notes, main };

if (require.main === module) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`version: ${e.message}\n`);
    process.exitCode = e instanceof UsageError ? 2 : 1;
  }
}
