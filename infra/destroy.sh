#!/usr/bin/env bash
# Deletes the stack (HEIMDALL_STACK, default heimdall). The jobs table and the artifacts bucket
# are retained by the template's deletion policy: delete them by hand when you mean to.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cargo run --quiet --release --manifest-path "$root/Cargo.toml" -p heimdall-deploy -- destroy
