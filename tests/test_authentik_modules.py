"""The authentik modules against the authentik simulator, run in-process.

Covers authentik_webhook_mapping, authentik_notification_transport,
authentik_notification_rule, authentik_user, authentik_group and
authentik_user_info: create/update/no-op/delete, check and diff mode,
idempotence, the field names of each authentik version (checked in what the
server stored), bad input refused before any write, connection errors, the
whole login → webhook → Pangolin rule chain built by hand, and that no result
(nor a -vvv playbook run) ever carries a token or key.
"""

import json
from types import SimpleNamespace

import pytest

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.secrets import REDACTED
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.render import rendered_values
from tests import playbook_env
from tests.module_harness import run_module
from tests.simulators.authentik import AuthentikSimulator
from tests.simulators.pangolin import PangolinSimulator

TOKEN = "ak-module-token-3e9b71c2d5a84f60"
BAD_TOKEN = "ak-wrong-token-0a1b2c3d4e5f6789"
PANGOLIN_KEY = "rootkey00000009.pangolinrootsecretvalue0000000000000001"
WEBHOOK_KEY = "rulekey00000009.pangolinwebhooksecretvalue000000000001"
WEBHOOK_KEY2 = "rulekey00000010.pangolinwebhooksecretvalue000000000002"
SECRETS = [TOKEN, BAD_TOKEN, PANGOLIN_KEY, WEBHOOK_KEY, WEBHOOK_KEY2]

OLD, MID, NEW = "2025.2.4", "2025.6.3", "2026.5.0-rc1"
LOGIN_IP = "203.0.113.50"


@pytest.fixture(scope="module")
def servers():
    ak = AuthentikSimulator()
    pangolin = PangolinSimulator()
    ak.start()
    pangolin.start()
    yield ak, pangolin
    ak.stop()
    pangolin.stop()


@pytest.fixture
def env(servers):
    """Fresh authentik (newest version, one superuser token) and Pangolin (one resource, two keys)."""
    sim, pangolin = servers
    sim.version = NEW
    sim.reset()
    sim.clear_faults()
    sim.reset_log()
    sim.add_token(TOKEN)
    pangolin.reset()
    ns = SimpleNamespace(sim=sim, pangolin=pangolin)
    ns.resource = pangolin.add_resource("homelab", "Jellyfin", subdomain="jellyfin")
    pangolin.add_api_key(root=True, key=PANGOLIN_KEY)
    pangolin.add_api_key(org_id="homelab", actions=["updateResourceRule"], key=WEBHOOK_KEY)
    ns.conn = dict(authentik_url=sim.base_url, authentik_token=TOKEN)
    yield ns
    sim.version = NEW


def at_version(env, version):
    env.sim.version = version
    return env


def assert_no_secret(result):
    text = json.dumps(result)
    for value in SECRETS:
        assert value not in text
        assert value.split(".", 1)[-1] not in text


def run(env, name, args, check=False, diff=False, conn=True):
    full = dict(env.conn) if conn else {}
    full.update(args)
    full = dict((k, v) for k, v in full.items() if v is not None)  # None means: not given
    result = run_module(name, full, check=check, diff=diff)
    assert_no_secret(result)
    return result


def ok(result):
    assert not result.get("failed"), result.get("msg")
    return result


def failed(result, *fragments):
    assert result.get("failed"), result
    assert "exception" not in result, result.get("exception")
    for fragment in fragments:
        assert fragment in result["msg"], (fragment, result["msg"])
    return result["msg"]


def writes(env):
    return [(e.method, e.path, e.body) for e in env.sim.writes()]


def fresh_log(env):
    env.sim.reset_log()
    env.pangolin.reset_log()


def only(store, **match):
    found = [r for r in store.values() if all(r.get(k) == v for k, v in match.items())]
    assert len(found) == 1, found
    return found[0]


def mapping(env, check=False, diff=False, **args):
    base = dict(name="m1", expression="return {'a': 1}")
    base.update(args)
    return run(env, "authentik_webhook_mapping", base, check=check, diff=diff)


def transport(env, check=False, diff=False, **args):
    base = dict(name="t1", webhook_url="http://receiver:8080/hook")
    base.update(args)
    return run(env, "authentik_notification_transport", base, check=check, diff=diff)


def rule(env, check=False, diff=False, **args):
    base = dict(name="r1")
    base.update(args)
    return run(env, "authentik_notification_rule", base, check=check, diff=diff)


def user(env, check=False, diff=False, **args):
    return run(env, "authentik_user", args, check=check, diff=diff)


def pangolin_rule(env, priority=100):
    """A webhook-owned IP rule on the Jellyfin resource; its id."""
    result = ok(run(env, "pangolin_rule", dict(pangolin_url=env.pangolin.base_url, pangolin_api_key=PANGOLIN_KEY,
                                               resource_id=env.resource, priority=priority, match="IP",
                                               webhook_owned=True), conn=False))
    return result


def rule_url(env, rule_id):
    return "%s/v1/resource/%d/rule/%d" % (env.pangolin.base_url, env.resource, rule_id)


# -- authentik_webhook_mapping ------------------------------------------------------

