#!/bin/sh
# hack/fuzz.sh [SECONDS]   (default 60)
# Fuzz vsrun's config / process.json / resources parsing and validation with cargo-fuzz
# (fuzz/fuzz_targets/config.rs) for SECONDS of wall time. Needs the nightly toolchain;
# installs cargo-fuzz when it is missing. The corpus lives in fuzz/corpus/config (kept between
# runs) and is seeded from spec-tests/fixtures/engine-configs, fuzz/seeds (the bad-input corpus, written
# by `VSRUN_FUZZ_SEEDS=fuzz/seeds cargo test -p spec-tests --test bad_input_more dump_fuzz_seeds`)
# and the engine bundles in bundles/. Crashes land in fuzz/artifacts/config/; the script
# exits 1 and prints each crashing input when there is one.
#
# Env: FUZZ_JOBS (parallel workers, default 1), FUZZ_ARGS (extra libFuzzer flags),
# VSRUN_FUZZ_STRICT_LINES=1 (also require the library's error text to be one line; what
# vsrun prints is made one line by log::error).
# Inputs that once failed are kept in fuzz/regressions/; replay one with
#   cargo +nightly fuzz run --fuzz-dir fuzz config fuzz/regressions/FILE
set -eu

secs=${1:-60}
case $secs in
    '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal

corpus=fuzz/corpus/config
artifacts=fuzz/artifacts/config
mkdir -p "$corpus" "$artifacts"
# Seeds are copied in under content names, so reseeding never duplicates an input.
seed() {
    for f in "$@"; do
        [ -f "$f" ] || continue
        cp "$f" "$corpus/seed-$(sha1sum "$f" | cut -c1-16)"
    done
}
seed spec-tests/fixtures/engine-configs/*.json fuzz/seeds/*.json bundles/*/config.json bundles/*.json

before=$(ls "$artifacts" | wc -l)
jobs=${FUZZ_JOBS:-1}
start=$(date +%s)
set +e
# -max_total_time is per worker. With FUZZ_JOBS>1 libFuzzer runs that many workers and
# writes their logs as fuzz-N.log into the current directory, so the run happens in fuzz/.
par=
[ "$jobs" -gt 1 ] && par="-jobs=$jobs -workers=$jobs"
(cd fuzz && cargo +nightly fuzz run --fuzz-dir . config corpus/config -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -dict=config.dict -print_final_stats=1 $par ${FUZZ_ARGS:-}) 2>&1 |
    tee fuzz/last-run.log | grep -E '^#[0-9]+.*(DONE|pulse)|^Done|==ERROR|panicked|SUMMARY|stat::'

set -e
elapsed=$(( $(date +%s) - start ))
after=$(ls "$artifacts" | wc -l)
echo "fuzz: ${elapsed}s wall, corpus $(ls "$corpus" | wc -l) inputs, artifacts $before -> $after (log: fuzz/last-run.log)"
if [ "$after" -gt "$before" ]; then
    for f in $(ls -t "$artifacts" | head -n $((after - before))); do
        echo "--- crash input $artifacts/$f:"
        head -c 4000 "$artifacts/$f"; echo
    done
    exit 1
fi
