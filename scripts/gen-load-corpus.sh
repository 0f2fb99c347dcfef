#!/usr/bin/env bash
# A standalone corpus for `kyso bench load`: documents, their own PKI (two roots, four issuing
# CAs, many RSA and EC signers, revoked ones on per-CA CRLs), manifest.json and a verifier.toml,
# written into DIR, which outlives the command (kyso_tests::load_corpus, through the ignored
# test `generate_load_corpus` of the verifier test binary). See docs/BENCHMARKS.md.
#
#   scripts/gen-load-corpus.sh DIR
#
# Environment: DOCUMENTS (120), SIGNERS (200), CRL_PORT (18480: where the CRLs will be
# served), VERIFIER_PORT (50161; its metrics on VERIFIER_PORT+1), CARGO_TARGET_DIR (target).
# DIR must be absent or empty. Then:
#   python3 -m http.server "$CRL_PORT" --bind 127.0.0.1 --directory DIR/pki/crl &
#   target/release/kyso-verifier --config DIR/verifier.toml &
#   target/release/kyso bench load --server http://127.0.0.1:$VERIFIER_PORT --corpus DIR ...
set -euo pipefail
if [[ $# -ne 1 || -z "$1" ]]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
dir=$(cd "$1" && pwd)
if [[ -n "$(ls -A "$dir")" ]]; then
    echo "gen-load-corpus: $dir is not empty" >&2
    exit 2
fi
cd "$root"
KYSO_LOAD_CORPUS_DIR=$dir \
KYSO_LOAD_DOCUMENTS=${DOCUMENTS:-120} \
KYSO_LOAD_SIGNERS=${SIGNERS:-200} \
KYSO_LOAD_CRL_PORT=${CRL_PORT:-18480} \
KYSO_LOAD_VERIFIER_PORT=${VERIFIER_PORT:-50161} \
    cargo test --release --locked -p kyso-tests --test verifier -- \
    --ignored --exact bench_load::generate_load_corpus --nocapture >&2
echo "$dir/verifier.toml"
