"""The webhook key the collection makes: least privilege, kept, rotated, never shown.

Runs ``login_ip_whitelist`` in-process with ``manage_webhook_key`` against both
simulators; logins go through authentik's pipeline to Pangolin with whatever
key the headers mapping carries, so "the mapping works" means a real 200 from
Pangolin's key check.
"""

import json
import time

import pytest

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._pangolin import client as pangolin_utils
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.secrets import REDACTED
from tests.module_harness import run_module
from tests.playbook_env import AUTHENTIK_TOKEN, PlaybookEnv

HEAD = "jellyfin-whitelist-resource-1"  # the deployment of the fixture's one resource
KEY_NAME = HEAD + "/webhook"
HEADERS = HEAD + "/headers"


@pytest.fixture
def env():
    with PlaybookEnv(users=2) as environment:
        assert environment.resource_id == 1
        yield environment


def args(env, **extra):
    base = dict(pangolin_url=env.pangolin.base_url, pangolin_api_key=env.pangolin_key, retries=0,
                authentik_url=env.authentik.base_url, authentik_token=AUTHENTIK_TOKEN,
                resource="jellyfin.example.com", org_id="homelab", manage_webhook_key=True,
                users=[{"username": u} for u in env.usernames])
    base.update(extra)
    return base


def ok(result):
    assert not result.get("failed"), result.get("msg")
    return result


def our_keys(env):
    """{key id: key} of the org keys carrying the collection's name."""
    return dict((key_id, key) for key_id, key in env.pangolin.api_keys.items()
                if key.get("orgId") == "homelab" and not key.get("root") and key.get("name") == KEY_NAME)


def mapping_bearer(env):
    mapping = [m for m in env.authentik.mappings.values() if m["name"] == HEADERS][0]
    for key_id, key in env.pangolin.api_keys.items():
        bearer = "%s.%s" % (key_id, key["secret"])
        if bearer in mapping["expression"]:
            return bearer
    return None


def assert_never_shown(env, *results):
    secrets = [k["secret"] for k in env.pangolin.api_keys.values()]
    for result in results:
        text = json.dumps(result)
        for secret in secrets:
            assert secret not in text


def test_key_made_with_only_update_rule_and_logins_work(env):
    first = ok(run_module("login_ip_whitelist", args(env), diff=True))
    keys = our_keys(env)
    assert len(keys) == 1
    (key_id, key), = keys.items()
    assert key["actions"] == {"updateResourceRule"}
    assert mapping_bearer(env).startswith(key_id + ".")
    env.login("user000", "203.0.113.10")
    assert env.rule_of("user000")["value"] == "203.0.113.10"
    assert [d["status"] for d in env.authentik.deliveries] == [200, 200]  # both transports of the group
    # The key can do nothing else: listing or creating rules is refused.
    import requests
    bearer = {"Authorization": "Bearer " + mapping_bearer(env)}
    listing = requests.get("%s/v1/resource/%d/rules" % (env.pangolin.base_url, env.resource_id), headers=bearer)
    assert listing.status_code == 403
    assert_never_shown(env, first)
    assert any(d["after_header"].startswith("API key") for d in first["diff"])


def test_rerun_keeps_the_key_without_writes(env):
    ok(run_module("login_ip_whitelist", args(env)))
    before = set(our_keys(env))
    env.pangolin.reset_log()
    env.authentik.reset_log()
    again = ok(run_module("login_ip_whitelist", args(env), diff=True))
    assert again["changed"] is False
    assert env.writes() == []
    assert set(our_keys(env)) == before
    assert_never_shown(env, again)
    # The check reads the key list and the key's actions, nothing that could hold a secret.
    paths = [e.path for e in env.pangolin.log if "api-key" in e.path]
    assert paths and all(e.method == "GET" for e in env.pangolin.log if "api-key" in e.path)


def test_extra_actions_are_taken_away(env):
    ok(run_module("login_ip_whitelist", args(env)))
    (key_id, key), = our_keys(env).items()
    key["actions"] = {"updateResourceRule", "deleteResourceRule", "listResourceRules"}
    result = ok(run_module("login_ip_whitelist", args(env)))
    assert result["changed"]
    assert our_keys(env)[key_id]["actions"] == {"updateResourceRule"}
    assert mapping_bearer(env).startswith(key_id + ".")


def test_a_key_deleted_in_pangolin_is_replaced(env):
    ok(run_module("login_ip_whitelist", args(env)))
    (old_id, _), = our_keys(env).items()
    del env.pangolin.api_keys[old_id]
    ok(run_module("login_ip_whitelist", args(env)))
    (new_id, key), = our_keys(env).items()
    assert new_id != old_id and key["actions"] == {"updateResourceRule"}
    env.login("user001", "198.51.100.20")
    assert env.rule_of("user001")["value"] == "198.51.100.20"


