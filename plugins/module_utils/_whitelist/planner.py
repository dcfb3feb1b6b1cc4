# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The whitelist's plan: from what was read and what the inventory says to what one run does. No I/O.

``plan_whitelist`` settles, in this order, and refuses anything wrong before the
runner writes a thing:

1. who is listed: present users (they must exist in authentik), absent ones, and
   users the whitelist still holds objects for although the inventory no longer
   lists them (removed with ``prune``, otherwise kept without access);
2. every present user's priorities: explicit, kept, or the lowest free one, the
   same on every listed resource; an explicit priority held by someone else's rule
   is an error, a kept one moves to a free one;
3. each rule's value: written from authentik's state when the rule is new, a value
   setting changed, the user is deactivated or followed by sessions; else the
   webhook's address stays;
4. the groups of users that share a notification rule;
5. what goes: objects of removed users, rules beyond ``max_addresses``, rules on
   resources no longer listed, and what slots supersede (an older version's chain
   that ``legacy.py`` adopted, a transport left by a rename).

A user's login history is read through the snapshot when a value must be
computed; everything else is data already read.
"""

from __future__ import annotations

from dataclasses import replace

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.body import BodySettings
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.holdings import may_hold
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.plan import (
    Deletion,
    EmailPlan,
    GroupPlan,
    GroupShrink,
    Plan,
    ResourcePlan,
    Reset,
    RulePlan,
    SharedPlan,
    SlotPlan,
    UserPlan,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.inputs import InputError


def plan_whitelist(w):
    """The Plan of one run for ``w`` (a whitelist.Whitelist, read), or InputError before any write."""
    if w.ownership.collisions:
        raise InputError("; ".join(c.message for c in w.ownership.collisions))
    teardown = w.settings.state == "absent"
    entries = _listed(w, teardown)
    priorities = _priorities(w, [e for e in entries if e["state"] == "present"])
    groups, placed = _groups(w, entries)
    users = tuple(_user_plan(w, e, priorities, placed.get(e["username"])) for e in entries)
    shrinks = _shrinks(w, groups, users)
    return Plan(users=users, shrinks=shrinks, groups=groups, shared=_shared(w, users, teardown),
                email=_email(w, users, teardown),
                retire_shared=tuple(Deletion(kind, view) for kind, view in w.ownership.superseded_shared),
                retire_keys=tuple(w.ownership.retired_keys),
                destination_group_pk=w.snapshot.group_pks.get(w.settings.destination_group),
                group_pk=w.snapshot.group_pks.get(w.settings.users_from_group),
                state=w.settings.state)


# -- 1. who is listed ---------------------------------------------------------------
def _listed(w, teardown):
    listed = [dict(username=u.username, priority=u.priority, state="absent" if teardown else u.state,
                   where=u.where, pruned=False) for u in w.users]
    missing = [e["username"] for e in listed if e["state"] == "present" and e["username"] not in w.snapshot.accounts]
    if missing:
        raise InputError("users: authentik has no user %s; create the user%s first or mark %s state: absent"
                         % (", ".join(repr(m) for m in missing), "s" if len(missing) > 1 else "",
                            "them" if len(missing) > 1 else "it"))
    names = set(e["username"] for e in listed)
    for username in w.ownership.usernames():
        if username not in names:
            # Kept without access only where a body mapping of today's scheme will still prove its rules ours.
            gone = teardown or w.settings.prune or not any(s.mapping for s in w.ownership.slots_of(username))
            listed.append(dict(username=username, priority=None, state="absent" if gone else "disabled",
                               where="unlisted user %r" % username, pruned=not teardown and w.settings.prune))
    return listed


# -- 2. priorities ---------------------------------------------------------------------
def _priorities(w, present):
    """{(username, n): priority} for every slot of every present user.

    Explicit priorities are claimed first, then kept ones (a kept one someone else holds moves), then the
    rest get the lowest free priority."""
    claimed, settled = {}, {}
    slots = [(entry, number) for entry in present for number in range(1, w.settings.max_addresses + 1)]
    kept = dict(((e["username"], n), _kept_priority(w, e["username"], n, _owned_rules(w, e["username"], n)))
                for e, n in slots)
    for entry, number in slots:
        if number == 1 and entry["priority"] is not None:
            _claim(w, entry, number, entry["priority"], _owned_rules(w, entry["username"], number), claimed)
            settled[(entry["username"], 1)] = entry["priority"]
    for entry, number in slots:
        key = (entry["username"], number)
        owned = _owned_rules(w, entry["username"], number)
        if key not in settled and kept[key] is not None and not _blocked(w, kept[key], owned, claimed):
            _claim(w, entry, number, kept[key], owned, claimed)
            settled[key] = kept[key]
    for entry, number in slots:
        key = (entry["username"], number)
        if key not in settled:
            settled[key] = _allocate(w, claimed)
            claimed[settled[key]] = key
    return settled


def _owned_rules(w, username, number):
    """{resource id: rule} the slot owns."""
    slot = w.ownership.slots.get((username, number))
    return dict(slot.rules) if slot else {}


def _kept_priority(w, username, number, owned):
    """The priority the slot already has: the one its body mapping records while a move is under way or no rule
    holds it, else its rules'."""
    slot = w.ownership.slots.get((username, number))
    recorded = slot.recorded_priority if slot else None
    if owned and (recorded is None or slot.body.previous_priority is None):
        priorities = set(r["priority"] for r in owned.values())
        return recorded if recorded in priorities else min(priorities)
    return recorded


