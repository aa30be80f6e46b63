#!/usr/bin/env bash
# The whole test suite: set-up, formatting, lints, Rust unit and integration tests (a real
# registry included), and the task/oracle tests under Node.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

"$root/scripts/setup.sh"
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
echo "== node --test"
node --test tests/task/ tests/oracles/
