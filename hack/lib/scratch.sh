# hack/lib/scratch.sh: sourced by the hack scripts that work in a scratch directory of their
# own under /tmp and clean it up on exit.
#
# delete_all VSRUN ROOT: force-delete every container vsrun lists under the state root ROOT.
delete_all() {
    local id
    for id in $("$1" --root "$2" list -q 2>/dev/null); do
        "$1" --root "$2" delete --force "$id" >/dev/null 2>&1 || true
    done
}
# remove_scratch WHO DIR: remove DIR, unless a mount is left below it: never remove through a
# mount (a rootfs bind left behind would have its host files removed).
remove_scratch() {
    if grep -q " $2/" /proc/self/mountinfo; then
        echo "$1: mounts left under $2; not removing it" >&2
    else
        rm -rf "$2"
    fi
}
