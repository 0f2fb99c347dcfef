#!/usr/bin/env bash
# The Authorize measurement of docs/BENCHMARKS.md (issue 17 item 5): a release registry on
# SQLite and on PostgreSQL, 10 000 organisations and 100 000 personal certificates seeded
# straight into its database, then `kyso bench authorize` closed loop and open loop at the
# given rates. Around every run it prints the load average, the registry's CPU seconds per
# call (from /proc) and the registry's own latency histogram for Authorize (its /metrics), so
# the time spent in the registry can be told from the time spent around it.
#
#   cargo build --release --locked -p kyso -p kyso-registry
#   scripts/bench-authorize.sh [sqlite|postgres|both] [RATE ...]     (default: both 0 2000)
#
# PIN=1 gives the registry and the load generator a core each (`taskset`: registry on CPU 0,
# generator on CPU 1) and one tokio worker thread each (TOKIO_WORKER_THREADS=1), so that the
# generator's bursts and the registry's threads do not wait for each other's time slices;
# REGISTRY_CPUS / CLIENT_CPUS / REGISTRY_THREADS / CLIENT_THREADS choose other layouts.
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${KYSO_BIN_DIR:-target/release}
WHICH=${1:-both}
shift || true
RATES=("$@")
[ ${#RATES[@]} -eq 0 ] && RATES=(0 2000)
SECS=${KYSO_BENCH_SECS:-10}
REGISTRY_RUN=()
CLIENT_RUN=()
if [ -n "${PIN:-}" ]; then
    REGISTRY_CPUS=${REGISTRY_CPUS:-0} CLIENT_CPUS=${CLIENT_CPUS:-1}
    REGISTRY_THREADS=${REGISTRY_THREADS:-1} CLIENT_THREADS=${CLIENT_THREADS:-1}
fi
[ -n "${REGISTRY_CPUS:-}" ] && REGISTRY_RUN+=(taskset -c "$REGISTRY_CPUS")
[ -n "${CLIENT_CPUS:-}" ] && CLIENT_RUN+=(taskset -c "$CLIENT_CPUS")
[ -n "${REGISTRY_THREADS:-}" ] && REGISTRY_RUN=(env TOKIO_WORKER_THREADS="$REGISTRY_THREADS" "${REGISTRY_RUN[@]}")
[ -n "${CLIENT_THREADS:-}" ] && CLIENT_RUN=(env TOKIO_WORKER_THREADS="$CLIENT_THREADS" "${CLIENT_RUN[@]}")
echo "registry: ${REGISTRY_RUN[*]:-(no pinning)}; generator: ${CLIENT_RUN[*]:-(no pinning)}"
WORK=$(mktemp -d /tmp/kyso-bench-authorize.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    if [ -d "$WORK/pg" ]; then
        runuser -u postgres -- /usr/lib/postgresql/*/bin/pg_ctl -D "$WORK/pg" -m immediate stop \
            >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

. scripts/lib/measure.sh

cpu_of() { # utime + stime of a process, in seconds
    awk '{ print ($14 + $15) / 100 }' "/proc/$1/stat"
}

histogram() { # the registry's Authorize duration histogram, one line per bucket
    curl -s "http://$1/metrics" |
        grep '^kyso_registry_request_duration_seconds_\(bucket\|count\|sum\){method="Authorize"' || true
}

run_backend() {
    local name=$1 url=$2
    local port metrics
    port=$(free_port)
    metrics=$(free_port)
    echo "== $name: registry on 127.0.0.1:$port ($url)"
    ${REGISTRY_RUN[@]+"${REGISTRY_RUN[@]}"} "$BIN/kyso-registry" --database-url "$url" --mail-domain khanhhoa.gov.vn \
        --listen "127.0.0.1:$port" --metrics-listen "127.0.0.1:$metrics" \
        --development-plaintext >"$WORK/$name.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    for _ in $(seq 100); do
        curl -s "http://127.0.0.1:$metrics/metrics" >/dev/null && break
        sleep 0.2
    done
    # One province per run: the bench seeds it straight into the database and measures one
    # load (a fresh province per rate keeps the histogram's window to that rate).
    for rate in "${RATES[@]}"; do
        local cpu0 cpu1 h0 h1
        h0=$(histogram "127.0.0.1:$metrics")
        cpu0=$(cpu_of "$pid")
        echo "-- rate $rate (0: closed loop), load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
        ${CLIENT_RUN[@]+"${CLIENT_RUN[@]}"} "$BIN/kyso" bench authorize --server "http://127.0.0.1:$port" --seed-database-url "$url" \
            --organisations 10000 --certificates 100000 --streams 8 --duration-secs "$SECS" \
            --warmup-secs 2 --rate "$rate" | tee "$WORK/$name-$rate.json"
        cpu1=$(cpu_of "$pid")
        h1=$(histogram "127.0.0.1:$metrics")
        echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
        echo "registry CPU s over the run (index reload and warm-up included): $(awk "BEGIN { print $cpu1 - $cpu0 }")"
        echo "registry Authorize histogram over the run (bucket: calls at or under):"
        # By series name: before the first call the registry exports no Authorize series.
        awk 'NR == FNR { before[$1] = $2; next } { print $1, $2 - before[$1] }' \
            <(echo "$h0") <(echo "$h1")
    done
}

if [ "$WHICH" = sqlite ] || [ "$WHICH" = both ]; then
    run_backend sqlite "sqlite:$WORK/registry.db"
fi
if [ "$WHICH" = postgres ] || [ "$WHICH" = both ]; then
    PGBIN=$(ls -d /usr/lib/postgresql/*/bin | tail -n1)
    mkdir -p "$WORK/pg" && chown postgres: "$WORK/pg"
    runuser -u postgres -- "$PGBIN/initdb" -D "$WORK/pg" -A trust -U kyso --locale=C >/dev/null
    PGPORT=$(free_port)
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg/log" -w \
        -o "-p $PGPORT -k $WORK/pg -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
    runuser -u postgres -- "$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U kyso registry
    run_backend postgres "postgres://kyso@127.0.0.1:$PGPORT/registry"
fi
