#!/bin/bash
# hack/soak.sh [N]   (default 100)
# Leak and kill -9 resistance (issue 6): N cycles of create / start / kill -9 / delete, and in
# every fourth cycle vsrun itself is killed -9 at a random point of `create` (run in the
# background, a random 0-8 ms later `kill -9` of that vsrun's pid), then `delete --force`.
# Then twenty concurrent `create` of one id: exactly one may succeed, the others must fail
# cleanly (exit 1, one stderr line). At the end nothing may remain: no state dir, no cgroup
# (/sys/fs/cgroup/*/vsrun/<id>), no mount mentioning the bundle, no process rooted in the
# bundle, no fd into the work dir. Prints a summary; exits 1 on any failure or leak (and then
# removes what leaked, after reporting it).
#
# Env: VSRUN (default target/debug/vsrun, built when missing), SOAK_KEEP=1 keeps the work dir.
set -u

n=${1:-100}
case $n in '' | *[!0-9]*) echo "usage: $0 [N]" >&2; exit 2 ;; esac
[ "$(id -u)" = 0 ] || { echo "soak: needs root" >&2; exit 2; }
repo=$(cd "$(dirname "$0")/.." && pwd)
vsrun=${VSRUN:-$repo/target/debug/vsrun}
if [ ! -x "$vsrun" ]; then
    (cd "$repo" && cargo build -q -p vsrun) || exit 1
fi

