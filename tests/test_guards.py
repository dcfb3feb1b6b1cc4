"""Small rules that a careless edit could break without any other test noticing.

Each test names the rule it guards. They were written against changes that
survived the rest of the suite: comparing unordered lists in order, scrubbing
only the whole key and not its secret half, an allocation that never reaches
``priority_end`` or that reuses a rule someone else owns, retrying 503 but not
502/504, a loose ASN check, a check-mode prediction that copies unmanaged
fields as null, and an IPv6 prefix fixed at /64; a login history that trusts the server's ``action`` filter.
"""

import json

import pytest
import requests

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik import client as authentik_utils
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.holdings import rule_entry
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._pangolin.values import rule_value_error
from tests.module_harness import run_module
from tests.playbook_env import AUTHENTIK_TOKEN, PlaybookEnv, module_args
from tests.simulators.base import Response


@pytest.fixture
def env():
    with PlaybookEnv(users=3) as environment:
        yield environment


def conn(env, **extra):
    extra.setdefault("webhook_api_key", env.webhook_key)
    return module_args(env, **extra)


def ok(result):
    assert not result.get("failed"), result.get("msg")
    return result


def test_unordered_lists_are_compared_as_sets(env):
    """A notification rule's transports are a set: the server's order is no change."""
    ok(run_module("login_ip_whitelist", conn(env)))
    [rule] = env.authentik.rules.values()
    rule["transports"].reverse()
    env.pangolin.reset_log()
    env.authentik.reset_log()
    assert ok(run_module("login_ip_whitelist", conn(env)))["changed"] is False
    assert env.writes() == []


def test_the_secret_half_of_a_key_is_scrubbed_on_its_own(env):
    secret = env.pangolin_key.split(".", 1)[1]
    original = env.pangolin.handle

    def echo_secret(request, _orig=original):
        if request.method == "POST":  # Pangolin quoting the secret alone, without the key id
            return Response(400, {"data": None, "success": False, "error": True, "status": 400, "stack": None,
                                  "message": "refused secret %s" % secret})
        return _orig(request)

    env.pangolin.handle = echo_secret
    result = run_module("pangolin_resource", dict(pangolin_url=env.pangolin.base_url,
                                                  pangolin_api_key=env.pangolin_key, retries=0,
                                                  resource_id=env.resource_id, apply_rules=True))
    assert result.get("failed") and "refused secret" in result["msg"]
    assert secret not in json.dumps(result)


def test_the_last_priority_of_the_range_is_handed_out_and_then_the_range_is_full(env):
    result = ok(run_module("login_ip_whitelist", conn(env, users=[{"username": "user000"}, {"username": "user001"}],
                                                      priority_start=100, priority_end=101)))
    assert sorted(u["priority"] for u in result["users"]) == [100, 101]
    full = run_module("login_ip_whitelist", conn(env, priority_start=100, priority_end=101))
    assert full.get("failed") and "priority_range 100-101 has no free priority" in full["msg"]


def test_an_allocation_never_takes_a_rule_someone_owns(env):
    """A placeholder rule is still somebody's: another user's, or another deployment's."""
    ok(run_module("login_ip_whitelist", conn(env, users=[{"username": "user000"}])))
    ok(run_module("login_ip_whitelist", conn(env, users=[{"username": "user002"}], instance="other",
                                             priority_start=101)))
    mine = env.rule_of("user000")
    theirs = env.rule_of("user002", instance="other")
    assert (mine["priority"], theirs["priority"]) == (100, 101) and theirs["value"] == "0.0.0.0"
    result = ok(run_module("login_ip_whitelist", conn(env, users=[{"username": "user000"},
                                                                  {"username": "user001"}])))
    assert [u["priority"] for u in result["users"] if u["username"] == "user001"] == [102]
    assert env.rule_of("user002", instance="other")["ruleId"] == theirs["ruleId"]
    assert len(env.pangolin.rules(env.resource_id)) == 3


@pytest.mark.parametrize("status", ["502", "504", "503", "500"])
def test_gateway_errors_on_a_read_are_retried(env, status):
    env.pangolin.inject(status, method="GET", path_regex=r"^/v1/resource/\d+$")
    result = ok(run_module("pangolin_resource", dict(pangolin_url=env.pangolin.base_url,
                                                     pangolin_api_key=env.pangolin_key, retries=1,
                                                     resource_id=env.resource_id, apply_rules=True)))
    assert any("HTTP %s" % status in str(w) and "retry 1 of 1" in str(w) for w in result["warnings"])


@pytest.mark.parametrize("value,accepted", [
    ("AS13335", True), ("as123", True), (" AS1 ", True), ("ALL", True), ("AS0", True),
    ("AS", False), ("AS12a", False), ("ASN123", False), ("12345", False), ("AS 12", False), ("xAS12", False),
    ("AS12\nAS13", False), ("AS-1", False),
])
def test_an_asn_is_as_followed_by_digits_only(value, accepted):
    assert (rule_value_error("ASN", value) is None) is accepted


