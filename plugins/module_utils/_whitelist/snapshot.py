# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the servers hold, read once: the one read shared by the whitelist, the doctor and expiry.

Each list is one request (pages followed). What was stored is kept as the
object kinds' views (``mappings``, ``transports``, ...), exactly what the
reconciler compares; what the snapshot worked out from them lives in maps of
its own (``bodies``: a body mapping's settings, ``targets``: where a transport
posts). A resource's rule list is shared with the kind that writes its rules,
so it stays true after a write. Nothing here decides what is owned
(``ownership.py``) or what should change (``planner.py``).

A user's login history is read on demand, once per user, and only for the
users something needs it for: reading it for everyone would cost a request
per user on every run.
"""

from __future__ import annotations

from datetime import datetime, timezone

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.holdings import (
    LOGIN_SCAN,
    user_entries,
    written_as,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.client import ApiError
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.client import parse_time
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.directory import UserKind
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.objects import (
    BindingKind,
    ExpressionPolicyKind,
    NotificationRuleKind,
    TransportKind,
    WebhookMappingKind,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.body import BodySettings
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._pangolin.objects import (
    ResourceSettingsKind,
    RuleKind,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.inputs import InputError
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.render import rendered_values
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.urls import rule_target


class ResourceState(object):
    """One Pangolin resource as read: its access settings and its rules (a list the rule kind keeps true)."""

    def __init__(self, resource_id, view, rules, settings_kind=None, rule_kind=None, shared=None):
        self.id = resource_id
        self.view = view
        self.rules = rules
        self.settings_kind = settings_kind
        self.rule_kind = rule_kind
        # On a shared resource policy (Pangolin 1.19+ Enterprise): {id, name, apply_rules} of that policy, which
        # decides applyRules; the rule API then writes the resource's own overrides, evaluated first.
        self.shared = shared

    @classmethod
    def read(cls, pangolin, resource_id, missing_ok=False):
        """With ``missing_ok``, a resource Pangolin no longer has reads as one without rules."""
        settings_kind = ResourceSettingsKind(pangolin, resource_id)
        try:
            view = settings_kind.find({})
        except InputError:  # Pangolin has no such resource
            if not missing_ok:
                raise
            return cls(resource_id, dict(resource_id=resource_id), [])
        # A whitelist rule lets someone past SSO: never take over a twin another deployment may have made.
        rule_kind = RuleKind(pangolin, resource_id, take_over_twins=False)
        shared = None
        if view.get("resource_policy_id") is not None:
            shared = dict(id=view["resource_policy_id"], name=None, apply_rules=None)
            try:
                policy = pangolin.resource_policies(resource_id).get("sharedPolicy") or {}
                shared.update(name=policy.get("name"), apply_rules=policy.get("applyRules"))
            except ApiError as exc:
                if exc.status != 403:
                    raise
                shared["unreadable"] = str(exc)  # the key lacks getResourcePolicy
        return cls(resource_id, view, rule_kind.rules(), settings_kind, rule_kind, shared)

    @property
    def applies_rules(self):
        """Whether the gatekeeper evaluates this resource's rules (None: cannot tell)."""
        return self.shared["apply_rules"] if self.shared else self.view.get("apply_rules")

    def rule(self, rule_id):
        return next((r for r in self.rules if r["rule_id"] == rule_id), None)

    def rules_at(self, priority):
        return [r for r in self.rules if r["priority"] == priority]


