"""The ownership proof, expiry and redaction where a one-line mistake once passed every test.

Each test here fails when the behaviour it names is taken out: a transport that only looks like ours
proves nothing, a half-finished move never leaves an ACCEPT rule unowned, no rule is owned twice, an
operator's headers mapping survives a teardown, a revocation and the expiry window hold in the body
mapping (as authentik runs it), the converge and expiry alike, and a deleted and re-created account
never inherits the old one's logins.
"""

import uuid
from datetime import datetime, timedelta

import pytest
import requests

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.render import settings_block
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.secrets import REDACTED, Secrets
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.body import BodySettings
from tests.module_harness import run_module
from tests.playbook_env import AUTHENTIK_TOKEN, PlaybookEnv, module_args

HEAD = "jellyfin-whitelist-resource-1"
PLACEHOLDER = "0.0.0.0"


def args(env, **extra):
    """A whitelist module's arguments; ``resources`` instead of the one resource when given."""
    found = module_args(env, **extra)
    if "resources" in extra:
        found.pop("resource_id")
    return found


def whitelist(env, check=False, **extra):
    extra.setdefault("webhook_api_key", env.webhook_key)
    result = run_module("login_ip_whitelist", args(env, **extra), check=check)
    assert not result.get("failed"), result.get("msg")
    return result


def refused(env, **extra):
    extra.setdefault("webhook_api_key", env.webhook_key)
    env.pangolin.reset_log()
    env.authentik.reset_log()
    for check in (True, False):
        result = run_module("login_ip_whitelist", args(env, **extra), check=check)
        assert result.get("failed"), result
    assert env.writes() == []
    return result["msg"]


def expire(env, **extra):
    result = run_module("login_ip_whitelist_expire", module_args(env, **extra))
    assert not result.get("failed"), result.get("msg")
    return result


def named(store, name):
    return next(o for o in store.values() if o["name"] == name)


def ours(env, resource_id=None):
    """Every ACCEPT rule of the resource (the whitelist's and anything else's)."""
    return [r for r in env.pangolin.rules(resource_id or env.resource_id) if r["action"] == "ACCEPT"]


def age_logins(env, username, **delta):
    for event in env.authentik.events:
        if event.action == "login" and event.user.get("username") == username:
            event.created -= timedelta(**delta)


def set_value(env, username, value):
    """Write a value into the user's rule in Pangolin, as a delivery (or a hand) would."""
    rule_id = env.rule_of(username)["ruleId"]
    with env.pangolin.lock:
        env.pangolin.policy_rules[rule_id]["value"] = value


@pytest.fixture
def env():
    with PlaybookEnv(users=3) as environment:
        yield environment


# -- a transport proves nothing unless it posts to this whitelist's own Pangolin ----------------------------------
@pytest.mark.parametrize("base,forged", [
    ("http://pangolin.test:8080", "http://pangolin.test:8081"),  # our host, another port
    ("http://pangolin.test:8080", "http://pangolin.test.evil:8080"),  # a host that only starts with ours
    ("http://pangolin.test:8080/api", "http://pangolin.test:8080/apix"),  # a path that only starts with ours
    ("https://pangolin.test", "http://pangolin.test"),  # another scheme
])
def test_a_transport_that_only_looks_like_it_posts_to_our_pangolin_proves_nothing(env, base, forged):
    whitelist(env, webhook_url=base)
    transport = named(env.authentik.transports, HEAD + "/user000/1")
    rule_id = transport["webhook_url"].rsplit("/", 1)[1]
    transport["webhook_url"] = "%s/v1/resource/%d/rule/%s" % (forged, env.resource_id, rule_id)
    before = env.pangolin.rules(env.resource_id)
    msg = refused(env, webhook_url=base)
    assert "notification transport %r" % (HEAD + "/user000/1") in msg and forged in msg, msg
    assert env.pangolin.rules(env.resource_id) == before


def test_a_transport_named_for_one_resource_that_posts_to_another_resources_rule_proves_nothing(env):
    second = env.pangolin.add_resource("homelab", "Jellyseerr", subdomain="requests")
    resources = [{"id": env.resource_id}, {"id": second}]
    whitelist(env, resources=resources, instance="household")
    name = "jellyfin-whitelist-household/user000/1/resource-%d" % second
    transport = named(env.authentik.transports, name)
    other = named(env.authentik.transports, "jellyfin-whitelist-household/user001/1")  # a rule of resource 1
    transport["webhook_url"] = other["webhook_url"]
    msg = refused(env, resources=resources, instance="household")
    assert "notification transport %r" % name in msg and "not of resource %d" % second in msg, msg


