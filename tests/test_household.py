"""End to end: one whitelist over several resources, users from an authentik group, shared resource policies.

A household runs Jellyfin next to Jellyseerr and Audiobookshelf behind one
Pangolin: one whitelist (``jellyfin_whitelist_resources``) gives every user a
rule on each resource at one priority, and one login updates them all. The
authentik side (body mappings, notification rules, policies, bindings) is
shared; only the transports are per resource. Everything runs through the
playbooks against both simulators; authentik's worker delivers in the
background, and tests wait for it (never for a fixed time).
"""

import shutil
from datetime import timedelta

import pytest

from tests.playbook_env import PlaybookEnv, readme_key_actions

INSTANCE = "household"
HEAD = "jellyfin-whitelist-" + INSTANCE
PLACEHOLDER = "0.0.0.0"
GROUP = "jellyfin"
NOBODY_S_ADDRESS = "198.51.100.250"  # an address nobody ever logs in from


@pytest.fixture
def env():
    with PlaybookEnv(users=3) as environment:
        yield environment


# -- setting up ---------------------------------------------------------------------------------------------
def add_resource(env, subdomain):
    """Another resource of the household's org, with rules off (as Pangolin makes it)."""
    return env.pangolin.add_resource("homelab", subdomain.title(), subdomain=subdomain,
                                     full_domain="%s.example.com" % subdomain)


def household(env, resources, **overrides):
    """The inventory of one whitelist over ``resources`` (ids, or names given as strings)."""
    listed = [{"name": r} if isinstance(r, str) else {"id": r} for r in resources]
    overrides.setdefault("jellyfin_whitelist_instance", INSTANCE)
    return env.inventory(jellyfin_whitelist_resources=listed, **overrides)


def inventory_named(env, name, **overrides):
    """An inventory in a directory of its own, so two inventories can live side by side."""
    target = env.workdir / name
    shutil.copytree(env.inventory(**overrides), target, dirs_exist_ok=True)
    return target


def delete_resource(env, resource_id):
    """What deleting a resource in Pangolin's UI leaves: no resource, and none of its rules."""
    sim = env.pangolin
    with sim.lock:
        resource = sim.resources.pop(resource_id)
        for rule_id in [i for i, r in sim.policy_rules.items()
                        if r["resourcePolicyId"] == resource["defaultResourcePolicyId"]]:
            del sim.policy_rules[rule_id]
        sim.policies.pop(resource["defaultResourcePolicyId"], None)


def pk_of(env, username):
    return env.authentik.user_by_username(username)["pk"]


def age_logins(env, username, days):
    """As if the user's logins had happened ``days`` earlier (nothing is delivered for that)."""
    for event in env.authentik.events_of("login"):
        if event.user.get("username") == username:
            event.created -= timedelta(days=days)


# -- running ------------------------------------------------------------------------------------------------
def converge(env, inventory, *args, playbook="site.yml", **kwargs):
    rc, parsed, out, err = env.run(*args, inventory=inventory, playbook=playbook, **kwargs)
    assert rc == 0, (out[-4000:], err[-2000:])
    return parsed


def refused(env, inventory):
    """The message of the task that failed the run."""
    rc, parsed, out, err = env.run(inventory=inventory)
    assert rc != 0, out[-3000:]
    task, failed = env.failure(parsed)
    assert failed, out[-3000:]
    return failed["msg"]


def settle(env):
    """Let authentik's worker deliver what it queued, then forget every request so far."""
    assert env.authentik.wait_idle(60), "authentik's worker did not drain"
    env.pangolin.reset_log()
    env.authentik.reset_log()


def assert_rerun_is_a_no_op(env, inventory):
    settle(env)
    parsed = converge(env, inventory)
    assert env.stats(parsed)["changed"] == 0, env.whitelist_users(parsed)
    assert env.writes() == []


def changes_by_user(env, parsed):
    return dict((name, u["changes"]) for name, u in env.whitelist_users(parsed).items())


def changed_tasks(parsed):
    return sorted(task["task"]["name"] for play in parsed["plays"] for task in play["tasks"]
                  if (task["hosts"].get("localhost") or {}).get("changed"))