def _blocked(w, priority, owned, claimed):
    """Whether another user claimed ``priority``, or a rule that is not the slot's own holds it on a listed
    resource."""
    if priority in claimed:
        return True
    for resource_id in w.deployment.resource_ids:
        mine = owned.get(resource_id)
        if any(mine is None or r["rule_id"] != mine["rule_id"]
               for r in w.snapshot.resource(resource_id).rules_at(priority)):
            return True
    return False


def _claim(w, entry, number, priority, owned, claimed):
    where = entry["where"]
    if priority in claimed:
        raise InputError("%s: priority %d is also used by user %r; each rule needs a priority of its own"
                         % (where, priority, claimed[priority][0]))
    for resource_id in w.deployment.resource_ids:
        mine = owned.get(resource_id)
        at = [r for r in w.snapshot.resource(resource_id).rules_at(priority)
              if not (mine and r["rule_id"] == mine["rule_id"])]
        if mine is None and len(at) > 1:
            raise InputError("%s: resource %d has %d rules with priority %d (rule ids %s); delete the extra ones"
                             % (where, resource_id, len(at), priority, ", ".join(str(r["rule_id"]) for r in at)))
        for rule in at:
            owner = w.ownership.owner_of_rule(resource_id, rule["rule_id"])
            if owner is not None and owner[0] != entry["username"]:
                raise InputError("%s: priority %d is held by the rule of user %r; choose another priority"
                                 % (where, priority, owner[0]))
            if owner is None:
                raise InputError("%s: priority %d collides with rule %d (%s %s %s) on resource %d, which this "
                                 "whitelist does not own; choose another priority"
                                 % (where, priority, rule["rule_id"], rule["action"], rule["match"], rule["value"],
                                    resource_id))
    claimed[priority] = (entry["username"], number)


def _allocate(w, claimed):
    start, end = w.settings.priority_range
    used = set(claimed)
    for resource_id in w.deployment.resource_ids:
        used |= set(r["priority"] for r in w.snapshot.resource(resource_id).rules)
    for priority in range(start, end + 1):
        if priority not in used:
            return priority
    raise InputError("priority_range %d-%d has no free priority left on resource%s %s"
                     % (start, end, "s" if len(w.deployment.resource_ids) > 1 else "",
                        ", ".join(str(r) for r in w.deployment.resource_ids)))


# -- 3. each user --------------------------------------------------------------------------
def _user_plan(w, entry, priorities, group):
    username, state = entry["username"], entry["state"]
    account = w.snapshot.accounts.get(username)
    existed = bool(w.ownership.slots_of(username))
    common = dict(username=username, state=state, where=entry["where"], pruned=entry["pruned"],
                  pk=account["pk"] if account else None, existed=existed)
    if state == "absent":
        return UserPlan(**dict(common, **_goes(w, username, state, keep_slots=0)))
    if state == "disabled":
        return UserPlan(resets=_resets(w, username), **dict(common, **_goes(w, username, state, keep_slots=None)))
    slots = tuple(_slot_plan(w, username, account, number, priorities[(username, number)])
                  for number in range(1, w.settings.max_addresses + 1))
    slots = _with_values(w, username, account, slots)
    return UserPlan(slots=slots, group=group, deactivated=not account["is_active"],
                    **dict(common, **_goes(w, username, state, keep_slots=len(slots))))


