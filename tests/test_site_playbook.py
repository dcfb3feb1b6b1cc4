"""End to end: ``ansible-playbook playbooks/site.yml`` against both simulators.

Each test runs the real playbook (role, modules, module_defaults) and then
checks the simulators' state and what reached them, and makes users log in
on the authentik simulator so authentik's pipeline writes their IPs.
"""

import pytest

from tests.playbook_env import PlaybookEnv

PREFIX = "jellyfin-whitelist-"


@pytest.fixture
def env():
    with PlaybookEnv(users=3) as environment:
        yield environment


def converge(env, **kwargs):
    rc, parsed, out, err = env.run(**kwargs)
    assert rc == 0, (out[-4000:], err[-2000:])
    return parsed


def objects_named(env, username):
    """Every authentik object of one user, by store."""
    name = PREFIX + username
    return dict((store, [o for o in getattr(env.authentik, store).values() if o.get("name") == name])
                for store in ("mappings", "transports", "policies", "rules"))


def test_converge_then_each_login_moves_only_that_users_rule(env):
    parsed = converge(env)
    users = env.whitelist_users(parsed)
    assert sorted(users) == env.usernames
    assert sorted(u["priority"] for u in users.values()) == [100, 101, 102]
    assert env.pangolin.resource(env.resource_id)["applyRules"] is True
    for username in env.usernames:
        assert all(len(found) == 1 for found in objects_named(env, username).values()), username
        assert env.rule_of(username)["value"] == "0.0.0.0"

    env.authentik.login("user001", "203.0.113.71")
    assert env.rule_of("user001")["value"] == "203.0.113.71"
    assert env.rule_of("user000")["value"] == "0.0.0.0"
    assert env.rule_of("user002")["value"] == "0.0.0.0"
    # Pangolin now lets that IP through the resource, and nobody else's.
    assert env.pangolin.apply_rules_for(env.resource_id, "203.0.113.71") == "ACCEPT"
    assert env.pangolin.apply_rules_for(env.resource_id, "198.51.100.1") is None

    env.authentik.login("user000", "2001:db8::7")
    assert env.rule_of("user000")["value"] == "2001:db8::7"
    assert env.rule_of("user001")["value"] == "203.0.113.71"


def test_rerun_changes_nothing_and_keeps_the_ips(env):
    converge(env)
    env.authentik.login("user002", "203.0.113.9")
    env.pangolin.reset_log()
    env.authentik.reset_log()
    parsed = converge(env)
    assert env.stats(parsed)["changed"] == 0
    assert env.writes() == []
    assert env.rule_of("user002")["value"] == "203.0.113.9"
    assert not any(u["changed"] for u in env.whitelist_users(parsed).values())


def test_check_diff_on_empty_setup_writes_nothing_and_predicts_the_real_run(env):
    rc, checked, out, err = env.run(check=True, diff=True)
    assert rc == 0, out[-3000:]
    assert env.writes() == []
    predicted = dict((name, u["changes"]) for name, u in env.whitelist_users(checked).items())
    assert all(predicted.values())
    real = converge(env, diff=True)
    done = dict((name, u["changes"]) for name, u in env.whitelist_users(real).items())
    assert predicted == done
    # The role's other writes (applyRules, headers mapping) are predicted too.
    changed_tasks = lambda parsed: sorted(
        task["task"]["name"] for play in parsed["plays"] for task in play["tasks"]
        if (task["hosts"].get("localhost") or {}).get("changed"))
    assert changed_tasks(checked) == changed_tasks(real)


def test_absent_user_and_pruned_user_are_removed_and_nothing_else(env):
    converge(env)
    env.authentik.login("user000", "203.0.113.10")
    foreign = env.pangolin.add_rule(env.resource_id, "DROP", "CIDR", "10.0.0.0/8", 5)
    before_user2 = objects_named(env, "user002")
    inventory = env.inventory(users=[{"username": "user000"}, {"username": "user001", "state": "absent"}],
                              jellyfin_whitelist_prune=True)
    parsed = converge(env, inventory=inventory)
    users = env.whitelist_users(parsed)
    assert users["user001"]["state"] == "absent" and users["user002"]["pruned"]
    for gone in ("user001", "user002"):
        assert all(found == [] for found in objects_named(env, gone).values()), gone
    rules = env.pangolin.rules(env.resource_id)
    assert sorted(r["priority"] for r in rules) == [5, 100]
    assert [r["ruleId"] for r in rules if r["priority"] == 5] == [foreign]
    assert env.rule_of("user000")["value"] == "203.0.113.10"
    assert before_user2["transports"]  # it did exist before pruning
    # The shared headers mapping is not a user's object and survives pruning.
    assert [m for m in env.authentik.mappings.values() if m["name"] == "jellyfin-whitelist pangolin headers"]


