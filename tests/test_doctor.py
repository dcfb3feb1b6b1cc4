"""The doctor: each broken link is reported when it is broken, and nothing when all is well.

The whitelist is built with the real module, users log in through authentik's
pipeline (its worker delivers in the background; each login waits until the
worker is idle), then one link is broken on purpose (directly in a simulator's
state, as an operator's click would) and ``login_ip_whitelist_info`` must name
it for that user only, with what to do. The doctor never writes.

Users share notification rules (``<head>/logins/<k>``, up to ``users_per_rule``
users each). A break of a shared rule, its policy or its binding concerns every
user on it, so those breaks are made in the layout ``users_per_rule: 1``, where
user001 has a rule of its own; ``test_a_break_of_a_shared_rule_is_named_for_its_users_only``
covers the shared layout.
"""

import json
import re
import uuid
from contextlib import contextmanager
from datetime import timedelta

import pytest
import requests

from tests import legacy
from tests.module_harness import run_module
from tests.playbook_env import AUTHENTIK_TOKEN, PlaybookEnv, module_args

SOLO = {"users_per_rule": 1}  # one notification rule, policy and binding per user


def conn(env):
    return module_args(env)


def converge(env, **extra):
    assert env.authentik.wait_idle(60), "authentik's worker did not drain"
    result = run_module("login_ip_whitelist", dict(conn(env), webhook_api_key=env.webhook_key, **extra))
    assert not result.get("failed"), result.get("msg")
    assert env.authentik.wait_idle(60), "authentik's worker did not drain"
    env.options = dict(extra)  # the chain's options: the doctor is asked with the same ones
    return result


def doctor(env, **extra):
    # Whatever the worker still delivers must not be taken for a write of the doctor.
    assert env.authentik.wait_idle(60), "authentik's worker did not drain"
    env.pangolin.reset_log()
    env.authentik.reset_log()
    check = extra.pop("check", False)
    args = dict(conn(env), **getattr(env, "options", {}))
    args.update(extra)
    result = run_module("login_ip_whitelist_info", args, check=check)
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False and result["msg"]
    assert env.pangolin.accepted_writes() + env.authentik.accepted_writes() == []
    return result


@contextmanager
def built(users=3, **options):
    """The whitelist of ``users`` users with ``options``; user000 and user001 logged in."""
    with PlaybookEnv(users=users) as environment:
        converge(environment, **options)
        environment.login("user000", "203.0.113.10")
        environment.login("user001", "198.51.100.11")
        yield environment


@pytest.fixture
def env():
    with built() as environment:
        yield environment


def age_events(env, minutes=10):
    """As if everything authentik recorded happened ``minutes`` ago (past the in-flight grace)."""
    for event in env.authentik.events:
        event.created -= timedelta(minutes=minutes)


def named(store, name):
    found = [o for o in store.values() if o.get("name") == name]
    assert found, "no object named %r" % name
    return found[0]


def transport_of(env, username, slot=1):
    return named(env.authentik.transports, env.slot_name(username, slot))


def mapping_of(env, username, slot=1):
    return named(env.authentik.mappings, env.slot_name(username, slot))


def headers_of(env):
    return named(env.authentik.mappings, "jellyfin-whitelist-resource-%d/headers" % env.resource_id)


def group_rule_of(env, username):
    """The notification rule that sends the user's transport."""
    pk = transport_of(env, username)["pk"]
    found = [r for r in env.authentik.rules.values() if pk in r["transports"]]
    assert len(found) == 1, found
    return found[0]


def group_policy_of(env, username):
    return named(env.authentik.policies, group_rule_of(env, username)["name"])


def bindings_of(env, username):
    rule = group_rule_of(env, username)
    return [b for b in env.authentik.bindings.values() if b["target"] == rule["pk"]]


def pangolin_rule(env, username, slot=1):
    return env.pangolin.policy_rules[env.rule_of(username, slot)["ruleId"]]


def pk_of(env, username):
    return env.authentik.user_by_username(username)["pk"]


def set_policy_users(env, username, edit):
    """Rewrite the SETTINGS users list of the user's group policy with ``edit(list of pks)``."""
    policy = group_policy_of(env, username)
    found = re.search(r"'users': \[([0-9, ]*)\],", policy["expression"])
    assert found, policy["expression"]
    pks = [int(p) for p in found.group(1).split(",") if p.strip()]
    policy["expression"] = policy["expression"].replace(
        found.group(0), "'users': [%s]," % ", ".join(str(p) for p in edit(pks)))


def api(env):
    session = requests.Session()
    session.headers["Authorization"] = "Bearer " + AUTHENTIK_TOKEN
    return env.authentik.base_url + "/api/v3", session


def user_report(result, username):
    return [u for u in result["users"] if u["username"] == username][0]


def checks(entries):
    return sorted(set(e["check"] for e in entries))


def of_check(entries, check):
    return [e for e in entries if e["check"] == check]


def assert_only_user001_broken(result, check, words):
    assert result["healthy"] is False
    broken = user_report(result, "user001")
    assert not broken["healthy"]
    found = of_check(broken["problems"], check)
    assert found, broken["problems"]
    assert any(words in f["message"] for f in found), found
    assert all(f["fix"] for f in found)
    assert result["problems"] == [], result["problems"]  # nothing for everyone
    for other in ("user000", "user002"):
        assert user_report(result, other)["healthy"], user_report(result, other)["problems"]
    return found


