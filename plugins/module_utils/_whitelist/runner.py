# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Doing a plan: one reconcile step per object, phase by phase, in check mode too.

The order follows what authentik's worker pays for each write (one task per
notification rule for every event, this run's own writes included) and what a
run that stops anywhere must leave behind:

1. stop what goes from firing: notification rules that go or lose transports, the
   login e-mail when unset, superseded notification rules of users who leave;
2. removals: each rule while its transport still names it, then the transport, then
   the body mapping;
3. shared objects: ``applyRules`` on each resource, the webhook key, the headers mapping;
4. the chains of present users: the body mapping first (it records the rule's priority
   before the rule exists), then each rule, then its transport; users kept without
   access get their rules reset;
5. the group policies (expression policies cost the worker nothing), then, once authentik's
   worker dispatched this run's earlier events, the notification rules and their bindings,
   and the login e-mail;
6. what the new chains replace: what the users' slots supersede (an older version's
   chain), the shared objects an older version left and its key, the rotated key; on a
   teardown the headers mapping and the managed key.

Every pk the runner learns (a mapping, a transport, a rule id) goes into
``Learned``, which it returns; no step reads another's fields.
"""

from __future__ import annotations

import time

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.objects import (
    BindingKind,
    EmailTransport,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.render import (
    group_policy_expression,
    login_email_policy_expression,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.urls import rule_url
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.webhook_key import (
    headers_mapping_expression,
)

# How long a rotation waits for webhook tasks rendered with the old key before deleting it
# (authentik's outgoing requests time out after 30 s); without a task API it waits all of it.
KEY_GRACE = 35.0
# How long a run lets authentik's worker dispatch the events of its own writes before it makes new
# notification rules (each event still queued then would cost one more task per new rule).
DISPATCH_WAIT = 10.0
DISPATCH_ACTOR = "authentik.events.tasks.event_trigger_dispatch"
TRANSPORT_ACTOR = "authentik.events.tasks.notification_transport"
# A task in one of these states may still render the old key (2026.5: five states before done/rejected; 2026.8 adds
# one, which older servers refuse as a filter choice).
UNFINISHED = ["queued", "consumed", "preprocess", "running", "postprocess"]
UNFINISHED_SINCE_2026_8 = ["waiting_for_dependencies"]


class Learned(object):
    """What the run learned: pks of what it made or found, by kind and name (a body mapping and its transport
    share a name); the rule id each transport must post to."""

    def __init__(self):
        self.pks = {}  # (what, name) -> pk
        self.rule_ids = {}  # transport name -> rule id
        self.headers_pk = None

    def pk(self, what, name, outcome=None):
        if outcome is not None and outcome.after and outcome.after.get("pk") is not None:
            self.pks[(what, name)] = outcome.after["pk"]
        return self.pks.get((what, name), "(%s %r, not created yet)" % (what, name))


class Runner(object):
    def __init__(self, whitelist, plan, reconciler):
        self.w = whitelist
        self.plan = plan
        self.r = reconciler
        self.authentik = whitelist.authentik
        self.snap = whitelist.snapshot
        self.settings = whitelist.settings
        self.key = whitelist.key  # webhook_key.WebhookKey, when the collection keeps its own key
        self.learned = Learned()
        self.outcomes = dict((u.username, []) for u in plan.users)

    def run(self):
        self._stop_firing()
        self._removals()
        self._shared()
        for user in self.plan.users:
            self._track(user.username, lambda: self._chain(user))
        self._notification_rules()
        self._retire()
        mine = set(id(o) for found in self.outcomes.values() for o in found)
        # An object written twice (a rule that shrinks first, then takes the new transports) is named once.
        shared = list(dict.fromkeys("%s %s" % (o.operation, o.kind.describe(o.desired)) for o in self.r.outcomes
                                    if o.changed and id(o) not in mine))
        return self.outcomes, shared, self.learned

    def _track(self, username, step):
        before = len(self.r.outcomes)
        step()
        self.outcomes.setdefault(username, []).extend(self.r.outcomes[before:])

    def _delete(self, kind, current, resource_id=None):
        kinds = dict(mapping=self.snap.mapping_kind, transport=self.snap.transport_kind,
                     policy=self.snap.policy_kind, notification_rule=self.snap.notification_kind)
        kind_object = self.snap.resource(resource_id).rule_kind if kind == "rule" else kinds[kind]
        key = dict(priority=current["priority"]) if kind == "rule" else dict(name=current["name"])
        return self.r.ensure(kind_object, key, "absent", current=current)

    # -- 1. stop what goes from firing --------------------------------------------
    def _stop_firing(self):
        orphaned = []
        for shrink in self.plan.shrinks:
            if shrink.keep is None:
                if shrink.rule is not None:
                    self._delete("notification_rule", shrink.rule)
                orphaned.append(shrink.policy)
            else:
                self.r.ensure(self.snap.notification_kind, dict(name=shrink.rule["name"], transports=list(shrink.keep)),
                              current=shrink.rule, lookup=False)
        for user in self.plan.users:
            self._track(user.username, lambda: [self._delete(d.kind, d.current) for d in user.stops])
        email = self.plan.email
        if email.wanted is None:
            for kind, view in (("notification_rule", email.rule), ("policy", email.policy),
                               ("transport", email.transport)):
                if view is not None:
                    self._delete(kind, view)
        for policy in orphaned:
            if policy is not None:
                self._delete("policy", policy)

    # -- 2. removals ----------------------------------------------------------------------
    def _removals(self):
        for user in self.plan.users:
            self._track(user.username, lambda: [self._delete(d.kind, d.current, d.resource_id) for d in user.removals])

    # -- 3. shared objects ----------------------------------------------------------------
    def _shared(self):
        shared = self.plan.shared
        if self.settings.apply_rules and self.plan.state == "present":
            for resource in shared.resources:
                if not resource.shared_policy:
                    self.r.ensure(self.snap.resource(resource.resource_id).settings_kind, {"apply_rules": True},
                                  current=resource.view, lookup=False)
        if not shared.keep_headers:
            return
        api_key = self.settings.webhook_api_key
        if self.key is not None:
            api_key = self.key.ensure(self.r)
        if api_key is None:
            self.learned.headers_pk = (shared.headers or {}).get("pk")
            return
        outcome = self.r.ensure(self.snap.mapping_kind, dict(name=shared.headers_name,
                                                             expression=headers_mapping_expression(api_key)),
                                current=shared.headers, lookup=False)
        self.learned.headers_pk = self.learned.pk("webhook mapping", shared.headers_name, outcome)

    # -- 4. chains ------------------------------------------------------------------------
    def _chain(self, user):
        for reset in user.resets:
            desired = dict(priority=reset.current["priority"], action=reset.current["action"],
                           enabled=reset.current["enabled"], match=reset.match, value=reset.value)
            self.r.ensure(self.snap.resource(reset.resource_id).rule_kind, desired, current=reset.current,
                          lookup=False)
        for slot in user.slots:
            self._slot(slot)

    def _slot(self, slot):
        # The body mapping first: it records the rule's priority before the rule exists. While the rules move, it
        # also records where they come from, so a run that stops half-way still proves them ours.
        first = slot.body
        if slot.moving_from is not None:
            action, priority = slot.moving_from
            first = slot.body.with_changes(previous_action=action if action != slot.body.action else None,
                                           previous_priority=priority if priority != slot.priority else None)
        mapping = self._body(slot.mapping_name, first, slot.mapping)
        # Transport names are unique in authentik: the transport that gives up the plain name (its resource is no
        # longer listed first) is renamed before the first resource's transport takes that name.
        for rule in sorted(slot.rules, key=lambda r: not _gives_up_plain_name(slot, r)):
            self._rule(slot, rule)
        if first != slot.body:
            self._body(slot.mapping_name, slot.body, mapping.after)

    def _body(self, name, body, current):
        outcome = self.r.ensure(self.snap.mapping_kind, dict(name=name, expression=body.expression()),
                                current=current, lookup=False)
        self.learned.pk("webhook mapping", name, outcome)
        return outcome

    def _rule(self, slot, plan):
        desired = dict(priority=slot.priority, action=slot.body.action, enabled=True)
        if plan.current is None or plan.write is not None:
            match, value = plan.write or ("IP", self.settings.placeholder)
            desired.update(match=match, value=value)
        rule = self.r.ensure(self.snap.resource(plan.resource_id).rule_kind, desired, current=plan.current,
                             lookup=False)
        rule_id = rule.after["rule_id"] if rule.after else None
        self.learned.rule_ids[plan.transport_name] = rule_id
        target = rule_id if rule_id is not None else "(rule id of priority %d, not created yet)" % slot.priority
        transport = dict(name=plan.transport_name, mode="webhook", send_once=True,
                         body_mapping=self.learned.pk("webhook mapping", slot.mapping_name),
                         headers_mapping=self.learned.headers_pk,
                         webhook_url=rule_url(self.settings.webhook_url, plan.resource_id, target))
        outcome = self.r.ensure(self.snap.transport_kind, transport, current=plan.transport, lookup=False)
        pk = self.learned.pk("notification transport", plan.transport_name, outcome)
        self.snap.notification_kind.transport_names[str(pk)] = plan.transport_name

    # -- 5. notification rules --------------------------------------------------------------
    def _notification_rules(self):
        """The policies first, then (once the worker dispatched the events of every write so far) the rules and
        their bindings: an event still queued when a rule appears costs a task more for that rule."""
        policies = [self._group_policy(group) for group in self.plan.groups]
        email = self._email_policy_and_transport()
        if any(g.rule is None for g in self.plan.groups) or (email and self.plan.email.rule is None):
            self._let_the_worker_dispatch()
        for group, policy in zip(self.plan.groups, policies):
            self._group(group, policy)
        if email:
            self._email_rule(*email)

    def _group_policy(self, group):
        return self.r.ensure(self.snap.policy_kind, dict(name=group.name, expression=group_policy_expression(
            list(group.member_pks), self.settings.follow_sessions, self.plan.group_pk)), current=group.policy,
            lookup=False)

    def _group(self, group, policy):
        transports = [self.learned.pk("notification transport", slot_rule.transport_name)
                      for username in group.members for slot in self.plan.user(username).slots
                      for slot_rule in slot.rules]
        desired = dict(name=group.name, transports=transports, severity="notice")
        desired.update(self._recipient())
        rule = self.r.ensure(self.snap.notification_kind, desired, current=group.rule, lookup=False)
        self._bind(group.name, rule, policy, group.bindings)

    def _recipient(self):
        if self.plan.destination_group_pk is not None:
            return dict(destination_group=self.plan.destination_group_pk)
        return dict(destination_event_user=True)

    def _bind(self, name, rule, policy, bindings):
        binding = BindingKind(self.authentik, (rule.after or {}).get("pk"), (policy.after or {}).get("pk"), name,
                              bindings=list(bindings), target_name=name)
        exists = (rule.after or {}).get("pk") is not None and (policy.after or {}).get("pk") is not None
        self.r.ensure(binding, dict(order=0, enabled=True, negate=False), lookup=exists)

    def _email_policy_and_transport(self):
        email = self.plan.email
        if email.wanted is None:
            return None
        policy = self.r.ensure(self.snap.policy_kind, dict(name=email.name, expression=login_email_policy_expression(
            list(email.member_pks))), current=email.policy, lookup=False)
        transport = self.r.ensure(self.snap.transport_kind, EmailTransport.desired(email.name, email.wanted),
                                  current=email.transport, lookup=False)
        return policy, transport

    def _email_rule(self, policy, transport):
        email = self.plan.email
        desired = dict(name=email.name, transports=[self.learned.pk("notification transport", email.name, transport)],
                       severity="notice")
        if email.wanted.group:
            desired.update(destination_group=email.group_pk, destination_event_user=False)
        else:
            desired.update(destination_event_user=True, destination_group=None)
        rule = self.r.ensure(self.snap.notification_kind, desired, current=email.rule, lookup=False)
        self._bind(email.name, rule, policy, email.bindings)

    def _let_the_worker_dispatch(self):
        """authentik dispatches an event to the rules that exist when its task runs, so the events of this
        run's writes must be dispatched before new rules appear; bounded, and only where the task API shows it."""
        if self.r.check_mode or not self.r.changed:
            return
        deadline = time.time() + DISPATCH_WAIT
        while time.time() < deadline:
            queued = self.authentik.tasks({"actor_name": DISPATCH_ACTOR, "state": "queued"}, page_size=1)
            if queued is None or not queued[1]:
                return
            time.sleep(0.2)

    # -- 6. what the new chains replace ---------------------------------------------------------
    def _retire(self):
        # Superseded notification rules stop first; shared leftovers (an older version's headers mapping, whose
        # key only its chains show to be the collection's) go before those chains, so a run that stops half-way
        # leaves chains the next run finds, never the mapping alone.
        for stopping in (True, False):
            for user in self.plan.users:
                self._track(user.username, lambda: [self._delete(d.kind, d.current) for d in user.retire
                                                    if (d.kind == "notification_rule") is stopping])
            if stopping:
                for deletion in self.plan.retire_shared:
                    self._delete(deletion.kind, deletion.current)
                if self.key is not None:
                    for key_id, name in self.plan.retire_keys:
                        self.key.retire_other(self.r, key_id, name)
        shared = self.plan.shared
        if not shared.keep_headers:
            if shared.headers is not None and shared.headers_ours:
                self._delete("mapping", shared.headers)
            if self.key is not None:
                self.key.retire(self.r, keep=False)
            return
        if self.key is not None:
            if self.key.retiring() and not self.r.check_mode:
                self._wait_for_old_key_tasks()
            self.key.retire(self.r)

    def _wait_for_old_key_tasks(self):
        """Let webhook tasks that may have rendered the old key finish before the key goes (no 401 window)."""
        deadline = time.time() + KEY_GRACE
        while time.time() < deadline:
            states = UNFINISHED + (UNFINISHED_SINCE_2026_8 if self.authentik.at_least((2026, 8)) else [])
            running = self.authentik.tasks({"actor_name": TRANSPORT_ACTOR, "aggregated_status": states}, page_size=1)
            if running is None:  # no task API (before 2025.8): the whole grace period
                time.sleep(max(0.0, deadline - time.time()))
                return
            if not running[1]:
                return
            time.sleep(0.5)


def _gives_up_plain_name(slot, rule):
    """Whether the rule's transport holds the slot's plain name (its body mapping's) and is to be renamed."""
    current = (rule.transport or {}).get("name")
    return current == slot.mapping_name and rule.transport_name != current


__all__ = ["Runner", "Learned", "KEY_GRACE", "DISPATCH_WAIT"]
