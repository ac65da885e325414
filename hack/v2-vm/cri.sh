#!/bin/bash
# hack/v2-vm/cri.sh: Kubernetes through CRI on a pure cgroup v2 host with systemd as PID 1 and
# kubelet's systemd cgroup driver: containerd's CRI plugin with a runtime handler `vsrun` whose
# runc options say SystemdCgroup = true, driven by hack/cri-lane --cgroup-driver systemd, once
# for a pod with its own network (CNI bridge) and once for a hostNetwork pod.
# V2VM_INIT=systemd hack/v2-vm.sh runs it after containerd.sh, having built on the host what
# needs a compiler: cri-lane (<target>/debug), the static pause and the busybox rootfs
# (<target>/v2-vm/cri/). Prints the client's `CRI <Call> -> ok|error` and PASS/FAIL lines (a
# failed call names itself), containerd's log tail on failure; exit 1 when a check failed.
set -u
ws=$(cd "$(dirname "$0")/../.." && pwd)
target=$(dirname "$(dirname "$VSRUN_BIN")")
in=$target/v2-vm/cri
W=$(mktemp -d /tmp/cri.XXXXXX)
mkdir -p "$W"/{root,state,opt,pm/root,pm/run,cni/net.d,cni/ipam,pod-logs,vsrun-root} /etc/containers
failed=0
check() { # NAME WANT GOT
    if [ "$2" = "$3" ]; then echo "PASS $1"; else echo "FAIL $1: want '$2', got '$3'"; failed=1; fi
}
IMAGE=docker.io/library/busybox:latest
PAUSE=localhost/vsrun-pause:lane

# The images, no registry: the busybox rootfs and the pause (hack/cri-lane/pause.c) as docker
# archives, made with podman (vfs storage: nothing else is needed in the VM).
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >/etc/containers/policy.json
printf '[storage]\ndriver = "vfs"\ngraphroot = "%s/pm/root"\nrunroot = "%s/pm/run"\n' "$W" "$W" >"$W/storage.conf"
export CONTAINERS_STORAGE_CONF=$W/storage.conf
archive() { # rootfs ref tar [--change ...]
    local dir=$1 ref=$2 tar=$3
    shift 3
    tar -C "$dir" -c . | podman import -q "$@" - "$ref" >/dev/null &&
        podman save -q --format docker-archive -o "$tar" "$ref" >/dev/null
}
archive "$in/busybox" "$IMAGE" "$W/busybox.tar"
check "busybox image (podman import, save)" 0 $?
archive "$in/pause" "$PAUSE" "$W/pause.tar" --change 'ENTRYPOINT ["/pause"]'
check "pause image (podman import, save)" 0 $?

# The tested config (hack/engines/containerd-cri.toml) with SystemdCgroup = true, as on a node
# whose kubelet has cgroupDriver: systemd, plus the local pause and CNI in the work dir.
sed -e "s#@ROOT@#$W/root#; s#@STATE@#$W/state#; s#@SOCK@#$W/containerd.sock#; s#@OPT@#$W/opt#" \
    -e "s#/usr/local/bin/vsrun#$VSRUN_BIN#; s#SystemdCgroup = false#SystemdCgroup = true#" \
    -e "s#^\( *\)BinaryName = .*#&\n\1Root = \"$W/vsrun-root\"#" \
    "$ws/hack/engines/containerd-cri.toml" >"$W/config.toml"
cat >>"$W/config.toml" <<EOF

[ttrpc]
  address = "$W/containerd.sock.ttrpc"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE"
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$W/cni/net.d"
EOF
# A bridge with documentation addresses, no masquerade (the VM has no other network anyway).
cat >"$W/cni/net.d/10-vsrun-lane.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "vsrun-lane", "plugins": [{"type": "bridge", "bridge": "cni-lane0",
 "isGateway": false, "ipMasq": false, "ipam": {"type": "host-local",
 "ranges": [[{"subnet": "192.0.2.0/24"}]], "dataDir": "$W/cni/ipam"}}]}
EOF
check "config: the vsrun handler with SystemdCgroup = true" 1 \
    "$(containerd --config "$W/config.toml" config dump | grep -c "SystemdCgroup = true")"
containerd --config "$W/config.toml" >"$W/containerd.log" 2>&1 &
cpid=$!
C=(ctr --address "$W/containerd.sock" -n k8s.io)
for _ in $(seq 200); do "${C[@]}" version >/dev/null 2>&1 && break; sleep 0.3; done
check "containerd with the CRI plugin starts" 0 "$("${C[@]}" version >/dev/null 2>&1; echo $?)"
for t in busybox pause; do
    "${C[@]}" images import "$W/$t.tar" >/dev/null
    check "ctr -n k8s.io images import ($t)" 0 $?
done

for net in pod node; do
    t0=$(date +%s)
    echo "-- a pod with the ${net}'s network, systemd cgroup driver"
    "$target/debug/cri-lane" --socket "$W/containerd.sock" --handler vsrun --cgroup-driver systemd \
        --pod-network "$net" --image "$IMAGE" --pause-image "$PAUSE" \
        --vsrun "$VSRUN_BIN" --vsrun-root "$W/vsrun-root/k8s.io" --log-dir "$W/pod-logs" \
        --watch-dir "$W/root" --watch-dir "$W/state"
    check "cri-lane ($net network) exits 0" 0 $?
    echo "-- pod lifecycle ($net network) took $(($(date +%s) - t0)) s"
done

# Whatever a failed run left: containers (their scopes go with them), then containerd.
for id in $("$VSRUN_BIN" --root "$W/vsrun-root/k8s.io" list -q 2>/dev/null); do
    "$VSRUN_BIN" --root "$W/vsrun-root/k8s.io" delete --force "$id"
done
kill "$cpid"
wait "$cpid" 2>/dev/null
[ $failed = 0 ] || tail -30 "$W/containerd.log"
rm -rf "$W" 2>/dev/null
exit $failed