# -- all well ---------------------------------------------------------------------------------------
def test_all_well_reports_each_users_ip_and_last_login(env):
    result = doctor(env)
    assert result["healthy"] is True and result["problems"] == [] and result["notes"] == []
    assert result["msg"] == "healthy"
    alice = user_report(result, "user000")
    assert alice["healthy"] and alice["problems"] == [] and alice["notes"] == []
    assert alice["whitelisted"] == "203.0.113.10" and alice["last_login_ip"] == "203.0.113.10"
    assert alice["last_login"] and alice["match"] == "IP" and alice["priority"] == 100
    assert alice["rule_id"] == env.rule_of("user000")["ruleId"] and alice["group"] == 1
    assert [(a["rule_id"], a["value"], a["source"]["kind"], a["source"]["address"]) for a in alice["addresses"]] \
        == [(alice["rule_id"], "203.0.113.10", "login", "203.0.113.10")]
    fresh = user_report(result, "user002")
    assert fresh["healthy"] and fresh["whitelisted"] == "0.0.0.0" and fresh["last_login"] is None
    assert fresh["addresses"][0]["source"] is None
    assert checks(fresh["notes"]) == ["last_login"]
    assert result["apply_rules"] is True
    # three users on one notification rule (users_per_rule 10): one worker task per event
    assert result["backlog"] == {"available": True, "queued": 0, "notification_rules": 1,
                                 "other_notification_rules": 0}
    assert result["group"] is None  # the users come from the inventory
    assert [u["username"] for u in result["users"]] == ["user000", "user001", "user002"]


def test_all_well_with_a_rule_per_user():
    with built(**SOLO) as env:
        result = doctor(env)
        assert result["healthy"] is True and result["problems"] == []
        assert [user_report(result, u)["group"] for u in env.usernames] == [1, 2, 3]
        assert result["backlog"]["notification_rules"] == 3 and result["backlog"]["other_notification_rules"] == 0


def test_check_mode_is_the_same_read(env):
    plain = doctor(env)
    checked = doctor(env, check=True)
    assert checked["healthy"] is True
    for key in ("users", "problems", "notes", "backlog", "apply_rules", "resource_id", "instance"):
        assert checked[key] == plain[key], key


# -- each broken link, for that user only -------------------------------------------------------
def _deactivate(env):
    env.authentik.user_by_username("user001")["is_active"] = False  # no event: the rule keeps its address


def _delete_user(env):
    del env.authentik.users[pk_of(env, "user001")]


def _delete_transport(env):
    del env.authentik.transports[transport_of(env, "user001")["pk"]]


def _delete_body_mapping(env):
    del env.authentik.mappings[mapping_of(env, "user001")["pk"]]


def _delete_rule(env):
    del env.pangolin.policy_rules[env.rule_of("user001")["ruleId"]]


def _other_resource(env):
    other = env.pangolin.add_resource("homelab", "Other")
    transport = transport_of(env, "user001")
    transport["webhook_url"] = transport["webhook_url"].replace("/resource/%d/" % env.resource_id,
                                                                "/resource/%d/" % other)


def _not_a_rule_url(env):
    transport = transport_of(env, "user001")
    transport["webhook_url"] = transport["webhook_url"].rsplit("/rule/", 1)[0] + "/rules"


def _renumber(env):
    pangolin_rule(env, "user001")["priority"] = 150


def _disable_rule(env):
    pangolin_rule(env, "user001")["enabled"] = False


def _drop_rule(env):
    pangolin_rule(env, "user001")["action"] = "DROP"


def _path_rule(env):
    rule = pangolin_rule(env, "user001")
    rule["match"], rule["value"] = "PATH", "/api/*"


def _no_headers_on_transport(env):
    transport_of(env, "user001")["webhook_mapping_headers"] = None


def _other_body_on_transport(env):
    transport_of(env, "user001")["webhook_mapping_body"] = mapping_of(env, "user000")["pk"]


def _local_transport(env):
    transport_of(env, "user001")["mode"] = "local"


def _body_of_someone_else(env):
    mapping = mapping_of(env, "user001")
    mapping["expression"] = mapping["expression"].replace("'user_pk': %d," % pk_of(env, "user001"), "'user_pk': 4,")


def _body_with_other_slots(env):
    mapping = mapping_of(env, "user001")
    assert "'slots': 1," in mapping["expression"]
    mapping["expression"] = mapping["expression"].replace("'slots': 1,", "'slots': 2,")


def _extra_slot(env):
    """A second transport of user001 (as a run with max_addresses 2 would leave), on the same rule."""
    transport = dict(transport_of(env, "user001"), pk=str(uuid.uuid4()), name=env.slot_name("user001", 2))
    env.authentik.transports[transport["pk"]] = transport


def _off_the_group_rule(env):
    rule = group_rule_of(env, "user001")
    rule["transports"] = [pk for pk in rule["transports"] if pk != transport_of(env, "user001")["pk"]]


def _policy_of_someone_else(env):
    set_policy_users(env, "user001", lambda pks: [4 if pk == pk_of(env, "user001") else pk for pk in pks])


def _delete_policy(env):
    del env.authentik.policies[group_policy_of(env, "user001")["pk"]]


def _delete_group_rule(env):
    del env.authentik.rules[group_rule_of(env, "user001")["pk"]]


def _no_recipient(env):
    group_rule_of(env, "user001")["destination_event_user"] = False


def _unbind(env):
    for binding in bindings_of(env, "user001"):
        del env.authentik.bindings[binding["pk"]]


def _disable_binding(env):
    for binding in bindings_of(env, "user001"):
        binding["enabled"] = False


def _negate_binding(env):
    for binding in bindings_of(env, "user001"):
        binding["negate"] = True


