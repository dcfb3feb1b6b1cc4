"""Expiry: every owned rule back to what authentik's state says, and nothing else.

Logins run through authentik's pipeline (its worker in the background); a login
is made "old" by moving its event back in time, as authentik would show it
weeks later. Nothing is delivered after that, so the rule still holds the old
address until expiry looks.
"""

from datetime import timedelta

import pytest

from tests.module_harness import run_module
from tests.playbook_env import PlaybookEnv, module_args

PLACEHOLDER = "0.0.0.0"


def conn(env):
    return module_args(env, ipv6_prefix=64)


def age_logins(env, username, days):
    for event in env.authentik.events:
        if event.action == "login" and event.user.get("username") == username:
            event.created -= timedelta(days=days)


@pytest.fixture
def env():
    with PlaybookEnv(users=3) as environment:
        result = run_module("login_ip_whitelist", dict(conn(environment), webhook_api_key=environment.webhook_key))
        assert not result.get("failed"), result.get("msg")
        environment.login("user000", "203.0.113.10")
        environment.login("user001", "198.51.100.11")  # fresh
        age_logins(environment, "user000", 40)  # stale: 40 days ago, and nothing delivered since
        # user002 never logged in: the placeholder
        environment.pangolin.reset_log()
        environment.authentik.reset_log()
        yield environment


def expire(env, check=False, **extra):
    result = run_module("login_ip_whitelist_expire", dict(conn(env), **extra), check=check, diff=True)
    assert not result.get("failed"), result.get("msg")
    return result


def by_user(result):
    return dict((u["username"], u) for u in result["users"])


def test_check_mode_predicts_and_writes_nothing(env):
    result = expire(env, check=True, expire_days=30)
    assert result["changed"] and env.writes() == []
    assert [u for u, e in by_user(result).items() if e["expired"]] == ["user000"]
    (diff,) = result["diff"]
    assert diff["before"]["value"] == "203.0.113.10" and diff["after"]["value"] == PLACEHOLDER
    assert env.rule_of("user000")["value"] == "203.0.113.10"


def test_resets_exactly_the_stale_users_then_converges(env):
    foreign = env.pangolin.add_rule(env.resource_id, "ACCEPT", "IP", "192.0.2.200", 5)
    result = expire(env, expire_days=30)
    users = by_user(result)
    assert result["changed"]
    assert users["user000"]["expired"] and "older than 30 days" in users["user000"]["reason"]
    assert not users["user001"]["expired"] and not users["user002"]["expired"]
    assert env.rule_of("user000")["value"] == PLACEHOLDER and env.rule_of("user000")["match"] == "IP"
    assert env.rule_of("user001")["value"] == "198.51.100.11"
    assert [r["value"] for r in env.pangolin.rules(env.resource_id) if r["ruleId"] == foreign] == ["192.0.2.200"]
    writes = env.writes()
    assert len(writes) == 1 and writes[0].method == "POST" and writes[0].body["value"] == PLACEHOLDER
    # The address no longer gets in; a rerun has nothing to do; a new login whitelists again.
    assert env.pangolin.apply_rules_for(env.resource_id, "203.0.113.10") is None
    env.pangolin.reset_log()
    again = expire(env, expire_days=30)
    assert again["changed"] is False and env.writes() == []
    env.login("user000", "203.0.113.77")
    assert env.rule_of("user000")["value"] == "203.0.113.77"
    assert env.pangolin.apply_rules_for(env.resource_id, "203.0.113.77") == "ACCEPT"


def test_a_user_no_longer_listed_expires_too(env):
    """A user the inventory no longer lists gets nobody in, whatever the user's logins say."""
    result = expire(env, expire_days=30, users=[{"username": "user001"}, {"username": "user002"}])
    users = by_user(result)
    assert users["user000"]["expired"] and "not a present user" in users["user000"]["reason"]
    assert env.rule_of("user000")["value"] == PLACEHOLDER and env.rule_of("user001")["value"] == "198.51.100.11"
    assert expire(env, expire_days=30, users=[{"username": "user001"}])["changed"] is False


def test_the_whitelist_run_after_expiry_changes_nothing(env):
    expire(env, expire_days=30)
    env.pangolin.reset_log()
    result = run_module("login_ip_whitelist", dict(conn(env), webhook_api_key=env.webhook_key))
    assert result["changed"] is False and env.writes() == []