class Snapshot(object):
    """One read of everything a whitelist involves, on both servers."""

    def __init__(self, pangolin, authentik, resource_ids, usernames, sessions=False, groups=None, planned=()):
        """``planned``: the options.Planned of this run's users step (in check mode it has only predicted it)."""
        self.pangolin = pangolin
        self.authentik = authentik
        self.resource_ids = tuple(resource_ids)
        self.usernames = list(dict.fromkeys(usernames))
        self.want_sessions = sessions
        self.want_groups = dict((name, option) for name, option in (groups or {}).items() if name)
        self._logins = {}
        self.members = None  # with users_from_group: the usernames of its active direct members
        self.planned = planned
        self.deleted = set(planned.removed if planned else ())  # accounts this run's users step deletes
        self.now = datetime.now(timezone.utc)

    def read(self):
        self.resources = dict((rid, ResourceState.read(self.pangolin, rid)) for rid in self.resource_ids)
        self.mapping_kind = WebhookMappingKind(self.authentik).preload()
        self.transport_kind = TransportKind(self.authentik).preload()
        self.policy_kind = ExpressionPolicyKind(self.authentik).preload()
        self.notification_kind = NotificationRuleKind(self.authentik).preload()
        self.mappings = dict((v["name"], v) for v in self.mapping_kind.views())
        self.transports = dict((v["name"], v) for v in self.transport_kind.views())
        self.notification_kind.transport_names.update((str(v["pk"]), name) for name, v in self.transports.items())
        self.policies = dict((v["name"], v) for v in self.policy_kind.views())
        self.notification_rules = dict((v["name"], v) for v in self.notification_kind.views())
        self.bindings = []
        self.accounts = dict((u["username"], u) for u in UserKind.summaries(self.authentik, self.usernames))
        # in check mode the users step has only predicted its creations and deletions; after it, they are done
        for username in self.planned.created if self.planned else ():
            self.accounts.setdefault(username, dict(pk=0, username=username, name=username, is_active=True,
                                                    planned=True))
        for username in self.deleted:
            self.accounts.pop(username, None)
        self.sessions = self.read_sessions() if self.want_sessions else []
        self.group_pks = dict((name, self.authentik.group_pk(name, option))
                              for name, option in self.want_groups.items())
        self.derive()
        return self

    def derive(self):
        """What the snapshot works out from the stored views (kept apart from them)."""
        self.bodies = dict((name, BodySettings.parse(v["expression"])) for name, v in self.mappings.items())
        self.mapping_values = dict((name, rendered_values(v["expression"])) for name, v in self.mappings.items())
        self.policy_values = dict((name, rendered_values(v["expression"])) for name, v in self.policies.items())
        self.targets = dict((name, rule_target(v.get("webhook_url"))) for name, v in self.transports.items())
        return self

    def read_accounts(self, usernames):
        """The accounts of more users (pk, ``is_active``), next to the listed ones (one request)."""
        wanted = [u for u in dict.fromkeys(usernames) if u not in self.accounts and u not in self.deleted]
        self.accounts.update((u["username"], u) for u in UserKind.summaries(self.authentik, wanted))
        return self.accounts

    def read_bindings(self, rule_pks):
        """The policy bindings of these notification rules (one request)."""
        self.bindings = BindingKind.list_for(self.authentik, rule_pks) if rule_pks else []
        return self.bindings

    # -- lookups ---------------------------------------------------------
    def resource(self, resource_id):
        """A resource's state; one the whitelist no longer lists is read when first asked for (deleted in Pangolin
        since, it has no rules: what still posts to it only goes)."""
        if resource_id not in self.resources:
            self.resources[resource_id] = ResourceState.read(self.pangolin, resource_id, missing_ok=True)
        return self.resources[resource_id]

    def transports_to(self, resource_id, rule_id):
        """Names of every transport (anyone's, to any server) whose URL names this resource and rule id."""
        return sorted(name for name, target in self.targets.items()
                      if target and (target.resource_id, target.rule_id) == (resource_id, rule_id))

    def bindings_of(self, rule_pk):
        return [b for b in self.bindings if str(b["target"]) == str(rule_pk)]

    @property
    def org_id(self):
        orgs = [state.view.get("org_id") for rid, state in self.resources.items() if rid in self.resource_ids]
        return orgs[0] if orgs else None

    # -- the state a user's rules are computed from --------------------------
    def read_sessions(self):
        """Live sessions of every user, as {user pk, uuid, address, used, expires} (authentik 2025.4+)."""
        rows = []
        for session in self.authentik.list("/core/authenticated_sessions/", "authenticated sessions"):
            expires = parse_time(session.get("expires"))
            if expires is not None and expires <= self.now:
                continue  # expired, not yet cleaned up
            rows.append(dict(user_pk=session.get("user"), uuid=session.get("uuid"), address=session.get("last_ip"),
                             used=parse_time(session.get("last_used")), expires=expires))
        return rows

    def sessions_of(self, user_pk):
        return sorted((s for s in self.sessions if s["user_pk"] == user_pk),
                      key=lambda s: s["used"] or datetime.min.replace(tzinfo=timezone.utc), reverse=True)

    def logins_of(self, username, user_pk, refresh=False):
        """The user's real ``login`` events, newest first, as many as a body mapping looks at (read once)."""
        if refresh or username not in self._logins:
            self._logins[username] = self.authentik.login_events(username, user_pk, limit=LOGIN_SCAN)
        return self._logins[username]

    def is_member(self, username):
        """Whether the user is an active direct member of users_from_group (always, without one)."""
        return self.members is None or username in self.members

    def entries_of(self, username, body, now=None, logins=None):
        """What the user's rules hold under the body settings ``body``, as the body mappings compute it:
        [(match, value)] per rule (``holdings.user_entries``, on the state this snapshot read). ``logins``:
        only these of the user's logins (the doctor's question of one login)."""
        account = self.accounts.get(username)
        active = bool(account and account["is_active"])
        member = self.is_member(username)
        if logins is None:
            logins = self.logins_of(username, account["pk"]) if active and member else []
        sessions = []
        if active and member and body.sessions:
            sessions = [(s["used"], s["address"], s["uuid"]) for s in self.sessions_of(account["pk"])
                        if s["used"] is not None]
        return user_entries(body.settings(), now or self.now, active, member,
                            [(e["created"], e["client_ip"]) for e in logins if e["created"] is not None],
                            sessions)

    def sources_of(self, username, sessions):
        """Where a user's addresses come from, newest first: [{kind, id, when, address}] of the user's live
        sessions (``sessions``) or logins, whatever their age."""
        account = self.accounts.get(username)
        if account is None:
            return []
        if sessions:
            return [dict(kind="session", id=s["uuid"], when=s["used"], address=s["address"])
                    for s in self.sessions_of(account["pk"])]
        return [dict(kind="login", id=e["pk"], when=e["created"], address=e["client_ip"])
                for e in self.logins_of(username, account["pk"])]

    def source_of(self, username, entry, sessions, ipv6_prefix):
        """The newest session or login whose address a rule holding ``entry`` lets in, or None."""
        return next((s for s in self.sources_of(username, sessions)
                     if written_as(s["address"], ipv6_prefix) == entry), None)

    # -- from plain data (tests of the planner, the doctor's vocabulary) ------------------
    @classmethod
    def from_data(cls, resource_ids, rules=None, mappings=(), transports=(), policies=(), notification_rules=(),
                  accounts=(), logins=None, sessions=(), members=None, group_pks=None, bindings=(), now=None):
        """A snapshot of what the two servers hold, given as plain data instead of read: ``rules`` by resource
        id (Pangolin's normalised rows), authentik's objects as the kinds' views, ``accounts`` as {pk,
        username, is_active}, ``logins`` by username as {pk, created, client_ip}, newest first."""
        snap = cls(None, None, resource_ids, [a["username"] for a in accounts])
        snap.now = now or snap.now
        snap.resources = dict((rid, ResourceState(rid, dict(apply_rules=True, org_id="homelab"), list(found)))
                              for rid, found in (rules or {}).items())
        for store, views in (("mappings", mappings), ("transports", transports), ("policies", policies),
                             ("notification_rules", notification_rules)):
            setattr(snap, store, dict((v["name"], dict(v)) for v in views))
        snap.accounts = dict((a["username"], dict(a)) for a in accounts)
        snap.sessions, snap.bindings = list(sessions), list(bindings)
        snap.members = None if members is None else set(members)
        snap.group_pks = dict(group_pks or {})
        snap._logins = dict((username, list((logins or {}).get(username, []))) for username in snap.accounts)
        return snap.derive()


__all__ = ["Snapshot", "ResourceState"]
