"""The README as a newcomer uses it.

Static checks (fast): every fenced block of README.md is extracted; every
``ansible-playbook`` command line of a ``sh`` or ``text`` block is parsed by
ansible's own CLI parser (an unknown or abbreviated flag fails), names a
playbook of the repository (``playbooks/<x>.yml`` or
``homelab.pangolin_authentik.<x>``) and the inventory ``inventory/mine`` or
``inventory/example``, passes only ``-e`` variables the role's argument specs
declare for the entry point the playbook runs, and no vault flag (the README's
one vault story is the exported ``ANSIBLE_VAULT_PASSWORD_FILE``). The
``ansible-vault`` and ``ansible-galaxy`` lines are parsed by their parsers too.
Every ``jellyfin_whitelist_*`` name the README mentions, and every variable the
example inventory sets, is declared. Each check is shown to fail on a mutated
copy of the text.

End to end: a copy of the repository as a clone has it (the tracked files of
the working tree), an empty HOME, a bare PATH, both simulators seeded like the
example, and every ``sh`` block of "Setting it up" and after that is not
marked ``<!-- readme-test: skip (reason) -->`` run in order, each with
``bash -euo pipefail`` in the clone, the exported variables carried from one
block to the next. The install block really makes a virtualenv and installs
ansible-core from the package index.
"""

import argparse
import contextlib
import difflib
import functools
import io
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import urllib.request
from collections import namedtuple

import pytest
import yaml

from tests.playbook_env import AUTHENTIK_TOKEN, PANGOLIN_KEY, REPO, readme_key_actions, wait_for
from tests.simulators.authentik import AuthentikSimulator
from tests.simulators.pangolin import PangolinSimulator

README = REPO / "README.md"
ARGUMENT_SPECS = REPO / "roles" / "jellyfin_whitelist" / "meta" / "argument_specs.yml"
EXAMPLE_VARS = REPO / "inventory" / "example" / "group_vars" / "all" / "main.yml"
EXAMPLE_VAULT = REPO / "inventory" / "vault.yml.example"

COLLECTION = "homelab.pangolin_authentik"
ROLE = "jellyfin_whitelist"
INVENTORIES = ("inventory/mine", "inventory/example")
SHELL_LANGS = ("sh", "bash", "shell")
COMMAND_LANGS = SHELL_LANGS + ("text",)

SETUP_HEADING = "Setting it up: from an empty machine to a whitelisted login"
RUN_HEADING = "5. Dry run, run, rerun"
DOCTOR_HEADING = "6. Log in, and ask the doctor"

SKIP_COMMENT = re.compile(r"^<!--\s*readme-test:\s*skip\s*\((?P<reason>[^()]*\S[^()]*)\)\s*-->$")
FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")
HEADING = re.compile(r"^#{1,6}\s+(?P<title>.*?)\s*#*\s*$")
ROLE_VARIABLE = re.compile(r"\bjellyfin_whitelist_[a-z0-9_]*[a-z0-9]\b")

Block = namedtuple("Block", "lang text skip line heading")


# -- the README's blocks ---------------------------------------------------------------------------
def readme_blocks(text):
    """Every fenced block: (language, text, the skip reason of a preceding skip comment, line, heading)."""
    lines = text.splitlines()
    blocks, heading, index = [], None, 0
    while index < len(lines):
        line = lines[index]
        fence = FENCE.match(line)
        if fence:
            mark = fence.group("fence")
            end = index + 1
            while end < len(lines) and not (lines[end].startswith(mark[0] * len(mark))
                                             and not lines[end].strip(mark[0]).strip()):
                end += 1
            if end == len(lines):
                raise ValueError("README.md:%d: the block is never closed" % (index + 1))
            before = [ln.strip() for ln in lines[:index] if ln.strip()]
            skip = SKIP_COMMENT.match(before[-1]) if before else None
            blocks.append(Block(fence.group("lang"), "\n".join(lines[index + 1:end]) + "\n",
                                skip.group("reason").strip() if skip else None, index + 1, heading))
            index = end + 1
            continue
        title = HEADING.match(line)
        if title:
            heading = title.group("title")
        index += 1
    return blocks


