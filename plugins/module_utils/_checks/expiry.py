# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Expiry: bring every user's rules back to what authentik's state says, now; revoke named users.

A body mapping computes a user's addresses from authentik's state whenever
authentik sends it, but nothing is sent while nobody logs in: an address may
outlive the user's last login, a session that expired or was revoked, or the
user's account. Expiry writes each owned rule from the same state the body
mappings read (the newest distinct addresses of real logins within
``expire_days``, or live sessions; nothing for an inactive or deleted user, or
one the inventory no longer lists), with the same function.

Named users are revoked at once: their body mappings learn the time
(``not_before``), so nothing before it counts until they log in again, their
rules go back to the placeholder, and their authentik sessions are ended (every
device must log in again; a session from before the revocation can never count).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.client import format_time
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.directory import SessionKind
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._checks.usage import RETENTION_FIX, RequestLog
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.holdings import written_as
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.inputs import InputError


class WhitelistExpiry(object):
    def __init__(self, whitelist, now=None):
        self.w = whitelist
        self.settings = whitelist.settings
        self.now = now or datetime.now(timezone.utc)
        self.expire_users = whitelist.inputs.expire_users

    def _listed(self):
        """The users considered: every present user, or the named ones (each must be a present user)."""
        present = [u.username for u in self.w.present]
        expire_users = self.expire_users
        if expire_users is not None:
            # Named users are revoked now, whatever their last login; each must be a whitelisted user.
            unknown = [u for u in expire_users if u not in present]
            if unknown:
                raise InputError("expire_users: %s %s not among the present users of the whitelist"
                                 % (", ".join(repr(u) for u in unknown), "is" if len(unknown) == 1 else "are"))
            present = [u for u in present if u in expire_users]
        self.listed = set(present)
        self.usernames = present
        self.revoke_now = expire_users is not None

    def apply(self, reconciler):
        w = self.w.read()
        self._listed()
        if w.ownership.collisions:
            raise InputError("; ".join(c.message for c in w.ownership.collisions))
        snap = w.snapshot
        self.idle_days = w.inputs.idle_days
        self.usage = self._request_log() if self.idle_days and not self.revoke_now else None
        usernames = list(self.usernames)
        if not self.revoke_now:
            # Users no longer listed, or marked absent, whose rules the whitelist still owns: they get nobody in.
            usernames += [u for u in w.ownership.usernames() if u not in usernames]
        summaries = []
        for username in dict.fromkeys(usernames):
            rules = self._owned_rules(username)
            entry = dict(username=username, rule_id=rules[0][2]["rule_id"] if rules else None,
                         rule_ids=[rule["rule_id"] for _s, _rid, rule in rules],
                         whitelisted=rules[0][2]["value"] if rules else None,
                         addresses=[rule["value"] for _s, _rid, rule in rules], last_login=None, expired=False,
                         restored=False, closed=[])
            summaries.append(entry)
            if not rules:
                entry["reason"] = "the whitelist owns no rule of this user (run playbooks/site.yml first)"
                continue
            before = len(reconciler.outcomes)
            if self.revoke_now:
                entry["sessions_ended"] = self._revoke(reconciler, username, rules)
                entry["reason"] = "revoked"
            else:
                entry["reason"] = self._expire(reconciler, username, rules, entry)
            rewritten = any(o.changed for o in reconciler.outcomes[before:]
                            if o.kind in [state.rule_kind for state in snap.resources.values()])
            # a rule that only gets back an address its delivery missed is restored, not expired
            entry["expired"] = rewritten and not entry["restored"]
        for entry in summaries:
            entry["summary"] = summary_line(entry, reconciler.check_mode)
        return summaries

    def _owned_rules(self, username):
        """(slot, resource id, rule) of each rule the whitelist owns for the user, in slot order."""
        return self.w.ownership.rules_of(username)

    def _request_log(self):
        """Pangolin's request log, when idle_days needs it: refused, before any write, when it cannot tell."""
        held = set((r["match"], r["value"]) for username in self.usernames
                   for _slot, _rid, r in self.w.ownership.rules_of(username))
        usage = RequestLog(self.w.pangolin, self.w.snapshot.org_id, self.w.deployment.resource_ids,
                           self.now).read(held - set([("IP", self.settings.placeholder)]))
        if not usage.available:
            raise InputError("idle_days %d needs Pangolin's request log, and %s; nothing was changed"
                             % (self.idle_days, usage.problem))
        if 0 <= usage.retention < self.idle_days:
            raise InputError("idle_days %d is longer than Pangolin keeps its request log (%d days), so an address "
                             "used in between would look idle; nothing was changed: lower idle_days or %s"
                             % (self.idle_days, usage.retention, RETENTION_FIX))
        return usage

    def _idle(self, username, judged, expected):
        """(match, value, why) of the addresses the user's rules hold that let nothing through for idle_days: days
        count from the last request a rule let through from there, or from the newest login from there when that
        is later (a login renews an address)."""
        idle, limit = [], timedelta(days=self.idle_days)
        placeholder = ("IP", self.settings.placeholder)
        for found in dict.fromkeys(expected):
            if found == placeholder:
                continue
            if any(self.usage.last_use(rid, found) is None and not self.usage.complete(rid)
                   for rid in self.usage.resource_ids):
                continue  # not among the newest requests read (the page bound): unknown, never idle
            used = self.usage.last_use_anywhere(found)
            logins = [s["when"] for s in self.w.snapshot.sources_of(username, False)
                      if s["when"] is not None and written_as(s["address"], judged.ipv6_prefix) == found]
            renewed = max([w for w in [used] + logins if w is not None] or [None])
            if renewed is not None and self.now - renewed <= limit:
                continue
            if used is not None:
                why = "no request let through for %d days (last %s; idle_days %d)" % (
                    (self.now - used).days, format_time(used), self.idle_days)
            else:
                why = "no request let through in %s since the login (idle_days %d)" % (
                    self.usage.window, self.idle_days)
            idle.append((found[0], found[1], why))
        return idle

    def _close(self, reconciler, username, idle):
        """Record the closed addresses in the user's body mappings: a login from there after now reopens one."""
        stamp = self.now.isoformat()
        recorded = self.w.recorded_of(username)  # every slot records every closing and the latest revocation
        closing_now = set((match, value) for match, value, _why in idle)
        closed = tuple(c for c in recorded.closed if (c[0], c[1]) not in closing_now) if recorded else ()
        for slot in self.w.ownership.slots_of(username):
            if slot.body is not None:
                body = slot.body.with_changes(**dict(recorded.kept(), closed=closed + tuple(
                    (m, v, stamp) for m, v, _why in idle)))
                reconciler.ensure(self.w.snapshot.mapping_kind, dict(name=slot.mapping["name"],
                                                                     expression=body.expression()),
                                  current=slot.mapping, lookup=False)
                slot.body = body

    def _expire(self, reconciler, username, rules, entry):
        snap, settings = self.w.snapshot, self.settings
        account = snap.accounts.get(username)
        slots = max(slot.number for slot, _rid, _rule in rules)
        if username not in self.listed:
            expected = [("IP", settings.placeholder)] * slots
        else:
            # The user's logins are read right before the write, so a login during the run is not undone.
            if account is not None:
                logins = snap.logins_of(username, account["pk"], refresh=True)
                entry["last_login"] = format_time(logins[0]["created"]) if logins else None
            judged = self.w.judged_by(username, slots)
            expected = snap.entries_of(username, judged, now=self.now)
            idle = self._idle(username, judged, expected) if self.usage is not None else []
            if idle:
                self._close(reconciler, username, idle)
                expected = snap.entries_of(username, self.w.judged_by(username, slots), now=self.now)
                entry["closed"] = [dict(match=m, address=v, resource_ids=list(self.w.deployment.resource_ids),
                                        why=why) for m, v, why in idle]
        takes_away = puts_back = False
        for slot, resource_id, rule in rules:
            match, value = expected[slot.number - 1]
            if (rule["match"], rule["value"]) != (match, value):
                takes_away = takes_away or rule["value"] != settings.placeholder
                puts_back = puts_back or value != settings.placeholder
            self._write(reconciler, resource_id, rule, match, value)
        if entry["closed"]:
            on = ", ".join(str(r) for r in self.w.deployment.resource_ids)
            return "; ".join("closes %s on resource%s %s: %s" % (c["address"], "s" if "," in on else "", on, c["why"])
                             for c in entry["closed"])
        if puts_back and not takes_away:
            entry["restored"] = True
            return ("puts back the address of a live session the rules missed" if settings.follow_sessions
                    else "puts back the address of a login the rules missed")
        return self._reason(username, account, rules, expected, entry["last_login"])

    def _write(self, reconciler, resource_id, rule, match, value):
        desired = dict(priority=rule["priority"], action=rule["action"], enabled=rule["enabled"], match=match,
                       value=value)
        reconciler.ensure(self.w.snapshot.resource(resource_id).rule_kind, desired, current=rule, lookup=False)

    def _revoke(self, reconciler, username, rules):
        """Nothing from before now counts for the user until the next login; the rules let nobody in; every
        authentik session of the user ends."""
        snap = self.w.snapshot
        stamp = self.now.isoformat()
        account = snap.accounts.get(username)
        sessions = SessionKind(self.w.authentik, username, account["pk"]) if account else None
        ended = sessions.of_user() if sessions else []
        # The body mappings first: from now on a delivery computes nothing from before the revocation, and never
        # a session live now; then the rules; then the sessions themselves.
        recorded = self.w.recorded_of(username)
        for slot in self.w.ownership.slots_of(username):
            if slot.body is not None:
                body = slot.body.with_changes(not_before=stamp, revoked_sessions=tuple(s["uuid"] for s in ended),
                                              closed=recorded.closed)
                reconciler.ensure(snap.mapping_kind, dict(name=slot.mapping["name"], expression=body.expression()),
                                  current=slot.mapping, lookup=False)
                slot.body = body
        for _slot, resource_id, rule in rules:
            self._write(reconciler, resource_id, rule, "IP", self.settings.placeholder)
        for session in ended:
            reconciler.ensure(sessions, dict(uuid=session["uuid"]), "absent", current=session, lookup=False)
        return len(ended)

    def _reason(self, username, account, rules, expected, last_login):
        placeholder = self.settings.placeholder
        if username not in self.listed:
            return "not a present user of the inventory: the rules let nobody in"
        if account is None:
            return "the user is gone from authentik"
        if not account["is_active"]:
            return "the user is deactivated"
        if all((r["match"], r["value"]) == expected[s.number - 1] for s, _rid, r in rules):
            if all(r["value"] == placeholder for _s, _rid, r in rules):
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


def summary_line(entry, check_mode):
    """One line per user, in check mode a prediction."""
    if entry["reason"] == "revoked":
        verb = "would be revoked" if check_mode else "revoked"
        return "%s: %s: the rules let nobody in, %d authentik session(s) %s" % (
            entry["username"], verb, entry.get("sessions_ended") or 0, "would end" if check_mode else "ended")
    if not entry["rule_ids"]:
        verb = "nothing to expire"  # the same in check mode: there is no rule to keep or reset
    elif entry["restored"]:
        verb = "would restore" if check_mode else "restored"
    elif entry["expired"]:
        verb = "would expire" if check_mode else "expired"
    else:
        verb = "would keep as it is" if check_mode else "kept"
    return "%s: %s - %s" % (entry["username"], verb, entry["reason"])


__all__ = ["WhitelistExpiry"]
