"""End to end: ``ansible-playbook playbooks/site.yml`` against both simulators.

Each test runs the real playbook (role, modules, module_defaults) and then
checks the simulators' state and what reached them. Users log in on the
authentik simulator, whose worker delivers in the background as the real one
does; a test waits until the worker is idle (or a rule holds an address), never
for a fixed time.
"""

import pytest

from tests.playbook_env import PlaybookEnv


@pytest.fixture
def env():
    with PlaybookEnv(users=3) as environment:
        yield environment


def converge(env, *args, **kwargs):
    rc, parsed, out, err = env.run(*args, **kwargs)
    assert rc == 0, (out[-4000:], err[-2000:])
    return parsed


def objects_of(env, username):
    """Every authentik object of one user's rules, by store."""
    names = set(env.slot_name(username, n) for n in range(1, 5))
    return dict((store, [o for o in getattr(env.authentik, store).values() if o.get("name") in names])
                for store in ("mappings", "transports"))


def group_rules(env):
    return sorted(r["name"] for r in env.authentik.rules.values())


def test_converge_then_each_login_moves_only_that_users_rule(env):
    parsed = converge(env)
    users = env.whitelist_users(parsed)
    assert sorted(users) == env.usernames
    assert sorted(u["priority"] for u in users.values()) == [100, 101, 102]
    assert all(u["status"] == "created" for u in users.values())
    assert env.pangolin.resource(env.resource_id)["applyRules"] is True
    for username in env.usernames:
        assert all(len(found) == 1 for found in objects_of(env, username).values()), username
        assert env.addresses_of(username) == ["0.0.0.0"]
    # Three users share one notification rule, one policy and one binding.
    assert group_rules(env) == ["jellyfin-whitelist-resource-%d/logins/1" % env.resource_id]
    assert len(env.authentik.bindings) == 1

    env.login("user001", "203.0.113.71")
    assert env.addresses_of("user001") == ["203.0.113.71"]
    assert env.addresses_of("user000") == env.addresses_of("user002") == ["0.0.0.0"]
    # Pangolin now lets that address through the resource, and nobody else's.
    assert env.pangolin.apply_rules_for(env.resource_id, "203.0.113.71") == "ACCEPT"
    assert env.pangolin.apply_rules_for(env.resource_id, "198.51.100.1") is None

    env.login("user000", "2001:db8::7")
    assert env.addresses_of("user000") == ["2001:db8::7"]
    assert env.addresses_of("user001") == ["203.0.113.71"]  # rewritten by user000's login, to the same value


def test_one_line_per_user_in_a_normal_run(env):
    rc, _parsed, out, err = env.run(stdout_callback="default")
    assert rc == 0, out[-3000:]
    for username, priority in (("user000", 100), ("user001", 101), ("user002", 102)):
        assert "%s: created, priority %d." % (username, priority) in out, out[-3000:]
    inventory = env.inventory(users=[{"username": "user000"}, {"username": "user001", "state": "absent"},
                                     {"username": "user002"}])
    rc, _parsed, out, err = env.run(stdout_callback="default", inventory=inventory)
    assert rc == 0, out[-3000:]
    assert "user000: unchanged, priority 100." in out and "user001: removed." in out


def test_rerun_changes_nothing_and_keeps_the_ips(env):
    converge(env)
    env.login("user002", "203.0.113.9")
    assert env.authentik.wait_idle(30)
    env.pangolin.reset_log()
    env.authentik.reset_log()
    parsed = converge(env)
    assert env.stats(parsed)["changed"] == 0
    assert env.writes() == []
    assert env.addresses_of("user002") == ["203.0.113.9"]
    users = env.whitelist_users(parsed)
    assert sorted(users) == env.usernames
    assert all(u["status"] == "unchanged" for u in users.values())


def test_check_diff_on_empty_setup_writes_nothing_and_predicts_the_real_run(env):
    rc, checked, out, err = env.run(check=True, diff=True)
    assert rc == 0, out[-3000:]
    assert env.writes() == []
    predicted = dict((name, u["changes"]) for name, u in env.whitelist_users(checked).items())
    assert sorted(predicted) == env.usernames
    assert all(predicted.values())
    real = converge(env, diff=True)
    done = dict((name, u["changes"]) for name, u in env.whitelist_users(real).items())
    assert predicted == done
    changed_tasks = lambda parsed: sorted(  # noqa: E731
        task["task"]["name"] for play in parsed["plays"] for task in play["tasks"]
        if (task["hosts"].get("localhost") or {}).get("changed"))
    assert changed_tasks(checked) == changed_tasks(real)


