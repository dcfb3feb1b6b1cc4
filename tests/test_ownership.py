"""Ownership is proven, never presumed; who is not on the list is not let in.

The six ways version 0.3 let the wrong addresses in, or changed someone else's
rule, each replayed on the simulators as an operator met it, and checked down
to the gatekeeper's answer and the next login:

1. another deployment's objects carry our names (two Pangolin servers, one authentik);
2. a user taken off the list;
3. an operator's rule at a user's old priority;
4. a revoked user's old sessions;
5. an emptied whitelist, and a teardown;
6. a login e-mail moved from a group to the user.

Plus the review's findings: a key rotation waits for webhook tasks in every state
that is not final.
"""

import threading

import pytest

from tests.module_harness import run_module
from tests.playbook_env import AUTHENTIK_TOKEN, PlaybookEnv, module_args, wait_for
from tests.simulators.pangolin import PangolinSimulator

HEAD = "jellyfin-whitelist-resource-1"
OTHER_SITE = "https://pangolin-b.example.test"


def whitelist(env, check=False, diff=False, **extra):
    extra.setdefault("webhook_api_key", env.webhook_key)
    result = run_module("login_ip_whitelist", module_args(env, **extra), check=check, diff=diff)
    assert not result.get("failed"), result.get("msg")
    return result


def refused(env, **extra):
    extra.setdefault("webhook_api_key", env.webhook_key)
    result = run_module("login_ip_whitelist", module_args(env, **extra))
    assert result.get("failed"), result
    return result["msg"]


def doctor(env, **extra):
    result = run_module("login_ip_whitelist_info", module_args(env, **extra))
    assert not result.get("failed"), result.get("msg")
    return result


def transport(env, name):
    return next(t for t in env.authentik.transports.values() if t["name"] == name)


def pangolin_rule(env, rule_id):
    return next(r for r in env.pangolin.rules(env.resource_id) if r["ruleId"] == rule_id)


def give_rule_id(sim, rule_id, new_id):
    """Renumber one rule of the simulator (the id Pangolin gave it is the test's to choose)."""
    with sim.lock:
        row = sim.policy_rules.pop(rule_id)
        row["ruleId"] = new_id
        sim.policy_rules[new_id] = row


@pytest.fixture
def env():
    with PlaybookEnv(users=3) as environment:
        yield environment


# -- 1. another deployment's names -------------------------------------------------------------------------
def test_another_sites_transport_and_this_sites_drop_rule_are_never_touched(env):
    """Two Pangolin servers share one authentik; both whitelists are on resource 1, both use instance resource-1."""
    with PangolinSimulator() as site_b:
        key_b = site_b.add_api_key(root=True, actions="all")
        resource_b = site_b.add_resource("homelab", "Jellyfin", subdomain="jellyfin")
        assert resource_b == env.resource_id == 1
        other = dict(module_args(env, users=[{"username": "user000"}]), pangolin_url=site_b.base_url,
                     pangolin_api_key=key_b, webhook_url=OTHER_SITE, webhook_api_key=env.webhook_key)
        result = run_module("login_ip_whitelist", other)  # the other site's run
        assert not result.get("failed"), result.get("msg")
    # On the other site, user000's rule is 114; this Pangolin's rule 114 is the operator's DROP.
    foreign = transport(env, HEAD + "/user000/1")
    foreign["webhook_url"] = OTHER_SITE + "/v1/resource/1/rule/114"
    drop = env.pangolin.add_rule(env.resource_id, "DROP", "CIDR", "10.99.0.0/16", 5)
    give_rule_id(env.pangolin, drop, 114)
    before = dict(pangolin_rule(env, 114))
    env.pangolin.reset_log()
    env.authentik.reset_log()
    for check in (True, False):
        result = run_module("login_ip_whitelist", module_args(env, users=[{"username": "user000"}],
                                                              webhook_api_key=env.webhook_key), check=check)
        assert result.get("failed"), result
        msg = result["msg"]
        assert "notification transport '%s/user000/1'" % HEAD in msg, msg
        assert OTHER_SITE + "/v1/resource/1/rule/114" in msg and "jellyfin_whitelist_instance 'resource-1'" in msg
    assert env.writes() == []  # refused before any write, in both Pangolins' and authentik's eyes
    assert pangolin_rule(env, 114) == before  # the DROP protection stands
    assert transport(env, HEAD + "/user000/1")["webhook_url"] == OTHER_SITE + "/v1/resource/1/rule/114"
    report = doctor(env, users=[{"username": "user000"}])
    assert not report["healthy"]
    [user] = report["users"]
    assert any(OTHER_SITE in p["message"] and p["check"] == "transport" for p in user["problems"]), user
    # With an instance of its own, this site's whitelist lives beside the other one and never touches it.
    own = whitelist(env, users=[{"username": "user000"}], instance="site-a")
    assert own["instance"] == "site-a" and pangolin_rule(env, 114) == before
    assert transport(env, HEAD + "/user000/1")["webhook_url"] == OTHER_SITE + "/v1/resource/1/rule/114"
    env.login("user000", "203.0.113.41")
    assert env.addresses_of("user000", instance="site-a") == ["203.0.113.41"] and pangolin_rule(env, 114) == before


