# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which objects of a snapshot belong to a deployment: decided here, and nowhere else.

An ACCEPT rule bypasses SSO, so "ours" must never be a guess:

* a per-rule object (body mapping, transport) is ours when its name parses as this
  deployment's ``<head>/<username>/<n>``; a group rule or policy when it parses as
  ``<head>/logins/<k>``;
* a Pangolin rule is ours when one of our transports posts to it, or, for a slot
  whose transport is gone or points at a rule that is gone (a run that stopped
  half-way, Pangolin renumbering its rules), when it is the only rule at the
  priority our body mapping recorded, of our action and an address match, and no
  transport of anyone posts to it. A priority given in the inventory makes no rule ours;
* a chain of the 0.1/0.2 scheme (``<prefix><username>``) is ours when its transport
  posts to a rule of this resource; its rule is then ours too.

Everything the whitelist, the doctor and expiry delete, prune, reset or retire
is looked up through this class.
"""

from __future__ import annotations

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.deployment import (
    LEGACY_HEADERS,
    Deployment,
)


class Slot(object):
    """Rule ``n`` of a user: its body mapping, transport and Pangolin rule (each may be missing)."""

    def __init__(self, username, number):
        self.username = username
        self.number = number
        self.mapping = None
        self.transport = None
        self.rule = None

    @property
    def settings(self):
        return (self.mapping or {}).get("values") or {}

    @property
    def recorded_priority(self):
        priority = self.settings.get("priority")
        return priority if isinstance(priority, int) and not isinstance(priority, bool) else None

    @property
    def user_pk(self):
        pk = self.settings.get("user_pk")
        return pk if isinstance(pk, int) and not isinstance(pk, bool) else None


class Group(object):
    """Notification rule ``k`` of the deployment, its policy and binding, and the users on it."""

    def __init__(self, index):
        self.index = index
        self.rule = None
        self.policy = None
        self.bindings = []
        self.members = set()  # usernames whose transports the rule sends through

    @property
    def user_pks(self):
        users = ((self.policy or {}).get("values") or {}).get("users")
        return [pk for pk in users if isinstance(pk, int)] if isinstance(users, list) else []


class LegacyChain(object):
    """A user's chain of the 0.1/0.2 scheme, on this resource."""

    def __init__(self, username):
        self.username = username
        self.mapping = self.transport = self.policy = self.notification_rule = self.rule = None
        self.bindings = []


