#!/usr/bin/env bash
# Runs azp-preflight on the bundled example pipeline, offline, with the output a pipeline
# author sees on a laptop. Extra arguments are passed on (e.g. --format json).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
cargo build --release --locked --quiet
status=0
"$root/target/release/azp-preflight" --offline --pipeline "examples/azureiotedge/*.yml" "$@" || status=$?
echo "(exit code $status: 0 = nothing at or above --fail-on, 1 = findings, 2 = bad input, 3 = could not complete)"
