#!/usr/bin/env bash
# Instructions the signer process spends on one detached SignCms (RSA-2048 ISSUE seal with its
# A6 approval, and P-256 APPROVAL), server side, counted by `valgrind --tool=callgrind`: a
# figure that does not move with whatever else the machine runs, for before/after comparisons.
#
# The test cluster (SoftHSM2 behind p11-kit server, the registry in the test process) runs the
# release kyso-signer under callgrind twice, answering `kyso bench sign --requests N1` and then
# N2; start-up, the approval pool, the probes and shutdown cost the same in both runs, so
#     instructions per signature = (Ir(N2) - Ir(N1)) / (N2 - N1).
# The HSM's own instructions are in p11-kit-remote, not in the signer; the registry's
# Authorize runs in the test process and is not counted here.
#
#   scripts/callgrind-sign.sh
# Environment: KYSO_CG_N1, KYSO_CG_N2 (default 50, 250), KYSO_CG_KEYS (rsa,p256),
# KYSO_CG_OUT (keep the callgrind files there, for callgrind_annotate --inclusive=yes).
# Prints one JSON object (the test's output).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "callgrind-sign: valgrind is needed" >&2; exit 1; }
cargo build --release --locked -q -p kyso -p kyso-signer
cargo test --release --locked -q -p kyso-tests --test signer --no-run
TARGET=$(cd "${CARGO_TARGET_DIR:-target}" && pwd)
KYSO_BIN_DIR=${KYSO_BIN_DIR:-$TARGET/release} \
    cargo test --release --locked -q -p kyso-tests --test signer -- \
    bench_sign_callgrind_instructions_per_signature --ignored --nocapture |
    sed -n '/^{/,/^}/p'
