#!/bin/bash
# hack/engines.sh [podman|rootless|containerd|docker|cri|all] ...
#
# Engine lanes: podman, containerd (ctr) and docker drive vsrun the way operators use them, and
# hack/cri-lane drives pods through containerd's CRI plugin as kubelet does, with the
# Kubernetes runtime entry of docs/kubernetes.md. The rootless lane runs podman as the plain
# user vsrun-rootless (made, with subordinate id ranges, when missing) with its own
# XDG_RUNTIME_DIR, storage and containers.conf.
# Installs the engines from Debian when missing, builds a busybox image without a registry,
# starts containerd and dockerd with private roots, sockets and pid files, and stops them by
# PID at the end. Every check prints PASS or FAIL; a lane whose engine cannot start is skipped
# with a loud SKIP banner and fails the run. VSRUN_SKIP_ENGINE_<LANE>=1 (PODMAN, ROOTLESS,
# CONTAINERD, DOCKER, CRI) leaves a lane out on purpose; ENGINES_ALLOW_SKIP=1 still accepts every
# lane that could not run, with a deprecation notice. Exit status: 0 when no check failed and no
# lane was skipped, 1 otherwise.
#
# Environment: VSRUN_BIN (default target/debug/vsrun, built when missing), ENGINES_KEEP=1 keeps
# the work dir, ENGINES_TIMEOUT per-command timeout in seconds (default 60).
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

if [ "$(id -u)" != 0 ]; then
    echo "hack/engines.sh: engines run as root" >&2
    exit 1
fi

LANES=("$@")
[ ${#LANES[@]} -eq 0 ] && LANES=(all)
for l in "${LANES[@]}"; do
    case $l in
        all) LANES=(podman rootless containerd docker cri) ;;
        podman | rootless | containerd | docker | cri) ;;
        *)
            echo "usage: $0 [podman|rootless|containerd|docker|cri|all] ..." >&2
            exit 2
            ;;
    esac
done
want() {
    local x
    for x in "${LANES[@]}"; do [ "$x" = "$1" ] && return 0; done
    return 1
}

T=${ENGINES_TIMEOUT:-60}
START=$(date +%s)

# ---------------------------------------------------------------------------------------------
# Packages

export DEBIAN_FRONTEND=noninteractive
pkgs=(busybox-static curl bsdutils util-linux iproute2 procps)
{ want podman || want rootless; } && pkgs+=(podman conmon netavark aardvark-dns slirp4netns uidmap iptables)
{ want containerd || want docker || want cri; } && pkgs+=(containerd)
want cri && pkgs+=(protobuf-compiler gcc libc6-dev podman containernetworking-plugins)
want docker && pkgs+=(docker.io iptables)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing ${missing[*]}"
    # The lanes never use a daemon the packages may start (on a systemd host, or where
    # policy-rc.d allows it): they start their own with private roots and sockets.
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
        echo "hack/engines.sh: apt-get install ${missing[*]} failed; lanes without their engine are skipped" >&2
fi

# ---------------------------------------------------------------------------------------------
# vsrun, work dir, cleanup

if [ -n "${VSRUN_BIN:-}" ]; then
    SRC_BIN=$VSRUN_BIN
else
    SRC_BIN=$REPO/target/debug/vsrun
    if [ ! -x "$SRC_BIN" ]; then
        echo "== cargo build -p vsrun"
        cargo build -q -p vsrun || exit 1
    fi
fi
[ -x "$SRC_BIN" ] || {
    echo "hack/engines.sh: no vsrun binary at $SRC_BIN" >&2
    exit 1
}

WORK=$(mktemp -d /tmp/vsrun-engines.XXXXXX)
chmod 755 "$WORK"
mkdir -p "$WORK/bin"
# A private copy: a rebuild during the run must not swap the binary under the engines.
cp "$SRC_BIN" "$WORK/bin/vsrun"
VSRUN=$WORK/bin/vsrun
echo "== vsrun: $("$VSRUN" --version | head -1) (copied from $SRC_BIN), work dir $WORK"

PIDS_TO_STOP=()   # daemons we started, stopped in reverse order
CLEANUPS=()       # commands run before the daemons stop

stop_pid() { # pid name
    local pid=$1 name=$2 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    echo "   $name (pid $pid) ignored SIGTERM for 10 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null
}