# -- reading the simulators ---------------------------------------------------------------------------------
def ours(store, head=HEAD):
    """Names of the objects of one whitelist in an authentik store."""
    return sorted(o["name"] for o in store.values() if o.get("name", "").startswith(head + "/"))


def transport_name(username, resource_id, first, head=HEAD):
    """The first listed resource keeps the plain name; the others carry their id."""
    name = "%s/%s/1" % (head, username)
    return name if resource_id == first else "%s/resource-%d" % (name, resource_id)


def target_of(transport):
    """(resource id, rule id) a transport posts to."""
    resource_id, rule_id = [int(x) for x in transport["webhook_url"].rstrip("/").split("/")[-3::2]]
    return resource_id, rule_id


def transports_of(env, username, head=HEAD):
    prefix = "%s/%s/1" % (head, username)
    return [t for t in env.authentik.transports.values()
            if t["name"] == prefix or t["name"].startswith(prefix + "/resource-")]


def rule_on(env, username, resource_id, head=HEAD):
    """The user's rule on a resource: the one the user's transport to that resource posts to."""
    targets = [target_of(t) for t in transports_of(env, username, head)]
    rule_ids = [rule_id for rid, rule_id in targets if rid == resource_id]
    assert len(rule_ids) <= 1, "%s has %d transports to resource %d" % (username, len(rule_ids), resource_id)
    rules = [r for r in env.pangolin.rules(resource_id) if rule_ids and r["ruleId"] == rule_ids[0]]
    return rules[0] if rules else None


def addresses_on(env, username, resources, head=HEAD):
    """What the user's rule holds on each resource (None: no rule)."""
    rules = [rule_on(env, username, r, head) for r in resources]
    return [rule["value"] if rule else None for rule in rules]


def gatekeeper(env, resources, address):
    """What Pangolin decides for ``address`` on each resource."""
    return [env.pangolin.apply_rules_for(r, address) for r in resources]


def login_cost(env, username, address):
    """The worker tasks one login queues, counted once it has delivered everything."""
    settle(env)
    env.authentik.reset_counts()
    env.login(username, address)
    return dict(env.authentik.enqueued)


# -- 1. several resources in one run ------------------------------------------------------------------------
@pytest.mark.parametrize("count", [2, 3])
def test_every_user_gets_a_rule_on_every_resource_at_one_priority(env, count):
    resources = [env.resource_id] + [add_resource(env, s) for s in ("requests", "audiobooks")][:count - 1]
    assert [env.pangolin.resource(r)["applyRules"] for r in resources] == [False] * count
    parsed = converge(env, household(env, resources))
    users = env.whitelist_users(parsed)
    assert sorted(users) == env.usernames
    assert sorted(u["priority"] for u in users.values()) == [100, 101, 102]
    for username, report in users.items():
        assert [(r["resource_id"], r["priority"]) for r in report["rules"]] == \
            [(rid, report["priority"]) for rid in resources]
    for resource_id in resources:
        assert env.pangolin.resource(resource_id)["applyRules"] is True
        assert len(env.pangolin.rules(resource_id)) == len(env.usernames)
        for username in env.usernames:
            rule = rule_on(env, username, resource_id)
            assert (rule["action"], rule["match"], rule["value"]) == ("ACCEPT", "IP", PLACEHOLDER)
            assert rule["priority"] == users[username]["priority"]
    # A transport per user per resource ...
    assert ours(env.authentik.transports) == sorted(transport_name(u, r, resources[0])
                                                    for u in env.usernames for r in resources)
    # ... and nothing else multiplied: one body mapping per user, one notification rule, policy and binding.
    assert ours(env.authentik.mappings) == sorted([HEAD + "/headers"] + ["%s/%s/1" % (HEAD, u) for u in env.usernames])
    assert ours(env.authentik.rules) == ours(env.authentik.policies) == [HEAD + "/logins/1"]
    assert len(env.authentik.bindings) == 1
    [rule] = env.authentik.rules.values()
    assert sorted(rule["transports"]) == sorted(t["pk"] for t in env.authentik.transports.values())
    assert_rerun_is_a_no_op(env, household(env, resources))


def test_resources_given_by_name_are_the_same_whitelist_as_by_id(env):
    requests = add_resource(env, "requests")
    converge(env, household(env, [env.resource_id, requests]))
    by_name = household(env, ["jellyfin.example.com", "Requests"], jellyfin_whitelist_org_id="homelab")
    assert_rerun_is_a_no_op(env, by_name)


