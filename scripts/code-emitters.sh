#!/bin/sh
# Rewrites the `Emitted by:` line of every docs/codes/<CODE>.md page from the source: the files
# under src/ whose non-test code mentions `Code::<CODE>`. Run it after moving an emitter, then
# review the diff; the test it runs fails on any mismatch when run without the variable.
set -eu
cd "$(dirname "$0")/.."
AZP_PREFLIGHT_BLESS_EMITTERS=1 cargo test --locked --lib -- codes::emitters::every_page_names_the_files_that_emit_its_code
cargo test --locked --lib -- codes::emitters
