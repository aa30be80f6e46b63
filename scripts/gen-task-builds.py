#!/usr/bin/env python3
"""Generate data/task-builds.json: which build of a task (Default, Node16, Node20, Node24, Wif,
...) published which version, per task GUID and major.

Azure Pipelines ships several builds of one task release, generated from one source folder
(`_generated/<Task>V<N>`, `_generated/<Task>V<N>_Node20`, ...), each with its own patch number.
`_generated/<Task>V<N>.versionmap.txt` records, per commit, the version each build was given.
The same version string can be given to two builds at different commits (2.238.1 was the Node 20
build of one commit and the Default build of the next), so a version maps to a set of builds.

Input: the per-task version history of microsoft/azure-pipelines-tasks
(azure-pipelines-tasks-versions.from-git.json: every version committed to a task.json, the
generated build folders, and the history of every versionmap file).

    scripts/gen-task-builds.py [--versions FILE] [--out data/task-builds.json]

A version that no versionmap names gets the build of the folder it was committed in
(`Tasks/...` and `_generated/<Task>` are the Default build).
"""

import argparse
import json
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_VERSIONS = os.path.join(ROOT, "..", "shared", "data", "azure-pipelines-tasks-versions.from-git.json")

# versionmap config names (Node20-225, Node20_229_2, wif_242, ...) -> the build family.
FAMILIES = [
    (re.compile(r"^default$", re.I), "Default"),
    (re.compile(r"^node(\d+)([-_].*)?$", re.I), None),
    (re.compile(r"^wif([-_].*)?$", re.I), "Wif"),
    (re.compile(r"^minified([-_].*)?$", re.I), "Minified"),
]


def family(config):
    for pattern, name in FAMILIES:
        m = pattern.match(config)
        if m:
            return name or f"Node{m.group(1)}"
    raise SystemExit(f"unknown build configuration `{config}`: add it to FAMILIES")


def folder_family(path):
    """Build family of a task.json path: `_generated/DockerV2_Node20/task.json` -> Node20."""
    parts = path.split("/")
    if len(parts) >= 2 and parts[0] == "_generated" and "_" in parts[1]:
        return family(parts[1].split("_", 1)[1])
    return "Default"


def vkey(text):
    return tuple(int(p) for p in text.split("."))


def builds_of(entry, versionmaps):
    major = entry["major"]
    by_version = {}
    for v in entry["versions"]:
        if vkey(v["version"])[0] != major:
            continue
        by_version.setdefault(v["version"], set())
    mapped = set()
    for folder in entry["dirs"]:
        for change in versionmaps.get(folder.split("/")[-1], []):
            for config, version in change["map"].items():
                if version not in by_version:
                    continue
                by_version[version].add(family(config))
                mapped.add(version)
    for v in entry["versions"]:
        if v["version"] in by_version and v["version"] not in mapped:
            by_version[v["version"]].add(folder_family(v["path"]))
    builds = {}
    for version, families in by_version.items():
        for f in families:
            builds.setdefault(f, []).append(version)
    order = lambda f: (f != "Default", f)
    return {f: sorted(vs, key=vkey) for f, vs in sorted(builds.items(), key=lambda kv: order(kv[0]))}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--versions", default=DEFAULT_VERSIONS)
    ap.add_argument("--out", default=os.path.join(ROOT, "data", "task-builds.json"))
    args = ap.parse_args()
    with open(args.versions, encoding="utf-8") as f:
        data = json.load(f)
    # Several history entries can share a GUID and major (a task folder renamed): merge them.
    merged = {}
    for entry in data["tasks"]:
        key = f"{entry['id'].lower()}@{entry['major']}"
        for build, versions in builds_of(entry, data["versionmaps"]).items():
            merged.setdefault(key, {}).setdefault(build, set()).update(versions)
    src = data["source"]
    lines = ["{"]
    lines.append('"source": ' + json.dumps({
        "repo": src["repo"], "commit": src["head_commit"], "date": src["head_date"][:10],
        "license": src.get("license"),
    }, separators=(",", ":")) + ",")
    lines.append('"builds": {')
    keys = sorted(merged)
    for i, key in enumerate(keys):
        builds = {b: sorted(vs, key=vkey) for b, vs in sorted(merged[key].items(), key=lambda kv: (kv[0] != "Default", kv[0]))}
        # Versions as "minor.patch" strings: the major is in the key, which halves the file.
        compact = {b: " ".join(".".join(v.split(".")[1:]) for v in vs) for b, vs in builds.items()}
        lines.append(json.dumps(key) + ":" + json.dumps(compact, separators=(",", ":")) + ("," if i + 1 < len(keys) else ""))
    lines.append("}")
    lines.append("}")
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {args.out}: {len(keys)} task majors")


if __name__ == "__main__":
    main()
