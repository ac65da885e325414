# hack/lib/packages.sh: sourced by the hack scripts that install what they need on a fresh
# machine. `ensure_packages WHO PKG...` installs the Debian packages not installed yet and
# returns apt-get's status (each caller decides whether a failure stops it).
export DEBIAN_FRONTEND=noninteractive
ensure_packages() {
    local who=$1 missing=() p
    shift
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "$who: installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null
}
