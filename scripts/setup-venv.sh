#!/usr/bin/env bash
# Create (or refresh) a virtualenv with pinned requirements.
#
#   scripts/setup-venv.sh [VENV_DIR] [PYTHON] [REQUIREMENTS]
#
#   VENV_DIR      default: .venv (relative to the repository root)
#   PYTHON        a version such as 3.12 (searched on PATH and in pyenv) or an
#                 interpreter path/command; default: 3.12
#   REQUIREMENTS  default: requirements/test.txt
#
# Idempotent: a stamp in the venv records the interpreter and a hash of the
# requirements; when both match nothing is reinstalled. Quiet unless it fails,
# in which case pip's output is printed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-.venv}"
WANT="${2:-3.12}"
REQS="${3:-requirements/test.txt}"
case "$VENV" in /*) ;; *) VENV="$ROOT/$VENV" ;; esac
case "$REQS" in /*) ;; *) REQS="$ROOT/$REQS" ;; esac

die() { echo "setup-venv: $*" >&2; exit 1; }
[ -f "$REQS" ] || die "requirements file not found: $REQS"

# Print the first interpreter that really is Python $1 (major.minor).
find_python() {
    local want="$1" cand root
    local -a cands=()
    [ -n "${PYENV_ROOT:-}" ] && cands+=("$PYENV_ROOT"/versions/"$want"*/bin/python"$want")
    if command -v pyenv >/dev/null 2>&1 && root="$(pyenv root 2>/dev/null)"; then
        cands+=("$root"/versions/"$want"*/bin/python"$want")
    fi
    cands+=("$HOME"/.pyenv/versions/"$want"*/bin/python"$want")
    cand="$(command -v "python$want" 2>/dev/null || true)"
    [ -n "$cand" ] && cands+=("$cand")
    cands+=("/usr/bin/python$want" "/usr/local/bin/python$want" python3)
    for cand in "${cands[@]}"; do
        [ -n "$cand" ] || continue
        if "$cand" -c "import sys, venv, ensurepip; sys.exit(0 if '%d.%d' % sys.version_info[:2] == '$want' else 1)" \
                >/dev/null 2>&1; then
            "$cand" -c 'import sys; print(sys.executable)'
            return 0
        fi
    done
    return 1
}

if [[ "$WANT" =~ ^[0-9]+\.[0-9]+$ ]]; then
    PY="$(find_python "$WANT")" || die "no Python $WANT found (looked on PATH, in pyenv and /usr/bin)"
else
    PY="$(command -v "$WANT" 2>/dev/null || true)"
    [ -n "$PY" ] || die "interpreter not found: $WANT"
fi

PY_ID="$("$PY" -c 'import sys; print(sys.version.split()[0], sys.executable)')"
REQ_HASH="$(sha256sum <"$REQS" | cut -d' ' -f1)"
STAMP="$VENV/.requirements-stamp"
WANT_STAMP="$PY_ID $REQ_HASH"

if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT_STAMP" ] \
        && "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    exit 0
fi

LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT
fail() { echo "setup-venv: $* (output follows)" >&2; cat "$LOG" >&2; exit 1; }

# A venv built by another interpreter is rebuilt from scratch.
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cut -d' ' -f1-2 "$STAMP")" != "$PY_ID" ]; then
    rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
    rm -rf "$VENV"
    "$PY" -m venv "$VENV" >"$LOG" 2>&1 || fail "could not create $VENV with $PY"
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$VENV/bin/python" -m pip install -q -r "$REQS" >>"$LOG" 2>&1 || fail "pip install -r $REQS failed"
echo "$WANT_STAMP" >"$STAMP"
