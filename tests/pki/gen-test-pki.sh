#!/usr/bin/env bash
# gen-test-pki.sh OUTDIR
#
# Builds a throwaway test PKI that mimics the Vietnamese government one (see README.md next to
# this script for the layout and the reasons). Needs bash, GNU coreutils and the openssl 3 CLI.
#
# - OUTDIR must be absent, empty, or a PKI made earlier by this script (which is then replaced).
# - Everything time-dependent is relative to the moment of generation: the harness generates a
#   fresh PKI per test process, so nothing generated is checked in and nothing expires in the repo.
# - The structure (names, serial numbers, extensions, URLs) is deterministic; keys are not.
set -euo pipefail

if [[ $# -ne 1 || -z "$1" ]]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=$1
MARKER=.kyso-test-pki

if [[ -e "$OUT" ]]; then
    if [[ ! -d "$OUT" ]]; then
        echo "gen-test-pki: $OUT exists and is not a directory" >&2
        exit 2
    fi
    if [[ -n "$(ls -A "$OUT")" ]]; then
        if [[ ! -f "$OUT/$MARKER" ]]; then
            echo "gen-test-pki: $OUT is not empty and was not made by this script; refusing" >&2
            exit 2
        fi
        # A PKI made by this script earlier: replace it.
        find "$OUT" -mindepth 1 -delete
    fi
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$OUT"
touch "$MARKER"
mkdir -p leaves crl aia db

cp "$HERE/openssl.cnf" openssl.cnf
CNF=$OUT/openssl.cnf
LOG=$OUT/gen.log
: >"$LOG"

# Run quietly; on failure show the command and the end of the log.
q() {
    if ! "$@" >>"$LOG" 2>&1; then
        echo "gen-test-pki: failed: $*" >&2
        tail -n 30 "$LOG" >&2
        exit 1
    fi
}

NOW=$(date -u +%s)
DAY=86400
# ts OFFSET_SECONDS -> GeneralizedTime string for `openssl ca -startdate/-enddate`
ts() { date -u -d "@$((NOW + $1))" +%Y%m%d%H%M%SZ; }
# uts OFFSET_SECONDS -> UTCTime string as `openssl ca` writes it into index.txt
uts() { date -u -d "@$((NOW + $1))" +%y%m%d%H%M%SZ; }

# ------------------------------------------------------------------ names

GOV_O="Ban Cơ yếu Chính phủ"
ROOT_SUBJ="/C=VN/O=$GOV_O/CN=Test RootCA chuyên dùng Chính phủ"
ISSUING_SUBJ="/C=VN/O=$GOV_O/CN=Test Cơ quan chứng thực số Chính phủ"
LEGACY_ROOT_SUBJ="/C=VN/O=$GOV_O/CN=Test RootCA G1 chuyên dùng Chính phủ (sha1)"
LEGACY_SUB_SUBJ="/C=VN/O=$GOV_O/CN=Test Cục Chứng thực số G1 (sha1)"
OCSP_SUBJ="/C=VN/O=$GOV_O/CN=Test OCSP Cơ quan chứng thực số Chính phủ"
# The rogue CA carries exactly the issuing CA's name, under a key of its own.
ROGUE_SUBJ=$ISSUING_SUBJ
PERSONAL_SUBJ="/C=VN/L=Khánh Hòa/O=Ủy ban nhân dân tỉnh Khánh Hòa/title=Chủ tịch/CN=Nguyễn Văn An/emailAddress=an.nv@khanhhoa.gov.vn/UID=CMND:0123456789"
ORG_SUBJ="/C=VN/L=Khánh Hòa/O=Ủy ban nhân dân tỉnh Khánh Hòa/CN=Ủy ban nhân dân tỉnh Khánh Hòa"

# ------------------------------------------------------------------ keys (in parallel)

# Key generation is most of the cost (RSA primes). Keys carry no dates, so when
# KYSO_TEST_PKI_KEY_CACHE names a directory, a key is taken from there if present and put there
# otherwise (hard link: atomic, first writer wins, safe with concurrent generators). The
# certificates, CRLs and databases are always made afresh.
KEY_CACHE=${KYSO_TEST_PKI_KEY_CACHE:-}
if [[ -n "$KEY_CACHE" ]]; then
    mkdir -p "$KEY_CACHE"
fi

# newkey PATH KIND: KIND is rsa2048 | ec256 | ec384
newkey() {
    local cached=
    if [[ -n "$KEY_CACHE" ]]; then
        cached=$KEY_CACHE/$(basename "$1" .key).$2.key
        if [[ -s "$cached" ]]; then
            cp "$cached" "$1"
            return 0
        fi
    fi
    case $2 in
    rsa2048) openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" ;;
    ec256) openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -pkeyopt ec_param_enc:named_curve -out "$1" ;;
    ec384) openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-384 \
        -pkeyopt ec_param_enc:named_curve -out "$1" ;;
    *) echo "unknown key kind $2" >&2; return 1 ;;
    esac
    if [[ -n "$cached" ]]; then
        local tmp
        tmp=$(mktemp "$KEY_CACHE/.tmp.XXXXXX")
        cp "$1" "$tmp"
        ln "$tmp" "$cached" 2>/dev/null || true
        rm -f "$tmp"
        # Another generator may have won the race: use its key, so that all agree.
        cp "$cached" "$1"
    fi
}