BREAKS = [
    pytest.param(_deactivate, "deactivated", "is deactivated, but rule", {}, id="user-inactive"),
    pytest.param(_delete_user, "user", "no user", {}, id="user-missing"),
    pytest.param(_delete_transport, "transport", "no notification transport", {}, id="transport-missing"),
    pytest.param(_no_headers_on_transport, "transport", "headers mapping", {}, id="transport-without-headers"),
    pytest.param(_other_body_on_transport, "transport", "does not use the body mapping", {},
                 id="transport-other-body"),
    pytest.param(_local_transport, "transport", "not webhook", {}, id="transport-not-webhook"),
    pytest.param(_other_resource, "transport", "not of resource", {}, id="transport-other-resource"),
    pytest.param(_not_a_rule_url, "transport", "not a Pangolin rule URL", {}, id="transport-not-a-rule-url"),
    pytest.param(_delete_rule, "rule", "does not have", {}, id="rule-deleted"),
    pytest.param(_renumber, "priority", "priority 101 but the rule has priority 150", {}, id="priority-disagrees"),
    pytest.param(_disable_rule, "rule", "disabled", {}, id="rule-disabled"),
    pytest.param(_drop_rule, "rule", "is a DROP rule, not ACCEPT", {}, id="rule-drop"),
    pytest.param(_path_rule, "rule", "matches PATH, not an IP address", {}, id="rule-not-an-address"),
    pytest.param(_delete_body_mapping, "body_mapping", "no webhook mapping", {}, id="body-mapping-missing"),
    pytest.param(_body_of_someone_else, "body_mapping", "computes the addresses of user pk 4", {},
                 id="body-mapping-other-pk"),
    pytest.param(_body_with_other_slots, "body_mapping", "rendered with slots 2, the inventory says 1", {},
                 id="body-mapping-settings"),
    pytest.param(_extra_slot, "slots", "beyond max_addresses 1", {}, id="slot-beyond-max-addresses"),
    pytest.param(_off_the_group_rule, "notification_rule", "no notification rule of this whitelist sends", {},
                 id="transport-on-no-rule"),
    pytest.param(_policy_of_someone_else, "policy", "does not match the logins of user pk", {},
                 id="policy-other-pk"),
    pytest.param(_delete_policy, "policy", "no expression policy", SOLO, id="policy-missing"),
    pytest.param(_delete_group_rule, "notification_rule", "no notification rule", SOLO, id="rule-missing"),
    pytest.param(_no_recipient, "notification_rule", "no recipient", SOLO, id="no-recipient"),
    pytest.param(_unbind, "binding", "not bound", SOLO, id="policy-unbound"),
    pytest.param(_disable_binding, "binding", "disabled or negated", SOLO, id="binding-disabled"),
    pytest.param(_negate_binding, "binding", "disabled or negated", SOLO, id="binding-negated"),
]


@pytest.mark.parametrize("breaker,check,words,layout", BREAKS)
def test_each_broken_link_is_reported_for_that_user_only(breaker, check, words, layout):
    with built(**layout) as env:
        assert doctor(env)["healthy"]
        breaker(env)
        assert_only_user001_broken(doctor(env), check, words)


def test_a_break_of_a_shared_rule_is_named_for_its_users_only():
    # users_per_rule 2: user000 and user001 share logins/1, user002 is alone on logins/2
    with built(users_per_rule=2) as env:
        assert group_rule_of(env, "user000")["pk"] == group_rule_of(env, "user001")["pk"]
        assert group_rule_of(env, "user002")["pk"] != group_rule_of(env, "user001")["pk"]
        _unbind(env)
        result = doctor(env)
        assert not result["healthy"] and result["problems"] == []
        for username in ("user000", "user001"):
            report = user_report(result, username)
            found = of_check(report["problems"], "binding")
            assert found and "not bound" in found[0]["message"] and found[0]["fix"], report["problems"]
        assert user_report(result, "user002")["healthy"], user_report(result, "user002")["problems"]


def test_apply_rules_off_is_a_problem_for_everyone(env):
    policy = env.pangolin.resource(env.resource_id)["defaultResourcePolicyId"]
    env.pangolin.policies[policy]["applyRules"] = False
    result = doctor(env)
    assert result["healthy"] is False and result["apply_rules"] is False
    assert checks(result["problems"]) == ["apply_rules"]
    assert "applyRules" in result["problems"][0]["message"] and result["problems"][0]["fix"]


def test_missing_headers_mapping_is_a_problem(env):
    pk = headers_of(env)["pk"]
    for transport in env.authentik.transports.values():
        transport["webhook_mapping_headers"] = None
    del env.authentik.mappings[pk]
    result = doctor(env)
    found = of_check(result["problems"], "headers_mapping")
    assert found and "/headers" in found[0]["message"] and found[0]["fix"], result["problems"]
    assert not result["healthy"]


def test_a_rule_whose_transport_is_gone_is_still_listed_with_what_it_lets_in(env):
    """Ownership finds it by the priority the body mapping recorded; the doctor shows its address."""
    rule_id = env.rule_of("user001")["ruleId"]
    del env.authentik.transports[transport_of(env, "user001")["pk"]]
    result = doctor(env)
    report = user_report(result, "user001")
    assert "transport" in checks(report["problems"]), report["problems"]
    assert [(a["rule_id"], a["value"]) for a in report["addresses"]] == [(rule_id, "198.51.100.11")]
    assert report["whitelisted"] == "198.51.100.11"


def test_a_hand_written_headers_mapping_is_only_a_note(env):
    mapping = headers_of(env)
    mapping["expression"] = mapping["expression"].replace("# rendered by homelab.pangolin_authentik\n", "")
    result = doctor(env)
    assert result["healthy"] and "headers_mapping" in checks(result["notes"]), result["notes"]


# -- the webhook key --------------------------------------------------------------------------------------
def test_the_webhook_key_is_checked_in_pangolin(env):
    key_id = env.webhook_key.split(".")[0]
    assert "webhook_key" not in checks(doctor(env)["problems"] + doctor(env)["notes"])
    env.pangolin.api_keys[key_id]["actions"] = {"updateResourceRule", "deleteResourceRule"}
    assert "more than update rules" in of_check(doctor(env)["notes"], "webhook_key")[0]["message"]
    env.pangolin.api_keys[key_id]["actions"] = {"listResourceRules"}
    problem = of_check(doctor(env)["problems"], "webhook_key")
    assert problem and "lacks the updateResourceRule action" in problem[0]["message"]
    del env.pangolin.api_keys[key_id]
    # Possibly a root key (org lists leave those out): a note, unless the whitelist manages its own key.
    assert "webhook_key" in checks(doctor(env)["notes"]) and doctor(env)["healthy"]
    managed = doctor(env, manage_webhook_key=True)
    assert not managed["healthy"]
    problem = of_check(managed["problems"], "webhook_key")
    assert problem and key_id in problem[0]["message"] and "manage_webhook_key" in problem[0]["fix"]