# -- 2. not on the list means not let in -------------------------------------------------------------------
def test_a_user_taken_off_the_list_is_not_let_in_and_a_later_login_whitelists_nobody(env):
    whitelist(env)
    env.login("user001", "198.51.100.21")
    assert env.pangolin.apply_rules_for(env.resource_id, "198.51.100.21") == "ACCEPT"
    listed = [{"username": "user000"}, {"username": "user002"}]
    report = doctor(env, users=listed)  # before the run: the doctor says who is let in although not listed
    [problem] = [p for p in report["problems"] if p["check"] == "unlisted"]
    assert "'user001'" in problem["message"] and "198.51.100.21" in problem["message"] and not report["healthy"]
    result = whitelist(env, users=listed)  # the default: prune false
    [entry] = [u for u in result["users"] if u["username"] == "user001"]
    assert entry["status"] == "disabled" and "access ended" in entry["summary"]
    assert env.pangolin.apply_rules_for(env.resource_id, "198.51.100.21") is None
    env.login("user001", "198.51.100.22")  # a later login from elsewhere
    assert env.pangolin.apply_rules_for(env.resource_id, "198.51.100.22") is None
    assert env.addresses_of("user001") == ["0.0.0.0"]  # the objects stay (the priority is kept), without access
    assert doctor(env, users=listed)["healthy"]
    assert whitelist(env, users=listed)["changed"] is False
    # listed again: the same rule, and the next login gets in
    priority = [u for u in whitelist(env)["users"] if u["username"] == "user001"][0]["priority"]
    env.login("user001", "198.51.100.23")
    assert env.rule_of("user001")["priority"] == priority and env.addresses_of("user001") == ["198.51.100.23"]
    # with prune the objects go
    whitelist(env, users=listed, prune=True)
    assert env.rule_of("user001") is None and env.pangolin.apply_rules_for(env.resource_id, "198.51.100.23") is None


# -- 3. an operator's rule at a user's old priority -----------------------------------------------------------
def test_an_operators_rule_at_a_users_old_priority_is_never_adopted(env):
    whitelist(env, users=[{"username": "user000"}])
    env.login("user000", "203.0.113.30")
    old = env.rule_of("user000")
    with env.pangolin.lock:  # deleted by hand in Pangolin's UI ...
        del env.pangolin.policy_rules[old["ruleId"]]
    office = env.pangolin.add_rule(env.resource_id, "ACCEPT", "IP", "192.0.2.77", old["priority"])  # ... the office
    msg = refused(env, users=[{"username": "user000", "priority": old["priority"]}])  # explicit: an error
    assert "priority %d collides with rule %d" % (old["priority"], office) in msg
    result = whitelist(env, users=[{"username": "user000"}])  # automatic: a free priority
    assert result["users"][0]["priority"] != old["priority"]
    env.login("user000", "203.0.113.31")
    assert pangolin_rule(env, office)["value"] == "192.0.2.77"  # the office still gets in, alone at its priority
    assert env.rule_of("user000")["value"] == "203.0.113.31" and env.rule_of("user000")["ruleId"] != office
    whitelist(env, users=[{"username": "user000", "state": "absent"}])
    assert pangolin_rule(env, office)["value"] == "192.0.2.77"  # removal leaves it too


# -- 4. revocation ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("follow_sessions", [True, False], ids=["sessions", "logins"])
def test_a_revoked_users_old_sessions_never_count_again(env, follow_sessions):
    whitelist(env, follow_sessions=follow_sessions, max_addresses=2)
    env.login("user002", "198.51.100.40")  # the phone, lost later
    assert env.pangolin.apply_rules_for(env.resource_id, "198.51.100.40") == "ACCEPT"
    expired = run_module("login_ip_whitelist_expire", module_args(env, follow_sessions=follow_sessions,
                                                                  max_addresses=2, expire_users=["user002"]))
    assert not expired.get("failed"), expired.get("msg")
    [entry] = expired["users"]
    assert entry["reason"] == "revoked" and entry["sessions_ended"] == 1 and "1 authentik session" in entry["summary"]
    assert env.authentik.sessions_of("user002") == []  # every device is logged out of authentik
    assert env.pangolin.apply_rules_for(env.resource_id, "198.51.100.40") is None
    env.login("user002", "198.51.100.41")  # the next login, from a new device
    assert env.pangolin.apply_rules_for(env.resource_id, "198.51.100.41") == "ACCEPT"
    assert env.pangolin.apply_rules_for(env.resource_id, "198.51.100.40") is None  # the old one never again
    env.login("user000", "198.51.100.42")  # another user's login makes authentik recompute user002's rules
    assert env.pangolin.apply_rules_for(env.resource_id, "198.51.100.40") is None


# -- 5. an emptied whitelist, a teardown ------------------------------------------------------------------------------
def managed(env, **extra):
    extra.setdefault("webhook_api_key", None)
    return whitelist(env, manage_webhook_key=True, **extra)


