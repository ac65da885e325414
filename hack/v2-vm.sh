#!/bin/bash
# hack/v2-vm.sh [TEST-ARGS...]: run the spec-tests on a pure cgroup v2 host: Debian's kernel
# booted under qemu's software emulation (KVM is not usable here), with the host's /usr shared
# read-only and the workspace shared at its own path (the test binaries have the workspace path
# compiled in). Notes: ../shared/notes/cgroup-v2-vm.md.
#
# Which test files: V2VM_TESTS (space-separated names of spec-tests/tests/*.rs, or `all`, the
# default). The files are shared among V2VM_VMS (default 2) VMs of one emulated CPU each,
# booted side by side and balanced by the seconds each file takes under emulation; the sweep
# runs one eighth of its generated configs (SWEEP_SHARD, a different eighth each day of the
# year; V2VM_SWEEP_SHARD=K/8 picks one). Containers run about 15x slower under emulation than
# natively. TEST-ARGS go to every test binary (a name filter, --exact, ...);
# V2VM_TEST_THREADS (default 2) is each binary's --test-threads.
#
# Installs qemu-system-x86 and qemu-system-data from bookworm-backports (the machine's
# qemu-utils comes from there, and bookworm's qemu-system-x86 conflicts with it; the
# backports source is added when missing), busybox-static, python3, e2fsprogs and xfsprogs
# (disk_limit makes ext4 and XFS images with the host's /usr tools), gcc and libc6-dev (the
# tests' static helpers) and runc (differential, sweep); downloads the kernel
# package linux-image-amd64 depends on once into <target>/v2-vm/ (unpacked there with dpkg -x,
# nothing goes to /boot). Builds vsrun, the static probe and the test binaries, boots, and exits
# with the first failing VM's status (read back from files in the shared workspace). Each VM's
# console lines carry its number ([vm0], [vm1]). V2VM_TIMEOUT (seconds, default 1500) bounds
# each VM; V2VM_SHELL="COMMAND" runs that command in one VM instead of the tests.
#
# V2VM_INIT=systemd boots Debian's systemd (installed on the host when missing, with dbus) as
# PID 1 from the shared /usr, with a minimal /etc: a machine id, the system bus, and the unit
# v2vm-tests.service (hack/v2-vm/systemd/) that runs the tests and powers off. Its default test
# file is systemd_cgroup (the systemd cgroup driver, which needs systemd as PID 1); then
# hack/v2-vm/podman.sh runs podman on vsrun with both cgroup managers and containerd.sh
# containerd's runc shim with --systemd-cgroup, and cri.sh pods through containerd's CRI plugin
# with SystemdCgroup = true (podman, conmon, containerd, containernetworking-plugins and, for
# building cri-lane and the pause, gcc, libc6-dev and protobuf-compiler are installed on the
# host when missing; VSRUN_SKIP_SYSTEMD_ENGINES=1 leaves the three out on purpose, and
# their packages; V2VM_NO_PODMAN, its old name, still works with a notice). One VM. Exit status 77: the lane
# cannot run here (packages not installable); hack/test.sh counts that as a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
ws=$PWD
if [ "$(id -u)" != 0 ]; then
    echo "hack/v2-vm.sh: needs root (9p passthrough, and the spec-tests run as root)" >&2
    exit 1
fi
start=$(date +%s)

export DEBIAN_FRONTEND=noninteractive
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
backports=/etc/apt/sources.list.d/bookworm-backports.sources
missing=()
init=${V2VM_INIT:-busybox}
if [ -n "${V2VM_NO_PODMAN:-}" ]; then
    echo "hack/v2-vm.sh: V2VM_NO_PODMAN is deprecated: use VSRUN_SKIP_SYSTEMD_ENGINES=1" >&2
    VSRUN_SKIP_SYSTEMD_ENGINES=1
