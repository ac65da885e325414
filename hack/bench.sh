#!/bin/bash
# hack/bench.sh: `run /bin/true` on one busybox bundle with vsrun, runc and crun, in ONE
# hyperfine run (fresh id per iteration, private --root dirs), then the medians, the ratios
# vsrun/crun and vsrun/runc, and each runtime's peak RSS (/usr/bin/time -v).
#
# crun 1.8.1 refuses this hybrid cgroup host while cgroup2 is mounted at
# /sys/fs/cgroup/unified, so the whole measurement runs inside a private mount namespace
# where that mount (only that copy of it) is unmounted; all three runtimes see the same.
#
# A fourth entry, vsrun-ro, is the same vsrun binary on a read-only bind mount: it needs no
# seal (runtime/src/security/sealed_exe.rs: the in-place move as root), so vsrun minus vsrun-ro
# is what the CVE-2019-5736 seal costs.
#
# A fifth entry, floor, is what the kernel alone needs for the same namespaces and root:
# `unshare -p -m -i -u -n --fork chroot ROOTFS /bin/true` (issue 14: vsrun at most 2x that).
#
# hyperfine runs each command's iterations one after another, so a machine whose speed drifts
# (a shared VM) moves one command's median against another's. So `run` is also timed
# interleaved: INTERLEAVE rounds (default 150), each one run of vsrun, crun and the floor in
# turn, medians of wall time per command and the ratios of those medians.
#
# Then issue 14's footprint figures, each beside crun's where crun has one: peak RSS of a run,
# resident memory of a created (not started) container, the stripped binary's size, exec into
# a running container, 100 runs in parallel against serial/2, and list/state with LIST_N
# (default 1000) created containers.
#
# vsrun is built as the release build is meant to be installed: static-pie
# (RUSTFLAGS=-C target-feature=+crt-static, --target x86_64-unknown-linux-gnu), so that vsrun
# starts without the dynamic loader (and so does rootless vsrun's sealing re-exec).
#
# Then the bound-IP benchmark (hack/bench-bindip.sh): connect/accept and UDP round trips with
# and without the org.vsrun.bind-ip programs. BENCH_BINDIP=0 leaves it out.
#
# BENCH_BEFORE=/path/to/an/older/vsrun adds it as `vsrun-before` to the same hyperfine runs
# (its own --root), so that a change is measured side by side with what it replaces.
#
# Env: RUNS (default 30), WARMUP (default 5), LIST_N (default 1000), PAR_N (default 100),
# INTERLEAVE (default 150).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
runs=${RUNS:-30}
warmup=${WARMUP:-5}
list_n=${LIST_N:-1000}
par_n=${PAR_N:-100}
interleave=${INTERLEAVE:-150}

[ "$(id -u)" = 0 ] || { echo "bench.sh: run as root" >&2; exit 1; }

source hack/lib/packages.sh # (the cwd is the repository)
source hack/lib/scratch.sh
ensure_packages hack/bench.sh busybox-static runc crun hyperfine time python3 util-linux linux-perf

RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release -p vsrun --target x86_64-unknown-linux-gnu
vsrun=$repo/target/x86_64-unknown-linux-gnu/release/vsrun
runc=$(command -v runc)
crun=$(command -v crun)

tmp=$(mktemp -d /tmp/vsrun-bench.XXXXXX)
before_entry="" # text for inner.sh: its $b is the bundle, \$\$ hyperfine's shell's pid
if [ -n "${BENCH_BEFORE:-}" ]; then
    cp "$BENCH_BEFORE" "$tmp/vsrun-before"
    mkdir -p "$tmp/root-before"
    before_entry="-n vsrun-before \"$tmp/vsrun-before --root $tmp/root-before run --bundle "'$b o\$\$ >/dev/null"'
fi
bin_of() {
    case $1 in vsrun) echo "$vsrun" ;; runc) echo "$runc" ;; crun) echo "$crun" ;; esac
}
cleanup() {
    for rt in vsrun runc crun; do
        [ -d "$tmp/root-$rt" ] && delete_all "$(bin_of $rt)" "$tmp/root-$rt"
    done
    delete_all "$vsrun" "$tmp/root-vsrun-many"
    remove_scratch hack/bench.sh "$tmp"
}
trap cleanup EXIT