# -- 2. adding and removing a resource ----------------------------------------------------------------------
@pytest.mark.parametrize("position", ["last", "first"])
def test_an_added_resource_converges_in_one_run_as_check_mode_predicted(env, position):
    requests, books = add_resource(env, "requests"), add_resource(env, "audiobooks")
    converge(env, household(env, [env.resource_id, requests]))
    env.login("user000", "203.0.113.10")
    before = dict((r, env.pangolin.rules(r)) for r in (env.resource_id, requests))
    # Listed first, the new resource's transports take the plain names from the old first resource's.
    resources = [env.resource_id, requests, books] if position == "last" else [books, env.resource_id, requests]
    grown = household(env, resources)
    settle(env)
    checked = converge(env, grown, check=True, diff=True)
    assert env.writes() == [] and env.pangolin.rules(books) == []
    assert env.stats(checked)["changed"] > 0
    predicted = changes_by_user(env, checked)
    for username in env.usernames:
        assert "create notification transport %r" % transport_name(username, books, resources[0]) \
            in predicted[username], predicted[username]
    real = converge(env, grown, diff=True)
    assert changes_by_user(env, real) == predicted
    assert changed_tasks(real) == changed_tasks(checked)
    # The new resource got every user's rule at the user's priority, the logged-in user's address at once;
    # nothing on the other resources moved.
    assert dict((r, env.pangolin.rules(r)) for r in before) == before
    assert env.pangolin.resource(books)["applyRules"] is True
    for username in env.usernames:
        assert rule_on(env, username, books)["priority"] == rule_on(env, username, env.resource_id)["priority"]
    assert ours(env.authentik.transports) == sorted(transport_name(u, r, resources[0])
                                                    for u in env.usernames for r in resources)
    assert addresses_on(env, "user000", resources) == ["203.0.113.10"] * 3
    assert gatekeeper(env, [books], "203.0.113.10") == ["ACCEPT"]
    assert len(env.authentik.rules) == 1 and len(env.authentik.policies) == 1
    assert_rerun_is_a_no_op(env, grown)
    env.login("user000", "203.0.113.11")
    assert gatekeeper(env, resources, "203.0.113.11") == ["ACCEPT"] * 3


def test_reordering_the_resources_renames_transports_and_keeps_every_rule(env):
    requests = add_resource(env, "requests")
    converge(env, household(env, [env.resource_id, requests]))
    env.login("user002", "203.0.113.12")
    rules = dict((r, env.pangolin.rules(r)) for r in (env.resource_id, requests))
    transports = sorted(t["pk"] for t in env.authentik.transports.values())
    swapped = household(env, [requests, env.resource_id])
    parsed = converge(env, swapped)
    # The same transports, renamed (the plain names now post to the new first resource), and the same rules.
    assert sorted(t["pk"] for t in env.authentik.transports.values()) == transports
    assert ours(env.authentik.transports) == sorted(transport_name(u, r, requests)
                                                    for u in env.usernames for r in rules)
    assert dict((r, env.pangolin.rules(r)) for r in rules) == rules
    changes = [c for u in env.whitelist_users(parsed).values() for c in u["changes"]]
    assert changes and all(c.startswith("update notification transport") for c in changes), changes
    assert_rerun_is_a_no_op(env, swapped)
    env.login("user002", "203.0.113.13")
    assert addresses_on(env, "user002", [requests, env.resource_id]) == ["203.0.113.13"] * 2


