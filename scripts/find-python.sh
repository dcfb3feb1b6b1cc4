#!/usr/bin/env bash
# Print the path of a CPython interpreter that can create virtualenvs.
#
#   scripts/find-python.sh newest|oldest [MIN] [MAX]
#
#   newest|oldest  which one to pick among the versions found
#   MIN, MAX       the version window (major.minor), default 3.11 and 3.13
#
# Looks for python3.X and python3 on the PATH, in /usr/local/bin and /usr/bin,
# and in pyenv's versions when pyenv is installed (PYENV_ROOT, `pyenv root`,
# ~/.pyenv). An interpreter counts when it is CPython in the window and has
# the venv and ensurepip modules. Debian and Ubuntu ship ensurepip in a
# separate package (python3.X-venv): when the chosen version lacks it, the
# package is installed if this runs as root with apt-get, otherwise the
# command to install it is printed. Diagnostics go to stderr; stdout has
# only the interpreter's path.
set -euo pipefail

PICK="${1:-newest}"
MIN="${2:-3.11}"
MAX="${3:-3.13}"
case "$PICK" in newest|oldest) ;; *) echo "find-python: usage: $0 newest|oldest [MIN] [MAX]" >&2; exit 2 ;; esac

minor() { echo "${1#*.}"; }
VERSIONS=()
for ((m = $(minor "$MAX"); m >= $(minor "$MIN"); m--)); do VERSIONS+=("3.$m"); done

# Every place an interpreter of a version in the window may be.
candidates() {
    local v root dir
    local -a roots=() dirs=()
    [ -n "${PYENV_ROOT:-}" ] && roots+=("$PYENV_ROOT")
    if command -v pyenv >/dev/null 2>&1 && root="$(pyenv root 2>/dev/null)"; then roots+=("$root"); fi
    [ -n "${HOME:-}" ] && roots+=("$HOME/.pyenv")
    for v in "${VERSIONS[@]}"; do
        command -v "python$v" 2>/dev/null || true
        echo "/usr/local/bin/python$v"
        echo "/usr/bin/python$v"
        for root in "${roots[@]}"; do
            # newest patch release first
            mapfile -t dirs < <(printf '%s\n' "$root/versions/$v".* | sort -rV)
            for dir in "${dirs[@]}"; do echo "$dir/bin/python$v"; done
        done
    done
    command -v python3 2>/dev/null || true
    echo /usr/local/bin/python3
    echo /usr/bin/python3
}

# probe PATH: "<minor> <venv-ok 0|1> <real path>" for a CPython in the window
probe() {
    "$1" - "$MIN" "$MAX" <<'EOF' 2>/dev/null
import platform, sys
lo, hi = (tuple(int(p) for p in v.split(".")) for v in sys.argv[1:3])
if platform.python_implementation() != "CPython" or not lo <= sys.version_info[:2] <= hi:
    sys.exit(1)
try:
    import ensurepip, venv  # noqa: F401
    ok = 1
except ImportError:
    ok = 0
print(sys.version_info[1], ok, sys.executable)
EOF
}

declare -A SEEN=()
USABLE=()   # "minor path"
NO_VENV=()  # "minor path"
while read -r cand; do
    [ -n "$cand" ] && [ -x "$cand" ] || continue
    line="$(probe "$cand")" || continue
    read -r m ok path <<<"$line"
    [ -n "${SEEN[$path]:-}" ] && continue
    SEEN[$path]=1
    if [ "$ok" = 1 ]; then USABLE+=("$m $path"); else NO_VENV+=("$m $path"); fi
done < <(candidates)

sort_order() { if [ "$PICK" = newest ]; then sort -s -k1,1nr; else sort -s -k1,1n; fi; }
best() { printf '%s\n' "$@" | sed '/^$/d' | sort_order | head -n1; }

chosen="$(best "${USABLE[@]+"${USABLE[@]}"}")"
lacking="$(best "${NO_VENV[@]+"${NO_VENV[@]}"}")"

# A better version is there but cannot make virtualenvs: get its venv package.
if [ -n "$lacking" ] && { [ -z "$chosen" ] \
        || { [ "$PICK" = newest ] && [ "${lacking%% *}" -gt "${chosen%% *}" ]; } \
        || { [ "$PICK" = oldest ] && [ "${lacking%% *}" -lt "${chosen%% *}" ]; }; }; then
    m="${lacking%% *}"
    path="${lacking#* }"
    pkg="python3.$m-venv"
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1 && [[ "$path" == /usr/bin/* ]]; then
        echo "find-python: $path has no venv module; installing $pkg" >&2
        export DEBIAN_FRONTEND=noninteractive
        if apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null \
                && [ "$(probe "$path" | cut -d' ' -f2)" = 1 ]; then
            chosen="$m $path"
        else
            echo "find-python: installing $pkg failed" >&2
        fi
    elif [ -z "$chosen" ]; then
        echo "find-python: $path (Python 3.$m) cannot create virtualenvs." >&2
        if [[ "$path" == /usr/bin/* ]] && command -v apt-get >/dev/null 2>&1; then
            echo "find-python: install its venv support first:  sudo apt-get install $pkg" >&2
        else
            echo "find-python: install the venv and ensurepip modules for it" >&2
        fi
        exit 1
    else
        echo "find-python: note: $path (Python 3.$m) has no venv module (apt-get install $pkg);" \
             "using ${chosen#* } instead" >&2
    fi
fi

if [ -z "$chosen" ]; then
    echo "find-python: no CPython $MIN to $MAX found (looked on the PATH, in /usr/local/bin," \
         "/usr/bin and pyenv). Install one, e.g. on Debian/Ubuntu: sudo apt-get install python3 python3-venv" >&2
    exit 1
fi
echo "${chosen#* }"