def test_switching_from_a_given_key_to_a_managed_one(env):
    ok(run_module("login_ip_whitelist", dict(args(env, manage_webhook_key=False), webhook_api_key=env.webhook_key)))
    assert mapping_bearer(env) == env.webhook_key
    ok(run_module("login_ip_whitelist", args(env)))
    (key_id, _), = our_keys(env).items()
    assert mapping_bearer(env).startswith(key_id + ".")
    # The operator's own key is not the collection's to change or delete.
    assert env.pangolin.api_keys[env.webhook_key.split(".")[0]]["actions"] == {"updateResourceRule"}


def test_rotation_keeps_logins_working_at_every_step(env, monkeypatch):
    ok(run_module("login_ip_whitelist", args(env)))
    (old_id, _), = our_keys(env).items()
    steps = []
    create, delete = pangolin_utils.PangolinClient.create_api_key, pangolin_utils.PangolinClient.delete_api_key

    def login_then(original, address):
        def wrapped(self, *a, **kw):
            env.login("user000", address)
            steps.append((original.__name__, env.rule_of("user000")["value"]))
            return original(self, *a, **kw)
        return wrapped

    # A login just before the new key exists, and one after the mapping switched but before the old key goes.
    monkeypatch.setattr(pangolin_utils.PangolinClient, "create_api_key", login_then(create, "203.0.113.1"))
    monkeypatch.setattr(pangolin_utils.PangolinClient, "delete_api_key", login_then(delete, "203.0.113.2"))
    result = ok(run_module("login_ip_whitelist", args(env, rotate_webhook_key=True), diff=True))
    assert result["changed"]
    assert steps == [("create_api_key", "203.0.113.1"), ("delete_api_key", "203.0.113.2")]
    keys = our_keys(env)
    assert len(keys) == 1 and old_id not in keys
    new_id = list(keys)[0]
    assert mapping_bearer(env).startswith(new_id + ".")
    monkeypatch.undo()
    env.login("user000", "203.0.113.3")
    assert env.rule_of("user000")["value"] == "203.0.113.3"
    assert_never_shown(env, result)


def test_check_mode_shows_the_new_key_redacted_and_writes_nothing(env):
    env.pangolin.reset_log()
    result = ok(run_module("login_ip_whitelist", args(env), check=True, diff=True))
    assert result["changed"] and env.writes() == []
    headers = [d for d in result["diff"] if HEADERS in d["after_header"]]
    assert headers and headers[0]["after"]["expression"].startswith(REDACTED)
    ok(run_module("login_ip_whitelist", args(env)))
    env.pangolin.reset_log()
    env.authentik.reset_log()
    rotate = ok(run_module("login_ip_whitelist", args(env, rotate_webhook_key=True), check=True, diff=True))
    assert rotate["changed"] and env.writes() == []
    assert_never_shown(env, rotate)


@pytest.mark.parametrize("fault", ["lost_answer", "503"])
@pytest.mark.parametrize("path", [r"/api-key$", r"/actions$"])
def test_a_failed_key_write_converges_without_a_stray_key(env, fault, path):
    env.pangolin.inject(fault, "PUT" if path.endswith("key$") else "POST", path)
    first = run_module("login_ip_whitelist", args(env))
    # Whatever the first run did, logins work or the run failed before the mapping named a key.
    if not first.get("failed"):
        env.login("user001", "192.0.2.43")
        assert env.rule_of("user001")["value"] == "192.0.2.43"
    second = ok(run_module("login_ip_whitelist", args(env)))
    keys = our_keys(env)
    assert len(keys) == 1, (first.get("msg"), keys)
    (key_id, key), = keys.items()
    assert key["actions"] == {"updateResourceRule"}
    assert mapping_bearer(env).startswith(key_id + ".")
    env.login("user000", "192.0.2.44")
    assert env.rule_of("user000")["value"] == "192.0.2.44"
    third = ok(run_module("login_ip_whitelist", args(env)))
    assert third["changed"] is False
    assert_never_shown(env, first, second, third)


def test_two_runs_at_once_leave_one_working_key(env, monkeypatch):
    """Both runs make a key; the mapping keeps one, neither deletes the other's, the next run tidies up.

    Simulated by a second run that reads the key list as the first run saw it
    (before the first run's key existed), as a concurrent run would.
    """
    snapshot = []
    original = pangolin_utils.PangolinClient.list_api_keys

    def as_first_seen(self, org_id):
        if not snapshot:
            snapshot.append(original(self, org_id))
        return [dict(row) for row in snapshot[0]]

    monkeypatch.setattr(pangolin_utils.PangolinClient, "list_api_keys", as_first_seen)
    ok(run_module("login_ip_whitelist", args(env)))
    ok(run_module("login_ip_whitelist", args(env)))
    monkeypatch.undo()
    assert len(our_keys(env)) == 2
    env.login("user000", "192.0.2.70")
    assert env.rule_of("user000")["value"] == "192.0.2.70"
    ok(run_module("login_ip_whitelist", args(env)))
    assert len(our_keys(env)) == 1
    env.login("user000", "192.0.2.71")
    assert env.rule_of("user000")["value"] == "192.0.2.71"


