#!/bin/sh
# A fuzzing campaign: each target in turn (one process, lowest priority), for SECONDS each,
# growing fuzz/corpus/<target>/; crashes go to fuzz/artifacts/<target>/, logs to
# fuzz/logs/<target>.log (libFuzzer's final stats at the end). See docs/FUZZING.md.
#   fuzz/campaign.sh 3600                 every target, an hour each
#   fuzz/campaign.sh 600 pdf png          some targets
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). On a stable toolchain,
# RUSTC_BOOTSTRAP=1 lets it pass its -Z flags; -s none: no sanitizer (the workspace
# forbids unsafe code), -a: debug assertions (overflow checks) on. The CPU time each target
# got (it runs at the lowest priority, so on a busy machine it is less than the wall time) is
# the last line of its log, from GNU time.
#   KYSO_FUZZ_NO_BUILD=1 fuzz/campaign.sh ...   skip the build (a second campaign beside a first)
set -eu
cd "$(dirname "$0")/.."
seconds=${1:?usage: fuzz/campaign.sh SECONDS [TARGET...]}
shift
targets=${*:-$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^kyso-fuzz$')}
mkdir -p fuzz/logs
export RUSTC_BOOTSTRAP=${RUSTC_BOOTSTRAP:-1}
[ -n "${KYSO_FUZZ_NO_BUILD:-}" ] || nice -n 19 cargo fuzz build -s none -a
for t in $targets; do
    echo "== $t: ${seconds}s from $(date -u +%FT%TZ)"
    nice -n 19 /usr/bin/time -f "campaign: cpu %U s user + %S s system, wall %e s, peak rss %M KiB" \
        cargo fuzz run -s none -a "$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"fuzz/logs/$t.log" 2>&1 || echo "$t stopped early (a finding?): see fuzz/logs/$t.log"
    tail -n 12 "fuzz/logs/$t.log"
done
