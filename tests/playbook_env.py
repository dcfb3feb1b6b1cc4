"""Both simulators plus a real ``ansible-playbook`` run of ``playbooks/site.yml``.

Shared by the end-to-end tests, the benchmark and the demo: seed N users,
write an inventory pointing at the simulators, run the playbook (optionally
in check/diff mode or at -vvv) and collect what it printed and what it sent.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from tests.simulators.authentik import AuthentikSimulator
from tests.simulators.pangolin import PangolinSimulator

REPO = Path(__file__).resolve().parents[1]
COLLECTIONS = REPO / "tests" / ".collections"
AUTHENTIK_TOKEN = "ak-test-token-7c1d2f0b9e8a4c6d"
PANGOLIN_KEY = "rootkey00000001.s3cr3tpangolinrootkeyvalue000000000000000"
WEBHOOK_KEY = "rulekey00000001.s3cr3tpangolinwebhookkeyvalue00000000000"


def readme_key_actions():
    """The actions the README tells operators to give the playbook's Pangolin key: the tests use exactly these."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("<!-- playbook-key-actions")
    end = text.index("<!-- /playbook-key-actions -->")
    actions = sorted(set(re.findall(r"`([a-z][A-Za-z]+)`", text[start:end])))
    assert actions, "the README lists no action for the playbook's key"
    return actions


def ensure_collection_link():
    link = COLLECTIONS / "ansible_collections" / "homelab" / "pangolin_authentik"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        try:
            link.symlink_to(REPO, target_is_directory=True)
        except FileExistsError:
            pass


def module_args(env, **extra):
    """The arguments of a whitelist module call on ``env``'s simulators, every user of ``env`` listed."""
    args = dict(pangolin_url=env.pangolin.base_url, pangolin_api_key=env.pangolin_key, retries=0,
                authentik_url=env.authentik.base_url, authentik_token=AUTHENTIK_TOKEN, resource_id=env.resource_id,
                users=[{"username": u} for u in env.usernames])
    args.update(extra)
    return args