def test_a_priority_taken_on_an_added_resource_moves_the_user_on_every_resource(env):
    requests, books = add_resource(env, "requests"), add_resource(env, "audiobooks")
    converge(env, household(env, [env.resource_id, requests]))
    env.login("user001", "203.0.113.15")
    assert rule_on(env, "user001", env.resource_id)["priority"] == 101
    hand_made = env.pangolin.add_rule(books, "DROP", "CIDR", "10.0.0.0/8", 101)
    grown = household(env, [env.resource_id, requests, books])
    converge(env, grown)
    # One priority for the user on every resource, free on each: the rules move, with their address.
    resources = [env.resource_id, requests, books]
    assert [rule_on(env, "user001", r)["priority"] for r in resources] == [103] * 3
    assert addresses_on(env, "user001", resources) == ["203.0.113.15"] * 3
    assert [(r["ruleId"], r["priority"]) for r in env.pangolin.rules(books) if r["action"] == "DROP"] == \
        [(hand_made, 101)]
    assert [sorted(r["priority"] for r in env.pangolin.rules(rid)) for rid in resources[:2]] == [[100, 102, 103]] * 2
    assert gatekeeper(env, resources, "203.0.113.15") == ["ACCEPT"] * 3
    assert_rerun_is_a_no_op(env, grown)


@pytest.mark.parametrize("removed", ["first", "middle"])
def test_a_removed_resource_loses_only_this_whitelists_rules(env, removed):
    requests, books = add_resource(env, "requests"), add_resource(env, "audiobooks")
    everything = [env.resource_id, requests, books]
    converge(env, household(env, everything))
    env.login("user001", "203.0.113.20")
    gone = everything[0] if removed == "first" else requests
    staying = [r for r in everything if r != gone]
    hand_made = env.pangolin.add_rule(gone, "ACCEPT", "IP", "192.0.2.50", 5)
    kept = dict((r, env.pangolin.rules(r)) for r in staying)
    smaller = household(env, staying)
    settle(env)
    checked = converge(env, smaller, check=True, diff=True)
    assert env.writes() == [] and len(env.pangolin.rules(gone)) == 4
    assert env.stats(checked)["changed"] > 0
    predicted = changes_by_user(env, checked)
    assert sorted(predicted) == sorted(env.usernames), predicted  # (an empty prediction would pass all())
    assert all(any(c.startswith("delete rule") and c.endswith("on resource %d" % gone) for c in changes)
               for changes in predicted.values()), predicted
    real = converge(env, smaller, diff=True)
    assert changes_by_user(env, real) == predicted
    assert changed_tasks(real) == changed_tasks(checked)
    # Only the hand-made rule is left there, and nothing of the whitelist posts to it any more.
    assert [r["ruleId"] for r in env.pangolin.rules(gone)] == [hand_made]
    assert not [t for t in env.authentik.transports.values() if target_of(t)[0] == gone]
    assert gatekeeper(env, [gone], "203.0.113.20") == [None]
    # The resources that stay keep their rules and addresses; the first of them now has the plain names.
    assert dict((r, env.pangolin.rules(r)) for r in staying) == kept
    assert ours(env.authentik.transports) == sorted(transport_name(u, r, staying[0])
                                                    for u in env.usernames for r in staying)
    assert addresses_on(env, "user001", staying) == ["203.0.113.20"] * 2
    assert_rerun_is_a_no_op(env, smaller)
    env.login("user001", "203.0.113.21")
    assert addresses_on(env, "user001", staying) == ["203.0.113.21"] * 2
    assert [r["value"] for r in env.pangolin.rules(gone)] == ["192.0.2.50"]


def test_a_resource_deleted_in_pangolin_can_be_taken_off_the_list(env):
    requests = add_resource(env, "requests")
    converge(env, household(env, [env.resource_id, requests]))
    env.login("user000", "203.0.113.25")
    delete_resource(env, requests)  # the operator deleted it in Pangolin first
    smaller = household(env, [env.resource_id])
    converge(env, smaller)
    # What posted to it is gone; the rest of the whitelist is whole.
    assert ours(env.authentik.transports) == sorted("%s/%s/1" % (HEAD, u) for u in env.usernames)
    assert addresses_on(env, "user000", [env.resource_id]) == ["203.0.113.25"]
    assert_rerun_is_a_no_op(env, smaller)


def test_a_teardown_removes_the_whitelist_from_every_resource_and_nothing_else(env):
    resources = [env.resource_id, add_resource(env, "requests"), add_resource(env, "audiobooks")]
    inventory = household(env, resources)
    converge(env, inventory)
    env.login("user000", "203.0.113.26")
    hand_made = dict((r, env.pangolin.add_rule(r, "DROP", "CIDR", "10.0.0.0/8", 5)) for r in resources)
    converge(env, inventory, "-e", "jellyfin_whitelist_state=absent")
    assert dict((r, [x["ruleId"] for x in env.pangolin.rules(r)]) for r in resources) == \
        dict((r, [rule_id]) for r, rule_id in hand_made.items())
    for store in ("mappings", "transports", "rules", "policies"):
        assert ours(getattr(env.authentik, store)) == [], store
    assert env.authentik.bindings == {}
    assert gatekeeper(env, resources, "203.0.113.26") == [None] * 3


