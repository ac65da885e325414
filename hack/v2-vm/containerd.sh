#!/bin/bash
# hack/v2-vm/containerd.sh: containerd's runc shim on vsrun with the systemd cgroup driver
# (what SystemdCgroup = true makes the shim pass: --systemd-cgroup and a slice:prefix:name
# path) inside the systemd VM: run, exec, update, pause/resume, kill, delete, each checked
# from the host side of the VM. Prints PASS/FAIL per check; exit 1 when one failed.
# Needs VSRUN_BIN (from the VM's /vm.env) and the spec-tests' base rootfs beside it.
set -u
target=$(dirname "$(dirname "$VSRUN_BIN")")
W=$(mktemp -d /tmp/ctrd.XXXXXX)
mkdir -p "$W"/{root,state,opt,pm/root,pm/run,pm/tmp} /etc/containers
failed=0
check() { # NAME WANT GOT
    if [ "$2" = "$3" ]; then echo "PASS $1"; else echo "FAIL $1: want '$2', got '$3'"; failed=1; fi
}
# The image: the base rootfs through podman (vfs storage) as a docker-archive.
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >/etc/containers/policy.json
printf '[storage]\ndriver = "vfs"\ngraphroot = "%s/pm/root"\nrunroot = "%s/pm/run"\n' "$W" "$W" >"$W/storage.conf"
export CONTAINERS_STORAGE_CONF=$W/storage.conf
tar -C "$target/spec-rootfs-base" -c . | podman import -q - localhost/bb:latest >/dev/null &&
    podman save -q --format docker-archive -o "$W/bb.tar" localhost/bb:latest >/dev/null
check "image" 0 $?
printf 'version = 2\nroot = "%s/root"\nstate = "%s/state"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "%s/sock"\n[plugins."io.containerd.internal.v1.opt"]\n  path = "%s/opt"\n' \
    "$W" "$W" "$W" "$W" >"$W/config.toml"
containerd --config "$W/config.toml" >"$W/containerd.log" 2>&1 &
cpid=$!
for _ in $(seq 100); do ctr --address "$W/sock" version >/dev/null 2>&1 && break; sleep 0.3; done
# The VM loads no overlay module: the native snapshotter copies the small image instead.
C=(ctr --address "$W/sock" -n vm)
R=(--snapshotter native --runc-binary "$VSRUN_BIN" --runc-systemd-cgroup)
"${C[@]}" images import --snapshotter native "$W/bb.tar" >/dev/null
check "images import" 0 $?
img=localhost/bb:latest
check "run --rm" hello "$("${C[@]}" run --rm "${R[@]}" --cgroup system.slice:ctrd:c1 $img c1 /bin/echo hello 2>&1)"
"${C[@]}" run -d "${R[@]}" --cgroup system.slice:ctrd:c2 $img c2 /bin/sleep 300 >/dev/null
check "run -d" 0 $?
for _ in $(seq 50); do "${C[@]}" task ls 2>/dev/null | grep -q 'c2 .*RUNNING' && break; sleep 0.2; done
# (no awk in the VM: /usr/bin/awk is an alternatives link into the host's /etc)
field() { "${C[@]}" task ls | grep '^c2 ' | tr -s ' ' | cut -d' ' -f"$1"; }
pid=$(field 2)
check "scope" "0::/system.slice/ctrd-c2.scope" "$(cat "/proc/$pid/cgroup")"
check "Delegate" "Delegate=yes" "$(systemctl show -p Delegate ctrd-c2.scope)"
check "task exec" in-exec "$("${C[@]}" task exec --exec-id e1 c2 /bin/echo in-exec 2>&1)"
# ctr 1.6 has no `task update`: the shim's Update runs this very command.
"$VSRUN_BIN" --root /run/containerd/runc/vm --systemd-cgroup update --memory 33554432 c2
check "task update: MemoryMax" "MemoryMax=33554432" "$(systemctl show -p MemoryMax ctrd-c2.scope)"
"${C[@]}" task pause c2
check "pause" PAUSED "$(field 3)"
"${C[@]}" task resume c2
check "resume" RUNNING "$(field 3)"
"${C[@]}" task kill -a -s KILL c2
for _ in $(seq 50); do "${C[@]}" task ls | grep -q 'c2 .*STOPPED' && break; sleep 0.2; done
"${C[@]}" task delete c2 >/dev/null
check "task delete" 0 $?
"${C[@]}" container delete c2
check "no unit left" "LoadState=not-found" "$(systemctl show -p LoadState ctrd-c2.scope)"
kill "$cpid"
wait "$cpid" 2>/dev/null
[ $failed = 0 ] || tail -20 "$W/containerd.log"
rm -rf "$W" 2>/dev/null
exit $failed
