#!/usr/bin/env bash
# The local cluster on embedded defaults.
#   scripts/dev.sh up     build; make a dev PKI; a SoftHSM2 token served by `p11-kit server` with
#                         the Chairman's key and the People's Committee's seal generated inside it
#                         and certified by the dev CA; start the OCSP responder (openssl ocsp), a CRL
#                         and AIA server over HTTP, the verifier, the registry (SQLite, a sample
#                         province) and the signer (p11-kit-client.so), all three over mTLS as in
#                         production (the credentials are listed at the end and in
#                         .kyso-dev/tls/README.txt); sign a sample document as the competent
#                         person and then as the organisation, and verify it
#   scripts/dev.sh down   stop everything started by `up`
# State lives in .kyso-dev/ (pids, logs, the PKI, the token, configurations, the audit log,
# the signed originals); `up` starts from an empty one.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEV=$ROOT/.kyso-dev
VERIFIER_PORT=${KYSO_DEV_VERIFIER_PORT:-50061}
METRICS_PORT=${KYSO_DEV_METRICS_PORT:-9461}
REGISTRY_PORT=${KYSO_DEV_REGISTRY_PORT:-50062}
REGISTRY_METRICS_PORT=${KYSO_DEV_REGISTRY_METRICS_PORT:-9462}
SIGNER_PORT=${KYSO_DEV_SIGNER_PORT:-50063}
SIGNER_METRICS_PORT=${KYSO_DEV_SIGNER_METRICS_PORT:-9463}
OCSP_PORT=${KYSO_DEV_OCSP_PORT:-18888}
HTTP_PORT=${KYSO_DEV_HTTP_PORT:-18889}
SOFTHSM=/usr/lib/softhsm/libsofthsm2.so
PERSONAL_SUBJ="/C=VN/L=Khánh Hòa/O=Ủy ban nhân dân tỉnh Khánh Hòa/title=Chủ tịch/CN=Nguyễn Văn An/emailAddress=an.nv@khanhhoa.gov.vn"
ORG_SUBJ="/C=VN/L=Khánh Hòa/O=Ủy ban nhân dân tỉnh Khánh Hòa/CN=Ủy ban nhân dân tỉnh Khánh Hòa"

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

fingerprint() { # PEM: SHA-256 of the certificate, lowercase hex
    openssl x509 -in "$1" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr 'A-F' 'a-f'
}