def skip_comment_problems(text):
    """A ``readme-test`` comment must be a well-formed skip with a reason, right before a shell block."""
    problems = []
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        if "readme-test" not in line:
            continue
        if not SKIP_COMMENT.match(line.strip()):
            problems.append("README.md:%d: a readme-test comment must read "
                            "'<!-- readme-test: skip (reason) -->': %s" % (number, line.strip()))
            continue
        following = [ln for ln in lines[number:] if ln.strip()]
        fence = FENCE.match(following[0]) if following else None
        if not fence or fence.group("lang") not in SHELL_LANGS:
            problems.append("README.md:%d: a skip comment must stand right before a sh block" % number)
    return problems


def command_lines(block_text):
    """The logical lines of a block (backslash continuations joined)."""
    return [line for line in re.sub(r"\\\n", " ", block_text).splitlines() if line.strip()]


def tokens_of(line):
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


def simple_commands(line):
    """The simple commands of a shell (or crontab) line, without redirections; comments dropped."""
    commands, current, tokens = [], [], iter(tokens_of(line))
    for token in tokens:
        if token in ("&&", "||", ";", "|", "&", "(", ")", ";;"):
            commands.append(current)
            current = []
        elif re.fullmatch(r"[<>]+&?|&>>?", token):
            next(tokens, None)  # the redirection's target
        else:
            current.append(token)
    commands.append(current)
    return [command for command in commands if command]


ANSIBLE_TOOLS = ("ansible-playbook", "ansible-vault", "ansible-galaxy")


def ansible_commands(blocks):
    """(tool, argv, where) of every ansible-playbook / -vault / -galaxy call in the command blocks."""
    found = []
    for block in blocks:
        if block.lang not in COMMAND_LANGS:
            continue
        for offset, line in enumerate(command_lines(block.text)):
            for command in simple_commands(line):
                for position, token in enumerate(command):
                    tool = token.rsplit("/", 1)[-1]
                    if tool in ANSIBLE_TOOLS:
                        found.append((tool, command[position:], "README.md block at line %d (%s): %s"
                                      % (block.line, block.heading, line.strip())))
                        break
    return found


# -- ansible's parsers and the role's specs ----------------------------------------------------
@functools.lru_cache(maxsize=None)
def cli_parser(tool):
    if tool == "ansible-playbook":
        from ansible.cli.playbook import PlaybookCLI as cli_class
    elif tool == "ansible-vault":
        from ansible.cli.vault import VaultCLI as cli_class
    else:
        from ansible.cli.galaxy import GalaxyCLI as cli_class
    cli = cli_class([tool])
    cli.init_parser()  # builds the parser only; ansible's global context is left alone
    return cli.parser


def option_strings(parser):
    """Every option string of a parser and its subcommands' parsers."""
    found = set()
    for action in parser._actions:
        found.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= option_strings(sub)
    return found


def parse_cli(tool, argv):
    """(namespace, problems) of ``argv`` as ``tool``'s own parser reads it."""
    parser = cli_parser(tool)
    problems = []
    known = option_strings(parser)
    for token in argv[1:]:
        name = token.split("=", 1)[0]
        if name.startswith("--") and name not in known:
            problems.append("%s has no option %s (an abbreviation or a misspelling)" % (tool, name))
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            namespace = parser.parse_args(argv[1:])
    except SystemExit:
        message = [ln for ln in errors.getvalue().splitlines() if ln.strip()]
        problems.append("%s rejects the command line: %s" % (tool, message[-1] if message else "(no message)"))
        return None, problems
    return namespace, problems


@functools.lru_cache(maxsize=None)
def argument_specs():
    return yaml.safe_load(ARGUMENT_SPECS.read_text(encoding="utf-8"))["argument_specs"]


def declared_variables(entry_point=None):
    specs = argument_specs()
    points = [entry_point] if entry_point else list(specs)
    names = set()
    for point in points:
        names.update((specs.get(point) or {}).get("options") or {})
    return names


def playbook_file(name):
    """The file of a playbook as the README names it, or None."""
    if name.startswith(COLLECTION + "."):
        path = REPO / "playbooks" / (name[len(COLLECTION) + 1:] + ".yml")
    elif name.startswith("playbooks/") and name.endswith(".yml") and "/" not in name[len("playbooks/"):]:
        path = REPO / name
    else:
        return None
    return path if path.is_file() else None


