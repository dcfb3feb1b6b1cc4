"""Only a device's own address, and only while its user belongs.

* The text of ``holdings.SOURCE`` that authentik runs (in the simulator's expression sandbox, wrapped as authentik
  wraps it) gives the same verdicts as the modules' copy, for generated addresses, opt-ins and login histories.
* A login from an address that cannot be a device's (loopback, unspecified, link-local, multicast, reserved), or
  from a private one that is not opted in, opens nothing as authentik delivers it; the user's rules keep their
  newest acceptable address. The converge, expiry and the doctor agree.
* With ``users_from_group``, a member removed from the group in authentik is out without a run; a former member's
  logins whitelist nothing; a member added back gets in at the next login. No event that has nothing to do with
  the whitelist costs authentik's worker more than it did.
"""

import ipaddress
import types
from datetime import datetime, timedelta, timezone

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist import holdings
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.body import (
    BodySettings,
    render_body,
)
from tests.module_harness import run_module
from tests.playbook_env import AUTHENTIK_TOKEN, PlaybookEnv, module_args
from tests.simulators.authentik_expressions import run_expression

PLACEHOLDER = "0.0.0.0"
GROUP = "jellyfin"
PROXY = "10.9.8.7"  # the reverse proxy in front of authentik: in authentik's trusted networks

# One of each kind of address, IPv4, IPv6 and IPv4-mapped
REFUSED = {
    "loopback": ["127.0.0.1", "::1", "::ffff:127.0.0.1"],
    "unspecified": ["0.0.0.0", "::"],
    "link-local": ["169.254.7.7", "fe80::1", "::ffff:169.254.7.7"],
    "multicast": ["224.0.0.251", "ff02::fb"],
    "reserved": ["255.255.255.255", "240.0.0.9"],
    "private": ["10.1.2.3", "172.18.0.1", "192.168.1.50", "::ffff:192.168.1.50"],
    "shared address space": ["100.64.3.4", "::ffff:100.64.3.4"],
    "unique local": ["fd00::5"],
}
PUBLIC = ["203.0.113.7", "198.51.100.7", "192.0.2.7", "198.18.0.7", "2001:db8::7", "::ffff:203.0.113.9"]


# -- the same text, run by authentik and by the modules -------------------------------------------------------------
def in_authentik(code, **context):
    """Run ``code`` (lines) after the shared source, as authentik runs a mapping's expression."""
    expression = render_body({"probe": True}, code)
    return run_expression(expression, dict(context), "<probe>")


ADDRESSES = st.one_of(
    st.ip_addresses().map(str),
    st.ip_addresses(v=4).map(lambda a: "::ffff:%s" % a),
    st.sampled_from([a for found in REFUSED.values() for a in found] + PUBLIC + ["junk", "", "fe80::1%eth0"]),
)
OPT_INS = st.lists(st.sampled_from(["192.168.1.0/24", "10.0.0.0/8", "172.18.0.0/16", "100.64.0.0/10", "fd00::/8"]),
                   max_size=3)


@settings(max_examples=300, deadline=None)
@given(addresses=st.lists(ADDRESSES, min_size=1, max_size=20), private=OPT_INS, prefix=st.sampled_from([0, 56, 64]))
def test_authentik_and_the_modules_give_every_address_the_same_verdict(addresses, private, prefix):
    found = in_authentik(["return [(refusal(a, private), rule_entry(a, prefix, private)) for a in addresses]"],
                         addresses=addresses, private=private, prefix=prefix)
    assert found == [(holdings.refusal(a, private), holdings.rule_entry(a, prefix, private)) for a in addresses]


NOW = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)
LOGINS = st.lists(st.tuples(st.integers(min_value=0, max_value=60 * 24 * 45), ADDRESSES), max_size=12).map(
    lambda found: sorted(((NOW - timedelta(minutes=m), a) for m, a in found), reverse=True))


@settings(max_examples=200, deadline=None)
@given(logins=LOGINS, expire_days=st.sampled_from([0, 1, 30]), slots=st.integers(1, 3), private=OPT_INS,
       revoked=st.one_of(st.none(), st.integers(0, 60 * 24 * 40)), sessions=st.booleans(),
       active=st.booleans(), member=st.booleans())
def test_authentik_and_the_modules_compute_the_same_rules(logins, expire_days, slots, private, revoked, sessions,
                                                         active, member):
    body = BodySettings(user_pk=7, slot=1, slots=slots, priority=100, expire_days=expire_days, sessions=sessions,
                        private_networks=private,
                        not_before=(NOW - timedelta(minutes=revoked)).isoformat() if revoked is not None else None)
    live = [(when, address, "s%d" % n) for n, (when, address) in enumerate(logins)]
    expected = holdings.user_entries(body.settings(), NOW, active, member, logins, live)
    found = in_authentik(["return user_entries(settings, now, active, member, logins, live)"],
                         settings=body.settings(), now=NOW, active=active, member=member, logins=logins, live=live)
    assert found == expected