def test_absent_user_and_pruned_user_are_removed_and_nothing_else(env):
    converge(env)
    env.login("user000", "203.0.113.10")
    foreign = env.pangolin.add_rule(env.resource_id, "DROP", "CIDR", "10.0.0.0/8", 5)
    before_user2 = objects_of(env, "user002")
    inventory = env.inventory(users=[{"username": "user000"}, {"username": "user001", "state": "absent"}],
                              jellyfin_whitelist_prune=True)
    parsed = converge(env, inventory=inventory)
    users = env.whitelist_users(parsed)
    assert users["user001"]["state"] == "absent" and users["user002"]["pruned"]
    for gone in ("user001", "user002"):
        assert all(found == [] for found in objects_of(env, gone).values()), gone
    rules = env.pangolin.rules(env.resource_id)
    assert sorted(r["priority"] for r in rules) == [5, 100]
    assert [r["ruleId"] for r in rules if r["priority"] == 5] == [foreign]
    assert env.addresses_of("user000") == ["203.0.113.10"]
    assert before_user2["transports"]  # it did exist before pruning
    # The one group rule now sends only user000's transport.
    [rule] = env.authentik.rules.values()
    assert rule["transports"] == [objects_of(env, "user000")["transports"][0]["pk"]]


def test_renumbered_rules_are_repaired_by_the_next_run(env):
    converge(env)
    env.login("user001", "203.0.113.20")
    env.pangolin.renumber_rules()
    parsed = converge(env)
    assert env.stats(parsed)["changed"] == 1  # only the chain task, only the transports
    changes = env.whitelist_users(parsed)
    assert sorted(changes) == env.usernames
    assert all(u["changes"] == ["update notification transport %r" % env.slot_name(name)]
               for name, u in changes.items())
    assert env.addresses_of("user001") == ["203.0.113.20"]  # the renumbered rule kept its address
    env.login("user001", "203.0.113.21")
    assert env.addresses_of("user001") == ["203.0.113.21"]
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
    inventory = env.inventory(jellyfin_whitelist_pangolin_api_key="wrongkey0000001.nottherightsecret")
    rc, parsed, out, err = env.run(inventory=inventory)
    assert rc != 0
    task, failed = env.failure(parsed)
    assert "401" in failed["msg"] and "pangolin_api_key" in failed["msg"]
    assert "nottherightsecret" not in out + err
    assert env.writes() == []


def test_no_webhook_key_fails_before_any_write_and_names_both_options(env):
    inventory = env.inventory(jellyfin_whitelist_webhook_api_key=None,
                              jellyfin_whitelist_authentik_groups=["jellyfin"])
    rc, parsed, out, err = env.run(inventory=inventory)
    assert rc != 0
    task, failed = env.failure(parsed)
    assert "jellyfin_whitelist_webhook_api_key" in failed["msg"]
    assert "jellyfin_whitelist_manage_webhook_key" in failed["msg"] and "clear text" in failed["msg"]
    assert env.writes() == []  # not even the groups of the users step
    # and the playbook's key is refused by the module too, also when given as the webhook key
    inventory = env.inventory(jellyfin_whitelist_webhook_api_key=env.pangolin_key)
    rc, parsed, out, err = env.run(inventory=inventory)
    assert rc != 0 and "playbook's own Pangolin key" in env.failure(parsed)[1]["msg"]
    assert env.writes() == []


