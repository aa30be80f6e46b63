#!/usr/bin/env python3
"""Generate data/builtin-tasks.json, the compact built-in task index embedded in the binary,
and check the advisory database against the same version history.

Input: the per-task version history of microsoft/azure-pipelines-tasks
(azure-pipelines-tasks-versions.from-git.json: every version committed to a task.json, incl.
the _generated Node build variants, plus HEAD metadata).

    scripts/gen-builtin-tasks.py [--versions FILE] [--out data/builtin-tasks.json]
    scripts/gen-builtin-tasks.py --check-advisories [--versions FILE]

--check-advisories prints, for every advisory, the known versions in and around its affected
ranges and fails when a listed version (affected, last good, fixed) never existed.
"""

import argparse
import json
import os
import sys
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_VERSIONS = os.path.join(ROOT, "..", "shared", "data", "azure-pipelines-tasks-versions.from-git.json")


def vkey(text):
    return tuple(int(p) for p in text.split("."))


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def head_of(entry):
    """The HEAD task.json of the main (non-generated) folder, else any."""
    heads = entry.get("head") or []
    for h in heads:
        if h["path"].startswith("Tasks/"):
            return h
    return heads[0] if heads else None


def build_index(data):
    by_id = {}
    for entry in data["tasks"]:
        tid = entry["id"].lower()
        versions = sorted({v["version"] for v in entry["versions"]}, key=vkey)
        versions = [v for v in versions if vkey(v)[0] == entry["major"]]
        head = head_of(entry)
        major = {
            "name": head.get("name") if head else None,
            "latest": versions[-1] if versions else None,
            "inRepo": head is not None,
            "deprecated": bool(head and head.get("deprecated")),
            "message": head.get("deprecationMessage") if head else None,
            "removalDate": head.get("removalDate") if head else None,
            "handlers": head.get("execution_handlers") if head else None,
            "minimumAgentVersion": head.get("minimumAgentVersion") if head else None,
        }
        task = by_id.setdefault(tid, {"id": tid, "names": [], "majors": {}})
        for name in entry["names"]:
            if name not in task["names"]:
                task["names"].append(name)
        task["majors"][str(entry["major"])] = major
    tasks = sorted(by_id.values(), key=lambda t: (t["names"][0].lower(), t["id"]))
    for t in tasks:
        t["majors"] = dict(sorted(t["majors"].items(), key=lambda kv: int(kv[0])))
    return tasks


def write_index(data, out):
    src = data["source"]
    lines = [
        "{",
        '"source": ' + json.dumps({
            "repo": src["repo"],
            "commit": src["head_commit"],
            "date": src["head_date"][:10],
            "license": src.get("license"),
            "generator": "scripts/gen-builtin-tasks.py",
        }) + ",",
        '"tasks": [',
    ]
    tasks = build_index(data)
    for i, t in enumerate(tasks):
        lines.append(json.dumps(t, separators=(",", ":")) + ("," if i + 1 < len(tasks) else ""))
    lines += ["]", "}"]
    with open(out, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {out}: {len(tasks)} tasks", file=sys.stderr)


def in_range(v, text):
    """Same grammar as the Rust side: `2.241.1`, `= 2.241.1` or comparators joined by commas."""
    ok = True
    for part in [p.strip() for p in text.split(",")]:
        for op in ("<=", ">=", "<", ">", "="):
            if part.startswith(op):
                bound = vkey(part[len(op):].strip())
                break
        else:
            op, bound = "=", vkey(part)
        ok &= {"<=": v <= bound, ">=": v >= bound, "<": v < bound, ">": v > bound, "=": v == bound}[op]
    return ok


def check_advisories(data):
    versions = {}
    for entry in data["tasks"]:
        key = (entry["id"].lower(), entry["major"])
        versions.setdefault(key, set()).update(v["version"] for v in entry["versions"])
    adv_dir = os.path.join(ROOT, "advisories")
    failures = 0
    for name in sorted(os.listdir(adv_dir)):
        if not name.endswith(".toml"):
            continue
        with open(os.path.join(adv_dir, name), "rb") as f:
            adv = tomllib.load(f)
        known = sorted(versions.get((adv["task-id"].lower(), adv["major"]), set()), key=vkey)
        vers = adv.get("versions", {})
        ranges = vers.get("affected", [])
        affected = [v for v in known if any(in_range(vkey(v), r) for r in ranges)]
        listed = [vers.get("last-good"), vers.get("fixed")]
        listed += [r.split("=")[-1].strip() for r in ranges if "<" not in r and ">" not in r]
        missing = [v for v in listed if v and v not in known]
        status = "ok" if not missing else "MISSING " + ", ".join(missing)
        if ranges and not affected:
            status = "NO KNOWN VERSION IN RANGE"
        print(f"{adv['id']} {adv['task']}@{adv['major']}: affected {affected} "
              f"last-good {vers.get('last-good')} fixed {vers.get('fixed')}: {status}")
        failures += status != "ok"
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--versions", default=DEFAULT_VERSIONS)
    ap.add_argument("--out", default=os.path.join(ROOT, "data", "builtin-tasks.json"))
    ap.add_argument("--check-advisories", action="store_true")
    args = ap.parse_args()
    data = load(args.versions)
    if args.check_advisories:
        sys.exit(1 if check_advisories(data) else 0)
    write_index(data, args.out)


if __name__ == "__main__":
    main()