# Two issuers, as in production: server-ca issues the services' server certificate and the
# document systems' client certificates; registry-client-ca is the registry's own client CA,
# the only issuer of its administrators' and services' client certificates.
make_tls() { # DIR
    local d=$1 ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
    for ca in "server-ca kyso dev server and document-system CA" \
        "registry-client-ca kyso dev registry client CA"; do
        read -r name cn <<<"$ca"
        openssl req -x509 "${ec[@]}" -keyout "$d/$name.key" -out "$d/$name.pem" -days 30 \
            -subj "/CN=$cn" -addext basicConstraints=critical,CA:TRUE \
            -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    done
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$d/server.ext"
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' >"$d/client.ext"
    local serial=1
    for c in "server-ca server server /CN=localhost" \
        "server-ca dms client /CN=dev document system/O=Ủy ban nhân dân tỉnh Khánh Hòa" \
        "registry-client-ca provincial-admin client /CN=Quản trị viên tỉnh/O=Sở Thông tin và Truyền thông tỉnh Khánh Hòa" \
        "registry-client-ca agency-admin client /CN=Quản trị viên Sở TT&TT/O=Sở Thông tin và Truyền thông tỉnh Khánh Hòa" \
        "registry-client-ca signer-registry client /CN=kyso-signer (dev)" \
        "registry-client-ca verifier-registry client /CN=kyso-verifier (dev)"; do
        read -r ca name kind subj <<<"$c"
        openssl req -new -utf8 "${ec[@]}" -keyout "$d/$name.key" -out "$d/$name.csr" -subj "$subj" 2>/dev/null
        openssl x509 -req -in "$d/$name.csr" -CA "$d/$ca.pem" -CAkey "$d/$ca.key" -set_serial "$serial" \
            -days 30 -sha256 -extfile "$d/$kind.ext" -out "$d/$name.pem" 2>/dev/null
        serial=$((serial + 1))
    done
    chmod 600 "$d"/*.key
    cat >"$d/README.txt" <<TXT
.kyso-dev/tls: which file is which (each NAME.pem has its key NAME.key)
  server-ca.pem            CA of the services' server certificate and of the document systems'
                           client certificates (--tls-ca for every kyso command)
  server.pem               server certificate of the verifier, registry and signer (localhost, 127.0.0.1)
  dms.pem                  the document system: client of the signer and the verifier
                           (kyso sign/verify/doc --tls-cert dms.pem --tls-key dms.key)
  registry-client-ca.pem   the registry's own client CA: the only issuer of the four below
  provincial-admin.pem     provincial-admin (the registry's bootstrap administrator)
  agency-admin.pem         agency-admin of Sở Thông tin và Truyền thông (I6)
  signer-registry.pem      the signer's client certificate to the registry (role signer)
  verifier-registry.pem    a verifier's client certificate to the registry (role verifier)
Example: kyso registry --server https://127.0.0.1:$REGISTRY_PORT --tls-ca $d/server-ca.pem \\
           --tls-cert $d/agency-admin.pem --tls-key $d/agency-admin.key who-am-i <<<'{}'
TXT
}

up() {
    bash scripts/setup.sh
    command -v python3 >/dev/null || { echo "dev: python3 is needed for the CRL/AIA server" >&2; exit 1; }
    down
    # Every `up` is a fresh cluster: a new PKI means new keys, a new token and a new province.
    rm -rf "$DEV"
    mkdir -p "$DEV"
    echo "== building"
    cargo build --locked -q -p kyso -p kyso-verifier -p kyso-registry -p kyso-signer
    BIN=$ROOT/target/debug
    P11_CLIENT=$(ls /usr/lib/*/pkcs11/p11-kit-client.so 2>/dev/null | head -n 1)
    [ -n "$P11_CLIENT" ] || { echo "dev: p11-kit-client.so not found (package p11-kit-modules)" >&2; exit 1; }

    echo "== dev PKI"
    bash tests/pki/gen-test-pki.sh "$DEV/pki" >/dev/null
    PKI=$DEV/pki

    echo "== mTLS credentials (.kyso-dev/tls)"
    TLS=$DEV/tls
    mkdir -p "$TLS"
    make_tls "$TLS"

    echo "== HSM: SoftHSM2 token kyso-dev behind p11-kit server ($DEV/p11kit.sock)"
    mkdir -p "$DEV/tokens"
    printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
        "$DEV/tokens" >"$DEV/softhsm2.conf"
    printf '%s\n' "${KYSO_DEV_PIN:-123456}" >"$DEV/pin"
    chmod 600 "$DEV/pin"
    SOFTHSM2_CONF=$DEV/softhsm2.conf softhsm2-util --init-token --free --label kyso-dev \
        --pin "$(cat "$DEV/pin")" --so-pin "$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')" >/dev/null
    rm -f "$DEV/p11kit.sock"
    SOFTHSM2_CONF=$DEV/softhsm2.conf start p11kit p11-kit server -f -n "$DEV/p11kit.sock" \
        --provider "$SOFTHSM" "pkcs11:token=kyso-dev"
    for _ in $(seq 1 100); do [ -S "$DEV/p11kit.sock" ] && break; sleep 0.1; done
    export P11_KIT_SERVER_ADDRESS="unix:path=$DEV/p11kit.sock"
    # Keys are made inside the token (sensitive, never extractable); the CA certifies a CSR
    # the token signed. Both are issued before the OCSP responder reads the CA's index.
    hsm=(--module "$P11_CLIENT" --token kyso-dev --pin-file "$DEV/pin")
    # audit-seal seals the signer's audit log: a key of its own that no caller can name.
    for k in "seal 01 $ORG_SUBJ" "chairman 02 $PERSONAL_SUBJ" "audit-seal 05 /C=VN/O=kyso dev/CN=kyso audit seal"; do
        read -r name id subj <<<"$k"
        "$BIN/kyso" signer keygen "${hsm[@]}" --label "$name" --id "$id" --algorithm rsa2048 >/dev/null
        "$BIN/kyso" signer csr "${hsm[@]}" --id "$id" --subject "CN=$name" --out "$DEV/$name.csr"
        (cd "$PKI" && KYSO_CA_DB=$PKI/db/issuing-ca openssl ca -batch -notext -utf8 -config openssl.cnf \
            -cert issuing-ca.pem -keyfile issuing-ca.key -in "$DEV/$name.csr" -out "$DEV/$name.pem" \
            -subj "$subj" -extensions v3_leaf -days 365 -md sha256 2>/dev/null)
    done
    # A1: the Chairman's one-time code (TOTP), its seed generated inside the token and shown
    # once; a real holder scans the QR code into an authenticator. Dev only: the script keeps
    # the URI to compute codes itself (totp below).
    echo "== one-time code of the Chairman (holder consent, A1): kyso signer enroll-otp"
    "$BIN/kyso" signer enroll-otp "${hsm[@]}" --id 02 --account "Nguyễn Văn An" --no-qr \
        | grep '^otpauth://' >"$DEV/chairman.otpauth"
    chmod 600 "$DEV/chairman.otpauth"

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

