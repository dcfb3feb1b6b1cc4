# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only checks of every link of the login -> webhook -> Pangolin rule chain.

The doctor reads what the whitelist reads (the same snapshot and ownership,
each list once) plus what authentik recorded: each user's newest ``login``
event, recent logins of everyone (an untrusted proxy shows as one private
address for all users), mapping and policy exceptions, failed webhook tasks,
the worker's queue and the worker processes that checked in. It writes
nothing. Each finding says what is wrong and what to do, in plain words;
``chain.py`` looks at each listed user.

The worker's load counts this whitelist's notification rules apart from
authentik's others (its defaults, other deployments): which are this
whitelist's is what ``ownership.py`` resolved. With ``users_from_group`` the
listed users are the group's active members, as ``Whitelist.listed_users``
decides; the doctor names the members the whitelist has no rules for yet and
where the group and the inventory disagree.

A *problem* breaks the whitelist, or lets in someone who should not get in; a
*note* is worth knowing but does not (history of failures that a later login
got past, a queue that delays logins, a shared public address that may be a
household NAT).
"""

from __future__ import annotations

from datetime import datetime, timezone

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.client import ApiError
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.client import parse_time
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._checks.findings import (
    PROXY_SETTING,
    RERUN,
    Finding,
    as_cidr,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.holdings import refusal
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._checks.chain import ChainExam
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._checks.usage import RequestLog
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._pangolin.keys import KeyCheck, needed_actions
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.secrets import sends_key
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.webhook_key import (
    bearer_in,
    key_id_of,
)


COLLISION_FIX = "{site} refuses to run until it is resolved, as the message says"


class WhitelistDoctor(object):
    def __init__(self, whitelist, recent_logins=100, secrets=None, now=None, commands=None):
        self.w = whitelist
        self.settings = whitelist.settings
        self.dep = whitelist.deployment
        self.pangolin = whitelist.pangolin
        self.authentik = whitelist.authentik
        self.recent_logins = recent_logins
        self.now = now or datetime.now(timezone.utc)
        self.webhook_url = self.settings.webhook_url
        self.manage_webhook_key = self.settings.manage_webhook_key
        self.secrets = secrets  # what the module's output is scrubbed of
        # The commands a fix names, as the operator runs them (the role passes its inventory and playbooks).
        self.commands = dict(dict(site="ansible-playbook playbooks/site.yml",
                                  expire="ansible-playbook playbooks/expire.yml"), **(commands or {}))

    # -- reads ---------------------------------------------------------------
    def read(self):
        # The doctor echoes authentik's error messages; one about the headers mapping may quote its key.
        self.w.read(secrets=self.secrets, with_key=False)
        self.snap, self.own = self.w.snapshot, self.w.ownership
        self.headers_name = self.w.headers_name
        self.headers = self.snap.mappings.get(self.headers_name)
        self.logins = self.authentik.login_events(limit=self.recent_logins, max_pages=1 + self.recent_logins // 100)
        self.mapping_errors = self.authentik.events("property_mapping_exception", limit=100, max_pages=1)
        self.policy_errors = self.authentik.events("policy_exception", limit=100, max_pages=1)
        # A webhook that failed every retry ends "rejected"; "error" is kept for servers that aggregate logs.
        failed = self.authentik.tasks({"aggregated_status": ["rejected", "error"],
                                       "rel_obj_content_type__app_label": "authentik_events",
                                       "rel_obj_content_type__model": "notificationtransport",
                                       "ordering": "-mtime"})
        self.task_api = failed is not None
        self.failed_tasks = failed[0] if failed else []
        # oldest first: how long the head of the queue has waited is how long a login waits now
        queued = self.authentik.tasks({"state": "queued", "ordering": "mtime"}, page_size=100)
        self.queued = queued[1] if queued else None
        self.queue_wait = queue_wait(queued[0], self.now) if queued else None
        self.workers = self.authentik.workers()
        self.rules_ours, self.rules_others = self._rule_counts()
        placeholder = ("IP", self.settings.placeholder)
        held = set((r["match"], r["value"]) for username in self.own.usernames()
                   for _slot, _rid, r in self.own.rules_of(username)) - set([placeholder])
        self.usage = RequestLog(self.pangolin, self.snap.org_id, self.dep.resource_ids, self.now).read(held)
        self.group = self._group_members()
        self.new_members = set(self.group["without_rules"]) if self.group else set()

    def _rule_counts(self):
        """(this whitelist's notification rules, authentik's others); every one costs the worker a handler task
        per event. Which are this whitelist's is what ownership resolved."""
        ours = len(self.own.notification_rules())
        return ours, len(self.snap.notification_rules) - ours

    def _login_cost(self):
        """(handler tasks per event, the most webhook tasks one login of a listed user queues): a login matches
        the notification rule of its user's group, which sends every transport it has."""
        handlers = self.rules_ours + self.rules_others
        transports = [len(g.rule.get("transports") or []) for g in self.own.groups.values() if g.rule]
        return handlers, max(transports or [0])

    def _group_members(self):
        """With users_from_group, the group's side of the listed users (``Whitelist.listed_users`` made them):
        its active members, those of them the whitelist has no objects for yet, inventory entries of users it
        does not hold (not absent: an absent entry of a non-member agrees), and members the inventory marks
        absent. None without users_from_group."""
        name = self.settings.users_from_group
        if name is None:
            return None
        return dict(name=name, members=[u.username for u in self.w.users],
                    without_rules=[u.username for u in self.w.present
                                   if not self.own.slots_of(u.username)],
                    not_members=[u.username for u in self.w.not_members if u.state != "absent"],
                    absent_members=[u.username for u in self.w.users if u.state == "absent"])

    # -- checks ----------------------------------------------------------------
    def examine(self):
        self.read()
        report = Finding()
        listed = set(u.username for u in self.w.present)
        for collision in self.own.collisions:
            if collision.username not in listed:
                report.problem(collision.check, collision.message, COLLISION_FIX, user=collision.username)
        self._check_resources(report)
        self._check_headers(report)
        self._check_webhook_key(report)
        self._check_playbook_key(report)
        self._check_proxy(report)
        self._check_backlog(report)
        self._check_worker(report)
        if not self.usage.available:
            report.note("request_log", "the doctor cannot tell when each address last let a request through: %s"
                        % self.usage.problem)
        self._check_group(report)
        self._check_leftovers(report)
        users = [ChainExam(self, user.username).examine() for user in self.w.present]
        for found in [report.problems, report.notes] + [u[key] for u in users for key in ("problems", "notes")]:
            for finding in found:
                finding.update(message=self._commands(finding["message"]), fix=self._commands(finding["fix"]))
        healthy = not report.problems and not any(u["problems"] for u in users)
        broken = set(u["username"] for u in users if u["problems"])
        broken.update(p["user"] for p in report.problems if p.get("user"))
        return dict(healthy=healthy, problems=report.problems, notes=report.notes, users=users,
                    verdict=verdict(report.problems, users),
                    broken_users=sorted(broken),
                    resource_id=self.dep.primary, resource_ids=list(self.dep.resource_ids),
                    instance=self.dep.instance, apply_rules=self.snap.resource(self.dep.primary).applies_rules,
                    backlog=dict(available=self.task_api, queued=self.queued, notification_rules=self.rules_ours,
                                 other_notification_rules=self.rules_others),
                    worker=self._worker_summary(),
                    request_log=dict(available=self.usage.available, retention_days=self.usage.retention,
                                     window=self.usage.window, problem=self.usage.problem),
                    playbook_key=self.playbook_key,
                    group=self.group)

    def _commands(self, text):
        """A finding's text with the commands it names as the operator runs them."""
        if not text:
            return text
        return text.replace("{site}", self.commands["site"]).replace("{expire}", self.commands["expire"])

    def _check_resources(self, report):
        for resource_id in self.dep.resource_ids:
            state = self.snap.resource(resource_id)
            if state.shared and state.shared.get("unreadable"):
                report.note("apply_rules", "resource %d is on a shared resource policy, which the doctor cannot read "
                            "to see whether its rules apply" % resource_id,
                            "give the playbook's key the getResourcePolicy action")
            elif state.shared and not state.applies_rules:
                report.problem("apply_rules", "resource %d is on shared resource policy %r, whose rules are off, so "
                               "Pangolin ignores every user's rule" % (resource_id, state.shared["name"]),
                               "turn rules on in that shared policy in Pangolin")
            elif not state.applies_rules:
                report.problem("apply_rules", "resource %d has rules switched off (applyRules is false), so Pangolin "
                               "ignores every user's rule" % resource_id,
                               "run {site} (it turns applyRules on), or enable rules in the resource's "
                               "settings in Pangolin")

    def _check_headers(self, report):
        name = self.headers_name
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
                           "{site}")
            return
        if bearer is None:
            return
        key_id = key_id_of(bearer)
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
            fix = ("run {site}: with jellyfin_whitelist_manage_webhook_key it makes a new key; "
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

    def _check_playbook_key(self, report):
        """Whether the playbook's own key is root, and which actions the inventory's choices need that it lacks,
        found out without writing anything (``keys.py``)."""
        shared = any(self.snap.resource(rid).shared for rid in self.dep.resource_ids)
        by_name = any(ref.name for ref in self.w.inputs.resources)
        needed = needed_actions(self.settings, by_name=by_name, shared_policy=shared)
        found = KeyCheck(self.pangolin, self.snap.org_id, self.dep.primary).check(needed)
        self.playbook_key = found
        lacking = [a for a in found["missing"] if a != "viewLogs"]
        if self.manage_webhook_key and found["root"] is False:
            report.problem("playbook_key", "the playbook's Pangolin key %s is not a root key, but "
                           "jellyfin_whitelist_manage_webhook_key makes the webhook's key, which only a root key may"
                           % found["key_id"], "use a root key (Pangolin's dashboard, Server Admin > API Keys) with "
                           "the actions the README lists, or set jellyfin_whitelist_webhook_api_key instead")
        if lacking:
            report.problem("playbook_key", "the playbook's Pangolin key %s lacks the action%s %s, which %s needs"
                           % (found["key_id"], "s" if len(lacking) > 1 else "", ", ".join(lacking),
                              "this inventory"), "tick %s for the key in Pangolin's dashboard (%s)"
                           % (", ".join(lacking), "Server Admin > API Keys" if found["root"] else
                              "the org's API Keys"))
        # (a key without viewLogs: the request log's own note says so, once)
        if found["unknown"]:
            report.note("playbook_key", "the doctor could not tell whether the playbook's key may %s"
                        % ", ".join(found["unknown"]))

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
            if refusal(client_ip, self.settings.private_networks) is not None:
                report.problem(
                    "trusted_proxy",
                    "the recent logins of %d different users (%s) all come from %s, a private or proxy address: "
                    "authentik sees the reverse proxy in front of it instead of each user, so every whitelist "
                    "gets the proxy's address" % (len(usernames), names, client_ip),
                    "add the proxy's address to %s (for example %s) on authentik's server and worker, make the "
                    "proxy set X-Forwarded-For to the client address, restart authentik, then log in again"
                    % (PROXY_SETTING, as_cidr(client_ip)))
            else:
                report.note(
                    "shared_address",
                    "the recent logins of %d different users (%s) all come from %s; fine for one household "
                    "behind one router, but a proxy if these users live apart" % (len(usernames), names, client_ip),
                    "if it is a proxy, add it to %s" % PROXY_SETTING)

    def _check_group(self, report):
        """Where the group and the inventory disagree; who is listed is the group's word, so neither is let in.
        Members without rules yet are each one's own problem (``doctor_chain.py``)."""
        if self.group is None:
            return
        name = self.group["name"]
        for username in self.group["not_members"]:
            report.note("not_member", "the inventory lists user %r, who is not an active member of group %r "
                        "(users_from_group), so the whitelist does not let the user in" % (username, name),
                        "add the user to group %r in authentik (or activate the account) and run {site}, or "
                        "remove the user's entry from jellyfin_whitelist_users" % name)
        for username in self.group["absent_members"]:
            report.note("absent_member", "user %r is a member of group %r (users_from_group), but the inventory "
                        "marks the user absent, so the whitelist does not let the user in" % (username, name),
                        "remove the user from group %r in authentik, or drop state: absent from the user's entry "
                        "in jellyfin_whitelist_users and run {site}" % name)

    def _check_leftovers(self, report):
        """Users the inventory (or the group) does not list as present but the whitelist still holds objects for:
        whoever of them is still let in is a problem (who is not on the list is not let in); objects of an older
        version of this collection that a listed user's slots supersede."""
        present = set(u.username for u in self.w.present)
        absent = set(u.username for u in self.w.inputs.users if u.state == "absent")
        group = self.settings.users_from_group
        placeholder = self.settings.placeholder
        for username in self.own.usernames():
            slots = self.own.slots_of(username)
            if username in present:
                if any(kind != "transport" for slot in slots for kind, _view in slot.superseded):
                    report.note("leftover", "user %r still has the chain of an older version of this collection"
                                % username, "run {site}, which moves the user to the current one")
                continue
            rules = [(rid, rule) for _slot, rid, rule in self.own.rules_of(username)]
            open_to = ["%s (rule %d of resource %d)" % (r["value"], r["rule_id"], rid) for rid, r in rules
                       if r["value"] != placeholder]
            who = ("marked absent" if username in absent else
                   "not an active member of group %r" % group if group else "not in the inventory")
            if open_to:
                report.problem("unlisted", "user %r is %s but still let in: %s" % (username, who, ", ".join(open_to)),
                               "run {site}, which ends the access now (with jellyfin_whitelist_prune: true it also "
                               "removes the user's objects)", user=username)
            else:
                report.note("leftover", "user %r is %s; the whitelist keeps %d object chain(s) of the user, without "
                            "access" % (username, who, len(slots)),
                            "run {site}" if username in absent else
                            "run {site} with jellyfin_whitelist_prune: true to remove them, or %s"
                            % ("add the user to the group again" if group else "list the user again"))

    def _check_backlog(self, report):
        if not self.queued:
            return
        report.note(
            "backlog",
            "authentik's worker has %d queued tasks; every event costs one task per notification rule (%d of "
            "this whitelist, %d others in authentik), so logins wait behind the queue and the whitelist lags until "
            "it drains" % (self.queued, self.rules_ours, self.rules_others),
            "wait for the queue to drain (authentik admin: System > Tasks), or give the worker more CPU")

    def _worker_summary(self):
        handlers, transports = self._login_cost()
        return dict(connected=None if self.workers is None else len(self.workers),
                    queue_wait=None if self.queue_wait is None else round(self.queue_wait, 1),
                    bottleneck=self.queue_wait is not None and self.queue_wait >= BOTTLENECK_WAIT,
                    handler_tasks_per_event=handlers, webhook_tasks_per_login=transports)

    def _check_worker(self, report):
        """Whether authentik's worker runs at all, and whether it is what logins wait for (where the API says:
        2025.8+)."""
        if self.workers == []:
            report.problem("worker", "no authentik worker has checked in for 45 s, so authentik sends no webhook "
                           "and no login is whitelisted", WORKER_DOWN_FIX)
            return
        if self.workers is None and self.task_api:
            report.note("worker_list", "the doctor cannot tell whether authentik's worker runs: the token may not "
                        "list the workers (permission authentik_rbac.view_system_info)",
                        "give the token's user that permission, or use an admin's token")
        other = sorted(str(w.get("worker_id") or "?") for w in self.workers or [] if w.get("version_matching") is False)
        if other:
            report.note("worker_version", "authentik's worker %s runs another version than the server"
                        % ", ".join(other), "run the worker and the server from the same authentik version")
        if self.queue_wait is None or self.queue_wait < BOTTLENECK_WAIT:
            return
        handlers, transports = self._login_cost()
        processes = len(self.workers or [])
        side_by_side = ("%d worker processes, each running 2 tasks at a time by default" % processes
                        if processes > 1 else "a default worker runs 2 tasks at a time (1 process, 2 threads)")
        report.note(
            "bottleneck",
            "authentik's worker is the bottleneck: the oldest task due among the %d queued has waited %d s to "
            "start, so a login now waits about as long before its webhook is sent. Each event costs the worker "
            "%d handler tasks and a login of this whitelist up to %d webhook tasks; %s"
            % (self.queued, self.queue_wait, handlers, transports, side_by_side),
            WORKER_FIX)


# The oldest due task waiting this long (seconds) means logins wait for the worker, not for anything else: an idle
# worker starts a login's first task well within a second.
BOTTLENECK_WAIT = 5
WORKER_FIX = ("raise AUTHENTIK_WORKER__THREADS (default 2) or AUTHENTIK_WORKER__PROCESSES (default 1) on authentik's "
              "worker and restart it, give it more CPU, or wait for the queue to drain (authentik admin: System > "
              "Tasks)")
WORKER_DOWN_FIX = "start authentik's worker (its container runs 'ak worker') and read its log"


def queue_wait(oldest_first, now):
    """Seconds the oldest queued task that is due has waited (0 when none is): a task waiting out a retry's
    backoff (``eta`` ahead) is not waiting for the worker."""
    for row in oldest_first:
        if not isinstance(row, dict):
            continue
        queued_at, eta = parse_time(row.get("mtime")), parse_time(row.get("eta"))
        if queued_at is None or (eta is not None and eta > now):
            continue
        return max(0.0, (now - max(queued_at, eta or queued_at)).total_seconds())
    return 0.0


def verdict(problems, users):
    """The doctor's word on the whole whitelist, counting who is actually concerned."""
    per_user = dict((u["username"], len(u["problems"])) for u in users if u["problems"])
    for problem in problems:
        if problem.get("user"):
            per_user[problem["user"]] = per_user.get(problem["user"], 0) + 1
    shared = len([p for p in problems if not p.get("user")])
    total = shared + sum(per_user.values())
    if not total:
        return "healthy: every listed user's chain works, and nobody else is let in"
    parts = ["%s (%d)" % (name, count) for name, count in sorted(per_user.items())]
    if shared:
        parts.append("the whole whitelist (%d)" % shared)
    return "%d problem%s: %s" % (total, "" if total == 1 else "s", ", ".join(parts))


__all__ = ["WhitelistDoctor", "verdict"]