def role_entry_points(path):
    """The role's entry points a playbook runs (roles: main; import_role/include_role: tasks_from)."""
    def is_role(name):
        return isinstance(name, str) and name.split(".")[-1] == ROLE

    points = []
    for play in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
        for entry in play.get("roles") or []:
            if is_role(entry if isinstance(entry, str) else entry.get("role", entry.get("name"))):
                points.append("main")
        for section in ("pre_tasks", "tasks", "post_tasks"):
            for task in play.get(section) or []:
                for module in ("import_role", "include_role"):
                    for key in (module, "ansible.builtin." + module):
                        if key in task and is_role(task[key].get("name")):
                            points.append(task[key].get("tasks_from", "main"))
    return points


def extra_variables(value):
    """The variable names an ``-e`` value sets, as ansible reads it (key=value, or YAML/JSON)."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.parsing.splitter import parse_kv

    if value.startswith("@"):
        raise ValueError("variables from a file (%s) cannot be checked here" % value)
    if value[:1] in "[{":
        data = DataLoader().load(value)
        if not isinstance(data, dict):
            raise ValueError("%s is not a mapping of variables" % value)
        return list(data)
    return list(parse_kv(value))


def playbook_command_problems(argv, where):
    namespace, problems = parse_cli("ansible-playbook", argv)
    problems = ["%s: %s" % (where, problem) for problem in problems]
    if namespace is None:
        return problems
    if not namespace.inventory:
        problems.append("%s: no -i (the inventory is %s)" % (where, " or ".join(INVENTORIES)))
    for inventory in namespace.inventory or []:
        if inventory.rstrip("/") not in INVENTORIES:
            problems.append("%s: -i %s is neither %s" % (where, inventory, " nor ".join(INVENTORIES)))
    if namespace.ask_vault_pass or namespace.vault_password_files or namespace.vault_ids:
        problems.append("%s: a vault flag; the README's vault password comes from the exported "
                        "ANSIBLE_VAULT_PASSWORD_FILE" % where)
    specs = argument_specs()
    for name in namespace.args:
        path = playbook_file(name)
        if path is None:
            problems.append("%s: no playbook %s (playbooks/<x>.yml, or %s.<x>)" % (where, name, COLLECTION))
            continue
        points = role_entry_points(path)
        if not points:
            problems.append("%s: %s does not run the role %s" % (where, name, ROLE))
        for point in points:
            if point not in specs:
                problems.append("%s: %s runs the role's entry point %s, which has no argument spec"
                                % (where, name, point))
        for value in namespace.extra_vars or []:
            try:
                names = extra_variables(value)
            except Exception as exc:
                problems.append("%s: -e %s: %s" % (where, value, exc))
                continue
            for variable in names:
                for point in points:
                    if variable not in declared_variables(point):
                        problems.append("%s: -e %s is no variable of the role's entry point %s (%s)"
                                        % (where, variable, point, path.name))
    return problems


def vault_flag_problems(tool, namespace, where):
    if namespace is not None and (getattr(namespace, "ask_vault_pass", False)
                                  or getattr(namespace, "vault_password_files", None)
                                  or getattr(namespace, "vault_ids", None)):
        return ["%s: a vault flag; the README's vault password comes from the exported "
                "ANSIBLE_VAULT_PASSWORD_FILE" % where]
    return []


def first_match(pattern, blocks, langs=SHELL_LANGS):
    for block in blocks:
        if block.lang in langs and not block.skip:
            found = re.search(pattern, block.text, re.M)
            if found:
                return found
    return None


def crontab_problems(blocks):
    """The crontab's ansible-playbook and vault password file are the ones the setup made."""
    venv = first_match(r"python3 -m venv (\S+)$", blocks)
    vault = first_match(r"^export ANSIBLE_VAULT_PASSWORD_FILE=(\S+)$", blocks)
    if not (venv and vault and venv.group(1).startswith("~/") and vault.group(1).startswith("~/")):
        return ["the setup makes no ~/ virtualenv (python3 -m venv) or exports no ~/ ANSIBLE_VAULT_PASSWORD_FILE"]
    problems = []
    for block in blocks:
        if block.lang != "text" or "ansible-playbook" not in block.text:
            continue
        where = "README.md block at line %d (%s)" % (block.line, block.heading)
        value = re.search(r"^ANSIBLE_VAULT_PASSWORD_FILE=(\S+)$", block.text, re.M)
        if not value or not value.group(1).endswith(vault.group(1)[1:]):
            problems.append("%s: sets no ANSIBLE_VAULT_PASSWORD_FILE ending like the exported %s"
                            % (where, vault.group(1)))
            continue
        home = value.group(1)[:-len(vault.group(1)[1:])]
        wanted = home + venv.group(1)[1:] + "/bin/ansible-playbook"
        for line in command_lines(block.text):
            for command in simple_commands(line):
                for token in command:
                    if token.endswith("ansible-playbook") and token != wanted:
                        problems.append("%s: runs %s, not the virtualenv's %s" % (where, token, wanted))
    return problems


