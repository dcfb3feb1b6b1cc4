"""The doctor: each broken link is reported when it is broken, and nothing when all is well.

The whitelist is built with the real module, users log in through authentik's
pipeline, then one link is broken on purpose (directly in a simulator's
state, as an operator's click would) and ``login_ip_whitelist_info`` must name
it for that user only, with what to do. The doctor never writes.
"""

import json
from datetime import timedelta

import pytest

from tests.module_harness import run_module
from tests.playbook_env import AUTHENTIK_TOKEN, PlaybookEnv
from tests.simulators.authentik import AuthentikSimulator

PREFIX = "jellyfin-whitelist-"
HEADERS = "jellyfin-whitelist pangolin headers"


def conn(env):
    return dict(pangolin_url=env.pangolin.base_url, pangolin_api_key=env.pangolin_key, retries=0,
                authentik_url=env.authentik.base_url, authentik_token=AUTHENTIK_TOKEN, resource_id=env.resource_id,
                users=[{"username": u} for u in env.usernames])


def converge(env, **extra):
    result = run_module("login_ip_whitelist", dict(conn(env), webhook_api_key=env.webhook_key, **extra))
    assert not result.get("failed"), result.get("msg")
    return result


def doctor(env, **extra):
    env.pangolin.reset_log()
    env.authentik.reset_log()
    check = extra.pop("check", False)
    result = run_module("login_ip_whitelist_info", dict(conn(env), **extra), check=check)
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False
    assert env.writes() == []
    return result


@pytest.fixture
def env():
    with PlaybookEnv(users=3) as environment:
        converge(environment)
        environment.authentik.login("user000", "203.0.113.10")
        environment.authentik.login("user001", "198.51.100.11")
        yield environment


def age_events(env, minutes=10):
    """As if everything authentik recorded happened ``minutes`` ago (past the in-flight grace)."""
    for event in env.authentik.events:
        event.created -= timedelta(minutes=minutes)


def named(store, name):
    return [o for o in store.values() if o.get("name") == name][0]


def user_report(result, username):
    return [u for u in result["users"] if u["username"] == username][0]


def checks(entries):
    return sorted(set(e["check"] for e in entries))


def test_all_well_reports_each_users_ip_and_last_login(env):
    result = doctor(env)
    assert result["healthy"] is True and result["problems"] == []
    alice = user_report(result, "user000")
    assert alice["healthy"] and alice["problems"] == []
    assert alice["whitelisted"] == "203.0.113.10" and alice["last_login_ip"] == "203.0.113.10"
    assert alice["last_login"] and alice["match"] == "IP" and alice["priority"] == 100
    fresh = user_report(result, "user002")
    assert fresh["healthy"] and fresh["whitelisted"] == "0.0.0.0" and fresh["last_login"] is None
    assert checks(fresh["notes"]) == ["last_login"]
    assert result["apply_rules"] is True
    assert result["backlog"]["notification_rules"] == 3


def test_check_mode_is_the_same_read(env):
    assert doctor(env, check=True)["healthy"] is True


def _deactivate(env):
    env.authentik.user_by_username("user001")["is_active"] = False


def _delete_user(env):
    pk = env.authentik.user_by_username("user001")["pk"]
    del env.authentik.users[pk]


def _delete(store_name, username="user001"):
    def breaker(env):
        store = getattr(env.authentik, store_name)
        pk = named(store, PREFIX + username)["pk"]
        del store[pk]
    return breaker


def _delete_rule(env):
    rule = env.rule_of("user001")
    del env.pangolin.policy_rules[rule["ruleId"]]


def _other_resource(env):
    other = env.pangolin.add_resource("homelab", "Other")
    transport = named(env.authentik.transports, PREFIX + "user001")
    transport["webhook_url"] = transport["webhook_url"].replace("/resource/%d/" % env.resource_id,
                                                                "/resource/%d/" % other)


def _renumber(env):
    env.pangolin.policy_rules[env.rule_of("user001")["ruleId"]]["priority"] = 150


def _disable_rule(env):
    env.pangolin.policy_rules[env.rule_of("user001")["ruleId"]]["enabled"] = False


def _policy_of_someone_else(env):
    policy = named(env.authentik.policies, PREFIX + "user001")
    policy["expression"] = policy["expression"].replace(
        "== %d" % env.authentik.user_by_username("user001")["pk"], "== 4")


def _no_recipient(env):
    named(env.authentik.rules, PREFIX + "user001")["destination_event_user"] = False


def _unbind(env):
    rule = named(env.authentik.rules, PREFIX + "user001")
    for pk in [pk for pk, b in env.authentik.bindings.items() if b["target"] == rule["pk"]]:
        del env.authentik.bindings[pk]


def _no_headers_on_transport(env):
    named(env.authentik.transports, PREFIX + "user001")["webhook_mapping_headers"] = None