# -- a move that stopped half-way ---------------------------------------------------------------------------------
@pytest.mark.parametrize("then", ["moved", "removed"])
def test_after_a_move_whose_transport_is_gone_the_rule_at_the_previous_priority_is_adopted_never_left(env, then):
    users = [{"username": "user000", "priority": 100}]
    whitelist(env, users=users)
    env.login("user000", "203.0.113.70")
    [rule] = ours(env)
    assert (rule["priority"], rule["value"]) == (100, "203.0.113.70")
    # A run moving the user to 150 stopped after recording the move and deleting the transport.
    mapping = named(env.authentik.mappings, HEAD + "/user000/1")
    body = BodySettings.parse(mapping["expression"])
    mapping["expression"] = body.with_changes(priority=150, previous_priority=100).expression()
    transport = named(env.authentik.transports, HEAD + "/user000/1")
    del env.authentik.transports[transport["pk"]]
    if then == "moved":
        whitelist(env, users=[{"username": "user000", "priority": 150}])
        assert [(r["ruleId"], r["priority"], r["value"]) for r in ours(env)] == [(rule["ruleId"], 150,
                                                                                  "203.0.113.70")]
        assert env.rule_of("user000")["ruleId"] == rule["ruleId"]
    else:
        whitelist(env, users=[{"username": "user000", "state": "absent"}])
        assert ours(env) == []


def test_a_rule_another_slot_owns_is_never_adopted_by_a_second_slot(env):
    whitelist(env, users=[{"username": "user000", "priority": 100}, {"username": "user001", "priority": 101}])
    owned = env.rule_of("user000")  # the placeholder: anyone's rule could hold it
    # Both transports are gone (a run stopped half-way), and user001's mapping records user000's priority: the
    # rule at 100 is found by the priority user000 records first, and is then nobody else's.
    mapping = named(env.authentik.mappings, HEAD + "/user001/1")
    mapping["expression"] = BodySettings.parse(mapping["expression"]).with_changes(priority=100).expression()
    old_rule = env.rule_of("user001")
    for name in (HEAD + "/user000/1", HEAD + "/user001/1"):
        del env.authentik.transports[named(env.authentik.transports, name)["pk"]]
    whitelist(env, users=[{"username": "user000", "priority": 100}, {"username": "user001"}])
    assert env.rule_of("user000")["ruleId"] == owned["ruleId"]
    assert env.rule_of("user001")["ruleId"] != owned["ruleId"] and env.rule_of("user001")["priority"] != 100
    env.login("user001", "198.51.100.71")
    assert env.rule_of("user000")["value"] == PLACEHOLDER and env.rule_of("user001")["value"] == "198.51.100.71"
    assert [t["name"] for t in env.authentik.transports.values()
            if t["webhook_url"].endswith("/rule/%d" % owned["ruleId"])] == [HEAD + "/user000/1"]
    assert old_rule["ruleId"] not in [r["ruleId"] for r in ours(env)] or old_rule["value"] == PLACEHOLDER


# -- teardown ----------------------------------------------------------------------------------------------------
def test_a_teardown_never_deletes_a_headers_mapping_that_is_not_the_whitelists_own(env):
    api = requests.Session()
    api.headers["Authorization"] = "Bearer " + AUTHENTIK_TOKEN
    answer = api.post(env.authentik.base_url + "/api/v3/propertymappings/notification/", timeout=10, json={
        "name": "my-headers",
        "expression": 'return {"Authorization": "Bearer %s", "Content-Type": "application/json"}' % env.webhook_key})
    assert answer.status_code == 201, answer.text
    result = run_module("login_ip_whitelist", module_args(env, headers_mapping="my-headers"))
    assert not result.get("failed"), result.get("msg")
    result = run_module("login_ip_whitelist", module_args(env, headers_mapping="my-headers", state="absent"))
    assert not result.get("failed") and result["changed"], result.get("msg")
    assert [m["name"] for m in env.authentik.mappings.values()] == ["my-headers"]
    assert ours(env) == []


# -- revocations and the expiry window, in the body mapping, the converge and expiry alike -------------------------
@pytest.mark.parametrize("expire_days", [0, 30])
def test_with_sessions_only_sessions_a_login_after_the_revocation_opened_count(env, expire_days):
    settings = dict(max_addresses=2, follow_sessions=True, expire_days=expire_days)
    whitelist(env, **settings)
    env.login("user000", "203.0.113.80")
    [survivor] = [dict(s) for s in env.authentik.sessions_of("user000")]
    expire(env, expire_users=["user000"], **settings)
    assert env.addresses_of("user000") == [PLACEHOLDER, PLACEHOLDER] and env.authentik.sessions_of("user000") == []
    # The session comes back (its deletion lost), and is used again: it was live at the revocation. Another one,
    # which the revocation never saw, is used after it too.
    revoked_at = BodySettings.parse(named(env.authentik.mappings, HEAD + "/user000/1")["expression"]).not_before
    later = datetime.fromisoformat(revoked_at) + timedelta(seconds=1)
    with env.authentik.lock:
        env.authentik.sessions[survivor["session_key"]] = dict(survivor, last_used=later)
        env.authentik.sessions["unseen"] = dict(survivor, session_key="unseen", uuid=str(uuid.uuid4()),
                                                last_ip="203.0.113.83", last_used=later)
    env.login("user001", "198.51.100.81")  # a delivery of the group: user000 still has no login since
    assert env.addresses_of("user000") == [PLACEHOLDER, PLACEHOLDER]
    whitelist(env, **settings)
    expire(env, **settings)
    assert env.addresses_of("user000") == [PLACEHOLDER, PLACEHOLDER]
    with env.authentik.lock:
        del env.authentik.sessions["unseen"]
    env.login("user000", "198.51.100.82")  # a login after the revocation opens a session that counts
    assert env.addresses_of("user000") == ["198.51.100.82", PLACEHOLDER]
    whitelist(env, **settings)  # the converge computes the same
    assert env.addresses_of("user000") == ["198.51.100.82", PLACEHOLDER]
    expire(env, **settings)
    assert env.addresses_of("user000") == ["198.51.100.82", PLACEHOLDER]


