"""The Pangolin modules against the Pangolin simulator, run in-process.

Covers pangolin_rule, pangolin_resource, pangolin_resource_info and
authentik_org_policy: create/update/no-op/delete, check and diff mode,
idempotence, bad input refused before any write, the API's quirks, retries,
environment fallbacks, and that no result ever carries the API key.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._pangolin.values import (
    group_membership_mapping,
)
from tests.module_harness import run_module

ALL_KEYS = []  # every key handed to a module in this file


@pytest.fixture
def env(pangolin_server):
    """Fresh state: org homelab (two http resources, one tcp), org other (one), IdP authentik, a root key."""
    sim = pangolin_server
    sim.reset()
    sim.add_org("homelab", "Home Lab")
    sim.add_org("other")
    ns = SimpleNamespace(sim=sim)
    ns.res = sim.add_resource("homelab", "Jellyfin", subdomain="jellyfin")
    ns.res2 = sim.add_resource("homelab", "Grafana", full_domain="grafana.example.com")
    ns.tcp = sim.add_resource("homelab", "Minecraft", mode="tcp")
    ns.foreign = sim.add_resource("other", "Wiki")
    ns.idp = sim.add_idp("authentik")
    ns.key = key(sim, root=True)
    ns.conn = dict(pangolin_url=sim.base_url, pangolin_api_key=ns.key)
    yield ns
    sim.clear_faults()


def key(sim, **kw):
    value = sim.add_api_key(**kw)
    ALL_KEYS.append(value)
    return value


def run(env, name, args, check=False, diff=False, conn=True):
    full = dict(env.conn) if conn else {}
    full.update(args)
    full = dict((k, v) for k, v in full.items() if v is not None)  # None means: not given
    result = run_module(name, full, check=check, diff=diff)
    text = json.dumps(result)
    for value in ALL_KEYS + [full.get("pangolin_api_key")]:
        if value:
            assert value not in text
            if "." in value:
                assert value.split(".", 1)[1] not in text
    return result


def ok(result):
    assert not result.get("failed"), result.get("msg")
    return result


def failed(result, *fragments):
    assert result.get("failed"), result
    for fragment in fragments:
        assert fragment in result["msg"], (fragment, result["msg"])
    return result["msg"]


def warned(result, fragment):
    return fragment in json.dumps(result.get("warnings") or [])


def writes(env):
    return [(e.method, e.path, e.body) for e in env.sim.writes()]


def rules_at(env, resource_id, priority):
    return [r for r in env.sim.rules(resource_id) if r["priority"] == priority]


# -- pangolin_rule ------------------------------------------------------------------

def rule(env, check=False, diff=False, **args):
    base = dict(resource_id=env.res, priority=10, action="ACCEPT", match="CIDR", value="192.168.1.0/24")
    base.update(args)
    return run(env, "pangolin_rule", base, check=check, diff=diff)


def test_rule_create_then_idempotent(env):
    result = ok(rule(env))
    assert result["changed"] and result["operation"] == "create"
    assert result["resource_id"] == env.res
    assert result["rule"]["rule_id"] is not None
    stored = env.sim.rules(env.res)
    assert [(r["priority"], r["action"], r["match"], r["value"], r["enabled"]) for r in stored] == [
        (10, "ACCEPT", "CIDR", "192.168.1.0/24", True)]
    env.sim.reset_log()
    again = ok(rule(env))
    assert again["changed"] is False and again["operation"] is None
    assert writes(env) == []


def test_rule_update_sends_full_rule(env):
    rid = env.sim.add_rule(env.res, "ACCEPT", "CIDR", "192.168.1.0/24", 10)
    env.sim.reset_log()
    result = ok(rule(env, action="DROP", diff=True))
    assert result["changed"] and result["operation"] == "update"
    assert writes(env) == [("POST", "/v1/resource/%d/rule/%d" % (env.res, rid),
                            {"action": "DROP", "match": "CIDR", "value": "192.168.1.0/24", "priority": 10,
                             "enabled": True})]
    assert result["diff"]["before"]["action"] == "ACCEPT"
    assert result["diff"]["after"]["action"] == "DROP"
    assert env.sim.rules(env.res)[0]["action"] == "DROP"


def test_rule_delete_and_absent_noop(env):
    rid = env.sim.add_rule(env.res, "ACCEPT", "IP", "192.0.2.1", 10)
    result = ok(rule(env, state="absent", diff=True))
    assert result["changed"] and result["operation"] == "delete" and result["rule"] is None
    assert result["diff"]["before"]["rule_id"] == rid and result["diff"]["after"] == {}
    assert env.sim.rules(env.res) == []
    env.sim.reset_log()
    again = ok(rule(env, state="absent"))
    assert again["changed"] is False
    assert writes(env) == []


def test_rule_delete_only_touches_own_resource(env):
    other = env.sim.add_rule(env.res2, "ACCEPT", "IP", "192.0.2.2", 10)
    env.sim.add_rule(env.res, "ACCEPT", "IP", "192.0.2.1", 10)
    ok(rule(env, state="absent"))
    assert env.sim.rules(env.res) == []
    assert [r["ruleId"] for r in env.sim.rules(env.res2)] == [other]
    # Nothing at that priority on this resource: the other resource's rule stays too.
    env.sim.reset_log()
    assert ok(rule(env, state="absent"))["changed"] is False
    assert writes(env) == []
    assert [r["ruleId"] for r in env.sim.rules(env.res2)] == [other]


@pytest.mark.parametrize("state,seed,args", [
    ("present", None, {}),
    ("present", ("ACCEPT", "CIDR", "192.168.1.0/24"), {"action": "PASS"}),
    ("absent", ("ACCEPT", "CIDR", "192.168.1.0/24"), {}),
])
def test_rule_check_mode_writes_nothing(env, state, seed, args):
    if seed:
        env.sim.add_rule(env.res, *seed, priority=10)
    before = env.sim.rules(env.res)
    env.sim.reset_log()
    result = ok(rule(env, check=True, diff=True, state=state, **args))
    assert result["changed"] is True
    assert writes(env) == []
    assert env.sim.rules(env.res) == before
    if state == "present" and not seed:
        assert result["rule"]["rule_id"] is None and result["diff"]["before"] == {}
        assert result["diff"]["after"]["value"] == "192.168.1.0/24"
    if args:
        assert result["rule"]["action"] == "PASS"


def test_rule_check_mode_noop_is_unchanged(env):
    env.sim.add_rule(env.res, "ACCEPT", "CIDR", "192.168.1.0/24", 10)
    env.sim.reset_log()
    result = ok(rule(env, check=True))
    assert result["changed"] is False and writes(env) == []


@pytest.mark.parametrize("how", ["name", "nice_id", "full_domain", "full_domain_upper"])
def test_rule_resource_by_name(env, how):
    value = {"name": "Grafana", "nice_id": "grafana", "full_domain": "grafana.example.com",
             "full_domain_upper": "GRAFANA.example.com"}[how]
    result = ok(run(env, "pangolin_rule", dict(resource=value, org_id="homelab", priority=5, match="IP",
                                               value="192.0.2.7")))
    assert result["resource_id"] == env.res2
    assert len(rules_at(env, env.res2, 5)) == 1


def test_rule_webhook_owned_value_never_changed(env):
    created = ok(rule(env, priority=100, match="IP", value=None, webhook_owned=True))
    assert created["rule"]["value"] == "0.0.0.0"
    rule_id = created["rule"]["rule_id"]
    # authentik writes the login IP
    env.sim.policy_rules[rule_id]["value"] = "203.0.113.9"
    env.sim.reset_log()
    same = ok(rule(env, priority=100, match="IP", value="198.51.100.1", webhook_owned=True))
    assert same["changed"] is False and writes(env) == []
    changed = ok(rule(env, priority=100, match="IP", value=None, action="DROP", webhook_owned=True, diff=True))
    assert changed["changed"] and changed["rule"]["value"] == "203.0.113.9"
    body = writes(env)[0][2]
    assert "value" not in body and body["action"] == "DROP"
    assert env.sim.rules(env.res)[0]["value"] == "203.0.113.9"
    assert env.sim.rules(env.res)[0]["action"] == "DROP"


def test_rule_webhook_owned_match_never_changed(env):
    """An IPv6 login turns the rule into a CIDR prefix; a rerun must keep it."""
    created = ok(rule(env, priority=100, match="IP", value=None, webhook_owned=True))
    rule_id = created["rule"]["rule_id"]
    env.sim.policy_rules[rule_id].update(match="CIDR", value="2001:db8:1:2::/64")
    env.sim.reset_log()
    same = ok(rule(env, priority=100, match="IP", value=None, webhook_owned=True))
    assert same["changed"] is False and writes(env) == []
    changed = ok(rule(env, priority=100, match="IP", value=None, enabled=False, webhook_owned=True))
    assert changed["changed"]
    body = writes(env)[0][2]
    assert "match" not in body and "value" not in body and body["enabled"] is False
    assert env.sim.rules(env.res)[0]["match"] == "CIDR"
    assert env.sim.rules(env.res)[0]["value"] == "2001:db8:1:2::/64"


def test_rule_webhook_owned_check_mode_predicts_placeholder(env):
    result = ok(rule(env, check=True, priority=100, match="IP", value=None, webhook_owned=True))
    assert result["changed"] and result["rule"]["value"] == "0.0.0.0"
    assert writes(env) == []


@pytest.mark.parametrize("match,value,fragment", [
    ("IP", "192.168.1.0/24", "not an IPv4 or IPv6 address"),
    ("IP", "300.1.1.1", "not an IPv4 or IPv6 address"),
    ("IP", "fe80::1%eth0", "not an IPv4 or IPv6 address"),
    ("CIDR", "192.168.1.1", "not an IPv4 or IPv6 CIDR"),
    ("CIDR", "10.0.0.0/33", "not an IPv4 or IPv6 CIDR"),
    ("COUNTRY", "cn", "country code"),
    ("COUNTRY", "XX", "country code"),
    ("COUNTRY_IS_NOT", "USA", "country code"),
    ("ASN", "13335", "not an ASN"),
    ("ASN", "ASX1", "not an ASN"),
    ("REGION", "999", "region"),
    ("REGION", "Europe", "region"),
    ("PATH", "/a b", "URL glob"),
    ("PATH", "//api", "URL glob"),
    ("PATH", "/%zz", "URL glob"),
    ("IP", "", "non-empty"),
])
def test_rule_bad_values_refused_before_any_request(env, match, value, fragment):
    env.sim.reset_log()
    msg = failed(rule(env, match=match, value=value), "value", fragment)
    assert repr(value) in msg
    assert writes(env) == [] and env.sim.log == []


@pytest.mark.parametrize("args,fragments", [
    ({"priority": "ten"}, ("priority", "int")),
    ({"priority": 2 ** 40}, ("priority", "out of range")),
    ({"action": "ALLOW"}, ("action", "ALLOW")),
    ({"match": "cidr"}, ("match", "cidr")),
    ({"enabled": "maybe"}, ("enabled",)),
    ({"value": None}, ("value is required",)),
    ({"resource_id": 0}, ("resource_id must be a positive integer, got 0",)),
    ({"resource_id": None, "resource": "Jellyfin"}, ("org_id",)),
    ({"resource": "Jellyfin", "org_id": "homelab"}, ("mutually exclusive", "resource_id", "resource")),
    ({"state": "gone"}, ("state", "gone")),
])
def test_rule_bad_options(env, args, fragments):
    env.sim.reset_log()
    failed(rule(env, **args), *fragments)
    assert writes(env) == []


@pytest.mark.parametrize("args,fragments", [
    ({"resource_id": 999}, ("Resource with ID 999 not found",)),
    ({"resource_id": None, "resource": "nope", "org_id": "homelab"}, ("'nope'", "no resource of org 'homelab'")),
    ({"resource_id": None, "resource": "Jellyfin", "org_id": "nope"}, ("Organization with ID nope not found",)),
    ({"resource_id": None, "resource": "Wiki", "org_id": "homelab"}, ("'Wiki'", "no resource of org")),
])
def test_rule_unknown_resource_or_org(env, args, fragments):
    env.sim.reset_log()
    failed(rule(env, **args), *fragments)
    assert writes(env) == []


def test_rule_ambiguous_name(env):
    second = env.sim.add_resource("homelab", "Jellyfin", subdomain="jellyfin2")
    env.sim.reset_log()
    failed(run(env, "pangolin_rule", dict(resource="Jellyfin", org_id="homelab", priority=1, value="192.0.2.1")),
           "ambiguous", str(env.res), str(second), "resource_id")
    assert writes(env) == []


def test_rule_duplicate_priority_names_both_ids(env):
    first = env.sim.add_rule(env.res, "ACCEPT", "IP", "192.0.2.1", 10)
    second = env.sim.add_rule(env.res, "DROP", "IP", "192.0.2.2", 10)
    env.sim.reset_log()
    for state in ("present", "absent"):
        failed(rule(env, state=state), "priority 10", "rule ids %d, %d" % (first, second))
    assert writes(env) == []


def test_rule_non_http_resource_refused_by_pangolin(env):
    failed(rule(env, resource_id=env.tcp), "Cannot create rule for non-http resource")
    assert env.sim.rules(env.tcp) == []


def test_rule_retry_after_503_on_read(env):
    env.sim.inject("503", method="GET", path_regex=r"/rules$", count=1)
    result = ok(rule(env))
    assert result["changed"]
    assert warned(result, "HTTP 503") and warned(result, "retry 1 of 3")
    assert len(rules_at(env, env.res, 10)) == 1


def test_rule_lost_answer_on_create_makes_one_rule(env):
    env.sim.inject("lost_answer", method="PUT", path_regex=r"/rule$", count=1)
    result = ok(rule(env))
    assert result["changed"] and result["operation"] == "create"
    assert len(rules_at(env, env.res, 10)) == 1
    assert [m for m, _, _ in writes(env)] == ["PUT"]
    assert result["rule"]["rule_id"] == rules_at(env, env.res, 10)[0]["ruleId"]


def test_rule_env_fallbacks(env, monkeypatch):
    monkeypatch.setenv("PANGOLIN_URL", env.sim.base_url + "/v1/")
    monkeypatch.setenv("PANGOLIN_API_KEY", env.key)
    result = ok(run(env, "pangolin_rule", dict(resource_id=env.res, priority=3, value="192.0.2.3"), conn=False))
    assert result["changed"] and len(rules_at(env, env.res, 3)) == 1


def test_rule_missing_connection_options(env, monkeypatch):
    monkeypatch.delenv("PANGOLIN_URL", raising=False)
    monkeypatch.delenv("PANGOLIN_API_KEY", raising=False)
    failed(run(env, "pangolin_rule", dict(resource_id=env.res, priority=3, value="192.0.2.3"), conn=False),
           "pangolin_url", "pangolin_api_key")


# -- connection and key problems (shared by every module) -----------------------------

MODULE_CALLS = {
    "pangolin_rule": lambda env: dict(resource_id=env.res, priority=10, value="192.0.2.1"),
    "pangolin_resource": lambda env: dict(resource_id=env.res, apply_rules=True),
    "pangolin_resource_info": lambda env: dict(org_id="homelab"),
    "authentik_org_policy": lambda env: dict(idp_id=env.idp, org_id="homelab", role="Member"),
}


@pytest.fixture(scope="module")
def html_server():
    """Not Pangolin: 404 HTML under /v1 (a web app), 200 HTML under /page (a web site)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            status = 404 if self.path.startswith("/v1/") else 200
            body = b"<html><body><h1>Welcome to nginx!</h1></body></html>"
            self.send_response(status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("name", sorted(MODULE_CALLS))
def test_key_without_dot(env, name):
    env.sim.reset_log()
    args = dict(MODULE_CALLS[name](env), pangolin_api_key="justonelongtokenwithoutdot")
    msg = failed(run(env, name, args), "pangolin_api_key", "no '.'")
    assert "justonelongtokenwithoutdot" not in msg
    assert env.sim.log == []


@pytest.mark.parametrize("name", sorted(MODULE_CALLS))
def test_wrong_key_is_401(env, name):
    wrong = "abcdefghij12345.thisisnotthesecretthisisnotthesecret00"
    ALL_KEYS.append(wrong)
    env.sim.reset_log()
    failed(run(env, name, dict(MODULE_CALLS[name](env), pangolin_api_key=wrong)),
           "HTTP 401", "Invalid API key", "pangolin_api_key is not accepted")
    assert writes(env) == []


@pytest.mark.parametrize("name", sorted(MODULE_CALLS))
def test_url_of_a_web_app_not_pangolin(env, html_server, name):
    failed(run(env, name, dict(MODULE_CALLS[name](env), pangolin_url=html_server)),
           "HTTP 404", "answer is not JSON", "Welcome to nginx", "Integration API")


@pytest.mark.parametrize("name", sorted(MODULE_CALLS))
def test_url_of_a_web_site_not_pangolin(env, html_server, name):
    failed(run(env, name, dict(MODULE_CALLS[name](env), pangolin_url=html_server + "/page")),
           "not a Pangolin API envelope", "pangolin_url")


@pytest.mark.parametrize("url,fragment", [
    ("pangolin.example.com", "must be an http:// or https:// URL"),
    ("ftp://pangolin.example.com", "must be an http:// or https:// URL"),
    ("http://", "must be an http:// or https:// URL"),
    ("https://pangolin.example.com/v1?x=1", "must not carry a query"),
])
@pytest.mark.parametrize("name", sorted(MODULE_CALLS))
def test_malformed_url(env, name, url, fragment):
    env.sim.reset_log()
    failed(run(env, name, dict(MODULE_CALLS[name](env), pangolin_url=url)), "pangolin_url", fragment, repr(url))
    assert env.sim.log == []


def test_unreachable_url(env):
    msg = failed(run(env, "pangolin_resource_info", dict(org_id="homelab", pangolin_url="http://127.0.0.1:9",
                                                         retries=0)),
                 "cannot connect to http://127.0.0.1:9 (")
    assert msg.endswith("Connection refused)") and "Traceback" not in msg


def test_key_lacking_read_action_names_it(env):
    limited = key(env.sim, root=True, actions=["createResourceRule", "updateResourceRule"])
    env.sim.reset_log()
    failed(rule(env, pangolin_api_key=limited), "HTTP 403", "grant the key the 'listResourceRules' action")
    assert writes(env) == []


def test_key_lacking_write_action_names_it(env):
    limited = key(env.sim, root=True, actions=["listResourceRules"])
    failed(rule(env, pangolin_api_key=limited), "grant the key the 'createResourceRule' action")
    assert env.sim.rules(env.res) == []


def test_key_of_another_org(env):
    other = key(env.sim, org_id="other")
    env.sim.reset_log()
    failed(rule(env, pangolin_api_key=other), "HTTP 403", "the key belongs to another organization")
    assert writes(env) == []


def test_org_key_works_on_its_own_resources(env):
    own = key(env.sim, org_id="homelab")
    ok(rule(env, pangolin_api_key=own))
    assert len(rules_at(env, env.res, 10)) == 1


# -- pangolin_resource ------------------------------------------------------------

def resource(env, check=False, diff=False, **args):
    base = dict(resource_id=env.res)
    base.update(args)
    return run(env, "pangolin_resource", base, check=check, diff=diff)


def test_resource_update_sends_only_changed_setting(env):
    result = ok(resource(env, apply_rules=True, sso=True, diff=True))
    assert result["changed"] and result["operation"] == "update"
    assert writes(env) == [("POST", "/v1/resource/%d" % env.res, {"applyRules": True})]
    assert result["resource"] == {"resource_id": env.res, "name": "Jellyfin", "full_domain": "jellyfin.example.com",
                                  "org_id": "homelab", "apply_rules": True, "sso": True, "block_access": False,
                                  "email_whitelist_enabled": False, "enabled": True, "mode": "http",
                                  "resource_policy_id": None}
    assert result["diff"]["before"]["apply_rules"] is False
    assert result["diff"]["after"]["apply_rules"] is True
    assert result["diff"]["before_header"] == "resource %d" % env.res
    assert env.sim.resource(env.res)["applyRules"] is True
    env.sim.reset_log()
    again = ok(resource(env, apply_rules=True, sso=True))
    assert again["changed"] is False and again["operation"] is None and writes(env) == []


def test_resource_every_setting(env):
    args = dict(apply_rules=True, sso=False, block_access=True, email_whitelist_enabled=True, enabled=False)
    result = ok(resource(env, **args))
    assert result["changed"]
    assert writes(env)[0][2] == {"applyRules": True, "sso": False, "blockAccess": True,
                                 "emailWhitelistEnabled": True, "enabled": False}
    for opt, value in args.items():
        assert result["resource"][opt] is value
    stored = env.sim.resource(env.res)
    assert (stored["applyRules"], stored["sso"], stored["blockAccess"], stored["emailWhitelistEnabled"],
            stored["enabled"]) == (True, False, True, True, False)
    env.sim.reset_log()
    assert ok(resource(env, **args))["changed"] is False and writes(env) == []


def test_resource_no_settings_is_a_read(env):
    result = ok(resource(env))
    assert result["changed"] is False and writes(env) == []
    assert result["resource"]["name"] == "Jellyfin" and result["resource"]["sso"] is True


def test_resource_check_mode(env):
    result = ok(resource(env, apply_rules=True, block_access=True, check=True, diff=True))
    assert result["changed"] and result["operation"] == "update"
    assert result["resource"]["apply_rules"] is True and result["resource"]["block_access"] is True
    assert result["diff"]["before"]["apply_rules"] is False
    assert writes(env) == []
    assert env.sim.resource(env.res)["applyRules"] is False
    noop = ok(resource(env, apply_rules=False, check=True))
    assert noop["changed"] is False


@pytest.mark.parametrize("name", ["Grafana", "grafana", "grafana.example.com", "Grafana.Example.com"])
def test_resource_by_name_nice_id_domain(env, name):
    result = ok(run(env, "pangolin_resource", dict(resource=name, org_id="homelab", apply_rules=True)))
    assert result["resource"]["resource_id"] == env.res2 and result["changed"]
    assert env.sim.resource(env.res2)["applyRules"] is True
    assert env.sim.resource(env.res)["applyRules"] is False


def test_resource_legacy_table_resource(env):
    legacy = env.sim.add_resource("homelab", "Legacy", legacy=True)
    result = ok(resource(env, resource_id=legacy, apply_rules=True))
    assert result["changed"] and env.sim.resource(legacy)["applyRules"] is True


def test_resource_tcp_only_enabled(env):
    result = ok(resource(env, resource_id=env.tcp, enabled=False))
    assert result["changed"] and result["resource"]["enabled"] is False
    env.sim.reset_log()
    failed(resource(env, resource_id=env.tcp, apply_rules=True, sso=False),
           "resource %d (Minecraft) is a tcp resource" % env.tcp, "apply_rules, sso", "only on http")
    assert writes(env) == []


@pytest.mark.parametrize("args,fragments", [
    ({"resource_id": 999, "apply_rules": True}, ("resource_id 999: Pangolin has no such resource",)),
    ({"resource_id": 0}, ("resource_id must be a positive integer, got 0",)),
    ({"resource_id": -3}, ("resource_id must be a positive integer, got -3",)),
    ({"resource_id": None, "resource": "nope", "org_id": "homelab"}, ("'nope'", "no resource of org 'homelab'")),
    ({"resource_id": None, "resource": "Jellyfin", "org_id": "nope"}, ("Organization with ID nope not found",)),
    ({"resource_id": None, "resource": "  ", "org_id": "homelab"}, ("resource must be a non-empty",)),
    ({"resource_id": None, "resource": "Jellyfin"}, ("org_id",)),
    ({"resource_id": None}, ("one of the following is required", "resource_id")),
    ({"org_id": "other", "apply_rules": True}, ("belongs to org 'homelab', not to org_id 'other'",)),
    ({"org_id": " "}, ("org_id must be a non-empty",)),
    ({"state": "absent"}, ("state", "absent")),
    ({"apply_rules": "sometimes"}, ("apply_rules",)),
    ({"name": "Jelly"}, ("Unsupported parameters", "name")),
])
def test_resource_bad_input(env, args, fragments):
    env.sim.reset_log()
    failed(resource(env, **args), *fragments)
    assert writes(env) == []


def test_resource_key_lacking_update_action(env):
    limited = key(env.sim, root=True, actions=["getResource"])
    failed(resource(env, apply_rules=True, pangolin_api_key=limited), "grant the key the 'updateResource' action")
    assert env.sim.resource(env.res)["applyRules"] is False
    env.sim.reset_log()
    # Already as wanted: the key's read right is all it takes.
    assert ok(resource(env, apply_rules=False, pangolin_api_key=limited))["changed"] is False
    assert writes(env) == []


def test_resource_retry_after_503_on_read(env):
    env.sim.inject("503", method="GET", path_regex=r"^/v1/resource/\d+$", count=1)
    result = ok(resource(env, apply_rules=True))
    assert result["changed"] and warned(result, "HTTP 503")
    assert env.sim.resource(env.res)["applyRules"] is True


def test_resource_env_fallbacks(env, monkeypatch):
    monkeypatch.setenv("PANGOLIN_URL", env.sim.base_url)
    monkeypatch.setenv("PANGOLIN_API_KEY", env.key)
    result = ok(run(env, "pangolin_resource", dict(resource_id=env.res, sso=False), conn=False))
    assert result["changed"] and env.sim.resource(env.res)["sso"] is False


# -- pangolin_resource_info ----------------------------------------------------------

def info(env, check=False, **args):
    base = dict(org_id="homelab")
    base.update(args)
    return run(env, "pangolin_resource_info", base, check=check)


def gets(env):
    return [e.path for e in env.sim.log if e.method == "GET"]


def test_info_lists_org_resources_with_rules(env):
    env.sim.policies[env.sim.resources[env.res2]["defaultResourcePolicyId"]]["applyRules"] = True
    r2 = env.sim.add_rule(env.res2, "DROP", "COUNTRY", "CN", 20)
    r1 = env.sim.add_rule(env.res2, "ACCEPT", "CIDR", "10.0.0.0/8", 5)
    env.sim.add_rule(env.foreign, "ACCEPT", "IP", "192.0.2.1", 1)
    result = ok(info(env))
    assert result["changed"] is False and writes(env) == []
    by_name = dict((r["name"], r) for r in result["resources"])
    assert sorted(by_name) == ["Grafana", "Jellyfin", "Minecraft"]
    grafana = by_name["Grafana"]
    assert grafana == {
        "resource_id": env.res2, "name": "Grafana", "nice_id": "grafana", "full_domain": "grafana.example.com",
        "org_id": "homelab", "mode": "http", "enabled": True, "apply_rules": True, "sso": True,
        "block_access": False, "email_whitelist_enabled": False, "resource_policy_id": None,
        "rules": [
            {"rule_id": r1, "action": "ACCEPT", "match": "CIDR", "value": "10.0.0.0/8", "priority": 5,
             "enabled": True},
            {"rule_id": r2, "action": "DROP", "match": "COUNTRY", "value": "CN", "priority": 20, "enabled": True},
        ]}
    assert by_name["Jellyfin"]["apply_rules"] is False and by_name["Jellyfin"]["rules"] == []
    assert by_name["Minecraft"]["mode"] == "tcp" and by_name["Minecraft"]["full_domain"] is None


@pytest.mark.parametrize("name", ["Grafana", "grafana", "grafana.example.com", "GRAFANA.EXAMPLE.COM"])
def test_info_name_filter_reads_only_that_resource(env, name):
    result = ok(info(env, name=name))
    assert [r["resource_id"] for r in result["resources"]] == [env.res2]
    details = [p for p in gets(env) if p.startswith("/v1/resource/")]
    assert details == ["/v1/resource/%d" % env.res2, "/v1/resource/%d/rules" % env.res2]


def test_info_name_without_match_is_empty(env):
    result = ok(info(env, name="Nothing"))
    assert result["resources"] == []
    assert not [p for p in gets(env) if p.startswith("/v1/resource/")]


def test_info_resource_id_reads_directly(env):
    result = ok(info(env, resource_id=env.res, include_rules=False))
    assert [r["name"] for r in result["resources"]] == ["Jellyfin"]
    assert "rules" not in result["resources"][0]
    assert gets(env) == ["/v1/resource/%d" % env.res]


def test_info_resource_id_of_another_org_or_missing(env):
    assert ok(info(env, resource_id=env.foreign))["resources"] == []
    assert ok(info(env, resource_id=999))["resources"] == []


def test_info_resource_id_with_name_filter(env):
    assert ok(info(env, resource_id=env.res, name="Grafana"))["resources"] == []
    assert len(ok(info(env, resource_id=env.res, name="jellyfin.example.com"))["resources"]) == 1


def test_info_query_is_server_side(env):
    result = ok(info(env, query="graf"))
    assert [r["name"] for r in result["resources"]] == ["Grafana"]
    lists = [e for e in env.sim.log if e.path == "/v1/org/homelab/resources"]
    assert lists and lists[0].query.get("query") == ["graf"]
    assert ok(info(env, resource_id=env.res, query="graf"))["resources"] == []


def test_info_without_rules(env):
    result = ok(info(env, include_rules=False))
    assert sorted(r["name"] for r in result["resources"]) == ["Grafana", "Jellyfin", "Minecraft"]
    assert all("rules" not in r for r in result["resources"])
    assert not [p for p in gets(env) if p.endswith("/rules")]


def test_info_check_mode(env):
    result = ok(info(env, check=True))
    assert len(result["resources"]) == 3 and writes(env) == []


def test_info_empty_org_is_empty(env):
    env.sim.add_org("empty")
    assert ok(info(env, org_id="empty"))["resources"] == []


@pytest.mark.parametrize("args,fragments", [
    ({"org_id": "nope"}, ("org_id 'nope': Pangolin has no such organization",)),
    ({"org_id": "nope", "resource_id": 1}, ("org_id 'nope': Pangolin has no such organization",)),
    ({"org_id": ""}, ("org_id must be a non-empty",)),
    ({"name": " "}, ("name must be a non-empty",)),
    ({"resource_id": 0}, ("resource_id must be a positive integer, got 0",)),
    ({"include_rules": "perhaps"}, ("include_rules",)),
])
def test_info_bad_input(env, args, fragments):
    failed(info(env, **args), *fragments)
    assert writes(env) == []


def test_info_key_of_another_org(env):
    other = key(env.sim, org_id="other")
    failed(info(env, pangolin_api_key=other), "the key belongs to another organization")


def test_info_key_lacking_rules_action(env):
    limited = key(env.sim, root=True, actions=["listResources", "getResource"])
    failed(info(env, pangolin_api_key=limited), "grant the key the 'listResourceRules' action")
    assert len(ok(info(env, pangolin_api_key=limited, include_rules=False))["resources"]) == 3


def test_info_retry_after_503(env):
    env.sim.inject("503", method="GET", path_regex=r"/resources$", count=1)
    result = ok(info(env))
    assert len(result["resources"]) == 3 and warned(result, "HTTP 503")


def test_info_env_fallbacks(env, monkeypatch):
    monkeypatch.setenv("PANGOLIN_URL", env.sim.base_url)
    monkeypatch.setenv("PANGOLIN_API_KEY", env.key)
    assert len(ok(run(env, "pangolin_resource_info", dict(org_id="homelab"), conn=False))["resources"]) == 3


# -- authentik_org_policy ------------------------------------------------------------

def policy(env, check=False, diff=False, **args):
    base = dict(idp_id=env.idp, org_id="homelab")
    base.update(args)
    return run(env, "authentik_org_policy", base, check=check, diff=diff)


def test_policy_create_then_idempotent(env):
    result = ok(policy(env, idp_id=None, idp_name="authentik", role="Member", org_mapping_group="jellyfin",
                       diff=True))
    assert result["changed"] and result["operation"] == "create" and result["idp_id"] == env.idp
    expected = {"idp_id": env.idp, "org_id": "homelab", "role_mapping": "'Member'",
                "org_mapping": "contains(groups, 'jellyfin')"}
    assert result["policy"] == expected
    assert writes(env) == [("PUT", "/v1/idp/%d/org/homelab" % env.idp,
                            {"roleMapping": "'Member'", "orgMapping": "contains(groups, 'jellyfin')"})]
    assert env.sim.idp_policies(env.idp) == [{"idpId": env.idp, "orgId": "homelab", "roleMapping": "'Member'",
                                              "orgMapping": "contains(groups, 'jellyfin')"}]
    assert [d["after"] for d in result["diff"]] == [expected] and result["diff"][0]["before"] == {}
    assert "idp" not in result
    env.sim.reset_log()
    again = ok(policy(env, idp_id=None, idp_name="authentik", role="Member", org_mapping_group="jellyfin"))
    assert again["changed"] is False and again["operation"] is None and writes(env) == []
    assert again["policy"] == expected


def test_policy_update_sends_only_changed_fields(env):
    env.sim.add_idp_org_policy(env.idp, "homelab", "'Member'", "'{{orgId}}'")
    result = ok(policy(env, role="Member", org_mapping="contains(groups, 'media')", diff=True))
    assert result["changed"] and result["operation"] == "update"
    assert writes(env) == [("POST", "/v1/idp/%d/org/homelab" % env.idp, {"orgMapping": "contains(groups, 'media')"})]
    assert result["diff"][0]["before"]["org_mapping"] == "'{{orgId}}'"
    assert result["diff"][0]["after"]["org_mapping"] == "contains(groups, 'media')"
    assert env.sim.idp_policies(env.idp)[0]["roleMapping"] == "'Member'"


def test_policy_unmanaged_fields_kept_and_no_empty_update(env):
    env.sim.add_idp_org_policy(env.idp, "homelab", "'Admin'", "contains(groups, 'x')")
    env.sim.reset_log()
    result = ok(policy(env))  # nothing given: nothing to compare, nothing sent
    assert result["changed"] is False and writes(env) == []
    assert result["policy"]["role_mapping"] == "'Admin'"
    result = ok(policy(env, role_mapping="'Admin'"))
    assert result["changed"] is False and writes(env) == []


def test_policy_create_without_mappings(env):
    result = ok(policy(env))
    assert result["changed"] and writes(env) == [("PUT", "/v1/idp/%d/org/homelab" % env.idp, {})]
    assert result["policy"] == {"idp_id": env.idp, "org_id": "homelab", "role_mapping": None, "org_mapping": None}


def test_policy_empty_mapping_falls_back(env):
    env.sim.add_idp_org_policy(env.idp, "homelab", "'Admin'", "'{{orgId}}'")
    result = ok(policy(env, role_mapping=""))
    assert result["changed"] and writes(env)[0][2] == {"roleMapping": ""}


def test_policy_delete_and_absent_noop(env):
    env.sim.add_idp_org_policy(env.idp, "homelab", "'Member'", "'{{orgId}}'")
    env.sim.add_idp_org_policy(env.idp, "other", "'Member'", "'{{orgId}}'")
    result = ok(policy(env, state="absent", diff=True))
    assert result["changed"] and result["operation"] == "delete" and result["policy"] is None
    assert result["diff"][0]["before"]["role_mapping"] == "'Member'" and result["diff"][0]["after"] == {}
    assert writes(env) == [("DELETE", "/v1/idp/%d/org/homelab" % env.idp, None)]
    assert [p["orgId"] for p in env.sim.idp_policies(env.idp)] == ["other"]
    env.sim.reset_log()
    again = ok(policy(env, state="absent"))
    assert again["changed"] is False and writes(env) == []


def test_policy_delete_whose_answer_is_lost(env):
    env.sim.add_idp_org_policy(env.idp, "homelab", "'Member'", None)
    env.sim.inject("lost_answer", method="DELETE", count=1)
    result = ok(policy(env, state="absent", retries=0))
    assert result["changed"] and env.sim.idp_policies(env.idp) == []


def test_policy_delete_failure_still_reported(env):
    env.sim.add_idp_org_policy(env.idp, "homelab", "'Member'", None)
    env.sim.inject("500", method="DELETE", count=1)
    failed(policy(env, state="absent", retries=0), "delete org policy of identity provider", "HTTP 500")
    assert len(env.sim.idp_policies(env.idp)) == 1


def test_policy_lost_answer_on_create_no_duplicate(env):
    env.sim.inject("lost_answer", method="PUT", count=1)
    result = ok(policy(env, role="Member"))
    assert result["changed"] and result["operation"] == "create"
    assert [m for m, _, _ in writes(env)] == ["PUT"]
    assert env.sim.idp_policies(env.idp)[0]["roleMapping"] == "'Member'"


def test_policy_existing_is_updated_not_created(env):
    env.sim.add_idp_org_policy(env.idp, "homelab", None, None)
    ok(policy(env, role="Member"))
    assert [m for m, _, _ in writes(env)] == ["POST"]


@pytest.mark.parametrize("state", ["present", "absent"])
def test_policy_check_mode(env, state):
    if state == "absent":
        env.sim.add_idp_org_policy(env.idp, "homelab", "'Member'", None)
    before = env.sim.idp_policies(env.idp)
    result = ok(policy(env, role="Admin", auto_provision=True, state=state, check=True, diff=True))
    assert result["changed"] and writes(env) == []
    assert env.sim.idp_policies(env.idp) == before
    assert env.sim.idp(env.idp)["idp"]["autoProvision"] is False
    assert result["idp"] == {"idp_id": env.idp, "name": "authentik", "auto_provision": True}
    assert len(result["diff"]) == 2
    if state == "present":
        assert result["policy"]["role_mapping"] == "'Admin'" and result["operation"] == "create"
    else:
        assert result["policy"] is None and result["operation"] == "delete"


def test_policy_auto_provision_after_policy(env):
    result = ok(policy(env, org_mapping_group="jellyfin", auto_provision=True, diff=True))
    assert result["changed"] and result["idp"]["auto_provision"] is True
    assert [(m, p) for m, p, _ in writes(env)] == [("PUT", "/v1/idp/%d/org/homelab" % env.idp),
                                                   ("POST", "/v1/idp/%d/oidc" % env.idp)]
    assert writes(env)[1][2] == {"autoProvision": True}
    assert [d["before_header"] for d in result["diff"]] == [
        "org policy of identity provider %d for org homelab" % env.idp, "identity provider %d" % env.idp]
    assert env.sim.idp(env.idp)["idp"]["autoProvision"] is True
    env.sim.reset_log()
    again = ok(policy(env, org_mapping_group="jellyfin", auto_provision=True, diff=True))
    assert again["changed"] is False and writes(env) == []
    assert again["diff"] == [] and again["idp"]["auto_provision"] is True


def test_policy_auto_provision_off_before_delete(env):
    env.sim.add_idp_org_policy(env.idp, "homelab", "'Member'", None)
    env.sim.idps[env.idp]["idp"]["autoProvision"] = True
    ok(policy(env, state="absent", auto_provision=False))
    assert [m for m, _, _ in writes(env)] == ["POST", "DELETE"]
    assert env.sim.idp(env.idp)["idp"]["autoProvision"] is False


@pytest.mark.parametrize("group", ["media'; drop", "a\\b", "{{orgId}}", "back`tick", "Jellyfin Users"])
def test_policy_hostile_group_names_are_literals(env, group):
    result = ok(policy(env, org_mapping_group=group, role="O'Brien"))
    stored = env.sim.idp_policies(env.idp)[0]
    assert stored["orgMapping"] == group_membership_mapping(group)
    jmespath = pytest.importorskip("jmespath")
    claims = {"groups": [group]}
    assert jmespath.search(stored["orgMapping"], claims) is True
    assert jmespath.search(stored["orgMapping"], {"groups": ["other"]}) is False
    assert jmespath.search(stored["roleMapping"], {}) == "O'Brien"
    assert result["policy"]["org_mapping"] == stored["orgMapping"]


@pytest.mark.parametrize("args,fragments", [
    ({"role": "Member", "role_mapping": "'Member'"}, ("mutually exclusive", "role_mapping", "role")),
    ({"org_mapping": "'x'", "org_mapping_group": "x"}, ("mutually exclusive", "org_mapping", "org_mapping_group")),
    ({"idp_name": "authentik"}, ("mutually exclusive", "idp_id", "idp_name")),
    ({"idp_id": None}, ("one of the following is required", "idp_id", "idp_name")),
    ({"org_id": None}, ("org_id",)),
    ({"org_id": "  "}, ("org_id must be a non-empty",)),
    ({"role": " "}, ("role must be a non-empty",)),
    ({"role": "a\nb"}, ("role", "control character")),
    ({"org_mapping_group": ""}, ("org_mapping_group must be a non-empty",)),
    ({"role_mapping": "contains(groups, "}, ("role_mapping", "'contains(groups, '", "not a valid JMESPath",
                                                   "ends too early (at character 17)")),
    ({"org_mapping": "groups[?"}, ("org_mapping", "not a valid JMESPath")),
    ({"role_mapping": "a b"}, ("role_mapping 'a b'", "Unexpected token: b (at character 2)")),
    ({"org_mapping": "   "}, ("org_mapping must be a JMESPath expression",)),
    ({"idp_id": 0}, ("idp_id must be a positive integer, got 0",)),
    ({"idp_id": 99}, ("idp_id 99: Pangolin has no identity provider with that id",)),
    ({"idp_id": 99, "auto_provision": True}, ("idp_id 99: Pangolin has no identity provider with that id",)),
    ({"idp_id": None, "idp_name": "keycloak"}, ("idp_name 'keycloak'", "no identity provider with that name")),
    ({"org_id": "nope", "role": "Member"}, ("org_id 'nope': Pangolin has no such organization",)),
    ({"org_id": "nope", "role": "Member", "auto_provision": True},
     ("org_id 'nope': Pangolin has no such organization",)),
    ({"state": "present", "auto_provision": "yes please"}, ("auto_provision",)),
    ({"state": "gone"}, ("state", "gone")),
])
def test_policy_bad_input(env, args, fragments):
    env.sim.reset_log()
    failed(policy(env, **args), *fragments)
    assert writes(env) == []
    assert env.sim.idp_policies(env.idp) == []


def test_policy_unknown_org_in_check_mode(env):
    failed(policy(env, org_id="nope", role="Member", check=True), "org_id 'nope': Pangolin has no such organization")


def test_policy_absent_for_unknown_org_is_noop(env):
    result = ok(policy(env, org_id="nope", state="absent"))
    assert result["changed"] is False and writes(env) == []


def test_policy_ambiguous_idp_name(env):
    second = env.sim.add_idp("authentik")
    failed(policy(env, idp_id=None, idp_name="authentik"), "ambiguous", "%d, %d" % (env.idp, second), "idp_id")
    assert writes(env) == []


@pytest.mark.parametrize("auto_provision", [None, True])
@pytest.mark.parametrize("state", ["present", "absent"])
def test_policy_non_root_key(env, state, auto_provision):
    org_key = key(env.sim, org_id="homelab")
    env.sim.add_idp_org_policy(env.idp, "other", "'Member'", None)
    env.sim.reset_log()
    args = dict(role="Member", state=state, pangolin_api_key=org_key)
    if auto_provision is not None:
        args["auto_provision"] = auto_provision
    failed(policy(env, **args), "root API key", "listIdpOrgs", "createIdpOrg", "updateIdpOrg", "deleteIdpOrg",
           "updateIdp for auto_provision", "Key does not have root access")
    assert writes(env) == []


@pytest.mark.parametrize("missing,args,sends", [
    ("listIdpOrgs", {"role": "Member"}, False),
    ("getOrg", {"role": "Member"}, False),
    ("createIdpOrg", {"role": "Member"}, True),
    ("updateIdp", {"role": "Member", "auto_provision": True}, True),
])
def test_policy_root_key_lacking_action(env, missing, args, sends):
    actions = ["listIdpOrgs", "createIdpOrg", "updateIdpOrg", "deleteIdpOrg", "updateIdp", "getOrg"]
    limited = key(env.sim, root=True, actions=[a for a in actions if a != missing])
    env.sim.reset_log()
    failed(policy(env, pangolin_api_key=limited, **args), "HTTP 403", "grant the key the '%s' action" % missing)
    if not sends:
        assert writes(env) == []


def test_policy_retry_after_503_on_read(env):
    env.sim.inject("503", method="GET", path_regex=r"/org$", count=1)
    result = ok(policy(env, role="Member"))
    assert result["changed"] and warned(result, "HTTP 503")
    assert len(env.sim.idp_policies(env.idp)) == 1


def test_policy_env_fallbacks(env, monkeypatch):
    monkeypatch.setenv("PANGOLIN_URL", env.sim.base_url)
    monkeypatch.setenv("PANGOLIN_API_KEY", env.key)
    result = ok(run(env, "authentik_org_policy", dict(idp_name="authentik", org_id="homelab", role="Member"),
                    conn=False))
    assert result["changed"] and len(env.sim.idp_policies(env.idp)) == 1