# -- a login as authentik records it, through a reverse proxy ------------------------------------------------------
def whitelist(env, check=False, **extra):
    extra.setdefault("webhook_api_key", env.webhook_key)
    result = run_module("login_ip_whitelist", module_args(env, **extra), check=check)
    assert not result.get("failed"), result.get("msg")
    return result


def login_through_proxy(env, username, address):
    """A login whose request came through the trusted proxy with ``address`` in X-Forwarded-For."""
    env.authentik.login(username, peer=PROXY, forwarded_for=address)
    assert env.authentik.wait_idle(60), "authentik's worker did not drain"


def set_value(env, username, value):
    """Write a value into the user's rule in Pangolin, as a delivery (or a hand) would."""
    rule_id = env.rule_of(username)["ruleId"]
    with env.pangolin.lock:
        env.pangolin.policy_rules[rule_id]["value"] = value


@pytest.fixture
def env():
    with PlaybookEnv(users=3) as environment:
        yield environment


@pytest.mark.parametrize("kind", sorted(REFUSED))
def test_a_login_from_an_address_that_cannot_be_a_devices_opens_nothing_and_keeps_the_last_public_one(env, kind):
    whitelist(env, ipv6_prefix=64)
    login_through_proxy(env, "user000", "203.0.113.50")
    for address in REFUSED[kind]:
        login_through_proxy(env, "user000", address)
        recorded = [e for e in env.authentik.events if e.action == "login"][-1].client_ip
        assert recorded == address  # authentik recorded the address as it came
        assert env.addresses_of("user000") == ["203.0.113.50"], (kind, address)
    # the others' rules are never touched by it either
    assert env.addresses_of("user001") == [PLACEHOLDER]


def test_without_an_acceptable_login_the_rule_keeps_the_placeholder(env):
    whitelist(env)
    for address in ("172.18.0.1", "127.0.0.1", "fe80::1"):
        login_through_proxy(env, "user000", address)
    assert env.addresses_of("user000") == [PLACEHOLDER]
    for resource_id in (env.resource_id,):
        assert env.pangolin.apply_rules_for(resource_id, "172.18.0.1") != "ACCEPT"


def test_an_untrusted_proxy_or_one_without_the_header_records_its_own_address_which_opens_nothing(env):
    whitelist(env)
    env.authentik.login("user000", peer="172.18.0.1", forwarded_for=None)  # a trusted proxy sending no header
    env.authentik.login("user001", peer="203.0.113.250", forwarded_for="198.51.100.9")  # a proxy not trusted
    assert env.authentik.wait_idle(60)
    recorded = dict((e.user["username"], e.client_ip) for e in env.authentik.events if e.action == "login")
    assert recorded == {"user000": "172.18.0.1", "user001": "203.0.113.250"}
    assert env.addresses_of("user000") == [PLACEHOLDER]
    # authentik saw the untrusted proxy's public address: the proxy is let in, which is why the doctor names it
    assert env.addresses_of("user001") == ["203.0.113.250"]


def test_an_opted_in_private_network_lets_its_logins_in_and_no_other(env):
    whitelist(env, private_networks=["192.168.1.0/24"])
    login_through_proxy(env, "user000", "192.168.1.50")
    assert env.addresses_of("user000") == ["192.168.1.50"]
    login_through_proxy(env, "user001", "192.168.2.50")
    assert env.addresses_of("user001") == [PLACEHOLDER]
    login_through_proxy(env, "user002", "127.0.0.1")
    assert env.addresses_of("user002") == [PLACEHOLDER]


@pytest.mark.parametrize("network,why", [("127.0.0.0/8", "never become a rule"), ("0.0.0.0/0", "never"),
                                         ("fe80::/10", "never"), ("203.0.113.0/24", "not inside a private network"),
                                         ("lan", "CIDR form")])
def test_opting_in_a_network_that_is_never_allowed_fails_before_any_write(env, network, why):
    env.pangolin.reset_log()
    env.authentik.reset_log()
    for module in ("login_ip_whitelist", "login_ip_whitelist_info", "login_ip_whitelist_expire"):
        for check in (False, True):
            result = run_module(module, module_args(env, webhook_api_key=env.webhook_key, private_networks=[network])
                                if module == "login_ip_whitelist" else module_args(env, private_networks=[network]),
                                check=check)
            assert result.get("failed") and "private_networks[0]" in result["msg"] and why in result["msg"], result
            assert "\n" not in result["msg"]
    assert env.writes() == []


