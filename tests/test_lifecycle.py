"""Access lifecycle: exactly the current users' current addresses get through.

An ACCEPT rule bypasses SSO, so each case here is a security property: no rule
left behind after a priority change or a failed run, no rule of someone else
touched, no address in a form the gatekeeper does not match, failed logins
that cannot revoke a user, deactivated users who lose access, no key of the
playbook in authentik, two deployments side by side, and the adoption of an
install made by 0.2. The real modules run against both simulators; authentik's
worker delivers in the background.
"""

from datetime import timedelta

import pytest

from tests import legacy
from tests.module_harness import run_module
from tests.playbook_env import AUTHENTIK_TOKEN, PlaybookEnv, module_args


def whitelist(env, check=False, diff=False, **extra):
    extra.setdefault("webhook_api_key", env.webhook_key)
    result = run_module("login_ip_whitelist", module_args(env, **extra), check=check, diff=diff)
    assert not result.get("failed"), result.get("msg")
    return result


def failing(module, env, **extra):
    result = run_module(module, module_args(env, **extra))
    assert result.get("failed"), result
    return result["msg"]


def rules_at(env, priority):
    return [r for r in env.pangolin.rules(env.resource_id) if r["priority"] == priority]


@pytest.fixture
def env():
    with PlaybookEnv(users=3) as environment:
        yield environment


# -- 1. a priority change moves the user's rule, with its address --------------------------------
@pytest.mark.parametrize("check", [True, False], ids=["check", "real"])
def test_a_priority_change_moves_the_rule_and_leaves_nothing_at_the_old_one(env, check):
    users = [{"username": "user000", "priority": 100}, {"username": "user001"}, {"username": "user002"}]
    whitelist(env, users=users)
    env.login("user000", "203.0.113.50")
    before = env.rule_of("user000")
    moved = [{"username": "user000", "priority": 150}] + users[1:]
    env.pangolin.reset_log()
    result = whitelist(env, users=moved, check=check, diff=True)
    rule_diffs = [d for d in result["diff"] if d["before_header"].startswith("rule priority")]
    assert [(d["before"]["priority"], d["after"]["priority"]) for d in rule_diffs] == [(100, 150)]
    assert rule_diffs[0]["after"]["value"] == "203.0.113.50"  # the address goes with it
    moving, moved_body = [d for d in result["diff"] if "webhook mapping" in d["before_header"]]
    # while the rule moves, the body mapping also records where it comes from (a run that stops half-way still
    # proves the rule the whitelist's); then that goes, and the net change is the priority alone; the diff shows
    # the settings, its code is the same
    changed = lambda before, after: dict((k, v) for k, v in after["settings"].items()
                                         if before["settings"].get(k, "missing") != v)
    assert changed(moving["before"], moving["after"]) == {"priority": 150, "previous_priority": 100}
    assert changed(moving["before"], moved_body["after"]) == {"priority": 150}
    assert moving["before"]["code"] == moved_body["after"]["code"] and "expression" not in moved_body["after"]
    if check:
        assert env.pangolin.writes() == [] and env.rule_of("user000")["priority"] == 100
        return
    after = env.rule_of("user000")
    assert after["ruleId"] == before["ruleId"] and after["priority"] == 150 and after["value"] == "203.0.113.50"
    assert rules_at(env, 100) == []  # nothing left at the old priority
    env.login("user000", "203.0.113.51")  # the body now sends the new priority: the rule stays there
    assert env.rule_of("user000")["priority"] == 150 and rules_at(env, 100) == []
    assert whitelist(env, users=moved)["changed"] is False


def test_a_priority_taken_by_someone_elses_rule_is_refused_before_any_write(env):
    whitelist(env)
    env.pangolin.add_rule(env.resource_id, "DROP", "CIDR", "10.0.0.0/8", 150)
    env.pangolin.reset_log()
    env.authentik.reset_log()
    msg = failing("login_ip_whitelist", env, webhook_api_key=env.webhook_key,
                  users=[{"username": "user000", "priority": 150}])
    assert "priority 150 collides with rule" in msg and "does not own" in msg
    assert env.writes() == []


# -- 2. state absent never deletes a rule the whitelist does not own ----------------------------
@pytest.mark.parametrize("check", [True, False], ids=["check", "real"])
def test_absent_with_a_priority_leaves_the_operators_rule_alone(env, check):
    whitelist(env, users=[{"username": "user000"}])
    own = env.pangolin.add_rule(env.resource_id, "ACCEPT", "IP", "192.0.2.44", 120)
    env.pangolin.reset_log()
    result = whitelist(env, check=check, diff=True, users=[{"username": "user000"},
                                                           {"username": "user001", "priority": 120, "state": "absent"}])
    assert result["changed"] is False and env.pangolin.writes() == []
    assert [r["ruleId"] for r in rules_at(env, 120)] == [own] and rules_at(env, 120)[0]["value"] == "192.0.2.44"


