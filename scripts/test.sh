#!/usr/bin/env bash
# The test command: installs what it needs, then the CI gate in order:
# formatting, lints, all tests, everything --locked.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each phase says how long it took, so a slow run shows where its time went.
phase() { echo "== [$(( SECONDS / 60 ))m$(( SECONDS % 60 ))s] $*"; }
phase "setup"
bash scripts/setup.sh

export CARGO_TERM_COLOR=never
# A test that reads ../shared/ needs to know where it is; a user's clone has none.
if [ -d ../shared ]; then
  export KYSO_SHARED_DIR="${KYSO_SHARED_DIR:-$(cd ../shared && pwd)}"
fi

phase "cargo fmt --check"
cargo fmt --all -- --check

phase "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

phase "cargo build (binaries the end-to-end tests run)"
# The signer with its crash points (KYSO_SIGNER_FAILPOINT, docs/FLOWS.md "Retries"), which
# the retry tests use; a deployment build (deploy/Dockerfile) has none.
cargo build --workspace --bins --locked --features kyso-signer/failpoints

phase "cargo test"
cargo test --workspace --locked --no-fail-fast
phase "done"
