#!/bin/bash
# hack/demo.sh: build vsrun (release), make a busybox bundle with `vsrun spec`, run one container
# that shows what it sees (hostname, PID 1, capabilities, mounts), clean up.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root" >&2; exit 1; }

cargo build --release -p vsrun
vsrun=$repo/target/release/vsrun

source hack/lib/scratch.sh # (the cwd is the repository)
tmp=$(mktemp -d /tmp/vsrun-demo.XXXXXX)
root=$tmp/root
id=demo-$$
cleanup() {
    "$vsrun" --root "$root" delete --force "$id" >/dev/null 2>&1 || true
    remove_scratch hack/demo.sh "$tmp"
}
trap cleanup EXIT

bundle=$tmp/bundle
"$repo/hack/mkrootfs" "$bundle/rootfs"
"$vsrun" spec --bundle "$bundle"

script='echo hostname=$(hostname); echo pid=$$; grep Cap /proc/self/status; cat /proc/self/mounts'
if command -v python3 >/dev/null; then
    python3 - "$bundle/config.json" "$script" <<'PY'
import json, sys
path, script = sys.argv[1], sys.argv[2]
with open(path) as f:
    c = json.load(f)
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/sh", "-c", script]
with open(path, "w") as f:
    json.dump(c, f, indent=2)
PY
else
    # sed fallback: the spec output puts `"terminal": true` and `"sh"` as the only argument
    esc=$(printf '%s' "$script" | sed 's/[\/&]/\\&/g; s/"/\\\\"/g')
    sed -i -e 's/"terminal": true/"terminal": false/' \
        -e "s/^\(\s*\)\"sh\"$/\1\"\/bin\/sh\", \"-c\", \"$esc\"/" "$bundle/config.json"
fi

echo "== vsrun --root $root run --bundle $bundle $id"
rc=0
"$vsrun" --root "$root" run --bundle "$bundle" "$id" || rc=$?
echo "== exit status $rc"
exit $rc