def test_a_login_just_over_expire_days_old_no_longer_counts_and_one_a_day_younger_does(env):
    env.login("user000", "203.0.113.90", wait=False)
    env.login("user001", "203.0.113.91", wait=False)
    assert env.authentik.wait_idle(60)
    age_logins(env, "user000", days=30, minutes=1)
    age_logins(env, "user001", days=29)
    whitelist(env, expire_days=30)  # the converge makes the rules from authentik's state
    assert (env.addresses_of("user000"), env.addresses_of("user001")) == ([PLACEHOLDER], ["203.0.113.91"])
    set_value(env, "user000", "203.0.113.90")  # as if a delivery had written it
    env.login("user002", "198.51.100.92")  # the body mappings run at the group's delivery
    assert (env.addresses_of("user000"), env.addresses_of("user001")) == ([PLACEHOLDER], ["203.0.113.91"])
    set_value(env, "user000", "203.0.113.90")
    expire(env, expire_days=30)
    assert (env.addresses_of("user000"), env.addresses_of("user001")) == ([PLACEHOLDER], ["203.0.113.91"])


def test_a_revocation_holds_logins_inside_the_window_from_before_it_never_count_again(env):
    whitelist(env, expire_days=30)
    env.login("user000", "203.0.113.95")
    expire(env, expire_days=30, expire_users=["user000"])
    assert env.addresses_of("user000") == [PLACEHOLDER]
    expire(env, expire_days=30)  # the login is 0 days old, inside the window, but from before the revocation
    assert env.addresses_of("user000") == [PLACEHOLDER]
    whitelist(env, expire_days=30, ipv6_prefix=64)  # a value setting changed: the converge computes the rules
    assert env.addresses_of("user000") == [PLACEHOLDER]
    env.login("user001", "198.51.100.96")  # and so does the body mapping at the next delivery
    assert env.addresses_of("user000") == [PLACEHOLDER]


def test_a_recreated_account_never_inherits_the_old_accounts_logins(env):
    env.login("user000", "203.0.113.97")  # the account that is deleted below
    pk = env.authentik.user_by_username("user000")["pk"]
    answer = requests.delete(env.authentik.base_url + "/api/v3/core/users/%d/" % pk, timeout=10,
                             headers={"Authorization": "Bearer " + AUTHENTIK_TOKEN})
    assert answer.status_code == 204, answer.text
    env.authentik.add_user("user000")  # a new person with the same username
    assert env.authentik.user_by_username("user000")["pk"] != pk
    whitelist(env, max_addresses=2)
    assert env.addresses_of("user000") == [PLACEHOLDER, PLACEHOLDER]
    env.login("user000", "198.51.100.98")
    assert env.addresses_of("user000") == ["198.51.100.98", PLACEHOLDER]
    expire(env, max_addresses=2)
    assert env.addresses_of("user000") == ["198.51.100.98", PLACEHOLDER]


# -- secrets and rendered values -----------------------------------------------------------------------------------
@pytest.mark.parametrize("order", ["short first", "long first"])
def test_a_secret_that_contains_another_is_hidden_whole_whatever_the_order(order):
    token, password = "tok3n-ab12", "my-pass-tok3n-ab12-word"
    secrets = Secrets()
    for value in ([token, password] if order == "short first" else [password, token]):
        secrets.add(value)
    text = "login with %s, then %s" % (password, token)
    assert secrets.scrub(text) == "login with %s, then %s" % (REDACTED, REDACTED)
    nested = secrets.scrub_obj({"a": [text], "b": {"c": password}})
    assert nested == {"a": ["login with %s, then %s" % (REDACTED, REDACTED)], "b": {"c": REDACTED}}


@pytest.mark.parametrize("bad", [1.5, {"pk": 1}, object(), (1,), b"x", None.__class__, float("nan")])
def test_a_list_in_rendered_settings_refuses_anything_but_literals_as_a_single_value_does(bad):
    with pytest.raises(TypeError, match="cannot render"):
        settings_block({"users": [5, bad]})
    with pytest.raises(TypeError, match="cannot render"):
        settings_block({"users": bad})
    with pytest.raises(TypeError, match="cannot render"):
        settings_block({"users": [5, [bad]]})
