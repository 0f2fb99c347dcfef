#!/usr/bin/env bash
# `kyso bench verify-pdf` from a fresh checkout: VerifyPdf of a ~1 MiB PDF with two signatures
# through a verifier on loopback, against the in-process physical limit and pyHanko's validation
# of the same file with the same CRLs, all in one run. Prints the bench's JSON on stdout
# (progress on stderr). See docs/BENCHMARKS.md.
#
#   scripts/bench-verify-pdf.sh [WORKDIR] [-- extra `kyso bench verify-pdf` flags]
#
# Environment: STREAMS (8), DURATION (10), WARMUP (2), FLOOR (3), BASELINE_RUNS (5),
# CARGO_TARGET_DIR (target). WORKDIR (default target/bench-verify-pdf) is wiped and remade.
#
# What it makes, in order:
#  1. release binaries `kyso` and `kyso-verifier` (cargo build --release --locked);
#  2. a test PKI (tests/pki/gen-test-pki.sh): root, issuing CA, personal and organisation leaves,
#     their CRLs;
#  3. pyHanko's venv and the sample PDFs (tests/peers/peers.sh, once per machine);
#  4. the ~1 MiB sample signed twice by pyHanko, as in the interop tests: `personal-rsa`
#     visibly in the signature block (Sig1), then `org-rsa` (Sig2) as an incremental update;
#  5. the PKI's CRL directory served on loopback (python3 http.server) and a verifier on
#     loopback trusting the test root, revocation required, CRLs only (`crl-only`), its
#     CRL URLs rewritten to that server: it fetches the very files pyHanko is given, once, and
#     answers from its cache afterwards (the production configuration);
#  6. the bench, with pyHanko as the baseline (--crl PKI/crl/all.pem, offline, hard-fail).
# The verifier and the CRL server are stopped on exit.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

work=${1:-target/bench-verify-pdf}
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
extra=("$@")

target=${CARGO_TARGET_DIR:-target}
log() { echo "bench-verify-pdf: $*" >&2; }

pids=()
cleanup() {
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${pids[@]}"; do
        wait "$p" 2>/dev/null || true
    done
}
trap cleanup EXIT

. scripts/lib/measure.sh   # free_port, wait_port, pdf_verifier_toml
WAIT_TENTHS=100            # the CRL server and the verifier start within 10 s, or the bench fails

log "building release binaries (kyso, kyso-verifier)"
cargo build --release --locked -p kyso -p kyso-verifier >&2
bin="$target/release"

rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)
pki="$work/pki"

log "test PKI in $pki"
tests/pki/gen-test-pki.sh "$pki" >&2

log "pyHanko venv and samples (once per machine)"
py=$(bash tests/peers/peers.sh "$target/pdf-peers" venv)
samples=$(bash tests/peers/peers.sh "$target/pdf-peers" samples)
large="$samples/$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["files"]["large"])' "$samples/samples.json")"
box=$(python3 -c 'import json,sys; print(",".join(str(v) for v in json.load(open(sys.argv[1]))["signature_block"]["signature_box"]))' "$samples/samples.json")

log "signing $(basename "$large") ($(stat -c %s "$large") bytes): personal-rsa (Sig1), then org-rsa (Sig2)"
tool=tests/peers/pyhanko_tool.py
"$py" "$tool" sign --in "$large" --out "$work/one.pdf" \
    --key "$pki/leaves/personal-rsa.key" --cert "$pki/leaves/personal-rsa.pem" \
    --chain "$pki/issuing-ca.pem" --field Sig1 --rect "$box" >/dev/null
"$py" "$tool" sign --in "$work/one.pdf" --out "$work/two.pdf" \
    --key "$pki/leaves/org-rsa.key" --cert "$pki/leaves/org-rsa.pem" \
    --chain "$pki/issuing-ca.pem" --field Sig2 --rect 100,40,250,90 --color bf1f1f >/dev/null
log "signed file: $work/two.pdf ($(stat -c %s "$work/two.pdf") bytes)"

crl_port=$(free_port)
log "CRL server on 127.0.0.1:$crl_port (serves $pki/crl)"
python3 -m http.server --bind 127.0.0.1 --directory "$pki/crl" "$crl_port" \
    >"$work/crl-server.log" 2>&1 &
pids+=($!)
wait_port "$crl_port" "$work/crl-server.log"

grpc_port=$(free_port)
metrics_port=$(free_port)
pdf_verifier_toml "$pki" "$grpc_port" "$metrics_port" "$crl_port" >"$work/verifier.toml"
log "verifier on 127.0.0.1:$grpc_port (metrics on $metrics_port)"
"$bin/kyso-verifier" --config "$work/verifier.toml" >"$work/verifier.log" 2>&1 &
verifier_pid=$!
pids+=("$verifier_pid")
wait_port "$grpc_port" "$work/verifier.log"

log "load average before the bench: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin/kyso" bench verify-pdf --server "http://127.0.0.1:$grpc_port" --pdf "$work/two.pdf" \
    --streams "${STREAMS:-8}" --duration-secs "${DURATION:-10}" --server-pid "$verifier_pid" \
    --warmup-secs "${WARMUP:-2}" --floor-secs "${FLOOR:-3}" \
    --baseline-python "$py" --baseline-tool "$tool" \
    --root "$pki/root.pem" --intermediates "$pki/intermediates.pem" --crl "$pki/crl/all.pem" \
    --baseline-runs "${BASELINE_RUNS:-5}" "${extra[@]}" | tee "$work/result.json"
log "result also in $work/result.json"
