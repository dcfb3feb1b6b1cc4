"""Several devices per user: the addresses of the user's newest logins, or of the live sessions.

With ``max_addresses`` a user gets that many rules, the newest distinct
addresses first. With ``follow_sessions`` they are the addresses of the user's
live authentik sessions: a logout takes its address away with the delivery it
causes, and a session that ended without an event (expired, revoked by an
admin) is gone after the next expiry or whitelist run. Bodies are computed from
authentik's state, so a late, repeated or reordered delivery still writes the
right addresses. authentik's worker runs in the background.
"""

import pytest

from tests.legacy import Api
from tests.module_harness import run_module
from tests.playbook_env import PlaybookEnv, module_args

NOBODY = "0.0.0.0"


def whitelist(env, check=False, diff=False, **extra):
    result = run_module("login_ip_whitelist", module_args(env, webhook_api_key=env.webhook_key, **extra), check=check,
                        diff=diff)
    assert not result.get("failed"), result.get("msg")
    return result


@pytest.fixture
def env():
    with PlaybookEnv(users=2) as environment:
        yield environment


SESSIONS = dict(max_addresses=2, follow_sessions=True)


def test_two_devices_are_both_let_in_and_a_third_keeps_the_two_newest(env):
    whitelist(env, **SESSIONS)
    tv = env.login("user000", "203.0.113.1")
    env.login("user000", "198.51.100.2")  # the phone, on mobile data
    assert env.addresses_of("user000") == ["198.51.100.2", "203.0.113.1"]
    assert env.pangolin.apply_rules_for(env.resource_id, "203.0.113.1") == "ACCEPT"
    env.authentik.use_session(tv.session_key)  # the TV used its session last
    env.login("user000", "192.0.2.3")
    assert env.addresses_of("user000") == ["192.0.2.3", "203.0.113.1"]
    assert env.addresses_of("user001") == [NOBODY, NOBODY]


def test_a_logout_takes_its_address_away_with_one_delivery(env):
    whitelist(env, **SESSIONS)
    tv = env.login("user000", "203.0.113.1")
    phone = env.login("user000", "198.51.100.2")
    env.authentik.reset_counts()
    env.authentik.logout(phone.session_key)
    assert env.authentik.wait_idle(30)
    assert env.addresses_of("user000") == ["203.0.113.1", NOBODY]
    assert env.authentik.enqueued["event_trigger_handler"] == 1  # one group rule: one task for the logout
    assert env.authentik.enqueued["notification_transport"] == 4  # both users' two rules, rewritten
    env.authentik.logout(tv.session_key)
    assert env.authentik.wait_idle(30)
    assert env.addresses_of("user000") == [NOBODY, NOBODY]


def test_a_shared_address_stays_while_another_session_has_it(env):
    whitelist(env, **SESSIONS)
    first = env.login("user000", "203.0.113.1")
    env.login("user000", "203.0.113.1")  # two browsers behind one router
    env.authentik.logout(first.session_key)
    assert env.authentik.wait_idle(30)
    assert env.addresses_of("user000") == ["203.0.113.1", NOBODY]


def test_a_session_revoked_by_an_admin_is_gone_after_expiry(env):
    whitelist(env, **SESSIONS)
    env.login("user000", "203.0.113.1")
    env.login("user000", "198.51.100.2")
    [newest, older] = env.authentik.sessions_of("user000")
    api = Api(env)
    resp = api.session.delete(api.base + "/core/authenticated_sessions/%s/" % older["uuid"], timeout=10)
    assert resp.status_code == 204  # no event for the user: nothing is delivered
    assert env.authentik.wait_idle(30) and env.addresses_of("user000") == ["198.51.100.2", "203.0.113.1"]
    checked = run_module("login_ip_whitelist_expire", module_args(env, **SESSIONS), check=True, diff=True)
    assert checked["changed"] and env.addresses_of("user000") == ["198.51.100.2", "203.0.113.1"]
    result = run_module("login_ip_whitelist_expire", module_args(env, **SESSIONS))
    assert [u["reason"] for u in result["users"] if u["username"] == "user000"] == ["a session ended"]
    assert env.addresses_of("user000") == ["198.51.100.2", NOBODY]
    assert run_module("login_ip_whitelist_expire", module_args(env, **SESSIONS))["changed"] is False


def test_an_expired_session_is_gone_after_the_next_whitelist_run(env):
    whitelist(env, **SESSIONS)
    session = env.login("user001", "203.0.113.7")
    env.authentik.expire_session(session.session_key)
    result = whitelist(env, **SESSIONS)
    assert [u["status"] for u in result["users"] if u["username"] == "user001"] == ["updated"]
    assert env.addresses_of("user001") == [NOBODY, NOBODY]


def test_an_expired_session_is_gone_after_the_users_next_login(env):
    whitelist(env, **SESSIONS)
    session = env.login("user001", "203.0.113.7")
    env.authentik.expire_session(session.session_key)
    env.login("user001", "198.51.100.8")
    assert env.addresses_of("user001") == ["198.51.100.8", NOBODY]