# -- 3. one login, every resource ---------------------------------------------------------------------------
def test_one_login_lets_the_user_in_on_every_resource(env):
    resources = [env.resource_id, add_resource(env, "requests"), add_resource(env, "audiobooks")]
    converge(env, household(env, resources))
    env.login("user001", "203.0.113.71")
    assert addresses_on(env, "user001", resources) == ["203.0.113.71"] * 3
    assert addresses_on(env, "user000", resources) == addresses_on(env, "user002", resources) == [PLACEHOLDER] * 3
    assert gatekeeper(env, resources, "203.0.113.71") == ["ACCEPT"] * 3
    assert gatekeeper(env, resources, NOBODY_S_ADDRESS) == [None] * 3
    # The next login moves every rule: the old address gets in nowhere.
    env.login("user001", "203.0.113.72")
    assert gatekeeper(env, resources, "203.0.113.72") == ["ACCEPT"] * 3
    assert gatekeeper(env, resources, "203.0.113.71") == [None] * 3


# -- 4. doctor and expiry ------------------------------------------------------------------------------------
def test_the_doctor_examines_every_resource(env):
    resources = [env.resource_id, add_resource(env, "requests"), add_resource(env, "audiobooks")]
    inventory = household(env, resources)
    converge(env, inventory)
    env.login("user000", "203.0.113.40")
    settle(env)
    parsed = converge(env, inventory, playbook="doctor.yml")
    (result,) = env.task_results(parsed, "Examine the login")
    assert result["healthy"] and result["resource_ids"] == resources
    examined = dict((u["username"], sorted((a["resource_id"], a["value"]) for a in u["addresses"]))
                    for u in result["users"])
    assert examined["user000"] == [(r, "203.0.113.40") for r in resources]
    assert examined["user001"] == [(r, PLACEHOLDER) for r in resources]
    assert env.writes() == []
    # A link broken on the last resource only is found, for that user and that resource.
    last = resources[-1]
    env.pangolin.policy_rules[rule_on(env, "user001", last)["ruleId"]]["enabled"] = False
    rc, parsed, out, err = env.run(playbook="doctor.yml", inventory=inventory)
    assert rc != 0, out[-3000:]
    report = env.task_results(parsed, "Report")[0]["msg"]
    assert any(line.startswith("user001: BROKEN") for line in report), report
    assert any(line.startswith("user000: OK") for line in report), report
    assert any("user001: PROBLEM" in line and "resource %d" % last in line and "disabled" in line
               for line in report), report
    assert env.writes() == []


def test_expiry_resets_the_rules_on_every_resource(env):
    resources = [env.resource_id, add_resource(env, "requests"), add_resource(env, "audiobooks")]
    inventory = household(env, resources)
    converge(env, inventory)
    env.login("user000", "203.0.113.61")
    env.login("user001", "203.0.113.62")
    age_logins(env, "user001", 45)
    settle(env)
    checked = converge(env, inventory, playbook="expire.yml", check=True, diff=True)
    assert env.writes() == []
    (result,) = env.task_results(checked, "Stop whitelisting")
    assert result["changed"] and [u["username"] for u in result["users"] if u["expired"]] == ["user001"]
    converge(env, inventory, playbook="expire.yml")
    assert addresses_on(env, "user001", resources) == [PLACEHOLDER] * 3
    assert addresses_on(env, "user000", resources) == ["203.0.113.61"] * 3
    assert gatekeeper(env, resources, "203.0.113.62") == [None] * 3
    assert gatekeeper(env, resources, "203.0.113.61") == ["ACCEPT"] * 3
    # Three rules reset, one per resource, and nothing else written.
    assert sorted(w.path for w in env.writes()) == sorted(
        "/v1/resource/%d/rule/%d" % (r, rule_on(env, "user001", r)["ruleId"]) for r in resources)
    settle(env)
    again = converge(env, inventory, playbook="expire.yml")
    assert not env.task_results(again, "Stop whitelisting")[0]["changed"] and env.writes() == []
    assert_rerun_is_a_no_op(env, inventory)