# Two bundles: plain `runc spec` with /bin/true, and the same with docker's default seccomp
# profile (runtime/src/security/seccomp/testdata/docker.json, taken from a real docker config).
bundle=$tmp/bundle
"$repo/hack/mkrootfs" "$bundle/rootfs" >/dev/null
(cd "$bundle" && "$runc" spec)
python3 - "$bundle/config.json" "$repo/runtime/src/security/seccomp/testdata/docker.json" "$tmp/bundle-seccomp" <<'PY'
import json, os, sys
p, profile, other = sys.argv[1:4]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
json.dump(c, open(p, "w"), indent=2)
sleeper = os.path.join(os.path.dirname(other), "bundle-sleep")
os.makedirs(sleeper, exist_ok=True)
c["root"]["path"] = os.path.join(os.path.dirname(p), "rootfs")
c["process"]["args"] = ["/bin/sleep", "1000000"]
json.dump(c, open(os.path.join(sleeper, "config.json"), "w"), indent=2)
c["process"]["args"] = ["/bin/true"]
os.makedirs(other, exist_ok=True)
c["root"]["path"] = os.path.join(os.path.dirname(p), "rootfs")  # runc refuses a symlinked rootfs
c["linux"]["seccomp"] = json.load(open(profile))
json.dump(c, open(os.path.join(other, "config.json"), "w"), indent=2)
PY
mkdir -p "$tmp/root-vsrun" "$tmp/root-runc" "$tmp/root-crun" "$tmp/root-vsrun-many"

# One command per runtime and scenario (in inner.sh below); $$ is the pid of hyperfine's
# per-iteration shell, so every iteration gets a fresh id. `run` deletes the container when it
# exits; --cleanup (after each benchmark) force-deletes anything left.
leftovers() { # one command for all three (hyperfine takes a single --cleanup)
    local rt b out=""
    for rt in vsrun runc crun; do
        b=$(bin_of $rt)
        out="$out for i in \$($b --root $tmp/root-$rt list -q 2>/dev/null); do $b --root $tmp/root-$rt delete --force \$i; done;"
    done
    echo "$out true"
}

# One round: each command once, in turn; wall time per command, medians after the rounds.
cat >"$tmp/interleave.py" <<'PY'
import json, shlex, statistics, subprocess, sys, time
rounds, out = int(sys.argv[1]), sys.argv[2]
cmds = dict(a.split("=", 1) for a in sys.argv[3:])
times = {name: [] for name in cmds}
for i in range(rounds + 5):
    for name, cmd in cmds.items():
        t0 = time.perf_counter()
        # no shell: its start would add the same time to each and pull the ratios toward 1
        subprocess.run(shlex.split(cmd.replace("ID", f"i{i}")), check=True, stdout=subprocess.DEVNULL)
        if i >= 5:  # the first rounds warm the caches
            times[name].append((time.perf_counter() - t0) * 1000)
json.dump({n: statistics.median(t) for n, t in times.items()}, open(out, "w"))
PY
cat >"$tmp/inner.sh" <<INNER
set -e
umount /sys/fs/cgroup/unified 2>/dev/null || true
mkdir -p $tmp/ro-bin && cp $vsrun $tmp/ro-bin/vsrun && mount --bind -o ro $tmp/ro-bin $tmp/ro-bin
mount -o remount,bind,ro $tmp/ro-bin
for sc in plain seccomp; do
    b=$bundle; [ \$sc = seccomp ] && b=$tmp/bundle-seccomp
    hyperfine --warmup $warmup --runs $runs --export-json $tmp/hyperfine-\$sc.json \\
        --cleanup '$(leftovers)' \\
        -n vsrun "$(bin_of vsrun) --root $tmp/root-vsrun run --bundle \$b b\\\$\\\$ >/dev/null" \\
        -n vsrun-ro "$tmp/ro-bin/vsrun --root $tmp/root-vsrun run --bundle \$b r\\\$\\\$ >/dev/null" \\
        -n runc "$(bin_of runc) --root $tmp/root-runc run --bundle \$b b\\\$\\\$ >/dev/null" \\
        -n crun "$(bin_of crun) --root $tmp/root-crun run --bundle \$b b\\\$\\\$ >/dev/null" \\
        -n floor "unshare -p -m -i -u -n --fork chroot $bundle/rootfs /bin/true" \
        ${before_entry}
done
python3 $tmp/interleave.py $interleave $tmp/interleaved.json \
    "vsrun=$vsrun --root $tmp/root-vsrun run --bundle $bundle ID" \
    "crun=$crun --root $tmp/root-crun run --bundle $bundle ID" \
    "floor=unshare -p -m -i -u -n --fork chroot $bundle/rootfs /bin/true"
for rt in vsrun runc crun; do
    case \$rt in vsrun) bin=$vsrun ;; runc) bin=$runc ;; crun) bin=$crun ;; esac
    /usr/bin/time -v -o $tmp/rss-\$rt.txt \$bin --root $tmp/root-\$rt run --bundle $bundle rss-\$rt >/dev/null
