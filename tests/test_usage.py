"""Which whitelisted address is in use: the doctor's last use, and expire.yml closing idle addresses.

Requests go through the Pangolin simulator's gatekeeper, which logs each one an ACCEPT rule lets through (reason
100) as the real one does; a request of the past is recorded at its time, and a login is made old by moving its
event back, so nothing here waits for a clock. The household: ``max_addresses`` 2, a home address the TV uses
every day and a cafe's address nobody used since the login.
"""

from datetime import datetime, timedelta, timezone

import pytest

from tests.module_harness import run_module
from tests.playbook_env import PlaybookEnv, module_args

PLACEHOLDER = "0.0.0.0"
HOME, CAFE = "203.0.113.10", "198.51.100.20"
TWO = dict(max_addresses=2)


def ok(result):
    assert not result.get("failed"), result.get("msg")
    return result


def age_logins(env, username, address, **delta):
    for event in env.authentik.events:
        if event.action == "login" and event.user.get("username") == username and event.client_ip == address:
            event.created -= timedelta(**delta)


def ago(**delta):
    return datetime.now(timezone.utc) - timedelta(**delta)


def doctor(env, **extra):
    return ok(run_module("login_ip_whitelist_info", module_args(env, **dict(TWO, **extra))))


def expire(env, check=False, **extra):
    return ok(run_module("login_ip_whitelist_expire", module_args(env, **dict(TWO, **extra)), check=check,
                         diff=True))


def last_uses(report, username):
    [user] = [u for u in report["users"] if u["username"] == username]
    return dict(((a["resource_id"], a["value"]), a["last_use"]) for a in user["addresses"])


@pytest.fixture
def env():
    with PlaybookEnv(users=2) as environment:
        environment.second = environment.pangolin.add_resource("homelab", "Jellyseerr", subdomain="requests",
                                                               full_domain="requests.example.com")
        environment.resources = [{"id": environment.resource_id}, {"id": environment.second}]
        ok(run_module("login_ip_whitelist", household(environment, webhook_api_key=environment.webhook_key)))
        environment.login("user000", HOME)
        environment.login("user000", CAFE)  # the newest login: the cafe is the first rule
        age_logins(environment, "user000", HOME, days=20)
        age_logins(environment, "user000", CAFE, days=10)
        # the TV at home uses Jellyfin every day; nothing came from the cafe since
        environment.pangolin.request(environment.resource_id, HOME, when=ago(hours=3))
        environment.pangolin.request(environment.second, HOME, when=ago(days=2))
        environment.pangolin.reset_log()
        environment.authentik.reset_log()
        yield environment


def household(env, **extra):
    args = module_args(env, resources=env.resources, instance="household", **dict(TWO, **extra))
    args.pop("resource_id")
    return args


def test_the_doctor_shows_the_last_use_of_each_address_on_each_resource(env):
    report = ok(run_module("login_ip_whitelist_info", household(env)))
    assert report["request_log"] == dict(available=True, retention_days=7, problem=None,
                                         window="the last 7 days of Pangolin's request log")
    uses = last_uses(report, "user000")
    assert uses[(env.resource_id, HOME)] == "3 h ago" and uses[(env.second, HOME)] == "2 d ago"
    assert uses[(env.resource_id, CAFE)] == uses[(env.second, CAFE)] == "not in the last 7 days of Pangolin's " \
                                                                         "request log"
    [user] = [u for u in report["users"] if u["username"] == "user000"]
    assert [a["last_used"] is not None for a in user["addresses"] if a["value"] == HOME] == [True, True]
    assert [a["last_use"] for a in report["users"][1]["addresses"]] == ["lets nobody in"] * 4  # user001: 2 rules x 2
    assert report["notes"] == [] or "request_log" not in [n["check"] for n in report["notes"]]


@pytest.mark.parametrize("case", ["off", "unreadable", "missing"])
def test_a_log_that_is_off_unreadable_or_missing_is_said_once_and_no_address_is_called_unused(case):
    with PlaybookEnv(users=1, **{}) as env:
        if case == "missing":
            env.pangolin.version = "1.14.1"
        ok(run_module("login_ip_whitelist", module_args(env, webhook_api_key=env.webhook_key)))
        env.login("user000", HOME)
        key = env.pangolin_key
        if case == "off":
            env.pangolin.set_log_retention("homelab", 0)
        elif case == "unreadable":
            actions = [a for a in env.pangolin.api_keys[key.split(".")[0]]["actions"] if a != "viewLogs"]
            key = env.pangolin.add_api_key(root=True, actions=actions)
        report = ok(run_module("login_ip_whitelist_info", module_args(env, pangolin_api_key=key)))
        assert report["request_log"]["available"] is False
        notes = [n for n in report["notes"] if n["check"] == "request_log"]
        assert len(notes) == 1, report["notes"]
        assert {"off": "settingsLogRetentionDaysRequest", "unreadable": "viewLogs",
                "missing": "1.18"}[case] in notes[0]["message"]
        assert [a["last_use"] for u in report["users"] for a in u["addresses"]] == ["unknown"]
        assert report["healthy"]  # the doctor still works: only the last use is unknown


