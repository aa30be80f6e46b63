#!/usr/bin/env bash
# Installs what building and testing need on a fresh Debian machine with a Rust toolchain:
# Debian packages (a real OCI registry for the registry tests, musl for static binaries,
# openssl and htpasswd for test fixtures, chromium for the HTML report's browser test), the
# musl Rust target, and the npm dev dependencies (task packaging and the logging-command
# oracles). The hosted Ubuntu image already has a Chromium on PATH; there `chromium` is only
# a snap wrapper, so nothing is installed when one is present.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

have() { command -v "$1" >/dev/null 2>&1; }
say() { echo "setup: $*" >&2; }

packages=()
have docker-registry || packages+=(docker-registry)
have musl-gcc || packages+=(musl-tools)
have openssl || packages+=(openssl)
have htpasswd || packages+=(apache2-utils)
have node || packages+=(nodejs npm)
have chromium || have chromium-browser || packages+=(chromium)
if [ "${#packages[@]}" -gt 0 ]; then
  say "installing Debian packages: ${packages[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

if have rustup; then
  # Only the release build of the task needs the musl target; the tests do not.
  rustup target list --installed | grep -qx x86_64-unknown-linux-musl \
    || rustup target add x86_64-unknown-linux-musl || say "warning: could not add the musl target (needed by scripts/build-binaries.sh only)"
  rustup component list --installed | grep -q '^clippy' || rustup component add clippy
  rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
fi

if [ ! -d node_modules/azure-pipelines-task-lib ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dev dependencies"
  npm ci --no-audit --no-fund --loglevel=error
fi
say "ready"