def test_a_playbook_key_that_cannot_read_keys_only_skips_that_check(env):
    org_key = env.pangolin.add_api_key(org_id="homelab")  # every action, but not root
    env.pangolin.reset_log()
    result = run_module("login_ip_whitelist_info", dict(conn(env), pangolin_api_key=org_key))
    assert not result.get("failed"), result.get("msg")
    assert result["healthy"] and "webhook_key" in checks(result["notes"])
    assert env.pangolin.accepted_writes() == []


def test_the_playbooks_own_key_in_the_headers_mapping_is_a_problem(env):
    # Someone pasted the playbook's (root) key into the headers mapping: authentik now holds it.
    mapping = headers_of(env)
    assert env.webhook_key in mapping["expression"]
    mapping["expression"] = mapping["expression"].replace(env.webhook_key, env.pangolin_key)
    result = doctor(env)
    assert not result["healthy"]
    problem = of_check(result["problems"], "webhook_key")
    assert problem and "this playbook's own Pangolin key" in problem[0]["message"], result["problems"]
    assert "manage_webhook_key" in problem[0]["fix"]
    assert not of_check(result["notes"], "webhook_key")  # said once, as a problem
    for username in env.usernames:  # the chains themselves are fine
        assert user_report(result, username)["healthy"], user_report(result, username)["problems"]
    assert env.pangolin_key.split(".")[1] not in json.dumps(result)


# -- leftovers -------------------------------------------------------------------------------------------
def test_users_no_longer_whitelisted_who_still_get_in_are_problems_the_others_notes(env):
    users = [{"username": "user000"}, {"username": "user001", "state": "absent"}]
    result = doctor(env, users=users)
    # who is not on the list is not let in: user001 still is, which breaks the whitelist's first duty
    [unlisted] = of_check(result["problems"], "unlisted")
    assert "'user001'" in unlisted["message"] and "marked absent" in unlisted["message"]
    assert "still let in: 198.51.100.11" in unlisted["message"] and "site.yml" in unlisted["fix"]
    assert not result["healthy"]
    leftovers = dict((n["message"].split("'")[1], n) for n in of_check(result["notes"], "leftover"))
    assert sorted(leftovers) == ["user002"]  # the placeholder lets nobody in: worth knowing, no harm
    assert "not in the inventory" in leftovers["user002"]["message"] and "prune" in leftovers["user002"]["fix"]
    assert [u["username"] for u in result["users"]] == ["user000"]


def test_leftover_0_2_chains_of_absent_and_unlisted_users_are_noted():
    with PlaybookEnv(users=3) as env:
        converge(env, users=[{"username": "user000"}])
        # 0.2 chains of two users the inventory no longer whitelists (left by a run that stopped, say)
        rules = legacy.install_02(env, ["user001", "user002"], first_priority=200)
        env.pangolin.policy_rules[rules["user001"]]["value"] = "192.0.2.77"  # what 0.2 let in
        result = doctor(env, users=[{"username": "user000"}, {"username": "user001", "state": "absent"}])
        [unlisted] = of_check(result["problems"], "unlisted")  # the 0.2 rule still lets user001's address in
        assert "'user001'" in unlisted["message"] and "marked absent" in unlisted["message"]
        assert "still let in: 192.0.2.77" in unlisted["message"]
        leftovers = dict((n["message"].split("'")[1], n) for n in of_check(result["notes"], "leftover"))
        assert sorted(leftovers) == ["user002"], result["notes"]
        assert "not in the inventory" in leftovers["user002"]["message"] and "prune" in leftovers["user002"]["fix"]
        assert "1 object chain" in leftovers["user002"]["message"]
        assert not result["healthy"], result


def test_a_0_2_chain_of_a_present_user_is_a_note():
    with built() as env:
        # A 0.2 chain of user001 next to the current one (restored from a backup, say)
        legacy.install_02(env, ["user001"], first_priority=200)
        result = doctor(env)
        report = user_report(result, "user001")
        assert report["healthy"], report["problems"]
        notes = of_check(report["notes"], "legacy")
        assert notes and "older version" in notes[0]["message"] and "site.yml" in notes[0]["fix"], report["notes"]
        leftovers = of_check(result["notes"], "leftover")
        assert len(leftovers) == 1 and "'user001'" in leftovers[0]["message"], result["notes"]
        assert "site.yml" in leftovers[0]["fix"]
        assert result["healthy"] and result["problems"] == []
        for other in ("user000", "user002"):
            assert "legacy" not in checks(user_report(result, other)["notes"])


def test_a_0_2_install_before_the_upgrade_names_the_old_and_the_missing_chain():
    with PlaybookEnv(users=2) as env:
        legacy.install_02(env, env.usernames)
        result = doctor(env)
        assert not result["healthy"]
        for username in env.usernames:
            report = user_report(result, username)
            assert "legacy" in checks(report["notes"]), report["notes"]
            assert {"body_mapping", "transport"} <= set(checks(report["problems"])), report["problems"]
            assert all("site.yml" in p["fix"] for p in report["problems"])


# -- shadowing --------------------------------------------------------------------------------------------
def test_a_rule_that_shadows_the_users_rule(env):
    env.pangolin.add_rule(env.resource_id, "DROP", "CIDR", "0.0.0.0/0", 5)
    result = doctor(env)
    for username in ("user000", "user001", "user002"):
        report = user_report(result, username)
        assert "shadowed" in checks(report["problems"]), report
        shadowed = of_check(report["problems"], "shadowed")[0]
        assert "priority 5" in shadowed["message"] and shadowed["fix"]