class Ownership(object):
    def __init__(self, snapshot, deployment, action="ACCEPT"):
        self.snapshot = snapshot
        self.deployment = deployment
        self.action = action
        self.slots = {}  # (username, n) -> Slot
        self.groups = {}  # k -> Group
        self.legacy = {}  # username -> LegacyChain
        self._resolve()

    # -- resolution ------------------------------------------------------
    def _resolve(self):
        snap, dep = self.snapshot, self.deployment
        for name, mapping in snap.mappings.items():
            parsed = dep.parse_slot(name)
            if parsed:
                self._slot(*parsed).mapping = mapping
        for name, transport in snap.transports.items():
            parsed = dep.parse_slot(name)
            if parsed:
                self._slot(*parsed).transport = transport
        taken = set()
        for slot in self.slots.values():  # first the rules our transports post to
            target = (slot.transport or {}).get("target")
            if target and target[0] == dep.resource_id and snap.rule(target[1]) is not None:
                slot.rule = snap.rule(target[1])
                taken.add(slot.rule["rule_id"])
        self._resolve_legacy(taken)
        targeted = snap.targeted_rule_ids()
        for slot in self.slots.values():  # then, for slots that lost theirs, the recorded priority
            if slot.rule is None and slot.recorded_priority is not None:
                found = [r for r in snap.rules_at(slot.recorded_priority)
                         if r["rule_id"] not in taken and r["rule_id"] not in targeted]
                if len(found) == 1 and self._our_shape(found[0]):
                    slot.rule = found[0]
                    taken.add(found[0]["rule_id"])
        for name, rule in snap.notification_rules.items():
            index = dep.parse_group(name)
            if index is not None:
                self._group(index).rule = rule
        for name, policy in snap.policies.items():
            index = dep.parse_group(name)
            if index is not None:
                self._group(index).policy = policy
        self.email = dict((store, getattr(snap, store).get(dep.email_name))
                          for store in ("notification_rules", "policies", "transports"))
        self.email_bindings = []
        ours = dict((t["pk"], slot.username) for slot in self.slots.values() for t in [slot.transport] if t)
        for group in self.groups.values():
            group.members = set(ours[pk] for pk in (group.rule or {}).get("transports") or [] if pk in ours)

    def _resolve_legacy(self, taken):
        snap, dep = self.snapshot, self.deployment
        for name, transport in snap.transports.items():
            username = dep.legacy_username(name)
            target = transport.get("target")
            if username is None or not target or target[0] != dep.resource_id:
                continue
            chain = self.legacy[username] = LegacyChain(username)
            chain.transport = transport
            rule = snap.rule(target[1])
            if rule is not None and rule["rule_id"] not in taken:
                chain.rule = rule
                taken.add(rule["rule_id"])
            legacy_name = dep.prefix + username
            chain.mapping = snap.mappings.get(legacy_name)
            chain.policy = snap.policies.get(legacy_name)
            chain.notification_rule = snap.notification_rules.get(legacy_name)

    def _our_shape(self, rule):
        return rule["action"] == self.action and rule["match"] in ("IP", "CIDR")

    def _slot(self, username, number):
        return self.slots.setdefault((username, number), Slot(username, number))

    def _group(self, index):
        return self.groups.setdefault(index, Group(index))

    def attach_bindings(self):
        """Read the bindings of our group rules and legacy rules (one request), after ``_resolve``."""
        pks = [g.rule["pk"] for g in self.groups.values() if g.rule]
        pks += [c.notification_rule["pk"] for c in self.legacy.values() if c.notification_rule]
        email_rule = self.email["notification_rules"]
        if email_rule:
            pks.append(email_rule["pk"])
        self.snapshot.read_bindings(pks)
        if email_rule:
            self.email_bindings = self.snapshot.bindings_of(email_rule["pk"])
        for group in self.groups.values():
            if group.rule:
                group.bindings = self.snapshot.bindings_of(group.rule["pk"])
        for chain in self.legacy.values():
            if chain.notification_rule:
                chain.bindings = self.snapshot.bindings_of(chain.notification_rule["pk"])
        return self

    # -- questions -------------------------------------------------------
    def slots_of(self, username):
        return sorted((s for s in self.slots.values() if s.username == username), key=lambda s: s.number)

    def usernames(self):
        """Every user this deployment holds objects for, legacy ones included."""
        return sorted(set(s.username for s in self.slots.values()) | set(self.legacy))

    def owner_of_rule(self, rule_id):
        """The username whose rule this is, or None."""
        for slot in self.slots.values():
            if slot.rule and slot.rule["rule_id"] == rule_id:
                return slot.username
        for chain in self.legacy.values():
            if chain.rule and chain.rule["rule_id"] == rule_id:
                return chain.username
        return None

    def group_of(self, username):
        return next((g for g in self.groups.values() if username in g.members), None)

    @property
    def legacy_headers(self):
        """The 0.2 shared headers mapping, when no transport other than our legacy ones uses it."""
        mapping = self.snapshot.mappings.get(LEGACY_HEADERS)
        if mapping is None:
            return None
        legacy = set(c.transport["pk"] for c in self.legacy.values() if c.transport)
        users = [t for t in self.snapshot.transports.values() if t.get("headers_mapping") == mapping["pk"]]
        return mapping if all(t["pk"] in legacy for t in users) else None


__all__ = ["Ownership", "Slot", "Group", "LegacyChain", "Deployment"]