def preview_problems(blocks, text):
    """Commands shown before the walkthrough are run by the walkthrough too."""
    setup_line = setup_heading_line(text)
    walked = set()
    for block in blocks:
        if block.line > setup_line and block.lang in SHELL_LANGS and not block.skip:
            walked.update(tuple(c) for line in command_lines(block.text) for c in simple_commands(line))
    problems = []
    for block in blocks:
        if block.line < setup_line and block.lang in SHELL_LANGS and not block.skip:
            for line in command_lines(block.text):
                for command in simple_commands(line):
                    if tuple(command) not in walked:
                        problems.append("README.md block at line %d (%s): %s is not run by the walkthrough "
                                        "(mark the block skipped, or make the walkthrough run it)"
                                        % (block.line, block.heading, " ".join(command)))
    return problems


def setup_heading_line(text):
    for number, line in enumerate(text.splitlines(), 1):
        title = HEADING.match(line)
        if title and title.group("title") == SETUP_HEADING:
            return number
    raise AssertionError("README.md has no heading %r" % SETUP_HEADING)


def readme_problems(text):
    """Everything the static checks find wrong with a README text."""
    blocks = readme_blocks(text)
    problems = skip_comment_problems(text)
    for tool, argv, where in ansible_commands(blocks):
        if tool == "ansible-playbook":
            problems += playbook_command_problems(argv, where)
        else:
            namespace, found = parse_cli(tool, argv)
            problems += ["%s: %s" % (where, problem) for problem in found]
            problems += vault_flag_problems(tool, namespace, where)
    declared = declared_variables()
    for name in sorted(set(ROLE_VARIABLE.findall(text)) - declared):
        problems.append("README.md mentions %s, which no entry point of the role declares" % name)
    problems += crontab_problems(blocks)
    problems += preview_problems(blocks, text)
    return problems


def example_inventory_problems(main_text, vault_text):
    """The example inventory sets only variables of the role's main entry point, and its vault the rest."""
    declared = declared_variables("main")
    settings = yaml.safe_load(main_text) or {}
    vault = yaml.safe_load(vault_text) or {}
    problems = ["inventory/example/group_vars/all/main.yml sets %s, which the entry point main does not declare"
                % name for name in sorted(set(settings) - declared)]
    used = re.findall(r"\{\{\s*(vault_\w+)\s*\}\}", json.dumps(settings))  # comments left out
    for name in sorted(set(used) - set(vault)):
        problems.append("inventory/example/group_vars/all/main.yml uses %s, which vault.yml.example does not set"
                        % name)
    return problems


# -- static tests ------------------------------------------------------------------------------
def readme_text():
    return README.read_text(encoding="utf-8")


def test_readme_blocks_are_found():
    blocks = readme_blocks(readme_text())
    assert [b for b in blocks if b.lang in SHELL_LANGS and not b.skip], "the README has no sh block to run"
    assert [b for b in blocks if b.lang == "text" and "ansible-playbook" in b.text], "no crontab block"
    named = {arg for tool, argv, _ in ansible_commands(blocks) if tool == "ansible-playbook" for arg in argv}
    assert {"playbooks/site.yml", "playbooks/doctor.yml", "playbooks/expire.yml",
            "homelab.pangolin_authentik.site"} <= named, named
    skipped = [b for b in blocks if b.skip]
    assert any("make demo" in b.text for b in skipped), "the block running make demo / make test is not skipped"
    assert any("ansible-builder build" in b.text for b in skipped), "the ansible-builder block is not skipped"


def test_readme_commands_and_variables():
    assert readme_problems(readme_text()) == []


def test_example_inventory_variables_are_declared():
    problems = example_inventory_problems(EXAMPLE_VARS.read_text(encoding="utf-8"),
                                          EXAMPLE_VAULT.read_text(encoding="utf-8"))
    assert problems == []