# -- 3. IPv4-mapped addresses are written as the IPv4 address --------------------------------------
@pytest.mark.parametrize("prefix", [0, 64])
def test_an_ipv4_mapped_login_is_whitelisted_as_plain_ipv4(env, prefix):
    whitelist(env, ipv6_prefix=prefix)
    env.login("user001", "::ffff:198.51.100.141")
    assert env.addresses_of("user001") == ["198.51.100.141"]
    assert env.pangolin.apply_rules_for(env.resource_id, "198.51.100.141") == "ACCEPT"
    doctor = run_module("login_ip_whitelist_info", module_args(env, ipv6_prefix=prefix))
    report = [u for u in doctor["users"] if u["username"] == "user001"][0]
    assert report["healthy"] and report["addresses"][0]["source"]["address"] == "::ffff:198.51.100.141"


# -- 4. failed logins cannot move a user's last login --------------------------------------------
def test_failed_logins_neither_expire_nor_hide_the_real_login(env):
    env.authentik.users[env.authentik.user_by_username("user000")["pk"]]["password"] = "right"
    whitelist(env)
    env.login("user000", "203.0.113.60", password="right")
    for attempt in range(7):  # anyone who knows the username can do this, newest first afterwards
        env.login("user000", "192.0.2.%d" % (attempt + 1), password="wrong")
    assert [e.action for e in env.authentik.events if e.action.startswith("login")][-8:] == \
        ["login"] + ["login_failed"] * 7
    expired = run_module("login_ip_whitelist_expire", module_args(env))
    assert not expired.get("failed"), expired.get("msg")
    assert expired["changed"] is False and env.addresses_of("user000") == ["203.0.113.60"]
    doctor = run_module("login_ip_whitelist_info", module_args(env))
    report = [u for u in doctor["users"] if u["username"] == "user000"][0]
    assert report["last_login_ip"] == "203.0.113.60" and "last_login" not in [n["check"] for n in report["notes"]]
    # a login_failed carries the user on this authentik: the pipeline must not whitelist its address either
    assert env.addresses_of("user000") == ["203.0.113.60"]


# -- 5. no key of the playbook goes into authentik -----------------------------------------------
def test_the_playbooks_key_is_never_the_webhook_key(env):
    env.pangolin.reset_log()
    env.authentik.reset_log()
    msg = failing("login_ip_whitelist", env, webhook_api_key=env.pangolin_key)
    assert "playbook's own Pangolin key" in msg and "updateResourceRule" in msg
    msg = failing("login_ip_whitelist", env)  # neither key option, and no mapping to use
    assert "webhook_api_key" in msg and "manage_webhook_key" in msg
    assert env.writes() == []


def test_a_hand_written_headers_mapping_with_the_playbooks_key_is_refused_and_redacted(env):
    name = "my headers"
    expression = 'return {"Authorization": "Bearer %s"}' % env.pangolin_key
    created = run_module("authentik_webhook_mapping", dict(authentik_url=env.authentik.base_url,
                                                          authentik_token=AUTHENTIK_TOKEN, name=name,
                                                          expression=expression), diff=True)
    assert env.pangolin_key.split(".")[1] not in str(created) and "REDACTED" in str(created["diff"])
    msg = failing("login_ip_whitelist", env, headers_mapping=name)
    assert "sends this playbook's own Pangolin key" in msg
    doctor = run_module("login_ip_whitelist_info", module_args(env, headers_mapping=name))
    assert "webhook_key" in [p["check"] for p in doctor["problems"]]


# -- 6. two deployments side by side ----------------------------------------------------------------
def test_two_resources_coexist_and_a_login_whitelists_on_both(env):
    other = env.pangolin.add_resource("homelab", "Photos", subdomain="photos", full_domain="photos.example.com")
    whitelist(env)
    whitelist(env, resource_id=other)
    for resource in (env.resource_id, other):  # each rerun is a no-op: nobody re-points the other's transports
        env.pangolin.reset_log()
        env.authentik.reset_log()
        assert whitelist(env, resource_id=resource)["changed"] is False and env.writes() == []
    env.login("user001", "203.0.113.70")
    assert env.addresses_of("user001") == ["203.0.113.70"]
    assert env.addresses_of("user001", instance="resource-%d" % other) == ["203.0.113.70"]
    # pruning on the second (nobody listed any more) leaves the first whole
    whitelist(env, resource_id=other, users=[], prune=True)
    assert env.addresses_of("user001", instance="resource-%d" % other) == []
    assert env.pangolin.rules(other) == []
    assert env.addresses_of("user001") == ["203.0.113.70"]
    assert whitelist(env)["changed"] is False