[tls]
cert = "$TLS/server.pem"
key = "$TLS/server.key"
client_ca = "$TLS/server-ca.pem"

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

    cat >"$DEV/registry.toml" <<TOML
listen = "127.0.0.1:$REGISTRY_PORT"
metrics_listen = "127.0.0.1:$REGISTRY_METRICS_PORT"
database_url = "sqlite:$DEV/registry.db"
mail_domain = "khanhhoa.gov.vn"

# mTLS: callers are their client certificates, from the registry's own client CA.
[tls]
cert = "$TLS/server.pem"
key = "$TLS/server.key"
client_ca = "$TLS/registry-client-ca.pem"

[access]
# The first administrator; every other role is granted in the registry (GrantRole).
bootstrap_admins = ["$(fingerprint "$TLS/provincial-admin.pem")"]
TOML
    echo "== registry on $REGISTRY_PORT (SQLite at .kyso-dev/registry.db, metrics on $REGISTRY_METRICS_PORT)"
    start registry "$BIN/kyso-registry" --config "$DEV/registry.toml"
    wait_port "$REGISTRY_PORT" "kyso-registry"

    echo "== roles and the sample province in the registry (kyso registry, as the provincial and the agency admin)"
    reg_as() { # WHO ARGS...: kyso registry with WHO's client certificate
        local who=$1
        shift
        "$BIN/kyso" registry --server "https://127.0.0.1:$REGISTRY_PORT" --tls-ca "$TLS/server-ca.pem" \
            --tls-cert "$TLS/$who.pem" --tls-key "$TLS/$who.key" "$@"
    }
    reg() { reg_as provincial-admin "$@"; }
    agency() { reg_as agency-admin "$@"; }
    jid() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("id") or d["certificate"]["fingerprint"])'; }
    ch='"change": {"reason": "dev cluster"}'
    sotttt=$(reg create-organisation <<<"{$ch, \"name\": \"Sở Thông tin và Truyền thông tỉnh Khánh Hòa\", \"mail_domain\": \"sotttt.khanhhoa.gov.vn\"}" | jid)
    grant() { # NAME ROLE [AGENCY]
        reg grant-role >/dev/null <<<"{$ch, \"fingerprint\": \"$(fingerprint "$TLS/$1.pem")\", \"subject\": \"$1\", \"role\": \"$2\", \"agency_id\": \"${3:-}\"}"
    }
    # I6: the Department of Information and Communications manages the province's subscribers.
    grant agency-admin agency-admin "$sotttt"
    grant signer-registry signer
    grant verifier-registry verifier
    reg create-document-type >/dev/null <<<"{$ch, \"code\": \"QD\", \"name\": \"Quyết định\", \"classification\": \"NONE\"}"
    # From here on, the agency administrator: everything under the agency it manages.
    reg() { agency "$@"; }
    ubnd=$(reg create-organisation <<<"{$ch, \"name\": \"Ủy ban nhân dân tỉnh Khánh Hòa\", \"managing_agency_id\": \"$sotttt\", \"mail_domain\": \"khanhhoa.gov.vn\"}" | jid)
    t_chair=$(reg create-title <<<"{$ch, \"name\": \"Chủ tịch\"}" | jid)
    t_clerk=$(reg create-title <<<"{$ch, \"name\": \"Văn thư\"}" | jid)
    chairman=$(reg create-person <<<"{$ch, \"full_name\": \"Nguyễn Văn An\", \"email\": \"an.nv@khanhhoa.gov.vn\", \"organisation_id\": \"$ubnd\", \"service_end\": \"2045-01-01T00:00:00Z\"}" | jid)
    clerk=$(reg create-person <<<"{$ch, \"full_name\": \"Lê Văn Cường\", \"email\": \"cuong.lv@khanhhoa.gov.vn\", \"organisation_id\": \"$ubnd\", \"service_end\": \"2045-01-01T00:00:00Z\"}" | jid)
    for pt in "$chairman $t_chair" "$clerk $t_clerk"; do
        read -r p t <<<"$pt"
        reg create-appointment >/dev/null <<<"{$ch, \"person_id\": \"$p\", \"title_id\": \"$t\", \"organisation_id\": \"$ubnd\", \"valid_from\": \"2020-01-01T00:00:00Z\", \"decision_ref\": \"12/QĐ-UBND\"}"
    done
    reg grant-authority >/dev/null <<<"{$ch, \"title_authorities\": [{\"organisation_id\": \"$ubnd\", \"title_id\": \"$t_chair\", \"document_type\": \"QD\"}], \"organisation_profiles\": [{\"organisation_id\": \"$ubnd\", \"document_type\": \"QD\", \"profile\": \"PROFILE_ISSUE\"}, {\"organisation_id\": \"$ubnd\", \"document_type\": \"QD\", \"profile\": \"PROFILE_RECEIVED\"}]}"
    reg register-certificate --cert "$DEV/chairman.pem" >/dev/null <<<"{$ch, \"kind\": \"PERSONAL\", \"person_id\": \"$chairman\"}"
    seal_fp=$(reg register-certificate --cert "$DEV/seal.pem" <<<"{$ch, \"kind\": \"ORGANISATION\", \"organisation_id\": \"$ubnd\"}" | jid)
    reg assign-custodian >/dev/null <<<"{$ch, \"fingerprint\": \"$seal_fp\", \"person_id\": \"$clerk\", \"decision_ref\": \"45/QĐ-UBND\", \"decision_date\": \"2025-01-01T00:00:00Z\"}"

    cat >"$DEV/signer.toml" <<TOML