def test_check_mode_keeps_unmanaged_fields_as_they_are(env):
    """Only the settings given are managed: the prediction must not show the others as null."""
    before = env.pangolin.resource(env.resource_id)
    result = ok(run_module("pangolin_resource", dict(pangolin_url=env.pangolin.base_url,
                                                     pangolin_api_key=env.pangolin_key, retries=0,
                                                     resource_id=env.resource_id, apply_rules=True),
                           check=True, diff=True))
    after = result["diff"]["after"]
    assert after["apply_rules"] is True
    assert after["sso"] == bool(before["sso"]) and after["sso"] is not None
    assert after["enabled"] == bool(before["enabled"]) and after["block_access"] is not None
    rule = env.pangolin.add_rule(env.resource_id, "ACCEPT", "IP", "192.0.2.1", 10, enabled=False)
    checked = ok(run_module("pangolin_rule", dict(pangolin_url=env.pangolin.base_url, retries=0,
                                                 pangolin_api_key=env.pangolin_key, resource_id=env.resource_id,
                                                 priority=10, action="DROP", match="IP", value="192.0.2.1",
                                                 enabled=False), check=True, diff=True))
    assert checked["diff"]["after"]["rule_id"] == rule and checked["diff"]["after"]["enabled"] is False


@pytest.mark.parametrize("prefix,expected", [
    (64, "2001:db8:1:2::/64"), (56, "2001:db8:1::/56"), (48, "2001:db8:1::/48"), (128, "2001:db8:1:2:3:4:5:6/128"),
])
def test_the_ipv6_prefix_is_the_configured_one(prefix, expected):
    assert rule_entry("2001:db8:1:2:3:4:5:6", prefix, []) == ("CIDR", expected)
    assert rule_entry("::ffff:203.0.113.9", prefix, []) == ("IP", "203.0.113.9")
    assert rule_entry("2001:db8:1:2:3:4:5:6", 0, []) == ("IP", "2001:db8:1:2:3:4:5:6")


def test_an_ipv6_login_whitelists_the_configured_prefix_end_to_end(env):
    ok(run_module("login_ip_whitelist", conn(env, ipv6_prefix=56)))
    env.login("user001", "2001:db8:1:2:3:4:5:6")
    assert env.addresses_of("user001") == ["2001:db8:1::/56"]
    assert env.pangolin.apply_rules_for(env.resource_id, "2001:db8:1:ff::1") == "ACCEPT"
    assert env.pangolin.apply_rules_for(env.resource_id, "2001:db8:2::1") is None


def test_the_body_mapping_runs_the_very_function_the_modules_run(env):
    """The rendered mapping carries holdings.SOURCE; evaluated by authentik it agrees with rule_entry: an address
    that may not become a rule leaves the newest one that may."""
    ok(run_module("login_ip_whitelist", conn(env, ipv6_prefix=60)))
    held = None
    for address in ("203.0.113.5", "::ffff:198.51.100.6", "fe80::1%eth0", "2001:db8:aa:bb:cc::1", "::ffff:10.0.0.1"):
        env.login("user000", address)
        held = rule_entry(address, 60, []) or held
        rule = env.rule_of("user000")
        assert held is not None and (rule["match"], rule["value"]) == held, address


def test_a_login_history_keeps_only_the_users_real_logins_whatever_the_filter_returns(env, monkeypatch):
    """``?action=login`` is a contains match that also returns ``login_failed``: every row is re-checked."""
    account = env.authentik.user_by_username("user000")
    env.authentik.users[account["pk"]]["password"] = "right"
    env.login("user000", "203.0.113.60", password="right")
    for attempt in range(3):
        env.login("user000", "192.0.2.%d" % (attempt + 1), password="wrong")
    answer = requests.get(env.authentik.base_url + "/api/v3/events/events/", timeout=10,
                          headers={"Authorization": "Bearer " + AUTHENTIK_TOKEN},
                          params={"action": "login", "username": "user000", "ordering": "-created"}).json()
    assert [row["action"] for row in answer["results"]] == ["login_failed"] * 3 + ["login"]
    # The client as on a server without the exact ``actions`` filter, so it gets that answer too.
    monkeypatch.setattr(authentik_utils, "EXACT_ACTIONS_FILTER_SINCE", (9999, 1))
    client = authentik_utils.AuthentikClient(env.authentik.base_url, AUTHENTIK_TOKEN, retries=0)
    logins = client.login_events("user000", account["pk"])
    assert [login["client_ip"] for login in logins] == ["203.0.113.60"]
