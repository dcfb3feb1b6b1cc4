# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The doctor's look at one listed user: every link of the user's chain, on every resource.

The account, each body mapping and the settings it records, each transport and
the rule it names, the notification rule that sends them, rules that come first
and shadow the user's, what each rule lets in and where that comes from, and
why the last login did not arrive when it did not. A member of
``users_from_group`` the whitelist holds nothing for yet has no chain to look
at: one problem says so.
"""

from __future__ import annotations

from datetime import timedelta

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.body import BodySettings
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.holdings import (
    may_hold,
    refusal,
    rule_entry,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.client import format_time
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._checks.usage import ago
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._checks.findings import (
    PROXY_SETTING,
    RERUN,
    Finding,
    covers,
    http_status,
    log_text,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.urls import same_base

# A login younger than this may still be on its way through authentik's worker.
IN_FLIGHT = timedelta(minutes=2)


class ChainExam(object):
    """Examines one user's chain with what the doctor read."""

    def __init__(self, doctor, username):
        self.d = doctor
        self.snap, self.own, self.dep = doctor.snap, doctor.own, doctor.dep
        self.settings = doctor.settings
        self.username = username
        self.report = Finding()
        self.account = self.snap.accounts.get(username)

    def examine(self):
        username, report, account = self.username, self.report, self.account
        summary = dict(username=username, rule_id=None, priority=None, match=None, whitelisted=None,
                       addresses=[], last_login=None, last_login_ip=None, group=None, refused_logins=[])
        if account is None:
            report.problem("user", "authentik has no user %r" % username,
                           "create the user in authentik (jellyfin_whitelist_authentik_users), then %s" % RERUN)
        elif not account["is_active"]:
            report.note("user", "authentik user %r is deactivated, so the user cannot log in and the rules must "
                        "let nobody in" % username, "activate the user in authentik")
        for collision in self.own.collisions:
            if collision.username == username:
                report.problem(collision.check, collision.message,
                               "{site} refuses to run until it is resolved, as the message says")
        if username in self.d.new_members:
            return self._new_member(summary)
        rules = [rule for number in range(1, self.settings.max_addresses + 1)
                 for rule in self._slot(number)]
        extra = [s for s in self.own.slots_of(username) if s.number > self.settings.max_addresses]
        if extra:
            report.problem("slots", "user %r has %d rule(s) beyond max_addresses %d" % (
                username, len(extra), self.settings.max_addresses), RERUN)
        if any(kind != "transport" for slot in self.own.slots_of(username) for kind, _view in slot.superseded):
            report.note("legacy", "user %r still has a chain of an older version of this collection" % username,
                        RERUN)
        self._group(summary)
        for resource_id, rule in rules:
            self._shadowing(resource_id, rule)
        self._addresses(rules, summary)
        if rules:
            first = rules[0][1]
            summary.update(rule_id=first["rule_id"], priority=first["priority"], match=first["match"],
                           whitelisted=first["value"])
        summary.update(healthy=not report.problems, problems=report.problems, notes=report.notes)
        return summary

    def _new_member(self, summary):
        """A member of users_from_group the whitelist holds nothing for yet: one problem, not one per missing link."""
        username, report = self.username, self.report
        report.problem("new_member", "user %r is a member of group %r (users_from_group) but has no rules yet, so "
                       "the whitelist does not let the user in" % (username, self.settings.users_from_group),
                       "run {site}, which makes the user's rules")
        logins = self.snap.logins_of(username, self.account["pk"]) if self.account else []
        if logins:
            summary.update(last_login=format_time(logins[0]["created"]), last_login_ip=logins[0]["client_ip"])
        summary.update(healthy=False, problems=report.problems, notes=report.notes)
        return summary

    # -- each rule -----------------------------------------------------------------
    def _slot(self, number):
        """[(resource id, rule)] the slot owns, checking its body mapping and, per resource, its transport."""
        report = self.report
        name = self.dep.slot_name(self.username, number)
        slot = self.own.slots.get((self.username, number))
        if slot is None or slot.mapping is None:
            report.problem("body_mapping", "authentik has no webhook mapping %r (the webhook's body)" % name, RERUN)
        found = []
        for resource_id in self.dep.resource_ids:
            rule = self._transport_and_rule(slot, number, resource_id)
            if rule is not None:
                self._rule(slot, name, resource_id, rule)
                found.append((resource_id, rule))
        return found

    def _transport_and_rule(self, slot, number, resource_id):
        """The rule the slot owns on the resource (also one its broken chain still owns: it still lets its address
        in), after checking the transport that should post to it."""
        report, headers = self.report, self.d.headers
        name = self.dep.transport_name(self.username, number, resource_id)
        transport = slot.transports.get(resource_id) if slot else None
        owned = slot.rules.get(resource_id) if slot else None
        if transport is None:
            elsewhere = [(rid, t) for rid, t in sorted((slot.transports if slot else {}).items())
                         if rid not in self.dep.resource_ids]
            if elsewhere:
                report.problem("transport", "transport %r updates a rule of resource %d, not of resource %d"
                               % (elsewhere[0][1]["name"], elsewhere[0][0], resource_id), RERUN)
            elif not any(c.name == name for c in self.own.collisions):
                report.problem("transport", "authentik has no notification transport %r, so no webhook is sent"
                               % name, RERUN)
            return owned
        url = transport.get("webhook_url") or ""
        if headers is not None and transport.get("headers_mapping") != headers["pk"]:
            report.problem("transport", "transport %r does not send the headers mapping %r (Pangolin's key)"
                           % (name, headers["name"]), RERUN)
        if slot.mapping is not None and transport.get("body_mapping") != slot.mapping["pk"]:
            report.problem("transport", "transport %r does not use the body mapping %r"
                           % (name, slot.mapping["name"]), RERUN)
        if self.d.webhook_url and not same_base(url, self.d.webhook_url):
            report.problem("transport", "transport %r posts to %s, not to %s" % (name, url, self.d.webhook_url),
                           RERUN)
        target = self.snap.targets.get(transport["name"])
        if owned is None or target is None or owned["rule_id"] != target.rule_id:
            report.problem("rule", "transport %r points at rule %s, which resource %d does not have (deleted or "
                           "renumbered)%s" % (name, target.rule_id if target else url, resource_id,
                                              "; rule %d at the priority the body mapping recorded still lets %s in"
                                              % (owned["rule_id"], owned["value"]) if owned else ""), RERUN)
        return owned

    def _rule(self, slot, name, resource_id, rule):
        report = self.report
        if not rule.get("enabled"):
            report.problem("rule", "rule %d of resource %d is disabled" % (rule["rule_id"], resource_id), RERUN)
        if slot.body is None:
            return
        if slot.recorded_priority != rule["priority"]:
            report.problem("priority", "the body mapping %r sends priority %s but the rule has priority %s, so "
                           "each login moves the rule" % (name, slot.recorded_priority, rule["priority"]), RERUN)
        if self.account is not None and slot.user_pk != self.account["pk"]:
            report.problem("body_mapping", "the body mapping %r computes the addresses of user pk %s, but %r is "
                           "pk %d now (was the user recreated?)" % (name, slot.user_pk, self.username,
                                                                    self.account["pk"]), RERUN)
        # a revocation or a closing one of the user's body mappings records holds for all of them
        expected = slot.body.with_changes(**self.d.w.recorded_of(self.username).kept()).under(self.settings)
        for setting, (recorded, wanted) in sorted(slot.body.differences(expected).items()):
            says = "another of the user's body mappings records" if setting in BodySettings.KEPT else \
                "the inventory says"
            report.problem("body_mapping", "the body mapping %r was rendered with %s %r, %s %r"
                           % (name, setting, recorded, says, wanted), RERUN)

    def _shadowing(self, resource_id, rule):
        client_ip = None if rule["value"] == self.settings.placeholder else rule["value"].split("/")[0]
        for other in sorted(self.snap.resource(resource_id).rules, key=lambda r: r["priority"]):
            if other["priority"] >= rule["priority"] or not other.get("enabled", True):
                continue
            if other["action"] == rule["action"]:
                continue
            verdict = covers(other, client_ip)
            what = "rule %d (%s %s %s, priority %d)" % (other["rule_id"], other["action"], other["match"],
                                                        other["value"], other["priority"])
            fix = "give the user a priority below %d in the inventory, or change that rule" % other["priority"]
            if verdict:
                self.report.problem("shadowed", "%s comes before the user's rule (priority %d) and matches the "
                                    "user's address, so the user's rule is never reached" % (what, rule["priority"]),
                                    fix)
            elif verdict is None:
                self.report.note("shadowed", "%s comes before the user's rule (priority %d) and may match the "
                                 "user's requests" % (what, rule["priority"]), fix)

    # -- the notification rule ------------------------------------------------------------
    def _group(self, summary):
        report, username = self.report, self.username
        group = self.own.group_of(username)
        if group is None:
            report.problem("notification_rule", "no notification rule of this whitelist sends %r's transports, so "
                           "nothing is sent for the user's logins" % username, RERUN)
            return
        summary["group"] = group.index
        name = group.rule["name"]
        if group.policy is None:
            report.problem("policy", "authentik has no expression policy %r, so no login matches" % name, RERUN)
        elif self.account is not None and self.account["pk"] not in group.user_pks:
            report.problem("policy", "policy %r does not match the logins of user pk %d (was the user recreated?)"
                           % (name, self.account["pk"]), RERUN)
        rule = group.rule
        if not rule.get("destination_event_user") and not rule.get("destination_group"):
            report.problem("notification_rule", "notification rule %r has no recipient (neither the event user nor "
                           "a group), so authentik never sends it" % name, RERUN)
        if group.policy is not None:
            bound = [b for b in group.bindings if str(b.get("policy")) == str(group.policy["pk"])]
            if not bound:
                report.problem("binding", "policy %r is not bound to notification rule %r, so the rule never fires"
                               % (name, name), RERUN)
            elif not any(b.get("enabled", True) and not b.get("negate") for b in bound):
                report.problem("binding", "the binding of policy %r to rule %r is disabled or negated"
                               % (name, name), RERUN)

    # -- what the rules let in -------------------------------------------------------------
    def _addresses(self, rules, summary):
        """What each rule lets in, where it comes from, and whether authentik's state still says so."""
        account, username, report = self.account, self.username, self.report
        if account is None:
            return
        placeholder = self.settings.placeholder
        judged = self.d.w.judged_by(username)
        expected = self.snap.entries_of(username, judged, now=self.d.now)
        for resource_id, rule in rules:
            entry = (rule["match"], rule["value"])
            summary["addresses"].append(dict(resource_id=resource_id, rule_id=rule["rule_id"],
                                             priority=rule["priority"], match=rule["match"], value=rule["value"],
                                             source=self._source_of(entry),
                                             **self._last_use(resource_id, entry)))
            if rule["value"] == placeholder or entry in expected:
                continue
            kind = refusal(rule["value"].split("/")[0], self.settings.private_networks)
            if kind is not None:
                report.problem("refused_address", "rule %d of resource %d lets in %s, a %s address, which can never "
                               "be a device's as Pangolin sees it (or is private and not opted in)"
                               % (rule["rule_id"], resource_id, rule["value"], kind),
                               "run {expire} or {site}, which reset it")
            elif not may_hold(rule, judged):
                report.problem("unwritten_value", "rule %d of resource %d lets in %s %s, which no login makes: the "
                               "whitelist writes one device's address (or its IPv6 prefix), so someone else wrote it"
                               % (rule["rule_id"], resource_id, rule["match"], rule["value"]),
                               "run {site}, which resets it; then find who holds the webhook's key")
            elif not account["is_active"]:
                report.problem("deactivated", "user %r is deactivated, but rule %d of resource %d still lets %s in"
                               % (username, rule["rule_id"], resource_id, rule["value"]),
                               "run {expire} or {site}, which reset it")
            elif self.settings.follow_sessions:
                report.problem("session_gone", "rule %d of resource %d lets %s in, but no live session of %r comes "
                               "from there any more (ended, expired or revoked)"
                               % (rule["rule_id"], resource_id, rule["value"], username),
                               "run {expire} (or {site}), which removes it; schedule the first")
            else:
                report.note("stale", "rule %d of resource %d lets %s in, which %r's logins %s no longer account for"
                            % (rule["rule_id"], resource_id, rule["value"], username,
                               "of the last %d days" % self.settings.expire_days if self.settings.expire_days
                               else "since the revocation"),
                            "run {expire}, which resets it (schedule it)")
        logins = self.snap.logins_of(username, account["pk"])
        self._refused_logins(logins, summary)
        if not logins:
            if account["is_active"] and all(r["value"] == placeholder for _rid, r in rules):
                report.note("last_login", "no login recorded yet; the rules hold the placeholder %s until the "
                            "first login" % placeholder)
            return
        last = logins[0]
        summary.update(last_login=format_time(last["created"]), last_login_ip=last["client_ip"])
        self._last_login(rules, last["created"], last["client_ip"])

    def _last_use(self, resource_id, entry):
        """When the address last let a request through on the resource, from Pangolin's request log: the time
        (None when unknown or never), and in words."""
        usage = self.d.usage
        if entry == ("IP", self.settings.placeholder):
            return dict(last_used=None, last_use="lets nobody in")
        if not usage.available:
            return dict(last_used=None, last_use="unknown")
        when = usage.last_use(resource_id, entry)
        if when is not None:
            return dict(last_used=format_time(when), last_use=ago(when, self.d.now))
        if usage.complete(resource_id):
            return dict(last_used=None, last_use="not in %s" % usage.window)
        return dict(last_used=None, last_use="not among the newest requests of %s" % usage.window)

    def _source_of(self, entry):
        """The newest session or login that explains a rule's value, or None."""
        source = self.snap.source_of(self.username, entry, self.settings.follow_sessions, self.settings.ipv6_prefix)
        if source is None:
            return None
        return dict(kind=source["kind"], id=source["id"], when=format_time(source["when"]), address=source["address"])

    def _refused_logins(self, logins, summary):
        """Logins whose address may not become a rule: each with its address and time; a problem when every login
        of the user that counts was refused (the user cannot get in), a note when some were."""
        settings, now = self.settings, self.d.now
        counting = [e for e in logins if e["created"] is not None and (
            not settings.expire_days or now - e["created"] <= timedelta(days=settings.expire_days))]
        refused = [(e, refusal(e["client_ip"], settings.private_networks)) for e in counting]
        refused = [(e, kind) for e, kind in refused if kind is not None]
        summary["refused_logins"] = [dict(address=e["client_ip"], when=format_time(e["created"]), kind=kind)
                                     for e, kind in refused]
        if not refused:
            return
        shown = ", ".join("%s (%s) at %s" % (e["client_ip"], kind, format_time(e["created"]))
                          for e, kind in refused[:5]) + (", ..." if len(refused) > 5 else "")
        window = "in the last %d days" % settings.expire_days if settings.expire_days else "recorded"
        fix = refused_fix([kind for _e, kind in refused])
        if len(refused) == len(counting):
            self.report.problem("refused_address", "every login of %r %s came from an address that cannot be the "
                                "device's own as Pangolin sees it, so nothing lets the user in: %s"
                                % (self.username, window, shown), fix)
        else:
            self.report.note("refused_address", "%d of %d logins of %r %s came from an address that cannot be the "
                             "device's own as Pangolin sees it, and were skipped: %s"
                             % (len(refused), len(counting), self.username, window, shown), fix)

    def _last_login(self, rules, created, client_ip):
        """Whether the newest login reached every resource's rules, and why not when it did not."""
        report = self.report
        failures = self._failures()
        if not rules or client_ip is None or not self.account["is_active"]:
            for cause, failure in failures:
                report.note("webhook", failure, failure_fix([(cause, failure)]))
            return
        if self.settings.follow_sessions:
            entry = rule_entry(client_ip, self.settings.ipv6_prefix, self.settings.private_networks)
        else:  # what the newest login alone gives the first rule: nothing when it no longer counts
            entry = self.snap.entries_of(self.username, self.d.w.judged_by(self.username, 1), now=self.d.now,
                                         logins=[dict(created=created, client_ip=client_ip)])[0]
            entry = None if entry == ("IP", self.settings.placeholder) else entry
        if entry is None:
            return  # not an address a rule may hold, or a login the rules no longer count
        held = {}
        for resource_id, rule in rules:
            held.setdefault(resource_id, []).append(rule)
        missed = [rid for rid, found in sorted(held.items())
                  if not any((r["match"], r["value"]) == entry for r in found)]
        if not missed:
            for _cause, failure in failures:
                report.note("webhook", "%s (the user's newest login got through)" % failure)
            return
        message = ("the last login (%s from %s) did not reach Pangolin: the rules hold %s"
                   % (format_time(created), client_ip, ", ".join(r["value"] for rid, r in rules if rid in missed)))
        if len(held) > 1:
            message += " on resource%s %s" % ("s" if len(missed) > 1 else "", ", ".join(str(r) for r in missed))
        if created is not None and self.d.now - created < IN_FLIGHT:
            report.note("webhook", message + "; it is recent and may still be queued in authentik's worker")
            return
        detail = "; ".join(f for _cause, f in failures) if failures else "authentik recorded no failure for it"
        report.problem("webhook", "%s (%s)" % (message, detail), failure_fix(failures))

    def _failures(self):
        """Recorded failures of this user's chain, as (cause, sentence): policy and mapping exceptions,
        failed webhook tasks. The cause picks the fix; it never comes from searching the sentence."""
        found = []
        slots = self.own.slots_of(self.username)
        names = set(s.mapping["name"] for s in slots if s.mapping) | {self.d.headers_name}
        for event in self.d.mapping_errors:
            context = event.get("context") or {}
            mapping = context.get("mapping") or {}
            if mapping.get("name") in names:
                found.append(("mapping", "authentik could not evaluate webhook mapping %r at %s: %s"
                              % (mapping.get("name"), format_time(event.get("created")), context.get("message"))))
        group = self.own.group_of(self.username)
        policy = group.policy if group else None
        if policy is not None:
            wanted = str(policy["pk"]).replace("-", "")
            for event in self.d.policy_errors:
                context = event.get("context") or {}
                if str(context.get("policy_uuid") or "").replace("-", "") == wanted:
                    message = str(context.get("message") or "").strip().splitlines()
                    found.append(("policy", "authentik's policy %r failed at %s: %s"
                                  % (policy["name"], format_time(event.get("created")),
                                     message[-1] if message else "no message")))
                    break  # it fails on every event; once is enough
        wanted = set(str(t["pk"]).replace("-", "") for s in slots for t in s.transports.values())
        for task in self.d.failed_tasks:
            if str(task.get("rel_obj_id") or "").replace("-", "") not in wanted:
                continue
            errors = [log for log in task.get("logs") or []
                      if str(log.get("log_level", "")).lower() in ("error", "exception", "critical")]
            status = http_status(errors[-1]) if errors else None
            cause = {401: "key", 403: "key", 404: "gone"}.get(status, "delivery")
            found.append((cause, "the webhook task failed at %s after %s retries: %s"
                          % (task.get("mtime"), task.get("retries"), log_text(errors[-1]) if errors else "no message")))
        return found