def test_a_rule_that_only_covers_other_addresses_does_not_shadow(env):
    env.pangolin.add_rule(env.resource_id, "DROP", "CIDR", "192.168.0.0/16", 5)
    env.pangolin.add_rule(env.resource_id, "DROP", "COUNTRY", "CN", 6)
    result = doctor(env)
    alice = user_report(result, "user000")
    assert alice["healthy"]
    assert of_check(alice["notes"], "shadowed")  # the country rule may match: a note


def test_a_rule_that_shadows_one_address_of_one_user():
    with built(max_addresses=2) as env:
        env.login("user001", "198.51.100.12")
        env.pangolin.add_rule(env.resource_id, "DROP", "IP", "198.51.100.11", 5)
        result = doctor(env)
        shadowed = assert_only_user001_broken(result, "shadowed", "priority 5")
        assert len(shadowed) == 1  # the other address of user001 still gets through


# -- what authentik saw of each login -----------------------------------------------------------------------
def test_a_login_whose_webhook_failed_is_explained(env):
    # The headers mapping now sends a key Pangolin does not know: the webhook gets a 401.
    mapping = headers_of(env)
    mapping["expression"] = mapping["expression"].replace(env.webhook_key.split(".")[1], "x" * 40)
    env.login("user002", "192.0.2.50")
    transport = transport_of(env, "user002")["pk"]
    states = [t["state"] for t in env.authentik.tasks.values() if t["rel_obj_id"] == transport]
    assert states[-1] == "rejected", states  # every retry failed: the doctor explains it from this task
    age_events(env)
    result = doctor(env)
    report = user_report(result, "user002")
    webhook = of_check(report["problems"], "webhook")
    assert webhook, report
    assert "192.0.2.50" in webhook[0]["message"] and "0.0.0.0" in webhook[0]["message"]
    # authentik's rejected task says why: Pangolin refused the key.
    assert "webhook task failed" in webhook[0]["message"] and "Invalid API key" in webhook[0]["message"]
    assert "401" in webhook[0]["message"]
    assert "key" in webhook[0]["fix"] and "updateResourceRule" in webhook[0]["fix"]
    # The group's other transports failed too, but their logins got through before: notes at most.
    for other in ("user000", "user001"):
        assert user_report(result, other)["healthy"], user_report(result, other)["problems"]
    assert env.webhook_key.split(".")[1] not in json.dumps(result)


def test_a_webhook_to_a_deleted_rule_is_explained_as_gone(env):
    _delete_rule(env)
    env.login("user001", "192.0.2.60")
    age_events(env)
    result = doctor(env)
    report = user_report(result, "user001")
    assert "rule" in checks(report["problems"])  # the broken link itself
    webhook = of_check(report["notes"], "webhook")  # and what authentik saw of it
    assert webhook and "404" in webhook[0]["message"] and "gone" in webhook[0]["fix"], webhook
    for other in ("user000", "user002"):
        assert user_report(result, other)["healthy"], user_report(result, other)["problems"]


def test_a_broken_body_mapping_is_found_in_authentiks_events(env):
    mapping = mapping_of(env, "user002")
    assert mapping["expression"].count("return {") == 1
    mapping["expression"] = mapping["expression"].replace("return {", "raise ValueError('boom')\nreturn {")
    env.login("user002", "192.0.2.51")
    age_events(env)
    result = doctor(env)
    webhook = of_check(user_report(result, "user002")["problems"], "webhook")
    assert webhook and "could not evaluate" in webhook[0]["message"] and "boom" in webhook[0]["message"], webhook
    assert env.slot_name("user002") in webhook[0]["message"]
    assert "mapping" in webhook[0]["fix"]
    for other in ("user000", "user001"):
        assert user_report(result, other)["healthy"], user_report(result, other)["problems"]


def test_a_hand_written_headers_mapping_that_fails_never_shows_its_key(env):
    """authentik quotes the failing mapping's error; the doctor echoes it, with the key learned and masked."""
    secret = env.webhook_key.split(".", 1)[1]
    headers_of(env)["expression"] = ("key = %r\nheaders = {'Authorization': 'Bearer ' + key}\n"
                                     "raise ValueError('cannot send %%s' %% headers)" % env.webhook_key)
    env.login("user002", "192.0.2.52")
    age_events(env)
    result = doctor(env)
    webhook = of_check(user_report(result, "user002")["problems"], "webhook")
    assert webhook and "cannot send" in webhook[0]["message"], webhook  # the error is reported ...
    assert secret in env.authentik.events_of("property_mapping_exception")[-1].context["message"]
    assert secret not in json.dumps(result)  # ... without the key authentik quoted


def test_a_broken_login_policy_is_found_in_authentiks_events(env):
    policy = group_policy_of(env, "user002")
    assert "event = " in policy["expression"]
    policy["expression"] = policy["expression"].replace("event = ", "event = {}['nope']\nevent = ", 1)
    env.login("user002", "192.0.2.54")
    age_events(env)
    result = doctor(env)
    webhook = of_check(user_report(result, "user002")["problems"], "webhook")
    assert webhook and "policy" in webhook[0]["message"] and "KeyError" in webhook[0]["message"], webhook
    assert "policy" in webhook[0]["fix"]
    # user000 and user001 share the policy, but their last logins got through before it broke
    for other in ("user000", "user001"):
        report = user_report(result, other)
        assert report["healthy"], report["problems"]
        assert any("KeyError" in n["message"] for n in of_check(report["notes"], "webhook")), report["notes"]


def test_an_error_quoting_the_webhook_key_is_reported_without_it(env):
    mapping = headers_of(env)
    mapping["expression"] = mapping["expression"].replace(
        "return {", "raise ValueError('refusing to send %s' % " + repr("Bearer " + env.webhook_key) + ")\nreturn {")
    env.login("user002", "192.0.2.55")
    age_events(env)
    result = doctor(env)
    webhook = of_check(user_report(result, "user002")["problems"], "webhook")
    assert webhook and "refusing to send" in webhook[0]["message"], webhook
    assert env.webhook_key.split(".")[1] not in json.dumps(result)