# -- 5. what a login costs authentik's worker ------------------------------------------------------------------
def test_one_whitelist_over_two_resources_costs_fewer_worker_tasks_per_login_than_two_whitelists():
    with PlaybookEnv(users=3) as env:
        requests = add_resource(env, "requests")
        converge(env, household(env, [env.resource_id, requests]))
        shared = login_cost(env, "user001", "203.0.113.80")
        assert addresses_on(env, "user001", [env.resource_id, requests]) == ["203.0.113.80"] * 2
    with PlaybookEnv(users=3) as env:
        requests = add_resource(env, "requests")
        converge(env, inventory_named(env, "jellyfin", jellyfin_whitelist_instance="jellyfin"))
        converge(env, inventory_named(env, "requests", jellyfin_whitelist_instance="requests",
                                      jellyfin_whitelist_resource_id=requests))
        assert len(env.authentik.rules) == 2
        separate = login_cost(env, "user001", "203.0.113.80")
        assert addresses_on(env, "user001", [env.resource_id], "jellyfin-whitelist-jellyfin") == ["203.0.113.80"]
        assert addresses_on(env, "user001", [requests], "jellyfin-whitelist-requests") == ["203.0.113.80"]
    # authentik runs one handler task per notification rule for every event: the shared whitelist has one rule.
    assert (shared["event_trigger_handler"], separate["event_trigger_handler"]) == (1, 2)
    # Both post one webhook per user per resource (the rules are computed from authentik's state).
    assert shared["notification_transport"] == separate["notification_transport"] == 3 * 2


# -- 6. the users of an authentik group -----------------------------------------------------------------------
def group_household(env, resources, users=(), **overrides):
    return household(env, resources, jellyfin_whitelist_users=list(users),
                     jellyfin_whitelist_users_from_group=GROUP, **overrides)


def make_group(env, *usernames):
    return env.authentik.add_group(GROUP, users=[pk_of(env, u) for u in usernames])


def test_a_member_who_joins_gets_rules_and_one_who_leaves_loses_access(env):
    resources = [env.resource_id, add_resource(env, "requests")]
    group = make_group(env, "user000", "user001")
    inventory = group_household(env, resources)
    parsed = converge(env, inventory)
    assert sorted(env.whitelist_users(parsed)) == ["user000", "user001"]
    assert addresses_on(env, "user002", resources) == [None, None]
    env.login("user001", "203.0.113.31")
    assert gatekeeper(env, resources, "203.0.113.31") == ["ACCEPT"] * 2
    # user002 joins: rules on every resource in the next run, and logins let them in
    env.authentik.groups[group]["users"].append(pk_of(env, "user002"))
    parsed = converge(env, inventory)
    assert env.whitelist_users(parsed)["user002"]["status"] == "created"
    env.login("user002", "203.0.113.32")
    assert gatekeeper(env, resources, "203.0.113.32") == ["ACCEPT"] * 2
    # user001 leaves: the doctor sees a user who is let in without being listed ...
    env.authentik.groups[group]["users"].remove(pk_of(env, "user001"))
    settle(env)
    rc, parsed, out, err = env.run(playbook="doctor.yml", inventory=inventory)
    assert rc != 0 and env.writes() == [], out[-3000:]
    report = env.task_results(parsed, "Report")[0]["msg"]
    assert any("'user001'" in line and "still let in" in line and
               all("resource %d" % r in line for r in resources) for line in report), report
    # ... and the next run ends the access on every resource ...
    parsed = converge(env, inventory)
    assert env.whitelist_users(parsed)["user001"]["status"] == "disabled"
    assert addresses_on(env, "user001", resources) == [PLACEHOLDER] * 2
    assert gatekeeper(env, resources, "203.0.113.31") == [None] * 2
    # ... and a later login of user001 sends nothing, while the members' logins still work.
    env.login("user001", "203.0.113.33")
    env.login("user000", "203.0.113.34")
    assert gatekeeper(env, resources, "203.0.113.33") == [None] * 2
    assert gatekeeper(env, resources, "203.0.113.34") == ["ACCEPT"] * 2
    assert addresses_on(env, "user001", resources) == [PLACEHOLDER] * 2
    assert_rerun_is_a_no_op(env, inventory)