def test_ipv6_login_whitelists_its_prefix_and_ipv4_returns_to_one_address(env):
    inventory = env.inventory(jellyfin_whitelist_ipv6_prefix=64)
    converge(env, inventory=inventory)
    env.login("user000", "2001:db8:5:6:a1b2:c3d4:e5f6:1")
    rule = env.rule_of("user000")
    assert (rule["match"], rule["value"]) == ("CIDR", "2001:db8:5:6::/64")
    # A privacy address of the same device, rotated within the prefix, still gets in.
    assert env.pangolin.apply_rules_for(env.resource_id, "2001:db8:5:6:ffff::9") == "ACCEPT"
    assert env.pangolin.apply_rules_for(env.resource_id, "2001:db8:5:7::1") is None
    env.pangolin.reset_log()
    env.authentik.reset_log()
    parsed = converge(env, inventory=inventory, check=True, diff=True)
    assert env.stats(parsed)["changed"] == 0
    parsed = converge(env, inventory=inventory)
    assert env.stats(parsed)["changed"] == 0 and env.writes() == []
    env.login("user000", "203.0.113.44")
    rule = env.rule_of("user000")
    assert (rule["match"], rule["value"]) == ("IP", "203.0.113.44")


def test_an_ipv4_mapped_login_is_written_as_the_ipv4_address_the_gatekeeper_compares(env):
    """A dual-stack proxy reports IPv4 clients as ::ffff:a.b.c.d; a rule holding that form lets nobody in."""
    converge(env)  # no IPv6 prefix: the case that wrote the mapped form before
    env.login("user001", "::ffff:198.51.100.141")
    rule = env.rule_of("user001")
    assert (rule["match"], rule["value"]) == ("IP", "198.51.100.141")
    assert env.pangolin.apply_rules_for(env.resource_id, "198.51.100.141") == "ACCEPT"
    parsed = converge(env)
    assert env.stats(parsed)["changed"] == 0


def test_role_makes_and_rotates_its_own_webhook_key(env):
    inventory = env.inventory(jellyfin_whitelist_webhook_api_key=None, jellyfin_whitelist_manage_webhook_key=True)
    key_name = "jellyfin-whitelist-resource-%d/webhook" % env.resource_id
    parsed = converge(env, inventory=inventory, diff=True)
    keys = [k for k in env.pangolin.api_keys.values() if k.get("name") == key_name]
    assert len(keys) == 1 and keys[0]["actions"] == {"updateResourceRule"}
    env.login("user001", "198.51.100.31")
    assert env.addresses_of("user001") == ["198.51.100.31"]
    env.pangolin.reset_log()
    env.authentik.reset_log()
    parsed = converge(env, inventory=inventory)
    assert env.stats(parsed)["changed"] == 0 and env.writes() == []
    rc, parsed, out, err = env.run("-e", "jellyfin_whitelist_rotate_webhook_key=true", inventory=inventory,
                                   diff=True, verbosity=3)
    assert rc == 0, out[-3000:]
    new = [k for k in env.pangolin.api_keys.values() if k.get("name") == key_name]
    assert len(new) == 1 and new[0]["secret"] != keys[0]["secret"]
    for secret in (keys[0]["secret"], new[0]["secret"], env.pangolin_key.split(".")[1]):
        assert secret not in out + err
    env.login("user001", "198.51.100.32")
    assert env.addresses_of("user001") == ["198.51.100.32"]


def test_tags_run_only_their_part(env):
    inventory = env.inventory(jellyfin_whitelist_authentik_groups=["media"])
    parsed = converge(env, "--tags", "whitelist", inventory=inventory)
    assert not [g for g in env.authentik.groups.values() if g["name"] == "media"]
    assert env.whitelist_users(parsed)
    env.authentik.reset_log()
    env.pangolin.reset_log()
    parsed = converge(env, "--tags", "users", inventory=inventory)
    assert [g for g in env.authentik.groups.values() if g["name"] == "media"]
    assert env.whitelist_users(parsed) == {} and env.pangolin.writes() == []


def test_unknown_and_deprecated_variables_get_warnings(env):
    inventory = env.inventory(jellyfin_whitelist_usres=[{"username": "typo"}])
    data = env.inventory_data(inventory)
    data["pangolin_url"] = data.pop("jellyfin_whitelist_pangolin_url")  # the 0.2 name
    env.write_inventory(inventory, data)
    rc, parsed, out, err = env.run(inventory=inventory, stdout_callback="default")
    assert rc == 0, out[-3000:]
    text = " ".join((out + err).split())
    assert "jellyfin_whitelist_usres is not a variable of this role" in text
    assert "pangolin_url is deprecated; use jellyfin_whitelist_pangolin_url" in text
    assert env.pangolin.resource(env.resource_id)["applyRules"] is True  # the old name still works