listen = "127.0.0.1:$SIGNER_PORT"
metrics_listen = "127.0.0.1:$SIGNER_METRICS_PORT"
registry = { url = "https://127.0.0.1:$REGISTRY_PORT", ca = "$TLS/server-ca.pem", cert = "$TLS/signer-registry.pem", key = "$TLS/signer-registry.key" }
documents_dir = "$DEV/documents"

# mTLS: the document system is known by its client certificate.
[tls]
cert = "$TLS/server.pem"
key = "$TLS/server.key"
client_ca = "$TLS/server-ca.pem"

[[callers]]
name = "dev document system"
fingerprint = "$(fingerprint "$TLS/dms.pem")"

[audit]
path = "$DEV/audit.log"
log_id = "dev-signer"

# The audit-seal key: its own HSM object, never a [[keys]] entry (no caller can sign with it).
[audit.seal]
certificate = "$DEV/audit-seal.pem"
label = "audit-seal"
slots = ["dev-1"]

[trust]
trust_anchors = ["$PKI/root.pem"]
intermediates = ["$PKI/intermediates.pem"]
[trust.revocation]
policy = "require"
url_rewrites = [
  { from = "http://ocsp.kyso.test/", to = "http://127.0.0.1:$OCSP_PORT/" },
  { from = "http://crl.kyso.test/", to = "http://127.0.0.1:$HTTP_PORT/crl/" },
  { from = "http://aia.kyso.test/", to = "http://127.0.0.1:$HTTP_PORT/aia/" },
]

[[modules]]
name = "softhsm-over-p11kit"
path = "$P11_CLIENT"

[[slots]]
name = "dev-1"
module = "softhsm-over-p11kit"
token_label = "kyso-dev"
pin_file = "$DEV/pin"
sessions = 2

[[keys]]
name = "seal"
certificate = "$DEV/seal.pem"
chain = ["$PKI/issuing-ca.pem"]
id = "01"
slots = ["dev-1"]