# (what the README says, what a mistake makes of it, what the checker must report)
README_MISTAKES = [
    ("misspelt-flag", "playbooks/site.yml --check --diff   # what would change",
     "playbooks/site.yml --chek --diff   # what would change", r"unrecognized arguments: --chek"),
    ("abbreviated-flag", "-i inventory/mine playbooks/expire.yml --check --diff",
     "-i inventory/mine playbooks/expire.yml --check --dif", r"has no option --dif\b"),
    ("unknown-variable", "-e jellyfin_whitelist_state=absent --check",
     "-e jellyfin_whitelist_sate=absent --check", r"-e jellyfin_whitelist_sate is no variable of .* main"),
    ("variable-of-another-entry-point", "playbooks/expire.yml -e '{\"jellyfin_whitelist_expire_users\"",
     "playbooks/site.yml -e '{\"jellyfin_whitelist_expire_users\"",
     r"-e jellyfin_whitelist_expire_users is no variable of the role's entry point main"),
    ("variable-the-doctor-lacks", "-i inventory/mine playbooks/doctor.yml\n",
     "-i inventory/mine playbooks/doctor.yml -e jellyfin_whitelist_prune=true\n",
     r"-e jellyfin_whitelist_prune is no variable of the role's entry point doctor"),
    ("unknown-json-variable", "[\"bob\"]}'", "[\"bob\"], \"jellyfin_whitelist_expired\": 1}'",
     r"-e jellyfin_whitelist_expired is no variable"),
    ("broken-json", "[\"bob\"]}'", "[\"bob\"]'", r"-e \{\"jellyfin_whitelist_expire_users\": \[\"bob\"\]: \S"),
    ("missing-playbook", "-i inventory/mine playbooks/expire.yml --check --diff",
     "-i inventory/mine playbooks/expiry.yml --check --diff", r"no playbook playbooks/expiry\.yml"),
    ("missing-collection-playbook", "homelab.pangolin_authentik.doctor\n", "homelab.pangolin_authentik.doktor\n",
     r"no playbook homelab\.pangolin_authentik\.doktor"),
    ("other-collection", "inventory/mine homelab.pangolin_authentik.expire\n",
     "inventory/mine community.pangolin.expire\n", r"no playbook community\.pangolin\.expire"),
    ("wrong-inventory", "-i inventory/mine playbooks/doctor.yml\n", "-i inventory/prod playbooks/doctor.yml\n",
     r"-i inventory/prod is neither"),
    ("no-inventory", "ansible-playbook -i inventory/mine homelab.pangolin_authentik.site --check",
     "ansible-playbook homelab.pangolin_authentik.site --check", r"no -i"),
    ("ask-vault-pass", "jellyfin_whitelist_state=absent --check --diff",
     "jellyfin_whitelist_state=absent --check --diff --ask-vault-pass", r"a vault flag"),
    ("vault-password-file-in-crontab", "playbooks/site.yml > /dev/null",
     "playbooks/site.yml --vault-password-file /home/you/vault-pass > /dev/null", r"a vault flag"),
    ("misspelt-flag-in-crontab", "playbooks/expire.yml > /dev/null", "playbooks/expire.yml --chek > /dev/null",
     r"unrecognized arguments: --chek"),
    ("crontab-other-virtualenv", "/home/you/.venvs/jellyfin-whitelist/bin/ansible-playbook -i inventory/mine "
     "playbooks/expire.yml", "/home/you/.venv/bin/ansible-playbook -i inventory/mine playbooks/expire.yml",
     r"runs /home/you/\.venv/bin/ansible-playbook, not the virtualenv's"),
    ("crontab-other-vault-file", "ANSIBLE_VAULT_PASSWORD_FILE=/home/you/.config/jellyfin-whitelist/vault-pass",
     "ANSIBLE_VAULT_PASSWORD_FILE=/home/you/.vault-pass", r"sets no ANSIBLE_VAULT_PASSWORD_FILE ending like"),
    ("misspelt-vault-flag", "ansible-vault encrypt --output", "ansible-vault encrypt --out-file",
     r"ansible-vault (has no option --out-file|rejects)"),
    ("vault-flag-on-ansible-vault", "ansible-vault edit inventory/mine",
     "ansible-vault edit --ask-vault-pass inventory/mine", r"a vault flag"),
    ("misspelt-galaxy-flag", "ansible-galaxy collection install --force .\n",
     "ansible-galaxy collection install --forced .\n", r"ansible-galaxy (has no option --forced|rejects)"),
    ("unknown-variable-in-prose", "jellyfin_whitelist_max_addresses: 2",
     "jellyfin_whitelist_max_adresses: 2", r"mentions jellyfin_whitelist_max_adresses"),
    ("skip-without-reason", "<!-- readme-test: skip (needs your Pangolin) -->", "<!-- readme-test: skip -->",
     r"a readme-test comment must read"),
    ("preview-not-walked", "playbooks/site.yml                  # do it",
     "playbooks/site.yml --tags whitelist # do it", r"--tags whitelist is not run by the walkthrough"),
]