def test_a_rule_another_deployment_makes_at_the_same_moment_is_never_taken_over(env):
    """Two runs pick the same free priority at once: the one that made the younger rule gives way, and fails."""
    api = legacy.Api(env)
    original = env.pangolin.handle
    raced = []

    def another_run_first(request, _orig=original):
        if request.method == "PUT" and request.path.endswith("/resource/%d/rule" % env.resource_id) and not raced:
            # the other deployment's rule lands just before ours, and its transport is about to post to it
            twin = env.pangolin.add_rule(env.resource_id, "ACCEPT", "IP", "0.0.0.0", 100)
            raced.append(twin)
            api.post("/events/transports/", {"name": "jellyfin-whitelist-cabin/user000/1", "mode": "webhook",
                                             "webhook_url": "%s/v1/resource/%d/rule/%d" % (
                                                 env.pangolin.base_url, env.resource_id, twin)})
        return _orig(request)

    env.pangolin.handle = another_run_first
    msg = failing("login_ip_whitelist", env, webhook_api_key=env.webhook_key, users=[{"username": "user000"}])
    assert "another run created rule %d at priority 100" % raced[0] in msg and "rerun" in msg, msg
    assert [r["ruleId"] for r in rules_at(env, 100)] == raced  # ours removed again, theirs untouched
    env.pangolin.handle = original
    result = whitelist(env, users=[{"username": "user000"}])  # the rerun settles on a priority of its own
    assert result["users"][0]["priority"] != 100 and env.rule_of("user000")["ruleId"] not in raced
    assert [r["ruleId"] for r in rules_at(env, 100)] == raced
    assert whitelist(env, users=[{"username": "user000"}])["changed"] is False


def test_two_inventories_on_one_org_keep_their_own_managed_keys(env):
    args = dict(webhook_api_key=None, manage_webhook_key=True)
    whitelist(env, instance="living-room", **args)
    whitelist(env, instance="cabin", priority_start=500, **args)
    names = sorted(k["name"] for k in env.pangolin.api_keys.values() if k.get("name", "").startswith("jellyfin"))
    assert names == ["jellyfin-whitelist-cabin/webhook", "jellyfin-whitelist-living-room/webhook"]
    cabin = [k for k in env.pangolin.api_keys.values() if k.get("name") == "jellyfin-whitelist-cabin/webhook"][0]
    whitelist(env, instance="living-room", rotate_webhook_key=True, **args)  # retires only its own key
    assert [k for k in env.pangolin.api_keys.values() if k.get("name") == "jellyfin-whitelist-cabin/webhook"] == [cabin]
    env.login("user002", "198.51.100.90")
    assert env.addresses_of("user002", instance="cabin") == ["198.51.100.90"]
    assert env.addresses_of("user002", instance="living-room") == ["198.51.100.90"]


# -- 7. deactivated users lose access ---------------------------------------------------------------
def test_a_deactivation_ends_access_at_once_and_a_login_after_reactivation_restores_it(env):
    whitelist(env)
    env.login("user001", "203.0.113.80")
    pk = env.authentik.user_by_username("user001")["pk"]
    api = legacy.Api(env)
    resp = api.session.patch(api.base + "/core/users/%d/" % pk, json={"is_active": False}, timeout=10)
    assert resp.status_code == 200
    env.wait_for(lambda: env.addresses_of("user001") == ["0.0.0.0"], what="the deactivation to reach Pangolin")
    resp = api.session.patch(api.base + "/core/users/%d/" % pk, json={"is_active": True}, timeout=10)
    assert resp.status_code == 200 and resp.json()["is_active"] is True
    env.login("user001", "203.0.113.81")
    assert env.addresses_of("user001") == ["203.0.113.81"]


def test_site_resets_a_deactivated_user_and_says_so(env):
    whitelist(env)
    env.login("user001", "203.0.113.82")
    env.authentik.user_by_username("user001")["is_active"] = False  # deactivated with no event reaching the rule
    result = whitelist(env, diff=True)
    report = [u for u in result["users"] if u["username"] == "user001"][0]
    assert report["status"] == "reset" and env.addresses_of("user001") == ["0.0.0.0"]
    assert whitelist(env)["changed"] is False
    env.authentik.user_by_username("user001")["is_active"] = True
    env.login("user001", "203.0.113.83")
    assert env.addresses_of("user001") == ["203.0.113.83"]


