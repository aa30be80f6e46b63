#!/usr/bin/env bash
# Assembles the extension layout and packs it into a .vsix with tfx (from the local
# node_modules: run `npm ci` first).
#
#   scripts/package-vsix.sh
#
# Environment:
#   BIN_DIR                  built binaries as <platform>-<arch>/azp-preflight[.exe]
#                            (default dist/bin, written by scripts/build-binaries.sh)
#   OUT_DIR                  where extension/ and the .vsix go (default dist)
#   AZP_PREFLIGHT_PUBLISHER  Marketplace publisher id (default: the manifest's placeholder)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin_dir="${BIN_DIR:-$root/dist/bin}"
out_dir="${OUT_DIR:-$root/dist}"
layout="$out_dir/extension"
task_dir="$layout/PipelinePreflight" # must equal the contribution's properties.name
tfx="$root/node_modules/.bin/tfx"

die() { echo "package-vsix: $*" >&2; exit 1; }

[ -x "$tfx" ] || die "tfx is not installed: run 'npm ci' in $root first"

# The [package] version of Cargo.toml is the one version of the product.
version="$(awk -F'"' '/^\[/ { pkg = ($0 == "[package]") } pkg && /^version *=/ { print $2; exit }' "$root/Cargo.toml")"
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "no plain x.y.z version in Cargo.toml (got '$version')"

publisher="${AZP_PREFLIGHT_PUBLISHER:-}"
if [ -n "$publisher" ] && ! [[ "$publisher" =~ ^[A-Za-z0-9][A-Za-z0-9-]*$ ]]; then
  die "AZP_PREFLIGHT_PUBLISHER must be a publisher id (letters, digits, '-'), got '$publisher'"
fi

shopt -s nullglob
binaries=("$bin_dir"/*/azp-preflight "$bin_dir"/*/azp-preflight.exe)
shopt -u nullglob
[ "${#binaries[@]}" -gt 0 ] || die "no binaries in $bin_dir: run scripts/build-binaries.sh first"

rm -rf "$layout"
mkdir -p "$task_dir/bin"
out_dir="$(cd "$out_dir" && pwd)" layout="$(cd "$layout" && pwd)" task_dir="$(cd "$task_dir" && pwd)"
cp "$root/index.js" "$task_dir/"
cp -R "$root/extension/images" "$root/extension/overview.md" "$layout/"
for bin in "${binaries[@]}"; do
  platform="$(basename "$(dirname "$bin")")"
  mkdir -p "$task_dir/bin/$platform"
  cp "$bin" "$task_dir/bin/$platform/"
  echo "package-vsix: bin/$platform/$(basename "$bin")"
done

# Stamp the product version into the copies of task.json and the manifest. The task's major
# version is what pipelines reference (PipelinePreflight@1), so it must not change silently.
node - "$root" "$layout" "$version" "$publisher" <<'JS'
const fs = require('fs');
const path = require('path');
const [root, layout, version, publisher] = process.argv.slice(2);
const [major, minor, patch] = version.split('.').map(Number);

const task = JSON.parse(fs.readFileSync(path.join(root, 'task.json'), 'utf8'));
if (task.version.Major !== major) {
  console.error(`package-vsix: Cargo.toml major ${major} differs from task.json major ` +
    `${task.version.Major}; a new major needs its own task.json`);
  process.exit(1);
}
task.version = { Major: major, Minor: minor, Patch: patch };
fs.writeFileSync(path.join(layout, 'PipelinePreflight', 'task.json'), JSON.stringify(task, null, 2) + '\n');

const manifest = JSON.parse(fs.readFileSync(path.join(root, 'extension', 'vss-extension.json'), 'utf8'));
manifest.version = version;
if (publisher) manifest.publisher = publisher;
fs.writeFileSync(path.join(layout, 'vss-extension.json'), JSON.stringify(manifest, null, 2) + '\n');
JS

# tfx checks every task.json it packs (GUID id, name, friendlyName, handler targets) but only
# warns about problems; a task the agent may reject must not ship, so warnings fail here.
log="$out_dir/tfx-create.log"
(cd "$layout" && "$tfx" extension create --manifest-globs vss-extension.json \
  --output-path "$out_dir" --no-prompt --no-color) | tee "$log"
vsix="$(sed -n 's/^ *- VSIX: //p' "$log")"
if grep -q 'warning:' "$log"; then
  [ -z "$vsix" ] || rm -f "$vsix"
  die "tfx reported warnings (see above); no .vsix was kept"
fi
[ -f "$vsix" ] || die "tfx did not report the .vsix it wrote"
echo "package-vsix: $vsix"