[[keys]]
name = "chairman"
certificate = "$DEV/chairman.pem"
chain = ["$PKI/issuing-ca.pem"]
id = "02"
slots = ["dev-1"]
TOML
    echo "== signer on $SIGNER_PORT (metrics on $SIGNER_METRICS_PORT, audit log .kyso-dev/audit.log)"
    start signer "$BIN/kyso-signer" --config "$DEV/signer.toml"
    wait_port "$SIGNER_PORT" "kyso-signer"

    # kyso sign, verify and doc below call as the document system.
    export KYSO_TLS_CA=$TLS/server-ca.pem KYSO_TLS_CERT=$TLS/dms.pem KYSO_TLS_KEY=$TLS/dms.key
    echo "== sample document: approved by the Chairman (personal), then issued under the People's Committee's seal"
    printf 'QUYẾT ĐỊNH số 01/QĐ-UBND: văn bản mẫu của kyso.\n' >"$DEV/sample.txt"
    today=$(TZ=Asia/Ho_Chi_Minh date +%F)
    # Dev only: the Chairman's code for time step now+$1 (RFC 6238, from the enrolment URI);
    # each step is accepted once, so two signatures in a row use steps now and now+1.
    totp() {
        python3 - "$(cat "$DEV/chairman.otpauth")" "$1" <<'PY'
import base64, hmac, hashlib, struct, sys, time, urllib.parse
s = urllib.parse.parse_qs(urllib.parse.urlparse(sys.argv[1]).query)["secret"][0]
key = base64.b32decode(s + "=" * (-len(s) % 8))
mac = hmac.new(key, struct.pack(">Q", int(time.time()) // 30 + int(sys.argv[2])), hashlib.sha1).digest()
o = mac[-1] & 15
print("%06d" % ((struct.unpack(">I", mac[o:o + 4])[0] & 0x7fffffff) % 1000000))
PY
    }
    sign=("$BIN/kyso" sign --server "https://127.0.0.1:$SIGNER_PORT" --doc-type QD
        --number "01/QĐ-UBND" --issue-date "$today" --organisation "$ubnd")
    "${sign[@]}" --key chairman --profile approval --acting-person "$chairman" --otp "$(totp 0)" \
        --out "$DEV/sample.p7s" "$DEV/sample.txt"
    "${sign[@]}" --key seal --profile issue --acting-person "$clerk" \
        --add-to "$DEV/sample.p7s" --out "$DEV/sample.p7s" "$DEV/sample.txt"
    echo "== kyso verify --server https://127.0.0.1:$VERIFIER_PORT"
    "$BIN/kyso" verify --server "https://127.0.0.1:$VERIFIER_PORT" "$DEV/sample.p7s"
    echo "== PDF (W1): assets/samples/quyet-dinh.pdf approved by the Chairman between title and name (P1), sealed (P2), registered"
    "$BIN/kyso" doc issue --server "https://127.0.0.1:$SIGNER_PORT" "$ROOT/assets/samples/quyet-dinh.pdf" \
        --out "$DEV/quyet-dinh-issued.pdf" --organisation "$ubnd" --document-type QD \
        --number "123/QĐ-UBND" --issue-date "$today" \
        --approval-key chairman --approver "$chairman" --approval-otp "$(totp 1)" \
        --approval-rect 1,345,157,495,244 \
        --seal-key seal --custodian "$clerk" --recipients "Sở Tài chính tỉnh Khánh Hòa"
    echo "== kyso verify --server https://127.0.0.1:$VERIFIER_PORT .kyso-dev/quyet-dinh-issued.pdf"
    "$BIN/kyso" verify --server "https://127.0.0.1:$VERIFIER_PORT" "$DEV/quyet-dinh-issued.pdf"
    echo "== PDF (W3): received, verified signature by signature with the registry, stamped (D6)"
    "$BIN/kyso" doc receive --server "https://127.0.0.1:$SIGNER_PORT" "$DEV/quyet-dinh-issued.pdf" \
        --out "$DEV/quyet-dinh-received.pdf" --organisation "$ubnd" --document-type QD \
        --seal-key seal --custodian "$clerk" --sender "UBND tỉnh Khánh Hòa"
    echo "== kyso audit verify .kyso-dev/audit.log"
    "$BIN/kyso" audit verify "$DEV/audit.log" --certificate "$DEV/audit-seal.pem" \
        --registry "https://127.0.0.1:$REGISTRY_PORT" --log-id dev-signer --registry-ca "$TLS/server-ca.pem" \
        --registry-cert "$TLS/signer-registry.pem" --registry-key "$TLS/signer-registry.key"
    echo
    echo "The cluster is running: verifier 127.0.0.1:$VERIFIER_PORT (metrics :$METRICS_PORT),"
    echo "registry 127.0.0.1:$REGISTRY_PORT (metrics :$REGISTRY_METRICS_PORT; kyso registry --server https://127.0.0.1:$REGISTRY_PORT …),"
    echo "signer 127.0.0.1:$SIGNER_PORT (metrics :$SIGNER_METRICS_PORT; kyso sign --server https://127.0.0.1:$SIGNER_PORT …)"
    echo "All three require client certificates (mTLS):"
    sed 's/^/  /' "$TLS/README.txt"
    echo "Stop it with: scripts/dev.sh down"
}

case "${1:-up}" in
up) up ;;
down) down ;;
*) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
