"""The Pangolin simulator must answer like a real Pangolin 1.22 server.

The replay test checks it against request sequences recorded on a real
server; the other tests pin the documented quirks the replay does not reach.
"""

import json
import re
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlencode

import pytest
import requests


REPO = Path(__file__).resolve().parents[1]
OBSERVED = REPO / "tests" / "contract" / "observed-pangolin.json"  # see tests/contract/README.md


@pytest.fixture
def env(pangolin_server):
    """Fresh state: org homelab with two http resources and a tcp one, an IdP with a policy."""
    sim = pangolin_server
    sim.reset()
    sim.add_org("homelab", "Home Lab")
    sim.add_org("other")
    ns = SimpleNamespace(sim=sim, url=sim.base_url + "/v1", http=requests.Session())
    ns.res = sim.add_resource("homelab", "Jellyfin", subdomain="jellyfin")
    ns.res2 = sim.add_resource("homelab", "Grafana", full_domain="grafana.example.com")
    ns.tcp = sim.add_resource("homelab", "Minecraft", mode="tcp")
    ns.foreign = sim.add_resource("other", "Wiki")
    ns.idp = sim.add_idp("authentik")
    sim.add_idp_org_policy(ns.idp, "homelab", "'Member'", "'{{orgId}}'")
    ns.key = sim.add_api_key(root=True)

    def call(method, path, key=ns.key, **kw):
        headers = kw.pop("headers", {})
        if key is not None:
            headers.setdefault("Authorization", "Bearer " + key)
        return ns.http.request(method, ns.url + path, headers=headers, timeout=5, **kw)

    ns.call = call
    yield ns
    ns.http.close()


def rule_body(**kw):
    body = {"action": "ACCEPT", "match": "IP", "value": "192.0.2.1", "priority": 10}
    body.update(kw)
    return body


def msg(resp):
    return resp.json()["message"]


# -- replay of the observed real-server sequence ---------------------------------

def _digits(text):
    return re.sub(r"\d+", "N", text)


def test_replay_observed_sequence(env):
    observed = json.loads(OBSERVED.read_text(encoding="utf-8"))
    values = {"res": env.res, "idp": env.idp, "org": "homelab"}
    bogus = "Bearer %s.%s" % ("".join(secrets.choice("abcdefghij0123456789") for _ in range(15)),
                              secrets.token_hex(20))
    for index, exchange in enumerate(observed["exchanges"]):
        request, seen = exchange["request"], exchange["expect"]
        path = request["path"].format(**values)
        if request["query"]:
            path += "?" + urlencode(request["query"])
        headers = {"Authorization": "Bearer " + env.key}
        for name, value in request["headers"].items():
            headers[name] = {"<an invalid key of the right shape>": bogus, "<empty>": ""}.get(value, value)
        resp = env.http.request(request["method"], env.sim.base_url + path, headers=headers, timeout=5,
                                data=None if request["body"] is None else json.dumps(request["body"]))
        where = "exchange %d: %s %s" % (index, request["method"], path)
        assert resp.status_code == seen["status"], where
        try:
            body = resp.json()
        except ValueError:
            body = ...
        assert (body is not ...) == seen["json"], where
        if body is ...:
            continue
        assert type(body).__name__ == seen["type"], where
        assert sorted(body) == sorted(seen["keys"]), where
        for field in ("success", "error"):
            if field in seen:
                assert body[field] == seen[field], where
        if "env_status" in seen:
            assert body["status"] == seen["env_status"], where
        if "message" in seen:
            assert _digits(body["message"]) == _digits(seen["message"]), where
        if "data_type" in seen:
            assert type(body["data"]).__name__ == seen["data_type"], where
        if "data_keys" in seen:
            assert sorted(body["data"]) == sorted(seen["data_keys"]), where
        for name, trail in exchange.get("capture", {}).items():
            value = body
            for part in trail:
                value = value[part]
            values[name] = value


# -- transport, auth and guards -----------------------------------------------

def test_health_needs_no_auth(env):
    resp = env.call("GET", "/", key=None)
    assert (resp.status_code, resp.json()) == (200, {"message": "Healthy"})


def test_unknown_route_is_express_html_404_only_after_auth(env):
    resp = env.call("GET", "/nope")
    assert resp.status_code == 404
    assert resp.headers["Content-Type"].startswith("text/html")
    assert "<pre>Cannot GET /v1/nope</pre>" in resp.text and resp.text.startswith("<!DOCTYPE html>")
    assert env.call("GET", "/nope", key=None).status_code == 401
    # a known path with an unknown method is also Express's page
    assert "Cannot PATCH /v1/resource/%d" % env.res in env.call("PATCH", "/resource/%d" % env.res).text


@pytest.mark.parametrize("header,status,message", [
    (None, 401, "API key required"),
    ("Token abc.def", 401, "API key required"),
    ("Bearer abcdefghij12345.wrongsecret", 401, "Invalid API key"),
    ("Bearer nodotinthiskey", 500, "An error occurred checking API key"),
])
def test_auth_failures(env, header, status, message):
    resp = env.call("GET", "/resource/%d/rules" % env.res, key=None,
                    headers={"Authorization": header} if header else {})
    assert resp.status_code == status and msg(resp) == message
    assert resp.json()["stack"] is None and resp.json()["data"] is None


def test_wrong_secret_of_known_key_is_invalid(env):
    key_id = env.key.split(".")[0]
    resp = env.call("GET", "/resource/%d/rules" % env.res, key=key_id + ".x" * 20)
    assert (resp.status_code, msg(resp)) == (401, "Invalid API key")


def test_root_key_still_needs_the_action(env):
    key = env.sim.add_api_key(root=True, actions=["listResourceRules"])
    assert env.call("GET", "/resource/%d/rules" % env.res, key=key).status_code == 200
    resp = env.call("PUT", "/resource/%d/rule" % env.res, key=key, json=rule_body())
    assert (resp.status_code, msg(resp)) == (403, "Key does not have permission perform this action")


def test_org_key_scope_and_guard_order(env):
    key = env.sim.add_api_key(org_id="homelab", actions=["updateResourceRule"])
    rule = env.sim.add_rule(env.res, "ACCEPT", "IP", "192.0.2.1", 10)
    # §11: an org key with only updateResourceRule can update, nothing else
    assert env.call("POST", "/resource/%d/rule/%d" % (env.res, rule), key=key,
                    json={"priority": 10, "enabled": False}).status_code == 200
    for method, path in (("GET", "/resource/%d/rules" % env.res), ("PUT", "/resource/%d/rule" % env.res)):
        resp = env.call(method, path, key=key, json=rule_body())
        assert (resp.status_code, msg(resp)) == (403, "Key does not have permission perform this action")
    # resource access runs before the action check (§3)
    resp = env.call("GET", "/resource/%d/rules" % env.foreign, key=key)
    assert (resp.status_code, msg(resp)) == (403, "Key does not have access to this organization")
    resp = env.call("GET", "/resource/999/rules", key=key)
    assert (resp.status_code, msg(resp)) == (404, "Resource with ID 999 not found")
    resp = env.call("GET", "/org/other/resources", key=key)
    assert (resp.status_code, msg(resp)) == (403, "Key does not have access to this organization")