def test_the_converge_expiry_and_the_doctor_agree_on_a_rule_that_holds_a_refused_address(env):
    """A rule written before the upgrade (or by hand) holding a proxy's address: every part says and does the same."""
    whitelist(env)
    login_through_proxy(env, "user000", "203.0.113.60")
    set_value(env, "user000", "172.18.0.1")
    report = run_module("login_ip_whitelist_info", module_args(env))
    [user] = [u for u in report["users"] if u["username"] == "user000"]
    assert [p["check"] for p in user["problems"]] == ["refused_address"] and "172.18.0.1" in user["problems"][0][
        "message"], user["problems"]
    checked = run_module("login_ip_whitelist_expire", module_args(env), check=True)
    assert [u["username"] for u in checked["users"] if u["expired"] or u["restored"]] == ["user000"]
    result = whitelist(env, check=True)
    assert [u["username"] for u in result["users"] if u["changed"]] == ["user000"]
    whitelist(env)  # the converge writes what authentik's state says
    assert env.addresses_of("user000") == ["203.0.113.60"]
    set_value(env, "user000", "172.18.0.1")
    run_module("login_ip_whitelist_expire", module_args(env))  # and so does expiry
    assert env.addresses_of("user000") == ["203.0.113.60"]
    # opted in, the same address is fine everywhere
    whitelist(env, private_networks=["172.18.0.0/16"])
    login_through_proxy(env, "user000", "172.18.0.1")
    assert env.addresses_of("user000") == ["172.18.0.1"]
    report = run_module("login_ip_whitelist_info", module_args(env, private_networks=["172.18.0.0/16"]))
    [user] = [u for u in report["users"] if u["username"] == "user000"]
    assert user["problems"] == [] and user["refused_logins"] == []


def test_a_rule_wider_than_a_device_is_a_problem_and_the_converge_writes_it_again(env):
    """Whoever holds the webhook's key can write any network into a user's rule; the whitelist only ever writes one
    address (or an IPv6 login's prefix), so a wider one is someone else's and no part of the collection keeps it."""
    whitelist(env)
    login_through_proxy(env, "user000", "203.0.113.80")
    assert env.addresses_of("user000") == ["203.0.113.80"]
    set_value(env, "user000", "1.0.0.0/1")  # from 0.0.0.0 to 127.255.255.255: 10/8 and 127/8 included
    with env.pangolin.lock:
        env.pangolin.policy_rules[env.rule_of("user000")["ruleId"]]["match"] = "CIDR"
    report = run_module("login_ip_whitelist_info", module_args(env))
    [user] = [u for u in report["users"] if u["username"] == "user000"]
    assert [p["check"] for p in user["problems"]] == ["unwritten_value"] and "1.0.0.0/1" in user["problems"][0][
        "message"], user["problems"]
    assert not report["healthy"] and report["broken_users"] == ["user000"]
    result = whitelist(env, check=True)
    assert [u["username"] for u in result["users"] if u["changed"]] == ["user000"]
    whitelist(env)
    assert env.addresses_of("user000") == ["203.0.113.80"]
    assert env.rule_of("user000")["match"] == "IP"


def test_the_doctor_lists_refused_logins_and_blames_the_proxy(env):
    whitelist(env)
    login_through_proxy(env, "user000", "203.0.113.70")
    login_through_proxy(env, "user000", "172.18.0.1")
    for _ in range(2):
        login_through_proxy(env, "user001", "127.0.0.1")
    report = run_module("login_ip_whitelist_info", module_args(env))
    users = dict((u["username"], u) for u in report["users"])
    # some refused: a note; all refused within the window: the user cannot get in, a problem
    assert [n["check"] for n in users["user000"]["notes"]] == ["refused_address"]
    assert users["user000"]["problems"] == [] and [r["address"] for r in users["user000"]["refused_logins"]] == [
        "172.18.0.1"]
    assert [p["check"] for p in users["user001"]["problems"]] == ["refused_address"]
    problem = users["user001"]["problems"][0]
    assert "127.0.0.1" in problem["message"] and "AUTHENTIK_LISTEN__TRUSTED_PROXY_CIDRS" in problem["fix"]
    assert "X-Forwarded-For" in problem["fix"] and "2026.8" in problem["fix"]
    assert [r["kind"] for r in users["user001"]["refused_logins"]] == ["loopback", "loopback"]
    assert report["healthy"] is False and report["broken_users"] == ["user001"]
    assert report["verdict"] == "1 problem: user001 (1)"


