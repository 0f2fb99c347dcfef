#!/usr/bin/env bash
# gen-load-pki.sh OUTDIR SIGNERS
#
# The PKI of the load corpus (`kyso bench load`), apart from the shared test PKI: two roots
# (RSA 2048, EC P-384), four issuing CAs (two under each; RSA and EC), SIGNERS leaves spread
# round-robin over the CAs, one leaf in eight revoked (the first of each CA among them), and a
# CRL per CA and per root. Many distinct certificates and CRLs, so a verifier's caches are not
# trivially warm.
#
# Keys: a fresh EC P-256 key per EC leaf (milliseconds each); one leaf in five is RSA 2048 and
# signs with one of four shared RSA keys under its own subject and serial, because generating
# hundreds of RSA keys would take minutes and a verifier caches certificates, not keys.
#
# Writes OUTDIR/signers.tsv: name, issuing CA, root, key kind (ec|rsa), key file, certificate
# file (relative to OUTDIR), revoked (0|1). OUTDIR must be absent or empty.
set -euo pipefail

if [[ $# -ne 2 || -z "$1" || ! "$2" =~ ^[0-9]+$ || "$2" -lt 1 ]]; then
    echo "usage: $0 OUTDIR SIGNERS" >&2
    exit 2
fi
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=$1
SIGNERS=$2
if [[ -e "$OUT" && -n "$(ls -A "$OUT")" ]]; then
    echo "gen-load-pki: $OUT is not empty; refusing" >&2
    exit 2
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$OUT"
mkdir -p roots cas keys leaves crl db
cp "$HERE/load-pki.cnf" openssl.cnf
CNF=$OUT/openssl.cnf
export KYSO_CA_DB=$OUT/db KYSO_LOAD_CA=none KYSO_LOAD_ROOT=none

q() {
    local log
    log=$(mktemp)
    if ! "$@" >"$log" 2>&1; then
        echo "gen-load-pki: failed: $*" >&2
        tail -n 30 "$log" >&2
        rm -f "$log"
        exit 1
    fi
    rm -f "$log"
}

rsa() { q openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1"; }
ec() { q openssl genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:$2" -out "$1"; }

SUBJ="/C=VN/O=Kyso load corpus"
# RSA keys in parallel: the slow part.
rsa roots/root-a.key &
rsa cas/ca-1.key &
rsa cas/ca-4.key &
for k in 1 2 3 4; do rsa "keys/rsa-$k.key" & done
ec roots/root-b.key P-384
ec cas/ca-2.key P-256
ec cas/ca-3.key P-256
wait

q openssl req -new -x509 -config "$CNF" -utf8 -key roots/root-a.key \
    -subj "$SUBJ/CN=Load Root root-a" -days 3650 -sha256 -set_serial 0x101 -extensions v3_root \
    -out roots/root-a.pem
q openssl req -new -x509 -config "$CNF" -utf8 -key roots/root-b.key \
    -subj "$SUBJ/CN=Load Root root-b" -days 3650 -sha384 -set_serial 0x102 -extensions v3_root \
    -out roots/root-b.pem

# ca NAME ROOT SERIAL
ca() {
    KYSO_LOAD_ROOT=$2 q openssl req -new -x509 -config "$CNF" -utf8 -key "cas/$1.key" \
        -subj "$SUBJ/OU=$2/CN=Load Issuing CA $1" -CA "roots/$2.pem" -CAkey "roots/$2.key" \
        -days 1825 -sha256 -set_serial "$3" -extensions v3_ca -out "cas/$1.pem"
}
ca ca-1 root-a 0x201
ca ca-2 root-a 0x202
ca ca-3 root-b 0x203
ca ca-4 root-b 0x204
ROOT_OF=([1]=root-a [2]=root-a [3]=root-b [4]=root-b)

# The leaves of one CA (the four CAs run in parallel; each has its own database).
leaves_of() {
    local c=$1 ca=ca-$1 root=${ROOT_OF[$1]}
    mkdir -p "db/$ca"
    : >"db/$ca/index.txt"
    echo "unique_subject = no" >"db/$ca/index.txt.attr"
    echo 1000 >"db/$ca/crlnumber"
    : >"signers.$ca.tsv"
    local i name kind key rank revoked
    for ((i = c - 1; i < SIGNERS; i += 4)); do
        name=$(printf 's%04d' "$i")
        rank=$((i / 4))
        if ((i % 5 == 4)); then
            kind=rsa
            key=keys/rsa-$((rank % 4 + 1)).key
        else
            kind=ec
            key=leaves/$name.key
            ec "$key" P-256
        fi
        KYSO_LOAD_CA=$ca q openssl req -new -x509 -config "$CNF" -utf8 -key "$key" \
            -subj "$SUBJ/OU=$ca/CN=Load signer $name" -CA "cas/$ca.pem" -CAkey "cas/$ca.key" \
            -days 730 -sha256 -set_serial "$((0x10000 + i))" -extensions v3_leaf \
            -out "leaves/$name.pem"
        revoked=0
        if ((rank % 8 == 0)); then
            revoked=1
            KYSO_CA_DB=$OUT/db/$ca q openssl ca -batch -config "$CNF" -cert "cas/$ca.pem" \
                -keyfile "cas/$ca.key" -revoke "leaves/$name.pem" -crl_reason keyCompromise
        fi
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$ca" "$root" "$kind" "$key" \
            "leaves/$name.pem" "$revoked" >>"signers.$ca.tsv"
    done
}
pids=()
for c in 1 2 3 4; do
    leaves_of "$c" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
sort signers.ca-*.tsv >signers.tsv
rm -f signers.ca-*.tsv

# gencrl DIR NAME: nextUpdate one day on.
gencrl() {
    mkdir -p "db/$2"
    [[ -f "db/$2/index.txt" ]] || : >"db/$2/index.txt"
    [[ -f "db/$2/crlnumber" ]] || echo 1000 >"db/$2/crlnumber"
    KYSO_CA_DB=$OUT/db/$2 q openssl ca -batch -config "$CNF" -gencrl -cert "$1/$2.pem" \
        -keyfile "$1/$2.key" -crldays 1 -md sha256 -out "crl/$2.crl.pem"
    q openssl crl -in "crl/$2.crl.pem" -outform DER -out "crl/$2.crl"
    rm -f "crl/$2.crl.pem"
}
gencrl roots root-a
gencrl roots root-b
for c in 1 2 3 4; do gencrl cas "ca-$c"; done

cat roots/root-a.pem roots/root-b.pem >anchors.pem
cat cas/ca-*.pem >intermediates.pem
