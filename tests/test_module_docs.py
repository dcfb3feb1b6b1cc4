"""Every key a module returns is documented in its RETURN, and every module names its action group.

Each module runs once for real against the simulators; the keys of its result
(and of the entries of its documented lists) must all appear in its RETURN block.
Every value the whitelist modules return has a sample of its documented type,
naming only documented keys.
"""

import importlib

import pytest
import yaml

from tests.module_harness import PACKAGE, run_module
from tests.playbook_env import AUTHENTIK_TOKEN, PlaybookEnv

# What Ansible itself adds to every result.
ANSIBLE_KEYS = {"changed", "failed", "invocation", "warnings", "deprecations", "diff", "skipped", "_ansible_no_log"}


def documented(name):
    module = importlib.import_module(PACKAGE + name)
    return yaml.safe_load(module.RETURN) or {}, yaml.safe_load(module.DOCUMENTATION)


def undocumented(result, returns, where=""):
    """Keys of ``result`` missing from ``returns`` (recursing into documented dicts and lists of dicts)."""
    missing = []
    for key, value in result.items():
        if where == "" and key in ANSIBLE_KEYS:
            continue
        spec = returns.get(key)
        if spec is None:
            missing.append(where + key)
            continue
        contains = spec.get("contains")
        if not contains:
            continue
        items = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
        for item in items:
            if isinstance(item, dict):
                missing.extend(undocumented(item, contains, where + key + "."))
    return sorted(set(missing))


@pytest.fixture(scope="module")
def results():
    with PlaybookEnv(users=2) as env:
        p = dict(pangolin_url=env.pangolin.base_url, pangolin_api_key=env.pangolin_key, retries=0)
        a = dict(authentik_url=env.authentik.base_url, authentik_token=AUTHENTIK_TOKEN, retries=0)
        rid = env.resource_id
        users = [{"username": u} for u in env.usernames]
        env.pangolin.add_idp("authentik")
        env.authentik.add_group("jellyfin")
        calls = [
            ("pangolin_resource", dict(p, resource_id=rid, apply_rules=True)),
            ("pangolin_rule", dict(p, resource_id=rid, priority=10, match="CIDR", value="192.168.1.0/24")),
            ("pangolin_resource_info", dict(p, org_id="homelab", name="Jellyfin")),
            ("authentik_org_policy", dict(p, idp_name="authentik", org_id="homelab", role="Member",
                                          org_mapping_group="jellyfin", auto_provision=True)),
            ("authentik_group", dict(a, name="viewers")),
            ("authentik_user", dict(a, username="carol", groups=["viewers"])),
            ("authentik_user_info", dict(a, usernames=["carol"])),
            ("authentik_webhook_mapping", dict(a, name="body", template="pangolin_rule_body", priority=10)),
            ("authentik_notification_transport", dict(a, name="t", webhook_url=env.pangolin.base_url + "/v1/x",
                                                      body_mapping="body")),
            ("authentik_notification_rule", dict(a, name="r", transports=["t"], login_of_user="carol")),
            ("login_ip_whitelist", dict(p, **dict(a, resource_id=rid, users=users, webhook_api_key=env.webhook_key,
                                                  max_addresses=2))),
            ("login_ip_whitelist_info", dict(p, **dict(a, resource_id=rid, users=users, max_addresses=2))),
            ("login_ip_whitelist_expire", dict(p, **dict(a, resource_id=rid, users=users, max_addresses=2))),
        ]
        env.login("user000", "203.0.113.4")
        found = {}
        for name, args in calls:
            result = run_module(name, args, diff=True)
            assert not result.get("failed"), (name, result.get("msg"))
            found[name] = result
        yield found


MODULES = ["pangolin_resource", "pangolin_rule", "pangolin_resource_info", "authentik_org_policy", "authentik_group",
           "authentik_user", "authentik_user_info", "authentik_webhook_mapping", "authentik_notification_transport",
           "authentik_notification_rule", "login_ip_whitelist", "login_ip_whitelist_info",
           "login_ip_whitelist_expire"]


@pytest.mark.parametrize("name", MODULES)
def test_every_returned_key_is_documented(results, name):
    returns, _doc = documented(name)
    assert undocumented(results[name], returns) == []


