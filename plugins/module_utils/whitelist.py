# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The login → webhook → Pangolin rule chain for many users at once.

Per user, per address kept (``max_addresses``): a Pangolin ACCEPT rule at its
own priority, a body mapping and a webhook transport to that rule. Users share
notification rules, up to ``users_per_rule`` on each: one rule, one policy and
one binding per group of users, so every authentik event costs the worker one
task per group instead of one per user. Because one login makes authentik post
every transport of its group, a body never comes from the event: it is computed
from authentik's state (``render.whitelist_body_expression``), and a POST caused
by another user's login writes what is already there.

The order of the writes follows what the worker pays for them: every write is
an event, and every event costs one task per notification rule. Rules that go
are deleted (or shrink) first, then the per-rule objects are written, and the
notification rules are created last. A user's body mapping is written before
the rule it records, and a rule is deleted while its transport still names it,
so a run that stops anywhere leaves nothing the next run cannot find.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.addresses import whitelist_entries
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.api_client import ApiError
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.authentik import (
    DESTINATION_RENAME_SINCE,
    HEADERS_MAPPING_SINCE,
    SESSIONS_IN_DATABASE_SINCE,
    AuthentikClient,
    authentik_argument_spec,
    parse_time,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.authentik_objects import (
    BindingKind,
    EmailTransport,
    check_name,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.deployment import (
    LEGACY_KEY,
    Deployment,
    check_instance,
    default_instance,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.ownership import Ownership
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.pangolin import (
    PangolinClient,
    pangolin_argument_spec,
    resource_selector_spec,
    selected_resource_id,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.pangolin_objects import (
    PRIORITY_MAX,
    PRIORITY_MIN,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.pangolin_values import rule_value_error
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.reconcile import InputError
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.render import (
    check_ipv6_prefix,
    group_policy_expression,
    headers_mapping_expression,
    login_email_policy_expression,
    whitelist_body_expression,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.snapshot import WhitelistSnapshot, as_stored
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.webhook_key import WebhookKey, bearer_in, sends_key

# How long a rotation waits for webhook tasks rendered with the old key before deleting it
# (authentik's outgoing requests time out after 30 s); without a task API it waits all of it.
KEY_GRACE = 35.0
# How long a run lets authentik's worker dispatch the events of its own writes before it makes new
# notification rules (each event still queued then would cost one more task per new rule).
DISPATCH_WAIT = 10.0
DISPATCH_ACTOR = "authentik.events.tasks.event_trigger_dispatch"


def validate_users(users):
    """Each entry checked and normalised: username, priority (int or None), state, where."""
    if not isinstance(users, list):
        raise InputError("users must be a list of {username, priority, state} entries")
    seen = {}
    checked = []
    for index, entry in enumerate(users):
        where = "users[%d]" % index
        if not isinstance(entry, dict):
            raise InputError("%s must be a dict with a username, got %r" % (where, entry))
        unknown = set(k for k, v in entry.items() if v is not None) - {"username", "priority", "state"}
        if unknown:
            raise InputError("%s has unknown keys %s (allowed: username, priority, state)"
                             % (where, ", ".join(sorted(map(str, unknown)))))
        username = check_name(entry.get("username"), "%s.username" % where)
        where = "users[%d] (%s)" % (index, username)
        if username in seen:
            raise InputError("%s: username %r is listed twice (also users[%d])" % (where, username, seen[username]))
        seen[username] = index
        state = entry.get("state") or "present"
        if state not in ("present", "absent"):
            raise InputError("%s.state must be present or absent, got %r" % (where, state))
        priority = entry.get("priority")
        if priority is not None:
            if isinstance(priority, str) and re.match(r"^-?\d+$", priority.strip()):
                priority = int(priority)
            if isinstance(priority, bool) or not isinstance(priority, int):
                raise InputError("%s.priority must be an integer, got %r" % (where, priority))
            if not PRIORITY_MIN <= priority <= PRIORITY_MAX:
                raise InputError("%s.priority %d is out of range" % (where, priority))
        checked.append(dict(username=username, priority=priority, state=state, where=where))
    return checked


def api_base(url):
    """Pangolin's base URL without the API's ``/v1``, to which rule paths are appended."""
    url = url.rstrip("/")
    return url[:-3] if url.endswith("/v1") else url


def check_placeholder(value, option="placeholder"):
    error = rule_value_error("IP", value)
    if error:
        raise InputError("%s %r %s" % (option, value, error))
    return value


def check_priority_range(start, end):
    for option, value in (("priority_start", start), ("priority_end", end)):
        if isinstance(value, bool) or not isinstance(value, int) or not PRIORITY_MIN <= value <= PRIORITY_MAX:
            raise InputError("%s must be an integer, got %r" % (option, value))
    if start > end:
        raise InputError("priority_start %d is greater than priority_end %d" % (start, end))
    return start, end


def check_count(value, option, low, high):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError("%s must be an integer from %d to %d, got %r" % (option, low, high, value))
    return value


def check_expire_days(days):
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= 36500:
        raise InputError("expire_days must be a whole number of days from 0 (no limit) to 36500, got %r" % (days,))
    return days


# -- the shared read -----------------------------------------------------------
class Whitelist(object):
    """One deployment's whitelist on the servers: read once, owned objects resolved once."""

    def __init__(self, pangolin, authentik, deployment, users, settings):
        self.pangolin = pangolin
        self.authentik = authentik
        self.deployment = deployment
        self.users = validate_users(users)
        self.settings = settings

    def read(self):
        if self.settings.follow_sessions and not self.authentik.at_least(SESSIONS_IN_DATABASE_SINCE):
            raise InputError("follow_sessions needs authentik 2025.4 or newer, where sessions live in the database "
                             "with their address and expiry (this server runs %s)" % self.authentik.version_text)
        if not self.authentik.at_least(HEADERS_MAPPING_SINCE):
            raise InputError("authentik %s cannot send headers with a webhook (needs 2025.4 or newer), and Pangolin "
                             "needs its API key in the Authorization header" % self.authentik.version_text)
        listed = [u["username"] for u in self.users if u["state"] == "present"]
        self.snapshot = WhitelistSnapshot(self.pangolin, self.authentik, self.deployment.resource_id, listed,
                                          sessions=self.settings.follow_sessions).read()
        self.ownership = Ownership(self.snapshot, self.deployment, self.settings.action).attach_bindings()
        return self

    @property
    def headers_name(self):
        return self.settings.headers_mapping or self.deployment.headers_name

    def since(self, not_before=None, now=None):
        """Logins older than this no longer count (expire_days; a revocation's not_before)."""
        now = now or datetime.now(timezone.utc)
        since = now - timedelta(days=self.settings.expire_days) if self.settings.expire_days else None
        if not_before:
            revoked = parse_time(not_before)
            if revoked is not None and (since is None or revoked > since):
                since = revoked
        return since

    def entries_from_state(self, username, account, not_before=None, slots=None, now=None):
        """What the user's rules must hold now, as a body mapping computes it: [(match, value)] and the sources."""
        settings = self.settings
        slots = slots or settings.max_addresses
        if account is None or not account["is_active"]:
            return [("IP", settings.placeholder)] * slots, []
        since = self.since(not_before, now)
        if settings.follow_sessions:
            revoked = parse_time(not_before) if not_before else None
            if revoked is not None and not any(e["created"] and e["created"] >= revoked
                                               for e in self.snapshot.logins_of(username, account["pk"])):
                return [("IP", settings.placeholder)] * slots, []
            sources = [dict(kind="session", id=s["uuid"], when=s["used"], address=s["address"])
                       for s in self.snapshot.sessions_of(account["pk"])]
            since = None
        else:
            sources = [dict(kind="login", id=e["pk"], when=e["created"], address=e["client_ip"])
                       for e in self.snapshot.logins_of(username, account["pk"])]
        candidates = [(s["when"], s["address"]) for s in sources if s["when"] is not None]
        return whitelist_entries(candidates, slots, settings.ipv6_prefix, settings.placeholder, since), sources


# -- planning and applying -------------------------------------------------------
class WhitelistPlan(object):
    """Settles every user's rules, priorities and group, checks every collision, then writes."""

    def __init__(self, whitelist, reconciler, key_factory=None):
        self.w = whitelist
        self.settings = whitelist.settings
        self.dep = whitelist.deployment
        self.reconciler = reconciler
        self.check_mode = reconciler.check_mode
        self.key_factory = key_factory  # org id -> WebhookKey, when the collection keeps its own key
        self.webhook_key = None

    # -- planning --------------------------------------------------------
    def plan(self):
        w, settings = self.w, self.settings
        self.snap, self.own = w.snapshot, w.ownership
        if self.key_factory is not None:
            self.webhook_key = self.key_factory(self.snap.org_id)
        users = list(w.users)
        missing = [u["username"] for u in users if u["state"] == "present" and u["username"] not in self.snap.users]
        if missing:
            raise InputError("users: authentik has no user %s; create the user%s first or mark %s state: absent"
                             % (", ".join(repr(m) for m in missing), "s" if len(missing) > 1 else "",
                                "them" if len(missing) > 1 else "it"))
        listed = set(u["username"] for u in users)
        for username in self.own.usernames():
            if username not in listed:
                users.append(dict(username=username, priority=None, state="absent" if settings.prune else "kept",
                                  where="unlisted user %r" % username, pruned=settings.prune))
        self.users = users
        self._check_destination()
        self._read_headers()
        self._settle_priorities()
        self._settle_groups()
        return self

    def _check_destination(self):
        """The groups notifications go to exist, before the first write."""
        self.group_pk = None
        wanted = self.settings.login_email or {}
        self.email_group_pk = (self.w.authentik.group_pk(wanted["group"], "login_email.group")
                               if wanted.get("group") else None)
        if not self.w.authentik.at_least(DESTINATION_RENAME_SINCE):
            if not self.settings.destination_group:
                raise InputError("authentik %s cannot send a notification to the event's user (needs 2025.8); "
                                 "set destination_group to a group with at least one member"
                                 % self.w.authentik.version_text)
            self.group_pk = self.w.authentik.group_pk(self.settings.destination_group, "destination_group")

    def _settle_priorities(self):
        """Every present user's rules get a priority: kept, given, or allocated; no collision passes."""
        claimed = {}  # priority -> (username, slot number)
        pending = []
        for user in self.users:
            user["slots"] = []
            if user["state"] != "present":
                continue
            for number in range(1, self.settings.max_addresses + 1):
                slot = self.own.slots.get((user["username"], number))
                current = slot.rule if slot else None
                if current is None and number == 1 and user["username"] in self.own.legacy:
                    current = self.own.legacy[user["username"]].rule  # adopted: keeps its address and priority
                plan = dict(number=number, slot=slot, current=current)
                user["slots"].append(plan)
                wanted = user["priority"] if number == 1 else None
                if wanted is None and current is not None:
                    wanted = current["priority"]
                recorded = slot.recorded_priority if slot and current is None else None
                if wanted is None and recorded is not None and not self.snap.rules_at(recorded):
                    wanted = recorded  # the rule it recorded is gone; one held by a rule not ours is given up
                if wanted is None:
                    pending.append((user, plan))
                    continue
                self._claim(user, plan, wanted, claimed)
        for user, plan in pending:
            plan["priority"] = self._allocate(claimed)
            claimed[plan["priority"]] = (user["username"], plan["number"])

    def _claim(self, user, plan, priority, claimed):
        if priority in claimed:
            other = claimed[priority]
            raise InputError("%s: priority %d is also used by user %r; each rule needs a priority of its own"
                             % (user["where"], priority, other[0]))
        at = [r for r in self.snap.rules_at(priority)
              if not (plan["current"] and r["rule_id"] == plan["current"]["rule_id"])]
        if plan["current"] is None and len(at) > 1:
            raise InputError("%s: resource %d has %d rules with priority %d (rule ids %s); delete the extra ones"
                             % (user["where"], self.dep.resource_id, len(at), priority,
                                ", ".join(str(r["rule_id"]) for r in at)))
        for rule in at:
            owner = self.own.owner_of_rule(rule["rule_id"])
            if owner is not None and owner != user["username"]:
                raise InputError("%s: priority %d is held by the rule of user %r; choose another priority"
                                 % (user["where"], priority, owner))
            if owner is None:
                raise InputError("%s: priority %d collides with rule %d (%s %s %s) on resource %d, which this "
                                 "whitelist does not own; choose another priority"
                                 % (user["where"], priority, rule["rule_id"], rule["action"], rule["match"],
                                    rule["value"], self.dep.resource_id))
        plan["priority"] = priority
        claimed[priority] = (user["username"], plan["number"])

    def _allocate(self, claimed):
        start, end = self.settings.priority_range
        used = set(r["priority"] for r in self.snap.rules) | set(claimed)
        for priority in range(start, end + 1):
            if priority not in used:
                return priority
        raise InputError("priority_range %d-%d has no free priority left on resource %d"
                         % (start, end, self.dep.resource_id))

    def _settle_groups(self):
        """Users stay on their group's rule while it has room; others fill the first group with room."""
        size = self.settings.users_per_rule
        # A kept (unlisted, not pruned) user stays where they are; one with only a 0.2 chain has no place.
        staying = [u["username"] for u in self.users if u["state"] == "present" or (
            u["state"] == "kept" and self.own.slots_of(u["username"]))]
        groups = dict((index, []) for index in self.own.groups)
        placed = {}
        for group in sorted(self.own.groups.values(), key=lambda g: g.index):
            for username in sorted(m for m in group.members if m in staying and m not in placed)[:size]:
                groups[group.index].append(username)
                placed[username] = group.index
        for username in sorted(staying):
            if username in placed:
                continue
            index = next((i for i in sorted(groups) if len(groups[i]) < size), None)
            if index is None:
                index = next(i for i in range(1, len(groups) + 2) if i not in groups)
                groups[index] = []
            groups[index].append(username)
            placed[username] = index
        self.group_members = dict((i, m) for i, m in groups.items() if m)
        for user in self.users:
            user["group"] = placed.get(user["username"])

    # -- applying ---------------------------------------------------------
    def apply(self):
        r = self.reconciler
        snap, own = self.snap, self.own
        if self.settings.apply_rules:
            r.ensure(snap.resource_kind, {"apply_rules": True}, current=snap.resource)
        self._headers()
        self.transport_pks = {}  # username -> [transport pk of each slot]
        self.group_rules = dict((g.index, g.rule) for g in own.groups.values() if g.rule)
        outcomes = dict((u["username"], []) for u in self.users)
        # 1. Stop what goes from firing: the notification rules that go or shrink, before anything else.
        orphaned = [self._shrink_group(index, rule) for index, rule in sorted(self.group_rules.items())]
        for user in self.users:
            chain = own.legacy.get(user["username"])
            if user["state"] == "absent" and chain is not None and chain.notification_rule is not None:
                self._track(outcomes, user, lambda: r.ensure(snap.notification_kind, dict(
                    name=chain.notification_rule["name"]), "absent", current=chain.notification_rule))
        self._login_email(stage="remove")
        for policy in orphaned:
            if policy is not None:
                r.ensure(snap.policy_kind, dict(name=policy["name"]), "absent", current=as_stored(policy))
        # 2. The rules, body mappings and transports of present users.
        for user in self.users:
            if user["state"] == "present":
                self._track(outcomes, user, lambda: self._present(user))
        # 3. What absent and pruned users, and rules beyond max_addresses, leave behind.
        for user in self.users:
            self._track(outcomes, user, lambda: self._remove_slots(user))
        # 4. The notification rules last: they are what fans out.
        if any(index not in self.group_rules for index in self.group_members):
            self._let_the_worker_dispatch()
        for index in sorted(self.group_members):
            self._group(index)
        self._login_email(stage="ensure")
        # 5. The 0.1/0.2 chains, once the new chain is in place: what fans out first, then the shared headers
        # mapping while the chains are still there to show it is theirs (a run that stops later leaves chains the
        # next run finds, never the mapping alone, with its key in clear), then the rest of the chains.
        retiring = [u for u in self.users if u["state"] in ("present", "absent") and u["username"] in own.legacy]
        for user in retiring:
            chain = own.legacy[user["username"]]
            if user["state"] == "present" and chain.notification_rule is not None:
                self._track(outcomes, user, lambda: r.ensure(snap.notification_kind, dict(
                    name=chain.notification_rule["name"]), "absent", current=chain.notification_rule))
        self._retire_legacy_headers()
        for user in retiring:
            self._track(outcomes, user, lambda: self._retire_legacy(own.legacy[user["username"]]))
        self._retire_old_keys()
        mine = set(id(o) for found in outcomes.values() for o in found)
        self.shared = ["%s %s" % (o.operation, o.kind.describe(o.desired)) for o in r.outcomes
                       if o.changed and id(o) not in mine]
        return self.summaries(outcomes)

    def _track(self, outcomes, user, step):
        before = len(self.reconciler.outcomes)
        step()
        outcomes[user["username"]].extend(self.reconciler.outcomes[before:])

    # -- shared objects -----------------------------------------------------
    def _read_headers(self):
        """The headers mapping and, for a managed key, the key it sends: read and judged before any write."""
        name = self.w.headers_name
        self.headers_found = self.snap.mappings.get(name)
        if self.reconciler.secrets is not None and self.headers_found is not None:
            self.reconciler.secrets.add_credentials(self.headers_found["expression"])
        if self.webhook_key is not None:
            self.webhook_key.read((self.headers_found or {}).get("expression"))
        elif self.settings.webhook_api_key is None:
            if self.headers_found is None:
                raise InputError("headers_mapping: authentik has no webhook mapping named %r, and neither "
                                 "webhook_api_key nor manage_webhook_key was given to make it" % name)
            self._refuse_playbook_key(self.headers_found)

    def _headers(self):
        """The headers mapping: the key authentik sends with every webhook."""
        r, snap = self.reconciler, self.snap
        name = self.w.headers_name
        api_key = self.settings.webhook_api_key
        if self.webhook_key is not None:
            api_key = self.webhook_key.ensure(r)
        if api_key is None:
            self.headers_pk = self.headers_found["pk"]
            return
        outcome = r.ensure(snap.mapping_kind, dict(name=name, expression=headers_mapping_expression(api_key)),
                           current=as_stored(self.headers_found), lookup=False)
        self.headers_pk = _pk(outcome, name)

    def _refuse_playbook_key(self, found):
        if sends_key(found.get("expression"), self.w.pangolin.token):
            raise InputError("headers_mapping %r sends this playbook's own Pangolin key (pangolin_api_key) to "
                             "authentik; give authentik a key of its own (webhook_api_key or manage_webhook_key)"
                             % found["name"])

    def _retire_old_keys(self):
        if self.webhook_key is None:
            return
        if self.webhook_key.retiring() and not self.check_mode:
            self._wait_for_old_key_tasks()
        self.webhook_key.retire(self.reconciler)

    def _wait_for_old_key_tasks(self):
        """Let webhook tasks that may have rendered the old key finish before the key goes (no 401 window)."""
        switched = time.time()
        deadline = switched + KEY_GRACE
        while time.time() < deadline:
            running = self.w.authentik.tasks({"actor_name": "authentik.events.tasks.notification_transport",
                                              "state": "consumed"}, page_size=1)
            if running is None:  # no task API (before 2025.8): the whole grace period
                time.sleep(max(0.0, deadline - time.time()))
                return
            if not running[1]:
                return
            time.sleep(0.5)

    def _let_the_worker_dispatch(self):
        """authentik dispatches an event to the rules that exist when its task runs, so the events of this
        run's writes must be dispatched before new rules appear; bounded, and only where the task API shows it."""
        if self.check_mode or not self.reconciler.changed:
            return
        deadline = time.time() + DISPATCH_WAIT
        while time.time() < deadline:
            queued = self.w.authentik.tasks({"actor_name": DISPATCH_ACTOR, "state": "queued"}, page_size=1)
            if queued is None or not queued[1]:
                return
            time.sleep(0.2)

    # -- a present user -----------------------------------------------------
    def _present(self, user):
        r, snap = self.reconciler, self.snap
        account = snap.users[user["username"]]
        entries = self._entries(user, account)
        user["reset"] = not account["is_active"]
        transports = []
        for plan in user["slots"]:
            name = self.dep.slot_name(user["username"], plan["number"])
            slot = plan["slot"]
            not_before = (slot.settings.get("not_before") if slot else None)
            # 1. The body mapping first: it records the rule's priority before the rule exists.
            body = r.ensure(snap.mapping_kind, dict(name=name, expression=whitelist_body_expression(
                account["pk"], plan["number"], self.settings.max_addresses, plan["priority"],
                self.settings.action, self.settings.placeholder, self.settings.ipv6_prefix,
                self.settings.follow_sessions, self.settings.expire_days, not_before)),
                current=as_stored(slot.mapping if slot else None), lookup=False)
            # 2. The rule: created with what authentik's state says; otherwise its address is the webhook's,
            # unless this run must write it (a new setting, an inactive user, a session that ended).
            desired = dict(priority=plan["priority"], action=self.settings.action, enabled=True)
            if plan["current"] is None or entries is not None:
                match, value = (entries or [("IP", self.settings.placeholder)] * len(user["slots"]))[plan["number"] - 1]
                desired.update(match=match, value=value)
            rule = r.ensure(snap.rule_kind, desired, current=plan["current"], lookup=False)
            rule_id = rule.after["rule_id"] if rule.after else None
            target = rule_id if rule_id is not None else "(rule id of priority %d, not created yet)" % plan["priority"]
            # 3. The transport, naming the rule's current id.
            transport = dict(name=name, mode="webhook", send_once=True, body_mapping=_pk(body, name),
                             headers_mapping=self.headers_pk,
                             webhook_url="%s/v1/resource/%d/rule/%s" % (self.settings.webhook_url,
                                                                        self.dep.resource_id, target))
            outcome = r.ensure(snap.transport_kind, transport, current=as_stored(slot.transport if slot else None),
                               lookup=False)
            transports.append(_pk(outcome, name))
            plan["rule_id"] = rule_id
        self.transport_pks[user["username"]] = transports

    def _entries(self, user, account):
        """The rule values this run writes for the user, or None when the webhook keeps them."""
        settings = self.settings
        slots = [p["slot"] for p in user["slots"]]
        changed = any(s is None or s.mapping is None or s.rule is None or any(
            s.settings.get(k) != v for k, v in self._value_settings(account).items()) for s in slots)
        adopted = user["username"] in self.own.legacy
        if not (settings.follow_sessions or not account["is_active"] or changed or adopted):
            return None
        not_before = next((s.settings.get("not_before") for s in slots if s and s.settings.get("not_before")), None)
        return self.w.entries_from_state(user["username"], account, not_before)[0]

    def _value_settings(self, account):
        """The body mapping's settings that decide what its rule holds: when one changes, the run writes the
        rule from authentik's state instead of waiting for the next login (``not_before`` is expiry's own)."""
        s = self.settings
        return dict(user_pk=account["pk"], slots=s.max_addresses, ipv6_prefix=s.ipv6_prefix,
                    sessions=s.follow_sessions, expire_days=s.expire_days, placeholder=s.placeholder)

    # -- removal --------------------------------------------------------------
    def _remove_slots(self, user):
        """Slots nobody needs any more: the rule while its transport still names it, then the rest."""
        r, snap = self.reconciler, self.snap
        keep = len(user["slots"]) if user["state"] == "present" else (None if user["state"] == "kept" else 0)
        if keep is None:
            return
        for slot in self.own.slots_of(user["username"]):
            if slot.number <= keep:
                continue
            if slot.rule is not None:
                r.ensure(snap.rule_kind, dict(priority=slot.rule["priority"]), "absent", current=slot.rule)
            if slot.transport is not None:
                r.ensure(snap.transport_kind, dict(name=slot.transport["name"]), "absent",
                         current=as_stored(slot.transport))
            if slot.mapping is not None:
                r.ensure(snap.mapping_kind, dict(name=slot.mapping["name"]), "absent", current=as_stored(slot.mapping))
        chain = self.own.legacy.get(user["username"])
        if user["state"] == "absent" and chain is not None and chain.rule is not None:
            # the rule while the chain's transport still names it; the chain itself goes with the others (step 5)
            r.ensure(snap.rule_kind, dict(priority=chain.rule["priority"]), "absent", current=chain.rule)

    def _retire_legacy(self, chain):
        """A 0.1/0.2 chain once its notification rule is gone: policy, transport, body mapping.

        The Pangolin rule of a user now on the new chain was adopted and stays.
        """
        r, snap = self.reconciler, self.snap
        for kind, view in ((snap.policy_kind, chain.policy), (snap.transport_kind, chain.transport),
                           (snap.mapping_kind, chain.mapping)):
            if view is not None:
                r.ensure(kind, dict(name=view["name"]), "absent", current=as_stored(view))

    def _retire_legacy_headers(self):
        """The 0.2 shared headers mapping (and the key 0.2 made for it), once no chain but ours uses it."""
        legacy_headers = self.own.legacy_headers
        if legacy_headers is None or not self.own.legacy or legacy_headers["name"] == self.w.headers_name or any(
                u["state"] == "kept" and u["username"] in self.own.legacy for u in self.users):
            return
        self.reconciler.ensure(self.snap.mapping_kind, dict(name=legacy_headers["name"]), "absent",
                               current=as_stored(legacy_headers))
        bearer = bearer_in(legacy_headers.get("expression"))
        if self.webhook_key is not None and bearer:
            self.webhook_key.retire_legacy(self.reconciler, bearer.split(".", 1)[0], LEGACY_KEY)

    # -- groups -----------------------------------------------------------------
    def _group_transports(self, index):
        pks = []
        for username in self.group_members.get(index, []):
            if username in self.transport_pks:
                pks.extend(self.transport_pks[username])
            else:  # a kept (unlisted) user: their transports as they are
                pks.extend(s.transport["pk"] for s in self.own.slots_of(username) if s.transport)
        return pks

    def _shrink_group(self, index, rule):
        """Before anything else: take leaving transports off the rule, or delete a rule left empty
        (and return its policy, to delete after the rules)."""
        r, snap = self.reconciler, self.snap
        staying = set()
        for username in self.group_members.get(index, []):
            user = next((u for u in self.users if u["username"] == username), None)
            for slot in self.own.slots_of(username):
                if slot.transport and (user is None or user["state"] == "kept" or slot.number <= len(user["slots"])):
                    staying.add(slot.transport["pk"])
        group = self.own.groups[index]
        if index not in self.group_members:
            r.ensure(snap.notification_kind, dict(name=rule["name"]), "absent", current=rule)
            del self.group_rules[index]
            return group.policy  # deleted once every rule that goes is gone
        transports = [pk for pk in rule.get("transports") or [] if pk in staying]
        if set(transports) != set(rule.get("transports") or []):
            outcome = r.ensure(snap.notification_kind, dict(name=rule["name"], transports=transports), current=rule,
                               lookup=False)
            self.group_rules[index] = outcome.after
        return None

    def _group(self, index):
        r, snap = self.reconciler, self.snap
        name = self.dep.group_name(index)
        group = self.own.groups.get(index)
        pks = sorted(self._member_pk(u) for u in self.group_members[index])
        policy = r.ensure(snap.policy_kind, dict(name=name, expression=group_policy_expression(
            [pk for pk in pks if pk is not None], self.settings.follow_sessions)),
            current=as_stored(group.policy if group else None), lookup=False)
        desired = dict(name=name, transports=self._group_transports(index), severity="notice")
        if self.group_pk is not None:
            desired["destination_group"] = self.group_pk
        else:
            desired["destination_event_user"] = True
        rule = r.ensure(snap.notification_kind, desired, current=self.group_rules.get(index), lookup=False)
        binding = BindingKind(self.w.authentik, (rule.after or {}).get("pk"), (policy.after or {}).get("pk"), name,
                              bindings=group.bindings if group else [], target_name=name)
        exists = (rule.after or {}).get("pk") is not None and (policy.after or {}).get("pk") is not None
        r.ensure(binding, dict(order=0, enabled=True, negate=False), lookup=exists)

    def _member_pk(self, username):
        account = self.snap.users.get(username)
        if account is not None:
            return account["pk"]
        return next((s.user_pk for s in self.own.slots_of(username) if s.user_pk is not None), None)

    # -- the login e-mail ---------------------------------------------------------
    def _login_email(self, stage):
        """An e-mail per login of a listed user: a rule, a policy and an e-mail transport (optional)."""
        r, snap = self.reconciler, self.snap
        name = self.dep.email_name
        email = self.own.email
        rule, policy, transport = email["notification_rules"], email["policies"], email["transports"]
        wanted = self.settings.login_email
        if stage == "remove":
            if not wanted:
                for kind, view in ((snap.notification_kind, rule), (snap.policy_kind, policy),
                                   (snap.transport_kind, transport)):
                    if view is not None:
                        r.ensure(kind, dict(name=name), "absent", current=as_stored(view))
            return
        if not wanted:
            return
        pks = sorted(snap.users[u["username"]]["pk"] for u in self.users if u["state"] == "present")
        policy_out = r.ensure(snap.policy_kind, dict(name=name, expression=login_email_policy_expression(pks)),
                              current=as_stored(policy), lookup=False)
        transport_out = r.ensure(snap.transport_kind, EmailTransport.desired(name, wanted), current=as_stored(transport),
                                 lookup=False)
        desired = dict(name=name, transports=[_pk(transport_out, name)], severity="notice")
        if wanted.get("group"):
            desired.update(destination_group=self.email_group_pk, destination_event_user=False)
        else:
            desired.update(destination_event_user=True, destination_group=None)
        rule_out = r.ensure(snap.notification_kind, desired, current=rule, lookup=False)
        binding = BindingKind(self.w.authentik, (rule_out.after or {}).get("pk"), (policy_out.after or {}).get("pk"),
                              name, bindings=self.own.email_bindings, target_name=name)
        exists = (rule_out.after or {}).get("pk") is not None and (policy_out.after or {}).get("pk") is not None
        r.ensure(binding, dict(order=0, enabled=True, negate=False), lookup=exists)

    # -- results -----------------------------------------------------------------
    def summaries(self, outcomes):
        result = []
        for user in self.users:
            if user["state"] == "kept":
                continue
            changed = [o for o in outcomes[user["username"]] if o.changed]
            if user["state"] == "absent":
                status = "removed" if changed else "unchanged"
            elif user.get("reset") and changed:
                status = "reset"
            elif changed and not self.own.slots_of(user["username"]) and user["username"] not in self.own.legacy:
                status = "created"
            else:
                status = "updated" if changed else "unchanged"
            slots = user.get("slots") or []
            result.append(dict(username=user["username"], state=user["state"], status=status,
                               priority=slots[0]["priority"] if slots else None,
                               priorities=[p["priority"] for p in slots],
                               rule_id=slots[0].get("rule_id") if slots else None,
                               rule_ids=[p.get("rule_id") for p in slots],
                               group=user.get("group"), pruned=bool(user.get("pruned")),
                               changed=bool(changed),
                               changes=["%s %s" % (o.operation, o.kind.describe(o.desired)) for o in changed]))
        return result


def _pk(outcome, name):
    """The object's pk, or a readable marker in check mode before it exists."""
    if outcome.after and outcome.after.get("pk") is not None:
        return outcome.after["pk"]
    return "(%s %r, not created yet)" % (outcome.kind.what, name)


# -- module plumbing -------------------------------------------------------------------
def whitelist_argument_spec(chain=False):
    """Options every whitelist module takes, and the resource selector's rules.

    Both connections, the resource and the users (doc fragments connection,
    pangolin, resource, authentik, whitelist); with ``chain`` also the options
    of the chain each user gets (whitelist.CHAIN).
    """
    spec = pangolin_argument_spec()
    selector, rules = resource_selector_spec()
    spec.update(selector)
    spec.update(authentik_argument_spec())
    spec.update(
        users=dict(type="list", elements="dict", required=True, options=dict(
            username=dict(type="str", required=True),
            priority=dict(type="int"),
            state=dict(type="str", default="present", choices=["present", "absent"]),
        )),
        name_prefix=dict(type="str", default="jellyfin-whitelist-"),
        instance=dict(type="str"),
        placeholder=dict(type="str", default="0.0.0.0"),
        action=dict(type="str", default="ACCEPT", choices=["ACCEPT", "PASS"]),
        ipv6_prefix=dict(type="int", default=0),
        max_addresses=dict(type="int", default=1),
        follow_sessions=dict(type="bool", default=False),
        expire_days=dict(type="int", default=30),
    )
    if chain:
        spec.update(
            headers_mapping=dict(type="str"),
            destination_group=dict(type="str"),
            users_per_rule=dict(type="int", default=10),
        )
    return spec, rules


def open_whitelist(module):
    """The shared options checked, then both clients, the resource's id and the deployment.

    Nothing is sent before every shared option passed; naming the resource
    by name is the first request.
    """
    params = module.params
    prefix = check_name(params["name_prefix"], "name_prefix")
    if params["instance"] is not None:
        check_instance(params["instance"])
    settings = SimpleNamespace(
        placeholder=check_placeholder(params["placeholder"]), action=params["action"],
        ipv6_prefix=check_ipv6_prefix(params["ipv6_prefix"]),
        max_addresses=check_count(params["max_addresses"], "max_addresses", 1, 20),
        follow_sessions=params["follow_sessions"], expire_days=check_expire_days(params["expire_days"]),
        headers_mapping=None, destination_group=None, users_per_rule=10, prune=False, apply_rules=False,
        webhook_api_key=None, login_email=None, priority_range=(100, 999), webhook_url=None)
    if "headers_mapping" in params:
        if params["headers_mapping"] is not None:
            settings.headers_mapping = check_name(params["headers_mapping"], "headers_mapping")
        settings.destination_group = params["destination_group"]
        settings.users_per_rule = check_count(params["users_per_rule"], "users_per_rule", 1, 100)
    pangolin = PangolinClient.from_module(module)
    authentik = AuthentikClient.from_module(module)
    resource_id = selected_resource_id(pangolin, params)
    deployment = Deployment(prefix, params["instance"] or default_instance(resource_id), resource_id)
    return SimpleNamespace(pangolin=pangolin, authentik=authentik, resource_id=resource_id, deployment=deployment,
                           settings=settings)


__all__ = ["Whitelist", "WhitelistPlan", "open_whitelist", "validate_users", "api_base", "check_placeholder",
           "check_priority_range", "check_expire_days", "whitelist_argument_spec", "ApiError", "WebhookKey"]