done
# A created, not started container: the resident memory of every process it left (VmRSS).
for rt in vsrun crun; do
    case \$rt in vsrun) bin=$vsrun ;; crun) bin=$crun ;; esac
    \$bin --root $tmp/root-\$rt create --bundle $bundle cr-\$rt </dev/null >/dev/null 2>&1
    pid=\$(\$bin --root $tmp/root-\$rt state cr-\$rt | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
    kib=0
    for p in \$pid \$(cat /proc/\$pid/task/*/children 2>/dev/null); do
        kib=\$((kib + \$(awk '/^VmRSS:/ {print \$2}' /proc/\$p/status)))
    done
    echo \$kib >$tmp/created-\$rt.txt
    \$bin --root $tmp/root-\$rt delete --force cr-\$rt
done
# Where the CPU time of one run goes, user space against the kernel (perf's rusage tool
# events, the run's reaped processes included): what vsrun can still save is its user time.
for who in vsrun crun floor; do
    case \$who in
    vsrun) run="$vsrun --root $tmp/root-vsrun run --bundle $bundle cpu" ;;
    crun) run="$crun --root $tmp/root-crun run --bundle $bundle cpu" ;;
    floor) run="unshare -p -m -i -u -n --fork chroot $bundle/rootfs /bin/true" ;;
    esac
    perf stat -x, -r $runs -e user_time,system_time \$run 2>$tmp/cpu-\$who.txt >/dev/null || :
done
# exec into a running container.
for rt in vsrun crun; do
    case \$rt in vsrun) bin=$vsrun ;; crun) bin=$crun ;; esac
    \$bin --root $tmp/root-\$rt run -d --bundle $tmp/bundle-sleep ex-\$rt </dev/null >/dev/null 2>&1
done
hyperfine --warmup $warmup --runs $runs --export-json $tmp/hyperfine-exec.json \\
    -n vsrun "$vsrun --root $tmp/root-vsrun exec ex-vsrun /bin/true" \\
    -n crun "$crun --root $tmp/root-crun exec ex-crun /bin/true"
for rt in vsrun crun; do
    case \$rt in vsrun) bin=$vsrun ;; crun) bin=$crun ;; esac
    \$bin --root $tmp/root-\$rt delete --force ex-\$rt
done
# $par_n runs one after another, then all at once (the machine's cores share them), for vsrun,
# crun and the floor: where the floor scales no better, what is left is the kernel's (the
# namespaces' set-up and teardown, cgroup_mutex).
now() { date +%s%N; }
: >$tmp/parallel.txt
for who in vsrun crun floor; do
    case \$who in
    vsrun) run="$vsrun --root $tmp/root-vsrun run --bundle $bundle" ;;
    crun) run="$crun --root $tmp/root-crun run --bundle $bundle" ;;
    floor) run="unshare -p -m -i -u -n --fork chroot $bundle/rootfs /bin/true" ;; # true ignores the id
    esac
    t0=\$(now)
    for i in \$(seq $par_n); do \$run s\$i >/dev/null; done
    t1=\$(now)
    seq $par_n | xargs -P $par_n -I{} \$run p{} >/dev/null
    t2=\$(now)
    echo \$who \$((t1 - t0)) \$((t2 - t1)) \$(nproc) >>$tmp/parallel.txt
done
# list and state with $list_n created containers.
seq $list_n | xargs -P \$(nproc) -I{} sh -c '$vsrun --root $tmp/root-vsrun-many create --bundle $bundle m{} </dev/null >/dev/null 2>&1'
hyperfine -N --warmup 3 --runs $runs --export-json $tmp/hyperfine-many.json \\
    -n list "$vsrun --root $tmp/root-vsrun-many list" \\
    -n state "$vsrun --root $tmp/root-vsrun-many state m$((list_n / 2))"
$vsrun --root $tmp/root-vsrun-many list -q | xargs -P \$(nproc) -n 20 sh -c 'for i; do $vsrun --root $tmp/root-vsrun-many delete --force \$i; done' sh
INNER
unshare -m --propagation private bash "$tmp/inner.sh"
strip -o "$tmp/vsrun.stripped" "$vsrun"
stat -c %s "$tmp/vsrun.stripped" >"$tmp/size-vsrun.txt"
stat -L -c %s "$crun" >"$tmp/size-crun.txt"

python3 - "$tmp" "$par_n" <<'PY'
import json, re, sys
tmp = sys.argv[1]
par_n = sys.argv[2]
rss = {}
for rt in ("vsrun", "runc", "crun"):
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(f"{tmp}/rss-{rt}.txt").read())
    rss[rt] = int(m.group(1)) if m else None
for sc, title in (("plain", "run /bin/true"), ("seccomp", "run /bin/true with docker's default seccomp profile")):
    res = {r["command"]: r for r in json.load(open(f"{tmp}/hyperfine-{sc}.json"))["results"]}
    med = {k: v["median"] * 1000 for k, v in res.items()}
    print()
    print(f"== {title}")
    print(f"{'runtime':8} {'median ms':>10} {'peak RSS KiB':>13}")
    for rt in ("vsrun", "vsrun-ro", "runc", "crun"):
        r = rss.get(rt)
        print(f"{rt:8} {med[rt]:10.2f} {r if r is not None else '-':>13}")
    print(f"vsrun/crun median ratio: {med['vsrun'] / med['crun']:.2f}")
    print(f"vsrun/runc median ratio: {med['vsrun'] / med['runc']:.2f}")
    print(f"cost of sealing the binary (vsrun - vsrun-ro): {med['vsrun'] - med['vsrun-ro']:.2f} ms")
    print(f"vsrun/floor median ratio: {med['vsrun'] / med['floor']:.2f}  (floor: unshare -pmiun --fork chroot, {med['floor']:.2f} ms; target <= 2)")
    if "vsrun-before" in med:
        b = med["vsrun-before"]
        print(f"vsrun-before (BENCH_BEFORE): {b:.2f} ms; /crun {b / med['crun']:.2f}, /floor {b / med['floor']:.2f}, vsrun/vsrun-before {med['vsrun'] / b:.2f}")

il = json.load(open(f"{tmp}/interleaved.json"))
print()
print("== run /bin/true, interleaved (vsrun, crun, floor in turn; medians)")
print(f"vsrun {il['vsrun']:.2f} ms, crun {il['crun']:.2f} ms, floor {il['floor']:.2f} ms: "
      f"vsrun/crun {il['vsrun'] / il['crun']:.2f} (target <= 0.7), vsrun/floor {il['vsrun'] / il['floor']:.2f} (target <= 2)")

def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "-"
print()
print("== footprint (issue 14)")
created = {rt: int(open(f"{tmp}/created-{rt}.txt").read() or 0) for rt in ("vsrun", "crun")}
size = {rt: int(open(f"{tmp}/size-{rt}.txt").read()) for rt in ("vsrun", "crun")}
print(f"{'figure':42} {'vsrun':>10} {'crun':>10} {'ratio':>6} target")
print(f"{'peak RSS of run /bin/true (KiB)':42} {rss['vsrun']:>10} {rss['crun']:>10} {ratio(rss['vsrun'], rss['crun']):>6} <= 1")
print(f"{'created container, resident in all (KiB)':42} {created['vsrun']:>10} {created['crun']:>10} {ratio(created['vsrun'], created['crun']):>6} vsrun <= 1536 KiB")
print(f"{'stripped binary (bytes)':42} {size['vsrun']:>10} {size['crun']:>10} {ratio(size['vsrun'], size['crun']):>6} vsrun <= 1572864 (crun also loads shared libraries)")
ex = {r["command"]: r["median"] * 1000 for r in json.load(open(f"{tmp}/hyperfine-exec.json"))["results"]}
print(f"{'exec /bin/true, median ms':42} {ex['vsrun']:>10.2f} {ex['crun']:>10.2f} {ratio(ex['vsrun'], ex['crun']):>6} <= 0.7")
for line in open(f"{tmp}/parallel.txt"):
    who, serial, par, cores = line.split()
    serial, par, cores = int(serial), int(par), int(cores)
    print(f"{who}: {par_n} runs at once vs one after another: serial {serial / 1e6:.0f} ms, parallel {par / 1e6:.0f} ms"
          f" on {cores} cores; parallel/(serial/{cores}) = {par / (serial / cores):.2f}" + (" (target <= 1.2)" if who == "vsrun" else ""))
cpu = {}
for who in ("vsrun", "crun", "floor"):
    try:
        rows = [l.split(",") for l in open(f"{tmp}/cpu-{who}.txt") if "_time" in l]
        cpu[who] = {r[2]: float(r[0]) / 1e6 for r in rows if r[0].replace(".", "").isdigit()}
    except OSError:
        pass
for who, c in cpu.items():
    if "user_time" in c and "system_time" in c:
        u, k = c["user_time"], c["system_time"]
        print(f"CPU of one run, {who}: user {u:.2f} ms, kernel {k:.2f} ms ({100 * k / (u + k):.0f} % kernel)")
many = {r["command"]: r["median"] * 1000 for r in json.load(open(f"{tmp}/hyperfine-many.json"))["results"]}
print(f"with many created containers: list {many['list']:.2f} ms, state {many['state']:.2f} ms (target < 20 each)")
PY

if [ "${BENCH_BINDIP:-1}" != 0 ]; then
    echo
    echo "== bound IP (hack/bench-bindip.sh)"
    sh "$repo/hack/bench-bindip.sh"
fi
