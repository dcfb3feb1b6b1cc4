"""What a user's rules hold, on its own: which addresses may become a rule, and which logins or sessions count.

The verdicts are checked against a second statement of the rule written out here (the networks a device's
address never comes from, and the private ones), not against the code itself. Whether authentik's copy of
the same source agrees is ``tests/test_holdings_in_authentik.py``.
"""

import ipaddress
from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.body import BodySettings
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.holdings import (
    opt_in_error,
    refusal,
    rule_entry,
    user_entries,
)

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)
NOBODY = ("IP", "0.0.0.0")

NEVER = ["0.0.0.0", "0.1.2.3", "127.0.0.1", "127.255.255.254", "169.254.10.20", "224.0.0.1", "239.255.255.250",
         "240.0.0.1", "255.255.255.255", "::", "::1", "fe80::1", "fe80::abcd:1%eth0", "febf::1", "ff02::1", "fec0::1"]
PRIVATE = ["10.0.0.1", "10.255.255.254", "172.16.0.1", "172.18.0.1", "172.31.255.254", "192.168.0.1",
           "192.168.1.50", "100.64.0.1", "100.64.3.4", "100.127.255.254", "fc00::1", "fd00::5", "fdff::1"]
DEVICE = ["203.0.113.5", "198.51.100.7", "192.0.2.1", "198.18.0.1", "198.19.255.254", "2001:db8::1",
          "2001:db8:ffff::9", "8.8.8.8", "1.1.1.1", "172.32.0.1", "172.15.255.255", "100.128.0.1", "100.63.255.255",
          "11.0.0.1", "9.255.255.255", "192.169.0.1", "2a01:4f8::1", "fbff::1", "fe00::1"]


def mapped(address):
    return "::ffff:%s" % address


@pytest.mark.parametrize("address", NEVER + [mapped(a) for a in NEVER if ":" not in a])
def test_an_address_that_is_never_a_devices_never_becomes_a_rule_whatever_is_opted_in(address):
    everything = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"]
    assert refusal(address, everything) is not None
    assert rule_entry(address, 0, everything) is None and rule_entry(address, 64, everything) is None


@pytest.mark.parametrize("address", PRIVATE + [mapped(a) for a in PRIVATE if ":" not in a])
def test_a_private_address_becomes_a_rule_only_inside_an_opted_in_network(address):
    plain = ipaddress.ip_address(address)
    plain = getattr(plain, "ipv4_mapped", None) or plain
    assert refusal(address, []) is not None and rule_entry(address, 0, []) is None
    own = "%s/%d" % (plain, 32 if plain.version == 4 else 128)
    assert refusal(address, [own]) is None
    assert rule_entry(address, 0, [own]) == ("IP", str(plain))
    other = "10.99.0.0/16" if plain.version == 4 else "fd99::/16"
    assert refusal(address, [other]) is not None  # another private network opens nothing here


@pytest.mark.parametrize("address", DEVICE + [mapped(a) for a in DEVICE if ":" not in a])
def test_public_documentation_and_benchmarking_addresses_stay_allowed(address):
    plain = ipaddress.ip_address(address.split("%")[0])
    plain = getattr(plain, "ipv4_mapped", None) or plain
    assert refusal(address, []) is None
    assert rule_entry(address, 0, []) == ("IP", str(plain))
    if plain.version == 6:  # widened to the configured prefix, as Pangolin compares it
        assert rule_entry(address, 64, []) == ("CIDR", str(ipaddress.ip_network("%s/64" % plain, strict=False)))


@pytest.mark.parametrize("text", ["", "not an address", None, "203.0.113.5/32", "1.2.3", "::gggg"])
def test_what_is_no_address_opens_nothing(text):
    assert refusal(text, []) == "not an address" and rule_entry(text, 0, []) is None


@pytest.mark.parametrize("network,error", [
    ("192.168.1.0/24", None), ("10.0.0.0/8", None), ("172.20.0.0/16", None), ("100.64.0.0/10", None),
    ("fd00::/8", None), ("192.168.1.7/32", None),
    ("0.0.0.0/0", "never become a rule"), ("127.0.0.0/8", "never become a rule"), ("fe80::/64", "never"),
    ("::/0", "never"), ("169.254.0.0/16", "never"), ("224.0.0.0/4", "never"),
    ("10.0.0.0/7", "not inside a private network"), ("203.0.113.0/24", "not inside a private network"),
    ("2001:db8::/32", "not inside a private network"), ("192.168.1.0/33", "CIDR form"), ("lan", "CIDR form"),
])
def test_only_private_networks_can_be_opted_in(network, error):
    found = opt_in_error(network)
    assert (found is None) if error is None else (found is not None and error in found)


# -- which logins and sessions count ---------------------------------------------------------------------------
def body(**changes):
    return BodySettings(user_pk=7, slot=1, slots=2, priority=100, expire_days=30).with_changes(**changes).settings()