def test_mapping_create_noop_update_delete(env):
    created = ok(mapping(env, diff=True))
    assert created["changed"] and created["operation"] == "create"
    stored = only(env.sim.mappings, name="m1")
    assert stored["expression"] == "return {'a': 1}" and created["mapping"]["pk"] == stored["pk"]
    assert created["diff"]["before"] == {} and created["diff"]["after"]["expression"] == "return {'a': 1}"

    fresh_log(env)
    same = ok(mapping(env))
    assert same["changed"] is False and same["operation"] is None and writes(env) == []

    updated = ok(mapping(env, diff=True, expression="return {'a': 2}"))
    assert updated["changed"] and updated["operation"] == "update"
    assert updated["diff"]["before"]["expression"] == "return {'a': 1}"
    assert updated["diff"]["after"]["expression"] == "return {'a': 2}"
    assert [(m, p) for m, p, _ in writes(env)] == [("PATCH", "/api/v3/propertymappings/notification/%s/"
                                                    % stored["pk"])]
    assert env.sim.mappings[stored["pk"]]["expression"] == "return {'a': 2}"

    fresh_log(env)
    gone = ok(mapping(env, diff=True, state="absent", expression=None))
    assert gone["changed"] and gone["operation"] == "delete" and gone["mapping"] is None
    assert gone["diff"]["after"] == {} and gone["diff"]["before"]["name"] == "m1"
    assert env.sim.mappings == {}
    fresh_log(env)
    assert ok(mapping(env, state="absent", expression=None))["changed"] is False
    assert writes(env) == []


@pytest.mark.parametrize("seed,args,action", [
    (None, {}, "create"),
    ("return 1", {}, "update"),
    ("return {'a': 1}", {"state": "absent", "expression": None}, "delete"),
    ("return {'a': 1}", {}, None),
])
def test_mapping_check_mode_writes_nothing(env, seed, args, action):
    if seed:
        ok(mapping(env, expression=seed))
    before = json.dumps(env.sim.mappings, sort_keys=True)
    fresh_log(env)
    result = ok(mapping(env, check=True, diff=True, **args))
    assert result["changed"] is (action is not None) and result["operation"] == action
    assert writes(env) == [] and json.dumps(env.sim.mappings, sort_keys=True) == before
    if action == "create":
        assert result["mapping"]["pk"] is None and result["diff"]["after"]["expression"] == "return {'a': 1}"
    if action is None:
        assert "diff" not in result


def test_mapping_headers_key_hidden_but_change_detected(env):
    created = ok(mapping(env, diff=True, name="hdr", expression=None, template="pangolin_headers",
                         webhook_api_key=WEBHOOK_KEY))
    assert created["changed"] and created["mapping"]["expression"].startswith(REDACTED)
    assert created["diff"]["after"]["expression"].startswith(REDACTED)
    stored = only(env.sim.mappings, name="hdr")
    assert "Bearer " + WEBHOOK_KEY in stored["expression"]

    fresh_log(env)
    same = ok(mapping(env, diff=True, name="hdr", expression=None, template="pangolin_headers",
                      webhook_api_key=WEBHOOK_KEY))
    assert same["changed"] is False and writes(env) == []

    checked = ok(mapping(env, check=True, diff=True, name="hdr", expression=None, template="pangolin_headers",
                         webhook_api_key=WEBHOOK_KEY2))
    assert checked["changed"] and writes(env) == []

    changed = ok(mapping(env, diff=True, name="hdr", expression=None, template="pangolin_headers",
                         webhook_api_key=WEBHOOK_KEY2))
    assert changed["changed"] and changed["operation"] == "update"
    assert changed["diff"]["before"]["expression"] == REDACTED + " (differs)"
    assert changed["diff"]["after"]["expression"] == REDACTED + " (differs)"
    expression = env.sim.mappings[stored["pk"]]["expression"]
    assert "Bearer " + WEBHOOK_KEY2 in expression and WEBHOOK_KEY not in expression
    assert rendered_values(expression)["Authorization"] == "Bearer " + WEBHOOK_KEY2


@pytest.mark.parametrize("args", [dict(state="absent", expression=None), dict(expression="return {}")])
def test_mapping_headers_key_hidden_when_run_without_it(env, args):
    """Deleting or overwriting the headers mapping without its key must not print the old expression."""
    ok(mapping(env, name="hdr", expression=None, template="pangolin_headers", webhook_api_key=WEBHOOK_KEY))
    for check in (True, False):
        result = ok(mapping(env, check=check, diff=True, name="hdr", **args))  # run() checks every key
        assert result["changed"] and result["diff"]["before"]["expression"].startswith(REDACTED)


def test_mapping_rule_body_template(env):
    ok(mapping(env, name="body", expression=None, template="pangolin_rule_body", priority=100))
    expression = only(env.sim.mappings, name="body")["expression"]
    values = rendered_values(expression)
    assert values["priority"] == 100 and isinstance(values["priority"], int)
    assert values["action"] == "ACCEPT" and values["placeholder"] == "0.0.0.0" and values["enabled"] is True
    fresh_log(env)
    assert ok(mapping(env, name="body", expression=None, template="pangolin_rule_body",
                      priority=100))["changed"] is False
    assert writes(env) == []
    moved = ok(mapping(env, name="body", expression=None, template="pangolin_rule_body", priority=101,
                       action="DROP", placeholder="192.0.2.1"))
    assert moved["changed"]
    values = rendered_values(only(env.sim.mappings, name="body")["expression"])
    assert (values["priority"], values["action"]) == (101, "DROP")