def test_expire_resets_missing_and_inactive_users(env):
    whitelist(env)
    env.login("user000", "203.0.113.84")
    env.login("user001", "203.0.113.85")
    env.authentik.user_by_username("user000")["is_active"] = False
    del env.authentik.users[env.authentik.user_by_username("user001")["pk"]]
    result = run_module("login_ip_whitelist_expire", module_args(env))
    assert not result.get("failed"), result.get("msg")
    reasons = dict((u["username"], (u["expired"], u["reason"])) for u in result["users"])
    assert reasons["user000"] == (True, "the user is deactivated")
    assert reasons["user001"] == (True, "the user is gone from authentik")
    assert env.addresses_of("user000") == env.addresses_of("user001") == ["0.0.0.0"]


# -- 8. what a failed run leaves behind, the next run removes ----------------------------------
@pytest.mark.parametrize("fault", ["503", "lost_answer", "reset"])
@pytest.mark.parametrize("step", ["rule", "transport", "mapping"])
def test_a_removal_that_failed_half_way_leaves_no_rule_after_the_rerun(env, fault, step):
    whitelist(env)
    for index, username in enumerate(env.usernames):
        env.login(username, "198.18.7.%d" % (index + 1))
    absent = [{"username": u, "state": "absent"} for u in env.usernames]
    sim, method, path = {"rule": (env.pangolin, "DELETE", r"/rule/\d+$"),
                         "transport": (env.authentik, "DELETE", r"/events/transports/"),
                         "mapping": (env.authentik, "DELETE", r"/propertymappings/notification/")}[step]
    sim.inject(fault, method=method, path_regex=path, skip=1, count=-1)

    def left_behind():
        return (env.pangolin.rules(env.resource_id) +
                [t for t in env.authentik.transports.values() if t["name"].startswith("jellyfin-whitelist-")] +
                [m for m in env.authentik.mappings.values()
                   if m["name"].startswith("jellyfin-whitelist-resource") and not m["name"].endswith("/headers")])

    first = run_module("login_ip_whitelist", module_args(env, users=absent, webhook_api_key=env.webhook_key))
    if fault == "lost_answer":  # the delete happened, its answer was lost: looked at again, it is gone
        assert not first.get("failed"), first.get("msg")
        assert left_behind() == []
    else:  # the run stopped half-way and left part of the chains behind
        assert first.get("failed") and left_behind()
    sim.clear_faults()
    whitelist(env, users=absent)
    assert left_behind() == []
    assert whitelist(env, users=absent)["changed"] is False


def test_a_rule_whose_transport_is_gone_is_found_by_the_priority_its_mapping_recorded(env):
    whitelist(env)
    env.login("user002", "198.18.7.1")
    transport = [t for t in env.authentik.transports.values() if t["name"] == env.slot_name("user002")][0]
    del env.authentik.transports[transport["pk"]]  # the transport gone, the rule still letting 198.18.7.1 in
    result = whitelist(env, users=[{"username": "user000"}, {"username": "user001"},
                                   {"username": "user002", "state": "absent"}])
    assert "delete rule priority 102 on resource %d" % env.resource_id in \
        [u for u in result["users"] if u["username"] == "user002"][0]["changes"]
    assert rules_at(env, 102) == []


def test_a_recorded_priority_never_adopts_a_rule_that_something_else_posts_to(env):
    whitelist(env, users=[{"username": "user000"}])
    transport = [t for t in env.authentik.transports.values() if t["name"] == env.slot_name("user000")][0]
    rule_id = env.rule_of("user000")["ruleId"]
    del env.authentik.transports[transport["pk"]]
    env.pangolin.policy_rules[rule_id]["value"] = "192.0.2.99"
    api = legacy.Api(env)  # someone else's transport now posts to that rule
    api.post("/events/transports/", {"name": "not ours", "mode": "webhook",
                                     "webhook_url": "%s/v1/resource/%d/rule/%d" % (env.pangolin.base_url,
                                                                                   env.resource_id, rule_id)})
    result = whitelist(env, users=[{"username": "user000"}])
    # The recorded priority is given up, not the rule taken: the user gets a rule of its own elsewhere.
    assert result["users"][0]["priority"] != 100 and env.rule_of("user000")["ruleId"] != rule_id
    assert env.pangolin.policy_rules[rule_id]["value"] == "192.0.2.99"
    assert [w for w in env.pangolin.writes() if w.path.endswith("/rule/%d" % rule_id)] == []
    assert whitelist(env, users=[{"username": "user000"}])["changed"] is False


