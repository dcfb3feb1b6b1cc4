"""The manual setup's e-mail step from the one command: an e-mail per login of a listed user.

A notification rule, an expression policy for the listed users' logins and an
e-mail transport, made with the whitelist, removed when the setting goes. The
authentik simulator validates the transport (mode, template) as authentik does
and mails through its worker like the real one.
"""

import pytest

from tests.module_harness import run_module
from tests.playbook_env import PlaybookEnv, module_args


def conn(env, **extra):
    extra.setdefault("webhook_api_key", env.webhook_key)
    return module_args(env, **extra)


def whitelist(env, check=False, **extra):
    result = run_module("login_ip_whitelist", conn(env, **extra), check=check, diff=True)
    assert not result.get("failed"), result.get("msg")
    return result


@pytest.fixture
def env():
    with PlaybookEnv(users=2) as environment:
        environment.add_user("outsider")  # in authentik, not in the whitelist
        environment.usernames.remove("outsider")
        admin_pk = environment.authentik.add_user("admin", email="admin@example.com")
        environment.authentik.add_group("admins", users=[admin_pk])
        yield environment


def named(env, store, name):
    return [o for o in getattr(env.authentik, store).values() if o["name"] == name]


NAME = "jellyfin-whitelist-resource-1/login-email"


def test_a_login_of_a_listed_user_mails_the_group_and_nobody_else(env):
    assert env.resource_id == 1
    env.pangolin.reset_log()
    checked = whitelist(env, check=True, login_email={"group": "admins"})
    assert env.writes() == [] and [c for c in checked["shared"] if "login-email" in c]
    whitelist(env, login_email={"group": "admins", "subject_prefix": "Jellyfin: "})
    [transport] = named(env, "transports", NAME)
    assert transport["mode"] == "email" and transport["email_subject_prefix"] == "Jellyfin: "
    [rule] = named(env, "rules", NAME)
    assert rule["destination_group"] and not rule["destination_event_user"]
    env.login("user000", "203.0.113.5")
    env.login("outsider", "198.51.100.5")
    mails = [m for m in env.authentik.outbox if m.get("rule") == NAME]
    assert [(m["to"], m["event"]) for m in mails] == [("admin@example.com", "login")]
    assert mails[0]["subject"].startswith("Jellyfin: ")
    assert env.addresses_of("user000") == ["203.0.113.5"]  # the whitelist is unaffected
    env.pangolin.reset_log()
    env.authentik.reset_log()
    assert whitelist(env, login_email={"group": "admins", "subject_prefix": "Jellyfin: "})["changed"] is False
    assert env.writes() == []


def test_to_the_user_who_logged_in(env):
    whitelist(env, login_email={"to_user": True})
    env.login("user001", "203.0.113.6")
    assert [m["to"] for m in env.authentik.outbox if m.get("rule") == NAME] == ["user001@example.com"]


def test_unset_removes_the_rule_policy_and_transport(env):
    whitelist(env, login_email={"group": "admins"})
    result = whitelist(env)
    assert sorted(c.split(" ")[0] for c in result["shared"] if "login-email" in c) == ["delete"] * 3
    for store in ("rules", "policies", "transports"):
        assert named(env, store, NAME) == []
    env.login("user000", "203.0.113.7")
    assert [m for m in env.authentik.outbox if m.get("rule") == NAME] == []


@pytest.mark.parametrize("setting,fragment", [
    ({"group": "admins", "to_user": True}, "exactly one recipient"),
    ({}, None),
    ({"grup": "admins"}, "login_email.grup"),  # the suboptions are declared: Ansible names the unknown key
    ({"group": "nobody"}, "no group with that name"),
    ({"to_user": True, "template": "nope.html"}, "Invalid template"),
])
def test_bad_settings_are_named(env, setting, fragment):
    result = run_module("login_ip_whitelist", conn(env, login_email=setting))
    if fragment is None:  # an empty setting is off
        assert not result.get("failed") and not named(env, "rules", NAME)
        return
    assert result.get("failed") and fragment in result["msg"], result["msg"]


def test_the_role_sends_it_too(env):
    inventory = env.inventory(jellyfin_whitelist_login_email={"group": "admins"})
    rc, parsed, out, err = env.run(inventory=inventory)
    assert rc == 0, out[-3000:]
    env.login("user001", "203.0.113.8")
    assert [m["to"] for m in env.authentik.outbox if m.get("rule") == NAME] == ["admin@example.com"]
