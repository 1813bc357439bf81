# Shared set-up steps for scripts/serve.sh and scripts/test.sh (sourced, not run).
# Works on a fresh Debian 12: installs what is missing with apt when running as root (or with sudo).

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
        echo "setup: need root (or sudo) to run: $*" >&2; return 1; fi
}

apt_install() {
    # Installs the named Debian packages that are not installed yet; one apt-get update per run at most.
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    echo "setup: installing Debian packages: ${missing[*]}" >&2
    if [ -z "${SECRETSVC_APT_UPDATED:-}" ]; then
        as_root apt-get update -qq
        export SECRETSVC_APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

pick_python() {
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"; return 0
        fi
    done
    echo "setup: Python 3.11 or newer is required" >&2
    return 1
}

ensure_venv() {
    # Creates ./.venv (installing python3-venv first where Debian split it out) and upgrades pip in it.
    local py
    py=$(pick_python)
    if [ ! -x .venv/bin/python ]; then
        if ! "$py" -c 'import venv, ensurepip' 2>/dev/null; then
            apt_install python3-venv python3-pip
        fi
        "$py" -m venv .venv
    fi
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
}
