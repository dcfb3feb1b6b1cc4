# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only checks of every link of the login → webhook → Pangolin rule chain.

The doctor reads what ``WhitelistPlan`` reads (each list once) plus what
authentik recorded: each user's newest ``login`` event, recent logins of
everyone (an untrusted proxy shows as one private address for all users),
mapping exceptions, failed webhook tasks and the worker's queue. It writes
nothing. Each finding says what is wrong and what to do, in plain words.

A *problem* breaks the user's whitelist now; a *note* is worth knowing
but does not (history of failures that a later login got past, a queue that
delays logins, a shared public address that may be a household NAT).
"""

from __future__ import annotations

import ipaddress
import json
import re
from datetime import datetime, timedelta, timezone

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.addresses import rule_entry
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.api_client import ApiError
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.authentik import format_time
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.webhook_key import bearer_in, sends_key

RERUN = "rerun playbooks/site.yml, which rebuilds the user's chain"
PROXY_SETTING = "AUTHENTIK_LISTEN__TRUSTED_PROXY_CIDRS"
# A login younger than this may still be on its way through authentik's worker.
IN_FLIGHT = timedelta(minutes=2)


# Where a reverse proxy talks to authentik from: private networks (RFC 1918,
# carrier-grade NAT, IPv6 unique local), loopback and link-local. Python's
# is_private also counts the documentation ranges, which are public here.
INTERNAL_NETWORKS = [ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "0.0.0.0/8", "255.255.255.255/32", "fc00::/7", "fe80::/10", "::1/128", "::/128")]


def is_internal(client_ip):
    """Private, loopback, link-local or unparseable: what authentik sees behind an untrusted proxy."""
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return True
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in INTERNAL_NETWORKS if network.version == address.version)


def covers(rule, client_ip):
    """Whether ``rule`` matches a request from ``client_ip``: True, False or None (cannot tell)."""
    match, value = rule.get("match"), str(rule.get("value") or "")
    if match == "PATH":
        return True if value in ("*", "/*") else None
    if match in ("COUNTRY", "ASN") and value.upper() in ("ALL", "AS0"):
        return True if client_ip is None or not is_internal(client_ip) else False
    if match in ("IP", "CIDR"):
        try:
            network = ipaddress.ip_network(value, strict=False)
        except ValueError:
            return None
        if network.prefixlen == 0:
            return True
        if client_ip is None:
            return False
        try:
            return ipaddress.ip_address(client_ip) in network
        except (ValueError, TypeError):
            return None
    return None  # COUNTRY, REGION, ASN of one place: depends on where the user is


class Finding(object):
    def __init__(self):
        self.problems = []
        self.notes = []

    def problem(self, check, message, fix):
        self.problems.append(dict(check=check, message=message, fix=fix))

    def note(self, check, message, fix=None):
        self.notes.append(dict(check=check, message=message, fix=fix))


class WhitelistDoctor(object):
    def __init__(self, whitelist, headers_mapping=None, webhook_url=None, recent_logins=100,
                 manage_webhook_key=False, secrets=None, now=None):
        self.w = whitelist
        self.settings = whitelist.settings
        self.dep = whitelist.deployment
        self.pangolin = whitelist.pangolin
        self.authentik = whitelist.authentik
        self.resource_id = self.dep.resource_id
        self.recent_logins = recent_logins
        self.now = now or datetime.now(timezone.utc)
        self.webhook_url = (webhook_url or "").rstrip("/")
        self.manage_webhook_key = manage_webhook_key
        self.secrets = secrets  # what the module's output is scrubbed of

    # -- reads ---------------------------------------------------------------
    def read(self):
        self.w.read()
        self.snap, self.own = self.w.snapshot, self.w.ownership
        self.headers = self.snap.mappings.get(self.w.headers_name)
        if self.secrets is not None:
            # The doctor echoes authentik's error messages; one about the headers mapping may quote its key.
            self.secrets.add_credentials((self.headers or {}).get("expression"))
        self.logins = self.authentik.recent_events("login", limit=self.recent_logins)
        self.mapping_errors = self.authentik.recent_events("property_mapping_exception", limit=100)
        self.policy_errors = self.authentik.recent_events("policy_exception", limit=100)
        # A webhook that failed every retry ends "rejected"; "error" is kept for servers that aggregate logs.
        failed = self.authentik.tasks({"aggregated_status": ["rejected", "error"],
                                       "rel_obj_content_type__app_label": "authentik_events",
                                       "rel_obj_content_type__model": "notificationtransport",
                                       "ordering": "-mtime"})
        self.task_api = failed is not None
        self.failed_tasks = failed[0] if failed else []
        queued = self.authentik.tasks({"state": "queued"}, page_size=1)
        self.queued = queued[1] if queued else None

    # -- checks ----------------------------------------------------------------
    def examine(self):
        self.read()
        report = Finding()
        self._check_resource(report)
        self._check_headers(report)
        self._check_webhook_key(report)
        self._check_proxy(report)
        self._check_backlog(report)
        self._check_leftovers(report)
        users = [self._examine_user(user) for user in self.w.users if user["state"] == "present"]
        healthy = not report.problems and not any(u["problems"] for u in users)
        return dict(healthy=healthy, problems=report.problems, notes=report.notes, users=users,
                    resource_id=self.resource_id, instance=self.dep.instance,
                    apply_rules=self.snap.resource.get("apply_rules"),
                    backlog=dict(available=self.task_api, queued=self.queued,
                                 notification_rules=len(self.snap.notification_rules)))

    def _check_resource(self, report):
        if not self.snap.resource.get("apply_rules"):
            report.problem("apply_rules", "resource %d has rules switched off (applyRules is false), so Pangolin "
                           "ignores every user's rule" % self.resource_id,
                           "rerun playbooks/site.yml (it turns applyRules on), or enable rules in the resource's "
                           "settings in Pangolin")

    def _check_headers(self, report):
        name = self.w.headers_name
        if self.headers is None:
            report.problem("headers_mapping", "authentik has no webhook mapping %r, so webhooks reach Pangolin "
                           "without its API key and are refused" % name, RERUN)
        elif bearer_in(self.headers.get("expression")) is None:
            report.note("headers_mapping", "webhook mapping %r was not written by this collection; the doctor "
                        "cannot tell which Pangolin key it sends" % name)

    def _check_webhook_key(self, report):
        """Does Pangolin still have the key the headers mapping sends, allowed to update rules, and nothing else?"""
        expression = (self.headers or {}).get("expression")
        bearer = bearer_in(expression)
        if sends_key(expression, self.pangolin.token):
            report.problem("webhook_key", "the headers mapping sends this playbook's own Pangolin key to authentik, "
                           "where anyone who may read mappings can read it and do whatever the playbook can",
                           "give authentik a key of its own: set jellyfin_whitelist_manage_webhook_key, or a key "
                           "with only updateResourceRule in jellyfin_whitelist_webhook_api_key, and rerun "
                           "playbooks/site.yml")
            return
        if bearer is None:
            return
        key_id = bearer.split(".", 1)[0]
        org_id = self.snap.org_id
        try:
            keys = self.pangolin.list_api_keys(org_id)
            row = next((k for k in keys if k.get("apiKeyId") == key_id), None)
            actions = self.pangolin.api_key_actions(org_id, key_id) if row is not None else None
        except ApiError as exc:
            if exc.status != 403:
                raise
            report.note("webhook_key", "the doctor cannot check the key authentik sends: reading org keys needs a "
                        "root key with listApiKeys and listApiKeyActions")
            return
        if row is None:
            message = ("Pangolin's org %r has no API key %s, the key authentik sends with each webhook, so Pangolin "
                       "refuses the webhooks" % (org_id, key_id))
            fix = ("rerun playbooks/site.yml: with jellyfin_whitelist_manage_webhook_key it makes a new key; "
                   "otherwise create a key with the updateResourceRule action and set "
                   "jellyfin_whitelist_webhook_api_key")
            if self.manage_webhook_key:
                report.problem("webhook_key", message, fix)
            else:  # it may be a root key, which org key lists leave out
                report.note("webhook_key", message + " (unless it is a root key)", fix)
        elif "updateResourceRule" not in actions:
            report.problem("webhook_key", "the API key %s authentik sends lacks the updateResourceRule action, so "
                           "Pangolin refuses the webhooks (403)" % key_id,
                           "give the key the updateResourceRule action in Pangolin, or %s" % RERUN)
        elif actions != ["updateResourceRule"]:
            report.note("webhook_key", "the API key %s authentik sends may do more than update rules (%s)"
                        % (key_id, ", ".join(actions)),
                        "leave it only updateResourceRule (jellyfin_whitelist_manage_webhook_key does)")

    def _check_proxy(self, report):
        by_ip = {}
        for event in self.logins:
            username = (event.get("user") or {}).get("username")
            if username:
                by_ip.setdefault(event.get("client_ip") or "(none)", set()).add(username)
        for client_ip, usernames in sorted(by_ip.items()):
            if len(usernames) < 2:
                continue
            names = ", ".join(sorted(usernames))
            if is_internal(client_ip):
                report.problem(
                    "trusted_proxy",
                    "the recent logins of %d different users (%s) all come from %s, a private or proxy address: "
                    "authentik sees the reverse proxy in front of it instead of each user, so every whitelist "
                    "gets the proxy's address" % (len(usernames), names, client_ip),
                    "add the proxy's address to %s (for example %s) on authentik's server and worker, make the "
                    "proxy set X-Forwarded-For to the client address, restart authentik, then log in again"
                    % (PROXY_SETTING, _as_cidr(client_ip)))
            else:
                report.note(
                    "shared_address",
                    "the recent logins of %d different users (%s) all come from %s; fine for one household "
                    "behind one router, but a proxy if these users live apart" % (len(usernames), names, client_ip),
                    "if it is a proxy, add it to %s" % PROXY_SETTING)

    def _check_leftovers(self, report):
        """What users absent or no longer listed still have, and chains of an older version."""
        present = set(u["username"] for u in self.w.users if u["state"] == "present")
        absent = set(u["username"] for u in self.w.users if u["state"] == "absent")
        for username in self.own.usernames():
            if username in present:
                if username in self.own.legacy:
                    report.note("leftover", "user %r still has the chain of an older version of this collection"
                                % username, "rerun playbooks/site.yml, which moves the user to the current one")
                continue
            whats = []
            if self.own.slots_of(username):
                whats.append("%d rule chain(s)" % len(self.own.slots_of(username)))
            if username in self.own.legacy:
                whats.append("a chain of an older version")
            addresses = [s.rule["value"] for s in self.own.slots_of(username) if s.rule]
            chain = self.own.legacy.get(username)
            if chain and chain.rule:
                addresses.append(chain.rule["value"])
            open_to = [a for a in addresses if a != self.settings.placeholder]
            report.note("leftover", "user %r is %s but still has %s%s" % (
                username, "marked absent" if username in absent else "not in the inventory", " and ".join(whats),
                (", which still let %s in" % ", ".join(open_to)) if open_to else ""),
                "rerun playbooks/site.yml" if username in absent else
                "rerun playbooks/site.yml with jellyfin_whitelist_prune: true, or list the user again")

    def _check_backlog(self, report):
        if not self.queued:
            return
        report.note(
            "backlog",
            "authentik's worker has %d queued tasks; every event costs one task per notification rule (%d rules "
            "here), so logins wait behind the queue and the whitelist lags until it drains"
            % (self.queued, len(self.snap.notification_rules)),
            "wait for the queue to drain (authentik admin: System > Tasks), or give the worker more CPU")

    # -- one user ------------------------------------------------------------------
    def _examine_user(self, user):
        username = user["username"]
        report = Finding()
        summary = dict(username=username, rule_id=None, priority=None, match=None, whitelisted=None,
                       addresses=[], last_login=None, last_login_ip=None, group=None)
        account = self.snap.users.get(username)
        if account is None:
            report.problem("user", "authentik has no user %r" % username,
                           "create the user in authentik (jellyfin_whitelist_authentik_users), then %s" % RERUN)
        elif not account["is_active"]:
            report.note("user", "authentik user %r is deactivated, so the user cannot log in and the rules must "
                        "let nobody in" % username, "activate the user in authentik")
        slots = [self._examine_slot(report, username, number)
                 for number in range(1, self.settings.max_addresses + 1)]
        extra = [s for s in self.own.slots_of(username) if s.number > self.settings.max_addresses]
        if extra:
            report.problem("slots", "user %r has %d rule(s) beyond max_addresses %d" % (
                username, len(extra), self.settings.max_addresses), RERUN)
        if username in self.own.legacy:
            report.note("legacy", "user %r still has a chain of an older version of this collection" % username,
                        RERUN)
        self._check_group(report, username, account, summary)
        rules = [s for s in slots if s is not None]
        for rule in rules:
            self._check_shadowing(report, rule)
        self._check_addresses(report, username, account, rules, summary)
        if rules:
            first = rules[0]
            summary.update(rule_id=first["rule_id"], priority=first["priority"], match=first["match"],
                           whitelisted=first["value"])
        summary.update(healthy=not report.problems, problems=report.problems, notes=report.notes)
        return summary

    def _examine_slot(self, report, username, number):
        """The body mapping, transport and rule of one of the user's rules; the rule, to list and judge.

        With the chain broken, the rule the whitelist still owns (found by the priority its body mapping
        recorded) is returned all the same: it still lets its address in.
        """
        name = self.dep.slot_name(username, number)
        slot = self.own.slots.get((username, number))
        mapping = slot.mapping if slot else None
        transport = slot.transport if slot else None
        owned = slot.rule if slot else None
        if mapping is None:
            report.problem("body_mapping", "authentik has no webhook mapping %r (the webhook's body)" % name, RERUN)
        if transport is None:
            report.problem("transport", "authentik has no notification transport %r, so no webhook is sent" % name,
                           RERUN)
            return owned
        url = transport.get("webhook_url") or ""
        if transport.get("mode") != "webhook":
            report.problem("transport", "transport %r is in mode %r, not webhook" % (name, transport.get("mode")),
                           RERUN)
        if self.headers is not None and transport.get("headers_mapping") != self.headers["pk"]:
            report.problem("transport", "transport %r does not send the headers mapping %r (Pangolin's key)"
                           % (name, self.w.headers_name), RERUN)
        if mapping is not None and transport.get("body_mapping") != mapping["pk"]:
            report.problem("transport", "transport %r does not use the body mapping %r" % (name, name), RERUN)
        if self.webhook_url and not url.startswith(self.webhook_url + "/"):
            report.problem("transport", "transport %r posts to %s, not to %s" % (name, url, self.webhook_url),
                           RERUN)
        target = transport.get("target")
        if target is None:
            report.problem("transport", "transport %r posts to %s, which is not a Pangolin rule URL" % (name, url),
                           RERUN)
            return owned
        if target[0] != self.resource_id:
            report.problem("transport", "transport %r updates a rule of resource %s, not of resource %d"
                           % (name, target[0], self.resource_id), RERUN)
            return owned
        if owned is None or owned["rule_id"] != target[1]:
            report.problem("rule", "transport %r points at rule %d, which resource %d does not have (deleted or "
                           "renumbered)%s" % (name, target[1], self.resource_id, "; rule %d at the priority the body "
                                              "mapping recorded still lets %s in" % (owned["rule_id"], owned["value"])
                                              if owned else ""), RERUN)
            return owned
        rule = owned
        if not rule.get("enabled"):
            report.problem("rule", "rule %d is disabled" % rule["rule_id"], RERUN)
        if rule.get("action") != self.settings.action:
            report.problem("rule", "rule %d is a %s rule, not %s"
                           % (rule["rule_id"], rule.get("action"), self.settings.action), RERUN)
        if rule.get("match") not in ("IP", "CIDR"):
            report.problem("rule", "rule %d matches %s, not an IP address" % (rule["rule_id"], rule.get("match")),
                           RERUN)
        self._check_body_settings(report, name, slot, rule, username)
        return rule

    def _check_body_settings(self, report, name, slot, rule, username):
        settings = slot.settings
        if not settings:
            report.note("body_mapping", "webhook mapping %r was not written by this collection" % name)
            return
        if slot.recorded_priority != rule["priority"]:
            report.problem("priority", "the body mapping %r sends priority %s but the rule has priority %s, so "
                           "each login moves the rule" % (name, slot.recorded_priority, rule["priority"]), RERUN)
        account = self.snap.users.get(username)
        if account is not None and settings.get("user_pk") != account["pk"]:
            report.problem("body_mapping", "the body mapping %r computes the addresses of user pk %s, but %r is "
                           "pk %d now (was the user recreated?)" % (name, settings.get("user_pk"), username,
                                                                    account["pk"]), RERUN)
        for key, want in (("slots", self.settings.max_addresses), ("sessions", self.settings.follow_sessions),
                          ("ipv6_prefix", self.settings.ipv6_prefix), ("expire_days", self.settings.expire_days)):
            if settings.get(key) != want:
                report.problem("body_mapping", "the body mapping %r was rendered with %s %r, the inventory says %r"
                               % (name, key, settings.get(key), want), RERUN)

    def _check_group(self, report, username, account, summary):
        group = self.own.group_of(username)
        if group is None:
            report.problem("notification_rule", "no notification rule of this whitelist sends %r's transports, so "
                           "nothing is sent for the user's logins" % username, RERUN)
            return
        summary["group"] = group.index
        name = group.rule["name"]
        if group.policy is None:
            report.problem("policy", "authentik has no expression policy %r, so no login matches" % name, RERUN)
        elif account is not None and account["pk"] not in group.user_pks:
            report.problem("policy", "policy %r does not match the logins of user pk %d (was the user recreated?)"
                           % (name, account["pk"]), RERUN)
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

    def _check_shadowing(self, report, rule):
        client_ip = None if rule["value"] == self.settings.placeholder else rule["value"].split("/")[0]
        for other in sorted(self.snap.rules, key=lambda r: r["priority"]):
            if other["priority"] >= rule["priority"] or not other.get("enabled", True):
                continue
            if other["action"] == rule["action"]:
                continue
            verdict = covers(other, client_ip)
            what = "rule %d (%s %s %s, priority %d)" % (other["rule_id"], other["action"], other["match"],
                                                        other["value"], other["priority"])
            fix = "give the user a priority below %d in the inventory, or change that rule" % other["priority"]
            if verdict:
                report.problem("shadowed", "%s comes before the user's rule (priority %d) and matches the user's "
                               "address, so the user's rule is never reached" % (what, rule["priority"]), fix)
            elif verdict is None:
                report.note("shadowed", "%s comes before the user's rule (priority %d) and may match the "
                            "user's requests" % (what, rule["priority"]), fix)

    def _check_addresses(self, report, username, account, rules, summary):
        """What each rule lets in, where it comes from, and whether authentik's state still says so."""
        if account is None:
            return
        placeholder = self.settings.placeholder
        expected, sources = self.w.entries_from_state(username, account, self._not_before(username), now=self.now)
        for rule in rules:
            entry = (rule["match"], rule["value"])
            summary["addresses"].append(dict(rule_id=rule["rule_id"], priority=rule["priority"], match=rule["match"],
                                             value=rule["value"], source=self._source_of(entry, sources)))
            if rule["value"] == placeholder or entry in expected:
                continue
            if not account["is_active"]:
                report.problem("deactivated", "user %r is deactivated, but rule %d still lets %s in"
                               % (username, rule["rule_id"], rule["value"]),
                               "run playbooks/expire.yml or playbooks/site.yml, which reset it")
            elif self.settings.follow_sessions:
                report.problem("session_gone", "rule %d lets %s in, but no live session of %r comes from there "
                               "any more (ended, expired or revoked)" % (rule["rule_id"], rule["value"], username),
                               "run playbooks/expire.yml (or site.yml), which removes it; schedule expire.yml")
            else:
                report.note("stale", "rule %d lets %s in, which %r's logins %s no longer account for"
                            % (rule["rule_id"], rule["value"], username,
                               "of the last %d days" % self.settings.expire_days if self.settings.expire_days
                               else "since the revocation"),
                            "run playbooks/expire.yml, which resets it (schedule it)")
        logins = self.snap.logins_of(username, account["pk"])
        if not logins:
            if account["is_active"] and all(r["value"] == placeholder for r in rules):
                report.note("last_login", "no login recorded yet; the rules hold the placeholder %s until the "
                            "first login" % placeholder)
            return
        last = logins[0]
        summary.update(last_login=format_time(last["created"]), last_login_ip=last["client_ip"])
        self._check_last_login(report, username, account, rules, last["created"], last["client_ip"])

    def _not_before(self, username):
        slot = self.own.slots.get((username, 1))
        return slot.settings.get("not_before") if slot else None

    def _source_of(self, entry, sources):
        """The newest session or login that explains a rule's value, or None."""
        for source in sources:
            if rule_entry(source["address"], self.settings.ipv6_prefix) == entry:
                return dict(kind=source["kind"], id=source["id"], when=format_time(source["when"]),
                            address=source["address"])
        return None

    def _check_last_login(self, report, username, account, rules, created, client_ip):
        slot = self.own.slots.get((username, 1))
        name = slot.transport["name"] if slot and slot.transport else self.dep.slot_name(username, 1)
        failures = self._failures(username, name)
        if not rules or client_ip is None or not account["is_active"]:
            for cause, failure in failures:
                report.note("webhook", failure, self._failure_fix([(cause, failure)]))
            return
        entry = rule_entry(client_ip, self.settings.ipv6_prefix)
        since = self.w.since(self._not_before(username), self.now)
        if entry is None or (since is not None and created is not None and created < since):
            return  # not an address a rule could hold, or a login the rules no longer count
        arrived = any((r["match"], r["value"]) == entry for r in rules)
        if arrived:
            for _cause, failure in failures:
                report.note("webhook", "%s (the user's newest login got through)" % failure)
            return
        message = ("the last login (%s from %s) did not reach Pangolin: the rules hold %s"
                   % (format_time(created), client_ip, ", ".join(r["value"] for r in rules)))
        if created is not None and self.now - created < IN_FLIGHT:
            report.note("webhook", message + "; it is recent and may still be queued in authentik's worker")
            return
        detail = "; ".join(f for _cause, f in failures) if failures else "authentik recorded no failure for it"
        report.problem("webhook", "%s (%s)" % (message, detail), self._failure_fix(failures))

    def _failures(self, username, name):
        """Recorded failures of this user's chain, as (cause, sentence): policy and mapping exceptions,
        failed webhook tasks. The cause picks the fix; it never comes from searching the sentence."""
        found = []
        slots = self.own.slots_of(username)
        names = set(s.mapping["name"] for s in slots if s.mapping) | {self.w.headers_name}
        for event in self.mapping_errors:
            context = event.get("context") or {}
            mapping = context.get("mapping") or {}
            if mapping.get("name") in names:
                found.append(("mapping", "authentik could not evaluate webhook mapping %r at %s: %s"
                              % (mapping.get("name"), event.get("created"), context.get("message"))))
        group = self.own.group_of(username)
        policy = group.policy if group else None
        if policy is not None:
            wanted = str(policy["pk"]).replace("-", "")
            for event in self.policy_errors:
                context = event.get("context") or {}
                if str(context.get("policy_uuid") or "").replace("-", "") == wanted:
                    message = str(context.get("message") or "").strip().splitlines()
                    found.append(("policy", "authentik's policy %r failed at %s: %s"
                                  % (policy["name"], event.get("created"), message[-1] if message else "no message")))
                    break  # it fails on every event; once is enough
        wanted = set(str(s.transport["pk"]).replace("-", "") for s in slots if s.transport)
        for task in self.failed_tasks:
            if str(task.get("rel_obj_id") or "").replace("-", "") not in wanted:
                continue
            errors = [log for log in task.get("logs") or []
                      if str(log.get("log_level", "")).lower() in ("error", "exception", "critical")]
            status = _http_status(errors[-1]) if errors else None
            cause = {401: "key", 403: "key", 404: "gone"}.get(status, "delivery")
            found.append((cause, "the webhook task failed at %s after %s retries: %s"
                          % (task.get("mtime"), task.get("retries"),
                             _log_text(errors[-1]) if errors else "no message")))
        return found

    @staticmethod
    def _failure_fix(failures):
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


