#!/usr/bin/env bash
# Instructions the registry spends on one `Authorize`, server side, counted by
# `valgrind --tool=callgrind`: a figure that does not move with whatever else the machine is
# running (issue 17, item 1).
#
# The registry runs under callgrind twice, each time on a fresh SQLite database that
# `kyso bench authorize --seed-database-url` fills with the same synthetic province
# (ORGS organisations, CERTS personal certificates), and answers N1 and then N2 calls
# (`--calls`, one stream, closed loop). Start-up, the index load and the calls made while
# waiting for the seed to become visible cost the same in both runs (to a few calls), so
#     instructions per Authorize = (Ir(N2) - Ir(N1)) / (N2 - N1).
#
#   cargo build --release --locked -p kyso -p kyso-registry
#   scripts/callgrind-authorize.sh [REGISTRY_BINARY] [KYSO_BINARY]
# Prints one JSON object. N1, N2, ORGS, CERTS may be set in the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
REGISTRY=${1:-target/release/kyso-registry}
KYSO=${2:-target/release/kyso}
N1=${N1:-200}
N2=${N2:-2200}
ORGS=${ORGS:-10000}
CERTS=${CERTS:-100000}
command -v valgrind >/dev/null || { echo "callgrind-authorize: valgrind is needed" >&2; exit 1; }
OUT=$(mktemp -d)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$OUT"' EXIT
echo "callgrind-authorize: files in $OUT" >&2

. scripts/lib/measure.sh

drive() { # N: the client's run of N calls (it seeds the database first)
    "$KYSO" bench authorize --server "http://127.0.0.1:$port" --seed-database-url "$db" \
        --organisations "$ORGS" --certificates "$CERTS" --streams 1 --calls "$1"
}
instructions() { # N: the registry's total Ir over a run answering N calls, on a fresh database
    port=$(free_port)
    db="sqlite:$OUT/registry.$1.db"
    WAIT_TENTHS=1200 cg_instructions "$1" "$port" drive -- \
        "$REGISTRY" --database-url "$db" --mail-domain khanhhoa.gov.vn \
        --listen "127.0.0.1:$port" --metrics-listen "127.0.0.1:$(free_port)" \
        --development-plaintext
}

I1=$(instructions "$N1")
I2=$(instructions "$N2")
PER=$(((I2 - I1) / (N2 - N1)))
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
cat <<JSON
{
  "bench": "callgrind-authorize",
  "registry": "$REGISTRY",
  "organisations": $ORGS,
  "certificates": $CERTS,
  "calls": [$N1, $N2],
  "instructions": [$I1, $I2],
  "instructions_per_authorize": $PER,
  "load_average": "$LOAD"
}
JSON
