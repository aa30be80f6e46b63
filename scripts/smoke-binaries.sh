#!/usr/bin/env bash
# Runs each shipped binary once, the way a user would, before it is packed: on this machine,
# or under an emulator when it is built for another one (Debian's qemu-user-static for
# linux-arm64, Debian's wine/wine64 for win32-x64).
#
#   scripts/smoke-binaries.sh [linux-x64] [linux-arm64] [win32-x64]   (default: all three)
#
# A missing binary or emulator fails: a release must have proven every binary it ships.
# BIN_DIR as for scripts/build-binaries.sh (default dist/bin).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin_dir="${BIN_DIR:-$root/dist/bin}"
version="$(node "$root/scripts/version.js" print)"
example=examples/azureiotedge/pinned-during-incident.yml # a stale pin: one TSK002 warning

say() { echo "smoke: $*" >&2; }
fail() { say "FAILED: $*"; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

# The command prefix that runs a binary of <platform> here (empty: run it directly).
runner() {
  local machine
  machine="$(uname -m)"
  case "$1" in
    linux-x64) [ "$machine" = x86_64 ] || fail "linux-x64 needs an x86_64 machine" ;;
    linux-arm64)
      if [ "$machine" != aarch64 ]; then
        for q in qemu-aarch64-static qemu-aarch64; do
          if have "$q"; then echo "$q"; return; fi
        done
        fail "no qemu-aarch64-static to run linux-arm64 (Debian's qemu-user-static)"
      fi ;;
    win32-x64)
      for w in wine /usr/lib/wine/wine64 wine64; do
        if have "$w"; then echo "$w"; return; fi
      done
      fail "no wine to run win32-x64 (Debian's wine and wine64)" ;;
    *) say "unknown platform '$1' (expected linux-x64, linux-arm64 or win32-x64)"; exit 2 ;;
  esac
}

smoke() {
  local platform=$1 file=azp-preflight prefix out status
  [ "$platform" = win32-x64 ] && file=azp-preflight.exe
  local bin="$bin_dir/$platform/$file"
  [ -f "$bin" ] || fail "$bin is missing: run scripts/build-binaries.sh $platform"
  prefix="$(runner "$platform")"
  # shellcheck disable=SC2206 # the prefix is one command name or none
  local run=($prefix "$bin")
  export WINEDEBUG=-all # Wine's own diagnostics are not the binary's output

  out="$("${run[@]}" --version)" || fail "$platform: --version exited $?"
  [[ "$out" == *"azp-preflight $version"* ]] || fail "$platform: --version printed '$out', expected $version"

  out="$("${run[@]}" explain TSK002)" || fail "$platform: explain TSK002 exited $?"
  [[ "$out" == *TSK002* ]] || fail "$platform: explain TSK002 does not name the code"

  # The whole offline path: discovery, YAML scan, embedded advisories, JSON report, exit code.
  status=0
  out="$(cd "$root" && "${run[@]}" --offline --checks tasks --pipeline "$example" \
    --fail-on warning --format json)" || status=$?
  [ "$status" -eq 1 ] || fail "$platform: the stale-pin example exited $status, expected 1"
  [[ "$out" == *'"TSK002"'* ]] || fail "$platform: the stale-pin example did not report TSK002"

  say "$platform ok (${prefix:-native}): $version"
}

platforms=("$@")
[ "${#platforms[@]}" -gt 0 ] || platforms=(linux-x64 linux-arm64 win32-x64)
for platform in "${platforms[@]}"; do smoke "$platform"; done