def test_an_old_failure_a_later_login_got_past_is_only_a_note(env):
    mapping = mapping_of(env, "user000")
    good = mapping["expression"]
    mapping["expression"] = good.replace("return {", "raise ValueError('boom')\nreturn {")
    env.login("user000", "192.0.2.52")
    assert env.addresses_of("user000") == ["203.0.113.10"]  # that one never arrived
    mapping["expression"] = good
    env.login("user000", "192.0.2.53")
    assert env.addresses_of("user000") == ["192.0.2.53"]
    age_events(env)
    report = user_report(doctor(env), "user000")
    assert report["healthy"] and "webhook" in checks(report["notes"]), report
    assert any("boom" in n["message"] and "newest login got through" in n["message"]
               for n in of_check(report["notes"], "webhook")), report["notes"]


# -- the addresses against authentik's state ---------------------------------------------------------------
def test_a_login_still_in_flight_is_a_note_and_a_stale_one_a_problem(env):
    # The worker has not delivered this login yet: Pangolin still holds the old value, the event is seconds old.
    env.authentik.pause_worker()
    env.login("user001", "198.51.100.12", wait=False)  # deliberately not delivered
    report = user_report(doctor(env), "user001")
    assert report["healthy"], report["problems"]
    assert any("may still be queued" in n["message"] for n in of_check(report["notes"], "webhook")), report
    age_events(env)  # ten minutes on, still not delivered: it is stuck
    result = doctor(env)
    report = user_report(result, "user001")
    assert not report["healthy"]
    webhook = of_check(report["problems"], "webhook")
    assert webhook and "198.51.100.12" in webhook[0]["message"] and "198.51.100.11" in webhook[0]["message"]
    assert "backlog" in checks(result["notes"])  # and the doctor says where it is stuck
    for other in ("user000", "user002"):
        assert user_report(result, other)["healthy"], user_report(result, other)["problems"]
    env.authentik.resume_worker()
    env.wait_for(lambda: env.addresses_of("user001") == ["198.51.100.12"], what="the held login to arrive")
    result = doctor(env)
    assert result["healthy"] and not of_check(user_report(result, "user001")["notes"], "webhook"), result


def test_an_address_older_than_expire_days_is_stale(env):
    # Thirty-one days on: the rules still let user000 and user001 in, which their logins no longer account for.
    age_events(env, minutes=31 * 24 * 60)
    result = doctor(env)
    assert result["healthy"], result
    for username, address in (("user000", "203.0.113.10"), ("user001", "198.51.100.11")):
        stale = of_check(user_report(result, username)["notes"], "stale")
        assert stale and address in stale[0]["message"] and "last 30 days" in stale[0]["message"], stale
        assert "expire.yml" in stale[0]["fix"]
        # where the address came from, though it no longer counts
        assert user_report(result, username)["addresses"][0]["source"]["address"] == address
    assert not of_check(user_report(result, "user002")["notes"], "stale")


def test_each_address_is_listed_with_the_login_it_comes_from():
    with built(max_addresses=2) as env:
        env.login("user000", "192.0.2.20")  # user000: 203.0.113.10, then 192.0.2.20
        logins = dict((e.client_ip, e) for e in env.authentik.events_of("login"))
        result = doctor(env)
        assert result["healthy"], result
        alice = user_report(result, "user000")
        first, second = env.rule_of("user000", 1), env.rule_of("user000", 2)
        assert [(a["rule_id"], a["priority"], a["match"], a["value"]) for a in alice["addresses"]] == [
            (first["ruleId"], first["priority"], "IP", "192.0.2.20"),
            (second["ruleId"], second["priority"], "IP", "203.0.113.10")]
        for entry in alice["addresses"]:
            source = entry["source"]
            assert source is not None, entry
            assert source["kind"] == "login" and source["address"] == entry["value"], entry
            assert source["id"] == str(logins[entry["value"]].event_uuid), entry
            assert source["when"] and source["when"].endswith("Z")
        assert alice["addresses"][0]["source"]["when"] > alice["addresses"][1]["source"]["when"]
        assert alice["whitelisted"] == "192.0.2.20" and alice["rule_id"] == first["ruleId"]
        assert alice["last_login_ip"] == "192.0.2.20"
        bob = user_report(result, "user001")  # one login: the second rule waits with the placeholder
        assert [(a["value"], a["source"] and a["source"]["address"]) for a in bob["addresses"]] == [
            ("198.51.100.11", "198.51.100.11"), ("0.0.0.0", None)]
        fresh = user_report(result, "user002")
        assert [(a["value"], a["source"]) for a in fresh["addresses"]] == [("0.0.0.0", None), ("0.0.0.0", None)]


def test_a_session_an_admin_deleted_is_gone_for_that_user_only():
    with built(follow_sessions=True) as env:
        result = doctor(env)
        assert result["healthy"], result
        alice = user_report(result, "user000")
        session = env.authentik.sessions_of("user000")[0]
        source = alice["addresses"][0]["source"]
        assert source is not None and (source["kind"], source["id"], source["address"]) == (
            "session", session["uuid"], "203.0.113.10"), alice["addresses"]
        # An admin revokes user001's session in authentik's admin interface: no event, the rule keeps the address.
        revoked = env.authentik.sessions_of("user001")[0]
        base, session_api = api(env)
        resp = session_api.delete(base + "/core/authenticated_sessions/%s/" % revoked["uuid"], timeout=10)
        assert resp.status_code == 204, resp.text
        assert env.authentik.wait_idle(60) and env.addresses_of("user001") == ["198.51.100.11"]
        result = doctor(env)
        gone = assert_only_user001_broken(result, "session_gone", "no live session of 'user001'")
        assert "198.51.100.11" in gone[0]["message"] and "expire.yml" in gone[0]["fix"]
        assert user_report(result, "user001")["addresses"][0]["source"] is None


