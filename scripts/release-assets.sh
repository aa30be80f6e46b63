#!/usr/bin/env bash
# Gathers what a release attaches, under names that say what they are, and writes
# SHA256SUMS over them, so that `sha256sum -c SHA256SUMS` verifies any download.
#
#   scripts/release-assets.sh VSIX [SBOM_DIR]
#
#   -> OUT_DIR/azp-preflight-<version>-<platform>[.exe]   each binary in BIN_DIR
#      OUT_DIR/<publisher>.<extension>-<version>.vsix
#      OUT_DIR/*.cdx.json                                  the SBOMs in SBOM_DIR
#      OUT_DIR/SHA256SUMS
#
# BIN_DIR as for scripts/build-binaries.sh (default dist/bin); OUT_DIR default dist/release.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin_dir="${BIN_DIR:-$root/dist/bin}"
out="${OUT_DIR:-$root/dist/release}"
die() { echo "release-assets: $*" >&2; exit 1; }

[ "$#" -ge 1 ] && [ "$#" -le 2 ] || { echo "usage: scripts/release-assets.sh VSIX [SBOM_DIR]" >&2; exit 2; }
vsix=$1 sbom_dir=${2:-}
[ -f "$vsix" ] || die "no .vsix at $vsix"
version="$(node "$root/scripts/version.js" print)"
# The .vsix must be the one made from this version (tfx names it <publisher>.<id>-<version>.vsix).
[[ "$(basename "$vsix")" == *"-$version.vsix" ]] || die "$vsix is not a $version package"

rm -rf "$out"
mkdir -p "$out"
count=0
for platform in linux-x64 linux-arm64 win32-x64; do
  file=azp-preflight ext=""
  [ "$platform" = win32-x64 ] && ext=.exe
  if [ -f "$bin_dir/$platform/$file$ext" ]; then
    cp "$bin_dir/$platform/$file$ext" "$out/azp-preflight-$version-$platform$ext"
    count=$((count + 1))
  fi
done
[ "$count" -gt 0 ] || die "no binaries in $bin_dir"
cp "$vsix" "$out/"
if [ -n "$sbom_dir" ]; then
  shopt -s nullglob
  sboms=("$sbom_dir"/*.cdx.json)
  shopt -u nullglob
  [ "${#sboms[@]}" -gt 0 ] || die "no *.cdx.json in $sbom_dir"
  cp "${sboms[@]}" "$out/"
fi

# Names only (no directory) and sorted, so the file checks in the folder it is downloaded to.
(cd "$out" && find . -maxdepth 1 -type f ! -name SHA256SUMS -printf '%f\n' | LC_ALL=C sort \
  | xargs -d '\n' sha256sum -- >SHA256SUMS && sha256sum --quiet -c SHA256SUMS)
echo "release-assets: $out"
cat "$out/SHA256SUMS"
