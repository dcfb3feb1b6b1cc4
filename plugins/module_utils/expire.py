# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stale-IP expiry: put a user's rule back to the placeholder.

A user's rule keeps the last login's address forever unless something resets
it. Expiry resets the rules of users whose newest authentik login is older
than a number of days (or of named users, at once) to the placeholder, so
that address no longer gets through; the user's next login whitelists them
again through the unchanged chain. Only rules the whitelist owns are touched:
the rule a user's own transport updates.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.authentik import parse_time
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.authentik_objects import TransportKind
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.pangolin_objects import RuleKind
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.reconcile import InputError
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.whitelist import rule_id_in_url, validate_users


def check_expire_days(days):
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise InputError("expire_days must be a whole number of days, 0 or more, got %r" % (days,))
    return days


class WhitelistExpiry(object):
    def __init__(self, pangolin, authentik, resource_id, users, prefix, placeholder, expire_days, expire_users=None,
                 now=None):
        self.pangolin = pangolin
        self.authentik = authentik
        self.resource_id = resource_id
        self.prefix = prefix
        self.placeholder = placeholder
        self.expire_days = check_expire_days(expire_days)
        self.now = now or datetime.now(timezone.utc)
        present = [u["username"] for u in validate_users(users) if u["state"] == "present"]
        if expire_users is not None:
            # Named users are revoked now, whatever their last login; each must be a whitelisted user.
            unknown = [u for u in expire_users if u not in present]
            if unknown:
                raise InputError("expire_users: %s %s not among the present users of the whitelist"
                                 % (", ".join(repr(u) for u in unknown), "is" if len(unknown) == 1 else "are"))
            present = [u for u in present if u in expire_users]
        self.usernames = present
        self.revoke_now = expire_users is not None

    def apply(self, reconciler):
        rule_kind = RuleKind(self.pangolin, self.resource_id)
        rules = rule_kind.rules()
        transports = TransportKind(self.authentik).preload()
        cutoff = self.now - timedelta(days=self.expire_days)
        summaries = []
        for username in self.usernames:
            entry = dict(username=username, rule_id=None, whitelisted=None, last_login=None, expired=False)
            summaries.append(entry)
            row = (transports._rows or {}).get(self.prefix + username)
            rule_id = rule_id_in_url((row or {}).get("webhook_url"), self.resource_id)
            rule = next((r for r in rules if r["rule_id"] == rule_id), None)
            if rule is None:
                entry["reason"] = "the whitelist owns no rule of this user (run playbooks/site.yml first)"
                continue
            entry.update(rule_id=rule["rule_id"], whitelisted=rule["value"])
            if rule["match"] == "IP" and rule["value"] == self.placeholder:
                entry["reason"] = "nothing whitelisted"
                continue
            # Read the newest login right before the write, so a login during the run is not undone.
            logins = self.authentik.recent_events("login", username=username, limit=5)
            last = parse_time(logins[0].get("created")) if logins else None
            entry["last_login"] = logins[0].get("created") if logins else None
            if not self.revoke_now and last is not None and last >= cutoff:
                entry["reason"] = "logged in within %d days" % self.expire_days
                continue
            entry["reason"] = ("revoked" if self.revoke_now else
                               "no login recorded" if last is None else
                               "last login older than %d days" % self.expire_days)
            reconciler.ensure(rule_kind, dict(priority=rule["priority"], action=rule["action"], match="IP",
                                              value=self.placeholder, enabled=rule["enabled"]), current=rule)
            entry["expired"] = True
        return summaries