work=$(mktemp -d /tmp/vsrun-soak.XXXXXX)
# One binary for the whole run, even if target/debug/vsrun is rebuilt meanwhile.
cp "$vsrun" "$work/vsrun"
vsrun=$work/vsrun
state=$work/state
bundle=$work/bundle
mkdir -p "$state" "$bundle"
"$repo/hack/mkrootfs" "$bundle/rootfs" >/dev/null || { echo "soak: mkrootfs failed" >&2; exit 1; }
prefix=soak$$
cat >"$bundle/config.json" <<'EOF'
{
  "ociVersion": "1.0.2-dev",
  "process": {
    "terminal": false,
    "user": { "uid": 0, "gid": 0 },
    "args": ["sleep", "1000"],
    "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
    "cwd": "/",
    "capabilities": {
      "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    },
    "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
    "noNewPrivileges": true
  },
  "root": { "path": "rootfs" },
  "hostname": "soak",
  "mounts": [
    { "destination": "/proc", "type": "proc", "source": "proc" },
    { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
      "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
    { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
      "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] },
    { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
      "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
    { "destination": "/sys", "type": "sysfs", "source": "sysfs",
      "options": ["nosuid", "noexec", "nodev", "ro"] }
  ],
  "linux": {
    "resources": { "pids": { "limit": 100 } },
    "namespaces": [
      { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
      { "type": "uts" }, { "type": "mount" }
    ],
    "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
    "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
  }
}
EOF

v() { "$vsrun" --root "$state" "$@"; }
errors=0
err() { echo "soak: $*" >&2; errors=$((errors + 1)); }

status_of() { v state "$1" 2>/dev/null | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p'; }
wait_stopped() {
    local i
    for i in $(seq 1 500); do
        [ "$(status_of "$1")" = stopped ] && return 0
        sleep 0.01
    done
    return 1
}

normal=0 normal_ok=0 crash=0 crash_done=0 crash_killed=0
ms() { echo $(($(date +%s%N) / 1000000)); }
start=$(ms)
for i in $(seq 1 "$n"); do
    id=$prefix-$i
    if [ $((i % 4)) -eq 0 ]; then
        # vsrun killed -9 at a random point of create, then delete --force.
        crash=$((crash + 1))
        # Not through v(): $! must be vsrun's own pid, not a subshell's.
        "$vsrun" --root "$state" create --bundle "$bundle" "$id" >/dev/null 2>"$work/create.err" &
        pid=$!
        sleep "0.$(printf '%06d' $(((RANDOM * 32768 + RANDOM) % 8000)))"
        if kill -9 "$pid" 2>/dev/null; then
            crash_killed=$((crash_killed + 1))
        else
            crash_done=$((crash_done + 1))
        fi
        wait "$pid" 2>/dev/null
        if ! v delete --force "$id" >/dev/null 2>"$work/delete.err"; then
            err "cycle $i: delete --force after a killed create: $(head -c 300 "$work/delete.err")"
        fi
        continue
    fi
    normal=$((normal + 1))
    if ! v create --bundle "$bundle" "$id" >/dev/null 2>"$work/create.err"; then
        err "cycle $i: create: $(head -c 300 "$work/create.err")"
        v delete --force "$id" >/dev/null 2>&1
        continue
    fi
    if ! v start "$id" 2>"$work/start.err"; then
        err "cycle $i: start: $(head -c 300 "$work/start.err")"
    fi
    v kill "$id" KILL 2>"$work/kill.err" || err "cycle $i: kill: $(head -c 300 "$work/kill.err")"
    wait_stopped "$id" || err "cycle $i: not stopped after kill -9 (status $(status_of "$id"))"
    if v delete "$id" 2>"$work/delete.err"; then
        normal_ok=$((normal_ok + 1))
    else
        err "cycle $i: delete: $(head -c 300 "$work/delete.err")"
        v delete --force "$id" >/dev/null 2>&1
    fi
done
cycles_ms=$(($(ms) - start))

# Twenty concurrent creates of one id.
dup=$prefix-dup
pids=()
for j in $(seq 1 20); do
    "$vsrun" --root "$state" create --bundle "$bundle" "$dup" >/dev/null 2>"$work/dup.$j.err" &
    pids+=($!)
done
won=0 lost_clean=0 lost_dirty=0
for j in $(seq 1 20); do
    wait "${pids[$((j - 1))]}"
    rc=$?
    lines=$(grep -c . "$work/dup.$j.err")
    if [ $rc -eq 0 ]; then
        won=$((won + 1))
    elif [ $rc -eq 1 ] && [ "$lines" -eq 1 ] && grep -q '^vsrun: ' "$work/dup.$j.err"; then
        lost_clean=$((lost_clean + 1))
    else
        lost_dirty=$((lost_dirty + 1))
        err "concurrent create $j: exit $rc, $lines stderr lines: $(head -c 300 "$work/dup.$j.err")"
    fi
done
[ $won -eq 1 ] || err "concurrent creates of one id: $won succeeded (want exactly 1)"
[ "$(status_of "$dup")" = created ] || err "concurrent creates: the winner is $(status_of "$dup"), not created"
v delete --force "$dup" >/dev/null 2>&1 || err "delete --force of the concurrent-create winner"
sample=$(sed -n 1p "$work"/dup.*.err 2>/dev/null | grep -m1 .)

# Leaks.
leaks=0
leak() { echo "soak: LEAK: $*" >&2; leaks=$((leaks + 1)); }
left_state=$(ls -A "$state")
[ -z "$left_state" ] || leak "state dirs: $left_state"
left_cg=$(ls -d /sys/fs/cgroup/*/vsrun/"$prefix"-* /sys/fs/cgroup/vsrun/"$prefix"-* 2>/dev/null)
[ -z "$left_cg" ] || leak "cgroups: $(echo "$left_cg" | tr '\n' ' ')"
left_mnt=$(grep -F "$work" /proc/self/mountinfo)
[ -z "$left_mnt" ] || leak "mounts: $left_mnt"
rootid=$(stat -c %d:%i "$bundle/rootfs")
left_procs=
for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [ "$pid" = $$ ] && continue
    r=$(stat -L -c %d:%i "$p/root/" 2>/dev/null) || continue
    # An init cloned from vsrun keeps vsrun's command line (with this run's --root).
    if [ "$r" = "$rootid" ] || readlink "$p/cwd" 2>/dev/null | grep -qF "$work" ||
        tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF "$state"; then
        left_procs="$left_procs $pid($(tr '\0' ' ' <"$p/cmdline" 2>/dev/null | head -c 60))"
    fi
done
[ -z "$left_procs" ] || leak "processes:$left_procs"
left_fds=$(find /proc/[0-9]*/fd -maxdepth 1 -lname "$work*" 2>/dev/null | grep -v "^/proc/$$/")
[ -z "$left_fds" ] || leak "fds into $work: $(echo "$left_fds" | head -5 | tr '\n' ' ')"

elapsed_ms=$(($(ms) - start))
printf 'soak: %d cycles in %d.%01d s (%d ms/cycle): %d create/start/kill/delete (%d clean), %d with vsrun killed -9 during create (%d killed mid-create, %d had finished)\n' \
    "$n" $((cycles_ms / 1000)) $((cycles_ms % 1000 / 100)) $((cycles_ms / n)) "$normal" "$normal_ok" \
    "$crash" "$crash_killed" "$crash_done"
printf 'soak: 20 concurrent creates of one id: %d succeeded, %d failed cleanly, %d not cleanly (e.g. %s)\n' \
    "$won" "$lost_clean" "$lost_dirty" "${sample:-none}"
printf 'soak: %d errors, %d leaks, %d.%01d s total\n' "$errors" "$leaks" $((elapsed_ms / 1000)) $((elapsed_ms % 1000 / 100))

# Remove what leaked (only what this run made: its own ids, processes rooted in its bundle).
if [ $leaks -gt 0 ]; then
    for id in $(ls -A "$state"); do v delete --force "$id" >/dev/null 2>&1; done
    for entry in $left_procs; do kill -9 "${entry%%(*}" 2>/dev/null; done
    sleep 0.2
    for d in $left_cg; do rmdir "$d" 2>/dev/null; done
fi
if [ "${SOAK_KEEP:-0}" = 1 ] || [ -n "$left_mnt" ]; then
    echo "soak: work dir kept: $work"
else
    rm -rf "$work"
fi
[ $errors -eq 0 ] && [ $leaks -eq 0 ]