cleanup() {
    local c i
    trap - EXIT INT TERM
    for c in "${CLEANUPS[@]}"; do eval "$c" >/dev/null 2>&1; done
    for ((i = ${#PIDS_TO_STOP[@]} - 1; i >= 0; i--)); do
        stop_pid ${PIDS_TO_STOP[$i]}
    done
    # Mounts our daemons left under the work dir (never anything outside it), deepest first.
    local m
    for m in $(awk -v w="$WORK/" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
    done
    if [ "${ENGINES_KEEP:-0}" = 1 ]; then
        echo "== kept $WORK"
    elif awk -v w="$WORK/" 'index($5, w) == 1 { f = 1 } END { exit !f }' /proc/self/mountinfo; then
        echo "== $WORK kept: still mounted under it"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
# Reporting

PASSED=0
FAILED=0
SKIPPED=()
FAILURES=()
LANE=
pass() {
    PASSED=$((PASSED + 1))
    printf '  PASS  %-11s %s\n' "$LANE" "$1"
}
fail() { # name detail
    FAILED=$((FAILED + 1))
    FAILURES+=("$LANE: $1")
    printf '  FAIL  %-11s %s\n' "$LANE" "$1"
    [ -n "${2:-}" ] && printf '%s\n' "$2" | head -n 15 | sed 's/^/          | /'
    return 0
}
skip_lane() { # lane reason
    SKIPPED+=("$1")
    echo
    echo "################################################################################"
    echo "### SKIPPED LANE: $1"
    echo "### $2"
    echo "################################################################################"
    echo
}

# run_check NAME REGEX CMD...: CMD exits 0 and its output (stdout+stderr) matches REGEX
# ("" = anything). The output is kept in $OUT.
OUT=
run_check() {
    local name=$1 re=$2 rc
    shift 2
    OUT=$(timeout "$T" "$@" 2>&1)
    rc=$?
    if [ $rc -ne 0 ]; then
        fail "$name" "exit $rc: $*
$OUT"
    elif [ -n "$re" ] && ! grep -Eq -- "$re" <<<"$OUT"; then
        fail "$name" "output does not match /$re/: $*
$OUT"
    else
        pass "$name"
        return 0
    fi
    return 1
}

# code_check NAME WANT CMD...: CMD exits with status WANT.
code_check() {
    local name=$1 want=$2 rc
    shift 2
    OUT=$(timeout "$T" "$@" 2>&1)
    rc=$?
    if [ "$rc" = "$want" ]; then
        pass "$name"
    else
        fail "$name" "exit $rc, wanted $want: $*
$OUT"
    fi
}

# The interactive commands wait a moment before they print: podman (conmon) attaches to the
# terminal of `run -it` while the container already runs, and an instant exit can lose the output
# (seen with runc as well: 1 run in 15).
# tty_check NAME WANT_CODE REGEX CMD...: CMD under `script` (a real terminal of its own, 40x100);
# its exit status is WANT_CODE and its output matches REGEX.
tty_check() {
    local name=$1 want=$2 re=$3 rc cmd
    shift 3
    cmd="stty rows 40 cols 100; exec $(printf '%q ' "$@")"
    OUT=$(timeout "$T" script -qefc "$cmd" /dev/null </dev/null 2>&1 | tr -d '\r' | sed 's/\^@//g')
    rc=${PIPESTATUS[0]}
    if [ "$rc" != "$want" ]; then
        fail "$name" "exit $rc under script, wanted $want: $*
$OUT"
    elif ! grep -Eq -- "$re" <<<"$OUT"; then
        fail "$name" "output does not match /$re/: $*
$OUT"
    else
        pass "$name"
    fi
}

# retry N CMD...: CMD until it succeeds, N times 0.25 s apart.
retry() {
    local n=$1 i
    shift
    for i in $(seq 1 "$n"); do
        "$@" && return 0
        sleep 0.25
    done
    return 1
}

podman_logs_grep() { podman logs "$1" 2>&1 | grep -q -- "$2"; }
curl_grep() { curl -fsS --max-time 2 "http://127.0.0.1:$1/" 2>/dev/null | grep -q -- "$2"; }
ctr_task_is() { ctr --address "$CTRD_SOCK" -n vsrun-lane task ls 2>/dev/null | grep -Eq "^$1 +[0-9]+ +$2"; }

# Host view: the memory limit of a pid's cgroup (v1 memory.limit_in_bytes, v2 memory.max).
memory_limit_of() {
    local pid=$1 p
    if grep -q '^0::' "/proc/$pid/cgroup" && [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
        p=$(sed -n 's/^0:://p' "/proc/$pid/cgroup")
        cat "/sys/fs/cgroup$p/memory.max"
    else
        p=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ { print $3 }' "/proc/$pid/cgroup")
        cat "/sys/fs/cgroup/memory$p/memory.limit_in_bytes"
    fi
}

# ---------------------------------------------------------------------------------------------
# The image: a busybox rootfs, no registry

IMAGE=docker.io/library/busybox:latest
IMAGE_TAR=$WORK/busybox.tar
make_image() {
    [ -s "$IMAGE_TAR" ] && return 0
    command -v podman >/dev/null || return 1
    echo "== image: hack/mkrootfs + podman import/save ($IMAGE)"
    local log=$WORK/image.log
    { "$REPO/hack/mkrootfs" "$WORK/rootfs" &&
        tar -C "$WORK/rootfs" -c . | podman import - localhost/busybox:latest &&
        podman tag localhost/busybox:latest "$IMAGE" &&
        podman save --format docker-archive -o "$IMAGE_TAR" "$IMAGE"; } >"$log" 2>&1 || {
        tail -5 "$log" >&2
        return 1
    }
}

# podman with private storage and containers.conf (engines.md); the lane adds --runtime.
PODMAN_DIR=$WORK/podman
mkdir -p "$PODMAN_DIR"/{root,run,tmp,net}
cat >"$PODMAN_DIR/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
lock_type = "file"
tmp_dir = "$PODMAN_DIR/tmp"
runtime_supports_json = ["crun", "runc", "vsrun"]

[engine.runtimes]
vsrun = ["$VSRUN"]

[network]
network_config_dir = "$PODMAN_DIR/net"
EOF
cat >"$PODMAN_DIR/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$PODMAN_DIR/root"
runroot = "$PODMAN_DIR/run"
EOF
# Exported (not a wrapper function) so that `timeout` and `script` run podman with them too.
export CONTAINERS_CONF=$PODMAN_DIR/containers.conf
export CONTAINERS_STORAGE_CONF=$PODMAN_DIR/storage.conf

# ---------------------------------------------------------------------------------------------
# containerd (private root/state/socket; CRI plugin disabled)

CTRD_DIR=$WORK/containerd
CTRD_SOCK=$CTRD_DIR/containerd.sock
CTRD_PID=
start_containerd() {
    [ -n "$CTRD_PID" ] && return 0
    command -v containerd >/dev/null || return 1
    mkdir -p "$CTRD_DIR"/{root,state,opt}
    cat >"$CTRD_DIR/config.toml" <<EOF
version = 2
root = "$CTRD_DIR/root"
state = "$CTRD_DIR/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "$CTRD_SOCK"

[ttrpc]
  address = "$CTRD_SOCK.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$CTRD_DIR/opt"
EOF
    containerd --config "$CTRD_DIR/config.toml" >"$CTRD_DIR/containerd.log" 2>&1 &
    CTRD_PID=$!
    echo "$CTRD_PID" >"$CTRD_DIR/containerd.pid"
    PIDS_TO_STOP+=("$CTRD_PID containerd")
    retry 80 ctr --address "$CTRD_SOCK" version >/dev/null 2>&1 || {
        tail -5 "$CTRD_DIR/containerd.log" >&2
        return 1
    }
}

# ---------------------------------------------------------------------------------------------
# Lane: podman

lane_podman() {
    LANE=podman
    echo "== lane podman ($(podman --version 2>/dev/null))"
    if ! command -v podman >/dev/null || ! command -v conmon >/dev/null; then
        skip_lane podman "podman or conmon is not installed and could not be installed"
        return
    fi
    if ! make_image || ! podman image exists "$IMAGE"; then
        skip_lane podman "podman cannot import an image here (see podman info)"
        return
    fi
    local P=(podman --runtime "$VSRUN")
    CLEANUPS+=("podman rm -af -t 0")

    run_check "run --rm" '^hello from vsrun$' "${P[@]}" run --rm "$IMAGE" echo hello from vsrun
    OUT=$("${P[@]}" run --name rt-probe "$IMAGE" true 2>&1 && podman inspect -f '{{.OCIRuntime}}' rt-probe 2>&1)
    podman rm -f rt-probe >/dev/null 2>&1
    if grep -q vsrun <<<"$OUT"; then pass "inspect .OCIRuntime names vsrun"; else fail "inspect .OCIRuntime names vsrun" "$OUT"; fi
    run_check "run --network none" '^lo$' "${P[@]}" run --rm --network none "$IMAGE" \
        sh -c 'ls /sys/class/net'
    if grep -qv '^lo$' <<<"$OUT"; then fail "run --network none: only lo" "$OUT"; fi
    code_check "exit code propagates (run --rm, exit 42)" 42 "${P[@]}" run --rm "$IMAGE" sh -c 'exit 42'

    local port=$((20000 + RANDOM % 20000))
    if run_check "run -d -p 127.0.0.1:$port:80 httpd" "" "${P[@]}" run -d --name web \
        -p "127.0.0.1:$port:80" "$IMAGE" \
        sh -c 'mkdir -p /www && echo served-by-vsrun >/www/index.html && exec httpd -f -p 80 -h /www'; then
        if retry 40 curl_grep "$port" served-by-vsrun; then
            pass "curl from the host through -p"
        else
            fail "curl from the host through -p" "$(curl -sS --max-time 2 "http://127.0.0.1:$port/" 2>&1; podman logs web 2>&1 | tail -5)"
        fi
        run_check "exec" '^served-by-vsrun$' "${P[@]}" exec web cat /www/index.html
        code_check "exec exit code" 7 "${P[@]}" exec web sh -c 'exit 7'
        tty_check "exec -it" 0 '^/dev/pts/[0-9]+' "${P[@]}" exec -it web sh -c 'tty; sleep 1; stty size'
        grep -q '^40 100$' <<<"$OUT" && pass "exec -it terminal size" ||
            fail "exec -it terminal size" "$OUT"
        run_check "pause" "" "${P[@]}" pause web &&
            run_check "paused status" '^paused$' podman inspect -f '{{.State.Status}}' web
        if curl -fsS --max-time 1 "http://127.0.0.1:$port/" >/dev/null 2>&1; then
            fail "httpd frozen while paused" "curl got an answer from a paused container"
        else
            pass "httpd frozen while paused"
        fi
        run_check "unpause" "" "${P[@]}" unpause web &&
            run_check "running after unpause" '^running$' podman inspect -f '{{.State.Status}}' web
        retry 20 curl_grep "$port" served-by-vsrun &&
            pass "httpd answers after unpause" || fail "httpd answers after unpause" ""
        if run_check "update --memory 64m" "" "${P[@]}" update --memory 64m web; then
            local pid lim
            pid=$(podman inspect -f '{{.State.Pid}}' web)
            lim=$(memory_limit_of "$pid" 2>&1)
            [ "$lim" = 67108864 ] && pass "update --memory reaches the cgroup" ||
                fail "update --memory reaches the cgroup" "memory limit of pid $pid: $lim"
        fi
        run_check "top" 'httpd' "${P[@]}" top web
        run_check "stats --no-stream" 'web' "${P[@]}" stats --no-stream --format '{{.Name}} {{.MemUsage}} {{.PIDs}}' web
        run_check "stop" "" "${P[@]}" stop -t 2 web &&
            run_check "exited after stop" '^exited$' podman inspect -f '{{.State.Status}}' web
        run_check "rm" "" "${P[@]}" rm web
        if podman container exists web 2>/dev/null; then fail "gone after rm" ""; else pass "gone after rm"; fi
    fi

    if run_check "run -d (USR1 trap)" "" "${P[@]}" run -d --name sig "$IMAGE" \
        sh -c 'trap "echo got-usr1" USR1; echo ready; while true; do sleep 0.1; done'; then
        retry 40 podman_logs_grep sig ready
        run_check "kill -s USR1" "" "${P[@]}" kill -s USR1 sig
        if retry 40 podman_logs_grep sig got-usr1; then
            pass "USR1 delivered to the container"
        else
            fail "USR1 delivered to the container" "$(podman logs sig 2>&1 | tail -5)"
        fi
        run_check "rm -f" "" "${P[@]}" rm -f -t 0 sig
    fi
    tty_check "run -it" 3 '^/dev/pts/[0-9]+' "${P[@]}" run -it --rm "$IMAGE" sh -c 'sleep 0.5; tty; exit 3'
}

# ---------------------------------------------------------------------------------------------
# Lane: rootless podman (podman as a plain user calls vsrun inside its own user namespace)

RL_USER=vsrun-rootless
RL_DIR=$WORK/rootless

# The test user of spec-tests/tests/rootless.rs, with a subordinate uid and gid range above
# every range already given out (newuidmap checks the podman user namespace's map against it).
ensure_rootless_user() {
    id -u "$RL_USER" >/dev/null 2>&1 ||
        useradd --create-home --shell /bin/sh "$RL_USER" >/dev/null 2>&1 || return 1
    local f top
    for f in /etc/subuid /etc/subgid; do
        touch "$f"
        grep -q "^$RL_USER:" "$f" && continue
        top=$(awk -F: 'BEGIN { t = 100000 } NF == 3 && $2 + $3 > t { t = $2 + $3 } END { print t }' "$f")
        echo "$RL_USER:$top:65536" >>"$f"
    done
}

# $RL_DIR/as-user CMD...: CMD as the user, with the lane's XDG_RUNTIME_DIR, HOME and podman
# config only (a file, so that `timeout` and `script` can run it).
write_rootless_env() {
    mkdir -p "$RL_DIR"/{xdg,home,root,run,tmp,net,vol}
    cat >"$RL_DIR/containers.conf" <<EOC
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
lock_type = "file"
tmp_dir = "$RL_DIR/tmp"
runtime_supports_json = ["crun", "runc", "vsrun"]

[engine.runtimes]
vsrun = ["$VSRUN"]

[network]
network_config_dir = "$RL_DIR/net"
EOC
    cat >"$RL_DIR/storage.conf" <<EOC
[storage]
driver = "overlay"
graphroot = "$RL_DIR/root"
runroot = "$RL_DIR/run"
EOC
    cat >"$RL_DIR/as-user" <<EOC
#!/bin/sh
exec setpriv --reuid=$RL_USER --regid=$RL_USER --init-groups env -i \\
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin TERM=\${TERM:-dumb} \\
    HOME=$RL_DIR/home USER=$RL_USER LOGNAME=$RL_USER XDG_RUNTIME_DIR=$RL_DIR/xdg \\
    CONTAINERS_CONF=$RL_DIR/containers.conf CONTAINERS_STORAGE_CONF=$RL_DIR/storage.conf "\$@"
EOC
    chmod 755 "$RL_DIR" "$RL_DIR/as-user"
    chown -R "$RL_USER:" "$RL_DIR"
    chmod 700 "$RL_DIR/xdg"
}

# The user's podman keeps a pause process holding its user and mount namespaces (pid in
# tmp_dir): stopped by pid once the user's containers are gone.
stop_rootless_podman() {
    "$RL_DIR/as-user" podman rm -af -t 0 >/dev/null 2>&1
    [ -s "$RL_DIR/tmp/pause.pid" ] && stop_pid "$(cat "$RL_DIR/tmp/pause.pid")" "rootless podman pause"
}

host_uid_of() { awk '/^Uid:/ { print $2 }' "/proc/$1/status"; }

lane_rootless() {
    LANE=rootless
    echo "== lane rootless (podman $(podman --version 2>/dev/null | awk '{print $3}') as $RL_USER)"
    if ! command -v podman >/dev/null || ! command -v newuidmap >/dev/null; then
        skip_lane rootless "podman or newuidmap (package uidmap) is not installed and could not be installed"
        return
    fi
    if ! ensure_rootless_user; then
        skip_lane rootless "useradd $RL_USER failed"
        return
    fi
    write_rootless_env
    local U=$RL_DIR/as-user uid
    uid=$(id -u "$RL_USER")
    CLEANUPS+=("stop_rootless_podman")
    [ -x "$WORK/rootfs/bin/busybox" ] || "$REPO/hack/mkrootfs" "$WORK/rootfs" >"$WORK/rootless-mkrootfs.log" 2>&1
    if ! tar -C "$WORK/rootfs" -c . | timeout "$T" "$U" podman import - localhost/busybox:latest \
        >"$RL_DIR/import.log" 2>&1; then
        skip_lane rootless "rootless podman cannot import an image: $(tail -3 "$RL_DIR/import.log")"
        return
    fi
    local IMG=localhost/busybox:latest
    local P=("$U" podman --runtime "$VSRUN")
    local NET=(--network none)
    if "$U" sh -c 'exec 3<>/dev/net/tun' 2>/dev/null; then
        NET=()
        echo "   $RL_USER may open /dev/net/tun: default network (slirp4netns)"
    else
        echo "   NOTE: /dev/net/tun is not open to $RL_USER ($(stat -c '%A %U' /dev/net/tun 2>&1)):" \
            "slirp4netns cannot run, checks use --network none"
    fi

    run_check "run --rm" '^hello from vsrun$' "${P[@]}" run --rm "${NET[@]}" "$IMG" echo hello from vsrun
    run_check "root inside is the user outside (uid_map)" "^ +0 +$uid +1\$" \
        "${P[@]}" run --rm "${NET[@]}" "$IMG" cat /proc/self/uid_map
    code_check "exit code propagates (exit 42)" 42 "${P[@]}" run --rm "${NET[@]}" "$IMG" sh -c 'exit 42'
    if [ ${#NET[@]} -gt 0 ]; then
        run_check "--network none: only lo" '^lo$' "${P[@]}" run --rm "${NET[@]}" "$IMG" ls /sys/class/net
        grep -qv '^lo$' <<<"$OUT" && fail "--network none: nothing but lo" "$OUT"
    else
        run_check "slirp4netns: tap0 with a default route" 'default via .* dev tap0' \
            "${P[@]}" run --rm "$IMG" ip route
    fi

    if run_check "run -d" "" "${P[@]}" run -d --name rl1 "${NET[@]}" "$IMG" \
        sh -c 'trap "exit 0" TERM; echo ready; while true; do sleep 0.1; done'; then
        local pid
        pid=$("$U" podman inspect -f '{{.State.Pid}}' rl1 2>&1)
        [ "$(host_uid_of "$pid" 2>&1)" = "$uid" ] && pass "the init is uid $uid on the host" ||
            fail "the init is uid $uid on the host" "pid $pid: $(grep -E '^(Uid|Gid):' "/proc/$pid/status" 2>&1)"
        run_check "inspect .OCIRuntime names vsrun" 'vsrun' "$U" podman inspect -f '{{.OCIRuntime}}' rl1
        run_check "exec" '^in-exec 0$' "${P[@]}" exec rl1 sh -c 'echo in-exec $(id -u)'
        code_check "exec exit code" 7 "${P[@]}" exec rl1 sh -c 'exit 7'
        run_check "ps" ' rl1$' "${P[@]}" ps --format '{{.Status}} {{.Names}}'
        grep -q '^Up .* rl1$' <<<"$OUT" || fail "ps: rl1 is up" "$OUT"
        run_check "top" 'while true' "${P[@]}" top rl1
        run_check "stop" "" "${P[@]}" stop -t 2 rl1 &&
            run_check "exited after stop" '^exited$' "$U" podman inspect -f '{{.State.Status}}' rl1
        run_check "rm" "" "${P[@]}" rm rl1
        if "$U" podman container exists rl1 2>/dev/null; then fail "gone after rm" ""; else pass "gone after rm"; fi
    fi

    # A volume: the user's files are root's inside, and root's writes land as the user.
    echo from-the-host >"$RL_DIR/vol/in"
    chown -R "$RL_USER:" "$RL_DIR/vol"
    run_check "-v: the host file is read inside, owned by root" '^from-the-host 0$' \
        "${P[@]}" run --rm "${NET[@]}" -v "$RL_DIR/vol:/vol" "$IMG" \
        sh -c 'echo "$(cat /vol/in) $(stat -c %u /vol/in)"; echo from-the-container >/vol/out'
    if [ "$(cat "$RL_DIR/vol/out" 2>&1)" = from-the-container ] && [ "$(stat -c %u "$RL_DIR/vol/out")" = "$uid" ]; then
        pass "-v: a file written inside is the user's on the host"
    else
        fail "-v: a file written inside is the user's on the host" "$(ls -ln "$RL_DIR/vol" 2>&1)"
    fi
    run_check "--userns keep-id: id inside is the user's" "^$uid $(id -g "$RL_USER")\$" \
        "${P[@]}" run --rm "${NET[@]}" --userns keep-id "$IMG" sh -c 'echo $(id -u) $(id -g)'
    run_check "--userns keep-id: a volume file is the user's inside" "^$uid\$" \
        "${P[@]}" run --rm "${NET[@]}" --userns keep-id -v "$RL_DIR/vol:/vol" "$IMG" stat -c %u /vol/in

    if [ ${#NET[@]} -eq 0 ]; then
        local port=$((20000 + RANDOM % 20000))
        if run_check "run -d -p 127.0.0.1:$port:80 httpd (rootlessport)" "" "${P[@]}" run -d --name rlweb \
            -p "127.0.0.1:$port:80" "$IMG" \
            sh -c 'mkdir -p /www && echo served-rootless >/www/index.html && exec httpd -f -p 80 -h /www'; then
            retry 40 curl_grep "$port" served-rootless && pass "curl from the host through -p" ||
                fail "curl from the host through -p" "$(curl -sS --max-time 2 "http://127.0.0.1:$port/" 2>&1)"
            run_check "rm -f" "" "${P[@]}" rm -f -t 0 rlweb
        fi
    fi
    tty_check "run -it" 3 '^/dev/pts/[0-9]+' "${P[@]}" run -it --rm "${NET[@]}" "$IMG" sh -c 'sleep 0.5; tty; exit 3'
    stop_rootless_podman
}

# ---------------------------------------------------------------------------------------------
# Lane: containerd (ctr run --runc-binary)

lane_containerd() {
    LANE=containerd
    echo "== lane containerd ($(containerd --version 2>/dev/null | awk '{print $3}'))"
    if ! start_containerd; then
        skip_lane containerd "containerd did not start (log: $CTRD_DIR/containerd.log)"
        return
    fi
    if ! make_image; then
        skip_lane containerd "no busybox image (podman is needed to build the docker-archive)"
        return
    fi
    local C=(ctr --address "$CTRD_SOCK" -n vsrun-lane)
    local R=(--runc-binary "$VSRUN" --runc-root "$CTRD_DIR/runc-root")
    CLEANUPS+=("ctr --address $CTRD_SOCK -n vsrun-lane task kill -a -s KILL c2; sleep 0.3; ctr --address $CTRD_SOCK -n vsrun-lane task delete -f c2; ctr --address $CTRD_SOCK -n vsrun-lane container delete c2")
    run_check "images import" "" "${C[@]}" images import "$IMAGE_TAR" || return

    run_check "run --rm" '^hello from vsrun$' "${C[@]}" run --rm "${R[@]}" "$IMAGE" c1 echo hello from vsrun
    code_check "run --rm exit code" 42 "${C[@]}" run --rm "${R[@]}" "$IMAGE" c1b sh -c 'exit 42'
    run_check "run -d" "" "${C[@]}" run -d "${R[@]}" "$IMAGE" c2 sh -c 'while true; do sleep 0.1; done' || return
    retry 20 ctr_task_is c2 RUNNING
    run_check "task ls: RUNNING" 'c2 +[0-9]+ +RUNNING' "${C[@]}" task ls
    run_check "task exec" '^in-exec$' "${C[@]}" task exec --exec-id e1 c2 echo in-exec
    code_check "task exec exit code" 5 "${C[@]}" task exec --exec-id e2 c2 sh -c 'exit 5'
    tty_check "task exec -t" 0 '^/dev/pts/[0-9]+' "${C[@]}" task exec -t --exec-id e3 c2 sh -c 'tty; sleep 1; stty size'
    grep -q '^40 100$' <<<"$OUT" && pass "task exec -t terminal size" ||
        fail "task exec -t terminal size" "$OUT"
    run_check "task ps" '^[0-9]+' "${C[@]}" task ps c2
    run_check "pause" "" "${C[@]}" task pause c2 &&
        run_check "task ls: PAUSED" 'c2 +[0-9]+ +PAUSED' "${C[@]}" task ls
    run_check "resume" "" "${C[@]}" task resume c2 &&
        run_check "task ls: RUNNING again" 'c2 +[0-9]+ +RUNNING' "${C[@]}" task ls
    run_check "kill -a" "" "${C[@]}" task kill -a -s KILL c2
    if retry 40 ctr_task_is c2 STOPPED; then
        pass "STOPPED after kill -a"
    else
        fail "STOPPED after kill -a" "$("${C[@]}" task ls 2>&1)"
    fi
    run_check "task delete" "" "${C[@]}" task delete c2
    run_check "container delete" "" "${C[@]}" container delete c2
    tty_check "run -t" 3 '^/dev/pts/[0-9]+' "${C[@]}" run --rm -t "${R[@]}" "$IMAGE" c3 sh -c 'sleep 0.5; tty; exit 3'
}

# ---------------------------------------------------------------------------------------------
# Lane: docker (dockerd --add-runtime vsrun=...)

lane_docker() {
    LANE=docker
    echo "== lane docker ($(dockerd --version 2>/dev/null))"
    if ! command -v dockerd >/dev/null || [ ! -x /usr/bin/docker ]; then
        skip_lane docker "dockerd or /usr/bin/docker is not installed and could not be installed"
        return
    fi
    if ! start_containerd; then
        skip_lane docker "containerd (used by dockerd) did not start"
        return
    fi
    if ! make_image; then
        skip_lane docker "no busybox image (podman is needed to build the docker-archive)"
        return
    fi
    local DD=$WORK/docker
    mkdir -p "$DD"/{root,exec}
    echo '{}' >"$DD/daemon.json"
    # No bridge and no iptables rules: the docker checks need no network, and the podman lane
    # covers port publishing.
    dockerd --config-file "$DD/daemon.json" --data-root "$DD/root" --exec-root "$DD/exec" \
        --pidfile "$DD/dockerd.pid" -H "unix://$DD/docker.sock" \
        --containerd "$CTRD_SOCK" --containerd-namespace vsrun-docker \
        --containerd-plugins-namespace vsrun-docker-plugins \
        --add-runtime "vsrun=$VSRUN" --exec-opt native.cgroupdriver=cgroupfs \
        --bridge none --iptables=false --ip6tables=false --ip-masq=false \
        >"$DD/dockerd.log" 2>&1 &
    local dpid=$!
    PIDS_TO_STOP+=("$dpid dockerd")
    local D=(/usr/bin/docker -H "unix://$DD/docker.sock")
    if ! retry 120 "${D[@]}" version >/dev/null 2>&1; then
        skip_lane docker "dockerd did not start: $(tail -3 "$DD/dockerd.log")"
        return
    fi
    CLEANUPS=("${D[*]} rm -f d1" "${CLEANUPS[@]}")
    run_check "load" "" "${D[@]}" load -i "$IMAGE_TAR" || return
    local RT=(--runtime vsrun)

    run_check "run --rm" '^hello from vsrun$' "${D[@]}" run --rm "${RT[@]}" "$IMAGE" echo hello from vsrun
    code_check "run --rm exit code" 42 "${D[@]}" run --rm "${RT[@]}" "$IMAGE" sh -c 'exit 42'
    if run_check "run -d" "" "${D[@]}" run -d "${RT[@]}" --name d1 "$IMAGE" \
        sh -c 'trap "exit 0" TERM; while true; do sleep 0.1; done'; then
        run_check "inspect: runtime vsrun" '^vsrun$' "${D[@]}" inspect -f '{{.HostConfig.Runtime}}' d1
        run_check "exec" '^in-exec$' "${D[@]}" exec d1 echo in-exec
        code_check "exec exit code" 6 "${D[@]}" exec d1 sh -c 'exit 6'
        tty_check "exec -it" 0 '^/dev/pts/[0-9]+' "${D[@]}" exec -it d1 sh -c 'tty; sleep 1; stty size'
        grep -q '^40 100$' <<<"$OUT" && pass "exec -it terminal size" ||
            fail "exec -it terminal size" "$OUT"
        run_check "pause" "" "${D[@]}" pause d1 &&
            run_check "paused status" '^paused$' "${D[@]}" inspect -f '{{.State.Status}}' d1
        run_check "unpause" "" "${D[@]}" unpause d1 &&
            run_check "running after unpause" '^running$' "${D[@]}" inspect -f '{{.State.Status}}' d1
        if run_check "update --memory 64m" "" "${D[@]}" update --memory 64m --memory-swap 128m d1; then
            local pid lim
            pid=$("${D[@]}" inspect -f '{{.State.Pid}}' d1)
            lim=$(memory_limit_of "$pid" 2>&1)
            [ "$lim" = 67108864 ] && pass "update reaches the cgroup" ||
                fail "update reaches the cgroup" "memory limit of pid $pid: $lim"
        fi
        run_check "stats --no-stream" 'd1' "${D[@]}" stats --no-stream --format '{{.Name}} {{.MemUsage}} {{.PIDs}}' d1
        run_check "stop" "" "${D[@]}" stop -t 3 d1 &&
            run_check "exited after stop" '^exited$' "${D[@]}" inspect -f '{{.State.Status}}' d1
        run_check "rm" "" "${D[@]}" rm d1
    fi
    tty_check "run -it" 3 '^/dev/pts/[0-9]+' "${D[@]}" run -it --rm "${RT[@]}" "$IMAGE" sh -c 'sleep 0.5; tty; exit 3'
    stop_pid "$dpid" dockerd
}

# ---------------------------------------------------------------------------------------------
# Lane: cri — a pod through containerd's CRI plugin, as kubelet drives it (docs/kubernetes.md)

CRI_IMAGE=localhost/vsrun-pause:lane
CNI_BIN=/usr/lib/cni # Debian's containernetworking-plugins

# The sandbox image: hack/cri-lane/pause.c built static, imported like the busybox image.
make_pause_image() { # dir
    local d=$1 log=$1/pause-image.log
    mkdir -p "$d/rootfs"
    { gcc -static -Os -s -o "$d/rootfs/pause" "$REPO/hack/cri-lane/pause.c" &&
        tar -C "$d/rootfs" -c . | podman import --change 'ENTRYPOINT ["/pause"]' - "$CRI_IMAGE" &&
        podman save --format docker-archive -o "$d/pause.tar" "$CRI_IMAGE"; } >"$log" 2>&1 || {
        tail -5 "$log" >&2
        return 1
    }
}

cap_in_bounding_set() { # capability number
    local bnd
    bnd=$(awk '/^CapBnd:/ { print $2 }' /proc/self/status)
    (((0x$bnd >> $1) & 1))
}

# The config of docs/kubernetes.md with private paths, plus what a node without a registry
# needs: the local pause image, CNI's config in the work dir, vsrun's state under it.
write_cri_config() { # dir
    local CD=$1
    local restrict=false
    # containerd gives every sandbox oomScoreAdj -998, which takes CAP_SYS_RESOURCE; where
    # the bounding set lacks it (this VM's) runc fails there too, and containerd's own
    # option keeps the scores at or above its own, as on a rootless node.
    cap_in_bounding_set 24 || restrict=true
    CRI_SANDBOX_OOM=-998
    $restrict && CRI_SANDBOX_OOM=$(cat /proc/self/oom_score_adj)
    sed -e "s#@ROOT@#$CD/root#; s#@STATE@#$CD/state#; s#@SOCK@#$CD/containerd.sock#" \
        -e "s#@OPT@#$CD/opt#; s#/usr/local/bin/vsrun#$VSRUN#" \
        -e "s#^\( *\)BinaryName = .*#&\n\1Root = \"$CD/vsrun-root\"#" \
        "$REPO/hack/engines/containerd-cri.toml" >"$CD/config.toml"
    cat >>"$CD/config.toml" <<EOF

[ttrpc]
  address = "$CD/containerd.sock.ttrpc"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$CRI_IMAGE"
  restrict_oom_score_adj = $restrict
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN"
    conf_dir = "$CD/cni/net.d"
EOF
    # A bridge in the lane's own network namespace (containerd runs in it), documentation
    # addresses, no masquerade: nothing of the host's network is touched.
    cat >"$CD/cni/net.d/10-vsrun-lane.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "vsrun-lane",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni-lane0",
      "isGateway": false,
      "ipMasq": false,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "192.0.2.0/24" }]],
        "dataDir": "$CD/cni/ipam"
      }
    }
  ]
}
EOF
}

# cri-lane's PASS/FAIL lines become this lane's checks; its other lines are shown as they come.
run_cri_client() {
    local line rc=none
    while IFS= read -r line; do
        case $line in
            PASS\ *) pass "${line#PASS }" ;;
            FAIL\ *) fail "${line#FAIL }" ;;
            "cri-lane exit status "*) rc=${line##* } ;;
            "pod uid "*" cgroup_parent /"*)
                CRI_POD_CGROUPS+=("$(awk '{ print $5 }' <<<"$line")")
                echo "        $line"
                ;;
            *) echo "        $line" ;;
        esac
    done < <(timeout 300 "$@" 2>&1; echo "cri-lane exit status $?")
    [ "$rc" = 0 ] || fail "cri-lane exits 0" "exit status $rc"
}