@pytest.mark.parametrize("args,fragments", [
    (dict(priority=100, placeholder="not-an-ip"), ["placeholder", "not-an-ip"]),
    (dict(priority=100, placeholder="10.0.0.0/8"), ["placeholder"]),
    # an ACCEPT rule holding an address a client connects from lets it in (a DROP rule may: see above)
    (dict(priority=100, placeholder="192.0.2.1"), ["placeholder", "'192.0.2.1'", "connect from"]),
    (dict(priority=2 ** 40), ["priority", "out of range"]),
    (dict(priority="high"), ["priority"]),
    (dict(), ["priority is required"]),
])
def test_mapping_rule_body_bad_input(env, args, fragments):
    failed(mapping(env, name="body", expression=None, template="pangolin_rule_body", **args), *fragments)
    assert writes(env) == [] and env.sim.mappings == {}


@pytest.mark.parametrize("expression", ["return {'a': 1", "if True:\nreturn 1", "   "])
def test_mapping_invalid_python_refused_before_any_write(env, expression):
    failed(mapping(env, expression=expression), "expression")
    assert writes(env) == [] and env.sim.mappings == {}


def test_mapping_headers_template_bad_key(env):
    failed(mapping(env, name="hdr", expression=None, template="pangolin_headers", webhook_api_key="nodot"),
           "webhook_api_key")
    assert writes(env) == []


def test_mapping_name_taken_by_another_mapping_type(env):
    other = env.sim.add_other_property_mapping("taken")
    msg = failed(mapping(env, name="taken"), "'taken'", "Scope Mapping", other, "already taken")
    assert "property mapping types" in msg
    assert [(m, p) for m, p, _ in writes(env)] == [("POST", "/api/v3/propertymappings/notification/")]
    assert env.sim.mappings == {}


# -- authentik_notification_transport -----------------------------------------------

def seed_mappings(env, headers=True):
    ok(mapping(env, name="body", expression=None, template="pangolin_rule_body", priority=100))
    if headers:
        ok(mapping(env, name="hdr", expression=None, template="pangolin_headers", webhook_api_key=WEBHOOK_KEY))
    return dict((m["name"], m["pk"]) for m in env.sim.mappings.values())


def test_transport_create_noop_update_delete(env):
    pks = seed_mappings(env)
    fresh_log(env)
    created = ok(transport(env, diff=True, body_mapping="body", headers_mapping="hdr"))
    assert created["changed"] and created["operation"] == "create"
    stored = only(env.sim.transports, name="t1")
    assert stored["mode"] == "webhook" and stored["send_once"] is True
    assert stored["webhook_url"] == "http://receiver:8080/hook"
    assert stored["webhook_mapping_body"] == pks["body"] and stored["webhook_mapping_headers"] == pks["hdr"]
    assert created["transport"]["body_mapping"] == pks["body"]
    assert created["diff"]["after"]["headers_mapping"] == pks["hdr"]

    fresh_log(env)
    same = ok(transport(env, body_mapping="body", headers_mapping="hdr"))
    assert same["changed"] is False and writes(env) == []

    checked = ok(transport(env, check=True, diff=True, body_mapping="body", headers_mapping="hdr",
                           webhook_url="http://receiver:8080/other", send_once=False))
    assert checked["changed"] and checked["operation"] == "update" and writes(env) == []
    assert checked["transport"]["send_once"] is False and stored["send_once"] is True
    moved = ok(transport(env, diff=True, body_mapping="body", headers_mapping="hdr",
                         webhook_url="http://receiver:8080/other", send_once=False))
    assert moved["changed"] and moved["operation"] == "update"
    assert moved["diff"]["before"]["webhook_url"] == "http://receiver:8080/hook"
    assert moved["diff"]["after"]["webhook_url"] == "http://receiver:8080/other"
    assert [m for m, _, _ in writes(env)] == ["PATCH"]
    assert stored["webhook_url"] == "http://receiver:8080/other" and stored["send_once"] is False
    assert stored["webhook_mapping_headers"] == pks["hdr"]

    fresh_log(env)
    gone = ok(transport(env, state="absent", diff=True))
    assert gone["changed"] and gone["transport"] is None and env.sim.transports == {}
    fresh_log(env)
    assert ok(transport(env, state="absent"))["changed"] is False and writes(env) == []


@pytest.mark.parametrize("version,field", [(OLD, "webhook_mapping"), (MID, "webhook_mapping_body"),
                                           (NEW, "webhook_mapping_body")])