def test_idle_days_closes_the_unused_cafe_and_keeps_the_home_address(env):
    assert env.addresses_of("user000", instance="household") == [CAFE, HOME]
    report = ok(run_module("login_ip_whitelist_info", household(env)))
    checked = ok(run_module("login_ip_whitelist_expire", household(env, idle_days=7), check=True, diff=True))
    assert env.writes() == []
    [predicted] = [u for u in checked["users"] if u["username"] == "user000"]
    assert [c["address"] for c in predicted["closed"]] == [CAFE] and predicted["expired"]
    assert "would expire" in predicted["summary"] and CAFE in predicted["summary"] and "resources" in predicted[
        "summary"]
    done = ok(run_module("login_ip_whitelist_expire", household(env, idle_days=7), diff=True))
    [user] = [u for u in done["users"] if u["username"] == "user000"]
    assert [c["address"] for c in user["closed"]] == [CAFE] and user["summary"] == predicted["summary"].replace(
        "would expire", "expired")
    assert env.addresses_of("user000", instance="household") == [HOME, PLACEHOLDER]
    # what the doctor showed as not used is exactly what was closed
    unused = sorted(set(v for (_r, v), use in last_uses(report, "user000").items() if use.startswith("not in")))
    assert unused == [c["address"] for c in user["closed"]]
    # a rerun changes nothing, and a delivery (another user's login) does not bring the cafe back
    assert ok(run_module("login_ip_whitelist_expire", household(env, idle_days=7)))["changed"] is False
    env.login("user001", "198.51.100.30")
    assert env.addresses_of("user000", instance="household") == [HOME, PLACEHOLDER]
    # the user's next login from the cafe opens it again
    env.login("user000", CAFE)
    assert env.addresses_of("user000", instance="household") == [CAFE, HOME]
    assert ok(run_module("login_ip_whitelist_expire", household(env, idle_days=7)))["changed"] is False


def test_a_login_renews_an_address_and_idle_days_never_extends_one(env):
    age_logins(env, "user000", CAFE, days=-7)  # the cafe login was three days ago, not ten
    done = ok(run_module("login_ip_whitelist_expire", household(env, idle_days=7)))
    assert [c["address"] for u in done["users"] for c in u["closed"]] == []
    assert env.addresses_of("user000", instance="household") == [CAFE, HOME]
    # expire_days still wins: a home address used today but logged in from 20 days ago goes with expire_days 14
    done = ok(run_module("login_ip_whitelist_expire", household(env, idle_days=7, expire_days=14)))
    assert env.addresses_of("user000", instance="household") == [CAFE, PLACEHOLDER]


@pytest.mark.parametrize("case,words", [("off", "keeps no request log"), ("short", "longer than Pangolin keeps"),
                                        ("unreadable", "viewLogs")])
def test_idle_days_refuses_and_changes_nothing_when_the_log_cannot_tell(env, case, words):
    key = env.pangolin_key
    if case == "off":
        env.pangolin.set_log_retention("homelab", 0)
    elif case == "short":
        env.pangolin.set_log_retention("homelab", 3)
    else:
        actions = [a for a in env.pangolin.api_keys[key.split(".")[0]]["actions"] if a != "viewLogs"]
        key = env.pangolin.add_api_key(root=True, actions=actions)
    env.pangolin.reset_log()
    for check in (True, False):
        result = run_module("login_ip_whitelist_expire", household(env, idle_days=7, pangolin_api_key=key),
                            check=check)
        assert result.get("failed") and "idle_days" in result["msg"] and words in result["msg"], result
        assert "nothing was changed" in result["msg"]
    assert env.writes() == [] and env.addresses_of("user000", instance="household") == [CAFE, HOME]


def test_a_log_kept_forever_reaches_back_as_far_as_it_goes(env):
    env.pangolin.set_log_retention("homelab", -1)
    env.pangolin.request(env.resource_id, CAFE, when=ago(days=40))
    report = ok(run_module("login_ip_whitelist_info", household(env)))
    assert report["request_log"]["window"] == "Pangolin's whole request log"
    assert last_uses(report, "user000")[(env.resource_id, CAFE)] == "40 d ago"


# -- the playbook's key, checked without writing -------------------------------------------------------------------
@pytest.mark.parametrize("root", [True, False])
def test_the_doctor_says_whether_the_playbooks_key_is_root_and_which_actions_it_lacks(env, root):
    readme = env.pangolin.api_keys[env.pangolin_key.split(".")[0]]["actions"]
    lacking = ["deleteResourceRule", "updateResource"]
    key = env.pangolin.add_api_key(root=root, org_id=None if root else "homelab",
                                   actions=[a for a in readme if a not in lacking])
    env.pangolin.reset_log()
    report = ok(run_module("login_ip_whitelist_info", household(env, pangolin_api_key=key,
                                                                manage_webhook_key=not root)))
    found = report["playbook_key"]
    assert found["root"] is root and found["key_id"] == key.split(".")[0] and found["unknown"] == []
    assert sorted(found["missing"]) == sorted(lacking + ([] if root else [
        "listApiKeys", "createApiKey", "setApiKeyActions", "listApiKeyActions", "deleteApiKey"]))
    problems = [p for p in report["problems"] if p["check"] == "playbook_key"]
    assert any("deleteResourceRule" in p["message"] and "updateResource" in p["message"] for p in problems)
    assert any("not a root key" in p["message"] for p in problems) is (not root)
    # the doctor asked without changing anything: whatever it sent that could write was refused
    assert env.pangolin.accepted_writes() == []
    assert [w for w in env.pangolin.writes() if w.status not in (400, 403, 404)] == []
    if root:  # a root key that may list key actions is simply asked for its own list
        assert env.pangolin.writes() == []


def test_a_key_with_every_action_the_inventory_needs_is_fine(env):
    report = ok(run_module("login_ip_whitelist_info", household(env, manage_webhook_key=False)))
    assert report["playbook_key"]["root"] is True and report["playbook_key"]["missing"] == []
    assert [p for p in report["problems"] if p["check"] == "playbook_key"] == []
