#!/usr/bin/env bash
# Installs the PDF peers once per machine and prints where they are (tests/src/pdf_peers.rs runs
# this; nothing else is needed by hand).
#
#   peers.sh BASE venv      make BASE/venv-HASH (pyHanko, reportlab: requirements.txt) unless
#                           present; print its python
#   peers.sh BASE samples   also make BASE/samples-HASH with make_samples.py unless present;
#                           print that directory
#
# HASH is over what the result depends on (requirements.txt; for samples also make_samples.py
# and the fonts), so an edit makes a fresh copy and stale ones are removed. BASE is under the
# cargo target directory. Parallel test processes take turns through a lock on BASE/.lock:
# one installs, the others wait and reuse. A half-made copy is never used (marked complete
# only at the end, made under a temporary name for the samples).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
base=${1:?usage: peers.sh BASE venv|samples}
what=${2:?usage: peers.sh BASE venv|samples}

log() { echo "peers: $*" >&2; }

hash_of() { cat "$@" | sha256sum | cut -c1-16; }

mkdir -p "$base"
exec 9>"$base/.lock"
# Bounded: a stuck holder (a killed install leaves no lock behind, flock is released on exit).
if ! flock -w 900 9; then
  log "timed out waiting for $base/.lock"
  exit 1
fi

venv_hash=$(hash_of "$here/requirements.txt")
venv="$base/venv-$venv_hash"
if [ ! -f "$venv/.complete" ]; then
  for old in "$base"/venv-*; do
    [ -e "$old" ] && [ "$old" != "$venv" ] && rm -rf "$old"
  done
  rm -rf "$venv"
  command -v python3 >/dev/null || { log "python3 is missing (scripts/setup.sh installs it)"; exit 1; }
  log "creating $venv (pyHanko, reportlab; once per machine)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input \
    -r "$here/requirements.txt" >&2
  "$venv/bin/python" -c 'import pyhanko, pyhanko_certvalidator, reportlab, PIL, signxml' >&2
  touch "$venv/.complete"
fi

case "$what" in
  venv)
    echo "$venv/bin/python"
    ;;
  samples)
    fonts="$root/assets/fonts"
    samples_hash=$(hash_of "$here/requirements.txt" "$here/make_samples.py" \
      "$fonts/LiberationSerif-Regular.ttf" "$fonts/LiberationSerif-Bold.ttf")
    samples="$base/samples-$samples_hash"
    if [ ! -f "$samples/samples.json" ]; then
      for old in "$base"/samples-*; do
        [ -e "$old" ] && [ "$old" != "$samples" ] && rm -rf "$old"
      done
      command -v qpdf >/dev/null || { log "qpdf is missing (scripts/setup.sh installs it)"; exit 1; }
      log "making the sample PDFs in $samples"
      rm -rf "$samples.tmp"
      "$venv/bin/python" "$here/make_samples.py" --fonts "$fonts" --out "$samples.tmp" >/dev/null
      mv "$samples.tmp" "$samples"
    fi
    echo "$samples"
    ;;
  *)
    log "unknown request $what (venv or samples)"
    exit 1
    ;;
esac