def test_transport_body_mapping_field_of_each_version(env, version, field):
    at_version(env, version)
    pks = seed_mappings(env, headers=version != OLD)
    fresh_log(env)
    args = dict(body_mapping="body") if version == OLD else dict(body_mapping="body", headers_mapping="hdr")
    ok(transport(env, **args))
    assert field in writes(env)[0][2]
    stored = only(env.sim.transports, name="t1")
    assert stored["webhook_mapping_body"] == pks["body"]  # really stored, not silently dropped
    if version != OLD:
        assert stored["webhook_mapping_headers"] == pks["hdr"]
    fresh_log(env)
    assert ok(transport(env, **args))["changed"] is False and writes(env) == []


def test_transport_headers_mapping_before_2025_4_is_refused(env):
    at_version(env, OLD)
    ok(mapping(env, name="hdr", expression="return {}"))
    fresh_log(env)
    failed(transport(env, headers_mapping="hdr"), "headers_mapping", "newer authentik", "2025.2.4")
    assert writes(env) == [] and env.sim.transports == {}


def test_transport_missing_mapping_names_the_option(env):
    failed(transport(env, body_mapping="nope"), "body_mapping", "'nope'")
    failed(transport(env, headers_mapping="gone"), "headers_mapping", "'gone'")
    assert writes(env) == [] and env.sim.transports == {}


def test_transport_check_mode_with_missing_mapping(env):
    result = ok(transport(env, check=True, diff=True, body_mapping="later"))
    assert result["changed"] and result["operation"] == "create"
    assert "later" in result["transport"]["body_mapping"] and "not created yet" in result["transport"]["body_mapping"]
    assert writes(env) == [] and env.sim.transports == {}


@pytest.mark.parametrize("url,fragments", [
    ("http://my_receiver:8080/hook", ["webhook_url", "underscores"]),
    ("not a url", ["webhook_url", "http://"]),
    ("ftp://receiver/hook", ["webhook_url", "http://"]),
    (None, ["webhook_url is required"]),
])
def test_transport_webhook_url_validation(env, url, fragments):
    failed(transport(env, webhook_url=url), *fragments)
    assert writes(env) == []


def test_transport_email_mode(env):
    created = ok(transport(env, name="mail", mode="email", webhook_url=None, send_once=False,
                           email_subject_prefix="Login: "))
    assert created["changed"]
    stored = only(env.sim.transports, name="mail")
    assert (stored["mode"], stored["send_once"], stored["email_subject_prefix"]) == ("email", False, "Login: ")
    fresh_log(env)
    assert ok(transport(env, name="mail", mode="email", send_once=False,
                        email_subject_prefix="Login: "))["changed"] is False
    assert writes(env) == []


def test_transport_email_fields_before_2025_8_are_refused(env):
    at_version(env, MID)
    failed(transport(env, name="mail", mode="email", email_subject_prefix="Login: "),
           "email_subject_prefix", "newer authentik")
    assert writes(env) == []


# -- authentik_notification_rule ----------------------------------------------------

def webhook_chain(env, username="alice", priority=100, rule_name="r1", **rule_args):
    """Mappings, transport and rule for one user, pointing at a Pangolin rule; the rule's id."""
    rule_id = env.pangolin.add_rule(env.resource, "ACCEPT", "IP", "0.0.0.0", priority)
    ok(mapping(env, name="hdr", expression=None, template="pangolin_headers", webhook_api_key=WEBHOOK_KEY))
    ok(mapping(env, name="body-" + username, expression=None, template="pangolin_rule_body", priority=priority))
    ok(transport(env, name="t-" + username, webhook_url=rule_url(env, rule_id), body_mapping="body-" + username,
                 headers_mapping="hdr"))
    result = ok(rule(env, name=rule_name, transports=["t-" + username], login_of_user=username, **rule_args))
    return rule_id, result


def pangolin_value(env, rule_id):
    return [r for r in env.pangolin.rules(env.resource) if r["ruleId"] == rule_id][0]


def test_rule_login_of_user_fires_on_that_users_login(env):
    alice = env.sim.add_user("alice", name="Alice", email="alice@example.com")
    env.sim.add_user("bob", name="Bob", email="bob@example.com")
    rule_id, result = webhook_chain(env)
    assert result["changed"] and result["operation"] == "create"
    policy = only(env.sim.policies, name="r1")
    assert policy["_type"] == "expression" and "== %d" % alice in policy["expression"]
    stored = only(env.sim.rules, name="r1")
    assert stored["destination_event_user"] is True and len(stored["transports"]) == 1
    assert [b["policy"] for b in env.sim.bindings.values()] == [policy["pk"]]

    env.sim.login("bob", "198.51.100.7")  # another user's login does not fire
    assert pangolin_value(env, rule_id)["value"] == "0.0.0.0"
    env.sim.login("alice", LOGIN_IP)
    row = pangolin_value(env, rule_id)
    assert (row["value"], row["priority"], row["action"]) == (LOGIN_IP, 100, "ACCEPT")


def test_rule_noop_and_binding_created_once(env):
    env.sim.add_user("alice")
    webhook_chain(env)
    fresh_log(env)
    again = ok(rule(env, diff=True, transports=["t-alice"], login_of_user="alice"))
    assert again["changed"] is False and writes(env) == [] and not again.get("diff")
    assert len(env.sim.bindings) == 1 and len(again["bindings"]) == 1
    checked = ok(rule(env, check=True, transports=["t-alice"], login_of_user="alice"))
    assert checked["changed"] is False and writes(env) == []


