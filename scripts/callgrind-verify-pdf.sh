#!/usr/bin/env bash
# Instructions the verifier spends on one PDF verification (VerifyPdf), server side, counted
# by `valgrind --tool=callgrind`: the PDF counterpart of scripts/callgrind-verify.sh, with the
# same difference method. The verifier runs under callgrind twice, answering N1 and then N2
# identical VerifyPdf requests (`kyso bench verify-pdf --requests`, one stream, no warm-up);
# start-up, the probe request (the CRL fetches) and shutdown cost the same in both runs, so
#     instructions per verification = (Ir(N2) - Ir(N1)) / (N2 - N1).
# Takes the directory scripts/bench-verify-pdf.sh leaves (its `pki/`, `two.pdf`: the ~1 MiB
# sample signed twice by pyHanko) and serves its CRLs on loopback itself.
#
#   scripts/callgrind-verify-pdf.sh BENCH_DIR [VERIFIER_BINARY] [KYSO_BINARY]
# Prints one JSON object. N1 (2), N2 (12), KEEP (keep the callgrind files) may be set.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
DIR=$(cd "${1:?usage: callgrind-verify-pdf.sh BENCH_DIR [VERIFIER] [KYSO]}" && pwd)
VERIFIER=${2:-$target/release/kyso-verifier}
KYSO=${3:-$target/release/kyso}
N1=${N1:-2}
N2=${N2:-12}
command -v valgrind >/dev/null || { echo "callgrind-verify-pdf: valgrind is needed" >&2; exit 1; }
[ -f "$DIR/two.pdf" ] || { echo "callgrind-verify-pdf: no $DIR/two.pdf (run scripts/bench-verify-pdf.sh)" >&2; exit 1; }
OUT=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -n "${KEEP:-}" ] || rm -rf "$OUT"
}
trap cleanup EXIT
echo "callgrind-verify-pdf: files in $OUT" >&2

. scripts/lib/measure.sh

crl_port=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$DIR/pki/crl" "$crl_port" >"$OUT/crl.log" 2>&1 &
pids+=($!)
wait_port "$crl_port" "$OUT/crl.log"
port=$(free_port)
pdf_verifier_toml "$DIR/pki" "$port" "$(free_port)" "$crl_port" >"$OUT/verifier.toml"

drive() { # N: the client's run of N requests (and the probe)
    "$KYSO" bench verify-pdf --server "http://127.0.0.1:$port" --pdf "$DIR/two.pdf" \
        --streams 1 --warmup-secs 0 --floor-secs 1 --requests "$1"
}
instructions() { # N: the verifier's total Ir over a run answering N requests (and the probe)
    cg_instructions "$1" "$port" drive -- "$VERIFIER" --config "$OUT/verifier.toml"
}

I1=$(instructions "$N1")
I2=$(instructions "$N2")
PER=$(((I2 - I1) / (N2 - N1)))
cat <<JSON
{
  "bench": "callgrind-verify-pdf",
  "verifier": "$VERIFIER",
  "pdf": "$DIR/two.pdf",
  "requests": [$N1, $N2],
  "instructions": [$I1, $I2],
  "instructions_per_verification": $PER,
  "load_average": "$(cut -d' ' -f1-3 /proc/loadavg)"
}
JSON
