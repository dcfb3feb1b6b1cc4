# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Expiry: bring every user's rules back to what authentik's state says, now.

A body mapping computes a user's addresses from authentik's state whenever
authentik sends it, but nothing is sent while nobody logs in: an address may
outlive the user's last login, a session that expired or was revoked, or the
user's account. Expiry writes each owned rule from the same state the body
mappings read (the newest distinct addresses of real logins within
``expire_days``, or live sessions; nothing for an inactive or deleted user),
with the same function. Named users are revoked at once: their body mappings
learn the time (``not_before``), so nothing before it counts until they log in
again, and their rules go back to the placeholder.
"""

from __future__ import annotations

import inspect
from datetime import datetime, timezone

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.authentik import format_time
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.reconcile import InputError
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.render import whitelist_body_expression
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.snapshot import as_stored

# What a revocation renders a body mapping from: everything the mapping recorded, by the renderer's own names.
BODY_SETTINGS = tuple(inspect.signature(whitelist_body_expression).parameters)


class WhitelistExpiry(object):
    def __init__(self, whitelist, expire_users=None, now=None):
        self.w = whitelist
        self.settings = whitelist.settings
        self.now = now or datetime.now(timezone.utc)
        present = [u["username"] for u in whitelist.users if u["state"] == "present"]
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
        w = self.w.read()
        snap = w.snapshot
        usernames = list(self.usernames)
        if not self.revoke_now:
            # Users no longer listed, or marked absent, whose rules the whitelist still owns: theirs expire too.
            others = [u for u in w.ownership.usernames() if u not in usernames]
            snap.read_accounts(others)
            usernames += others
        summaries = []
        for username in usernames:
            rules = self._owned_rules(username)
            entry = dict(username=username, rule_id=rules[0][1]["rule_id"] if rules else None,
                         rule_ids=[r["rule_id"] for _slot, r in rules],
                         whitelisted=rules[0][1]["value"] if rules else None,
                         addresses=[r["value"] for _slot, r in rules], last_login=None, expired=False)
            summaries.append(entry)
            if not rules:
                entry["reason"] = "the whitelist owns no rule of this user (run playbooks/site.yml first)"
                continue
            account = snap.users.get(username)
            before = len(reconciler.outcomes)
            if self.revoke_now:
                self._revoke(reconciler, username, rules)
                entry["reason"] = "revoked"
            else:
                # Read the user's logins right before the write, so a login during the run is not undone.
                if account is not None:
                    logins = snap.logins_of(username, account["pk"], refresh=True)
                    entry["last_login"] = format_time(logins[0]["created"]) if logins else None
                not_before = next((s.settings.get("not_before") for s, _r in rules if s and s.settings.get(
                    "not_before")), None)
                expected, _sources = w.entries_from_state(username, account, not_before, slots=len(rules),
                                                          now=self.now)
                for (slot, rule), (match, value) in zip(rules, expected):
                    self._write(reconciler, rule, match, value)
                entry["reason"] = self._reason(account, rules, expected, entry["last_login"])
            entry["expired"] = any(o.changed for o in reconciler.outcomes[before:] if o.kind is snap.rule_kind)
        return summaries

    def _owned_rules(self, username):
        """(slot or None, rule) of each rule the whitelist owns for the user, in slot order."""
        own = self.w.ownership
        found = [(slot, slot.rule) for slot in own.slots_of(username) if slot.rule]
        chain = own.legacy.get(username)
        if not found and chain is not None and chain.rule is not None:
            found = [(None, chain.rule)]
        return found

    def _write(self, reconciler, rule, match, value):
        desired = dict(priority=rule["priority"], action=rule["action"], enabled=rule["enabled"], match=match,
                       value=value)
        reconciler.ensure(self.w.snapshot.rule_kind, desired, current=rule, lookup=False)

    def _revoke(self, reconciler, username, rules):
        """Nothing from before now counts for the user until the next login; the rules let nobody in."""
        snap = self.w.snapshot
        stamp = self.now.isoformat()
        for slot, rule in rules:
            if slot is not None and slot.mapping is not None and all(k in slot.settings for k in BODY_SETTINGS):
                settings = dict((k, slot.settings[k]) for k in BODY_SETTINGS)
                settings["not_before"] = stamp
                reconciler.ensure(snap.mapping_kind, dict(name=slot.mapping["name"],
                                                          expression=whitelist_body_expression(**settings)),
                                  current=as_stored(slot.mapping),
                                  lookup=False)
            self._write(reconciler, rule, "IP", self.settings.placeholder)

    def _reason(self, account, rules, expected, last_login):
        placeholder = self.settings.placeholder
        if account is None:
            return "the user is gone from authentik"
        if not account["is_active"]:
            return "the user is deactivated"
        if all((r["match"], r["value"]) == e for (_s, r), e in zip(rules, expected)):
            if all(r["value"] == placeholder for _s, r in rules):
                return "nothing whitelisted"
            return ("the rules hold the user's live sessions" if self.settings.follow_sessions
                    else "logged in within %d days" % self.settings.expire_days if self.settings.expire_days
                    else "the rules hold the user's newest logins")
        if self.settings.follow_sessions:
            return "a session ended"
        if last_login is None:
            return "no login recorded"
        return ("last login older than %d days" % self.settings.expire_days if self.settings.expire_days
                else "no longer among the user's newest logins")
