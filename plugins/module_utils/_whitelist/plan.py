# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What one run of the whitelist will do, as plain immutable data (``planner.py`` makes it, ``runner.py`` does it).

Every object appears with what was read (``current``, a stored view) and what
is wanted; the runner turns each into one reconcile step, in check mode too,
so the plan is what ``--check --diff`` shows.
"""

from __future__ import annotations

from dataclasses import dataclass

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.options import present


@dataclass(frozen=True)
class RulePlan(object):
    """A slot's rule on one resource, and the transport that posts to it."""

    resource_id: int
    transport_name: str
    current: dict = None  # the owned rule as read; None: created this run
    write: tuple = None  # (match, value) this run writes; None keeps what the webhook wrote
    transport: dict = None  # the transport as read (under this name or the one it is renamed from)


@dataclass(frozen=True)
class SlotPlan(object):
    """Rule ``number`` of a present user: one priority, one body mapping, a rule per resource."""

    number: int
    priority: int
    mapping_name: str
    body: object  # the BodySettings the body mapping must record
    mapping: dict = None  # as read
    rules: tuple = ()  # RulePlan, one per listed resource
    moving_from: tuple = None  # (action, priority) the slot's rules leave this run


@dataclass(frozen=True)
class Deletion(object):
    """One object to delete; ``kind`` is rule, transport, mapping, policy or notification_rule."""

    kind: str
    current: dict
    resource_id: int = None


@dataclass(frozen=True)
class Reset(object):
    """An owned rule written back to what the user's state says (the placeholder for a user without access)."""

    resource_id: int
    current: dict
    match: str
    value: str


@dataclass(frozen=True)
class UserPlan(object):
    username: str
    state: str  # present; absent (removed); disabled (no longer listed: kept, without access)
    where: str = ""
    pk: int = None
    slots: tuple = ()  # SlotPlan, present users only
    resets: tuple = ()  # Reset
    stops: tuple = ()  # Deletion of superseded notification rules of a user who goes, before anything else
    removals: tuple = ()  # Deletion, in order: a rule while its transport still names it, then the transport ...
    retire: tuple = ()  # Deletion of what the slots supersede, once the user's own objects are in place
    group: int = None
    pruned: bool = False
    deactivated: bool = False
    existed: bool = False  # the whitelist held objects of the user before this run

    @property
    def priorities(self):
        return [s.priority for s in self.slots]


@dataclass(frozen=True)
class GroupPlan(object):
    """A notification rule of the whitelist with its policy and binding, for a group of users."""

    index: int
    name: str
    members: tuple  # usernames
    member_pks: tuple
    rule: dict = None
    policy: dict = None
    bindings: tuple = ()


@dataclass(frozen=True)
class GroupShrink(object):
    """Before anything else: a notification rule keeps only some transports (``keep``), or goes (``keep`` None,
    its policy deleted after every rule that goes)."""

    index: int
    rule: dict = None
    keep: tuple = None  # transport pks that stay on the rule; None: the rule is deleted
    policy: dict = None


@dataclass(frozen=True)
class ResourcePlan(object):
    resource_id: int
    view: dict  # its access settings as read
    shared_policy: bool = False  # rules live in its per-resource overrides of a shared policy


@dataclass(frozen=True)
class SharedPlan(object):
    """What all users share: applyRules per resource, the webhook key and the headers mapping."""

    resources: tuple  # ResourcePlan, listed ones
    headers_name: str
    headers: dict = None  # as read
    keep_headers: bool = True  # False: nothing needs the key any more (teardown, nobody listed)
    headers_ours: bool = True  # False: the operator's own mapping, never written or deleted


@dataclass(frozen=True)
class EmailPlan(object):
    name: str
    wanted: object = None  # LoginEmail, or None to remove
    member_pks: tuple = ()
    group_pk: str = None
    rule: dict = None
    policy: dict = None
    transport: dict = None
    bindings: tuple = ()


@dataclass(frozen=True)
class Plan(object):
    users: tuple  # UserPlan, in inventory order (users no longer listed last)
    shrinks: tuple  # GroupShrink
    groups: tuple  # GroupPlan
    shared: SharedPlan
    email: EmailPlan
    retire_shared: tuple = ()  # Deletion of shared objects an older version left, once nothing uses them
    retire_keys: tuple = ()  # (key id, name) of Pangolin keys that go after them
    destination_group_pk: str = None  # authentik before 2025.8: the group notifications go to
    group_pk: str = None  # users_from_group's pk: its membership changes fire the group rules
    state: str = "present"

    def user(self, username):
        return next((u for u in self.users if u.username == username), None)

    @property
    def present(self):
        return present(self.users)


__all__ = ["Plan", "UserPlan", "SlotPlan", "RulePlan", "Deletion", "Reset", "GroupPlan", "GroupShrink",
           "ResourcePlan", "SharedPlan", "EmailPlan"]