# name:kind for every key; CA and OCSP keys at the top level, subscriber keys under leaves/.
KEYS=(
    root.key:rsa2048 issuing-ca.key:rsa2048 legacy-root.key:rsa2048 legacy-sub.key:rsa2048
    rogue-ca.key:rsa2048 ocsp.key:rsa2048
    leaves/personal-rsa.key:rsa2048 leaves/org-rsa.key:rsa2048 leaves/personal-pss.key:rsa2048
    leaves/personal-ec256.key:ec256 leaves/personal-ec384.key:ec384
    leaves/expired.key:rsa2048 leaves/notyet.key:rsa2048 leaves/revoked.key:rsa2048
    leaves/onhold.key:rsa2048 leaves/unknown.key:rsa2048 leaves/legacy.key:rsa2048
    leaves/rogue.key:rsa2048
)
pids=()
for k in "${KEYS[@]}"; do
    newkey "${k%%:*}" "${k##*:}" 2>>"$LOG" &
    pids+=($!)
done
for p in "${pids[@]}"; do
    if ! wait "$p"; then
        echo "gen-test-pki: key generation failed" >&2
        tail -n 30 "$LOG" >&2
        exit 1
    fi
done
chmod 600 ./*.key leaves/*.key

# ------------------------------------------------------------------ CA helpers

# init_db NAME FIRST_SERIAL_HEX
init_db() {
    mkdir -p "db/$1/certs"
    : >"db/$1/index.txt"
    echo "unique_subject = no" >"db/$1/index.txt.attr"
    echo "$2" >"db/$1/serial"
    echo "1000" >"db/$1/crlnumber"
}

# csr KEY SUBJECT OUT
csr() {
    KYSO_CA_DB=$OUT/db q openssl req -new -config "$CNF" -utf8 -key "$1" -subj "$2" -out "$3"
}

# record OUT DB: the serial `openssl ca` is about to assign from DB, for pki.env
record() { echo "serial.$(basename "$1" .pem)=$(cat "db/$2/serial")" >>serials.tmp; }

# selfsign DB KEY SUBJECT OUT EXTENSIONS START END MD
selfsign() {
    csr "$2" "$3" "$4.csr"
    record "$4" "$1"
    KYSO_CA_DB=$OUT/db/$1 q openssl ca -batch -notext -config "$CNF" -selfsign -keyfile "$2" \
        -in "$4.csr" -out "$4" -extensions "$5" -startdate "$6" -enddate "$7" -md "$8"
    rm -f "$4.csr"
}

# issue DB CA_CERT CA_KEY KEY SUBJECT OUT EXTENSIONS START END MD
issue() {
    csr "$4" "$5" "$6.csr"
    record "$6" "$1"
    KYSO_CA_DB=$OUT/db/$1 q openssl ca -batch -notext -config "$CNF" -cert "$2" -keyfile "$3" \
        -in "$6.csr" -out "$6" -extensions "$7" -startdate "$8" -enddate "$9" -md "${10}"
    rm -f "$6.csr"
}

# der PEM DER (asn1parse re-emits the parsed DER; much faster to start than `openssl x509`)
der() { q openssl asn1parse -in "$1" -out "$2" -noout; }

init_db root 1000
init_db issuing-ca 2000
init_db legacy-root 3000
init_db legacy-sub 4000
init_db rogue-ca 7000

# ------------------------------------------------------------------ CAs

# Modern root (mimics the G2 root: RSA, sha256).
selfsign root root.key "$ROOT_SUBJ" root.pem v3_root "$(ts $((-730 * DAY)))" "$(ts $((20 * 365 * DAY)))" sha256
# Issuing CA under the root.
issue root root.pem root.key issuing-ca.key "$ISSUING_SUBJ" issuing-ca.pem v3_issuing_ca \
    "$(ts $((-700 * DAY)))" "$(ts $((10 * 365 * DAY)))" sha256
# Legacy root and its sub-CA, both signed with sha1WithRSAEncryption (mimic the G1 root).
selfsign legacy-root legacy-root.key "$LEGACY_ROOT_SUBJ" legacy-root.pem v3_root \
    "$(ts $((-3000 * DAY)))" "$(ts $((5 * 365 * DAY)))" sha1
issue legacy-root legacy-root.pem legacy-root.key legacy-sub.key "$LEGACY_SUB_SUBJ" legacy-sub.pem \
    v3_legacy_sub "$(ts $((-2900 * DAY)))" "$(ts $((4 * 365 * DAY)))" sha1
# Rogue CA: self-signed, same name as the issuing CA, not trusted by anyone.
selfsign rogue-ca rogue-ca.key "$ROGUE_SUBJ" rogue-ca.pem v3_root "$(ts $((-700 * DAY)))" \
    "$(ts $((10 * 365 * DAY)))" sha256

# ------------------------------------------------------------------ end entities

VALID_FROM=$(ts $((-30 * DAY)))
VALID_TO=$(ts $((730 * DAY)))

# issue_leaf NAME SUBJECT START END  (issuing CA, serial order = call order)
issue_leaf() {
    issue issuing-ca issuing-ca.pem issuing-ca.key "leaves/$1.key" "$2" "leaves/$1.pem" v3_leaf \
        "$3" "$4" sha256
}

# OCSP responder certificate (serial 2000).
issue issuing-ca issuing-ca.pem issuing-ca.key ocsp.key "$OCSP_SUBJ" ocsp.pem v3_ocsp \
    "$VALID_FROM" "$VALID_TO" sha256
# Subscribers (serials 2001..2009, in this order).
issue_leaf personal-rsa "$PERSONAL_SUBJ" "$VALID_FROM" "$VALID_TO"
issue_leaf org-rsa "$ORG_SUBJ" "$VALID_FROM" "$VALID_TO"
issue_leaf personal-pss "$PERSONAL_SUBJ" "$VALID_FROM" "$VALID_TO"
issue_leaf personal-ec256 "$PERSONAL_SUBJ" "$VALID_FROM" "$VALID_TO"
issue_leaf personal-ec384 "$PERSONAL_SUBJ" "$VALID_FROM" "$VALID_TO"
issue_leaf expired "$PERSONAL_SUBJ" "$(ts $((-400 * DAY)))" "$(ts $((-30 * DAY)))"
issue_leaf notyet "$PERSONAL_SUBJ" "$(ts $((30 * DAY)))" "$(ts $((400 * DAY)))"
issue_leaf revoked "$PERSONAL_SUBJ" "$VALID_FROM" "$VALID_TO"
issue_leaf onhold "$PERSONAL_SUBJ" "$VALID_FROM" "$VALID_TO"

# Issued by the real issuing CA but never entered in its database: OCSP answers "unknown" and
# no CRL lists it (serial 6000).
csr leaves/unknown.key "$PERSONAL_SUBJ" leaves/unknown.csr
KYSO_CA_DB=$OUT/db/issuing-ca q openssl x509 -req -in leaves/unknown.csr -CA issuing-ca.pem \
    -CAkey issuing-ca.key -set_serial 0x6000 -days 730 -sha256 -extfile "$CNF" -extensions v3_leaf \
    -out leaves/unknown.pem
rm -f leaves/unknown.csr
echo "serial.unknown=6000" >>serials.tmp

# Under the legacy sha1 sub-CA (serial 4000; CRL only, no OCSP URL).
issue legacy-sub legacy-sub.pem legacy-sub.key leaves/legacy.key "$PERSONAL_SUBJ" leaves/legacy.pem \
    v3_legacy_leaf "$VALID_FROM" "$VALID_TO" sha256

# Under the rogue CA (serial 7000), with the real leaves' AIA and CDP URLs.
issue rogue-ca rogue-ca.pem rogue-ca.key leaves/rogue.key "$PERSONAL_SUBJ" leaves/rogue.pem v3_leaf \
    "$VALID_FROM" "$VALID_TO" sha256

# ------------------------------------------------------------------ revocations

KYSO_CA_DB=$OUT/db/issuing-ca q openssl ca -batch -config "$CNF" -cert issuing-ca.pem \
    -keyfile issuing-ca.key -revoke leaves/revoked.pem -crl_reason keyCompromise
KYSO_CA_DB=$OUT/db/issuing-ca q openssl ca -batch -config "$CNF" -cert issuing-ca.pem \
    -keyfile issuing-ca.key -revoke leaves/onhold.pem -crl_hold holdInstructionReject

# Backdate both revocations by one hour so that a signature dated "now" is unambiguously after
# them, and one dated two hours ago unambiguously before (index.txt column 3: REVTIME[,reason]).
REVTIME=$(uts -3600)
awk -F'\t' -v OFS='\t' -v t="$REVTIME" '$1 == "R" { sub(/^[0-9]+Z/, t, $3) } { print }' \
    db/issuing-ca/index.txt >db/issuing-ca/index.txt.tmp
mv db/issuing-ca/index.txt.tmp db/issuing-ca/index.txt

# ------------------------------------------------------------------ CRLs (nextUpdate: 1 day)

# gencrl DB CA_NAME
gencrl() {
    KYSO_CA_DB=$OUT/db/$1 q openssl ca -batch -config "$CNF" -gencrl -cert "$2.pem" -keyfile "$2.key" \
        -crldays 1 -md sha256 -out "crl/$2.crl.pem"
    q openssl asn1parse -in "crl/$2.crl.pem" -out "crl/$2.crl" -noout
}
gencrl root root
gencrl issuing-ca issuing-ca
gencrl legacy-root legacy-root
gencrl legacy-sub legacy-sub
gencrl rogue-ca rogue-ca
# The genuine CRLs in one PEM file, for `openssl cms -verify -crl_check_all -CRLfile`.
cat crl/root.crl.pem crl/issuing-ca.crl.pem crl/legacy-root.crl.pem crl/legacy-sub.crl.pem >crl/all.pem

# ------------------------------------------------------------------ DER copies, bundles, AIA

for c in root issuing-ca legacy-root legacy-sub rogue-ca ocsp; do
    der "$c.pem" "$c.cer"
done
for l in leaves/*.pem; do
    der "$l" "${l%.pem}.cer"
done
for c in root issuing-ca legacy-root legacy-sub; do
    cp "$c.cer" "aia/$c.cer"
done
cat root.pem legacy-root.pem >anchors.pem
cat issuing-ca.pem legacy-sub.pem >intermediates.pem

# `openssl ocsp -index index.txt -CA issuing-ca.pem -rsigner ocsp.pem -rkey ocsp.key` from OUTDIR.
# (index.txt.attr too: it says unique_subject = no, without which the index does not load.)
ln -s db/issuing-ca/index.txt index.txt
ln -s db/issuing-ca/index.txt.attr index.txt.attr

# Machine-readable facts for the harness (serials in hex, times in seconds since the epoch).
{
    echo "generated_at=$NOW"
    echo "revoked_at=$((NOW - 3600))"
    sort serials.tmp
} >pki.env
rm -f serials.tmp

rm -f db/*/index.txt.old db/*/index.txt.attr.old db/*/serial.old db/*/crlnumber.old