@pytest.mark.parametrize("playbook", ["site.yml", "expire.yml"])
def test_a_deactivated_member_loses_access_in_the_next_run(env, playbook):
    resources = [env.resource_id, add_resource(env, "requests")]
    make_group(env, *env.usernames)
    inventory = group_household(env, resources)
    converge(env, inventory)
    env.login("user000", "203.0.113.40")
    env.login("user001", "203.0.113.41")
    assert gatekeeper(env, resources, "203.0.113.40") == ["ACCEPT"] * 2
    # deactivated without an event reaching the rules: only the run can end the access
    env.authentik.user_by_username("user000")["is_active"] = False
    parsed = converge(env, inventory, playbook=playbook)
    assert addresses_on(env, "user000", resources) == [PLACEHOLDER] * 2
    assert gatekeeper(env, resources, "203.0.113.40") == [None] * 2
    assert gatekeeper(env, resources, "203.0.113.41") == ["ACCEPT"] * 2
    if playbook == "site.yml":
        assert env.whitelist_users(parsed)["user000"]["status"] == "disabled"
        assert_rerun_is_a_no_op(env, inventory)
    else:
        (result,) = env.task_results(parsed, "Stop whitelisting")
        assert [u["username"] for u in result["users"] if u["expired"]] == ["user000"]


def test_inventory_entries_give_group_members_a_priority_or_remove_them(env):
    resources = [env.resource_id, add_resource(env, "requests")]
    make_group(env, *env.usernames)
    env.authentik.add_user("outsider", name="Outsider", email="outsider@example.com")  # not a member
    converge(env, group_household(env, resources))
    env.login("user001", "203.0.113.50")
    env.login("user002", "203.0.113.51")
    entries = [{"username": "user002", "priority": 150}, {"username": "user001", "state": "absent"},
               {"username": "outsider", "priority": 160}]
    inventory = group_household(env, resources, users=entries)
    parsed = converge(env, inventory)
    users = env.whitelist_users(parsed)
    assert users["user001"]["status"] == "removed" and "outsider" not in users
    assert [rule_on(env, "user002", r)["priority"] for r in resources] == [150, 150]
    assert addresses_on(env, "user002", resources) == ["203.0.113.51"] * 2
    assert addresses_on(env, "user001", resources) == [None, None]
    assert not [n for n in ours(env.authentik.mappings) + ours(env.authentik.transports) if "/user001/" in n]
    assert gatekeeper(env, resources, "203.0.113.50") == [None] * 2
    for resource_id in resources:
        assert sorted(r["priority"] for r in env.pangolin.rules(resource_id)) == [100, 150]
    assert_rerun_is_a_no_op(env, inventory)


# -- 7. a resource on a shared resource policy --------------------------------------------------------------
def shared_resource(env, apply_rules=True):
    """A resource on a shared policy that drops everyone its rules do not let in."""
    policy = env.pangolin.add_shared_policy("homelab", "Media", apply_rules=apply_rules,
                                            rules=[("DROP", "CIDR", "0.0.0.0/0", 1)])
    resource_id = add_resource(env, "requests")
    env.pangolin.attach_shared_policy(resource_id, policy)
    return resource_id, policy


def test_rules_on_a_shared_policy_resource_go_into_its_overrides(env):
    requests, policy = shared_resource(env)
    resources = [env.resource_id, requests]
    operators_own = env.pangolin.add_rule(requests, "ACCEPT", "CIDR", "192.0.2.0/24", 5)  # an override too
    shared_before = env.pangolin.policy(policy)
    inventory = household(env, resources)
    converge(env, inventory)
    overrides = env.pangolin.rules(requests)  # with a shared policy: the resource's overrides only
    assert len(overrides) == 4 and all(r["resourceId"] == requests for r in overrides)
    assert operators_own in [r["ruleId"] for r in overrides]
    assert env.pangolin.policy(policy) == shared_before  # the shared policy is never changed
    # Nor the resource's own settings: an update without the policy would detach it and clear the overrides.
    assert not [w for w in env.pangolin.writes() if w.path == "/v1/resource/%d" % requests]
    env.login("user000", "203.0.113.60")
    assert addresses_on(env, "user000", resources) == ["203.0.113.60"] * 2
    assert gatekeeper(env, resources, "203.0.113.60") == ["ACCEPT"] * 2
    # The overrides come first; the shared policy still drops everyone else.
    assert gatekeeper(env, [requests], NOBODY_S_ADDRESS) == ["DROP"]
    assert_rerun_is_a_no_op(env, inventory)
    assert len(env.pangolin.rules(requests)) == 4


