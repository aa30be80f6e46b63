#!/usr/bin/env bash
# Writes one CycloneDX SBOM (JSON, spec 1.5) per shipped binary, from Cargo.lock, with
# cargo-cyclonedx (install: `cargo install cargo-cyclonedx --locked`; it is a release tool,
# not a dependency of the build or the tests).
#
#   scripts/sbom.sh OUT_DIR   ->  OUT_DIR/azp-preflight-<version>-<platform>.cdx.json
#
# Per target, because the Windows binary links crates the Linux ones do not (and the other
# way round): each SBOM lists exactly what `cargo build --target <triple>` resolves.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ "$#" -eq 1 ] || { echo "usage: scripts/sbom.sh OUT_DIR" >&2; exit 2; }
cargo cyclonedx --version >/dev/null 2>&1 \
  || { echo "sbom: cargo-cyclonedx is not installed (cargo install cargo-cyclonedx --locked)" >&2; exit 1; }
mkdir -p "$1"
out="$(cd "$1" && pwd)"
version="$(node "$root/scripts/version.js" print)"

for pair in x86_64-unknown-linux-musl:linux-x64 aarch64-unknown-linux-musl:linux-arm64 \
  x86_64-pc-windows-gnu:win32-x64; do
  triple=${pair%%:*} platform=${pair#*:}
  name="azp-preflight-$version-$platform.cdx"
  # cargo-cyclonedx writes next to every Cargo.toml of the workspace; the root package's SBOM
  # already lists the workspace's own crates as its dependencies, so only that one is kept.
  (cd "$root" && cargo cyclonedx --manifest-path Cargo.toml --format json --spec-version 1.5 \
    --target "$triple" --override-filename "$name" -q)
  mv "$root/$name.json" "$out/"
  find "$root/crates" -name "$name.json" -delete
  echo "sbom: $out/$name.json"
done