def test_rule_update_severity_and_diff(env):
    env.sim.add_user("alice")
    webhook_chain(env)
    fresh_log(env)
    result = ok(rule(env, diff=True, transports=["t-alice"], login_of_user="alice", severity="alert"))
    assert result["changed"] and result["operation"] == "update"
    rule_diffs = [d for d in result["diff"] if "notification rule" in d["before_header"]]
    assert rule_diffs[0]["before"]["severity"] == "notice" and rule_diffs[0]["after"]["severity"] == "alert"
    assert [m for m, _, _ in writes(env)] == ["PATCH"]
    assert only(env.sim.rules, name="r1")["severity"] == "alert"


def test_rule_check_mode_create_writes_nothing(env):
    env.sim.add_user("alice")
    result = ok(rule(env, check=True, diff=True, transports=["t-later"], login_of_user="alice"))
    assert result["changed"] and result["operation"] == "create"
    assert result["notification_rule"]["pk"] is None
    assert "not created yet" in result["notification_rule"]["transports"][0]
    assert len(result["bindings"]) == 1 and len(result["diff"]) == 3
    assert writes(env) == [] and env.sim.rules == {} and env.sim.policies == {}


@pytest.mark.parametrize("version", [OLD, MID, NEW])
def test_rule_destination_field_of_each_version(env, version):
    at_version(env, version)
    alice = env.sim.add_user("alice", email="alice@example.com")
    group = env.sim.add_group("watchers", users=[alice])
    ok(transport(env, name="local", mode="local", webhook_url=None))
    args = dict(transports=["local"], login_of_user="alice", destination_group="watchers",
                destination_event_user=version == NEW)
    created = ok(rule(env, **args))
    assert created["changed"]
    stored = only(env.sim.rules, name="r1")
    assert stored["destination_group"] == group  # really stored under this version's field name
    assert stored["destination_event_user"] is (version == NEW)
    body = [b for m, p, b in writes(env) if m == "POST" and p == "/api/v3/events/rules/"][0]
    assert ("group" in body) is (version != NEW) and ("destination_group" in body) is (version == NEW)
    fresh_log(env)
    assert ok(rule(env, **args))["changed"] is False and writes(env) == []
    env.sim.login("alice", LOGIN_IP)
    assert [(n["rule"], n["user"]) for n in env.sim.notifications] == [("r1", alice)]  # send_once


@pytest.mark.parametrize("version", [OLD, MID])
def test_rule_destination_event_user_before_2025_8_is_refused(env, version):
    at_version(env, version)
    env.sim.add_user("alice")
    failed(rule(env, login_of_user="alice"), "destination_event_user", "2025.8", "destination_group")
    assert writes(env) == [] and env.sim.policies == {}


def test_rule_unknown_user_is_named(env):
    failed(rule(env, login_of_user="ghost"), "login_of_user", "'ghost'")
    assert writes(env) == []


def test_rule_without_policy_or_recipient_is_refused(env):
    env.sim.add_user("alice")
    failed(rule(env), "no bound policy", "login_of_user")
    failed(rule(env, login_of_user="alice", destination_event_user=False), "no recipient")
    failed(rule(env, login_of_user="alice", destination_group="nobody"), "destination_group", "'nobody'")
    failed(rule(env, login_of_user="alice", policies=["missing"]), "policies", "'missing'")
    assert writes(env) == []


def test_rule_event_action_emails_at_login(env):
    env.sim.add_user("carol", email="carol@example.com")
    ok(transport(env, name="mail", mode="email", webhook_url=None, send_once=False))
    result = ok(rule(env, name="login-email", transports=["mail"], event_action="login", policy_name="login-events"))
    assert result["policy"]["name"] == "login-events"
    policy = only(env.sim.policies, name="login-events")
    assert policy["_type"] == "event_matcher" and policy["action"] == "login"
    fresh_log(env)
    assert ok(rule(env, name="login-email", transports=["mail"], event_action="login",
                   policy_name="login-events"))["changed"] is False
    assert writes(env) == []
    env.sim.login("carol", LOGIN_IP)
    assert [(m["to"], m["rule"]) for m in env.sim.outbox] == [("carol@example.com", "login-email")]


def test_rule_binds_existing_policies_after_the_managed_one(env):
    env.sim.add_user("alice")
    existing = env.sim.add_other_policy("always")
    result = ok(rule(env, login_of_user="alice", policies=["always"]))
    managed = only(env.sim.policies, name="r1")["pk"]
    bindings = sorted(env.sim.bindings.values(), key=lambda b: b["order"])
    assert [(b["policy"], b["order"]) for b in bindings] == [(managed, 0), (existing, 1)]
    assert [b["policy"] for b in result["bindings"]] == [managed, existing]
    fresh_log(env)
    assert ok(rule(env, login_of_user="alice", policies=["always"]))["changed"] is False
    assert writes(env) == []


