#!/usr/bin/env bash
# Builds the release binaries the task ships and copies them to
# $BIN_DIR/<platform>-<arch>/azp-preflight[.exe] (default dist/bin), named as Node's
# process.platform and process.arch, which is how index.js finds them.
#
#   scripts/build-binaries.sh [linux-x64] [linux-arm64] [win32-x64]   (default: all three)
#
# linux-x64 is required (static musl: `rustup target add x86_64-unknown-linux-musl` and
# Debian's musl-tools). linux-arm64 and win32-x64 are built only when their cross linker is
# installed (aarch64-linux-musl-gcc or Debian's gcc-aarch64-linux-gnu; Debian's
# gcc-mingw-w64-x86-64 for x86_64-w64-mingw32-gcc) and skipped with a message otherwise.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${BIN_DIR:-$root/dist/bin}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
max_bytes=$((8 * 1024 * 1024)) # the size budget of one shipped binary

have() { command -v "$1" >/dev/null 2>&1; }
say() { echo "build-binaries: $*" >&2; }
skip() { say "skipping $1: $2"; }

# Adds a Rust target when it is missing; fails when it cannot be had.
ensure_target() {
  have rustup || return 0 # a toolchain without rustup must already carry the target
  rustup target list --installed | grep -qx "$1" && return 0
  rustup target add "$1"
}

# build <triple> <platform-arch> <file>
build() {
  local triple=$1 platform=$2 file=$3
  (cd "$root" && cargo build --release --locked --target "$triple")
  mkdir -p "$out/$platform"
  cp "$target_dir/$triple/release/$file" "$out/$platform/$file"
  local size
  size=$(wc -c <"$out/$platform/$file")
  say "built $platform/$file ($size bytes)"
  if [ "$size" -gt "$max_bytes" ]; then say "warning: $platform/$file is larger than 8 MiB"; fi
  if [[ "$platform" == linux-* ]] && have file && ! file -L "$out/$platform/$file" | grep -q 'static'; then
    say "warning: $platform/$file is not statically linked"
  fi
}

build_linux_x64() {
  local triple=x86_64-unknown-linux-musl
  ensure_target "$triple" || { say "cannot add Rust target $triple"; return 1; }
  # C code in dependencies (ring) must be compiled against musl, not glibc.
  if [ -z "${CC_x86_64_unknown_linux_musl:-}" ]; then
    have musl-gcc || { say "musl-gcc not found: install Debian's musl-tools"; return 1; }
    export CC_x86_64_unknown_linux_musl=musl-gcc
  fi
  build "$triple" linux-x64 azp-preflight
}

build_linux_arm64() {
  local triple=aarch64-unknown-linux-musl gcc=""
  for candidate in aarch64-linux-musl-gcc aarch64-linux-gnu-gcc; do
    if have "$candidate"; then gcc=$candidate; break; fi
  done
  [ -n "$gcc" ] || { skip linux-arm64 "no aarch64 cross linker (aarch64-linux-musl-gcc or aarch64-linux-gnu-gcc)"; return 0; }
  ensure_target "$triple" || { skip linux-arm64 "cannot add Rust target $triple"; return 0; }
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER="$gcc"
  export CC_aarch64_unknown_linux_musl="$gcc" AR_aarch64_unknown_linux_musl="${gcc%-gcc}-ar"
  build "$triple" linux-arm64 azp-preflight
}

build_win32_x64() {
  local triple=x86_64-pc-windows-gnu gcc=x86_64-w64-mingw32-gcc
  have "$gcc" || { skip win32-x64 "$gcc not found (Debian's gcc-mingw-w64-x86-64)"; return 0; }
  ensure_target "$triple" || { skip win32-x64 "cannot add Rust target $triple"; return 0; }
  export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER="$gcc"
  export CC_x86_64_pc_windows_gnu="$gcc" AR_x86_64_pc_windows_gnu=x86_64-w64-mingw32-ar
  build "$triple" win32-x64 azp-preflight.exe
}

platforms=("$@")
[ "${#platforms[@]}" -gt 0 ] || platforms=(linux-x64 linux-arm64 win32-x64)
for platform in "${platforms[@]}"; do
  case "$platform" in
    linux-x64) build_linux_x64 ;;
    linux-arm64) build_linux_arm64 ;;
    win32-x64) build_win32_x64 ;;
    *) say "unknown platform '$platform' (expected linux-x64, linux-arm64 or win32-x64)"; exit 2 ;;
  esac
done
say "binaries are in $out"
