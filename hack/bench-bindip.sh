#!/bin/sh
# bench-bindip.sh: what bound-IP mode (org.vsrun.bind-ip) costs on the socket calls it hooks.
#
# Runs the ignored unit test net::tests::bench_bindip as root. It makes its own network
# namespace (loopback plus 127.1.0.2), one cgroup with the nine programs attached and one
# without, and an agent process in each; they alternate BENCH_ROUNDS rounds of BENCH_N
#   tcp: connect (to 127.0.0.1, rewritten; to 127.1.0.2 without programs), accept,
#        1 byte each way, close with RST (no TIME_WAIT pile-up)
#   udp: unconnected sendto, recvfrom, reply, recvfrom
# and it prints the median time per round trip and the overhead. Nothing leaves the namespace.
#
# Release build without LTO in its own target dir (target/bench-bindip), so it neither waits
# for nor invalidates the other builds. BENCH_PROFILE=dev uses the debug build instead.
set -eu
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench-bindip: needs root (network namespace, cgroup, bpf)" >&2; exit 1; }
profile=${BENCH_PROFILE:-release}
export BENCH_N=${BENCH_N:-5000} BENCH_ROUNDS=${BENCH_ROUNDS:-7}
if [ "$profile" = release ]; then
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/bench-bindip}
    export CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
    set -- --release
else
    set --
fi
exec cargo test -q -p vsrun --lib "$@" net::tests::bench_bindip -- --ignored --nocapture --exact