def test_root_only_routes_and_open_idp_list(env):
    org_key = env.sim.add_api_key(org_id="homelab", actions=[])
    for method, path in (("GET", "/idp/%d" % env.idp), ("GET", "/idp/%d/org" % env.idp), ("GET", "/orgs"),
                         ("DELETE", "/idp/%d/org/homelab" % env.idp)):
        resp = env.call(method, path, key=org_key)
        assert (resp.status_code, msg(resp)) == (403, "Key does not have root access"), path
    # GET /idp has its guards commented out upstream (§2)
    resp = env.call("GET", "/idp", key=org_key)
    assert resp.status_code == 200
    assert resp.json()["data"]["idps"] == [{"idpId": env.idp, "name": "authentik", "type": "oidc",
                                            "variant": "oidc", "orgCount": 1, "autoProvision": False,
                                            "tags": None}]


def test_malformed_json_is_rejected_before_anything(env):
    resp = env.call("PUT", "/resource/%d/rule" % env.res, data="{x",
                    headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and msg(resp).startswith("Expected property name or '}' in JSON")


# -- rules ------------------------------------------------------------------------

@pytest.mark.parametrize("match,value,error", [
    ("IP", "2001:db8::1", None), ("IP", "192.0.2.0/24", "Invalid IP provided"),
    ("CIDR", "2001:db8::/32", None), ("CIDR", "10.0.0.0/33", "Invalid CIDR provided"),
    ("PATH", "/api/*", None), ("PATH", "/", None), ("PATH", "/a//b", "Invalid URL glob pattern provided"),
    ("PATH", "/a b", "Invalid URL glob pattern provided"),
    ("COUNTRY", "DE", None), ("COUNTRY", "ALL", None), ("COUNTRY", "de", "Invalid country code provided"),
    ("COUNTRY_IS_NOT", "XX", "Invalid country code provided"),
    ("ASN", "as13335", None), ("ASN", "ALL", None), ("ASN", "13335", "Invalid ASN provided"),
    ("REGION", "002", None), ("REGION", "155", None), ("REGION", "999", "Invalid region ID provided"),
])
def test_create_rule_value_checks(env, match, value, error):
    resp = env.call("PUT", "/resource/%d/rule" % env.res, json=rule_body(match=match, value=value))
    if error:
        assert (resp.status_code, msg(resp)) == (400, error)
    else:
        assert resp.status_code == 201
        assert resp.json()["data"]["value"] == value  # stored as given (ASN keeps its case)


@pytest.mark.parametrize("priority,expected", [
    (1.5, "expected int, received number"), ("10", "expected number, received string"),
    (True, "expected number, received boolean"), (None, "expected number, received null"),
])
def test_priority_must_be_an_integer(env, priority, expected):
    resp = env.call("PUT", "/resource/%d/rule" % env.res, json=rule_body(priority=priority))
    assert resp.status_code == 400
    assert msg(resp) == 'Validation error: Invalid input: %s at "priority"' % expected


def test_create_rule_edge_cases(env):
    path = "/resource/%d/rule" % env.res
    # no uniqueness of priority; negative allowed (§3.1)
    assert env.call("PUT", path, json=rule_body(priority=-5)).status_code == 201
    assert env.call("PUT", path, json=rule_body(priority=-5, value="192.0.2.2")).status_code == 201
    assert [r["priority"] for r in env.sim.rules(env.res)] == [-5, -5]
    resp = env.call("PUT", "/resource/%d/rule" % env.tcp, json=rule_body())
    assert (resp.status_code, msg(resp)) == (400, "Cannot create rule for non-http resource")
    resp = env.call("PUT", path, json=rule_body(value=""))
    assert msg(resp) == 'Validation error: Too small: expected string to have >=1 characters at "value"'
    # every route also answers under /public-resource
    resp = env.call("PUT", "/public-resource/%d/rule" % env.res, json=rule_body(enabled=False))
    assert resp.status_code == 201 and resp.json()["data"]["enabled"] is False


def test_update_rule_semantics(env):
    rule = env.sim.add_rule(env.res, "ACCEPT", "CIDR", "192.168.2.0/24", 10)
    path = "/resource/%d/rule/%d" % (env.res, rule)
    # changing match without value is not re-checked (§3.2)
    resp = env.call("POST", path, json={"priority": 10, "match": "IP"})
    assert resp.status_code == 200 and resp.json()["data"]["match"] == "IP"
    assert sorted(resp.json()["data"]) == ["action", "enabled", "match", "priority", "resourcePolicyId",
                                           "ruleId", "value"]
    # a sent value is checked against the (new or existing) match
    assert msg(env.call("POST", path, json={"priority": 10, "value": "10.0.0.0/8"})) == "Invalid IP provided"
    resp = env.call("POST", path, json={"priority": 10, "value": "10.0.0.0/8", "match": "CIDR"})
    assert resp.status_code == 200
    resp = env.call("POST", "/resource/%d/rule/%d" % (env.res2, rule), json={"priority": 1})
    assert (resp.status_code, msg(resp)) == (403, "Resource rule %d does not belong to resource %d"
                                             % (rule, env.res2))
    resp = env.call("POST", "/resource/%d/rule/4242" % env.res, json={"priority": 1})
    assert (resp.status_code, msg(resp)) == (404, "Resource rule with ID 4242 not found")


def test_delete_ignores_the_owning_resource(env):
    victim = env.sim.add_rule(env.res2, "DROP", "IP", "192.0.2.7", 1)
    resp = env.call("DELETE", "/resource/%d/rule/%d" % (env.res, victim))  # upstream bug (§3.3)
    assert (resp.status_code, resp.json()["data"]) == (200, None)
    assert env.sim.rules(env.res2) == []
    resp = env.call("DELETE", "/resource/%d/rule/%d" % (env.res, victim))
    assert (resp.status_code, msg(resp)) == (404, "Resource rule with ID %d not found" % victim)


def test_rule_list_pages_and_sorts_only_within_a_page(env):
    for prio in (30, 20, 10, 5):
        env.sim.add_rule(env.res, "ACCEPT", "IP", "192.0.2.%d" % prio, prio)
    data = env.call("GET", "/resource/%d/rules?limit=2&offset=1" % env.res).json()["data"]
    assert [r["priority"] for r in data["rules"]] == [10, 20]
    assert data["pagination"] == {"total": 4, "limit": 2, "offset": 1}
    assert data["rules"][0]["resourceId"] is None
    assert msg(env.call("GET", "/resource/%d/rules?offset=-1" % env.res)) == \
        'Validation error: Too small: expected number to be >=0 at "offset"'
    assert msg(env.call("GET", "/public-resource/%d/rules?pageSize=5" % env.res)) == \
        'Validation error: Unrecognized key: "pageSize"'


def test_legacy_table_rows_carry_resource_id(env):
    legacy = env.sim.add_resource("homelab", "Old", legacy=True)
    resp = env.call("PUT", "/resource/%d/rule" % legacy, json=rule_body())
    data = resp.json()["data"]
    assert data["resourceId"] == legacy and "resourcePolicyId" not in data
    assert env.sim.rules(legacy)[0]["resourceId"] == legacy


def test_renumber_rules_keeps_content(env):
    old = env.sim.add_rule(env.res, "ACCEPT", "CIDR", "10.0.0.0/8", 10)
    before = env.sim.rules(env.res)
    env.sim.renumber_rules()
    after = env.sim.rules(env.res)
    assert after[0]["ruleId"] != old
    assert [dict(r, ruleId=0) for r in after] == [dict(r, ruleId=0) for r in before]
    resp = env.call("POST", "/resource/%d/rule/%d" % (env.res, old), json={"priority": 1})
    assert resp.status_code == 404


def test_apply_rules_for_follows_badger(env):
    sim = env.sim
    sim.add_rule(env.res, "DROP", "IP", "10.1.2.3", 1)
    sim.add_rule(env.res, "ACCEPT", "CIDR", "10.0.0.0/8", 5)
    sim.add_rule(env.res, "PASS", "CIDR", "10.9.0.0/16", 2, enabled=False)
    sim.add_rule(env.res, "ACCEPT", "PATH", "/*", 0)  # path rules never match an IP here
    assert sim.apply_rules_for(env.res, "10.9.1.1") is None  # applyRules is off by default
    env.call("POST", "/resource/%d" % env.res, json={"applyRules": True})
    assert sim.apply_rules_for(env.res, "10.1.2.3") == "DROP"
    assert sim.apply_rules_for(env.res, "10.9.1.1") == "ACCEPT"  # disabled PASS skipped
    assert sim.apply_rules_for(env.res, "192.0.2.1") is None


def test_bulk_replace_on_default_policy(env):
    keep = env.sim.add_rule(env.res, "ACCEPT", "IP", "192.0.2.1", 1)
    env.sim.add_rule(env.res, "ACCEPT", "IP", "192.0.2.2", 2)
    policy = env.sim.resource(env.res)["defaultResourcePolicyId"]
    resp = env.call("POST", "/resource-policy/%d/rules" % policy, json={
        "applyRules": True, "rules": [{"ruleId": keep, "action": "DROP", "match": "IP", "value": "192.0.2.1",
                                       "priority": 1}, rule_body(value="192.0.2.9", priority=3)]})
    assert (resp.status_code, resp.json()["data"]) == (200, {})
    assert [(r["action"], r["value"]) for r in env.sim.rules(env.res)] == [("DROP", "192.0.2.1"),
                                                                           ("ACCEPT", "192.0.2.9")]
    assert env.sim.resource(env.res)["applyRules"] is True


# -- shared resource policies (EE, 1.19+) -------------------------------------------

POLICY_KEYS = sorted(["resourcePolicyId", "sso", "applyRules", "emailWhitelistEnabled", "idpId", "niceId", "name",
                      "passwordId", "pincodeId", "headerAuth", "roles", "users", "emailWhiteList", "rules"])


def office_policy(env, **kw):
    """A shared policy of homelab with one rule, attached to env.res."""
    kw.setdefault("rules", [("ACCEPT", "CIDR", "10.0.0.0/8", 1)])
    pol = env.sim.add_shared_policy("homelab", "Office", **kw)
    env.sim.attach_shared_policy(env.res, pol)
    return pol


def test_rule_ids_have_one_sequence_per_table(env):
    legacy = env.sim.add_resource("homelab", "Old", legacy=True)
    inline_rule = env.sim.add_rule(env.res, "ACCEPT", "IP", "192.0.2.1", 1)
    legacy_rule = env.sim.add_rule(legacy, "DROP", "IP", "192.0.2.2", 1)
    # SQLite AUTOINCREMENT per table: both tables hand out id 1
    assert inline_rule == legacy_rule == 1
    assert env.sim.policy_rules[1]["value"] == "192.0.2.1" and env.sim.legacy_rules[1]["value"] == "192.0.2.2"
    data = env.call("PUT", "/resource/%d/rule" % legacy, json=rule_body(value="192.0.2.3")).json()["data"]
    assert data["ruleId"] == 2 and data["resourceId"] == legacy
    data = env.call("PUT", "/resource/%d/rule" % env.res, json=rule_body(value="192.0.2.4")).json()["data"]
    assert data["ruleId"] == 2 and data["resourcePolicyId"] == env.sim.resource(env.res)["defaultResourcePolicyId"]


def test_shared_policy_rules_api_works_on_overrides_only(env):
    inline_rule = env.sim.add_rule(env.res, "DROP", "IP", "192.0.2.9", 1)
    pol = office_policy(env)
    resp = env.call("PUT", "/resource/%d/rule" % env.res, json=rule_body(value="192.0.2.5", priority=4))
    assert resp.status_code == 201
    created = resp.json()["data"]
    # the raw resourceRules row: resourceId, no resourcePolicyId
    assert sorted(created) == ["action", "enabled", "match", "priority", "resourceId", "ruleId", "value"]
    assert created["resourceId"] == env.res and created["ruleId"] in env.sim.legacy_rules
    assert [r["value"] for r in env.sim.policy(pol)["rules"]] == ["10.0.0.0/8"]  # shared policy untouched
    data = env.call("GET", "/resource/%d/rules" % env.res).json()["data"]
    # only the override: neither the shared policy's rule nor the (ignored) inline rule
    assert data["rules"] == [{"ruleId": created["ruleId"], "resourceId": env.res, "action": "ACCEPT",
                              "match": "IP", "value": "192.0.2.5", "priority": 4, "enabled": True}]
    assert data["pagination"]["total"] == 1
    assert env.sim.rules(env.res) == data["rules"]
    assert inline_rule in env.sim.policy_rules  # kept, just not used


def test_shared_policy_override_update_and_delete(env):
    pol = office_policy(env)
    env.sim.attach_shared_policy(env.res2, pol)
    shared_rule = env.sim.policy(pol)["rules"][0]["ruleId"]
    mine = env.sim.add_rule(env.res, "ACCEPT", "IP", "192.0.2.5", 4)
    theirs = env.sim.add_rule(env.res2, "DROP", "IP", "192.0.2.6", 4)
    assert mine == shared_rule == 1  # the same id in both tables
    resp = env.call("POST", "/resource/%d/rule/%d" % (env.res, mine), json={"priority": 3, "enabled": False})
    assert resp.status_code == 200
    assert resp.json()["data"] == {"ruleId": mine, "resourceId": env.res, "enabled": False, "priority": 3,
                                   "action": "ACCEPT", "match": "IP", "value": "192.0.2.5"}
    # ruleId 1 named the override: the shared policy's rule 1 is unchanged
    assert env.sim.policy(pol)["rules"][0] == {"ruleId": 1, "enabled": True, "priority": 1, "action": "ACCEPT",
                                               "match": "CIDR", "value": "10.0.0.0/8"}
    resp = env.call("POST", "/resource/%d/rule/%d" % (env.res, theirs), json={"priority": 1})
    assert (resp.status_code, msg(resp)) == (403, "Resource rule %d does not belong to resource %d"
                                             % (theirs, env.res))
    default = env.sim.resource(env.res)["defaultResourcePolicyId"]
    env.sim.add_policy_rule(default, "DROP", "IP", "192.0.2.7", 1)
    inline_only = env.sim.add_policy_rule(default, "DROP", "IP", "192.0.2.8", 1)
    assert inline_only not in env.sim.legacy_rules
    for method in ("POST", "DELETE"):  # an id of resourcePolicyRules only is unknown to the override table
        resp = env.call(method, "/resource/%d/rule/%d" % (env.res, inline_only), json={"priority": 1})
        assert (resp.status_code, msg(resp)) == (404, "Resource rule with ID %d not found" % inline_only)
    assert inline_only in env.sim.policy_rules
    # delete ignores the owner (upstream bug, §3.3): res2's override goes
    resp = env.call("DELETE", "/resource/%d/rule/%d" % (env.res, theirs))
    assert (resp.status_code, resp.json()["data"]) == (200, None)
    assert env.sim.rules(env.res2) == [] and [r["ruleId"] for r in env.sim.rules(env.res)] == [mine]
    assert env.call("DELETE", "/resource/%d/rule/%d" % (env.res, mine)).status_code == 200
    assert env.sim.policy(pol)["rules"][0]["ruleId"] == 1  # the shared rule with the same id survives


def test_gatekeeper_takes_apply_rules_from_the_shared_policy(env):
    sim = env.sim
    sim.add_rule(env.res, "DROP", "CIDR", "10.0.0.0/8", 0)  # inline rule, ignored once shared
    default = sim.resource(env.res)["defaultResourcePolicyId"]
    pol = office_policy(env, apply_rules=True)
    assert sim.policies[default]["applyRules"] is False and sim.resources[env.res]["applyRules"] is False
    assert sim.apply_rules_for(env.res, "10.1.1.1") == "ACCEPT"  # shared rule, not the inline DROP
    sim.policies[pol]["applyRules"] = False
    sim.policies[default]["applyRules"] = True
    sim.resources[env.res]["applyRules"] = True
    assert sim.apply_rules_for(env.res, "10.1.1.1") is None  # neither inline nor column counts
    # detached: the inline policy is back in charge
    sim.attach_shared_policy(env.res, None)
    assert sim.apply_rules_for(env.res, "10.1.1.1") == "DROP"


def test_gatekeeper_puts_overrides_before_offset_shared_rules(env):
    sim = env.sim
    pol = office_policy(env, rules=[("ACCEPT", "CIDR", "10.0.0.0/8", -5), ("DROP", "IP", "10.9.9.9", 1)])
    sim.add_rule(env.res, "DROP", "CIDR", "10.6.0.0/16", 3)
    sim.add_rule(env.res, "PASS", "IP", "10.7.7.7", 10, enabled=False)  # disabled, still sets the offset
    sim.add_rule(env.res, "PASS", "CIDR", "10.9.0.0/16", 6)
    # offset 10: the shared rules sit at 5 and 11, after the override at 3, before the one at 6
    assert sim.apply_rules_for(env.res, "10.6.1.1") == "DROP"
    assert sim.apply_rules_for(env.res, "10.9.9.9") == "ACCEPT"  # shared CIDR (5) beats override PASS (6)
    assert sim.apply_rules_for(env.res, "10.7.7.7") == "ACCEPT"
    assert sim.apply_rules_for(env.res, "192.0.2.1") is None
    # the offset starts at 0: negative overrides leave the shared priorities as they are
    sim.attach_shared_policy(env.res2, pol)
    sim.add_rule(env.res2, "DROP", "CIDR", "10.9.0.0/16", -10)
    assert sim.apply_rules_for(env.res2, "10.9.9.9") == "DROP"  # override -10 before shared -5 (not -15)
    assert sim.apply_rules_for(env.res2, "10.6.1.1") == "ACCEPT"
    # equal priorities: the overrides come first (stable sort over [...overrides, ...shared])
    sim.add_rule(env.res2, "PASS", "CIDR", "10.6.0.0/16", -5)
    assert sim.apply_rules_for(env.res2, "10.6.1.1") == "PASS"


def test_bulk_replace_on_a_shared_policy(env):
    pol = office_policy(env, apply_rules=False)
    resp = env.call("POST", "/resource-policy/%d/rules" % pol, json={
        "applyRules": True, "rules": [rule_body(action="DROP", match="CIDR", value="10.0.0.0/8", priority=1)]})
    assert (resp.status_code, resp.json()["data"]) == (200, {})
    assert msg(resp) == "Resource policy rules set successfully"
    assert [(r["action"], r["value"]) for r in env.sim.policy(pol)["rules"]] == [("DROP", "10.0.0.0/8")]
    assert env.sim.rules(env.res) == []  # nothing landed among the overrides
    assert env.sim.apply_rules_for(env.res, "10.1.1.1") == "DROP"


def test_get_resource_with_shared_policy_shows_stale_columns(env):
    path = "/resource/%d" % env.res
    env.call("POST", path, json={"sso": False})  # inline: lands on the default policy
    default = env.sim.resource(env.res)["defaultResourcePolicyId"]
    assert env.sim.policies[default]["sso"] is False and env.call("GET", path).json()["data"]["sso"] is False
    pol = office_policy(env, apply_rules=True)
    data = env.call("GET", path).json()["data"]
    # the raw resources row: neither the shared policy's applyRules nor the inline policy's sso
    assert (data["applyRules"], data["sso"], data["emailWhitelistEnabled"], data["skipToIdpId"]) == \
        (False, True, False, None)
    assert (data["resourcePolicyId"], data["defaultResourcePolicyId"]) == (pol, default)
    assert env.sim.apply_rules_for(env.res, "10.1.1.1") == "ACCEPT"
    # an update writes that column: the answer says true, the gatekeeper does not care
    env.sim.policies[pol]["applyRules"] = False
    resp = env.call("POST", path, json={"applyRules": True, "resourcePolicyId": pol})
    assert resp.status_code == 200 and resp.json()["data"]["applyRules"] is True
    assert env.call("GET", path).json()["data"]["applyRules"] is True
    assert env.sim.resources[env.res]["applyRules"] is True
    assert env.sim.policies[pol]["applyRules"] is False and env.sim.policies[default]["applyRules"] is False
    assert env.sim.apply_rules_for(env.res, "10.1.1.1") is None


def test_update_without_resource_policy_id_clears_the_overrides(env):
    pol = office_policy(env)
    path = "/resource/%d" % env.res
    env.sim.add_rule(env.res, "ACCEPT", "IP", "192.0.2.5", 4)
    # the current id sent: `7 != 7` is false, nothing cleared
    resp = env.call("POST", path, json={"name": "Jellyfin TV", "resourcePolicyId": pol})
    assert resp.status_code == 200 and resp.json()["data"]["resourcePolicyId"] == pol
    assert [r["value"] for r in env.sim.rules(env.res)] == ["192.0.2.5"]
    # omitted: `7 != undefined` is true, the overrides go; the policy stays attached
    resp = env.call("POST", path, json={"name": "Jellyfin"})
    assert resp.status_code == 200 and resp.json()["data"]["resourcePolicyId"] == pol
    assert env.sim.rules(env.res) == [] and env.sim.legacy_rules == {}
    assert len(env.sim.policy(pol)["rules"]) == 1  # the shared policy's rules are not per-resource
    # inline and legacy resources: `null != undefined` is false, nothing cleared
    env.sim.add_rule(env.res2, "ACCEPT", "IP", "192.0.2.6", 1)
    legacy = env.sim.add_resource("homelab", "Old", legacy=True)
    env.sim.add_rule(legacy, "ACCEPT", "IP", "192.0.2.7", 1)
    for rid in (env.res2, legacy):
        assert env.call("POST", "/resource/%d" % rid, json={"enabled": True}).status_code == 200
        assert len(env.sim.rules(rid)) == 1, rid


def test_update_attaches_and_detaches_shared_policies(env):
    pol = env.sim.add_shared_policy("homelab", "Office")
    foreign = env.sim.add_shared_policy("other", "Office")
    inline_pol = env.sim.resource(env.res2)["defaultResourcePolicyId"]
    env.sim.add_rule(env.res, "ACCEPT", "IP", "192.0.2.1", 1)
    path = "/resource/%d" % env.res
    for bad in (999, foreign, inline_pol, 1.5):
        resp = env.call("POST", path, json={"resourcePolicyId": bad})
        assert (resp.status_code, msg(resp)) == (404, "Resource policy with ID %s not found" % bad), bad
    assert env.sim.resource(env.res)["resourcePolicyId"] is None
    resp = env.call("POST", path, json={"resourcePolicyId": pol})
    assert resp.status_code == 200 and resp.json()["data"]["resourcePolicyId"] == pol
    assert env.call("GET", "/resource/%d/rules" % env.res).json()["data"]["rules"] == []  # overrides now
    env.call("PUT", "/resource/%d/rule" % env.res, json=rule_body(value="192.0.2.8"))
    assert len(env.sim.legacy_rules) == 1
    resp = env.call("POST", path, json={"resourcePolicyId": None})  # detach: a change, overrides cleared
    assert resp.status_code == 200 and resp.json()["data"]["resourcePolicyId"] is None
    assert env.sim.legacy_rules == {}
    assert [r["value"] for r in env.sim.rules(env.res)] == ["192.0.2.1"]  # the inline rule again


def test_seeding_helpers_for_shared_policies(env):
    pol = env.sim.add_shared_policy("homelab", "Office", apply_rules=False, rules=[
        {"action": "ACCEPT", "match": "IP", "value": "192.0.2.1", "priority": 2},
        ("DROP", "IP", "192.0.2.2", 1, False)])
    extra = env.sim.add_policy_rule(pol, "PASS", "IP", "192.0.2.3", 3)
    view = env.sim.policy(pol)
    assert (view["applyRules"], view["name"], view["niceId"]) == (False, "Office", "office")
    assert [(r["ruleId"], r["enabled"]) for r in view["rules"]] == [(1, True), (2, False), (extra, True)]
    assert env.sim.policies[env.sim.add_shared_policy("homelab", "Office")]["niceId"] == "office-2"
    with pytest.raises(ValueError):
        env.sim.attach_shared_policy(env.res, env.sim.resource(env.res2)["defaultResourcePolicyId"])
    with pytest.raises(ValueError):
        env.sim.attach_shared_policy(env.foreign, pol)
    env.sim.attach_shared_policy(env.res, pol)
    env.sim.add_rule(env.res, "ACCEPT", "IP", "192.0.2.9", 1)
    env.sim.attach_shared_policy(env.res, pol)  # no change: overrides kept
    assert len(env.sim.rules(env.res)) == 1
    other = env.sim.add_shared_policy("homelab", "Lab")
    env.sim.attach_shared_policy(env.res, other)  # a change clears them, as the server does
    assert env.sim.rules(env.res) == [] and env.sim.resource(env.res)["resourcePolicyId"] == other


def test_get_resource_policies(env):
    env.sim.add_rule(env.res, "ACCEPT", "IP", "192.0.2.1", 10)
    default = env.sim.resource(env.res)["defaultResourcePolicyId"]
    resp = env.call("GET", "/resource/%d/policies" % env.res)
    assert (resp.status_code, msg(resp)) == (200, "Resource policies retrieved successfully")
    data = resp.json()["data"]
    assert data["sharedPolicy"] is None and sorted(data["defaultPolicy"]) == POLICY_KEYS
    assert data["defaultPolicy"]["resourcePolicyId"] == default and data["defaultPolicy"]["applyRules"] is False
    assert data["defaultPolicy"]["rules"] == [{"ruleId": 1, "enabled": True, "priority": 10, "action": "ACCEPT",
                                               "match": "IP", "value": "192.0.2.1"}]
    assert (data["defaultPolicy"]["roles"], data["defaultPolicy"]["headerAuth"]) == ([], None)
    pol = office_policy(env)
    data = env.call("GET", "/public-resource/%d/policies" % env.res).json()["data"]
    assert data["defaultPolicy"]["resourcePolicyId"] == default
    assert data["sharedPolicy"] == env.sim.policy(pol)
    assert data["sharedPolicy"]["name"] == "Office" and data["sharedPolicy"]["applyRules"] is True
    assert [r["value"] for r in data["sharedPolicy"]["rules"]] == ["10.0.0.0/8"]
    legacy = env.sim.add_resource("homelab", "Old", legacy=True)
    resp = env.call("GET", "/resource/%d/policies" % legacy)
    assert (resp.status_code, msg(resp)) == (404, "Resource has no default policy")
    resp = env.call("GET", "/resource/1abc/policies")  # parseInt lets it past the guard, Number() does not
    assert (resp.status_code, msg(resp)) == (400, 'Validation error: Invalid input: expected number, received NaN'
                                                  ' at "resourceId"')


def test_get_resource_policies_guards(env):
    no_action = env.sim.add_api_key(org_id="homelab", actions=["getResource", "listResourceRules"])
    allowed = env.sim.add_api_key(org_id="homelab", actions=["getResourcePolicy"])
    path = "/resource/%d/policies" % env.res
    resp = env.call("GET", path, key=no_action)
    assert (resp.status_code, msg(resp)) == (403, "Key does not have permission perform this action")
    assert env.call("GET", path, key=allowed).status_code == 200
    resp = env.call("GET", "/resource/%d/policies" % env.foreign, key=allowed)
    assert (resp.status_code, msg(resp)) == (403, "Key does not have access to this organization")
    resp = env.call("GET", "/resource/999/policies", key=no_action)  # resource check before the action
    assert (resp.status_code, msg(resp)) == (404, "Resource with ID 999 not found")
    root = env.sim.add_api_key(root=True, actions=["getResource"])
    resp = env.call("GET", path, key=root)
    assert (resp.status_code, msg(resp)) == (403, "Key does not have permission perform this action")


def test_get_resource_policy_by_id(env):
    pol = office_policy(env)
    for path in ("/resource-policy/%d" % pol, "/public-resource-policy/%d" % pol):
        resp = env.call("GET", path)
        assert (resp.status_code, msg(resp)) == (200, "Resource Policy retrieved successfully")
        assert resp.json()["data"] == env.sim.policy(pol) and sorted(resp.json()["data"]) == POLICY_KEYS
    default = env.sim.resource(env.res)["defaultResourcePolicyId"]
    assert env.call("GET", "/resource-policy/%d" % default).json()["data"]["name"] == "default policy for jellyfin"
    for raw in ("999", "abc"):
        resp = env.call("GET", "/resource-policy/%s" % raw)
        assert (resp.status_code, msg(resp)) == (404, "Resource policy with ID %s not found" % raw)
    foreign = env.sim.add_shared_policy("other", "Theirs")
    org_key = env.sim.add_api_key(org_id="homelab", actions=["getResourcePolicy"])
    no_action = env.sim.add_api_key(org_id="homelab", actions=["getResource"])
    assert env.call("GET", "/resource-policy/%d" % pol, key=org_key).status_code == 200
    resp = env.call("GET", "/resource-policy/%d" % foreign, key=org_key)
    assert (resp.status_code, msg(resp)) == (403, "Key does not have access to this organization")
    resp = env.call("GET", "/resource-policy/%d" % foreign, key=no_action)  # org check before the action
    assert (resp.status_code, msg(resp)) == (403, "Key does not have access to this organization")
    resp = env.call("GET", "/resource-policy/%d" % pol, key=no_action)
    assert (resp.status_code, msg(resp)) == (403, "Key does not have permission perform this action")
    assert env.call("GET", "/resource-policy/%d" % foreign).status_code == 200  # root: any org


# -- resources, orgs, roles --------------------------------------------------------


def test_resource_list_is_page_based(env):
    for i in range(3):
        env.sim.add_resource("homelab", "Extra %d" % i)
    data = env.call("GET", "/org/homelab/resources?pageSize=2&page=2").json()["data"]
    assert data["pagination"] == {"total": 6, "pageSize": 2, "page": 2}
    assert [r["name"] for r in data["resources"]] == ["Minecraft", "Extra 0"]
    row = data["resources"][0]
    assert "applyRules" not in row and row["sso"] == 1 and row["whitelist"] == 0
    # out-of-range values fall back to defaults; query filters by name
    data = env.call("GET", "/org/homelab/public-resources?pageSize=0&page=-3&query=jelly").json()["data"]
    assert data["pagination"] == {"total": 1, "pageSize": 20, "page": 1}
    assert data["resources"][0]["fullDomain"] == "jellyfin.example.com"
    names = env.call("GET", "/org/homelab/resource-names").json()["data"]
    assert {"resourceId": env.res, "name": "Jellyfin"} in names and len(names) == 6


def test_resource_get_and_apply_rules_update(env):
    path = "/resource/%d" % env.res
    data = env.call("GET", path).json()["data"]
    assert data["applyRules"] is False and data["sso"] is True and data["resourcePolicyId"] is None
    assert data["niceId"] == "jellyfin" and data["orgId"] == "homelab"
    resp = env.call("POST", path, json={"applyRules": True})
    assert (resp.status_code, msg(resp)) == (200, "HTTP resource updated successfully")
    assert resp.json()["data"]["applyRules"] is True
    assert env.call("GET", "/public-resource/%d" % env.res).json()["data"]["applyRules"] is True
    assert env.call("POST", path, json={}).status_code == 400
    assert msg(env.call("POST", path, json={"applyRules": True, "bogus": 1})) == \
        'Validation error: Unrecognized key: "bogus"'
    assert msg(env.call("POST", path, json={"applyRules": "yes"})) == \
        'Validation error: Invalid input: expected boolean, received string at "applyRules"'
    resp = env.call("GET", "/resource/999")
    assert (resp.status_code, msg(resp)) == (404, "Resource with ID 999 not found")


def test_orgs_and_roles(env):
    assert env.call("GET", "/org/homelab").json()["data"]["org"]["name"] == "Home Lab"
    resp = env.call("GET", "/org/nowhere")
    assert (resp.status_code, msg(resp)) == (404, "Organization with ID nowhere not found")
    data = env.call("GET", "/org/homelab/roles?query=Member").json()["data"]
    assert [r["name"] for r in data["roles"]] == ["Member"] and data["roles"][0]["isAdmin"] is None
    assert data["pagination"] == {"total": 1, "page": 1, "pageSize": 20}
    admin = env.call("GET", "/org/homelab/roles?query=admin").json()["data"]["roles"][0]
    assert admin["isAdmin"] is True and admin["orgName"] == "Home Lab"
    resp = env.call("GET", "/org/nowhere/roles")
    assert resp.status_code == 200 and resp.json()["data"]["roles"] == []
    assert len(env.call("GET", "/orgs").json()["data"]["orgs"]) == 2


# -- IdPs and their org policies ----------------------------------------------------

def test_idp_get_and_update(env):
    data = env.call("GET", "/idp/%d" % env.idp).json()["data"]
    assert data["idp"]["defaultRoleMapping"] == "'Member'" and data["idpOidcConfig"]["variant"] == "oidc"
    resp = env.call("POST", "/idp/%d/oidc" % env.idp, json={"autoProvision": True})
    assert (resp.status_code, resp.json()["data"]) == (200, {"idpId": env.idp})
    assert env.sim.idp(env.idp)["idp"]["autoProvision"] is True
    assert env.sim.idp(env.idp)["idp"]["name"] == "authentik"  # untouched
    assert env.call("POST", "/idp/%d/oidc" % env.idp, json={"nope": 1}).status_code == 400
    resp = env.call("POST", "/idp/77/oidc", json={"autoProvision": True})
    assert (resp.status_code, msg(resp)) == (404, "IdP not found")


def test_idp_org_policy_quirks(env):
    base = "/idp/%d/org" % env.idp
    data = env.call("GET", base).json()["data"]
    assert data == {"policies": [{"idpId": env.idp, "orgId": "homelab", "roleMapping": "'Member'",
                                  "orgMapping": "'{{orgId}}'"}],
                    "pagination": {"total": 1, "limit": 1000, "offset": 0}}
    resp = env.call("PUT", base + "/other", json={"roleMapping": "'Admin'"})
    assert (resp.status_code, resp.json()["data"], msg(resp)) == (201, {}, "Idp created successfully")
    assert env.sim.idp_policies(env.idp)[1] == {"idpId": env.idp, "orgId": "other",
                                                "roleMapping": "'Admin'", "orgMapping": None}
    for method, path, body, status, message in (
        ("PUT", base + "/other", {}, 400, "An IDP org policy already exists."),
        ("PUT", "/idp/77/org/other", {}, 400, "An IDP with this ID does not exist."),
        ("PUT", base + "/nowhere", {}, 500, "An error occurred"),
        ("POST", base + "/other", {}, 500, "An error occurred"),
        ("POST", base + "/nowhere", {"roleMapping": "x"}, 400, "A policy for this IDP and org does not exist."),
        ("DELETE", base + "/nowhere", None, 500, "An error occurred"),
    ):
        resp = env.call(method, path, json=body)
        assert (resp.status_code, msg(resp)) == (status, message), (method, path)
    resp = env.call("POST", base + "/other", json={"roleMapping": None})
    assert resp.status_code == 400 and "expected string, received null" in msg(resp)
    resp = env.call("POST", base + "/other", json={"orgMapping": ""})
    assert (resp.status_code, resp.json()["data"]) == (200, {})
    assert env.sim.idp_policies(env.idp)[1]["roleMapping"] == "'Admin'"  # omitted = unchanged
    resp = env.call("DELETE", base + "/other")
    assert (resp.status_code, resp.json()["data"]) == (200, None)
    assert [p["orgId"] for p in env.sim.idp_policies(env.idp)] == ["homelab"]


# -- org API keys (root key only) ----------------------------------------------------------

def create_key(env, org="homelab", name="webhook"):
    resp = env.call("PUT", "/org/%s/api-key" % org, json={"name": name})
    assert resp.status_code == 201, resp.text
    data = resp.json()["data"]
    return data["apiKeyId"], "%s.%s" % (data["apiKeyId"], data["apiKey"])


def test_created_org_key_works_only_after_its_actions_are_set(env):
    resp = env.call("PUT", "/org/homelab/api-key", json={"name": "webhook"})
    assert (resp.status_code, msg(resp), resp.json()["status"]) == (201, "API key created", 201)
    data = resp.json()["data"]
    assert sorted(data) == ["apiKey", "apiKeyId", "createdAt", "lastChars", "name"]
    assert re.fullmatch(r"[a-z0-9]{15}", data["apiKeyId"]) and re.fullmatch(r"[a-z2-7]{40}", data["apiKey"])
    assert data["lastChars"] == data["apiKey"][-4:] and data["name"] == "webhook"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", data["createdAt"])
    key = "%s.%s" % (data["apiKeyId"], data["apiKey"])
    rule = env.sim.add_rule(env.res, "ACCEPT", "IP", "192.0.2.1", 10)
    update = "/resource/%d/rule/%d" % (env.res, rule)
    # the secret authenticates (403, not 401), but a new key holds no action
    for method, path, body in (("POST", update, {"priority": 10}), ("GET", "/resource/%d/rules" % env.res, None)):
        resp = env.call(method, path, key=key, json=body)
        assert (resp.status_code, msg(resp)) == (403, "Key does not have permission perform this action")
    resp = env.call("POST", "/org/homelab/api-key/%s/actions" % data["apiKeyId"],
                    json={"actionIds": ["updateResourceRule"]})
    assert (resp.status_code, resp.json()["data"], msg(resp)) == (200, {}, "API key actions updated successfully")
    # §11: now it updates a rule of its org's resource and nothing else
    resp = env.call("POST", update, key=key, json={"priority": 10, "enabled": False})
    assert resp.status_code == 200 and resp.json()["data"]["enabled"] is False
    for method, path in (("GET", "/resource/%d/rules" % env.res), ("PUT", "/resource/%d/rule" % env.res)):
        resp = env.call(method, path, key=key, json=rule_body())
        assert (resp.status_code, msg(resp)) == (403, "Key does not have permission perform this action")
    foreign = env.sim.add_rule(env.foreign, "ACCEPT", "IP", "192.0.2.1", 10)
    resp = env.call("POST", "/resource/%d/rule/%d" % (env.foreign, foreign), key=key, json={"priority": 1})
    assert (resp.status_code, msg(resp)) == (403, "Key does not have access to this organization")


def test_api_key_and_action_lists(env):
    hook_id, hook = create_key(env, name="hook")
    spare_id, _ = create_key(env, name="spare")
    create_key(env, org="other", name="elsewhere")
    seeded = env.sim.add_api_key(org_id="homelab", actions=["getOrg"], name="seeded")
    resp = env.call("GET", "/org/homelab/api-keys")
    assert (resp.status_code, msg(resp)) == (200, "API keys retrieved successfully")
    data = resp.json()["data"]
    # org-scoped keys of that org only: no root key, no other org, never a secret
    assert [k["name"] for k in data["apiKeys"]] == ["hook", "spare", "seeded"]
    assert all(sorted(k) == ["apiKeyId", "createdAt", "lastChars", "name", "orgId"] for k in data["apiKeys"])
    assert data["apiKeys"][0]["apiKeyId"] == hook_id and data["apiKeys"][0]["orgId"] == "homelab"
    assert hook.split(".")[1] not in resp.text and seeded.split(".")[1] not in resp.text
    assert data["pagination"] == {"total": 3, "limit": 1000, "offset": 0}
    # total is the page length; unknown query parameters are ignored, limit must be > 0
    page = env.call("GET", "/org/homelab/api-keys?limit=1&offset=1&page=3").json()["data"]
    assert [k["name"] for k in page["apiKeys"]] == ["spare"]
    assert page["pagination"] == {"total": 1, "limit": 1, "offset": 1}
    assert msg(env.call("GET", "/org/homelab/api-keys?limit=0")) == \
        'Validation error: Too small: expected number to be >0 at "limit"'
    assert env.call("GET", "/org/nowhere/api-keys").json()["data"]["apiKeys"] == []

    actions = "/org/homelab/api-key/%s/actions" % hook_id
    resp = env.call("GET", actions)
    assert (resp.status_code, resp.json()["data"]) == (200, {"actions": [], "pagination": {
        "total": 0, "limit": 1000, "offset": 0}})
    env.call("POST", actions, json={"actionIds": ["listResourceRules", "updateResourceRule", "listResourceRules"]})
    data = env.call("GET", actions).json()["data"]
    assert data["actions"] == [{"actionId": "listResourceRules"}, {"actionId": "updateResourceRule"}]
    # setting replaces the whole set
    env.call("POST", actions, json={"actionIds": ["updateResourceRule"]})
    assert env.call("GET", actions).json()["data"]["actions"] == [{"actionId": "updateResourceRule"}]
    assert env.call("GET", "/org/homelab/api-key/%s/actions" % spare_id).json()["data"]["actions"] == []
    # an unknown key lists nothing; a seeded "all" key lists every action
    assert env.call("GET", "/org/homelab/api-key/nosuchkey123456/actions").json()["data"]["actions"] == []
    root_actions = env.call("GET", "/org/homelab/api-key/%s/actions" % env.key.split(".")[0]).json()["data"]
    assert {"actionId": "createApiKey"} in root_actions["actions"] and len(root_actions["actions"]) > 100


def test_api_key_routes_need_a_root_key_then_the_action(env):
    key_id, _ = create_key(env)
    org_key = env.sim.add_api_key(org_id="homelab")  # every action, still not root
    limited_root = env.sim.add_api_key(root=True, actions=["listApiKeys"])
    routes = (("GET", "/org/homelab/api-keys", None),
              ("PUT", "/org/homelab/api-key", {"name": "x"}),
              ("GET", "/org/homelab/api-key/%s/actions" % key_id, None),
              ("POST", "/org/homelab/api-key/%s/actions" % key_id, {"actionIds": ["getOrg"]}),
              ("DELETE", "/org/homelab/api-key/%s" % key_id, None))
    for method, path, body in routes:
        resp = env.call(method, path, key=org_key, json=body)
        assert (resp.status_code, msg(resp)) == (403, "Key does not have root access"), path
    assert env.call("GET", "/org/homelab/api-keys", key=limited_root).status_code == 200
    for method, path, body in routes[1:]:
        resp = env.call(method, path, key=limited_root, json=body)
        assert (resp.status_code, msg(resp)) == (403, "Key does not have permission perform this action"), path
    # the root check runs before the body is read
    resp = env.call("PUT", "/org/homelab/api-key", key=org_key, json={})
    assert (resp.status_code, msg(resp)) == (403, "Key does not have root access")


def test_deleted_api_key_stops_authenticating(env):
    key_id, key = create_key(env)
    env.call("POST", "/org/homelab/api-key/%s/actions" % key_id, json={"actionIds": ["getOrg"]})
    assert env.call("GET", "/org/homelab", key=key).status_code == 200
    resp = env.call("DELETE", "/org/homelab/api-key/%s" % key_id)
    assert (resp.status_code, resp.json()["data"], msg(resp)) == (200, None, "API key deleted successfully")
    resp = env.call("GET", "/org/homelab", key=key)
    assert (resp.status_code, msg(resp)) == (401, "Invalid API key")
    assert env.call("GET", "/org/homelab/api-keys").json()["data"]["apiKeys"] == []
    resp = env.call("DELETE", "/org/homelab/api-key/%s" % key_id)
    assert (resp.status_code, msg(resp)) == (404, "API Key with ID %s not found" % key_id)
    # the handler looks the key up by id alone: the org in the path is not checked
    other_id, other = create_key(env, org="other")
    assert env.call("DELETE", "/org/homelab/api-key/%s" % other_id).status_code == 200
    assert env.call("GET", "/org/other", key=other).status_code == 401


@pytest.mark.parametrize("body,message", [
    ({"actionIds": []}, 'Validation error: Invalid input: expected string, received undefined at "actionIds[0]"'),
    ({"actionIds": ["getOrg"], "bogus": 1}, 'Validation error: Unrecognized key: "bogus"'),
    ({}, 'Validation error: Invalid input: expected tuple, received undefined at "actionIds"'),
    ({"actionIds": "getOrg"}, 'Validation error: Invalid input: expected tuple, received string at "actionIds"'),
    ({"actionIds": ["getOrg", 5]},
     'Validation error: Invalid input: expected string, received number at "actionIds[1]"'),
    ({"actionIds": ["getOrg", "noSuchAction"]}, "One or more actions do not exist"),
])
def test_set_api_key_actions_rejects_bad_bodies(env, body, message):
    key_id, _ = create_key(env)
    env.call("POST", "/org/homelab/api-key/%s/actions" % key_id, json={"actionIds": ["listResources"]})
    resp = env.call("POST", "/org/homelab/api-key/%s/actions" % key_id, json=body)
    assert (resp.status_code, msg(resp)) == (400, message)
    actions = env.call("GET", "/org/homelab/api-key/%s/actions" % key_id).json()["data"]["actions"]
    assert actions == [{"actionId": "listResources"}]  # unchanged


def test_create_api_key_body_and_org(env):
    path = "/org/homelab/api-key"
    assert msg(env.call("PUT", path, json={})) == \
        'Validation error: Invalid input: expected string, received undefined at "name"'
    assert msg(env.call("PUT", path, json={"name": ""})) == \
        'Validation error: Too small: expected string to have >=1 characters at "name"'
    assert msg(env.call("PUT", path, json={"name": "x" * 256})) == \
        'Validation error: Too big: expected string to have <=255 characters at "name"'
    # a plain z.object: unknown keys are dropped, not refused
    resp = env.call("PUT", path, json={"name": "hook", "actionIds": ["getOrg"]})
    assert resp.status_code == 201
    assert env.call("GET", "/org/homelab/api-key/%s/actions" % resp.json()["data"]["apiKeyId"]).json()[
        "data"]["actions"] == []
    resp = env.call("PUT", "/org/nowhere/api-key", json={"name": "hook"})
    assert resp.status_code == 500
    assert env.call("GET", "/org/nowhere/api-keys").json()["data"]["apiKeys"] == []
    resp = env.call("POST", "/org/homelab/api-key/nosuchkey123456/actions", json={"actionIds": ["getOrg"]})
    assert (resp.status_code, msg(resp)) == (500, "An error occurred")


# -- standalone entry point ------------------------------------------------------------

def test_entry_point_serves_a_seed(tmp_path):
    key = "abcdefghijklmno." + "a" * 40
    seed = {"orgs": [{"org_id": "homelab", "resources": [
        {"name": "Jellyfin", "subdomain": "jellyfin", "full_domain": "jellyfin.example.com"}]}],
        "api_keys": [{"key": key, "root": True, "actions": "all"}], "idps": [{"name": "authentik"}]}
    (tmp_path / "seed.json").write_text(json.dumps(seed))
    proc = subprocess.Popen([sys.executable, "-m", "tests.simulators.pangolin", "--port", "0",
                             "--seed", str(tmp_path / "seed.json")], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        assert info["resources"] == {"Jellyfin": 1} and info["idps"] == {"authentik": 1}
        resp = requests.get(info["url"] + "/v1/resource/1", headers={"Authorization": "Bearer " + key}, timeout=5)
        assert resp.json()["data"]["fullDomain"] == "jellyfin.example.com"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