# After a client that died mid-pod: the containers left in the lane's vsrun root are removed
# (processes, cgroups), the shims (one per pod, they outlive containerd) are stopped, and the
# pod cgroups the client made as kubelet (empty by then) are removed.
CRI_POD_CGROUPS=()
cri_leftovers() { # lane dir
    local id h p shims=()
    # containerd 1.6 keeps no shim pid file: a shim of ours is one given our socket's address
    # (a path under the work dir, so no other process matches it).
    for p in /proc/[0-9]*; do
        tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q "^[^ ]*containerd-shim-runc-v2 .*-address $1/containerd.sock " &&
            shims+=("${p#/proc/}")
    done
    for id in $("$VSRUN" --root "$1/vsrun-root/k8s.io" list -q 2>/dev/null); do
        "$VSRUN" --root "$1/vsrun-root/k8s.io" delete --force "$id"
    done
    for id in "${shims[@]}"; do stop_pid "$id" containerd-shim; done
    for p in "${CRI_POD_CGROUPS[@]}"; do
        for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
            [ -d "$h${p#/}" ] && rmdir "$h${p#/}" "$h$(dirname "${p#/}")" "$h$(dirname "$(dirname "${p#/}")")"
        done
    done
    return 0
}

lane_cri() {
    LANE=cri
    echo "== lane cri (containerd $(containerd --version 2>/dev/null | awk '{print $3}') CRI plugin, handler vsrun)"
    if ! command -v containerd >/dev/null || ! command -v protoc >/dev/null; then
        skip_lane cri "containerd or protobuf-compiler is not installed and could not be installed"
        return
    fi
    local CD=$WORK/cri t0
    mkdir -p "$CD"/{root,state,opt,cni/bin,cni/net.d,pod-logs}
    t0=$(date +%s)
    if ! cargo build -q -p cri-lane; then
        fail "cargo build -p cri-lane" ""
        return
    fi
    echo "   cri-lane built in $(($(date +%s) - t0)) s"
    if ! make_image || ! make_pause_image "$CD"; then
        skip_lane cri "no busybox or pause image (podman is needed to build the docker-archives)"
        return
    fi
    write_cri_config "$CD"
    # The doc and the file must not drift apart: the doc carries the runtime section verbatim.
    if awk '/^\[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.vsrun\]/,/BinaryName/' \
        "$REPO/hack/engines/containerd-cri.toml" | grep -vxFf "$REPO/docs/kubernetes.md" | grep -q .; then
        fail "docs/kubernetes.md shows hack/engines/containerd-cri.toml's runtime entry" ""
    else
        pass "docs/kubernetes.md shows hack/engines/containerd-cri.toml's runtime entry"
    fi
    run_check "config dump has the vsrun runtime" "BinaryName = \"$VSRUN\"" \
        containerd --config "$CD/config.toml" config dump
    # containerd, its shims and the pods' network live in a network namespace of the lane's
    # own: the CNI bridge and hostNetwork pods never touch the host's network.
    unshare --net containerd --config "$CD/config.toml" >"$CD/containerd.log" 2>&1 &
    local cpid=$!
    PIDS_TO_STOP+=("$cpid containerd-cri")
    CLEANUPS+=("cri_leftovers $CD")
    local C=(ctr --address "$CD/containerd.sock" -n k8s.io)
    if ! retry 80 "${C[@]}" version >/dev/null 2>&1; then
        fail "containerd with the CRI plugin starts" "$(tail -5 "$CD/containerd.log")"
        return
    fi
    pass "containerd with the CRI plugin starts"
    local NODE_NET=(nsenter --net="/proc/$cpid/ns/net")
    "${NODE_NET[@]}" ip link set lo up
    if [ -x "$CNI_BIN/bridge" ] && [ -x "$CNI_BIN/host-local" ] && [ -x "$CNI_BIN/loopback" ]; then
        pass "CNI plugins bridge, host-local, loopback in $CNI_BIN"
    else
        fail "CNI plugins bridge, host-local, loopback in $CNI_BIN" "containernetworking-plugins is missing"
    fi
    run_check "ctr -n k8s.io images import (busybox)" "" "${C[@]}" images import "$IMAGE_TAR" || return
    run_check "ctr -n k8s.io images import (pause)" "" "${C[@]}" images import "$CD/pause.tar" || return
    # The client runs in the node's (the lane's) network namespace, as kubelet would.
    local net
    for net in pod node; do
        t0=$(date +%s)
        echo "   -- a pod with the ${net}'s network"
        run_cri_client "${NODE_NET[@]}" "${CARGO_TARGET_DIR:-$REPO/target}/debug/cri-lane" \
            --socket "$CD/containerd.sock" --handler vsrun --cgroup-driver cgroupfs \
            --pod-network "$net" --image "$IMAGE" --pause-image "$CRI_IMAGE" \
            --sandbox-oom-score-adj "$CRI_SANDBOX_OOM" \
            --vsrun "$VSRUN" --vsrun-root "$CD/vsrun-root/k8s.io" --log-dir "$CD/pod-logs" \
            --watch-dir "$CD/root" --watch-dir "$CD/state"
        echo "   pod lifecycle ($net network) took $(($(date +%s) - t0)) s"
    done
    stop_pid "$cpid" containerd-cri
    cri_leftovers "$CD"
}

# ---------------------------------------------------------------------------------------------

# VSRUN_SKIP_ENGINE_<LANE>=1: the operator leaves the lane out; it is not a failure.
skipped_on_purpose() {
    local v="VSRUN_SKIP_ENGINE_${1^^}"
    [ "${!v:-0}" = 1 ]
}
LEFT_OUT=()
for lane in podman rootless containerd docker cri; do
    want "$lane" || continue
    if skipped_on_purpose "$lane"; then
        echo "== engines: lane $lane left out (VSRUN_SKIP_ENGINE_${lane^^}=1)"
        LEFT_OUT+=("$lane")
        continue
    fi
    "lane_$lane"
done

echo
echo "== engines: $PASSED passed, $FAILED failed, skipped lanes: ${SKIPPED[*]:-none}, left out on purpose: ${LEFT_OUT[*]:-none}, $(($(date +%s) - START))s"
for f in "${FAILURES[@]}"; do echo "   FAILED: $f"; done
[ ${#SKIPPED[@]} -gt 0 ] && echo "   !!! SKIPPED LANES: ${SKIPPED[*]} (their engine could not start on this machine)"
echo "$PASSED passed, $FAILED failed"
# A lane that could not run is a failure, not a pass: VSRUN_SKIP_ENGINE_<LANE>=1 leaves it out
# on purpose. ENGINES_ALLOW_SKIP=1, the old switch, accepts every such lane.
if [ ${#SKIPPED[@]} -gt 0 ]; then
    if [ "${ENGINES_ALLOW_SKIP:-0}" = 1 ]; then
        echo "   ENGINES_ALLOW_SKIP=1 is deprecated: set VSRUN_SKIP_ENGINE_<LANE>=1 for each lane to leave out" >&2
    else
        for l in "${SKIPPED[@]}"; do
            echo "   set VSRUN_SKIP_ENGINE_${l^^}=1 to leave lane $l out on purpose" >&2
        done
        exit 1
    fi
fi
[ "$FAILED" -eq 0 ]
