# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which objects of a snapshot belong to a deployment: decided here, and nowhere else.

An ACCEPT rule bypasses SSO, so "ours" is proven, never presumed. A name or a
priority alone proves nothing: another deployment (two Pangolin servers sharing
one authentik) or the operator can hold either.

* A Pangolin rule is ours when a transport of this deployment that posts to this
  whitelist's own webhook URL (scheme, host, port and path prefix) names it, and
  it has our shape (our action, an IP or CIDR match) at the priority the
  deployment's body mapping records (or, while a rule moves, the priority it
  records as the previous one). That is the proof; a rule created this run is
  ours too.
* A body mapping whose transport is gone, or names a rule that is gone (a run
  that stopped half-way), may adopt the one rule at the priority it records:
  of our shape, posted to by nobody, holding the placeholder or an address
  authentik's state gives this user. Anything else there keeps the priority taken.
* A transport, body mapping or notification rule that carries this deployment's
  name but posts elsewhere, names a rule that is not ours, or was not written by
  this collection, is a collision: the run refuses before any write, and never
  rewrites it.

Objects a slot replaces (a transport left by a rename that stopped half-way,
or the chain of an older version that ``legacy.py`` adopts as the slot's) are
the slot's ``superseded`` objects: they go once the slot's own are in place.

Everything the whitelist, the doctor and expiry write, delete, reset or retire
is looked up through this class.
"""

from __future__ import annotations

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._pangolin.values import ADDRESS_MATCHES
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.urls import same_base


class Slot(object):
    """Rule ``n`` of a user: its body mapping, and per resource its transport and proven rule."""

    def __init__(self, username, number):
        self.username = username
        self.number = number
        self.mapping = None  # the stored view
        self.body = None  # its BodySettings, when this collection rendered it
        self.transports = {}  # resource id -> transport view
        self.rules = {}  # resource id -> rule view, proven ours (or adopted by the recorded priority)
        # (kind, view) of objects the slot replaces: a second transport for a resource that has one, an older
        # version's chain. A notification rule among them is stopped before the slot's rules go.
        self.superseded = []

    @property
    def recorded_priority(self):
        return self.body.priority if self.body else None

    @property
    def user_pk(self):
        return self.body.user_pk if self.body else None

    def proves(self, rule):
        """Whether ``rule``, named by one of this slot's transports, has the shape its body mapping recorded."""
        if self.body is None:
            return False
        return rule["match"] in ADDRESS_MATCHES and (rule["action"], rule["priority"]) in self.body.shapes()


class Group(object):
    """Notification rule ``k`` of the deployment, its policy and binding, and the users on it."""

    def __init__(self, index):
        self.index = index
        self.rule = None
        self.policy = None
        self.policy_values = {}
        self.bindings = []
        self.members = set()  # usernames whose transports the rule sends through

    @property
    def user_pks(self):
        users = self.policy_values.get("users")
        return [pk for pk in users if isinstance(pk, int)] if isinstance(users, list) else []


class Collision(object):
    """An object that carries this deployment's name but is not provably its own; ``username`` when the name is
    one of a user's objects, ``check`` the link it breaks (as the doctor names them)."""

    def __init__(self, what, name, message, username=None, check="collision"):
        self.what = what
        self.name = name
        self.message = message
        self.username = username
        self.check = check

    def __repr__(self):
        return "Collision(%r)" % self.message


class Ownership(object):
    def __init__(self, snapshot, deployment, settings, plausible=None):
        """``plausible(username, rule)``: whether a rule's value is the placeholder or an address authentik's
        state gives the user (read on demand: it may cost the user's login history)."""
        self.snapshot = snapshot
        self.deployment = deployment
        self.settings = settings
        self.base = settings.webhook_url
        self.plausible = plausible or (lambda username, rule: rule["value"] == settings.placeholder)
        self.slots = {}  # (username, n) -> Slot
        self.groups = {}  # k -> Group
        self.collisions = []
        self.superseded_shared = []  # (kind, view) of shared objects an older version left: they go last
        self.retired_keys = []  # (key id, name) of Pangolin keys that go once nothing sends them
        self._resolve()

    def _where(self):
        return "jellyfin_whitelist_instance %r" % self.deployment.instance

    def _collide(self, what, name, message, username=None, check="collision"):
        self.collisions.append(Collision(what, name, "%s %r carries the name of this whitelist (%s) but %s"
                                         % (what, name, self._where(), message), username, check))

    # -- resolution ------------------------------------------------------
    def _resolve(self):
        snap, dep = self.snapshot, self.deployment
        for name, mapping in snap.mappings.items():
            parsed = dep.parse_slot(name)
            if parsed:
                slot = self._slot(*parsed)
                slot.mapping, slot.body = mapping, snap.bodies.get(name)
                if slot.body is None:
                    self._collide("webhook mapping", name, "was not written by this collection", parsed[0],
                                  "body_mapping")
        for name in sorted(snap.transports):
            parsed = dep.parse_transport(name)
            if parsed:
                self._transport(name, *parsed)
        unproven = [(slot, resource_id, transport) for slot in list(self.slots.values())
                    for resource_id, transport in sorted(slot.transports.items())
                    if not self._prove(slot, resource_id, transport)]
        for slot, resource_id, transport in unproven:
            self._misdirected(slot, resource_id, transport)
        for slot in list(self.slots.values()):
            self._adopt_recorded(slot)
        self._resolve_groups()
        self.email = dict((store, getattr(snap, store).get(dep.email_name))
                          for store in ("notification_rules", "policies", "transports"))
        email_transport = self.email["transports"]
        if email_transport is not None and email_transport.get("mode") != "email":
            self._collide("notification transport", email_transport["name"],
                          "is a %s transport, not the login e-mail's" % email_transport.get("mode"))
        self.email_bindings = []

    def _transport(self, name, username, number, named_resource):
        transport = self.snapshot.transports[name]
        target = self.snapshot.targets.get(name)
        url = transport.get("webhook_url") or "(no URL)"
        if transport.get("mode") != "webhook":
            return self._collide("notification transport", name, "is in mode %r, not webhook"
                                 % transport.get("mode"), username, "transport")
        if target is None or not same_base(target.base, self.base):
            why = ("posts to %s, which is not a Pangolin rule URL" % url if same_base(url, self.base) else
                   "posts to %s, not to this whitelist's Pangolin %s" % (url, self.base))
            return self._collide("notification transport", name, why, username, "transport")
        if named_resource is not None and target.resource_id != named_resource:
            return self._collide("notification transport", name, "posts to %s, a rule of resource %d, not of "
                                 "resource %d" % (url, target.resource_id, named_resource), username, "transport")
        slot = self._slot(username, number)
        if target.resource_id in slot.transports:
            # two of ours for one rule (a rename that stopped half-way): the one named as it should be stays
            kept = slot.transports[target.resource_id]
            canonical = self.deployment.transport_name(username, number, target.resource_id)
            if name == canonical:
                slot.superseded.append(("transport", kept))
                slot.transports[target.resource_id] = transport
            else:
                slot.superseded.append(("transport", transport))
            return None
        slot.transports[target.resource_id] = transport
        return None

    def _prove(self, slot, resource_id, transport):
        """Whether the rule the transport names is the slot's, by the proof; a rule that is gone proves nothing
        and refuses nothing."""
        target = self.snapshot.targets[transport["name"]]
        rule = self.snapshot.resource(resource_id).rule(target.rule_id)
        if rule is None:
            return True
        if slot.proves(rule):
            slot.rules[resource_id] = rule
            return True
        return False

    def _misdirected(self, slot, resource_id, transport):
        """A transport of ours naming a rule the slot cannot prove: another slot's rule (it is re-pointed or goes),
        or a rule that is not the whitelist's at all, which refuses the run."""
        target = self.snapshot.targets[transport["name"]]
        if self.owner_of_rule(resource_id, target.rule_id) is not None:
            return
        rule = self.snapshot.resource(resource_id).rule(target.rule_id)
        what = "rule %d of resource %d (%s %s %s, priority %d)" % (rule["rule_id"], resource_id, rule["action"],
                                                                   rule["match"], rule["value"], rule["priority"])
        if slot.body is None:
            why, check = "its body mapping is missing, so nothing proves the rule this whitelist's", "body_mapping"
        elif rule["action"] not in set(action for action, _priority in slot.body.shapes()):
            why, check = "it is a %s rule, not %s" % (rule["action"], slot.body.action), "rule"
        elif rule["match"] not in ADDRESS_MATCHES:
            why, check = "it matches %s, not an IP address" % rule["match"], "rule"
        else:
            why, check = ("the body mapping %r sends priority %s but the rule has priority %s"
                          % (slot.mapping["name"], slot.body.priority, rule["priority"]), "priority")
        self._collide("notification transport", transport["name"],
                      "names %s, which nothing proves this whitelist's: %s. Put the rule back, delete that "
                      "transport in authentik if it is a leftover, or give this whitelist its own "
                      "jellyfin_whitelist_instance" % (what, why), slot.username, check)

    def _adopt_recorded(self, slot):
        """A slot that lost its rule on a resource adopts the one rule at the priority it records, if plausibly
        its own; any other rule there keeps that priority taken."""
        if slot.body is None:
            return
        for resource_id in sorted(set(self.deployment.resource_ids) | set(slot.transports)):
            if resource_id in slot.rules:
                continue
            state = self.snapshot.resource(resource_id)
            priorities = set(priority for _action, priority in slot.body.shapes())
            found = [r for r in state.rules if r["priority"] in priorities and self.owner_of_rule(
                resource_id, r["rule_id"]) is None and not self.snapshot.transports_to(resource_id, r["rule_id"])]
            if len(found) == 1 and slot.proves(found[0]) and self.plausible(slot.username, found[0]):
                slot.rules[resource_id] = found[0]

    def _resolve_groups(self):
        snap, dep = self.snapshot, self.deployment
        for name, rule in snap.notification_rules.items():
            index = dep.parse_group(name)
            if index is not None:
                self._group(index).rule = rule
        for name, policy in snap.policies.items():
            index = dep.parse_group(name)
            if index is not None:
                group = self._group(index)
                group.policy, group.policy_values = policy, snap.policy_values.get(name) or {}
        ours = dict((t["pk"], slot.username) for slot in self.slots.values()
                    for t in list(slot.transports.values()) + [v for kind, v in slot.superseded if kind == "transport"])
        named = set(t["pk"] for name, t in snap.transports.items() if dep.parse_transport(name))
        for group in self.groups.values():
            sent = (group.rule or {}).get("transports") or []
            # a transport of another name is another deployment's (one of ours that collides is refused on its own)
            foreign = sorted(t["name"] for t in snap.transports.values() if t["pk"] in sent and t["pk"] not in named)
            if foreign:
                self._collide("notification rule", group.rule["name"], "sends transports that are not this "
                              "whitelist's (%s)" % ", ".join(repr(n) for n in foreign))
            group.members = set(ours[pk] for pk in sent if pk in ours)

    def _slot(self, username, number):
        return self.slots.setdefault((username, number), Slot(username, number))

    def adopt(self, username, number, resource_id=None, rule=None, superseded=()):
        """An older install's objects as slot ``number`` of the user: its rule (proven by the caller, and no
        other slot's) becomes the slot's rule on that resource unless the slot has one there; the rest is
        superseded."""
        slot = self._slot(username, number)
        free = rule is not None and self.owner_of_rule(resource_id, rule["rule_id"]) is None
        if free and resource_id not in slot.rules:
            slot.rules[resource_id] = rule
        slot.superseded.extend(superseded)
        return slot

    def _group(self, index):
        return self.groups.setdefault(index, Group(index))

    def attach_bindings(self, more_rule_pks=()):
        """Read the bindings of our group rules (and of ``more_rule_pks``) in one request."""
        pks = [g.rule["pk"] for g in self.groups.values() if g.rule] + list(more_rule_pks)
        email_rule = self.email["notification_rules"]
        if email_rule:
            pks.append(email_rule["pk"])
        self.snapshot.read_bindings(pks)
        if email_rule:
            self.email_bindings = self.snapshot.bindings_of(email_rule["pk"])
        for group in self.groups.values():
            if group.rule:
                group.bindings = self.snapshot.bindings_of(group.rule["pk"])
        return self

    # -- questions -------------------------------------------------------
    def slots_of(self, username):
        return sorted((s for s in self.slots.values() if s.username == username), key=lambda s: s.number)

    def usernames(self):
        """Every user this deployment holds objects for."""
        return sorted(set(s.username for s in self.slots.values()))

    def owner_of_rule(self, resource_id, rule_id):
        """(username, slot number) whose rule this is, or None."""
        for slot in self.slots.values():
            rule = slot.rules.get(resource_id)
            if rule is not None and rule["rule_id"] == rule_id:
                return slot.username, slot.number
        return None

    def rules_of(self, username):
        """[(slot, resource id, rule)] of every rule the whitelist owns for the user."""
        return [(slot, rid, rule) for slot in self.slots_of(username) for rid, rule in sorted(slot.rules.items())]

    def notification_rules(self):
        """This whitelist's notification rules: its groups', its login e-mail's and those its slots supersede,
        less any refused as a collision. Each costs authentik's worker a handler task per event."""
        refused = set(c.name for c in self.collisions if c.what == "notification rule")
        found = [g.rule for g in self.groups.values()] + [self.email["notification_rules"]]
        found += [view for slot in self.slots.values() for kind, view in slot.superseded if kind == "notification_rule"]
        return dict((rule["pk"], rule) for rule in found if rule is not None and rule["name"] not in refused)

    def group_of(self, username):
        return next((g for g in sorted(self.groups.values(), key=lambda g: g.index) if username in g.members), None)


__all__ = ["Ownership", "Slot", "Group", "Collision"]
