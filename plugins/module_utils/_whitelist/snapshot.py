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

import re
from collections import namedtuple
from datetime import datetime, timedelta, timezone

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.addresses import whitelist_entries
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
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.body import LOGIN_SCAN, BodySettings
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._pangolin.objects import (
    ResourceSettingsKind,
    RuleKind,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.reconcile import InputError
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.render import rendered_values

RULE_URL = re.compile(r"^(.*)/v1/resource/(\d+)/rule/(\d+)/?$")

# Where a transport posts: Pangolin's base URL (without /v1), the resource and the rule.
Target = namedtuple("Target", "base resource_id rule_id")


def rule_target(url):
    """The Target a transport URL posts to, or None when it is no Pangolin rule URL."""
    match = RULE_URL.match(url or "")
    return Target(match.group(1), int(match.group(2)), int(match.group(3))) if match else None


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

    def __init__(self, pangolin, authentik, resource_ids, usernames, sessions=False, groups=None):
        self.pangolin = pangolin
        self.authentik = authentik
        self.resource_ids = tuple(resource_ids)
        self.usernames = list(dict.fromkeys(usernames))
        self.want_sessions = sessions
        self.want_groups = dict((name, option) for name, option in (groups or {}).items() if name)
        self._logins = {}
        self.now = datetime.now(timezone.utc)

    def read(self):
        self.resources = dict((rid, ResourceState.read(self.pangolin, rid)) for rid in self.resource_ids)
        self.mapping_kind = WebhookMappingKind(self.authentik).preload()
        self.transport_kind = TransportKind(self.authentik).preload()
        self.policy_kind = ExpressionPolicyKind(self.authentik).preload()
        self.notification_kind = NotificationRuleKind(self.authentik).preload()
        self.mappings = dict((v["name"], v) for v in self.mapping_kind.views())
        self.transports = dict((v["name"], v) for v in self.transport_kind.views())
        self.policies = dict((v["name"], v) for v in self.policy_kind.views())
        self.notification_rules = dict((v["name"], v) for v in self.notification_kind.views())
        self.bindings = []
        self.accounts = dict((u["username"], u) for u in UserKind.summaries(self.authentik, self.usernames))
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
        wanted = [u for u in dict.fromkeys(usernames) if u not in self.accounts]
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

    def since(self, expire_days, not_before=None, now=None):
        """Logins older than this no longer count (expire_days; a revocation's not_before)."""
        now = now or self.now
        since = now - timedelta(days=expire_days) if expire_days else None
        revoked = parse_time(not_before) if not_before else None
        if revoked is not None and (since is None or revoked > since):
            since = revoked
        return since

    def entries_of(self, username, settings, not_before=None, slots=None, now=None):
        """What the user's rules must hold now, as a body mapping computes it: [(match, value)], and the
        sources [{kind, id, when, address}] it was computed from."""
        slots = slots or settings.max_addresses
        account = self.accounts.get(username)
        nobody = [("IP", settings.placeholder)] * slots
        if account is None or not account["is_active"]:
            return nobody, []
        since = self.since(settings.expire_days, not_before, now)
        if settings.follow_sessions:
            revoked = parse_time(not_before) if not_before else None
            if revoked is not None and not any(e["created"] and e["created"] >= revoked
                                               for e in self.logins_of(username, account["pk"])):
                return nobody, []
            sources = [dict(kind="session", id=s["uuid"], when=s["used"], address=s["address"])
                       for s in self.sessions_of(account["pk"])]
            since = None
        else:
            sources = [dict(kind="login", id=e["pk"], when=e["created"], address=e["client_ip"])
                       for e in self.logins_of(username, account["pk"])]
        candidates = [(s["when"], s["address"]) for s in sources if s["when"] is not None]
        return whitelist_entries(candidates, slots, settings.ipv6_prefix, settings.placeholder, since), sources


__all__ = ["Snapshot", "ResourceState", "Target", "rule_target"]
