#!/usr/bin/env bash
# Check the collection the way Galaxy does on upload: build the tarball, run
# galaxy-importer on it (settings in scripts/galaxy-importer.cfg: flake8 and
# ansible-lint on, ansible-test off) and fail on any error or warning it logs.
#
# The one exception: flake8 findings listed, line for line, in
# scripts/galaxy-importer-known.txt are reported but do not fail the check
# (findings in plugins/ and roles/ that wait for a rewrite of those files).
# Anything not listed fails, and so does any error.
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
# Only flake8 findings in plugins/ and roles/ may be listed as known.
grep -E '^WARNING: (plugins|roles)/[^ :]+:[0-9]+:[0-9]+: [EFWC][0-9]+ ' "$ROOT/scripts/galaxy-importer-known.txt" \
    2>/dev/null | sort -u >"$WORK/known" || true
grep -vxF -f "$WORK/known" "$WORK/findings" >"$WORK/new" || true
grep -xF -f "$WORK/known" "$WORK/findings" >"$WORK/tolerated" || true
grep -vxF -f "$WORK/findings" "$WORK/known" >"$WORK/stale" || true

status=0
if [ "$rc" -ne 0 ] || [ -s "$WORK/new" ] || ! grep -q '^Importer processing completed successfully' "$WORK/import.log"; then
    status=1
    cat "$WORK/import.log"
    echo
    [ "$rc" -ne 0 ] && echo "galaxy-import: galaxy-importer exited with $rc"
else
    grep -E '^(Importing|Linting collection|Importer processing)' "$WORK/import.log"
fi
if [ -s "$WORK/new" ]; then
    echo "galaxy-import: $(wc -l <"$WORK/new") finding(s) that fail the check:"
    cat "$WORK/new"
fi
if [ -s "$WORK/tolerated" ]; then
    echo "galaxy-import: $(wc -l <"$WORK/tolerated") known finding(s) listed in scripts/galaxy-importer-known.txt, still to fix:"
    cat "$WORK/tolerated"
fi
if [ -s "$WORK/stale" ]; then
    echo "galaxy-import: no longer reported, remove from scripts/galaxy-importer-known.txt:"
    cat "$WORK/stale"
fi
[ "$status" -eq 0 ] && echo "galaxy-import: no errors and no unlisted warnings"
exit "$status"
