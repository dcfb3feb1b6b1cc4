"""The planner on its own: from data read to a plan, with no server and no simulator.

Each test builds what the two servers would hold (rules, mappings, transports,
users, logins) as plain data, resolves ownership and plans, and checks the plan:
priority allocation, a priority move, collisions, adoption by the recorded
priority, removal order, groups, users no longer listed, teardown, and the
ownership proof itself.
"""

from datetime import datetime, timedelta, timezone
from itertools import count

import pytest

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.body import BodySettings
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.naming import Deployment
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.planner import plan_whitelist
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.whitelist import Whitelist
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.inputs import InputError
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.options import (
    Inputs,
    Settings,
    UserEntry,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.snapshot import Snapshot

BASE = "https://pangolin.example.test"
ELSEWHERE = "https://pangolin-b.example.test"
HEAD = "jellyfin-whitelist-resource-1"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


class World(object):
    """What the servers hold, as data: build it up, then ``plan()``."""

    def __init__(self, resources=(1,), **settings):
        self.settings = Settings(webhook_url=BASE, **settings)
        self.dep = Deployment("jellyfin-whitelist-", "resource-1", resources)
        self.ids = count(1)
        self.rules = dict((rid, []) for rid in resources)
        self.mappings, self.transports, self.policies, self.notification_rules = {}, {}, {}, {}
        self.accounts = {}
        self.logins = {}
        for pk, username in enumerate(("alice", "bob", "carol", "dave"), start=10):
            self.accounts[username] = dict(pk=pk, username=username, name=username, is_active=True)

    # -- what the servers hold -----------------------------------------------
    def rule(self, priority, action="ACCEPT", match="IP", value="0.0.0.0", resource=1):
        rule = dict(rule_id=next(self.ids), priority=priority, action=action, match=match, value=value,
                    enabled=True)
        self.rules[resource].append(rule)
        return rule

    def body(self, username, number=1, priority=100, **changes):
        settings = BodySettings.of(self.settings, self.accounts[username]["pk"], number, priority).with_changes(
            **changes)
        name = self.dep.slot_name(username, number)
        self.mappings[name] = dict(pk="m-" + name, name=name, expression=settings.expression())
        return self.mappings[name]

    def transport(self, username, rule, number=1, resource=1, base=BASE, mode="webhook"):
        name = self.dep.transport_name(username, number, resource)
        self.transports[name] = dict(pk="t-" + name, name=name, mode=mode, send_once=True,
                                     body_mapping="m-" + self.dep.slot_name(username, number),
                                     headers_mapping="headers",
                                     webhook_url="%s/v1/resource/%d/rule/%d" % (base, resource, rule["rule_id"]))
        return self.transports[name]

    def chain(self, username, priority, value="0.0.0.0", number=1):
        """A whole chain of ours: body mapping, rule, transport."""
        self.body(username, number, priority)
        rule = self.rule(priority, value=value)
        self.transport(username, rule, number)
        return rule

    def group(self, index, usernames):
        name = self.dep.group_name(index)
        pks = sorted(self.accounts[u]["pk"] for u in usernames)
        self.notification_rules[name] = dict(pk="r-%d" % index, name=name, severity="notice",
                                             destination_event_user=True, destination_group=None,
                                             transports=[t["pk"] for n, t in self.transports.items()
                                                         if any(n.startswith(HEAD + "/%s/" % u) for u in usernames)])
        self.policies[name] = dict(pk="p-%d" % index, name=name, expression="# rendered by homelab.pangolin_"
                                   "authentik\nSETTINGS = {\n    'users': %r,\n}\nreturn False" % pks)

    def login(self, username, address, days_ago=1):
        self.logins.setdefault(username, []).insert(0, dict(pk="e-%s-%s" % (username, address),
                                                            created=NOW - timedelta(days=days_ago),
                                                            client_ip=address))

    # -- planning ----------------------------------------------------------------
    def snapshot(self):
        logins = dict((u, [dict(e) for e in found]) for u, found in self.logins.items())
        return Snapshot.from_data(self.dep.resource_ids, rules=self.rules, mappings=self.mappings.values(),
                                  transports=self.transports.values(), policies=self.policies.values(),
                                  notification_rules=self.notification_rules.values(),
                                  accounts=self.accounts.values(), logins=logins, now=NOW)

    def whitelist(self, entries=()):
        inputs = Inputs(settings=self.settings, users=tuple(entries), resources=())
        return Whitelist.of(self.snapshot(), self.dep, inputs, plausible=self.plausible)

    def plausible(self, username, rule):
        return rule["value"] == self.settings.placeholder or rule["value"] in [
            e["client_ip"] for e in self.logins.get(username, [])]

    def ownership(self):
        w = self.whitelist()
        return w.snapshot, w.ownership

    def plan(self, *users):
        """Plan for ``users``: usernames, or (username, priority[, state]) tuples."""
        entries = tuple(UserEntry(*((u,) if isinstance(u, str) else u), where="users[%d] (%s)" % (
            i, u if isinstance(u, str) else u[0])) for i, u in enumerate(users))
        return plan_whitelist(self.whitelist(entries))


def user(plan, username):
    return plan.user(username)


# -- allocation ------------------------------------------------------------------------
def test_new_users_get_the_lowest_free_priorities_in_order_explicit_ones_first():
    world = World()
    world.rule(100, "DROP", "CIDR", "10.0.0.0/8")  # the operator's
    world.rule(102, "ACCEPT", "IP", "192.0.2.7")
    plan = world.plan("alice", ("bob", 101), "carol")
    assert [user(plan, u).priorities for u in ("alice", "bob", "carol")] == [[103], [101], [104]]
    assert all(not s.moving_from for u in plan.users for s in u.slots)
    [rule] = user(plan, "alice").slots[0].rules
    assert rule.current is None and rule.write == ("IP", "0.0.0.0")  # a new rule holds what the state says


def test_allocation_is_the_same_priority_on_every_resource():
    world = World(resources=(1, 2))
    world.rule(100, "DROP", "CIDR", "10.0.0.0/8", resource=2)  # free on 1, taken on 2
    plan = world.plan("alice")
    slot = user(plan, "alice").slots[0]
    assert slot.priority == 101 and [r.resource_id for r in slot.rules] == [1, 2]
    assert [r.transport_name for r in slot.rules] == [HEAD + "/alice/1", HEAD + "/alice/1/resource-2"]


def test_a_full_range_is_an_error_before_any_write():
    world = World(priority_range=(100, 101))
    world.rule(100, "DROP", "CIDR", "10.0.0.0/8")
    with pytest.raises(InputError, match="priority_range 100-101 has no free priority left"):
        world.plan("alice", "bob")


def test_a_kept_priority_stays_and_a_rerun_writes_nothing_new():
    world = World()
    world.chain("alice", 120, value="203.0.113.5")
    plan = world.plan("alice")
    slot = user(plan, "alice").slots[0]
    assert slot.priority == 120 and slot.moving_from is None
    assert slot.rules[0].current["value"] == "203.0.113.5" and slot.rules[0].write is None  # the webhook's stays


# -- a priority move -------------------------------------------------------------------------
def test_an_explicit_priority_change_moves_the_rule_and_records_where_it_comes_from():
    world = World()
    owned = world.chain("alice", 100, value="203.0.113.5")
    slot = user(world.plan(("alice", 150)), "alice").slots[0]
    assert (slot.priority, slot.moving_from) == (150, ("ACCEPT", 100))
    assert slot.rules[0].current["rule_id"] == owned["rule_id"] and slot.rules[0].write is None  # the address moves


def test_a_move_that_stopped_half_way_is_still_proven_and_finished():
    world = World()
    world.body("alice", priority=150, previous_priority=100)  # the run stopped after the body mapping
    owned = world.rule(100, value="203.0.113.5")
    world.transport("alice", owned)
    snap, own = world.ownership()
    assert own.collisions == [] and own.slots[("alice", 1)].rules[1]["rule_id"] == owned["rule_id"]
    slot = user(world.plan("alice"), "alice").slots[0]
    assert (slot.priority, slot.moving_from) == (150, ("ACCEPT", 100)) and slot.rules[0].current is owned


def test_a_kept_priority_someone_else_now_holds_on_a_new_resource_moves_to_a_free_one():
    world = World(resources=(1, 2))
    world.chain("alice", 100, value="203.0.113.5")
    world.rule(100, "DROP", "CIDR", "10.0.0.0/8", resource=2)  # resource 2 was just added to the list
    slot = user(world.plan("alice"), "alice").slots[0]
    assert (slot.priority, slot.moving_from) == (101, ("ACCEPT", 100))
    assert [r.current is not None for r in slot.rules] == [True, False]


# -- collisions -----------------------------------------------------------------------------
def test_an_explicit_priority_held_by_a_rule_the_whitelist_does_not_own_is_refused():
    world = World()
    world.rule(150, "DROP", "CIDR", "10.0.0.0/8")
    with pytest.raises(InputError, match=r"users\[0\] \(alice\): priority 150 collides with rule 1 \(DROP CIDR "
                                         r"10.0.0.0/8\) on resource 1, which this whitelist does not own"):
        world.plan(("alice", 150))


def test_an_explicit_priority_held_by_another_users_rule_is_refused():
    world = World()
    world.chain("bob", 130)
    with pytest.raises(InputError, match=r"priority 130 is held by the rule of user 'bob'; choose another"):
        world.plan(("alice", 130), "bob")


def test_two_users_asking_for_one_priority_are_refused():
    with pytest.raises(InputError, match=r"priority 100 is also used by user 'alice'"):
        World().plan(("alice", 100), ("bob", 100))


def test_two_rules_at_an_explicit_priority_are_refused():
    world = World()
    world.rule(140, value="192.0.2.1")
    world.rule(140, value="192.0.2.2")
    with pytest.raises(InputError, match="resource 1 has 2 rules with priority 140"):
        world.plan(("alice", 140))


# -- ownership: the proof --------------------------------------------------------------------------------------
def test_a_transport_of_ours_posting_to_another_pangolin_is_a_collision():
    world = World()
    world.body("alice", priority=100)
    drop = world.rule(100, "DROP", "CIDR", "10.99.0.0/16")  # this Pangolin's rule with that id
    world.transport("alice", drop, base=ELSEWHERE)
    snap, own = world.ownership()
    [collision] = own.collisions
    assert collision.name == HEAD + "/alice/1" and ELSEWHERE in collision.message and "'resource-1'" in \
        collision.message
    assert own.owner_of_rule(1, drop["rule_id"]) is None
    with pytest.raises(InputError, match="posts to %s/v1/resource/1/rule/%d, not to this whitelist's Pangolin"
                                         % (ELSEWHERE, drop["rule_id"])):
        world.plan("alice")


@pytest.mark.parametrize("action,match,value", [("DROP", "CIDR", "10.0.0.0/8"), ("ACCEPT", "COUNTRY", "US"),
                                                ("PASS", "IP", "192.0.2.9"), ("ACCEPT", "PATH", "/api/*")])
def test_a_transport_of_ours_naming_a_rule_not_of_our_shape_proves_nothing(action, match, value):
    world = World()
    world.body("alice", priority=100)
    foreign = world.rule(100, action, match, value)
    world.transport("alice", foreign)
    snap, own = world.ownership()
    assert own.owner_of_rule(1, foreign["rule_id"]) is None
    assert [c.name for c in own.collisions] == [HEAD + "/alice/1"]


def test_a_transport_naming_a_rule_at_another_priority_than_recorded_proves_nothing():
    world = World()
    world.body("alice", priority=100)
    office = world.rule(300, value="192.0.2.77")  # an id Pangolin gave again, say
    world.transport("alice", office)
    snap, own = world.ownership()
    assert own.owner_of_rule(1, office["rule_id"]) is None
    assert "sends priority 100 but the rule has priority 300" in own.collisions[0].message


def test_a_transport_without_its_body_mapping_proves_nothing():
    world = World()
    rule = world.rule(100, value="203.0.113.5")
    world.transport("alice", rule)
    snap, own = world.ownership()
    assert own.owner_of_rule(1, rule["rule_id"]) is None and "body mapping is missing" in own.collisions[0].message


# -- adoption by the recorded priority --------------------------------------------------------------------
@pytest.mark.parametrize("value", ["0.0.0.0", "203.0.113.5"])
def test_the_recorded_priority_adopts_a_rule_holding_the_placeholder_or_the_users_address(value):
    world = World()
    world.login("alice", "203.0.113.5")
    world.body("alice", priority=100)  # the run stopped after the rule was made, before its transport
    rule = world.rule(100, value=value)
    slot = user(world.plan("alice"), "alice").slots[0]
    assert slot.priority == 100 and slot.rules[0].current["rule_id"] == rule["rule_id"]
    assert slot.rules[0].transport is None  # the transport is made anew and then proves it


def test_the_recorded_priority_never_adopts_an_operators_rule_there():
    world = World()
    world.login("alice", "203.0.113.5")
    world.body("alice", priority=100)
    office = world.rule(100, value="192.0.2.77")  # the operator's own rule at alice's old priority
    slot = user(world.plan("alice"), "alice").slots[0]
    assert slot.priority == 101 and slot.rules[0].current is None  # automatic: moves to a free one
    with pytest.raises(InputError, match="priority 100 collides with rule %d" % office["rule_id"]):
        world.plan(("alice", 100))  # explicit: an error


@pytest.mark.parametrize("action,match,value", [("DROP", "IP", "0.0.0.0"), ("ACCEPT", "COUNTRY", "US")])
def test_the_recorded_priority_never_adopts_a_rule_of_another_shape(action, match, value):
    world = World()
    world.body("alice", priority=100)
    world.rule(100, action, match, value)
    assert user(world.plan("alice"), "alice").slots[0].rules[0].current is None


def test_the_recorded_priority_adopts_nothing_when_two_rules_are_there():
    world = World()
    world.body("alice", priority=100)
    world.rule(100)
    world.rule(100)
    slot = user(world.plan("alice"), "alice").slots[0]
    assert slot.rules[0].current is None and slot.priority == 101


def test_the_recorded_priority_adopts_nothing_someone_else_posts_to():
    world = World()
    world.body("alice", priority=100)
    rule = world.rule(100)
    world.transports["someone else's"] = dict(pk="x", name="someone else's", mode="webhook",
                                              webhook_url="%s/v1/resource/1/rule/%d" % (ELSEWHERE, rule["rule_id"]))
    assert user(world.plan("alice"), "alice").slots[0].rules[0].current is None


# -- removal -----------------------------------------------------------------------------------------------
def test_removal_deletes_each_rule_while_its_transport_still_names_it_then_the_transport_then_the_mapping():
    world = World(resources=(1, 2), max_addresses=2)
    for number, priority in ((1, 100), (2, 101)):
        world.body("alice", number, priority)
        for resource in (1, 2):
            world.transport("alice", world.rule(priority, resource=resource), number, resource)
    plan = world.plan(("alice", None, "absent"))
    steps = [(d.kind, d.resource_id, d.current["name"] if d.kind != "rule" else d.current["priority"])
             for d in user(plan, "alice").removals]
    assert steps == [
        ("rule", 1, 100), ("transport", None, HEAD + "/alice/1"),
        ("rule", 2, 100), ("transport", None, HEAD + "/alice/1/resource-2"), ("mapping", None, HEAD + "/alice/1"),
        ("rule", 1, 101), ("transport", None, HEAD + "/alice/2"),
        ("rule", 2, 101), ("transport", None, HEAD + "/alice/2/resource-2"), ("mapping", None, HEAD + "/alice/2")]


def test_removal_never_deletes_a_rule_it_cannot_prove():
    world = World()
    world.body("alice", priority=100)
    world.rule(100, value="192.0.2.77")  # the operator's, at alice's recorded priority
    plan = world.plan(("alice", None, "absent"))
    assert [d.kind for d in user(plan, "alice").removals] == ["mapping"]


def test_a_resource_taken_off_the_list_loses_only_the_whitelists_rules():
    world = World(resources=(1, 2))
    world.body("alice", priority=100)
    world.transport("alice", world.rule(100), 1, 1)
    world.transport("alice", world.rule(100, resource=2), 1, 2)
    world.rule(101, "DROP", "CIDR", "10.0.0.0/8", resource=2)
    world.dep = Deployment("jellyfin-whitelist-", "resource-1", (1,))  # resource 2 left the list
    removals = user(world.plan("alice"), "alice").removals
    assert [(d.kind, d.resource_id) for d in removals] == [("rule", 2), ("transport", None)]
    assert removals[1].current["name"] == HEAD + "/alice/1/resource-2"


# -- users no longer listed, groups, teardown ------------------------------------------------------------------
def test_a_user_no_longer_listed_loses_access_and_with_prune_the_objects():
    world = World()
    world.chain("alice", 100)
    world.chain("bob", 101, value="198.51.100.7")
    world.group(1, ["alice", "bob"])
    plan = world.plan("alice")
    bob = user(plan, "bob")
    assert bob.state == "disabled" and bob.group is None and bob.removals == ()
    assert [(r.match, r.value) for r in bob.resets] == [("IP", "0.0.0.0")]
    [shrink] = plan.shrinks  # bob's transport leaves the group's rule before anything else
    assert shrink.keep == ("t-%s/alice/1" % HEAD,)
    world.settings = Settings(webhook_url=BASE, prune=True)
    bob = user(world.plan("alice"), "bob")
    assert bob.state == "absent" and bob.pruned
    assert [d.kind for d in bob.removals] == ["rule", "transport", "mapping"]


def test_users_stay_on_their_group_and_new_ones_fill_the_first_with_room():
    world = World(users_per_rule=2)
    world.chain("alice", 100)
    world.chain("carol", 101)
    world.group(2, ["carol"])
    plan = world.plan("alice", "bob", "carol", "dave")
    # carol stays on rule 2; alice (on no rule) fills its room, then bob and dave get a new rule 1
    assert [(g.index, g.members) for g in plan.groups] == [(1, ("bob", "dave")), (2, ("carol", "alice"))]


def test_state_absent_removes_everything_the_whitelist_owns():
    world = World(state="absent")
    world.chain("alice", 100)
    world.group(1, ["alice"])
    plan = world.plan("alice")
    assert user(plan, "alice").state == "absent" and plan.groups == ()
    assert [s.keep for s in plan.shrinks] == [None] and plan.shared.keep_headers is False


def test_a_deactivated_user_gets_the_placeholder_written():
    world = World()
    world.chain("alice", 100, value="203.0.113.5")
    world.accounts["alice"]["is_active"] = False
    alice = user(world.plan("alice"), "alice")
    assert alice.deactivated and alice.slots[0].rules[0].write == ("IP", "0.0.0.0")


def test_a_missing_authentik_user_is_an_error():
    with pytest.raises(InputError, match="authentik has no user 'zoe'"):
        World().plan("zoe")


# -- what a revocation or a closing leaves, for every slot -----------------------------------------
REVOKED_AT = (NOW - timedelta(days=2)).isoformat()
CLOSED = (("IP", "203.0.113.9", (NOW - timedelta(days=3)).isoformat()),)


def test_a_slot_made_after_a_revocation_records_it_and_writes_nothing_from_before():
    """max_addresses raised after alice was revoked: the new slot's body mapping must not let her old address back
    in at the next delivery."""
    world = World(max_addresses=2)
    world.login("alice", "203.0.113.9", days_ago=3)  # before the revocation
    world.body("alice", 1, 100, not_before=REVOKED_AT, revoked_sessions=("s-1",))
    world.transport("alice", world.rule(100), 1)
    alice = user(world.plan("alice"), "alice")
    assert [s.number for s in alice.slots] == [1, 2]
    for slot in alice.slots:
        assert (slot.body.not_before, slot.body.revoked_sessions) == (REVOKED_AT, ("s-1",)), slot.number
        assert [r.write for r in slot.rules] == [("IP", "0.0.0.0")], slot.number


def test_a_slot_that_missed_a_closing_gets_it_and_its_rule_is_written_from_the_state():
    """Slot 2's body mapping was recreated without the closing slot 1 records: the run gives it the closing and
    writes the rule itself, so the closed address does not come back."""
    world = World(max_addresses=2)
    world.login("alice", "203.0.113.9", days_ago=4)  # before the closing: it does not reopen the address
    world.body("alice", 1, 100, closed=CLOSED)
    world.transport("alice", world.rule(100), 1)
    world.body("alice", 2, 101)
    world.transport("alice", world.rule(101, value="203.0.113.9"), 2)
    alice = user(world.plan("alice"), "alice")
    slots = dict((s.number, s) for s in alice.slots)
    assert len(slots) == 2
    assert slots[2].body.closed == slots[1].body.closed == CLOSED
    assert [r.write for r in slots[2].rules] == [("IP", "0.0.0.0")]


def test_the_kept_settings_merge_to_the_newest_revocation_and_every_closing():
    older = BodySettings(user_pk=10, slot=1, slots=2, priority=100, action="ACCEPT", placeholder="0.0.0.0",
                         ipv6_prefix=0, sessions=False, expire_days=30, not_before=REVOKED_AT,
                         revoked_sessions=("s-1",), closed=CLOSED)
    newer_at = (NOW - timedelta(days=1)).isoformat()
    newer = older.with_changes(slot=2, not_before=newer_at, revoked_sessions=("s-2", "s-1"),
                               closed=(("IP", "203.0.113.9", newer_at), ("IP", "198.51.100.4", newer_at)))
    merged = BodySettings.kept_of_all([older, None, newer])
    assert merged == dict(not_before=newer_at, revoked_sessions=("s-1", "s-2"),
                          closed=(("IP", "203.0.113.9", newer_at), ("IP", "198.51.100.4", newer_at)))
    assert BodySettings.kept_of_all([older, older]) == older.kept()  # consistent mappings: nothing changes
    assert BodySettings.kept_of_all([]) == {}


@pytest.mark.parametrize("match, value", [("CIDR", "1.0.0.0/1"), ("CIDR", "203.0.113.0/24"),
                                          ("CIDR", "8000::/1"), ("CIDR", "2001:db8::/32"), ("IP", "127.0.0.1")])
def test_a_rule_wider_than_a_device_or_its_prefix_is_written_again(match, value):
    """Anyone holding the webhook's key can put any value in a rule: only what a login makes may stand."""
    world = World(ipv6_prefix=64)
    world.chain("alice", 100, value=value)
    world.rules[1][0]["match"] = match
    world.login("alice", "203.0.113.9")
    alice = user(world.plan("alice"), "alice")
    assert [r.write for r in alice.slots[0].rules] == [("IP", "203.0.113.9")]


@pytest.mark.parametrize("match, value, login", [("IP", "203.0.113.9", "203.0.113.9"),
                                                 ("CIDR", "2001:db8:1:2::/64", "2001:db8:1:2::7")])
def test_a_rule_holding_what_a_login_made_stands(match, value, login):
    world = World(ipv6_prefix=64)
    world.chain("alice", 100, value=value)
    world.rules[1][0]["match"] = match
    world.login("alice", login)
    alice = user(world.plan("alice"), "alice")
    assert [r.write for r in alice.slots[0].rules] == [None]