def wait_for(condition, timeout=30.0, what="the condition"):
    """Poll ``condition`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(0.01)


class PlaybookEnv(object):
    """A Pangolin and an authentik simulator, seeded for the Jellyfin setup."""

    def __init__(self, users=0, authentik_version="2026.5.0-rc1", workdir=None, worker="background",
                 pangolin_pki=None, authentik_pki=None, **authentik):
        """``pangolin_pki`` / ``authentik_pki`` (``tests.pki.make_pki``) serve that simulator over HTTPS."""
        ensure_collection_link()
        self.pangolin = PangolinSimulator()
        # authentik's worker runs in the background, as the real one: deliveries come later, and
        # tests wait for them (wait_for, wait_delivered), never for a fixed time.
        self.authentik = AuthentikSimulator(version=authentik_version, worker=worker, **authentik)
        for simulator, pki in ((self.pangolin, pangolin_pki), (self.authentik, authentik_pki)):
            simulator.start(certfile=pki and pki["cert"], keyfile=pki and pki["key"])
        self.pangolin_key = self.pangolin.add_api_key(root=True, key=PANGOLIN_KEY, actions=readme_key_actions())
        self.webhook_key = self.pangolin.add_api_key(org_id="homelab", actions=["updateResourceRule"],
                                                     key=WEBHOOK_KEY)
        self.authentik.add_token(AUTHENTIK_TOKEN, superuser=True)
        self.resource_id = self.pangolin.add_resource("homelab", "Jellyfin", subdomain="jellyfin",
                                                      full_domain="jellyfin.example.com")
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="site-"))
        self.usernames = []
        for index in range(users):
            self.add_user("user%03d" % index)

    def add_user(self, username, **kwargs):
        self.authentik.add_user(username, name=username.title(), email="%s@example.com" % username, **kwargs)
        self.usernames.append(username)
        return username

    def close(self):
        self.pangolin.stop()
        self.authentik.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- inventory -----------------------------------------------------------
    def inventory(self, users=None, **overrides):
        """Write an inventory like the example one, pointing at the simulators."""
        data = {
            "jellyfin_whitelist_authentik_url": self.authentik.base_url,
            "jellyfin_whitelist_authentik_token": AUTHENTIK_TOKEN,
            "jellyfin_whitelist_pangolin_url": self.pangolin.base_url,
            "jellyfin_whitelist_pangolin_api_key": self.pangolin_key,
            "jellyfin_whitelist_resource": "jellyfin.example.com",
            "jellyfin_whitelist_org_id": "homelab",
            "jellyfin_whitelist_webhook_api_key": self.webhook_key,
            "jellyfin_whitelist_users": [{"username": u} for u in self.usernames] if users is None else users,
        }
        data.update(overrides)
        inventory = self.workdir / "inventory"
        (inventory / "group_vars" / "all").mkdir(parents=True, exist_ok=True)
        (inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
        (inventory / "group_vars" / "all" / "main.yml").write_text(yaml.safe_dump(data, sort_keys=False))
        return inventory

    @staticmethod
    def inventory_data(inventory):
        return yaml.safe_load((inventory / "group_vars" / "all" / "main.yml").read_text())

    @staticmethod
    def write_inventory(inventory, data):
        (inventory / "group_vars" / "all" / "main.yml").write_text(yaml.safe_dump(data, sort_keys=False))

    # -- running -------------------------------------------------------------
    def run(self, *args, inventory=None, check=False, diff=False, verbosity=0, stdout_callback="json_results",
            env=None, playbook="site.yml", collections=None):
        """Run a playbook (site.yml by default); returns (returncode, parsed JSON or None, raw stdout, raw stderr).

        With ``collections`` (a collections path where the collection is installed) the playbook is run
        by its name as collection content, ``homelab.pangolin_authentik.<name>``, as from Galaxy.
        """
        inventory = inventory or self.inventory()
        target = ("homelab.pangolin_authentik." + playbook[:-len(".yml")] if collections
                  else str(REPO / "playbooks" / playbook))
        command = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(inventory), target]
        if check:
            command.append("--check")
        if diff:
            command.append("--diff")
        if verbosity:
            command.append("-" + "v" * verbosity)
        command.extend(args)
        full_env = dict(os.environ)
        full_env.update({
            "ANSIBLE_COLLECTIONS_PATH": str(collections or COLLECTIONS),
            "ANSIBLE_STDOUT_CALLBACK": stdout_callback,
            "ANSIBLE_CALLBACK_PLUGINS": str(REPO / "tests" / "callback_plugins"),
            "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_LOCALHOST_WARNING": "0",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
            "ANSIBLE_LOCAL_TEMP": str(self.workdir / "tmp"),
            "ANSIBLE_HOME": str(self.workdir / "home"),
        })
        for name in ("AUTHENTIK_URL", "AUTHENTIK_TOKEN", "PANGOLIN_URL", "PANGOLIN_API_KEY"):
            full_env.pop(name, None)
        full_env.update(env or {})
        proc = subprocess.run(command, capture_output=True, text=True, env=full_env,
                              cwd=str(self.workdir if collections else REPO), timeout=600)
        parsed = None
        if stdout_callback == "json_results":
            try:
                parsed = json.loads(proc.stdout[proc.stdout.index("{"):])
            except ValueError:
                parsed = None
        return proc.returncode, parsed, proc.stdout, proc.stderr

    @staticmethod
    def playbook_path(name):
        """Where a playbook of the repository is (as the role names it in a pasteable command)."""
        return str(REPO / "playbooks" / name)

    # -- reading results -----------------------------------------------------
    @staticmethod
    def task_results(parsed, name_part):
        """The localhost result of every task whose name contains ``name_part``."""
        found = []
        for play in (parsed or {}).get("plays", []):
            for task in play.get("tasks", []):
                if name_part in task["task"]["name"]:
                    found.append(task["hosts"].get("localhost"))
        return found

    @staticmethod
    def failure(parsed):
        """(task name, result) of the task that failed, or (None, None)."""
        for play in (parsed or {}).get("plays", []):
            for task in play.get("tasks", []):
                result = task["hosts"].get("localhost") or {}
                if result.get("failed"):
                    return task["task"]["name"], result
        return None, None

    @staticmethod
    def stats(parsed):
        return (parsed or {}).get("stats", {}).get("localhost", {})

    def whitelist_users(self, parsed):
        results = self.task_results(parsed, "login → webhook → Pangolin rule chain")
        return dict((u["username"], u) for u in results[-1]["users"]) if results and results[-1] else {}

    def slot_name(self, username, slot=1, instance=None):
        return "jellyfin-whitelist-%s/%s/%d" % (instance or "resource-%d" % self.resource_id, username, slot)

    def rule_of(self, username, slot=1, instance=None):
        """The Pangolin rule the user's transport (of ``slot``) points at, read through the simulator."""
        name = self.slot_name(username, slot, instance)
        transport = [t for t in self.authentik.transports.values() if t.get("name") == name]
        if not transport:
            return None
        resource_id, rule_id = [int(x) for x in transport[0]["webhook_url"].rstrip("/").split("/")[-3::2]]
        rules = [r for r in self.pangolin.rules(resource_id) if r["ruleId"] == rule_id]
        return rules[0] if rules else None

    def addresses_of(self, username, instance=None):
        """The values of every rule of the user, slot by slot (None for a missing rule)."""
        values = []
        for slot in range(1, 21):
            if not any(t.get("name") == self.slot_name(username, slot, instance)
                       for t in self.authentik.transports.values()):
                return values
            rule = self.rule_of(username, slot, instance)
            values.append(rule["value"] if rule else None)
        return values

    def wait_for(self, condition, timeout=30.0, what="the condition"):
        """Wait until ``condition()`` is true (the worker delivers in the background)."""
        return wait_for(condition, timeout, what)

    def login(self, username, client_ip, wait=True, **kwargs):
        """Log a user in; with ``wait`` until authentik's worker has delivered everything it queued."""
        event = self.authentik.login(username, client_ip, **kwargs)
        if wait:
            assert self.authentik.wait_idle(60), "authentik's worker did not drain"
        return event

    def writes(self):
        return self.pangolin.writes() + self.authentik.writes()
