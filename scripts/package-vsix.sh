#!/usr/bin/env bash
# Assembles the extension layout and packs it into a .vsix with tfx (from the local
# node_modules: run `npm ci` first).
#
#   scripts/package-vsix.sh --publisher ID --repository-url URL [--extension-id ID] [--public]
#   scripts/package-vsix.sh --layout-only
#
#   --publisher ID       Marketplace publisher id (default: $AZP_PREFLIGHT_PUBLISHER). Required
#                        for a .vsix: the tree's manifest carries no publisher, so a package can
#                        never go out under a made-up one.
#   --repository-url URL https address of the repository (default: $AZP_PREFLIGHT_REPOSITORY_URL),
#                        required for a .vsix: the task's help and the Marketplace page link to
#                        the README and the code pages there, at the tag vX.Y.Z
#   --extension-id ID    extension id (default: $AZP_PREFLIGHT_EXTENSION_ID, else the manifest's)
#   --public             list the extension publicly (default: private, shared with --share-with)
#   --layout-only        only the task folder (index.js, stamped task.json, binaries), no .vsix:
#                        what CI runs as a local task before anything is published
#
# Environment:
#   BIN_DIR   built binaries as <platform>-<arch>/azp-preflight[.exe]
#             (default dist/bin, written by scripts/build-binaries.sh)
#   OUT_DIR   where extension/ and the .vsix go (default dist)
#
# The version comes from Cargo.toml and is stamped into the packaged task.json and manifest
# (scripts/version.js); the tree's copies are kept equal to it by `version.js sync` and a test.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin_dir="${BIN_DIR:-$root/dist/bin}"
out_dir="${OUT_DIR:-$root/dist}"
layout="$out_dir/extension"
task_dir="$layout/PipelinePreflight" # must equal the contribution's properties.name
tfx="$root/node_modules/.bin/tfx"

die() { echo "package-vsix: $*" >&2; exit 1; }
usage() { echo "package-vsix: $*" >&2; exit 2; }

publisher="${AZP_PREFLIGHT_PUBLISHER:-}"
extension_id="${AZP_PREFLIGHT_EXTENSION_ID:-}"
repository_url="${AZP_PREFLIGHT_REPOSITORY_URL:-}"
public=false
layout_only=false
while [ "$#" -gt 0 ]; do
  case "$1" in
    --publisher) [ "$#" -ge 2 ] || usage "--publisher needs a value"; publisher=$2; shift 2 ;;
    --extension-id) [ "$#" -ge 2 ] || usage "--extension-id needs a value"; extension_id=$2; shift 2 ;;
    --repository-url) [ "$#" -ge 2 ] || usage "--repository-url needs a value"; repository_url=$2; shift 2 ;;
    --public) public=true; shift ;;
    --layout-only) layout_only=true; shift ;;
    *) usage "unknown argument '$1' (expected --publisher ID, --repository-url URL, --extension-id ID, --public or --layout-only)" ;;
  esac
done
if ! $layout_only; then
  [ -n "$publisher" ] || usage "a .vsix needs a publisher: --publisher ID or AZP_PREFLIGHT_PUBLISHER (--layout-only needs none)"
  [ -n "$repository_url" ] || usage "a .vsix needs the repository's address for its help links: --repository-url URL or AZP_PREFLIGHT_REPOSITORY_URL"
  [ -x "$tfx" ] || die "tfx is not installed: run 'npm ci' in $root first"
fi

shopt -s nullglob
binaries=("$bin_dir"/*/azp-preflight "$bin_dir"/*/azp-preflight.exe)
shopt -u nullglob
[ "${#binaries[@]}" -gt 0 ] || die "no binaries in $bin_dir: run scripts/build-binaries.sh first"

rm -rf "$layout"
mkdir -p "$task_dir/bin"
out_dir="$(cd "$out_dir" && pwd)" layout="$(cd "$layout" && pwd)" task_dir="$(cd "$task_dir" && pwd)"
cp "$root/index.js" "$task_dir/"
for bin in "${binaries[@]}"; do
  platform="$(basename "$(dirname "$bin")")"
  mkdir -p "$task_dir/bin/$platform"
  cp "$bin" "$task_dir/bin/$platform/"
  echo "package-vsix: bin/$platform/$(basename "$bin")"
done

stamp=(node "$root/scripts/version.js" stamp --root "$root" --task-dir "$task_dir")
if $layout_only; then
  "${stamp[@]}"
  echo "package-vsix: $task_dir"
  exit 0
fi
cp -R "$root/extension/images" "$layout/"
stamp+=(--manifest "$layout/vss-extension.json" --publisher "$publisher" --repository-url "$repository_url")
[ -z "$extension_id" ] || stamp+=(--extension-id "$extension_id")
! $public || stamp+=(--public)
"${stamp[@]}" || exit $?

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