@pytest.mark.parametrize("old, new, expected", [case[1:] for case in README_MISTAKES],
                         ids=[case[0] for case in README_MISTAKES])
def test_readme_checks_catch_mistakes(old, new, expected):
    text = readme_text()
    assert text.count(old) == 1, "the README no longer reads %r exactly once; update the case" % old
    problems = readme_problems(text.replace(old, new))
    assert any(re.search(expected, problem) for problem in problems), problems


INVENTORY_MISTAKES = [
    ("unknown-variable", "jellyfin_whitelist_prune: true", "jellyfin_whitelist_purge: true",
     r"sets jellyfin_whitelist_purge, which the entry point main does not declare"),
    ("doctor-only-variable", "jellyfin_whitelist_prune: true", "jellyfin_whitelist_expire_users: [bob]",
     r"sets jellyfin_whitelist_expire_users"),
    ("vault-variable-missing", "{{ vault_authentik_token }}", "{{ vault_authentik_tokn }}",
     r"uses vault_authentik_tokn, which vault.yml.example does not set"),
]


@pytest.mark.parametrize("old, new, expected", [case[1:] for case in INVENTORY_MISTAKES],
                         ids=[case[0] for case in INVENTORY_MISTAKES])
def test_example_inventory_check_catches_mistakes(old, new, expected):
    text = EXAMPLE_VARS.read_text(encoding="utf-8")
    assert text.count(old) == 1, "the example no longer reads %r exactly once; update the case" % old
    problems = example_inventory_problems(text.replace(old, new), EXAMPLE_VAULT.read_text(encoding="utf-8"))
    assert any(re.search(expected, problem) for problem in problems), problems


# -- the README run end to end -----------------------------------------------------------------
BARE_PATH = "/usr/local/bin:/usr/bin:/bin"
# Reaching the package index from behind a proxy or a private mirror is the machine's business, not
# the README's: these pass through when set, nothing else does.
NETWORK_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
                     "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST", "PIP_CERT", "SSL_CERT_FILE")
ALICE_IP = "203.0.113.10"
STRANGER_IP = "192.0.2.99"
APPS = {"Jellyfin": "jellyfin", "Jellyseerr": "jellyseerr"}  # the example inventory's resources
BLOCK_TIMEOUT = 600

EDITOR_SCRIPT = r'''#!/usr/bin/env python3
"""EDITOR for the README run: fills in the vault and points the inventory at the simulators."""
import json
import re
import sys
from pathlib import Path

VALUES = json.loads(%(values)r)
LOG = %(log)r


def setting(text, name, value):
    new, count = re.subn(r"(?m)^(%%s:[ \t]*)(\"[^\"]*\"|'[^']*'|[^\s#]+)" %% re.escape(name),
                         lambda m: m.group(1) + json.dumps(value), text)
    if count != 1:
        sys.exit("editor: %%s is set %%d times in %%s, not once" %% (name, count, sys.argv[-1]))
    return new


path = Path(sys.argv[-1])
text = path.read_text()
if re.search(r"(?m)^vault_authentik_token:", text):
    kind, names = "vault", ("vault_authentik_token", "vault_pangolin_api_key")
elif path.name == "main.yml":
    kind, names = "main", ("jellyfin_whitelist_authentik_url", "jellyfin_whitelist_pangolin_url")
else:
    sys.exit("editor: does not know what to put into %%s" %% path)
for name in names:
    text = setting(text, name, VALUES[name])
path.write_text(text)
with open(LOG, "a") as log:
    log.write(kind + "\n")
'''


