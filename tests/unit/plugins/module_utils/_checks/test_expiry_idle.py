"""Which addresses expiry closes for letting nothing through (idle_days), on a request log read as plain data.

The log is read newest first and only so far (the page bound): an address not among the rows read is
unknown, never idle, as the doctor says ("not among the newest requests").
"""

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._checks.expiry import WhitelistExpiry

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
HOME, CAFE = ("IP", "203.0.113.9"), ("IP", "198.51.100.4")


class Log(object):
    """What a read of the request log found: the last use per (resource, entry), and whether each resource's
    window was read to its end."""

    def __init__(self, last, complete):
        self.last, self.complete_on = last, complete
        self.resource_ids = tuple(sorted(complete))
        self.window = "7 d"

    def last_use(self, resource_id, entry):
        return self.last.get((resource_id, entry))

    def last_use_anywhere(self, entry):
        found = [w for w in (self.last_use(rid, entry) for rid in self.resource_ids) if w is not None]
        return max(found) if found else None

    def complete(self, resource_id):
        return self.complete_on[resource_id]


def idle(log, logins=()):
    expiry = WhitelistExpiry.__new__(WhitelistExpiry)
    expiry.now, expiry.idle_days, expiry.usage = NOW, 3, log
    expiry.settings = SimpleNamespace(placeholder="0.0.0.0")
    expiry.w = SimpleNamespace(snapshot=SimpleNamespace(sources_of=lambda username, sessions: list(logins)))
    judged = SimpleNamespace(ipv6_prefix=0)
    return [(m, v) for m, v, _why in expiry._idle("alice", judged, [HOME, CAFE, ("IP", "0.0.0.0")])]


def test_an_address_unused_through_the_whole_window_closes_and_a_used_one_stays():
    log = Log({(1, HOME): NOW - timedelta(hours=2)}, complete={1: True})
    assert idle(log) == [CAFE]


def test_an_address_beyond_the_rows_read_stays_open():
    log = Log({(1, HOME): NOW - timedelta(hours=2)}, complete={1: False})
    assert idle(log) == []


def test_an_address_seen_on_every_resource_read_only_in_part_is_judged_by_its_last_use():
    log = Log({(1, CAFE): NOW - timedelta(days=5), (2, CAFE): NOW - timedelta(days=4),
               (1, HOME): NOW - timedelta(hours=1), (2, HOME): NOW - timedelta(hours=1)},
              complete={1: False, 2: False})
    assert idle(log) == [CAFE]


def test_a_resource_read_only_in_part_keeps_an_address_another_resource_never_saw():
    log = Log({(2, CAFE): NOW - timedelta(days=5)}, complete={1: False, 2: True})
    assert idle(log) == []


def test_a_recent_login_renews_an_address_the_log_never_saw():
    log = Log({}, complete={1: True})
    logins = [dict(when=NOW - timedelta(days=1), address="198.51.100.4")]
    assert idle(log, logins) == [HOME]
