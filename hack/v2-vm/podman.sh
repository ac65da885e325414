#!/bin/bash
# hack/v2-vm/podman.sh: podman on vsrun inside the systemd VM (V2VM_INIT=systemd hack/v2-vm.sh
# runs it after the tests), with cgroup_manager "systemd" and "cgroupfs": run, exec, update,
# pause/unpause, stop, rm, each checked from the host side of the VM (the container's cgroup,
# the scope's unit properties). Prints PASS/FAIL per check; exit 1 when one failed.
# Needs VSRUN_BIN (from the VM's /vm.env) and the spec-tests' base rootfs beside it.
set -u
target=$(dirname "$(dirname "$VSRUN_BIN")")
W=$(mktemp -d /tmp/podman.XXXXXX)
mkdir -p "$W"/{root,run,tmp} /etc/containers
# The VM's /etc is the initramfs: no policy.json; overlay is not loaded, vfs copies the small
# busybox image instead.
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >/etc/containers/policy.json
printf '[engine]\nevents_logger = "file"\nlock_type = "file"\ntmp_dir = "%s/tmp"\nruntime_supports_json = ["vsrun"]\n[engine.runtimes]\nvsrun = ["%s"]\n' \
    "$W" "$VSRUN_BIN" >"$W/containers.conf"
printf '[storage]\ndriver = "vfs"\ngraphroot = "%s/root"\nrunroot = "%s/run"\n' "$W" "$W" >"$W/storage.conf"
export CONTAINERS_CONF=$W/containers.conf CONTAINERS_STORAGE_CONF=$W/storage.conf
failed=0
check() { # NAME WANT GOT
    if [ "$2" = "$3" ]; then echo "PASS $1"; else echo "FAIL $1: want '$2', got '$3'"; failed=1; fi
}
tar -C "$target/spec-rootfs-base" -c . | podman import - localhost/bb:latest >/dev/null
check "podman import" 0 $?
cgroup_of() { cut -d: -f3 "/proc/$(podman inspect -f '{{.State.Pid}}' "$1")/cgroup"; }
for mgr in systemd cgroupfs; do
    P=(podman --cgroup-manager "$mgr" --runtime vsrun)
    check "$mgr: run" "hello" "$("${P[@]}" run --rm --network none localhost/bb /bin/echo hello 2>&1)"
    "${P[@]}" run -d --name web --network none --memory 64m localhost/bb /bin/sleep 300 >/dev/null
    check "$mgr: run -d" 0 $?
    cg=$(cgroup_of web)
    if [ "$mgr" = systemd ]; then
        unit=$(basename "$cg")
        check "systemd: libpod scope in machine.slice" "/machine.slice/$unit" "$cg"
        check "systemd: Delegate" "Delegate=yes" "$(systemctl show -p Delegate "$unit")"
        check "systemd: MemoryMax" "MemoryMax=67108864" "$(systemctl show -p MemoryMax "$unit")"
    fi
    check "$mgr: exec" "0::/" "$("${P[@]}" exec web /bin/cat /proc/self/cgroup 2>&1)"
    "${P[@]}" update --memory 32m web >/dev/null
    check "$mgr: update memory.max" 33554432 "$(cat "/sys/fs/cgroup$cg/memory.max")"
    [ "$mgr" = systemd ] &&
        check "systemd: update MemoryMax" "MemoryMax=33554432" "$(systemctl show -p MemoryMax "$unit")"
    "${P[@]}" pause web >/dev/null
    check "$mgr: paused" paused "$(podman inspect -f '{{.State.Status}}' web)"
    "${P[@]}" unpause web >/dev/null
    check "$mgr: unpaused" running "$(podman inspect -f '{{.State.Status}}' web)"
    "${P[@]}" stop -t 1 web >/dev/null 2>&1
    check "$mgr: stop" exited "$(podman inspect -f '{{.State.Status}}' web)"
    "${P[@]}" rm web >/dev/null
    check "$mgr: rm" 1 "$(podman container exists web; echo $?)"
    check "$mgr: cgroup gone" no "$([ -d "/sys/fs/cgroup$cg" ] && echo yes || echo no)"
    [ "$mgr" = systemd ] &&
        check "systemd: no unit left" "LoadState=not-found" "$(systemctl show -p LoadState "$unit")"
done
rm -rf "$W"
exit $failed