def skip_or_fail(reason):
    """A missing prerequisite skips the test on a developer's machine; in CI it fails."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason + " (CI=true: the README run must not be skipped)")
    pytest.skip(reason)


def bare_environment(home, editor):
    env = {"HOME": str(home), "PATH": BARE_PATH, "EDITOR": str(editor)}
    env.update((name, os.environ[name]) for name in NETWORK_VARIABLES if os.environ.get(name))
    if any(name.lower().endswith("_proxy") and name.lower() != "no_proxy" for name in env):
        # the simulators are on loopback, never behind the proxy
        local = "127.0.0.1,localhost"
        env["NO_PROXY"] = env["no_proxy"] = ",".join(v for v in (env.get("NO_PROXY"), local) if v)
    return env


def check_prerequisites(env):
    """What the README assumes of a machine: git for the clone, python3 3.11-3.13 with venv, the index."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        skip_or_fail("the README run copies the repository's tracked files and needs git and a checkout")
    probe = subprocess.run(["python3", "-c", "import sys, venv, ensurepip; print('%d.%d' % sys.version_info[:2])"],
                           env=env, capture_output=True, text=True)
    if probe.returncode != 0:
        skip_or_fail("python3 on %s cannot make a virtualenv (no venv/ensurepip module; on Debian or Ubuntu: "
                     "apt install python3-venv): %s" % (BARE_PATH, probe.stderr.strip()[-300:]))
    version = tuple(int(part) for part in probe.stdout.strip().split("."))
    if not (3, 11) <= version <= (3, 13):
        skip_or_fail("python3 on %s is %s; the README's controller needs Python 3.11-3.13"
                     % (BARE_PATH, probe.stdout.strip()))
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple/").rstrip("/") + "/pip/"
    try:
        urllib.request.urlopen(index, timeout=20).close()
    except Exception as exc:
        skip_or_fail("the package index (%s) is not reachable: %s" % (index, exc))