def test_rule_unbinds_a_policy_dropped_from_the_list(env):
    env.sim.add_user("alice")
    existing = env.sim.add_other_policy("always")
    ok(rule(env, login_of_user="alice", policies=["always"]))
    result = ok(rule(env, login_of_user="alice", diff=True))
    assert result["changed"] is True
    managed = only(env.sim.policies, name="r1")["pk"]
    assert [b["policy"] for b in env.sim.bindings.values()] == [managed]
    assert existing in env.sim.policies  # unbound, not deleted
    fresh_log(env)
    assert ok(rule(env, login_of_user="alice"))["changed"] is False
    assert writes(env) == []


def test_rule_policy_name_taken_by_another_policy_type(env):
    env.sim.add_user("alice")
    env.sim.add_other_policy("r1")
    failed(rule(env, login_of_user="alice"), "'r1'", "Dummy Policy", "already taken")
    assert [(m, p) for m, p, _ in writes(env)] == [("POST", "/api/v3/policies/expression/")]
    assert env.sim.rules == {}


def test_rule_absent_removes_rule_policy_and_binding(env):
    env.sim.add_user("alice")
    webhook_chain(env)
    fresh_log(env)
    checked = ok(rule(env, check=True, state="absent"))
    assert checked["changed"] and writes(env) == []
    gone = ok(rule(env, diff=True, state="absent"))
    assert gone["changed"] and gone["operation"] == "delete" and gone["notification_rule"] is None
    assert len(gone["diff"]) == 2
    assert env.sim.rules == {} and env.sim.policies == {} and env.sim.bindings == {}
    assert len(env.sim.transports) == 1  # transports are not the rule's to delete
    fresh_log(env)
    assert ok(rule(env, state="absent"))["changed"] is False and writes(env) == []


# -- authentik_user ------------------------------------------------------------------

def set_password_calls(env):
    return [e for e in env.sim.log if e.path.endswith("/set_password/")]


def test_user_create_with_password_then_noop(env):
    env.sim.add_group("jellyfin")
    created = ok(user(env, diff=True, username="dave", name="Dave", email="dave@example.com",
                      groups=["jellyfin"], password="s3cret-pass"))
    assert created["changed"] and created["operation"] == "create" and created["password_set"] is True
    assert "s3cret-pass" not in json.dumps(created)
    stored = env.sim.user_by_username("dave")
    assert stored["password"] == "s3cret-pass" and len(set_password_calls(env)) == 1
    assert created["user"]["groups"] == ["jellyfin"] and created["user"]["pk"] == stored["pk"]
    assert created["diff"]["after"]["email"] == "dave@example.com"

    fresh_log(env)
    same = ok(user(env, username="dave", name="Dave", email="dave@example.com", groups=["jellyfin"],
                   password="other-pass"))
    assert same["changed"] is False and same["password_set"] is False and writes(env) == []
    assert stored["password"] == "s3cret-pass"


def test_user_update_uses_patch_only(env):
    pk = env.sim.add_user("dave", name="Dave", email="dave@example.com")
    fresh_log(env)
    result = ok(user(env, diff=True, username="dave", name="David", email="david@example.com"))
    assert result["changed"] and result["operation"] == "update"
    assert result["diff"]["before"]["name"] == "Dave" and result["diff"]["after"]["name"] == "David"
    assert [(m, p) for m, p, _ in writes(env)] == [("PATCH", "/api/v3/core/users/%d/" % pk)]
    assert writes(env)[0][2] == {"name": "David", "email": "david@example.com"}
    assert not any(e.method == "PUT" for e in env.sim.log)
    assert (env.sim.users[pk]["name"], env.sim.users[pk]["email"]) == ("David", "david@example.com")


def memberships(env, pk):
    return sorted(g["name"] for g in env.sim.groups.values() if pk in g["users"])


def test_user_groups_modes(env):
    for name in ("media", "games", "other"):
        env.sim.add_group(name)
    pk = env.sim.add_user("erin", groups=["other"])

    added = ok(user(env, username="erin", groups=["media", "games"]))
    assert added["changed"] and memberships(env, pk) == ["games", "media", "other"]
    assert {p.rsplit("/", 2)[-2] for _, p, _ in writes(env)} == {"add_user"}
    fresh_log(env)
    assert ok(user(env, username="erin", groups=["media"]))["changed"] is False and writes(env) == []

    removed = ok(user(env, username="erin", groups=["games", "nonexistent"], groups_mode="remove"))
    assert removed["changed"] and memberships(env, pk) == ["media", "other"]
    fresh_log(env)
    assert ok(user(env, username="erin", groups=["games"], groups_mode="remove"))["changed"] is False
    assert writes(env) == []

    checked = ok(user(env, check=True, username="erin", groups=["games"], groups_mode="exact"))
    assert checked["changed"] and checked["user"]["groups"] == ["games"] and writes(env) == []
    exact = ok(user(env, diff=True, username="erin", groups=["games"], groups_mode="exact"))
    assert exact["changed"] and memberships(env, pk) == ["games"]
    assert exact["diff"]["before"]["groups"] == ["media", "other"] and exact["diff"]["after"]["groups"] == ["games"]
    fresh_log(env)
    assert ok(user(env, username="erin", groups=["games"], groups_mode="exact"))["changed"] is False
    assert writes(env) == []