def _slot_plan(w, username, account, number, priority):
    slot = w.ownership.slots.get((username, number))
    owned = _owned_rules(w, username, number)
    # a revocation or a closing any of the user's body mappings records holds for every slot, a new one included
    body = BodySettings.of(w.settings, account["pk"], number, priority, w.recorded_of(username))
    rules = []
    for resource_id in w.deployment.resource_ids:
        name = w.deployment.transport_name(username, number, resource_id)
        transport = slot.transports.get(resource_id) if slot else None
        rules.append(RulePlan(resource_id, name, current=owned.get(resource_id), transport=transport))
    moving = next(((r["action"], r["priority"]) for r in owned.values()
                   if (r["action"], r["priority"]) != (body.action, priority)), None)
    return SlotPlan(number=number, priority=priority, mapping_name=w.deployment.slot_name(username, number),
                    body=body, mapping=slot.mapping if slot else None, rules=tuple(rules), moving_from=moving)


def _with_values(w, username, account, slots):
    """The rule values this run writes: from authentik's state where the webhook's cannot be kept (a new rule, a
    changed value setting, sessions, a deactivated user, or a rule holding an address that may not be one)."""
    def stale(slot_plan):
        recorded = w.ownership.slots.get((username, slot_plan.number))
        if recorded is None or recorded.body is None:
            return True
        if slot_plan.body.holds_other_values(recorded.body) or recorded.body.kept() != slot_plan.body.kept():
            return True
        return any(r.current is None or not may_hold(r.current, slot_plan.body) for r in slot_plan.rules)
    if not w.settings.follow_sessions and account["is_active"] and not any(stale(s) for s in slots):
        return slots
    values = w.snapshot.entries_of(username, slots[0].body)
    return tuple(replace(s, rules=tuple(replace(r, write=values[s.number - 1]) for r in s.rules)) for s in slots)


def _goes(w, username, state, keep_slots):
    """What of the user goes, as UserPlan fields: ``removals``, each rule while its transport still names it, then
    the transport, then the body mapping once no resource of the slot is left (slots beyond ``keep_slots``, None:
    every slot stays; resources no longer listed); and what the slots supersede, which goes last (``retire``),
    once the user's own objects are in place, except the notification rules of a user who does not stay, which
    stop first (``stops``)."""
    stops, removals, retire = [], [], []
    listed = set(w.deployment.resource_ids)
    for slot in w.ownership.slots_of(username):
        whole = keep_slots is not None and slot.number > keep_slots
        for resource_id in sorted(set(slot.rules) | set(slot.transports)):
            if whole or resource_id not in listed:
                if resource_id in slot.rules:
                    removals.append(Deletion("rule", slot.rules[resource_id], resource_id))
                if resource_id in slot.transports:
                    removals.append(Deletion("transport", slot.transports[resource_id]))
        if whole and slot.mapping is not None:
            removals.append(Deletion("mapping", slot.mapping))
        for kind, view in slot.superseded:
            if kind == "notification_rule" and (state != "present" or whole):
                stops.append(Deletion(kind, view))
            else:
                retire.append(Deletion(kind, view))
    return dict(stops=tuple(stops), removals=tuple(removals), retire=tuple(retire))


def _resets(w, username):
    """A user kept without access: every owned rule on a listed resource back to the placeholder."""
    placeholder = w.settings.placeholder
    return tuple(Reset(rid, rule, "IP", placeholder) for _slot, rid, rule in w.ownership.rules_of(username)
                 if rid in w.deployment.resource_ids and (rule["match"], rule["value"]) != ("IP", placeholder))