def clone_of_working_tree(target):
    """The repository as a clone has it, with the working tree's (possibly uncommitted) contents."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=str(REPO), capture_output=True, check=True).stdout
    target.mkdir()
    for name in filter(None, listed.decode("utf-8").split("\0")):
        source = REPO / name
        if not os.path.lexists(source):  # deleted in the working tree
            continue
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination, follow_symlinks=False)
    return target


def walkthrough_blocks(text):
    """The sh blocks a newcomer runs: from "Setting it up" on, without the skipped ones."""
    setup_line = setup_heading_line(text)
    return [b for b in readme_blocks(text) if b.line > setup_line and b.lang in SHELL_LANGS and not b.skip]


def run_block(block, clone, env, state, workdir, number):
    """Run one block with ``bash -euo pipefail`` in the clone, after the exports of the blocks before it."""
    script = workdir / ("block-%02d.sh" % number)
    script.write_text("\n".join([
        "if [ -f %s ]; then . %s; fi" % (shlex.quote(str(state)), shlex.quote(str(state))),
        "cd %s" % shlex.quote(str(clone)),
        block.text.rstrip("\n"),
        "export -p > %s" % shlex.quote(str(state)),
        "",
    ]))
    # a process group of its own, so that a block that hangs is ended with every process it started
    proc = subprocess.Popen(["/bin/bash", "-euo", "pipefail", str(script)], cwd=str(clone), env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=BLOCK_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail("README.md block at line %d (%s) did not finish within %ds:\n%s\n--- stdout (end)\n%s\n"
                    "--- stderr (end)\n%s" % (block.line, block.heading, BLOCK_TIMEOUT, block.text,
                                               stdout[-4000:], stderr[-4000:]))
    proc = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    if proc.returncode != 0:
        errors = [line for line in (proc.stdout + proc.stderr).splitlines()
                  if re.search(r"\bERROR\b|[Ee]rror\b|fatal:|FAILED!|No such file", line)]
        pytest.fail("README.md block at line %d (%s) failed with exit status %d:\n%s\n--- errors\n%s\n"
                    "--- stdout (end)\n%s\n--- stderr (end)\n%s"
                    % (block.line, block.heading, proc.returncode, block.text, "\n".join(errors[-20:]),
                       proc.stdout[-6000:], proc.stderr[-4000:]))
    return proc


@pytest.fixture
def simulators():
    """Both simulators as a newcomer has them: the apps in Pangolin, an empty authentik with a token."""
    pangolin = PangolinSimulator()
    authentik = AuthentikSimulator(worker="background")
    pangolin.start()
    authentik.start()
    try:
        # the playbook's key: a root key holding exactly the actions the README tells operators to tick
        pangolin.add_api_key(root=True, key=PANGOLIN_KEY, actions=readme_key_actions())
        resources = [pangolin.add_resource("homelab", name, subdomain=sub, full_domain="%s.example.com" % sub)
                     for name, sub in APPS.items()]
        authentik.add_token(AUTHENTIK_TOKEN, superuser=True)  # the inventory makes the household's users and group
        yield pangolin, authentik, resources
    finally:
        pangolin.stop()
        authentik.stop()


def test_readme_walkthrough_from_an_empty_machine(tmp_path, simulators):
    pangolin, authentik, resources = simulators
    home = tmp_path / "home"
    home.mkdir()
    tools = tmp_path / "tools"
    tools.mkdir()
    editor, edits = tools / "editor", tools / "edits.log"
    editor.write_text(EDITOR_SCRIPT % {"log": str(edits), "values": json.dumps({
        "vault_authentik_token": AUTHENTIK_TOKEN, "vault_pangolin_api_key": PANGOLIN_KEY,
        "jellyfin_whitelist_authentik_url": authentik.base_url,
        "jellyfin_whitelist_pangolin_url": pangolin.base_url})})
    editor.chmod(0o755)
    env = bare_environment(home, editor)
    check_prerequisites(env)

    clone = clone_of_working_tree(tmp_path / "pangolin_authentik")
    blocks = walkthrough_blocks((clone / "README.md").read_text(encoding="utf-8"))
    headings = [block.heading for block in blocks]
    assert RUN_HEADING in headings and DOCTOR_HEADING in headings, headings
    assert headings.index(RUN_HEADING) < headings.index(DOCTOR_HEADING), headings

    state = tools / "exports.sh"
    logged_in = doctor_after_login = False
    editor_calls = 0
    for number, block in enumerate(blocks, 1):
        proc = run_block(block, clone, env, state, tools, number)
        output = proc.stdout
        # what the README installs prints no deprecation warning of a dependency
        assert "DeprecationWarning" not in proc.stdout + proc.stderr, (block.line, proc.stderr[-3000:])
        # ansible-vault edit goes on when its editor fails: count the edits that were made
        editor_calls += len(re.findall(r"^\s*(ansible-vault edit|\$\{?EDITOR\b)", block.text, re.M))
        made = edits.read_text().split() if edits.exists() else []
        assert len(made) == editor_calls, ("README.md block at line %d (%s): the EDITOR made %d of %d edits:\n%s"
                                           % (block.line, block.heading, len(made), editor_calls,
                                              proc.stderr[-3000:]))
        if block.heading == RUN_HEADING:
            # dry run, run, rerun: the first predicts, the last changes nothing
            assert "would create" in output, output[-4000:]
            recaps = re.findall(r"^localhost\s+:.*\bchanged=(\d+)", output, re.M)
            assert len(recaps) == 3 and recaps[-1] == "0", output[-4000:]
            for resource_id in resources:
                assert pangolin.apply_rules_for(resource_id, ALICE_IP) != "ACCEPT"
            authentik.login("alice", ALICE_IP)
            assert authentik.wait_idle(60), "authentik's worker did not drain after alice's login"
            wait_for(lambda: all(pangolin.apply_rules_for(r, ALICE_IP) == "ACCEPT" for r in resources),
                     timeout=30, what="Pangolin's gatekeeper to accept alice's address on both resources")
            for resource_id in resources:
                assert pangolin.apply_rules_for(resource_id, STRANGER_IP) != "ACCEPT"
            logged_in = True
        if block.heading == DOCTOR_HEADING and logged_in:
            doctor_after_login = True
    assert logged_in and doctor_after_login

    # the EDITOR filled in the vault and the two URLs, and nothing else changed
    assert edits.read_text().split() == ["vault", "main"]
    inventory = clone / "inventory" / "mine" / "group_vars" / "all"
    assert (inventory / "vault.yml").read_text().startswith("$ANSIBLE_VAULT;")
    example = (clone / "inventory" / "example" / "group_vars" / "all" / "main.yml").read_text().splitlines()
    changed = [line for line in difflib.unified_diff(example, (inventory / "main.yml").read_text().splitlines(),
                                                     lineterm="", n=0)
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert sorted(line[1:].split(":")[0] for line in changed) == sorted(
        ["jellyfin_whitelist_authentik_url", "jellyfin_whitelist_pangolin_url"] * 2), changed