def test_renumbered_rules_are_repaired_by_the_next_run(env):
    converge(env)
    env.pangolin.renumber_rules()
    env.authentik.login("user001", "203.0.113.20")
    assert env.rule_of("user001") is None  # the transport points at a rule id that is gone
    parsed = converge(env)
    assert env.stats(parsed)["changed"] == 1  # only the chain task, only the transports
    changes = env.whitelist_users(parsed)
    assert all(u["changes"] == ["update notification transport '%s%s'" % (PREFIX, name)]
               for name, u in changes.items())
    env.authentik.login("user001", "203.0.113.21")
    assert env.rule_of("user001")["value"] == "203.0.113.21"
    assert len(env.pangolin.rules(env.resource_id)) == 3


def test_unknown_user_fails_before_any_write(env):
    inventory = env.inventory(users=[{"username": "user000"}, {"username": "nobody"}])
    rc, parsed, out, err = env.run(inventory=inventory)
    assert rc != 0
    task, failed = env.failure(parsed)
    assert "rule chain" in task
    assert "'nobody'" in failed["msg"] and "no user" in failed["msg"]
    assert env.writes() == []  # not even applyRules or the headers mapping


def test_missing_resource_is_a_clear_error_with_no_write(env):
    inventory = env.inventory(jellyfin_whitelist_resource="nope.example.com")
    rc, parsed, out, err = env.run(inventory=inventory)
    assert rc != 0
    task, failed = env.failure(parsed)
    assert "nope.example.com" in failed["msg"]
    assert env.writes() == []


def test_wrong_key_is_a_clear_error_with_no_write(env):
    inventory = env.inventory(pangolin_api_key="wrongkey0000001.nottherightsecret")
    rc, parsed, out, err = env.run(inventory=inventory)
    assert rc != 0
    task, failed = env.failure(parsed)
    assert "401" in failed["msg"] and "pangolin_api_key" in failed["msg"]
    assert "nottherightsecret" not in out + err
    assert env.writes() == []


def test_ipv6_login_whitelists_its_prefix_and_ipv4_returns_to_one_address(env):
    inventory = env.inventory(jellyfin_whitelist_ipv6_prefix=64)
    converge(env, inventory=inventory)
    env.authentik.login("user000", "2001:db8:5:6:a1b2:c3d4:e5f6:1")
    rule = env.rule_of("user000")
    assert (rule["match"], rule["value"]) == ("CIDR", "2001:db8:5:6::/64")
    # A privacy address of the same device, rotated within the prefix, still gets in.
    assert env.pangolin.apply_rules_for(env.resource_id, "2001:db8:5:6:ffff::9") == "ACCEPT"
    assert env.pangolin.apply_rules_for(env.resource_id, "2001:db8:5:7::1") is None
    # The rerun treats match and value as the webhook's: nothing changes.
    env.pangolin.reset_log()
    env.authentik.reset_log()
    parsed = converge(env, inventory=inventory, check=True, diff=True)
    assert env.stats(parsed)["changed"] == 0
    parsed = converge(env, inventory=inventory)
    assert env.stats(parsed)["changed"] == 0 and env.writes() == []
    assert env.rule_of("user000")["match"] == "CIDR"
    env.authentik.login("user000", "203.0.113.44")
    rule = env.rule_of("user000")
    assert (rule["match"], rule["value"]) == ("IP", "203.0.113.44")
    env.authentik.login("user000", "::ffff:203.0.113.45")  # IPv4-mapped: still one IPv4 address
    rule = env.rule_of("user000")
    assert (rule["match"], rule["value"]) == ("IP", "203.0.113.45")
    parsed = converge(env, inventory=inventory)
    assert env.stats(parsed)["changed"] == 0


def test_role_makes_and_rotates_its_own_webhook_key(env):
    inventory = env.inventory(jellyfin_whitelist_webhook_api_key=None, jellyfin_whitelist_manage_webhook_key=True)
    parsed = converge(env, inventory=inventory, diff=True)
    keys = [k for k in env.pangolin.api_keys.values() if k.get("name") == "jellyfin-whitelist webhook"]
    assert len(keys) == 1 and keys[0]["actions"] == {"updateResourceRule"}
    assert not env.task_results(parsed, "Warn that authentik will send the Pangolin key")[0].get("msg")
    env.authentik.login("user001", "198.51.100.31")
    assert env.rule_of("user001")["value"] == "198.51.100.31"
    env.pangolin.reset_log()
    env.authentik.reset_log()
    parsed = converge(env, inventory=inventory)
    assert env.stats(parsed)["changed"] == 0 and env.writes() == []
    rc, parsed, out, err = env.run("-e", "jellyfin_whitelist_rotate_webhook_key=true", inventory=inventory,
                                   diff=True, verbosity=3)
    assert rc == 0, out[-3000:]
    new = [k for k in env.pangolin.api_keys.values() if k.get("name") == "jellyfin-whitelist webhook"]
    assert len(new) == 1 and new[0]["secret"] != keys[0]["secret"]
    for secret in (keys[0]["secret"], new[0]["secret"], env.pangolin_key.split(".")[1]):
        assert secret not in out + err
    env.authentik.login("user001", "198.51.100.32")
    assert env.rule_of("user001")["value"] == "198.51.100.32"