def test_a_deactivated_user_whose_rule_still_lets_an_address_in():
    with built() as env:
        # Deactivated through the API: authentik's event makes the pipeline reset the rule at once.
        base, http = api(env)
        resp = http.patch(base + "/core/users/%d/" % pk_of(env, "user000"), json={"is_active": False}, timeout=10)
        assert resp.status_code == 200, resp.text
        env.wait_for(lambda: env.addresses_of("user000") == ["0.0.0.0"], what="the deactivation to reach Pangolin")
        # Deactivated where no event is written (straight in the database): the rule keeps the address.
        _deactivate(env)
        result = doctor(env)
        found = assert_only_user001_broken(result, "deactivated", "user 'user001' is deactivated")
        assert "198.51.100.11" in found[0]["message"] and "expire.yml" in found[0]["fix"]
        alice = user_report(result, "user000")  # deactivated too, but its rule lets nobody in: only a note
        assert "user" in checks(alice["notes"]) and alice["whitelisted"] == "0.0.0.0"
        assert "user" in checks(user_report(result, "user001")["notes"])


def test_a_user_missing_from_the_group_policy_is_a_policy_problem(env):
    group = group_policy_of(env, "user001")
    assert group["pk"] == group_policy_of(env, "user000")["pk"] == group_policy_of(env, "user002")["pk"]
    set_policy_users(env, "user001", lambda pks: [pk for pk in pks if pk != pk_of(env, "user001")])
    found = assert_only_user001_broken(doctor(env), "policy", "does not match the logins of user pk %d"
                                       % pk_of(env, "user001"))
    assert group["name"] in found[0]["message"] and "site.yml" in found[0]["fix"]


# -- everyone's logins -----------------------------------------------------------------------------------------
def test_untrusted_proxy_pattern_names_the_setting(env):
    env.login("user000", "172.18.0.3")
    env.login("user001", "172.18.0.3")
    result = doctor(env)
    proxy = of_check(result["problems"], "trusted_proxy")
    assert proxy, result["problems"]
    assert "172.18.0.3" in proxy[0]["message"] and "user000" in proxy[0]["message"]
    assert "user001" in proxy[0]["message"]
    assert "AUTHENTIK_LISTEN__TRUSTED_PROXY_CIDRS" in proxy[0]["fix"] and "172.18.0.3/32" in proxy[0]["fix"]
    assert not result["healthy"]


def test_one_household_behind_one_public_address_is_only_a_note(env):
    env.login("user000", "203.0.113.99")
    env.login("user001", "203.0.113.99")
    result = doctor(env)
    assert not of_check(result["problems"], "trusted_proxy")
    shared = of_check(result["notes"], "shared_address")
    assert shared and "203.0.113.99" in shared[0]["message"]
    assert result["healthy"], result


# -- the playbook and the worker ----------------------------------------------------------------------------------
def test_doctor_playbook_exit_code_and_report():
    with PlaybookEnv(users=2) as env:
        rc, parsed, out, err = env.run()
        assert rc == 0, out[-3000:]
        env.login("user000", "203.0.113.40")
        env.pangolin.reset_log()
        env.authentik.reset_log()
        rc, parsed, out, err = env.run(playbook="doctor.yml", check=True)
        assert rc == 0, out[-3000:]
        report = env.task_results(parsed, "Report")[0]["msg"]
        assert any(line.startswith("user000: OK") and "203.0.113.40" in line for line in report), report
        assert any(line.startswith("user001: OK") and "nobody" in line for line in report), report
        assert env.pangolin.accepted_writes() + env.authentik.accepted_writes() == []
        env.pangolin.policy_rules[env.rule_of("user001")["ruleId"]]["enabled"] = False
        rc, parsed, out, err = env.run(playbook="doctor.yml")
        assert rc != 0
        report = env.task_results(parsed, "Report")[0]["msg"]
        assert any(line.startswith("user001: BROKEN") for line in report), report
        assert any(line.startswith("user000: OK") for line in report), report
        assert any("user001: PROBLEM" in line and "disabled" in line for line in report), report
        task, failed = env.failure(parsed)
        assert task.endswith("Fail when something is broken") and "user001" in failed["msg"]
        assert "user000" not in failed["msg"]
        assert env.pangolin.accepted_writes() + env.authentik.accepted_writes() == []
        for secret in (env.pangolin_key.split(".")[1], env.webhook_key.split(".")[1], AUTHENTIK_TOKEN):
            assert secret not in out + err


def test_worker_backlog_is_reported(env):
    env.authentik.pause_worker()
    for address in ("203.0.113.1", "203.0.113.2", "203.0.113.3"):
        env.login("user000", address, wait=False)
    result = doctor(env)
    assert result["backlog"]["available"] is True and result["backlog"]["queued"] >= 3, result["backlog"]
    backlog = of_check(result["notes"], "backlog")
    assert backlog and "(1 of this whitelist, 0 others in authentik)" in backlog[0]["message"], result["notes"]
    assert backlog[0]["fix"]
    assert env.addresses_of("user000") == ["203.0.113.10"]  # nothing delivered while paused
    env.authentik.resume_worker()
    assert env.authentik.wait_idle(60)
    assert env.addresses_of("user000") == ["203.0.113.3"]
    result = doctor(env)
    assert result["backlog"]["queued"] == 0
    assert "backlog" not in checks(result["notes"])
    assert result["healthy"], result


