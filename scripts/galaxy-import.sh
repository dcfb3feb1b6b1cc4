#!/usr/bin/env bash
# Check the collection the way Galaxy does on upload: build the tarball, run
# galaxy-importer on it (settings in scripts/galaxy-importer.cfg: flake8 and
# ansible-lint on, ansible-test off) and fail on any error or warning it logs.
#
#   scripts/galaxy-import.sh [TARBALL]
#
# Without TARBALL the collection is built from this checkout first. Uses
# .venv-importer (scripts/setup-venv.sh importer).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-importer"
bash "$ROOT/scripts/setup-venv.sh" importer || exit 1

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/dist" "$WORK/tmp"

if [ -n "${1:-}" ]; then
    tarball="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
    [ -f "$tarball" ] || { echo "galaxy-import: no such tarball: $1" >&2; exit 1; }
else
    PATH="$VENV/bin:$PATH" ansible-galaxy collection build --output-path "$WORK/dist" "$ROOT" >"$WORK/build.log" 2>&1 \
        || { cat "$WORK/build.log"; echo "galaxy-import: ansible-galaxy collection build failed" >&2; exit 1; }
    tarball="$(ls "$WORK"/dist/*.tar.gz)"
fi
echo "galaxy-importer $("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("galaxy-importer"))')" \
     "on $(basename "$tarball")"

# It finds flake8, ansible-lint and ansible-doc on the PATH, writes
# importer_result.json into the working directory and ansible's temporary
# files under ansible_local_tmp: keep all of that in $WORK.
rc=0
(cd "$WORK" && PATH="$VENV/bin:$PATH" GALAXY_IMPORTER_CONFIG="$ROOT/scripts/galaxy-importer.cfg" \
    GALAXY_IMPORTER_ANSIBLE_LOCAL_TMP="$WORK/tmp" HOME="$WORK" \
    python -m galaxy_importer.main "$tarball") >"$WORK/import.log" 2>&1 || rc=$?

# Its log has one "LEVEL: message" line per finding (INFO lines carry no level).
grep -E '^(WARNING|ERROR|CRITICAL):' "$WORK/import.log" >"$WORK/findings" || true

if [ "$rc" -ne 0 ] || [ -s "$WORK/findings" ] || ! grep -q '^Importer processing completed successfully' "$WORK/import.log"; then
    cat "$WORK/import.log"
    echo
    [ "$rc" -ne 0 ] && echo "galaxy-import: galaxy-importer exited with $rc"
    if [ -s "$WORK/findings" ]; then
        echo "galaxy-import: $(wc -l <"$WORK/findings") finding(s) fail the check:"
        cat "$WORK/findings"
    fi
    exit 1
fi
grep -E '^(Importing|Linting collection|Importer processing)' "$WORK/import.log"
echo "galaxy-import: no errors and no warnings"