def test_a_rerun_writes_nothing(env):
    whitelist(env, **SESSIONS)
    env.login("user000", "203.0.113.1")
    env.login("user001", "198.51.100.2")
    env.pangolin.reset_log()
    env.authentik.reset_log()
    assert whitelist(env, **SESSIONS)["changed"] is False and env.writes() == []


def test_a_late_or_repeated_delivery_still_writes_the_right_addresses(env):
    whitelist(env, **SESSIONS)
    env.authentik.pause_worker(["notification_transport"])  # deliveries held back ...
    old = env.login("user000", "203.0.113.1", wait=False)
    env.authentik.logout(old.session_key)  # ... while the user logs out of that device
    env.login("user000", "198.51.100.2", wait=False)
    # three events (login, logout, login), each posting the group's four transports
    env.wait_for(lambda: env.authentik.queued_messages("notification_transport") == 12,
                 what="three events' deliveries to wait in the queue")
    # the newest event's deliveries first, the first login's last, and those four once more after them
    env.authentik.reorder_queue("notification_transport", repeat=4)
    env.authentik.resume_worker()
    assert env.authentik.wait_idle(30)
    assert env.addresses_of("user000") == ["198.51.100.2", NOBODY]


@pytest.mark.parametrize("check", [True, False], ids=["check", "real"])
def test_changing_max_addresses_and_the_mode_converges_in_one_run(env, check):
    whitelist(env, max_addresses=1)
    env.login("user000", "203.0.113.1")
    env.login("user000", "198.51.100.2")
    assert env.addresses_of("user000") == ["198.51.100.2"]
    # up: a second rule per user, holding the second newest login's address at once
    env.pangolin.reset_log()
    up = whitelist(env, max_addresses=2, check=check, diff=True)
    created = [d for d in up["diff"] if d["before"] == {} and d["after_header"].startswith("rule priority")]
    assert sorted(d["after"]["value"] for d in created) == sorted(["203.0.113.1", NOBODY])
    if check:
        assert env.pangolin.writes() == [] and env.addresses_of("user000") == ["198.51.100.2"]
        return
    assert env.addresses_of("user000") == ["198.51.100.2", "203.0.113.1"]
    assert whitelist(env, max_addresses=2)["changed"] is False
    # the mode: live sessions instead of logins, in one run
    whitelist(env, max_addresses=2, follow_sessions=True)
    assert env.addresses_of("user000") == ["198.51.100.2", "203.0.113.1"]
    # and back down to one rule: the extra rule goes, the newest address stays
    down = whitelist(env, max_addresses=1, check=True, diff=True)
    assert sorted(d["before"]["value"] for d in down["diff"] if d["after"] == {} and
                  d["before_header"].startswith("rule priority")) == [NOBODY, "203.0.113.1"]
    whitelist(env, max_addresses=1)
    assert env.addresses_of("user000") == ["198.51.100.2"]
    assert len(env.pangolin.rules(env.resource_id)) == 2  # one per user
    assert whitelist(env, max_addresses=1)["changed"] is False


def test_logins_mode_keeps_the_newest_distinct_logins_within_the_window(env):
    whitelist(env, max_addresses=2)
    for address in ("203.0.113.1", "198.51.100.2", "198.51.100.2"):
        env.login("user001", address)
    assert env.addresses_of("user001") == ["198.51.100.2", "203.0.113.1"]
    env.login("user001", "::ffff:192.0.2.9")  # written as the IPv4 address, distinct from the others
    assert env.addresses_of("user001") == ["192.0.2.9", "198.51.100.2"]


def test_the_doctor_reports_each_address_and_where_it_comes_from(env):
    whitelist(env, **SESSIONS)
    env.login("user000", "203.0.113.1")
    env.login("user000", "198.51.100.2")
    result = run_module("login_ip_whitelist_info", module_args(env, **SESSIONS))
    assert result["healthy"], result
    report = [u for u in result["users"] if u["username"] == "user000"][0]
    sessions = dict((s["last_ip"], s["uuid"]) for s in env.authentik.sessions_of("user000"))
    assert [(a["value"], a["source"]["kind"], a["source"]["id"]) for a in report["addresses"]] == [
        ("198.51.100.2", "session", sessions["198.51.100.2"]), ("203.0.113.1", "session", sessions["203.0.113.1"])]
    env.authentik.sessions = dict((k, s) for k, s in env.authentik.sessions.items() if s["last_ip"] != "203.0.113.1")
    result = run_module("login_ip_whitelist_info", module_args(env, **SESSIONS))
    report = [u for u in result["users"] if u["username"] == "user000"][0]
    assert [p["check"] for p in report["problems"]] == ["session_gone"] and "203.0.113.1" in report["problems"][0][
        "message"]


def test_sessions_need_authentik_2025_4():
    with PlaybookEnv(users=1, authentik_version="2025.2.4") as env:
        result = run_module("login_ip_whitelist", module_args(env, webhook_api_key=env.webhook_key, **SESSIONS))
        assert result.get("failed") and "follow_sessions" in result["msg"] and "2025.4" in result["msg"]
        assert env.writes() == []
