#!/usr/bin/env bash
# The local cluster on embedded defaults.
#   scripts/dev.sh up     build, make a dev PKI, start the OCSP responder (openssl ocsp), a CRL and
#                         AIA server over HTTP, the verifier and the registry (SQLite); sign a sample document as the
#                         competent person and as the organisation, and verify it through the verifier
#   scripts/dev.sh down   stop everything started by `up`
# State lives in .kyso-dev/ (pids, logs, the PKI, the verifier's configuration).
#
# Until the signer service lands, the sample is signed by `openssl cms` with the dev PKI's keys.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEV=$ROOT/.kyso-dev
VERIFIER_PORT=${KYSO_DEV_VERIFIER_PORT:-50061}
METRICS_PORT=${KYSO_DEV_METRICS_PORT:-9461}
REGISTRY_PORT=${KYSO_DEV_REGISTRY_PORT:-50062}
REGISTRY_METRICS_PORT=${KYSO_DEV_REGISTRY_METRICS_PORT:-9462}
OCSP_PORT=${KYSO_DEV_OCSP_PORT:-18888}
HTTP_PORT=${KYSO_DEV_HTTP_PORT:-18889}

wait_port() { # PORT NAME
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "dev: $2 did not start on port $1; see $DEV/*.log" >&2
    return 1
}

start() { # NAME CMD...
    local name=$1
    shift
    "$@" >"$DEV/$name.log" 2>&1 &
    echo $! >"$DEV/$name.pid"
}

down() {
    for f in "$DEV"/*.pid; do
        [ -e "$f" ] || continue
        kill "$(cat "$f")" 2>/dev/null || true
        rm -f "$f"
    done
}

up() {
    bash scripts/setup.sh
    command -v python3 >/dev/null || { echo "dev: python3 is needed for the CRL/AIA server" >&2; exit 1; }
    down
    mkdir -p "$DEV"
    echo "== building"
    cargo build --locked -q -p kyso -p kyso-verifier -p kyso-registry
    BIN=$ROOT/target/debug

    echo "== dev PKI"
    bash tests/pki/gen-test-pki.sh "$DEV/pki" >/dev/null
    PKI=$DEV/pki

    echo "== OCSP responder (openssl ocsp) on $OCSP_PORT, CRL/AIA over HTTP on $HTTP_PORT"
    (cd "$PKI" && start ocsp openssl ocsp -index index.txt -CA issuing-ca.pem -rsigner ocsp.pem \
        -rkey ocsp.key -port "$OCSP_PORT" -nmin 60 -ignore_err)
    start http python3 -m http.server "$HTTP_PORT" --bind 127.0.0.1 --directory "$PKI"
    # `openssl ocsp` serves one connection at a time and a connection that sends nothing
    # jams it, so readiness is its own log line, not a probe of the port.
    for _ in $(seq 1 100); do
        grep -q "waiting for OCSP client connections" "$DEV/ocsp.log" 2>/dev/null && break
        sleep 0.1
    done
    wait_port "$HTTP_PORT" "the CRL server"

    legacy_fp=$(openssl x509 -in "$PKI/legacy-root.pem" -noout -fingerprint -sha256 | cut -d= -f2)
    cat >"$DEV/verifier.toml" <<TOML
listen = "127.0.0.1:$VERIFIER_PORT"
metrics_listen = "127.0.0.1:$METRICS_PORT"
trust_anchors = ["$PKI/root.pem", "$PKI/legacy-root.pem"]
intermediates = ["$PKI/intermediates.pem"]
legacy_sha1_roots = ["$legacy_fp"]

[revocation]
policy = "require"
url_rewrites = [
  { from = "http://ocsp.kyso.test/", to = "http://127.0.0.1:$OCSP_PORT/" },
  { from = "http://crl.kyso.test/", to = "http://127.0.0.1:$HTTP_PORT/crl/" },
  { from = "http://aia.kyso.test/", to = "http://127.0.0.1:$HTTP_PORT/aia/" },
]
TOML
    echo "== verifier on $VERIFIER_PORT (metrics on $METRICS_PORT)"
    start verifier "$BIN/kyso-verifier" --config "$DEV/verifier.toml"
    wait_port "$VERIFIER_PORT" "kyso-verifier"

    echo "== registry on $REGISTRY_PORT (SQLite at .kyso-dev/registry.db, metrics on $REGISTRY_METRICS_PORT)"
    start registry "$BIN/kyso-registry" --listen "127.0.0.1:$REGISTRY_PORT" \
        --metrics-listen "127.0.0.1:$REGISTRY_METRICS_PORT" \
        --database-url "sqlite:$DEV/registry.db" --mail-domain khanhhoa.gov.vn
    wait_port "$REGISTRY_PORT" "kyso-registry"

    echo "== sample document: signed by the Chairman (personal) and the People's Committee (organisation)"
    printf 'QUYẾT ĐỊNH số 01/QĐ-UBND: văn bản mẫu của kyso.\n' >"$DEV/sample.txt"
    openssl cms -sign -binary -cades -md sha256 -outform DER \
        -in "$DEV/sample.txt" -out "$DEV/sample.p7s" \
        -signer "$PKI/leaves/personal-rsa.pem" -inkey "$PKI/leaves/personal-rsa.key" \
        -signer "$PKI/leaves/org-rsa.pem" -inkey "$PKI/leaves/org-rsa.key" \
        -certfile "$PKI/issuing-ca.pem"
    echo "== kyso verify --server http://127.0.0.1:$VERIFIER_PORT"
    "$BIN/kyso" verify --server "http://127.0.0.1:$VERIFIER_PORT" --content "$DEV/sample.txt" "$DEV/sample.p7s"
    echo
    echo "The cluster is running: verifier 127.0.0.1:$VERIFIER_PORT (metrics :$METRICS_PORT),"
    echo "registry 127.0.0.1:$REGISTRY_PORT (metrics :$REGISTRY_METRICS_PORT; kyso registry --server http://127.0.0.1:$REGISTRY_PORT …)"
    echo "Stop it with: scripts/dev.sh down"
}

case "${1:-up}" in
up) up ;;
down) down ;;
*) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