def _http_status(log):
    """The HTTP status of a failed webhook, from Pangolin's answer or the requests exception, or None."""
    try:
        answer = json.loads(str(log.get("event") or ""))
    except ValueError:
        answer = None
    if isinstance(answer, dict) and isinstance(answer.get("status"), int):
        return answer["status"]
    exception = json.dumps((log.get("attributes") or {}).get("exception") or "")
    found = re.search(r"\b([45]\d\d) (?:Client|Server) Error", exception)
    return int(found.group(1)) if found else None


def _log_text(log):
    """A task log entry in one line: the receiver's answer (Pangolin's message), or the exception."""
    text = str(log.get("event") or "").strip()
    try:
        answer = json.loads(text)
    except ValueError:
        answer = None
    if isinstance(answer, dict) and answer.get("message"):
        text = "Pangolin answered %s %s" % (answer.get("status", ""), answer["message"])
    exception = (log.get("attributes") or {}).get("exception")
    if isinstance(exception, list) and exception and isinstance(exception[-1], dict):
        # structlog's structured traceback: the innermost exception says what happened (HTTP status, DNS, ...)
        exception = "%s: %s" % (exception[-1].get("exc_type"), exception[-1].get("exc_value"))
    elif exception:
        exception = str(exception).strip().splitlines()[-1]
    if exception and str(exception) not in text:
        text = "%s (%s)" % (text, exception) if text else str(exception)
    return text[:300]


def _as_cidr(client_ip):
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return "<proxy address>/32"
    return "%s/%d" % (address, 32 if address.version == 4 else 128)


__all__ = ["WhitelistDoctor", "ApiError"]