# -- adoption of an install made by 0.2 ----------------------------------------------------------
def test_an_install_of_version_02_is_adopted_without_a_gap(env):
    rules = legacy.install_02(env, env.usernames)
    env.login("user000", "203.0.113.90")  # the 0.2 chain whitelists
    env.login("user001", "::ffff:203.0.113.91")  # ...in a form that let nobody in
    assert env.pangolin.policy_rules[rules["user001"]]["value"] == "::ffff:203.0.113.91"
    env.pangolin.reset_log()
    result = whitelist(env)
    assert not [w for w in env.pangolin.writes() if w.method == "DELETE"]  # no rule deleted
    for username, rule_id in rules.items():  # each user keeps the rule, and its address, in the new chain
        assert env.rule_of(username)["ruleId"] == rule_id
    assert env.addresses_of("user000") == ["203.0.113.90"]
    assert env.addresses_of("user001") == ["203.0.113.91"]  # rewritten from authentik's state
    assert legacy.legacy_objects(env) == {}  # the 0.2 chain, its rules and headers mapping are gone
    assert len(env.authentik.rules) == 1
    assert sorted(u["username"] for u in result["users"]) == env.usernames, result["users"]
    assert all(u["status"] == "updated" for u in result["users"]), result["users"]
    assert whitelist(env)["changed"] is False
    env.login("user002", "203.0.113.92")
    assert env.addresses_of("user002") == ["203.0.113.92"]


@pytest.mark.parametrize("step", ["headers", "events/transports", "policies/expression"])
def test_an_adoption_that_stops_half_way_never_leaves_the_02_headers_mapping_alone(env, step):
    """The shared mapping holds a key in clear, and only the 0.2 chains show it is the collection's: it goes
    before them, so a run that stops while retiring them leaves chains the next run finds, never it alone."""
    legacy.install_02(env, env.usernames)
    headers = [m for m in env.authentik.mappings.values() if m["name"] == legacy.HEADERS][0]
    path = r"/propertymappings/notification/%s/$" % headers["pk"] if step == "headers" else r"/%s/[^/]+/$" % step
    env.authentik.inject("503", method="DELETE", path_regex=path, count=-1)
    failed = run_module("login_ip_whitelist", module_args(env, webhook_api_key=env.webhook_key))
    assert failed.get("failed"), failed
    left = legacy.legacy_objects(env)
    assert left and (legacy.HEADERS not in left.get("mappings", []) or left.get("transports")), left
    env.authentik.clear_faults()
    whitelist(env)
    assert legacy.legacy_objects(env) == {}
    assert whitelist(env)["changed"] is False


def test_adoption_check_mode_predicts_it_and_writes_nothing(env):
    legacy.install_02(env, env.usernames)
    env.pangolin.reset_log()
    env.authentik.reset_log()
    checked = whitelist(env, check=True, diff=True)
    assert env.writes() == []
    real = whitelist(env, diff=True)
    assert [u["changes"] for u in checked["users"]] == [u["changes"] for u in real["users"]]


def test_a_02_chain_of_another_resource_is_not_adopted(env):
    other = env.pangolin.add_resource("homelab", "Photos", subdomain="photos", full_domain="photos.example.com")
    legacy.install_02(env, ["user000"], resource_id=other)
    whitelist(env, users=[{"username": "user000"}], prune=True)
    assert legacy.legacy_objects(env)["transports"] == ["jellyfin-whitelist-user000"]
    assert len(env.pangolin.rules(other)) == 1


def test_a_02_chain_of_a_user_marked_absent_is_removed_with_its_rule(env):
    rules = legacy.install_02(env, env.usernames)
    env.login("user002", "203.0.113.93")
    whitelist(env, users=[{"username": "user000"}, {"username": "user001"},
                          {"username": "user002", "state": "absent"}])
    assert rules["user002"] not in env.pangolin.policy_rules
    assert legacy.legacy_objects(env) == {}


def test_stale_addresses_expire_with_the_window(env):
    whitelist(env, expire_days=30)
    env.login("user000", "203.0.113.95")
    for event in env.authentik.events_of("login"):
        event.created -= timedelta(days=31)
    env.login("user001", "203.0.113.96")  # the group's delivery computes user000's rule from state: stale
    assert env.addresses_of("user000") == ["0.0.0.0"]
    assert env.addresses_of("user001") == ["203.0.113.96"]