def refused_fix(kinds):
    """What to do about logins from addresses that may not become rules, by the kinds of those addresses."""
    fix = ("authentik recorded the address of whatever talks to it, not the device's: most likely a reverse proxy "
           "in front of authentik that it does not trust or that sends no X-Forwarded-For. Make the proxy set "
           "X-Forwarded-For to the client's address and add the proxy's address to %s on authentik's server (from "
           "authentik 2026.8 on that setting governs every forwarded header), then log in again" % PROXY_SETTING)
    if any(kind in ("private", "shared address space", "unique local") for kind in kinds):
        fix += ("; if Pangolin really sees these clients on your own network, list that network in "
                "jellyfin_whitelist_private_networks")
    return fix


def failure_fix(failures):
    causes = [cause for cause, _sentence in failures]
    for cause, fix in (
            ("key", "Pangolin refused the webhook's key: give the key the updateResourceRule action, or let "
                    "the collection manage it (jellyfin_whitelist_manage_webhook_key) and %s" % RERUN),
            ("gone", "the rule the webhook updates is gone: %s" % RERUN),
            ("mapping", "a webhook mapping is broken: %s" % RERUN),
            ("policy", "the users' login policy is broken: %s" % RERUN),
            ("delivery", "authentik's worker cannot deliver the webhook: check that it reaches the webhook URL "
                         "(jellyfin_whitelist_webhook_url) and that Pangolin's Integration API is up")):
        if cause in causes:
            return fix
    return "check authentik's worker (System > Tasks) and that it reaches the webhook URL; then log in again"


__all__ = ["ChainExam", "failure_fix"]