def test_managed_key_and_a_given_key_exclude_each_other(env):
    result = run_module("login_ip_whitelist", dict(args(env), webhook_api_key=env.webhook_key))
    assert result.get("failed") and "manage_webhook_key" in result["msg"] and "webhook_api_key" in result["msg"]
    rotate = run_module("login_ip_whitelist", args(env, manage_webhook_key=False, rotate_webhook_key=True))
    assert rotate.get("failed") and "rotate_webhook_key" in rotate["msg"]
    assert env.writes() == []


@pytest.mark.parametrize("fault", ["503", "lost_answer", "reset"])
def test_rotation_whose_old_key_delete_fails_converges(env, fault):
    ok(run_module("login_ip_whitelist", args(env)))
    (old_id, _), = our_keys(env).items()
    env.pangolin.inject(fault, "DELETE", r"/api-key/")
    run_module("login_ip_whitelist", args(env, rotate_webhook_key=True))
    # Whatever the first run reported, the mapping already sends a working key ...
    env.login("user001", "192.0.2.61")
    assert env.rule_of("user001")["value"] == "192.0.2.61"
    # ... and a plain rerun deletes the old key, once.
    ok(run_module("login_ip_whitelist", args(env)))
    keys = our_keys(env)
    assert len(keys) == 1 and old_id not in keys
    assert mapping_bearer(env).startswith(list(keys)[0] + ".")
    assert ok(run_module("login_ip_whitelist", args(env)))["changed"] is False


def test_a_playbook_key_that_is_not_root_is_refused_before_any_write(env):
    org_key = env.pangolin.add_api_key(org_id="homelab")  # every action, but org-scoped
    env.pangolin.reset_log()
    for check in (False, True):
        result = run_module("login_ip_whitelist", args(env, pangolin_api_key=org_key), check=check)
        assert result.get("failed") and "root" in result["msg"], result.get("msg")
        assert org_key.split(".")[1] not in json.dumps(result)
    assert env.writes() == []


def test_rotation_waits_for_webhooks_rendered_with_the_old_key(env, monkeypatch):
    """A delivery that rendered the old key and is still on its way must not meet a deleted key (no 401)."""
    ok(run_module("login_ip_whitelist", args(env)))
    (old_id, _), = our_keys(env).items()
    original = env.pangolin._dispatch
    held = []

    def slow_rule_posts(http, _orig=original):
        if http.command == "POST" and "/rule/" in http.path:
            held.append(time.monotonic())
            time.sleep(1.0)  # the delivery is in flight, its task running, while the rotation goes on
        return _orig(http)

    env.pangolin._dispatch = slow_rule_posts
    env.authentik.login("user000", "203.0.113.77")  # not waited for: its webhooks run in the background
    env.wait_for(lambda: held, what="the webhook to be on its way")
    result = ok(run_module("login_ip_whitelist", args(env, rotate_webhook_key=True)))
    assert result["changed"] and old_id not in our_keys(env)
    assert env.authentik.wait_idle(30)
    env.pangolin.__dict__.pop("_dispatch", None)
    statuses = [d["status"] for d in env.authentik.deliveries]
    assert statuses and all(status == 200 for status in statuses), statuses  # never a 401
    assert env.rule_of("user000")["value"] == "203.0.113.77"


def test_without_a_task_api_the_rotation_waits_the_grace_period(monkeypatch):
    from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist import runner as whitelist_utils

    waited = []
    monkeypatch.setattr(whitelist_utils, "KEY_GRACE", 0.3)
    monkeypatch.setattr(whitelist_utils.time, "sleep", lambda seconds: waited.append(seconds))
    with PlaybookEnv(users=1, authentik_version="2025.6.3") as env:
        env.authentik.add_group("notify", users=[env.authentik.user_by_username("user000")["pk"]])
        ok(run_module("login_ip_whitelist", args(env, destination_group="notify")))
        ok(run_module("login_ip_whitelist", args(env, destination_group="notify", rotate_webhook_key=True)))
        assert waited and sum(waited) >= 0.2, waited  # the old key went only after the grace period
        assert len([k for k in env.pangolin.api_keys.values() if k.get("name") == KEY_NAME]) == 1