# -- leaving the group ends access without a run ----------------------------------------------------------------
def api(env):
    session = requests.Session()
    session.headers["Authorization"] = "Bearer " + AUTHENTIK_TOKEN
    return session


def group_pk(env):
    return next(pk for pk, g in env.authentik.groups.items() if g["name"] == GROUP)


def user_pk(env, username):
    return env.authentik.user_by_username(username)["pk"]


@pytest.fixture
def household():
    with PlaybookEnv(users=3) as environment:
        environment.authentik.add_group(GROUP, users=[user_pk(environment, u) for u in environment.usernames])
        whitelist(environment, users=[], users_from_group=GROUP)
        for username, address in (("user000", "203.0.113.80"), ("user001", "198.51.100.81")):
            login_through_proxy(environment, username, address)
        yield environment


@pytest.mark.parametrize("how", ["group remove_user", "group users", "user groups"])
def test_a_member_removed_from_the_group_is_out_without_a_run(household, how):
    env = household
    assert env.addresses_of("user000") == ["203.0.113.80"]
    base = env.authentik.base_url + "/api/v3"
    if how == "group remove_user":
        answer = api(env).post(base + "/core/groups/%s/remove_user/" % group_pk(env), json={"pk": user_pk(env, "user000")})
    elif how == "group users":
        answer = api(env).patch(base + "/core/groups/%s/" % group_pk(env), json={
            "users": [user_pk(env, u) for u in ("user001", "user002")]})
    else:
        answer = api(env).patch(base + "/core/users/%d/" % user_pk(env, "user000"), json={"groups": []})
    assert answer.status_code in (200, 204), answer.text
    assert env.authentik.wait_idle(60)
    assert env.addresses_of("user000") == [PLACEHOLDER]  # no run: authentik told the whitelist
    assert env.addresses_of("user001") == ["198.51.100.81"]
    assert env.pangolin.apply_rules_for(env.resource_id, "203.0.113.80") != "ACCEPT"
    # a former member's login whitelists nothing
    login_through_proxy(env, "user000", "203.0.113.82")
    assert env.addresses_of("user000") == [PLACEHOLDER]
    # added back (in authentik's UI), the member gets in at the next login: the objects are still there
    answer = api(env).post(base + "/core/groups/%s/add_user/" % group_pk(env), json={"pk": user_pk(env, "user000")})
    assert answer.status_code == 204, answer.text
    assert env.authentik.wait_idle(60)
    login_through_proxy(env, "user000", "203.0.113.83")
    assert env.addresses_of("user000") == ["203.0.113.83"]


def test_the_run_after_a_removal_agrees_and_the_doctor_says_nothing_wrong(household):
    env = household
    answer = api(env).post(env.authentik.base_url + "/api/v3/core/groups/%s/remove_user/" % group_pk(env),
                           json={"pk": user_pk(env, "user000")})
    assert answer.status_code == 204
    assert env.authentik.wait_idle(60)
    report = run_module("login_ip_whitelist_info", module_args(env, users=[], users_from_group=GROUP))
    assert report["healthy"], (report["problems"], [u["problems"] for u in report["users"]])
    checked = whitelist(env, check=True, users=[], users_from_group=GROUP)
    done = whitelist(env, users=[], users_from_group=GROUP)
    assert [(u["username"], u["status"]) for u in checked["users"]] == [(u["username"], u["status"])
                                                                         for u in done["users"]]
    assert dict((u["username"], u["status"]) for u in done["users"])["user000"] == "kept_out"  # already out


def test_an_unrelated_event_costs_the_worker_no_more_than_before(household):
    """The membership trigger adds no notification rule: an event that has nothing to do with the whitelist costs
    one handler task per rule, as with a plain user list."""
    env = household
    rules = len(env.authentik.rules)

    def cost(action):
        env.authentik.reset_counts()
        env.authentik.create_event(action, user="akadmin")
        assert env.authentik.wait_idle(60)
        return dict(env.authentik.enqueued)

    group_cost = cost("custom_backup_finished")
    assert group_cost["event_trigger_handler"] == rules and group_cost["notification_transport"] == 0
    whitelist(env)  # the same users as a plain list
    assert len(env.authentik.rules) == rules
    list_cost = cost("custom_backup_finished")
    assert list_cost == group_cost
    # a membership change costs one transport per user and resource (and nothing for anyone else)
    env.authentik.reset_counts()
    whitelist(env, users=[], users_from_group=GROUP)
    env.authentik.reset_counts()
    api(env).post(env.authentik.base_url + "/api/v3/core/groups/%s/remove_user/" % group_pk(env),
                  json={"pk": user_pk(env, "user002")})
    assert env.authentik.wait_idle(60)
    assert env.authentik.enqueued["notification_transport"] == 3
