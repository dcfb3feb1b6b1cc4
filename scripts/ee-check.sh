#!/usr/bin/env bash
# Check that the built collection works as an execution environment dependency
# (AWX / Automation Platform images are built with ansible-builder):
#
# 1. build the collection tarball (or take the one given);
# 2. write an EE definition (version 3) that installs that tarball as a galaxy
#    requirement of type file, run `ansible-builder create` into a temporary
#    context and check the context holds the tarball and a Containerfile;
# 3. install the tarball with `ansible-galaxy collection install -p` and run
#    `ansible-builder introspect` on it, as the image build does: the
#    collection's Python requirements (meta/execution-environment.yml ->
#    requirements.txt) must come out, with requests among them.
#
#   scripts/ee-check.sh [TARBALL]
#
# Uses .venv's ansible-galaxy and .venv-builder (scripts/setup-venv.sh main,
# builder). KEEP_WORK=1 leaves the temporary directory for a look.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILDER_VENV="$ROOT/.venv-builder"
MAIN_VENV="$ROOT/.venv"
bash "$ROOT/scripts/setup-venv.sh" builder || exit 1
bash "$ROOT/scripts/setup-venv.sh" main || exit 1

WORK="$(mktemp -d)"
trap '[ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"' EXIT
fail() { echo "ee-check: $*" >&2; exit 1; }
run() {  # run LOG COMMAND...: quiet unless it fails
    local log="$WORK/$1.log"
    shift
    "$@" >"$log" 2>&1 || { cat "$log"; fail "failed: $*"; }
}

echo "$("$BUILDER_VENV/bin/ansible-builder" --version 2>/dev/null | sed 's/^/ansible-builder /')," \
     "$("$MAIN_VENV/bin/ansible-galaxy" --version 2>/dev/null | sed -n 1p)"

# 1. the tarball
mkdir -p "$WORK/ee/collections"
if [ -n "${1:-}" ]; then
    tarball="$1"
    [ -f "$tarball" ] || fail "no such tarball: $1"
else
    run build "$MAIN_VENV/bin/ansible-galaxy" collection build --output-path "$WORK/dist" "$ROOT"
    tarball="$(ls "$WORK"/dist/*.tar.gz)"
fi
name="$(basename "$tarball")"
echo "collection: $name"

# 2. an EE definition using it, and its build context
cp "$tarball" "$WORK/ee/collections/"
cat >"$WORK/ee/execution-environment.yml" <<YAML
---
version: 3
images:
  base_image:
    name: ghcr.io/ansible-community/community-ee-minimal:latest
dependencies:
  galaxy:
    collections:
      # the context's _build/ is the image build's working directory
      - name: collections/$name
        type: file
additional_build_files:
  - src: collections/$name
    dest: collections
YAML
run create "$BUILDER_VENV/bin/ansible-builder" create -f "$WORK/ee/execution-environment.yml" \
    -c "$WORK/context" --output-filename Containerfile
[ -f "$WORK/context/Containerfile" ] || fail "ansible-builder create wrote no Containerfile"
cmp -s "$tarball" "$WORK/context/_build/collections/$name" \
    || fail "the build context does not hold the collection tarball (context/_build/collections/$name)"
grep -q "collections/$name" "$WORK/context/_build/requirements.yml" \
    || fail "the context's galaxy requirements do not name the tarball"
grep -q 'ansible-galaxy collection install' "$WORK/context/Containerfile" \
    || fail "the Containerfile does not install the galaxy requirements"
echo "context: Containerfile and _build/collections/$name, installed by $(grep -c 'ansible-galaxy' "$WORK/context/Containerfile") ansible-galaxy step(s)"

# 3. introspection of the installed collection
run install "$MAIN_VENV/bin/ansible-galaxy" collection install --offline -p "$WORK/installed" "$tarball"
"$BUILDER_VENV/bin/ansible-builder" introspect "$WORK/installed" --write-pip "$WORK/pip.txt" \
    >"$WORK/introspect.log" 2>&1 || { cat "$WORK/introspect.log"; fail "ansible-builder introspect failed"; }
cat "$WORK/introspect.log"
"$BUILDER_VENV/bin/python" - "$WORK/introspect.log" <<'PY' || fail "requests is not among the collection's Python requirements"
import sys
import yaml

text = open(sys.argv[1]).read()
data = yaml.safe_load(text[text.index("---"):])
reqs = [line.split("#")[0].strip() for line in data.get("python") or []]
ours = [line for line in data.get("python") or [] if "homelab.pangolin_authentik" in line]
sys.exit(0 if any(r.split(">")[0].split("=")[0].split("<")[0].strip() == "requests" for r in reqs) and ours else 1)
PY
echo "ee-check: the context holds the tarball and a Containerfile; introspection finds requests"