fi
# The systemd VM's engine and CRI scripts run unless left out on purpose.
vm_engines=0
[ "$init" = systemd ] && [ "${VSRUN_SKIP_SYSTEMD_ENGINES:-0}" != 1 ] && vm_engines=1
if [ "$init" = systemd ] && [ $vm_engines = 0 ]; then
    echo "!!! v2-vm: the systemd VM's podman, containerd and CRI lanes are LEFT OUT (VSRUN_SKIP_SYSTEMD_ENGINES=1)" >&2
fi
case $init in
busybox) host_pkgs="busybox-static python3 e2fsprogs xfsprogs gcc libc6-dev runc" ;;
systemd) host_pkgs="busybox-static python3 systemd dbus gcc libc6-dev"
    [ $vm_engines = 1 ] && host_pkgs+=" podman conmon containerd containernetworking-plugins protobuf-compiler" ;;
*) echo "hack/v2-vm.sh: V2VM_INIT is busybox or systemd, not $init" >&2; exit 1 ;;
esac
for pkg in $host_pkgs; do installed "$pkg" || missing+=("$pkg"); done
qemu=()
for pkg in qemu-system-x86 qemu-system-data; do installed "$pkg" || qemu+=("$pkg"); done
if [ ${#missing[@]} -gt 0 ] || [ ${#qemu[@]} -gt 0 ]; then
    echo "hack/v2-vm.sh: installing ${missing[*]} ${qemu[*]}"
    if [ ${#qemu[@]} -gt 0 ] && ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
        printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' >"$backports"
    fi
    apt-get update -qq >/dev/null || true
    if [ ${#missing[@]} -gt 0 ] && ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
        echo "hack/v2-vm.sh: cannot install ${missing[*]}" >&2
        exit 77
    fi
    if [ ${#qemu[@]} -gt 0 ] &&
        ! apt-get install -y -qq --no-install-recommends -t bookworm-backports "${qemu[@]}" >/dev/null; then
        echo "hack/v2-vm.sh: cannot install ${qemu[*]} from bookworm-backports" >&2
        exit 77
    fi
fi

target=${CARGO_TARGET_DIR:-$ws/target}
case $target in /*) ;; *) target=$ws/$target ;; esac
vm=$target/v2-vm
mkdir -p "$vm"

# The kernel: the versioned package behind linux-image-amd64 (it changes with security
# updates), unpacked once; vmlinux is the uncompressed ELF qemu boots through its PVH entry.
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
if [ -z "$kpkg" ]; then
    apt-get update -qq >/dev/null
    kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
fi
kdir=$vm/$kpkg
if [ ! -f "$kdir/vmlinux" ]; then
    echo "== v2-vm: fetching $kpkg"
    tmp=$(mktemp -d "$vm/kernel.XXXXXX")
    (cd "$tmp" && apt-get download -qq "$kpkg" 2>/dev/null)
    dpkg -x "$tmp"/*.deb "$tmp/x"
    python3 hack/v2-vm/kernel.py vmlinux "$tmp"/x/boot/vmlinuz-* "$tmp/vmlinux"
    mv "$tmp"/x/lib/modules/* "$tmp/modules"
    rm -rf "$tmp/x" "$tmp"/*.deb
    rm -rf "$kdir"
    mv "$tmp" "$kdir"
fi

echo "== v2-vm: build"
cargo build -q -p vsrun
RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build -q -p probe --release --target x86_64-unknown-linux-gnu
default_tests=all
[ "$init" = busybox ] || default_tests=systemd_cgroup
wanted=${V2VM_TESTS:-$default_tests}
[ "$wanted" = all ] && wanted=$(cd spec-tests/tests && ls *.rs | sed 's/\.rs$//' | tr '\n' ' ')
testbins=$(cargo test -q -p spec-tests --tests --no-run --message-format=json |
    WANTED="$wanted" python3 -c 'import json, os, sys
want = os.environ["WANTED"].split()
found = {}
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        found[m["target"]["name"]] = m["executable"]
for w in want:
    print(w, found.get(w, "-"))')
if echo "$testbins" | grep -q ' -$'; then
    echo "hack/v2-vm.sh: no test binary for: $(echo "$testbins" | awk '$2 == "-" {print $1}')" >&2
    exit 1
fi
# The harness makes the shared base rootfs (target/spec-rootfs-base) on first use: let one
# quick test do that here, at native speed, rather than in the VM.
# (systemd_cgroup's first test checks, on this host, the refusal without systemd.)
bin_of() { echo "$testbins" | awk -v n="$1" '$1 == n {print $2}'; }
if [ -n "$(bin_of cgroups)" ]; then
    "$(bin_of cgroups)" -q --exact the_root_cgroup_is_refused >/dev/null
elif [ -n "$(bin_of systemd_cgroup)" ]; then
    "$(bin_of systemd_cgroup)" -q --exact without_systemd_the_flag_is_refused_and_a_bad_path_names_the_field >/dev/null
fi
# hack/v2-vm/cri.sh's parts that need a compiler, made here at native speed: the CRI client
# (tonic, prost: protoc from protobuf-compiler), the static pause and the busybox rootfs.
if [ $vm_engines = 1 ]; then
    cargo build -q -p cri-lane
    rm -rf "$vm/cri"
    mkdir -p "$vm/cri/pause"
    gcc -static -Os -s -o "$vm/cri/pause/pause" hack/cri-lane/pause.c
    hack/mkrootfs "$vm/cri/busybox" >/dev/null
fi

# The initramfs: busybox, /init, the modules in load order, mount points, and symlinks into
# the /usr that 9p brings (Debian's merged /usr).
root=$vm/initramfs
rm -rf "$root"
mkdir -p "$root"/{proc,sys,dev,tmp,run,usr,etc,root,home,modules,newroot}
cp /bin/busybox "$root/busybox"
cp hack/v2-vm/init hack/v2-vm/vm-cmd "$root/"
chmod 755 "$root/init" "$root/vm-cmd"
for l in bin sbin lib lib64; do ln -s "usr/$l" "$root/$l"; done
# /usr/bin/cc, awk, ... are links through /etc/alternatives, which the initramfs's /etc lacks.
cp -a /etc/alternatives "$root/etc/"
# What a node has and the CRI plugin copies into every pod (hack/v2-vm/cri.sh).
printf '127.0.0.1 localhost\n::1 localhost\n' >"$root/etc/hosts"
: >"$root/etc/resolv.conf"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
if [ "$init" = systemd ]; then
    # dbus-daemon drops to messagebus; default.target is the tests' own target.
    echo 'messagebus:x:100:101::/nonexistent:/bin/false' >>"$root/etc/passwd"
    echo 'messagebus:x:101:' >>"$root/etc/group"
    echo v2-vm >"$root/etc/hostname"
    mkdir -p "$root/etc/systemd/system" "$root/var/lib" "$root/var/tmp"
    # Clients find the system bus at /var/run/dbus/system_bus_socket (libcgroups, runc).
    ln -s ../run "$root/var/run"
    cp -r hack/v2-vm/systemd/. "$root/etc/systemd/system/"
    ln -s v2vm.target "$root/etc/systemd/system/default.target"
fi
python3 hack/v2-vm/kernel.py modules "$kdir/modules" virtio_pci 9pnet_virtio 9p loop bfq veth bridge \
    overlay crc32c_generic ext4 xfs quota_tree quota_v2 |
    while read -r ko; do
        cp "$ko" "$root/modules/"
        basename "$ko"
    done >"$root/modules.order"
extra_target=
case $target/ in "$ws"/*) ;; *) extra_target=$target ;; esac
q() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
test_args="--test-threads=${V2VM_TEST_THREADS:-2} --color never"
for a in "$@"; do test_args+=" $(q "$a")"; done
# Tests the VM found failing on this host shape (Debian 12's 6.1 kernel, pure v2), skipped
# until fixed so that the rest of the lane guards what passes; V2VM_NO_SKIP=1 runs them:
# none now (the three it found, a configured device in a user namespace, the shared-pid-
# namespace CAP_SYS_PTRACE race and the sweep's differences, are fixed); add names here.
skips=()
if [ -z "${V2VM_NO_SKIP:-}" ]; then
    for t in "${skips[@]}"; do
        test_args+=" --skip $t"
        echo "!!! v2-vm: SKIPPED (fails on this host shape until fixed, V2VM_NO_SKIP=1 runs it): $t" >&2
    done
fi

# V2VM_VMS VMs of one emulated CPU each, booted side by side, each running its share of the
# files: TCG runs one vCPU per host thread, and two single-CPU guests use a 2-core machine
# better than one with -smp 2 (measured: bad_input 77 s at -smp 1, 89 s at -smp 2 with MTTCG,
# which pays for cross-CPU TLB flushes on every fork). The shares are balanced by the
# per-file seconds measured under emulation (the weights below; a file not listed counts 10).
vms=${V2VM_VMS:-2}
{ [ "$init" = systemd ] || [ -n "${V2VM_SHELL:-}" ]; } && vms=1
weights="bad_input 97 bad_input_engines 103 bad_input_more 147 bind_ip 35 cgroups 81 cli_compat 16
differential 87 disk_limit 31 escapes 195 escapes_mounts 21 exec 50 freezer_update 37 hooks 15
lifecycle 43 mounts 51 process 33 rootless 61 seccomp 23 seccomp_order 23 sweep 236 tty 23
features 11 process_attrs 10 systemd_cgroup 11"
shares=$(echo "$testbins" | VMS=$vms WEIGHTS="$weights" python3 -c 'import os, sys
w = os.environ["WEIGHTS"].split(); w = dict(zip(w[::2], map(int, w[1::2])))
n = int(os.environ["VMS"]); load = [0] * n; out = []
files = [l.split() for l in sys.stdin if l.strip()]
for name, b in sorted(files, key=lambda f: -w.get(f[0], 10)):
    k = load.index(min(load)); load[k] += w.get(name, 10); out.append((k, name, b))
for k, name, b in out: print(k, name, b)')

# One binary after the other in each VM; a VM's status is its first failure's, with a summary
# line per file (the serial console shows the rest).
write_runner() { # k out
    local k=$1 out=$2
    echo 'status=0'
    echo "$shares" | while read -r vk name bin; do
        [ "$vk" = "$k" ] || continue
        echo "echo \"== v2-vm: $name\"; t=\$(date +%s); $(q "$bin") $test_args; r=\$?; echo \"== v2-vm: $name exit \$r, \$(( \$(date +%s) - t ))s\" >>$(q "$out/summary"); [ \$r = 0 ] || status=\$r"
    done
    # The systemd VM also runs podman on vsrun with both cgroup managers, containerd's runc
    # shim with the systemd driver and pods through the CRI plugin with SystemdCgroup = true
    # (hack/v2-vm/podman.sh, containerd.sh, cri.sh).
    if [ $vm_engines = 1 ]; then
        for e in podman containerd cri; do
            echo "echo '== v2-vm: $e'; t=\$(date +%s); bash $(q "$ws/hack/v2-vm/$e.sh"); r=\$?; echo \"== v2-vm: $e exit \$r, \$(( \$(date +%s) - t ))s\" >>$(q "$out/summary"); [ \$r = 0 ] || status=\$r"
        done
    fi
    echo 'exit $status'
}

# The sweep (runc against vsrun on 300+ generated configs, 600+ container runs) takes most
# of an hour under emulation: each run of the VM lane takes one eighth of it, a different one
# each day (SWEEP_SHARD, spec-tests/tests/sweep.rs); the host lane runs it whole.
sweep_shard=${V2VM_SWEEP_SHARD:-$((10#$(date +%j) % 8))/8}
write_env() { # out runner
    echo "VM_WS=$(q "$ws")"
    echo "VM_INIT=$init"
    echo "VM_TARGET=$(q "$extra_target")"
    echo "VM_OUT=$(q "$1")"
    echo "VM_CMD=$(q "sh $(q "$2")")"
    echo "export HOME=/root TMPDIR=/tmp RUST_BACKTRACE=1 VSRUN_TEST_TIMEOUT=300"
    echo "export SWEEP_SHARD=$sweep_shard SWEEP_THREADS=2"
    # systemd_cgroup.rs fails, rather than checking the refusal, where systemd did not come up.
    [ "$init" = busybox ] || echo "export VSRUN_EXPECT_SYSTEMD=1"
    # disk_limit.rs fails, rather than checking the refusal, where the quota image won't mount.
    echo "export VSRUN_EXPECT_QUOTA=1"
    echo "export VSRUN_BIN=$(q "$target/debug/vsrun")"
    echo "export PROBE_BIN=$(q "$target/x86_64-unknown-linux-gnu/release/probe")"
    [ -z "${CARGO_TARGET_DIR:-}" ] || echo "export CARGO_TARGET_DIR=$(q "$target")"
}

share=(-virtfs "local,path=/usr,mount_tag=usr,security_model=passthrough,readonly=on"
    -virtfs "local,path=$ws,mount_tag=ws,security_model=passthrough")
[ -z "$extra_target" ] ||
    share+=(-virtfs "local,path=$extra_target,mount_tag=target,security_model=passthrough")
boot() { # k
    timeout "${V2VM_TIMEOUT:-1500}" qemu-system-x86_64 \
        -kernel "$kdir/vmlinux" -initrd "$vm/initramfs.$1.cpio" -bios /usr/share/qemu/qboot.rom \
        -accel tcg -cpu max -m 1024 -smp 1 -nographic -no-reboot \
        -append "console=ttyS0 quiet panic=-1 cryptomgr.notests" \
        "${share[@]}" </dev/null
}
rm -rf "$vm"/out "$vm"/out.* "$vm"/initramfs.*.cpio
for k in $(seq 0 $((vms - 1))); do
    out=$vm/out.$k
    mkdir -p "$out"
    write_runner "$k" "$out" >"$out/run-tests.sh"
    # V2VM_SHELL="COMMAND": run that shell command in the VM instead of the tests.
    [ -z "${V2VM_SHELL:-}" ] || printf '%s\n' "$V2VM_SHELL" >"$out/run-tests.sh"
    write_env "$out" "$out/run-tests.sh" >"$root/vm.env"
    (cd "$root" && find . | /bin/busybox cpio -o -H newc 2>/dev/null) >"$vm/initramfs.$k.cpio"
done

echo "== v2-vm: boot $vms VM(s) ($kpkg, pure cgroup v2, init $init, sweep shard $sweep_shard), $(( $(date +%s) - start ))s so far"
pids=()
for k in $(seq 0 $((vms - 1))); do
    if [ "$vms" = 1 ]; then
        boot "$k" &
    else
        # Each console line carries its VM's number.
        boot "$k" 2>&1 | sed -u "s/^/[vm$k] /" &
    fi
    pids+=($!)
done
set +e
for p in "${pids[@]}"; do wait "$p"; done
set -e
echo "== v2-vm: done in $(( $(date +%s) - start ))s"
status=0
for k in $(seq 0 $((vms - 1))); do
    cat "$vm/out.$k/summary" 2>/dev/null || true
    s=$(cat "$vm/out.$k/status" 2>/dev/null || echo "")
    if [ -z "$s" ]; then
        echo "hack/v2-vm.sh: VM $k ended without a test status" >&2
        s=1
    fi
    [ "$s" = 0 ] || [ "$status" != 0 ] || status=$s
done
exit "$status"