# -- 4. groups -----------------------------------------------------------------------------
def _groups(w, entries):
    """Users stay on their group's rule while it has room; others fill the first group with room."""
    size = w.settings.users_per_rule
    staying = [e["username"] for e in entries if e["state"] == "present"]
    members = dict((index, []) for index in w.ownership.groups)
    placed = {}
    for group in sorted(w.ownership.groups.values(), key=lambda g: g.index):
        for username in sorted(m for m in group.members if m in staying and m not in placed)[:size]:
            members[group.index].append(username)
            placed[username] = group.index
    for username in sorted(staying):
        if username in placed:
            continue
        index = next((i for i in sorted(members) if len(members[i]) < size), None)
        if index is None:
            index = next(i for i in range(1, len(members) + 2) if i not in members)
            members[index] = []
        members[index].append(username)
        placed[username] = index
    plans = []
    for index in sorted(i for i, m in members.items() if m):
        group = w.ownership.groups.get(index)
        pks = tuple(sorted(w.snapshot.accounts[u]["pk"] for u in members[index]))
        plans.append(GroupPlan(index, w.deployment.group_name(index), tuple(members[index]), pks,
                               rule=group.rule if group else None, policy=group.policy if group else None,
                               bindings=tuple(group.bindings) if group else ()))
    return tuple(plans), placed


def _shrinks(w, groups, users):
    """Group rules that lose transports (users leaving, slots or resources going) or go altogether, before
    anything else."""
    kept = dict((g.index, g) for g in groups)
    staying = set()
    for user in users:
        if user.state == "present":
            gone = set(d.current["pk"] for d in user.removals if d.kind == "transport")
            staying |= set(t["pk"] for slot in w.ownership.slots_of(user.username)
                           for t in slot.transports.values() if t["pk"] not in gone)
    shrinks = []
    for group in sorted(w.ownership.groups.values(), key=lambda g: g.index):
        if group.index not in kept:
            if group.rule is not None or group.policy is not None:
                shrinks.append(GroupShrink(group.index, group.rule, None, group.policy))
        elif group.rule is not None:
            sent = group.rule.get("transports") or []
            keep = tuple(pk for pk in sent if pk in staying)
            if set(keep) != set(sent):
                shrinks.append(GroupShrink(group.index, group.rule, keep))
    return tuple(shrinks)


# -- 5. shared objects --------------------------------------------------------------------
def _shared(w, users, teardown):
    settings = w.settings
    name = settings.headers_mapping or w.deployment.headers_name
    states = [w.snapshot.resource(rid) for rid in w.deployment.resource_ids]
    resources = tuple(ResourcePlan(s.id, s.view, shared_policy=bool(s.shared)) for s in states)
    if not teardown:
        _check_shared_policies(w)
    needed = not teardown and any(u.state == "present" for u in users)
    ours = bool(settings.webhook_api_key or settings.manage_webhook_key or name == w.deployment.headers_name)
    return SharedPlan(resources=resources, headers_name=name, headers=w.snapshot.mappings.get(name),
                      keep_headers=needed, headers_ours=ours)


def _check_shared_policies(w):
    """A resource on a shared policy takes applyRules from that policy, which the whitelist never changes: refuse
    to run while its rules are off (they would let nobody in, and nothing would say so)."""
    for resource_id in w.deployment.resource_ids:
        shared = w.snapshot.resource(resource_id).shared
        if not shared:
            continue
        if shared.get("unreadable"):
            raise InputError("resource %d is on shared resource policy %s, which decides whether its rules apply; "
                             "the playbook's key needs the getResourcePolicy action to read it (%s)"
                             % (resource_id, shared["id"], shared["unreadable"]))
        if not shared["apply_rules"]:
            raise InputError("resource %d is on shared resource policy %r, whose rules are off (applyRules false): "
                             "Pangolin would ignore every user's rule. Turn rules on in that policy in Pangolin; the "
                             "whitelist never changes a shared policy" % (resource_id, shared["name"] or shared["id"]))


def _email(w, users, teardown):
    wanted = None if teardown else w.settings.login_email
    email = w.ownership.email
    return EmailPlan(name=w.deployment.email_name, wanted=wanted,
                     member_pks=tuple(sorted(u.pk for u in users if u.state == "present")),
                     group_pk=w.snapshot.group_pks.get(wanted.group) if wanted and wanted.group else None,
                     rule=email["notification_rules"], policy=email["policies"], transport=email["transports"],
                     bindings=tuple(w.ownership.email_bindings))


__all__ = ["plan_whitelist"]
