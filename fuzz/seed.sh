#!/bin/sh
# Writes the seed corpora (fuzz/corpus/<target>/seed-*) from the test PKI, openssl, the PDF
# fixtures and the sample images. Run from anywhere; then fuzz and minimise (docs/FUZZING.md).
set -eu
cd "$(dirname "$0")/.."
exec cargo test -p kyso-tests --test platform -- --ignored --exact fuzz_seeds::fuzz_seeds_write
