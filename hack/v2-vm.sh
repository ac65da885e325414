#!/bin/bash
# hack/v2-vm.sh [TEST-ARGS...]: run the spec-tests on a pure cgroup v2 host: Debian's kernel
# booted under qemu's software emulation (KVM is not usable here), with the host's /usr shared
# read-only and the workspace shared at its own path (the test binaries have the workspace path
# compiled in). Notes: ../shared/notes/cgroup-v2-vm.md.
#
# Which test files: V2VM_TESTS (space-separated names of spec-tests/tests/*.rs, or `all`).
# The default is the files where the cgroup version, the kernel (Debian's 6.1, older than this
# host's) or the process model matter. Container operations run about 15x slower under
# emulation than natively (bad_input: 181 s against 12 s), so the whole suite (`all`, about 40
# minutes) does not fit hack/test.sh's budget. TEST-ARGS go to every test binary (a name
# filter, --exact, ...).
#
# Installs qemu-system-x86 and qemu-system-data from bookworm-backports (the machine's
# qemu-utils comes from there, and bookworm's qemu-system-x86 conflicts with it; the
# backports source is added when missing), busybox-static, python3, and e2fsprogs and xfsprogs
# (disk_limit makes ext4 and XFS images with the host's /usr tools); downloads the kernel
# package linux-image-amd64 depends on once into <target>/v2-vm/ (unpacked there with dpkg -x,
# nothing goes to /boot). Builds vsrun, the static probe and the test binaries, boots with
# -smp 1, and exits with the tests' status (read back from a file in the shared workspace).
# V2VM_TIMEOUT (seconds, default 1500) bounds the VM; V2VM_SHELL="COMMAND" runs that command in
# the VM instead of the tests.
#
# V2VM_INIT=systemd boots Debian's systemd (installed on the host when missing, with dbus) as
# PID 1 from the shared /usr, with a minimal /etc: a machine id, the system bus, and the unit
# v2vm-tests.service (hack/v2-vm/systemd/) that runs the tests and powers off. Its default test
# file is systemd_cgroup (the systemd cgroup driver, which needs systemd as PID 1); then
# hack/v2-vm/podman.sh runs podman on vsrun with both cgroup managers and containerd.sh
# containerd's runc shim with --systemd-cgroup (podman, conmon and containerd are installed on
# the host when missing; V2VM_NO_PODMAN=1 leaves both out). Exit status 77: the lane cannot run
# here (packages not installable); hack/test.sh counts that as a failure.
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
case $init in
busybox) host_pkgs="busybox-static python3 e2fsprogs xfsprogs" ;;
systemd) host_pkgs="busybox-static python3 systemd dbus podman conmon containerd containernetworking-plugins gcc libc6-dev protobuf-compiler" ;;
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
default_tests="cgroups freezer_update lifecycle exec namespaces process process_attrs seccomp seccomp_order mounts bind_ip cli_compat features escapes_host escapes_fds escapes_mounts disk_limit"
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
if [ "$init" = systemd ] && [ -z "${V2VM_NO_PODMAN:-}" ]; then
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
out=$vm/out
rm -rf "$out"
mkdir -p "$out"
extra_target=
case $target/ in "$ws"/*) ;; *) extra_target=$target ;; esac
q() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
test_args="--test-threads=${V2VM_TEST_THREADS:-4} --color never"
for a in "$@"; do test_args+=" $(q "$a")"; done
# One binary after the other; the lane's status is the first failure's, with a summary line
# per file (the serial console shows the rest).
runner=$out/run-tests.sh
{
    echo 'status=0'
    echo "$testbins" | while read -r name bin; do
        echo "echo \"== v2-vm: $name\"; t=\$(date +%s); $(q "$bin") $test_args; r=\$?; echo \"== v2-vm: $name exit \$r, \$(( \$(date +%s) - t ))s\" >>$(q "$out/summary"); [ \$r = 0 ] || status=\$r"
    done
    # The systemd VM also runs podman on vsrun with both cgroup managers, containerd's runc
    # shim with the systemd driver and pods through the CRI plugin with SystemdCgroup = true
    # (hack/v2-vm/podman.sh, containerd.sh, cri.sh).
    if [ "$init" = systemd ] && [ -z "${V2VM_NO_PODMAN:-}" ]; then
        for e in podman containerd cri; do
            echo "echo '== v2-vm: $e'; t=\$(date +%s); bash $(q "$ws/hack/v2-vm/$e.sh"); r=\$?; echo \"== v2-vm: $e exit \$r, \$(( \$(date +%s) - t ))s\" >>$(q "$out/summary"); [ \$r = 0 ] || status=\$r"
        done
    fi
    echo 'exit $status'
} >"$runner"
# V2VM_SHELL="COMMAND": run that shell command in the VM instead of the tests (investigation).
[ -z "${V2VM_SHELL:-}" ] || printf '%s\n' "$V2VM_SHELL" >"$runner"
{
    echo "VM_WS=$(q "$ws")"
    echo "VM_INIT=$init"
    echo "VM_TARGET=$(q "$extra_target")"
    echo "VM_OUT=$(q "$out")"
    echo "VM_CMD=$(q "sh $(q "$runner")")"
    echo "export HOME=/root TMPDIR=/tmp RUST_BACKTRACE=1 VSRUN_TEST_TIMEOUT=300"
    # systemd_cgroup.rs fails, rather than checking the refusal, where systemd did not come up.
    [ "$init" = busybox ] || echo "export VSRUN_EXPECT_SYSTEMD=1"
    echo "export VSRUN_BIN=$(q "$target/debug/vsrun")"
    echo "export PROBE_BIN=$(q "$target/x86_64-unknown-linux-gnu/release/probe")"
    [ -z "${CARGO_TARGET_DIR:-}" ] || echo "export CARGO_TARGET_DIR=$(q "$target")"
} >"$root/vm.env"
(cd "$root" && find . | /bin/busybox cpio -o -H newc 2>/dev/null) >"$vm/initramfs.cpio"

echo "== v2-vm: boot ($kpkg, pure cgroup v2, init $init), $(( $(date +%s) - start ))s so far"
share=(-virtfs "local,path=/usr,mount_tag=usr,security_model=passthrough,readonly=on"
    -virtfs "local,path=$ws,mount_tag=ws,security_model=passthrough")
[ -z "$extra_target" ] ||
    share+=(-virtfs "local,path=$extra_target,mount_tag=target,security_model=passthrough")
set +e
timeout "${V2VM_TIMEOUT:-1500}" qemu-system-x86_64 \
    -kernel "$kdir/vmlinux" -initrd "$vm/initramfs.cpio" -bios /usr/share/qemu/qboot.rom \
    -accel tcg,thread=multi -cpu max -m 2048 -smp "${V2VM_SMP:-2}" -nographic -no-reboot \
    -append "console=ttyS0 quiet panic=-1 cryptomgr.notests" \
    "${share[@]}" </dev/null
qemu=$?
set -e
status=$(cat "$out/status" 2>/dev/null || echo "")
echo "== v2-vm: done in $(( $(date +%s) - start ))s"
cat "$out/summary" 2>/dev/null || true
if [ -z "$status" ]; then
    echo "hack/v2-vm.sh: the VM ended without a test status (qemu exit $qemu)" >&2
    exit 1
fi
exit "$status"