def test_expire_users_revokes_now_whatever_the_last_login(env):
    result = expire(env, expire_days=30, expire_users=["user001"])
    assert [u["username"] for u in result["users"]] == ["user001"]
    assert by_user(result)["user001"]["expired"] and by_user(result)["user001"]["reason"] == "revoked"
    assert env.rule_of("user001")["value"] == PLACEHOLDER
    assert env.rule_of("user000")["value"] == "203.0.113.10"
    # Another user's login makes authentik recompute user001's rule too: the revocation holds ...
    env.login("user002", "198.51.100.12")
    assert env.rule_of("user001")["value"] == PLACEHOLDER
    # ... until user001 logs in again.
    env.login("user001", "198.51.100.13")
    assert env.rule_of("user001")["value"] == "198.51.100.13"


def test_an_ipv6_prefix_goes_back_to_a_single_placeholder_address(env):
    env.login("user002", "2001:db8:aa:bb:1:2:3:4")
    assert env.rule_of("user002")["match"] == "CIDR"
    age_logins(env, "user002", 31)
    expire(env, expire_days=30)
    assert env.rule_of("user002")["match"] == "IP" and env.rule_of("user002")["value"] == PLACEHOLDER


def test_a_whitelisted_address_without_any_login_event_is_stale(env):
    env.authentik.events[:] = [e for e in env.authentik.events if e.user.get("username") != "user001"]
    result = expire(env, expire_days=30)
    assert by_user(result)["user001"]["expired"] and by_user(result)["user001"]["reason"] == "no login recorded"


def test_expire_days_zero_keeps_addresses_until_the_next_login(env):
    result = expire(env, expire_days=0)
    assert sorted(by_user(result)) == env.usernames, result["users"]
    assert not any(e["expired"] for e in result["users"]) and env.writes() == []
    assert env.rule_of("user000")["value"] == "203.0.113.10"  # 40 days old, but no limit
    env.authentik.events[:] = [e for e in env.authentik.events if e.user.get("username") != "user001"]
    result = expire(env, expire_days=0)
    assert [u for u, e in by_user(result).items() if e["expired"]] == ["user001"]


@pytest.mark.parametrize("extra,fragments", [
    ({"expire_users": ["nobody"]}, ["expire_users", "'nobody'"]),
    ({"expire_days": -1}, ["expire_days", "-1"]),
    ({"expire_users": ["bad\nname"]}, ["expire_users"]),
])
def test_bad_input_is_refused_without_a_write(env, extra, fragments):
    for check in (False, True):
        result = run_module("login_ip_whitelist_expire", dict(conn(env), **extra), check=check)
        assert result.get("failed")
        for fragment in fragments:
            assert fragment in result["msg"], (fragment, result["msg"])
        assert env.writes() == []


def test_expire_playbook_check_then_real():
    with PlaybookEnv(users=2) as env:
        rc, parsed, out, err = env.run()
        assert rc == 0, out[-3000:]
        env.login("user000", "203.0.113.61")
        env.login("user001", "203.0.113.62")
        age_logins(env, "user001", 45)
        env.pangolin.reset_log()
        env.authentik.reset_log()
        rc, parsed, out, err = env.run(playbook="expire.yml", check=True, diff=True)
        assert rc == 0, out[-3000:]
        assert env.writes() == []
        (result,) = env.task_results(parsed, "Stop whitelisting")
        assert result["changed"] and [u["username"] for u in result["users"] if u["expired"]] == ["user001"]
        rc, parsed, out, err = env.run(playbook="expire.yml")
        assert rc == 0, out[-3000:]
        assert env.rule_of("user001")["value"] == PLACEHOLDER
        assert env.rule_of("user000")["value"] == "203.0.113.61"
        inventory = env.inventory(jellyfin_whitelist_expire_users=["user000"])
        rc, parsed, out, err = env.run(playbook="expire.yml", inventory=inventory)
        assert rc == 0, out[-3000:]
        assert env.rule_of("user000")["value"] == PLACEHOLDER


@pytest.mark.parametrize("fault", ["503", "lost_answer", "reset", "timeout"])
def test_a_failed_reset_converges_on_the_rerun(env, fault):
    env.pangolin.inject(fault, "POST", r"/rule/\d+$", delay=1.5)
    run_module("login_ip_whitelist_expire", dict(conn(env), expire_days=30, timeout=1))
    result = expire(env, expire_days=30)
    assert env.rule_of("user000")["value"] == PLACEHOLDER
    assert env.rule_of("user001")["value"] == "198.51.100.11"
    assert expire(env, expire_days=30)["changed"] is False
    assert len(env.pangolin.rules(env.resource_id)) == 3
    assert result["users"]