def test_a_shared_policy_with_rules_off_is_refused_before_any_write(env):
    requests, policy = shared_resource(env, apply_rules=False)
    inventory = household(env, [env.resource_id, requests])
    message = refused(env, inventory)
    assert "resource %d" % requests in message and "'Media'" in message and "applyRules" in message, message
    assert env.writes() == []
    env.pangolin.policies[policy]["applyRules"] = True  # the operator turns rules on in the shared policy
    converge(env, inventory)
    env.login("user002", "203.0.113.70")
    assert gatekeeper(env, [requests], "203.0.113.70") == ["ACCEPT"]


def test_a_key_that_cannot_read_the_shared_policy_is_refused_clearly(env):
    requests, _policy = shared_resource(env)
    key = env.pangolin.add_api_key(root=True, actions=[a for a in readme_key_actions() if a != "getResourcePolicy"])
    message = refused(env, household(env, [env.resource_id, requests], jellyfin_whitelist_pangolin_api_key=key))
    assert "resource %d" % requests in message and "getResourcePolicy" in message, message
    assert key.split(".")[1] not in message
    assert env.writes() == []
    # Resources without a shared policy never need that action.
    converge(env, household(env, [env.resource_id], jellyfin_whitelist_pangolin_api_key=key))
    assert len(env.pangolin.rules(env.resource_id)) == 3


# -- upgrading from a one-resource inventory ---------------------------------------------------------------
def stored_objects(env):
    """Every object of both servers, as stored (pks, names, expressions, rule values)."""
    stores = ("mappings", "transports", "rules", "policies", "bindings")
    objects = dict((store, dict(getattr(env.authentik, store))) for store in stores)
    objects["pangolin"] = env.pangolin.rules(env.resource_id)
    return repr(objects)


def test_a_resource_id_inventory_reruns_unchanged_as_a_resources_list(env):
    converge(env, env.inventory(jellyfin_whitelist_resource_id=env.resource_id))
    env.login("user000", "203.0.113.90")
    settle(env)
    before = stored_objects(env)
    for listed in ([{"id": env.resource_id}], [{"name": "jellyfin.example.com"}]):
        parsed = converge(env, env.inventory(jellyfin_whitelist_resources=listed))
        assert env.stats(parsed)["changed"] == 0 and env.writes() == [], listed
        assert stored_objects(env) == before
    assert env.addresses_of("user000") == ["203.0.113.90"]


def test_a_one_resource_whitelist_grows_without_renaming_its_objects(env):
    converge(env, env.inventory())
    env.login("user000", "203.0.113.91")
    settle(env)
    requests = add_resource(env, "requests")
    both = [{"id": env.resource_id}, {"id": requests}]
    message = refused(env, env.inventory(jellyfin_whitelist_resources=both))
    assert "instance is required" in message and repr("resource-%d" % env.resource_id) in message, message
    assert env.writes() == []
    head = "jellyfin-whitelist-resource-%d" % env.resource_id
    before = dict((t["name"], t["pk"]) for t in env.authentik.transports.values())
    inventory = env.inventory(jellyfin_whitelist_resources=both,
                              jellyfin_whitelist_instance="resource-%d" % env.resource_id)
    converge(env, inventory)
    after = dict((t["name"], t["pk"]) for t in env.authentik.transports.values())
    assert dict((name, after.get(name)) for name in before) == before
    assert sorted(set(after) - set(before)) == sorted(transport_name(u, requests, env.resource_id, head)
                                                      for u in env.usernames)
    assert addresses_on(env, "user000", [env.resource_id, requests], head) == ["203.0.113.91"] * 2
    assert_rerun_is_a_no_op(env, inventory)