def keys_named(env, name):
    return [k for k in env.pangolin.api_keys.values() if k["name"] == name]


def test_an_emptied_whitelist_leaves_no_key_in_authentik_or_pangolin(env):
    managed(env)
    assert keys_named(env, HEAD + "/webhook") and [m for m in env.authentik.mappings.values()
                                                    if m["name"] == HEAD + "/headers"]
    predicted = managed(env, users=[], prune=True, check=True, diff=True)
    assert predicted["changed"] and any("headers" in d["before_header"] and not d["after"] for d in predicted["diff"])
    managed(env, users=[], prune=True)
    assert [m["name"] for m in env.authentik.mappings.values()] == []  # the key in clear text is gone
    assert keys_named(env, HEAD + "/webhook") == []
    assert env.authentik.transports == {} and env.authentik.rules == {} and env.pangolin.rules(env.resource_id) == []
    assert managed(env, users=[], prune=True)["changed"] is False


def test_state_absent_removes_everything_the_whitelist_owns_and_nothing_else(env):
    managed(env, login_email={"to_user": True})
    env.login("user000", "203.0.113.50")
    office = env.pangolin.add_rule(env.resource_id, "ACCEPT", "IP", "192.0.2.77", 50)
    mine = run_module("authentik_webhook_mapping", dict(authentik_url=env.authentik.base_url,
                                                        authentik_token=AUTHENTIK_TOKEN, name="my own mapping",
                                                        expression="return {}"))
    assert not mine.get("failed")
    writes_before = len(env.writes())
    predicted = managed(env, state="absent", check=True, diff=True)
    assert predicted["changed"] and len(env.writes()) == writes_before
    assert predicted["users"] and all(u["status"] == "removed" and "would remove" in u["summary"]
                                      for u in predicted["users"])
    managed(env, state="absent")
    assert [r["ruleId"] for r in env.pangolin.rules(env.resource_id)] == [office]
    assert [m["name"] for m in env.authentik.mappings.values()] == ["my own mapping"]
    assert env.authentik.transports == {} and env.authentik.rules == {} and env.authentik.policies == {}
    assert keys_named(env, HEAD + "/webhook") == []
    assert managed(env, state="absent")["changed"] is False


# -- 6. a field set back to nothing is cleared -----------------------------------------------------------------------
def test_a_login_email_moved_from_a_group_to_the_user_no_longer_mails_the_group(env):
    admins = env.authentik.add_group("admins", users=[env.authentik.user_by_username("akadmin")["pk"]])
    whitelist(env, login_email={"group": "admins"})
    rule = next(r for r in env.authentik.rules.values() if r["name"] == HEAD + "/login-email")
    assert rule["destination_group"] == admins
    whitelist(env, login_email={"to_user": True})
    rule = next(r for r in env.authentik.rules.values() if r["name"] == HEAD + "/login-email")
    assert rule["destination_group"] is None and rule["destination_event_user"] is True
    env.authentik.outbox.clear()
    env.login("user001", "203.0.113.61")
    assert [m["to"] for m in env.authentik.outbox] == ["user001@example.com"]
    assert whitelist(env, login_email={"to_user": True})["changed"] is False


# -- the review's findings ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("state", ["queued", "consumed", "preprocess", "running", "postprocess"])
def test_a_rotation_waits_for_webhook_tasks_in_every_unfinished_state(env, state):
    managed(env)
    old = [k for k, v in env.pangolin.api_keys.items() if v["name"] == HEAD + "/webhook"]
    assert len(old) == 1, old  # the checks on the old key below would hold for no key at all
    with env.authentik.lock:  # a webhook that rendered the old key, still in flight
        task = env.authentik._new_task("notification_transport", ("authentik_events", "notificationtransport",
                                                                   next(iter(env.authentik.transports))))
        task["state"] = state
    done = {}
    runner = threading.Thread(target=lambda: done.update(result=managed(env, rotate_webhook_key=True)))
    runner.start()
    # the mapping switches to the new key, and the old key stays while the task is unfinished
    wait_for(lambda: len(keys_named(env, HEAD + "/webhook")) == 2, what="the new key")
    wait_for(lambda: not any(o in (m["expression"]) for m in env.authentik.mappings.values() for o in old),
             what="the mapping switched")

    def webhook_task_polls():
        with env.authentik.lock:
            return sum(1 for e in env.authentik.log if e.path == "/api/v3/tasks/tasks/"
                       and any(a.endswith("notification_transport") for a in e.query.get("actor_name", [])))

    # the run asks the task API again and again (it is waiting), or it has given the old key up already
    wait_for(lambda: webhook_task_polls() >= 3 or [k for k in old if k in env.pangolin.api_keys] != old,
             what="the run waiting on the webhook task")
    assert runner.is_alive() and [k for k in old if k in env.pangolin.api_keys] == old
    with env.authentik.lock:
        task["state"] = "done"
    runner.join(60)
    assert not runner.is_alive() and done["result"]["changed"]
    assert [k for k in old if k in env.pangolin.api_keys] == []
