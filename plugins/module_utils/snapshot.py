# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the servers hold, read once: the one read shared by the whitelist, the doctor and expiry.

Each list is one request (pages followed), and everything is kept as the
object kinds' views, whatever the server's version: rules, transports with the
rule they post to, mappings with the values they were rendered with, policies,
notification rules, bindings, users with pk and ``is_active``, and, when asked
for, live sessions and each user's recent logins. Nothing here decides what is
owned (``ownership.py`` does) or what should change.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.authentik import parse_time
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.authentik_objects import (
    BindingKind,
    ExpressionPolicyKind,
    NotificationRuleKind,
    TransportKind,
    UserKind,
    WebhookMappingKind,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.pangolin_objects import (
    ResourceSettingsKind,
    RuleKind,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.render import LOGIN_SCAN, rendered_values

RULE_URL = re.compile(r"/v1/resource/(\d+)/rule/(\d+)/?$")
# What the snapshot adds to the object kinds' views: rendered values, a transport's target rule.
ADDED_KEYS = ("values", "target")


def rule_target(url):
    """(resource id, rule id) a transport URL posts to, or None."""
    match = RULE_URL.search(url or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def as_stored(view):
    """A snapshot view as its kind compares it: without the keys the snapshot added."""
    if view is None:
        return None
    return dict((k, v) for k, v in view.items() if k not in ADDED_KEYS)


class WhitelistSnapshot(object):
    """One read of everything the whitelist of one resource involves."""

    def __init__(self, pangolin, authentik, resource_id, usernames, sessions=False):
        self.pangolin = pangolin
        self.authentik = authentik
        self.resource_id = resource_id
        self.usernames = list(dict.fromkeys(usernames))
        self.want_sessions = sessions
        self._logins = {}

    def read(self):
        # A whitelist rule lets someone past SSO: never take over a twin another deployment may have made.
        self.rule_kind = RuleKind(self.pangolin, self.resource_id, take_over_twins=False)
        self.rules = self.rule_kind.rules()
        self.resource_kind = ResourceSettingsKind(self.pangolin, self.resource_id)
        self.resource = self.resource_kind.find({})
        self.mapping_kind = WebhookMappingKind(self.authentik).preload()
        self.transport_kind = TransportKind(self.authentik).preload()
        self.policy_kind = ExpressionPolicyKind(self.authentik).preload()
        self.notification_kind = NotificationRuleKind(self.authentik).preload()
        self.mappings = dict((v["name"], dict(v, values=rendered_values(v["expression"])))
                             for v in self.mapping_kind.views())
        self.transports = dict((v["name"], dict(v, target=rule_target(v.get("webhook_url"))))
                               for v in self.transport_kind.views())
        self.policies = dict((v["name"], dict(v, values=rendered_values(v["expression"])))
                             for v in self.policy_kind.views())
        self.notification_rules = dict((v["name"], v) for v in self.notification_kind.views())
        self.bindings = []
        self.users = dict((u["username"], u) for u in UserKind.summaries(self.authentik, self.usernames))
        self.sessions = self.read_sessions() if self.want_sessions else []
        return self

    def read_accounts(self, usernames):
        """The accounts of more users (pk, ``is_active``), next to the listed ones (one request)."""
        wanted = [u for u in dict.fromkeys(usernames) if u not in self.users]
        self.users.update((u["username"], u) for u in UserKind.summaries(self.authentik, wanted))
        return self.users

    def read_bindings(self, rule_pks):
        """The policy bindings of these notification rules (one request)."""
        self.bindings = BindingKind.list_for(self.authentik, rule_pks) if rule_pks else []
        return self.bindings

    # -- lookups ---------------------------------------------------------
    def rule(self, rule_id):
        return next((r for r in self.rules if r["rule_id"] == rule_id), None)

    def rules_at(self, priority):
        return [r for r in self.rules if r["priority"] == priority]

    def targeted_rule_ids(self):
        """Every rule of this resource some transport (anyone's) posts to."""
        return set(t["target"][1] for t in self.transports.values()
                   if t["target"] and t["target"][0] == self.resource_id)

    def bindings_of(self, rule_pk):
        return [b for b in self.bindings if str(b["target"]) == str(rule_pk)]

    @property
    def org_id(self):
        return self.resource.get("org_id")

    # -- state the rules are computed from ---------------------------------
    def read_sessions(self):
        """Live sessions of every user, as {user pk, uuid, address, used, expires} (authentik 2025.4+)."""
        now = datetime.now(timezone.utc)
        rows = []
        for session in self.authentik.list("/core/authenticated_sessions/", "authenticated sessions"):
            expires = parse_time(session.get("expires"))
            if expires is not None and expires <= now:
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


__all__ = ["WhitelistSnapshot", "as_stored", "rule_target", "RULE_URL"]