BREAKS = [
    pytest.param(_deactivate, "user", "deactivated", id="user-inactive"),
    pytest.param(_delete_user, "user", "no user", id="user-missing"),
    pytest.param(_delete("transports"), "transport", "no notification transport", id="transport-missing"),
    pytest.param(_no_headers_on_transport, "transport", "headers mapping", id="transport-without-headers"),
    pytest.param(_delete_rule, "rule", "does not have", id="rule-deleted"),
    pytest.param(_other_resource, "transport", "not of resource", id="transport-other-resource"),
    pytest.param(_renumber, "priority", "priority 101 but the rule has priority 150", id="priority-disagrees"),
    pytest.param(_disable_rule, "rule", "disabled", id="rule-disabled"),
    pytest.param(_delete("mappings"), "body_mapping", "no webhook mapping", id="body-mapping-missing"),
    pytest.param(_delete("policies"), "policy", "no expression policy", id="policy-missing"),
    pytest.param(_policy_of_someone_else, "policy", "does not match", id="policy-other-pk"),
    pytest.param(_delete("rules"), "notification_rule", "no notification rule", id="rule-missing"),
    pytest.param(_no_recipient, "notification_rule", "no recipient", id="no-recipient"),
    pytest.param(_unbind, "binding", "not bound", id="policy-unbound"),
]


@pytest.mark.parametrize("breaker,check,words", BREAKS)
def test_each_broken_link_is_reported_for_that_user_only(env, breaker, check, words):
    breaker(env)
    result = doctor(env)
    assert result["healthy"] is False
    broken = user_report(result, "user001")
    assert not broken["healthy"]
    found = [p for p in broken["problems"] if p["check"] == check]
    assert found, broken["problems"]
    assert words in found[0]["message"], found[0]["message"]
    assert found[0]["fix"]
    for other in ("user000", "user002"):
        assert user_report(result, other)["healthy"], user_report(result, other)["problems"]


def test_apply_rules_off_is_a_problem_for_everyone(env):
    policy = env.pangolin.resource(env.resource_id)["defaultResourcePolicyId"]
    env.pangolin.policies[policy]["applyRules"] = False
    result = doctor(env)
    assert result["healthy"] is False
    assert checks(result["problems"]) == ["apply_rules"]
    assert "applyRules" in result["problems"][0]["message"]


def test_missing_headers_mapping_is_a_problem(env):
    pk = named(env.authentik.mappings, HEADERS)["pk"]
    for transport in env.authentik.transports.values():
        transport["webhook_mapping_headers"] = None
    del env.authentik.mappings[pk]
    result = doctor(env)
    assert "headers_mapping" in checks(result["problems"])


def test_the_webhook_key_is_checked_in_pangolin(env):
    key_id = env.webhook_key.split(".")[0]
    assert "webhook_key" not in checks(doctor(env)["problems"] + doctor(env)["notes"])
    env.pangolin.api_keys[key_id]["actions"] = {"updateResourceRule", "deleteResourceRule"}
    assert "more than update rules" in [n for n in doctor(env)["notes"] if n["check"] == "webhook_key"][0]["message"]
    env.pangolin.api_keys[key_id]["actions"] = {"listResourceRules"}
    problem = [p for p in doctor(env)["problems"] if p["check"] == "webhook_key"]
    assert problem and "lacks the updateResourceRule action" in problem[0]["message"]
    del env.pangolin.api_keys[key_id]
    # Possibly a root key (org lists leave those out): a note, unless the whitelist manages its own key.
    assert "webhook_key" in checks(doctor(env)["notes"]) and doctor(env)["healthy"]
    managed = doctor(env, manage_webhook_key=True)
    assert not managed["healthy"]
    problem = [p for p in managed["problems"] if p["check"] == "webhook_key"]
    assert problem and key_id in problem[0]["message"] and "manage_webhook_key" in problem[0]["fix"]


def test_a_playbook_key_that_cannot_read_keys_only_skips_that_check(env):
    org_key = env.pangolin.add_api_key(org_id="homelab")  # every action, but not root
    result = run_module("login_ip_whitelist_info", dict(conn(env), pangolin_api_key=org_key))
    assert not result.get("failed"), result.get("msg")
    assert result["healthy"] and "webhook_key" in checks(result["notes"])


def test_leftovers_of_users_no_longer_whitelisted_are_noted(env):
    users = [{"username": "user000"}, {"username": "user001", "state": "absent"}]
    result = doctor(env, users=users)
    leftovers = dict((n["message"].split("'")[1], n) for n in result["notes"] if n["check"] == "leftover")
    assert sorted(leftovers) == ["user001", "user002"]
    assert "marked absent" in leftovers["user001"]["message"] and "prune" in leftovers["user002"]["fix"]
    assert result["healthy"]  # absent users are not checked, and leftovers break nobody's whitelist
    assert [u["username"] for u in result["users"]] == ["user000"]