def test_a_worker_that_falls_behind_is_named_the_bottleneck_with_what_a_login_costs_it(env):
    env.authentik.pause_worker()
    for address in ("203.0.113.1", "203.0.113.2"):
        env.login("user000", address, wait=False)
    result = doctor(env)
    # just queued: a backlog, but nothing has waited long yet
    assert result["worker"]["connected"] == 1 and result["worker"]["bottleneck"] is False, result["worker"]
    assert result["worker"]["queue_wait"] < 5 and "bottleneck" not in checks(result["notes"])
    # three users on the one rule of this env: a login sends all three webhooks
    (rule,) = env.authentik.rules.values()
    assert result["worker"]["webhook_tasks_per_login"] == 3 == len(rule["transports"])
    assert result["worker"]["handler_tasks_per_event"] == len(env.authentik.rules) == 1
    env.authentik.age_queue(40)  # the worker fell 40 s behind
    result = doctor(env)
    assert result["worker"]["bottleneck"] is True and result["worker"]["queue_wait"] >= 40, result["worker"]
    found = of_check(result["notes"], "bottleneck")
    assert found and re.search(r"has waited 4\d s", found[0]["message"]), found
    assert "up to 3 webhook tasks" in found[0]["message"], found
    assert "AUTHENTIK_WORKER__THREADS" in found[0]["fix"] and "AUTHENTIK_WORKER__PROCESSES" in found[0]["fix"]
    assert result["healthy"], result["problems"]  # slow, not broken: a note
    env.authentik.resume_worker()
    assert env.authentik.wait_idle(60)
    assert env.addresses_of("user000") == ["203.0.113.2"]
    result = doctor(env)
    assert result["worker"]["queue_wait"] == 0 and not result["worker"]["bottleneck"]
    assert "bottleneck" not in checks(result["notes"]) and result["healthy"]


def test_no_worker_is_a_problem_and_a_worker_of_another_version_a_note(env):
    env.authentik.worker_down()
    env.login("user001", "198.51.100.12", wait=False)
    result = doctor(env)
    assert result["worker"]["connected"] == 0 and not result["healthy"]
    found = of_check(result["problems"], "worker")
    assert found and "no authentik worker" in found[0]["message"] and "ak worker" in found[0]["fix"], found
    assert env.addresses_of("user001") == ["198.51.100.11"]  # indeed nothing is delivered
    env.authentik.worker_up()
    assert env.authentik.wait_idle(60)
    assert env.addresses_of("user001") == ["198.51.100.12"]
    env.authentik.worker_version = "2026.2.2"
    env.authentik.worker_processes = 2
    result = doctor(env)
    assert result["healthy"] and result["worker"]["connected"] == 2, result
    found = of_check(result["notes"], "worker_version")
    assert found and "1@authentik-worker, 2@authentik-worker" in found[0]["message"], result["notes"]
    env.authentik.worker_version = None
    assert "worker_version" not in checks(doctor(env)["notes"])


def test_a_stopped_worker_is_found_on_2026_2_too():
    with PlaybookEnv(users=1, authentik_version="2026.2.2") as env:
        converge(env)
        assert doctor(env)["worker"]["connected"] == 1
        env.authentik.worker_down()
        result = doctor(env)
        assert result["worker"]["connected"] == 0 and of_check(result["problems"], "worker"), result["problems"]


def test_a_token_that_may_not_list_the_workers_is_a_note_and_the_queue_is_still_read(env):
    env.authentik.add_token(AUTHENTIK_TOKEN, without=["authentik_rbac.view_system_info"])
    result = doctor(env)
    assert result["worker"]["connected"] is None and result["worker"]["queue_wait"] == 0, result["worker"]
    found = of_check(result["notes"], "worker_list")
    assert found and "authentik_rbac.view_system_info" in found[0]["message"], result["notes"]
    assert result["healthy"] and not of_check(result["problems"], "worker")


def test_no_task_api_before_2025_8():
    with PlaybookEnv(users=1, authentik_version="2025.6.3") as env:
        env.authentik.add_group("jellyfin-notify", users=[pk_of(env, "user000")])
        converge(env, destination_group="jellyfin-notify")
        env.login("user000", "203.0.113.30")
        result = doctor(env)
        assert result["backlog"] == {"available": False, "queued": None, "notification_rules": 1,
                                     "other_notification_rules": 0}
        assert result["healthy"], result
        assert user_report(result, "user000")["whitelisted"] == "203.0.113.30"
        assert result["worker"]["connected"] is None and result["worker"]["queue_wait"] is None  # nothing to ask


def test_backlog_counts_this_whitelists_rules_apart_from_authentiks_others():
    """A fresh authentik has 3 default notification rules, and another whitelist may share authentik: each costs
    the worker a handler task per event, but only the rules this whitelist owns are its own."""
    with PlaybookEnv(users=3, default_rules=True) as env:
        assert len(env.authentik.rules) == 3  # events-default.yaml's
        converge(env, **SOLO)
        result = doctor(env)
        assert result["backlog"] == {"available": True, "queued": 0, "notification_rules": 3,
                                     "other_notification_rules": 3}
        assert result["healthy"], result
        # a second whitelist, of another resource, in the same authentik: one rule of its own
        other = env.pangolin.add_resource("homelab", "Other")
        second = dict(conn(env), resource_id=other, users=[{"username": "user000"}])
        assert not run_module("login_ip_whitelist", dict(second, webhook_api_key=env.webhook_key)).get("failed")
        assert len(env.authentik.rules) == 7
        result = doctor(env)
        assert result["backlog"]["notification_rules"] == 3 and result["backlog"]["other_notification_rules"] == 4
        assert env.authentik.wait_idle(60)
        seen_by_second = run_module("login_ip_whitelist_info", second)
        assert seen_by_second["backlog"]["notification_rules"] == 1, seen_by_second["backlog"]
        assert seen_by_second["backlog"]["other_notification_rules"] == 6
        # under a backlog the note says how the cost per event splits
        env.authentik.pause_worker()
        env.login("user001", "203.0.113.61", wait=False)
        backlog = of_check(doctor(env)["notes"], "backlog")
        assert backlog and "(3 of this whitelist, 4 others in authentik)" in backlog[0]["message"], backlog
        env.authentik.resume_worker()
        assert env.authentik.wait_idle(60)
