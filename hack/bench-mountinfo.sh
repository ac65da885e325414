#!/bin/bash
# hack/bench-mountinfo.sh BEFORE AFTER: issue 14's fourth round, /proc/self/mountinfo off the
# hot path of `run`. Two vsrun binaries side by side on the `runc spec` busybox bundle
# (/bin/true):
#  - per run (strace -f): opens of /proc/self/mountinfo, statmount(2) calls, all syscalls;
#  - CPU time of a run summed over its processes (perf stat -r RUNS -e task-clock),
#    alternating the two binaries, ROUNDS times;
#  - PAR_N runs at once against PAR_N one after another (/ the core count), as hack/bench.sh
#    measures it, alternating the two binaries, ROUNDS times.
#  - (fifth round) per run: path walks starting at /sys/fs/cgroup (absolute paths) and their
#    components; with PAR_N runs at once, the runtime's sleeps on kernfs (sched_switch stacks
#    through a kernfs_ function; perf record -a), WAITS rounds.
# The opens are counted twice: on this host as it is, and in a private mount namespace with
# /sys/fs/cgroup/unified unmounted (hack/bench.sh's namespace, for crun).
#
# Env: RUNS (default 40), PAR_N (default 100), ROUNDS (default 2), WAITS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
[ $# = 2 ] || { echo "usage: $0 BEFORE AFTER" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "bench-mountinfo.sh: run as root" >&2; exit 1; }
runs=${RUNS:-40}
par_n=${PAR_N:-100}
rounds=${ROUNDS:-2}
waits=${WAITS:-2}

source hack/lib/packages.sh # (the cwd is the repository)
ensure_packages hack/bench-mountinfo.sh busybox-static runc strace linux-perf util-linux

tmp=$(mktemp -d /tmp/vsrun-bench-mi.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cp "$1" "$tmp/before"
cp "$2" "$tmp/after"
bundle=$tmp/bundle
"$repo/hack/mkrootfs" "$bundle/rootfs" >/dev/null
(cd "$bundle" && runc spec)
sed -i 's/"sh"/"\/bin\/true"/; s/"terminal": true/"terminal": false/' "$bundle/config.json"

# count WHO TRACE: opens of mountinfo, statmount calls (457), syscalls in all.
count() {
    local mi sm all
    mi=$(grep -c 'open.*/proc/self/mountinfo' "$2" || true)
    sm=$(grep -cE '(statmount|syscall_0x1c9)\(' "$2" || true)
    all=$(grep -cE '^[0-9]+ +[a-z_0-9]+\(' "$2" || true)
    echo "$1: mountinfo opens $mi, statmount $sm, syscalls $all"
    grep -oE '"/sys/fs/cgroup[^"]*"' "$2" | awk -F/ -v who="$1" \
        '{ n++; c += NF - 1 } END { printf "%s: absolute walks through /sys/fs/cgroup %d (%d components)\n", who, n, c }'
}
for who in before after; do
    strace -f -o "$tmp/trace-$who" "$tmp/$who" --root "$tmp/root-$who" run --bundle "$bundle" t >/dev/null
    count "$who, this host" "$tmp/trace-$who"
    unshare -m --propagation private sh -c "umount /sys/fs/cgroup/unified 2>/dev/null || true;
        strace -f -o $tmp/trace-ns-$who $tmp/$who --root $tmp/root-$who run --bundle $bundle t >/dev/null"
    count "$who, unified unmounted" "$tmp/trace-ns-$who"
done

for r in $(seq "$rounds"); do
    for who in before after; do
        ms=$(perf stat -r "$runs" -x, -e task-clock -- \
            "$tmp/$who" --root "$tmp/root-$who" run --bundle "$bundle" c 2>&1 >/dev/null |
            awk -F, '/task-clock/ { print $1 }')
        echo "round $r $who: CPU ms per run (task-clock, $runs runs): $ms"
    done
done

# kernfs WHO R: PAR_N runs at once under perf record; the runtime's sleeps (sched_switch of a
# task named vsrun, before or after) whose stack passes a kernfs_ function, the top one named.
kernfs() {
    local run="$tmp/$1 --root $tmp/root-$1 run --bundle $bundle"
    perf record -q -m 1024 -a -g -e sched:sched_switch -o "$tmp/perf.data" -- \
        sh -c "seq $par_n | xargs -P $par_n -I{} $run w{} >/dev/null" 2>/dev/null
    perf script -i "$tmp/perf.data" 2>/dev/null | awk -v who="$1" -v r="$2" '
        function done_one() { if (ours && top != "") { n++; split(top, f, "+"); by[f[1]]++ } }
        /sched:sched_switch:/ { done_one(); ours = ($1 == "vsrun" || $1 == "before" || $1 == "after"); all += ours; top = ""; next }
        top == "" && $2 ~ /^kernfs_/ { top = $2 }
        END { done_one(); printf "round %s %s: switches %d, sleeps in kernfs %d:", r, who, all, n
              for (k in by) printf " %s %d", k, by[k]; printf "\n" }'
}
for r in $(seq "$waits"); do
    for who in before after; do kernfs "$who" "$r"; done
done

now() { date +%s%N; }
for r in $(seq "$rounds"); do
    for who in before after; do
        run="$tmp/$who --root $tmp/root-$who run --bundle $bundle"
        t0=$(now)
        for i in $(seq "$par_n"); do $run "s$i" >/dev/null; done
        t1=$(now)
        seq "$par_n" | xargs -P "$par_n" -I{} $run "p{}" >/dev/null
        t2=$(now)
        awk -v who="$who" -v r="$r" -v s=$((t1 - t0)) -v p=$((t2 - t1)) -v c="$(nproc)" -v n="$par_n" \
            'BEGIN { printf "round %s %s: %d runs serial %.0f ms, at once %.0f ms; parallel/(serial/%d) = %.2f\n",
                     r, who, n, s / 1e6, p / 1e6, c, p / (s / c) }'
    done
done
