'use strict';
// A port of how the Azure Pipelines agent reads a logging command from one line of task output
// (Command.TryParse and CommandStringConvertor.Unescape), used as a test oracle. The agent is
// what runs in production, so where it and azure-pipelines-task-lib differ, this one decides
// what a pipeline actually does.

const PREFIX = '##vso[';

// Unescape order matters: the four symbols first, then %AZP25, so that "%AZP253B" stays "%3B".
const SYMBOLS = [['%3B', ';'], ['%0D', '\r'], ['%0A', '\n'], ['%5D', ']']];

function unescape(text) {
  let out = text;
  for (const [escaped, plain] of SYMBOLS) out = out.split(escaped).join(plain);
  return out.split('%AZP25').join('%');
}

/**
 * .NET's `s.Split(sep, 2, StringSplitOptions.RemoveEmptyEntries)`: empty pieces are skipped
 * and do not count, and once one piece is taken the rest of the string (after skipping any
 * separators that would only produce empty pieces) is the second.
 */
function splitTwoRemoveEmpty(s, sep) {
  const parts = [];
  let start = 0;
  let at = s.indexOf(sep, start);
  while (at !== -1 && parts.length < 1) {
    if (at > start) parts.push(s.slice(start, at));
    start = at + 1;
    at = s.indexOf(sep, start);
  }
  if (parts.length === 1) {
    while (s.startsWith(sep, start)) start += 1; // leading empties before the remainder
  }
  if (start < s.length) parts.push(s.slice(start));
  return parts;
}

/**
 * Case-insensitive property lookup like the agent's OrdinalIgnoreCase dictionary: a later
 * key that differs only in case replaces the value but keeps the first spelling.
 */
function setProperty(props, key, value) {
  const existing = Object.keys(props).find((k) => k.toLowerCase() === key.toLowerCase());
  props[existing === undefined ? key : existing] = value;
}

function getProperty(props, key) {
  const found = Object.keys(props).find((k) => k.toLowerCase() === key.toLowerCase());
  return found === undefined ? undefined : props[found];
}

/**
 * Parses one output line. Returns null when the agent would not treat it as a command,
 * else {area, event, command: "area.event", properties, data}.
 */
function parse(line) {
  if (typeof line !== 'string' || line.length === 0) return null;
  // Anywhere in the line, not only at its start. This search is ordinal; the agent's
  // IndexOf(string) is culture-sensitive and may also skip ignorable characters (U+00AD...).
  const prefixAt = line.indexOf(PREFIX);
  if (prefixAt < 0) return null;
  const bracketAt = line.indexOf(']', prefixAt);
  if (bracketAt < 0) return null;

  const cmdInfo = line.slice(prefixAt + PREFIX.length, bracketAt);
  const spaceAt = cmdInfo.indexOf(' ');
  const name = spaceAt < 0 ? cmdInfo : cmdInfo.slice(0, spaceAt);
  const areaEvent = name.split('.').filter((p) => p.length > 0);
  if (areaEvent.length !== 2) return null;

  const properties = {};
  if (spaceAt > 0) {
    for (const entry of cmdInfo.slice(spaceAt + 1).split(';')) {
      if (entry.length === 0) continue;
      const pair = splitTwoRemoveEmpty(entry, '=');
      // "key=" (no value) yields one piece and is dropped silently; keys are not trimmed.
      if (pair.length === 2) setProperty(properties, pair[0], unescape(pair[1]));
    }
  }
  return {
    area: areaEvent[0],
    event: areaEvent[1],
    command: `${areaEvent[0]}.${areaEvent[1]}`,
    properties,
    data: unescape(line.slice(bracketAt + 1)),
  };
}

module.exports = { parse, unescape, splitTwoRemoveEmpty, getProperty, PREFIX };