@pytest.mark.parametrize("name", MODULES)
def test_every_module_names_its_action_group(name):
    _returns, doc = documented(name)
    runtime = yaml.safe_load(open(importlib.import_module(PACKAGE + name).__file__.rsplit("/plugins/", 1)[0] +
                                  "/meta/runtime.yml"))
    groups = sorted("homelab.pangolin_authentik." + g for g, members in runtime["action_groups"].items()
                    if name in members)
    fragments = [f for f in doc.get("extends_documentation_fragment") or []
                 if f.startswith("homelab.pangolin_authentik.connection.")]
    from ansible_collections.homelab.pangolin_authentik.plugins.doc_fragments.connection import ModuleDocFragment
    declared = [yaml.safe_load(getattr(ModuleDocFragment, f.rsplit(".", 1)[1])).get("attributes", {})
                .get("action_group") for f in fragments]
    declared = [d for d in declared if d]
    assert groups and len(declared) == 1, (name, groups, fragments)
    assert sorted(declared[0]["membership"]) == groups, (name, fragments, declared[0])


WHITELIST_MODULES = ["login_ip_whitelist", "login_ip_whitelist_info", "login_ip_whitelist_expire"]
TYPES = {"float": float, "str": str, "int": int, "bool": bool, "list": list, "dict": dict}


def sample_problems(returns, where=""):
    """Keys without a sample (a key with ``contains`` may leave it to its sub-keys), and samples of the wrong
    type or, for a dict or a list of dicts, with keys ``contains`` does not document."""
    problems = []
    for key, spec in returns.items():
        contains = spec.get("contains")
        if contains:
            problems.extend(sample_problems(contains, where + key + "."))
        if "sample" not in spec:
            if not contains:
                problems.append("%s%s: no sample" % (where, key))
            continue
        sample, kind = spec["sample"], TYPES[spec["type"]]
        values = sample if kind is list and isinstance(sample, list) else [sample]
        element = TYPES.get(spec.get("elements")) if kind is list else kind
        if not isinstance(sample, kind) or any(isinstance(v, bool) is not (element is bool) or
                                               (element and not isinstance(v, element)) for v in values):
            wanted = spec["type"] + (" of %s" % spec["elements"] if kind is list and element else "")
            problems.append("%s%s: sample %r is not a %s" % (where, key, sample, wanted))
        elif contains:
            problems.extend("%s%s: sample has undocumented key %s" % (where, key, missing)
                            for missing in undocumented({key: sample}, {key: spec}))
    return problems


@pytest.mark.parametrize("name", WHITELIST_MODULES)
def test_every_value_a_whitelist_module_returns_has_a_sample(name):
    returns, _doc = documented(name)
    assert sample_problems(returns) == []


def test_the_sample_check_finds_what_is_missing_or_wrong():
    returns = {"a": {"type": "int", "sample": "3"}, "b": {"type": "str"},
               "c": {"type": "list", "elements": "dict", "sample": [{"x": 1, "y": 2}],
                     "contains": {"x": {"type": "int", "sample": 1}}},
               "d": {"type": "bool", "sample": 0}, "e": {"type": "list", "elements": "int", "sample": [1, True]}}
    assert sample_problems(returns) == ["a: sample '3' is not a int", "b: no sample",
                                        "c: sample has undocumented key c.y", "d: sample 0 is not a bool",
                                        "e: sample [1, True] is not a list of int"]


def test_every_module_renders_with_its_fragments_as_ansible_doc_shows_it():
    """ansible-doc merges each module's documentation with its fragments; a fragment that is no valid YAML, or that
    defines an option twice over, breaks every module that uses it."""
    import glob
    import json
    import os
    import subprocess
    import sys

    from tests.playbook_env import COLLECTIONS, REPO, ensure_collection_link

    ensure_collection_link()
    names = sorted(os.path.basename(p)[:-3] for p in glob.glob(str(REPO / "plugins" / "modules" / "*.py")))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-doc"), "--json"] +
                          ["homelab.pangolin_authentik." + n for n in names], capture_output=True, text=True,
                          env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS)), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    docs = json.loads(proc.stdout)
    assert sorted(docs) == ["homelab.pangolin_authentik." + n for n in names]
    for name, found in docs.items():
        options = found["doc"].get("options") or {}
        assert options, name
        if name.split(".")[-1] != "role_variables":
            assert "validate_certs" in options and found["doc"]["attributes"]["check_mode"]["support"], name
