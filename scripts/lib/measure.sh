# Shared by the measurement scripts (sourced): loopback ports and callgrind totals.

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