def test_user_unknown_group_is_refused(env):
    pk = env.sim.add_user("erin")
    failed(user(env, username="erin", groups=["nope"]), "groups", "'nope'")
    failed(user(env, username="frank", groups=["nope"]), "groups", "'nope'")
    assert writes(env) == [] and memberships(env, pk) == []


def test_user_update_password_always(env):
    env.sim.add_user("gina", password="old")
    fresh_log(env)
    on_create = ok(user(env, username="gina", password="new"))
    assert on_create["changed"] is False and set_password_calls(env) == []
    checked = ok(user(env, check=True, username="gina", password="new", update_password="always"))
    assert checked["changed"] and checked["password_set"] and set_password_calls(env) == []
    for _ in range(2):
        result = ok(user(env, username="gina", password="new", update_password="always"))
        assert result["changed"] and result["password_set"]
    assert len(set_password_calls(env)) == 2 and env.sim.user_by_username("gina")["password"] == "new"
    assert not any(e.method in ("PATCH", "PUT") for e in env.sim.log)


def test_user_check_mode_create_and_absent(env):
    result = ok(user(env, check=True, diff=True, username="hank", name="Hank", password="pw-hank"))
    assert result["changed"] and result["password_set"] and result["user"]["pk"] is None
    assert writes(env) == [] and env.sim.user_by_username("hank") is None
    pk = env.sim.add_user("hank")
    fresh_log(env)
    assert ok(user(env, check=True, username="hank", state="absent"))["changed"] and writes(env) == []
    gone = ok(user(env, diff=True, username="hank", state="absent"))
    assert gone["changed"] and gone["user"] is None and pk not in env.sim.users
    assert gone["diff"]["before"]["username"] == "hank"
    fresh_log(env)
    assert ok(user(env, username="hank", state="absent"))["changed"] is False and writes(env) == []


@pytest.mark.parametrize("username", ["bad\nname", "tab\tbed", "", "x" * 151])
def test_user_bad_username_refused_before_any_request(env, username):
    failed(user(env, username=username), "username")
    assert env.sim.log == []


# -- authentik_group ---------------------------------------------------------------

def test_group_create_noop_attributes_absent(env):
    created = ok(run(env, "authentik_group", dict(name="media"), diff=True))
    assert created["changed"] and created["operation"] == "create" and created["diff"]["after"]["name"] == "media"
    stored = only(env.sim.groups, name="media")
    fresh_log(env)
    assert ok(run(env, "authentik_group", dict(name="media")))["changed"] is False and writes(env) == []

    checked = ok(run(env, "authentik_group", dict(name="media", attributes={"tier": "gold"}), check=True))
    assert checked["changed"] and checked["group"]["attributes"] == {"tier": "gold"} and writes(env) == []
    updated = ok(run(env, "authentik_group", dict(name="media", attributes={"tier": "gold"}), diff=True))
    assert updated["changed"] and updated["diff"]["after"]["attributes"] == {"tier": "gold"}
    assert [m for m, _, _ in writes(env)] == ["PATCH"] and stored["attributes"] == {"tier": "gold"}
    fresh_log(env)
    assert ok(run(env, "authentik_group", dict(name="media", attributes={"tier": "gold"})))["changed"] is False
    assert writes(env) == []

    members = env.sim.add_user("ivy", groups=["media"])
    gone = ok(run(env, "authentik_group", dict(name="media", state="absent")))
    assert gone["changed"] and gone["group"] is None and members in env.sim.users
    assert sorted(g["name"] for g in env.sim.groups.values()) == ["authentik Admins"]  # media gone, no other
    fresh_log(env)
    assert ok(run(env, "authentik_group", dict(name="media", state="absent")))["changed"] is False
    assert writes(env) == []


# -- authentik_user_info -----------------------------------------------------------

def test_user_info(env):
    env.sim.add_group("media")
    alice = env.sim.add_user("alice", name="Alice", email="alice@example.com", groups=["media"])
    bob = env.sim.add_user("bob")
    result = ok(run(env, "authentik_user_info", dict(usernames=["bob", "alice", "ghost"]), check=True))
    assert result["changed"] is False and result["missing"] == ["ghost"]
    assert [(u["username"], u["pk"]) for u in result["users"]] == [("alice", alice), ("bob", bob)]
    assert result["users"][0]["groups"] == ["media"] and result["users"][0]["email"] == "alice@example.com"
    many = ok(run(env, "authentik_user_info", dict(usernames=["alice", "bob", "x1", "x2", "x3"])))
    assert [u["username"] for u in many["users"]] == ["alice", "bob"] and many["missing"] == ["x1", "x2", "x3"]
    everyone = ok(run(env, "authentik_user_info", {}))
    assert [u["username"] for u in everyone["users"]] == ["akadmin", "alice", "bob"]
    failed(run(env, "authentik_user_info", dict(usernames=["alice", "ghost"], fail_on_missing=True)), "'ghost'")
    assert writes(env) == []


