"""The doctor's small judgements, one by one: proxy addresses, shadowing, timestamps."""

from datetime import datetime, timezone

import pytest

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.client import parse_time
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._checks.findings import covers
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.holdings import refusal


@pytest.mark.parametrize("address,internal", [
    ("10.1.2.3", True), ("172.18.0.3", True), ("192.168.1.1", True), ("100.64.0.1", True),
    ("127.0.0.1", True), ("169.254.1.1", True), ("255.255.255.255", True), ("fd00::1", True),
    ("fe80::1", True), ("::1", True), ("::ffff:10.0.0.1", True), ("not an ip", True),
    ("203.0.113.7", False), ("198.51.100.7", False), ("8.8.8.8", False), ("2001:db8::1", False),
    ("::ffff:8.8.8.8", False), ("172.32.0.1", False),
])
def test_internal_addresses_are_what_a_proxy_talks_from(address, internal):
    assert (refusal(address, []) is not None) is internal


def rule(match, value):
    return {"match": match, "value": value, "action": "DROP", "priority": 1, "rule_id": 1}


@pytest.mark.parametrize("other,client_ip,verdict", [
    (rule("CIDR", "0.0.0.0/0"), None, True),
    (rule("CIDR", "0.0.0.0/0"), "203.0.113.5", True),
    (rule("CIDR", "203.0.113.0/24"), "203.0.113.5", True),
    (rule("CIDR", "198.51.100.0/24"), "203.0.113.5", False),
    (rule("CIDR", "198.51.100.0/24"), None, False),
    (rule("IP", "203.0.113.5"), "203.0.113.5", True),
    (rule("IP", "203.0.113.6"), "203.0.113.5", False),
    (rule("CIDR", "2001:db8::/32"), "2001:db8:1:2::", True),
    (rule("CIDR", "2001:db8::/32"), "203.0.113.5", False),
    (rule("PATH", "/*"), "203.0.113.5", True),
    (rule("PATH", "/admin/*"), "203.0.113.5", None),
    (rule("COUNTRY", "ALL"), "203.0.113.5", True),
    (rule("COUNTRY", "ALL"), "10.0.0.5", False),  # Pangolin: ALL never matches private addresses
    (rule("COUNTRY", "DE"), "203.0.113.5", None),
    (rule("ASN", "AS0"), "203.0.113.5", True),
    (rule("REGION", "150"), "203.0.113.5", None),
])
def test_covers_says_whether_a_rule_matches_the_users_address(other, client_ip, verdict):
    assert covers(other, client_ip) is verdict


@pytest.mark.parametrize("text,expected", [
    ("2026-11-28T10:00:00.123456Z", datetime(2026, 11, 28, 10, 0, 0, 123456, tzinfo=timezone.utc)),
    ("2026-11-28T10:00:00+00:00", datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)),
    ("2026-11-28T11:00:00+01:00", datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)),
    ("2026-11-28T10:00:00", datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)),
    ("yesterday", None), ("", None), (None, None),
])
def test_parse_time_reads_authentiks_timestamps(text, expected):
    assert parse_time(text) == expected
