#!/usr/bin/env bash
# Create (or refresh) one of the project's virtualenvs with pinned requirements.
#
#   scripts/setup-venv.sh LINE [PYTHON]
#
#   LINE    main      .venv: the newest Python 3.11-3.13 found, with
#                     requirements/test.txt (ansible-core 2.20) on Python 3.12+
#                     or requirements/test-ansible219.txt (ansible-core 2.19) on 3.11
#           218       .venv-218: the oldest Python 3.11-3.13 found, with
#                     requirements/test-ansible218.txt (ansible-core 2.18)
#           importer  .venv-importer: galaxy-importer (requirements/galaxy-importer.txt)
#           builder   .venv-builder: ansible-builder (requirements/ansible-builder.txt)
#           docs      .venv-docs: antsibull-docs (requirements/antsibull-docs.txt)
#           changelog .venv-changelog: antsibull-changelog (requirements/antsibull-changelog.txt)
#   PYTHON  an interpreter path to use instead of searching (scripts/find-python.sh)
#
#   scripts/setup-venv.sh --print-python LINE   only print the interpreter LINE would use
#
# Idempotent: a stamp in the venv records the interpreter and a hash of the
# requirements; when both match nothing is reinstalled. Quiet unless it fails,
# in which case pip's output is printed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
die() { echo "setup-venv: $*" >&2; exit 1; }

PRINT_ONLY=0
if [ "${1:-}" = --print-python ]; then PRINT_ONLY=1; shift; fi
LINE="${1:-main}"
PY="${2:-}"

case "$LINE" in
    main)     VENV="$ROOT/.venv";          PICK=newest ;;
    218)      VENV="$ROOT/.venv-218";      PICK=oldest ;;
    importer) VENV="$ROOT/.venv-importer"; PICK=newest; REQS="$ROOT/requirements/galaxy-importer.txt" ;;
    builder)  VENV="$ROOT/.venv-builder";  PICK=newest; REQS="$ROOT/requirements/ansible-builder.txt" ;;
    docs)     VENV="$ROOT/.venv-docs";     PICK=newest; REQS="$ROOT/requirements/antsibull-docs.txt" ;;
    changelog) VENV="$ROOT/.venv-changelog"; PICK=newest; REQS="$ROOT/requirements/antsibull-changelog.txt" ;;
    *) die "unknown line '$LINE' (main, 218, importer, builder, docs or changelog)" ;;
esac

if [ -z "$PY" ]; then
    PY="$(bash "$ROOT/scripts/find-python.sh" "$PICK" 3.11 3.13)" || exit 1
fi
PY_VERSION="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" \
    || die "interpreter not usable: $PY"

case "$LINE" in
    main)
        if [ "${PY_VERSION#3.}" -ge 12 ]; then REQS="$ROOT/requirements/test.txt"
        else REQS="$ROOT/requirements/test-ansible219.txt"; fi ;;
    218) REQS="$ROOT/requirements/test-ansible218.txt" ;;
esac
[ -f "$REQS" ] || die "requirements file not found: $REQS"

if [ "$PRINT_ONLY" -eq 1 ]; then
    echo "$PY"
    exit 0
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

# A venv built by another interpreter (or a broken one) is rebuilt from scratch.
if [ -e "$VENV" ] && { [ ! -f "$STAMP" ] || [ "$(cut -d' ' -f1-2 "$STAMP")" != "$PY_ID" ] \
        || ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; }; then
    rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV" >"$LOG" 2>&1 || fail "could not create $VENV with $PY"
fi
if [ "$LINE" = main ] && [ "${PY_VERSION#3.}" -lt 12 ]; then
    echo "setup-venv: $VENV on Python $PY_VERSION gets ansible-core 2.19 (2.20 needs Python 3.12+)" >&2
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$VENV/bin/python" -m pip install -q -r "$REQS" >>"$LOG" 2>&1 || fail "pip install -r $REQS failed"
echo "$WANT_STAMP" >"$STAMP"