def test_user_info_follows_pages(env):
    for index in range(130):  # more than the largest page authentik 2025.12+ serves
        env.sim.add_user("u%03d" % index)
    everyone = ok(run(env, "authentik_user_info", {}))
    assert len(everyone["users"]) == 131 and everyone["users"][-1]["username"] == "u129"
    many = ok(run(env, "authentik_user_info", dict(usernames=["u000", "u050", "u129", "u200"])))
    assert [u["username"] for u in many["users"]] == ["u000", "u050", "u129"] and many["missing"] == ["u200"]


# -- connection --------------------------------------------------------------------

def test_bad_token_is_a_403_naming_the_token(env):
    failed(run(env, "authentik_group", dict(name="media", authentik_token=BAD_TOKEN)),
           "403", "Token invalid/expired", "authentik_token")
    assert writes(env) == []


@pytest.mark.parametrize("url", ["auth.example.com", "ftp://auth.example.com", "http://"])
def test_url_without_scheme(env, url):
    failed(run(env, "authentik_group", dict(name="media", authentik_url=url)), "authentik_url",
           "http:// or https://")
    assert env.sim.log == []


@pytest.mark.parametrize("name,args", [
    ("authentik_group", dict(name="media")),
    ("authentik_user_info", dict(usernames=["alice"])),
    ("authentik_notification_transport", dict(name="t1", webhook_url="http://receiver/hook")),
])
def test_url_of_pangolin_not_authentik(env, name, args):
    msg = failed(run(env, name, dict(args, authentik_url=env.pangolin.base_url)), "authentik")
    assert "Traceback" not in msg
    assert "authentik_url" in msg or "authentik server" in msg
    assert writes(env) == [] and env.pangolin.writes() == []


def test_trailing_api_v3_accepted(env):
    result = ok(run(env, "authentik_group", dict(name="media", authentik_url=env.sim.base_url + "/api/v3/")))
    assert result["changed"] and only(env.sim.groups, name="media")


def test_env_fallbacks(env, monkeypatch):
    monkeypatch.setenv("AUTHENTIK_URL", env.sim.base_url)
    monkeypatch.setenv("AUTHENTIK_TOKEN", TOKEN)
    result = ok(run(env, "authentik_group", dict(name="media"), conn=False))
    assert result["changed"] and only(env.sim.groups, name="media")


def test_missing_connection_options(env, monkeypatch):
    monkeypatch.delenv("AUTHENTIK_URL", raising=False)
    monkeypatch.delenv("AUTHENTIK_TOKEN", raising=False)
    result = run(env, "authentik_group", dict(name="media"), conn=False)
    assert result.get("failed") and "authentik_url" in result["msg"] and "authentik_token" in result["msg"]


# -- the whole chain, by hand --------------------------------------------------------

def test_whole_chain_by_hand(env):
    alice = env.sim.add_user("alice", name="Alice", email="alice@example.com")

    def build():
        results = [pangolin_rule(env, priority=100)]
        rule_id = results[0]["rule"]["rule_id"]
        results.append(ok(mapping(env, name="pangolin-headers", expression=None, template="pangolin_headers",
                                  webhook_api_key=WEBHOOK_KEY)))
        results.append(ok(mapping(env, name="jw-alice", expression=None, template="pangolin_rule_body",
                                  priority=100)))
        results.append(ok(transport(env, name="jw-alice", webhook_url=rule_url(env, rule_id),
                                    body_mapping="jw-alice", headers_mapping="pangolin-headers")))
        results.append(ok(rule(env, name="jw-alice", transports=["jw-alice"], login_of_user="alice")))
        return rule_id, results

    rule_id, first = build()
    assert all(r["changed"] for r in first)
    assert "== %d" % alice in only(env.sim.policies, name="jw-alice")["expression"]
    assert pangolin_value(env, rule_id)["value"] == "0.0.0.0"

    env.sim.login("alice", LOGIN_IP)
    delivery = env.sim.deliveries[-1]
    assert delivery["status"] == 200 and delivery["headers"]["Authorization"] == "Bearer " + WEBHOOK_KEY
    row = pangolin_value(env, rule_id)
    assert (row["value"], row["priority"], row["match"], row["action"]) == (LOGIN_IP, 100, "IP", "ACCEPT")

    fresh_log(env)
    same_id, second = build()
    assert same_id == rule_id
    assert [r["changed"] for r in second] == [False] * 5
    assert env.sim.writes() == [] and env.pangolin.writes() == []
    assert pangolin_value(env, rule_id)["value"] == LOGIN_IP


# -- secrets at playbook level -------------------------------------------------------

def test_playbook_vvv_diff_never_prints_a_secret():
    with playbook_env.PlaybookEnv(users=2) as pb:
        secrets = [playbook_env.AUTHENTIK_TOKEN, playbook_env.PANGOLIN_KEY, playbook_env.WEBHOOK_KEY]
        secrets += [s.split(".", 1)[1] for s in secrets if "." in s]
        for check in (True, False):
            rc, _parsed, out, err = pb.run(check=check, diff=True, verbosity=3, stdout_callback="default")
            assert rc == 0, (out[-3000:], err[-3000:])
            text = out + err
            assert "jellyfin-whitelist-resource-%d/user000/1" % pb.resource_id in text
            for secret in secrets:
                assert secret not in text, "secret printed (check=%s)" % check
        assert len(pb.authentik.transports) == 2
