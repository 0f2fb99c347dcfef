#!/usr/bin/env bash
# Instructions the verifier spends on one CMS verification, server side, counted by
# `valgrind --tool=callgrind`: a figure that does not move with whatever else the machine is
# running, for before/after comparisons (wall-clock throughput on shared cores cannot show a
# few per cent).
#
# The verifier runs under callgrind twice, answering N1 and then N2 identical requests
# (`kyso bench verify --requests`, one stream, no warm-up); start-up, the first OCSP and CRL
# fetches and shutdown cost the same in both runs, so
#     instructions per verification = (Ir(N2) - Ir(N1)) / (N2 - N1).
# Needs the dev cluster for its PKI, OCSP responder and CRL server (`scripts/dev.sh up`), and
# release binaries (`cargo build --release --locked -p kyso -p kyso-verifier`).
#
#   scripts/callgrind-verify.sh [VERIFIER_BINARY] [KYSO_BINARY]
# Prints one JSON object. N1, N2 and KYSO_CG_PORT may be set in the environment, and
# BENCH_ARGS: more `kyso bench verify` flags (e.g. "--batch 16 --verdict-only").
set -euo pipefail
cd "$(dirname "$0")/.."
DEV=.kyso-dev
VERIFIER=${1:-target/release/kyso-verifier}
KYSO=${2:-target/release/kyso}
PORT=${KYSO_CG_PORT:-50071}
N1=${N1:-50}
N2=${N2:-250}
command -v valgrind >/dev/null || { echo "callgrind-verify: valgrind is needed" >&2; exit 1; }
[ -f "$DEV/verifier.toml" ] || { echo "callgrind-verify: run scripts/dev.sh up first" >&2; exit 1; }
OUT=$(mktemp -d)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$OUT"' EXIT; echo "callgrind-verify: files in $OUT" >&2

# The dev verifier's trust and revocation settings, in plaintext on its own ports.
awk '/^\[tls\]/ { skip = 1; next } /^\[/ { skip = 0 } !skip' "$DEV/verifier.toml" |
    sed -e "s/^listen = .*/listen = \"127.0.0.1:$PORT\"/" \
        -e "s/^metrics_listen = .*/metrics_listen = \"127.0.0.1:$((PORT + 1))\"/" >"$OUT/verifier.toml"
grep -q '^metrics_listen' "$OUT/verifier.toml" ||
    sed -i "1i metrics_listen = \"127.0.0.1:$((PORT + 1))\"" "$OUT/verifier.toml"

# The benchmark's document: 4 KiB, a detached CAdES-BES by the organisation's RSA key.
head -c 4096 /dev/urandom >"$OUT/doc.bin"
openssl cms -sign -binary -cades -md sha256 -outform DER -in "$OUT/doc.bin" -out "$OUT/doc.p7s" \
    -signer "$DEV/pki/leaves/org-rsa.pem" -inkey "$DEV/pki/leaves/org-rsa.key" \
    -certfile "$DEV/pki/issuing-ca.pem"

. scripts/lib/measure.sh

drive() { # N: the client's run of N requests
    "$KYSO" bench verify --server "http://127.0.0.1:$PORT" --signature "$OUT/doc.p7s" \
        --content "$OUT/doc.bin" --streams 1 --warmup-secs 0 --raw-secs 1 --requests "$1" ${BENCH_ARGS:-}
}
instructions() { # N: the verifier's total Ir over a run answering N requests
    cg_instructions "$1" "$PORT" drive -- "$VERIFIER" --config "$OUT/verifier.toml"
}

I1=$(instructions "$N1")
I2=$(instructions "$N2")
PER=$(((I2 - I1) / (N2 - N1)))
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
cat <<JSON
{
  "bench": "callgrind-verify",
  "verifier": "$VERIFIER",
  "requests": [$N1, $N2],
  "bench_args": "${BENCH_ARGS:-}",
  "instructions": [$I1, $I2],
  "instructions_per_verification": $PER,
  "load_average": "$LOAD"
}
JSON