def test_a_rule_that_shadows_the_users_rule(env):
    env.pangolin.add_rule(env.resource_id, "DROP", "CIDR", "0.0.0.0/0", 5)
    result = doctor(env)
    for username in ("user000", "user001", "user002"):
        report = user_report(result, username)
        assert "shadowed" in checks(report["problems"]), report
        assert "priority 5" in [p for p in report["problems"] if p["check"] == "shadowed"][0]["message"]


def test_a_rule_that_only_covers_other_addresses_does_not_shadow(env):
    env.pangolin.add_rule(env.resource_id, "DROP", "CIDR", "192.168.0.0/16", 5)
    env.pangolin.add_rule(env.resource_id, "DROP", "COUNTRY", "CN", 6)
    result = doctor(env)
    alice = user_report(result, "user000")
    assert alice["healthy"]
    assert [n for n in alice["notes"] if n["check"] == "shadowed"]  # the country rule may match: a note


def test_a_login_whose_webhook_failed_is_explained(env):
    # The headers mapping now sends a key Pangolin does not know: the webhook gets a 401.
    mapping = named(env.authentik.mappings, HEADERS)
    mapping["expression"] = mapping["expression"].replace(env.webhook_key.split(".")[1], "x" * 40)
    env.authentik.login("user002", "192.0.2.50")
    age_events(env)
    result = doctor(env)
    report = user_report(result, "user002")
    webhook = [p for p in report["problems"] if p["check"] == "webhook"]
    assert webhook, report
    assert "192.0.2.50" in webhook[0]["message"] and "0.0.0.0" in webhook[0]["message"]
    # authentik's failed task says why: Pangolin refused the key.
    assert "webhook task failed" in webhook[0]["message"] and "Invalid API key" in webhook[0]["message"]
    assert "key" in webhook[0]["fix"]
    assert user_report(result, "user000")["healthy"]  # their logins got through before


def test_a_webhook_to_a_deleted_rule_is_explained_as_gone(env):
    _delete_rule(env)
    env.authentik.login("user001", "192.0.2.60")
    age_events(env)
    report = user_report(doctor(env), "user001")
    assert "rule" in checks(report["problems"])  # the broken link itself
    webhook = [n for n in report["notes"] if n["check"] == "webhook"]  # and what authentik saw of it
    assert webhook and "404" in webhook[0]["message"] and "gone" in webhook[0]["fix"], webhook


def test_a_broken_body_mapping_is_found_in_authentiks_events(env):
    mapping = named(env.authentik.mappings, PREFIX + "user002")
    mapping["expression"] = mapping["expression"].replace("return {", "raise ValueError('boom')\nreturn {")
    env.authentik.login("user002", "192.0.2.51")
    age_events(env)
    result = doctor(env)
    webhook = [p for p in user_report(result, "user002")["problems"] if p["check"] == "webhook"]
    assert webhook and "could not evaluate" in webhook[0]["message"] and "boom" in webhook[0]["message"]
    assert "mapping" in webhook[0]["fix"]


def test_a_broken_login_policy_is_found_in_authentiks_events(env):
    policy = named(env.authentik.policies, PREFIX + "user002")
    policy["expression"] = policy["expression"].replace("event = ", "event = {}['nope']\nevent = ", 1)
    env.authentik.login("user002", "192.0.2.54")
    age_events(env)
    webhook = [p for p in user_report(doctor(env), "user002")["problems"] if p["check"] == "webhook"]
    assert webhook and "policy" in webhook[0]["message"] and "KeyError" in webhook[0]["message"], webhook
    assert "policy" in webhook[0]["fix"]


def test_an_error_quoting_the_webhook_key_is_reported_without_it(env):
    mapping = named(env.authentik.mappings, HEADERS)
    mapping["expression"] = mapping["expression"].replace(
        "return {", "raise ValueError('refusing to send %s' % " + repr("Bearer " + env.webhook_key) + ")\nreturn {")
    env.authentik.login("user002", "192.0.2.55")
    age_events(env)
    result = doctor(env)
    webhook = [p for p in user_report(result, "user002")["problems"] if p["check"] == "webhook"]
    assert webhook and "refusing to send" in webhook[0]["message"], webhook
    assert env.webhook_key.split(".")[1] not in json.dumps(result)


def test_an_old_failure_a_later_login_got_past_is_only_a_note(env):
    mapping = named(env.authentik.mappings, PREFIX + "user000")
    good = mapping["expression"]
    mapping["expression"] = good.replace("return {", "raise ValueError('boom')\nreturn {")
    env.authentik.login("user000", "192.0.2.52")
    mapping["expression"] = good
    env.authentik.login("user000", "192.0.2.53")
    report = user_report(doctor(env), "user000")
    assert report["healthy"] and "webhook" in checks(report["notes"])


