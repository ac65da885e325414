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
# re-exec to seal itself (runtime/src/security/sealed_exe.rs), so vsrun minus vsrun-ro is what
# the CVE-2019-5736 seal costs.
#
# Then the bound-IP benchmark (hack/bench-bindip.sh): connect/accept and UDP round trips with
# and without the org.vsrun.bind-ip programs. BENCH_BINDIP=0 leaves it out.
#
# Env: RUNS (default 30), WARMUP (default 5).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
runs=${RUNS:-30}
warmup=${WARMUP:-5}

[ "$(id -u)" = 0 ] || { echo "bench.sh: run as root" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive
missing=()
for pkg in busybox-static runc crun hyperfine time python3 util-linux; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
        missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cargo build --release -p vsrun
vsrun=$repo/target/release/vsrun
runc=$(command -v runc)
crun=$(command -v crun)

tmp=$(mktemp -d /tmp/vsrun-bench.XXXXXX)
bin_of() {
    case $1 in vsrun) echo "$vsrun" ;; runc) echo "$runc" ;; crun) echo "$crun" ;; esac
}
cleanup() {
    for rt in vsrun runc crun; do
        bin=$(bin_of $rt)
        [ -d "$tmp/root-$rt" ] || continue
        for id in $("$bin" --root "$tmp/root-$rt" list -q 2>/dev/null); do
            "$bin" --root "$tmp/root-$rt" delete --force "$id" >/dev/null 2>&1 || true
        done
    done
    # never remove through a mount left behind
    if grep -q " $tmp/" /proc/self/mountinfo; then
        echo "bench.sh: mounts left under $tmp; not removing it" >&2
    else
        rm -rf "$tmp"
    fi
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
os.makedirs(other, exist_ok=True)
c["root"]["path"] = os.path.join(os.path.dirname(p), "rootfs")  # runc refuses a symlinked rootfs
c["linux"]["seccomp"] = json.load(open(profile))
json.dump(c, open(os.path.join(other, "config.json"), "w"), indent=2)
PY
mkdir -p "$tmp/root-vsrun" "$tmp/root-runc" "$tmp/root-crun"

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
        -n crun "$(bin_of crun) --root $tmp/root-crun run --bundle \$b b\\\$\\\$ >/dev/null"
done
for rt in vsrun runc crun; do
    case \$rt in vsrun) bin=$vsrun ;; runc) bin=$runc ;; crun) bin=$crun ;; esac
    /usr/bin/time -v -o $tmp/rss-\$rt.txt \$bin --root $tmp/root-\$rt run --bundle $bundle rss-\$rt >/dev/null
done
INNER
unshare -m --propagation private sh "$tmp/inner.sh"

python3 - "$tmp" <<'PY'
import json, re, sys
tmp = sys.argv[1]
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
PY

if [ "${BENCH_BINDIP:-1}" != 0 ]; then
    echo
    echo "== bound IP (hack/bench-bindip.sh)"
    sh "$repo/hack/bench-bindip.sh"
fi
