# Shared by the measurement scripts (sourced): loopback ports, callgrind runs and totals, the
# PDF bench's verifier configuration.

# A free TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until something listens on PORT (WAIT_TENTHS tenths of a second, default 600: a
# service starting under valgrind needs longer); otherwise prints LOG and fails.
wait_port() { # PORT LOG
    for _ in $(seq 1 "${WAIT_TENTHS:-600}"); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "$(basename "$0"): nothing listens on $1; see $2" >&2
    cat "$2" >&2
    return 1
}

# The total instructions (Ir) of a callgrind output file.
cg_total() { # FILE
    awk '/^(summary|totals):/ { print $2; exit }' "$1"
}

# The server's total instructions over one run: SERVER... under `valgrind --tool=callgrind`
# (output $OUT/cg.N, log $OUT/server.N.log), CLIENT N once it listens on PORT (its stdout in
# $OUT/bench.N.json), then SIGTERM so the server shuts down as it does in service. The
# difference of two runs, N1 and N2 requests, is the cost of N2 - N1 requests: start-up, the
# first fetches and shutdown cancel out.
cg_instructions() { # N PORT CLIENT -- SERVER...
    local n=$1 port=$2 client=$3
    shift 4
    valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.$n" "$@" >"$OUT/server.$n.log" 2>&1 &
    local pid=$!
    wait_port "$port" "$OUT/server.$n.log"
    "$client" "$n" >"$OUT/bench.$n.json"
    kill -TERM "$pid"
    wait "$pid" || true
    cg_total "$OUT/cg.$n"
}

# The verifier configuration of the PDF bench: the PKI's root and intermediates; for
# revocation the same evidence pyHanko is given, the CRLs (served on loopback), no OCSP; no
# AIA fetches (pyHanko is given the intermediates and fetches nothing either).
pdf_verifier_toml() { # PKI_DIR GRPC_PORT METRICS_PORT CRL_PORT
    cat <<TOML
listen = "127.0.0.1:$2"
metrics_listen = "127.0.0.1:$3"
trust_anchors = ["$1/root.pem"]
intermediates = ["$1/intermediates.pem"]
fetch_aia = false

[revocation]
policy = "require"
order = "crl-only"
url_rewrites = [
  { from = "http://crl.kyso.test/", to = "http://127.0.0.1:$4/" },
]
TOML
}