def test_untrusted_proxy_pattern_names_the_setting(env):
    env.authentik.login("user000", "172.18.0.3")
    env.authentik.login("user001", "172.18.0.3")
    result = doctor(env)
    proxy = [p for p in result["problems"] if p["check"] == "trusted_proxy"]
    assert proxy, result["problems"]
    assert "172.18.0.3" in proxy[0]["message"] and "user000" in proxy[0]["message"]
    assert "AUTHENTIK_LISTEN__TRUSTED_PROXY_CIDRS" in proxy[0]["fix"] and "172.18.0.3/32" in proxy[0]["fix"]


def test_one_household_behind_one_public_address_is_only_a_note(env):
    env.authentik.login("user000", "203.0.113.99")
    env.authentik.login("user001", "203.0.113.99")
    result = doctor(env)
    assert not [p for p in result["problems"] if p["check"] == "trusted_proxy"]
    assert "shared_address" in checks(result["notes"])


def test_a_login_still_in_flight_is_a_note_not_a_problem(env):
    # A login the worker has not delivered yet: Pangolin still holds the old value, the event is seconds old.
    named(env.authentik.rules, PREFIX + "user001")["transports"] = []
    env.authentik.login("user001", "198.51.100.12")
    named(env.authentik.rules, PREFIX + "user001")["transports"] = [named(env.authentik.transports,
                                                                          PREFIX + "user001")["pk"]]
    report = user_report(doctor(env), "user001")
    assert report["healthy"] and "webhook" in checks(report["notes"])
    age_events(env)
    report = user_report(doctor(env), "user001")
    assert not report["healthy"] and "webhook" in checks(report["problems"])


def test_doctor_playbook_exit_code_and_report():
    with PlaybookEnv(users=2) as env:
        rc, parsed, out, err = env.run()
        assert rc == 0, out[-3000:]
        env.authentik.login("user000", "203.0.113.40")
        env.pangolin.reset_log()
        env.authentik.reset_log()
        rc, parsed, out, err = env.run(playbook="doctor.yml", check=True)
        assert rc == 0, out[-3000:]
        report = env.task_results(parsed, "Report")[0]["msg"]
        assert any(line.startswith("user000: OK") and "203.0.113.40" in line for line in report), report
        assert env.writes() == []
        env.pangolin.policy_rules[env.rule_of("user001")["ruleId"]]["enabled"] = False
        rc, parsed, out, err = env.run(playbook="doctor.yml")
        assert rc != 0
        report = env.task_results(parsed, "Report")[0]["msg"]
        assert any(line.startswith("user001: BROKEN") for line in report), report
        assert any("user001: PROBLEM" in line and "disabled" in line for line in report), report
        task, failed = env.failure(parsed)
        assert task.endswith("Fail when something is broken") and "user001" in failed["msg"]
        for secret in (env.pangolin_key.split(".")[1], env.webhook_key.split(".")[1], AUTHENTIK_TOKEN):
            assert secret not in out + err


def test_worker_backlog_is_reported():
    with PlaybookEnv(users=1) as env:
        converge(env)
        queued_sim = AuthentikSimulator(worker="background")
        queued_sim.start()
        try:
            queued_sim.add_token(AUTHENTIK_TOKEN)
            queued_sim.add_user("user000")
            args = dict(conn(env), authentik_url=queued_sim.base_url)
            result = run_module("login_ip_whitelist", dict(args, webhook_api_key=env.webhook_key))
            assert not result.get("failed"), result.get("msg")
            queued_sim.pause_worker()
            for address in ("203.0.113.1", "203.0.113.2", "203.0.113.3"):
                queued_sim.login("user000", address)
            result = run_module("login_ip_whitelist_info", args)
            assert result["backlog"]["available"] is True and result["backlog"]["queued"] >= 3, result["backlog"]
            assert "backlog" in checks(result["notes"])
            queued_sim.resume_worker()
            assert queued_sim.wait_idle()
            result = run_module("login_ip_whitelist_info", args)
            assert result["backlog"]["queued"] == 0
            assert "backlog" not in checks(result["notes"])
        finally:
            queued_sim.stop()


def test_no_task_api_before_2025_8():
    with PlaybookEnv(users=1, authentik_version="2025.6.3") as env:
        env.authentik.add_group("jellyfin-notify", users=[env.authentik.user_by_username("user000")["pk"]])
        converge(env, destination_group="jellyfin-notify")
        result = run_module("login_ip_whitelist_info", dict(conn(env), destination_group="jellyfin-notify"))
        assert not result.get("failed"), result.get("msg")
        assert result["backlog"] == {"available": False, "queued": None, "notification_rules": 1}
        assert result["healthy"], result