def login(days_ago, address, **delta):
    return (NOW - timedelta(days=days_ago, **delta), address)


def test_the_newest_distinct_acceptable_addresses_fill_the_rules_a_refused_login_is_skipped():
    logins = [login(0, "172.18.0.1"), login(1, "203.0.113.5"), login(2, "127.0.0.1"), login(3, "203.0.113.5"),
              login(4, "198.51.100.7")]
    assert user_entries(body(), NOW, True, True, logins, []) == [("IP", "203.0.113.5"), ("IP", "198.51.100.7")]


def test_a_lan_login_never_locks_the_tv_out_of_its_last_public_address():
    logins = [login(0, "192.168.1.50"), login(0, "fe80::1", hours=-1), login(5, "203.0.113.9")]
    assert user_entries(body(slots=1), NOW, True, True, logins, []) == [("IP", "203.0.113.9")]


def test_an_opted_in_network_lets_its_logins_count():
    logins = [login(0, "192.168.1.50"), login(5, "203.0.113.9")]
    assert user_entries(body(private_networks=["192.168.1.0/24"]), NOW, True, True, logins, []) == [
        ("IP", "192.168.1.50"), ("IP", "203.0.113.9")]


@pytest.mark.parametrize("active,member", [(False, True), (True, False), (False, False)])
def test_an_inactive_user_or_one_who_left_the_group_is_let_in_nowhere(active, member):
    logins = [login(0, "203.0.113.5")]
    assert user_entries(body(), NOW, active, member, logins, []) == [NOBODY, NOBODY]


def test_a_login_just_over_expire_days_old_no_longer_counts_one_a_day_younger_does():
    over = [login(30, "203.0.113.1", seconds=1)]
    younger = [login(29, "203.0.113.2")]
    assert user_entries(body(slots=1), NOW, True, True, over, []) == [NOBODY]
    assert user_entries(body(slots=1), NOW, True, True, younger, []) == [("IP", "203.0.113.2")]
    # expire_days 0: no limit
    assert user_entries(body(slots=1, expire_days=0), NOW, True, True, [login(900, "203.0.113.1")], []) == [
        ("IP", "203.0.113.1")]


@pytest.mark.parametrize("expire_days", [0, 30])
def test_a_revocation_holds_logins_inside_the_window_from_before_it_never_count_again(expire_days):
    revoked = (NOW - timedelta(days=2)).isoformat()
    before = [login(3, "203.0.113.1"), login(2, "203.0.113.2", seconds=1)]
    settings = body(expire_days=expire_days, not_before=revoked)
    assert user_entries(settings, NOW, True, True, before, []) == [NOBODY, NOBODY]
    after = [login(1, "203.0.113.3")] + before
    assert user_entries(settings, NOW, True, True, after, []) == [("IP", "203.0.113.3"), NOBODY]


@pytest.mark.parametrize("expire_days", [0, 30])
def test_with_sessions_only_sessions_a_login_after_the_revocation_opened_count_again(expire_days):
    revoked = NOW - timedelta(days=40 if expire_days else 2)
    settings = body(sessions=True, expire_days=expire_days, not_before=revoked.isoformat(),
                    revoked_sessions=["s-old"])
    old = (revoked + timedelta(hours=5), "203.0.113.1", "s-old")  # live at the revocation, used since
    earlier = [login(45 if expire_days else 3, "203.0.113.1")]
    assert user_entries(settings, NOW, True, True, earlier, [old]) == [NOBODY, NOBODY]
    new = (NOW - timedelta(minutes=1), "198.51.100.7", "s-new")
    later = [(revoked + timedelta(hours=1), "198.51.100.7")] + earlier
    assert user_entries(settings, NOW, True, True, later, [old, new]) == [("IP", "198.51.100.7"), NOBODY]


def test_sessions_without_a_revocation_all_count_whatever_their_age():
    sessions = [(NOW - timedelta(days=60), "203.0.113.1", "a"), (NOW - timedelta(minutes=1), "10.0.0.9", "b")]
    assert user_entries(body(sessions=True), NOW, True, True, [], sessions) == [("IP", "203.0.113.1"), NOBODY]


def test_a_session_last_used_before_the_revocation_never_counts_again_even_after_a_login():
    revoked = NOW - timedelta(days=2)
    settings = body(sessions=True, not_before=revoked.isoformat())
    stale = (revoked - timedelta(minutes=5), "203.0.113.1", "never-seen")  # unused since before the revocation
    fresh = (NOW - timedelta(minutes=1), "198.51.100.7", "new")
    logins = [(revoked + timedelta(hours=1), "198.51.100.7")]
    assert user_entries(settings, NOW, True, True, logins, [stale, fresh]) == [("IP", "198.51.100.7"), NOBODY]
