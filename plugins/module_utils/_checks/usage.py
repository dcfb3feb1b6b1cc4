# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""When each whitelisted address last let a request through: Pangolin's request audit log, read here once.

Pangolin's gatekeeper (1.18 and later) logs every request an ACCEPT rule lets through (reason 100) with the
client's address, the resource and the time, in buffered writes a few seconds late, and keeps the log for the
org's ``settingsLogRetentionDaysRequest`` days (0 keeps nothing, -1 keeps everything; 7 by default). The
doctor shows each address's last use per resource; expiry closes addresses that let nothing through for
``idle_days``. Both ask this reader, so what the doctor shows is what expiry acts on.

The log has no address filter, so each resource's rows are read newest first and reading stops once every
address looked for has been seen, or after ``MAX_PAGES`` pages (then an address not seen is reported as not
among the newest requests, never as unused).
"""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta, timezone

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.client import ApiError
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.inputs import is_int
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.holdings import plain_address

ALLOWED_BY_RULE = 100
PAGE = 1000
MAX_PAGES = 20
FOREVER = 3650  # days read back when the org keeps its log forever
RETENTION_SETTING = "settingsLogRetentionDaysRequest"
RETENTION_FIX = ("in Pangolin's dashboard, set the org's request log retention (its settings, Logs; the org "
                 "setting %s) to a number of days" % RETENTION_SETTING)


class RequestLog(object):
    """The newest request each address made through each resource, from Pangolin's request audit log."""

    def __init__(self, pangolin, org_id, resource_ids, now=None):
        self.pangolin = pangolin
        self.org_id = org_id
        self.resource_ids = tuple(resource_ids)
        self.now = now or datetime.now(timezone.utc)
        self.retention = None  # days the org keeps its log (-1: forever), when readable
        self.problem = None  # why the log cannot tell, with what to change; None when it can
        self.last = {}  # (resource id, address) -> time of its newest request let through by a rule
        self.exhausted = {}  # resource id -> whether every row of the window was read

    @property
    def available(self):
        return self.problem is None

    @property
    def window(self):
        """The words for how far back the log reaches."""
        if self.retention is None:
            return "Pangolin's request log"
        if self.retention < 0:
            return "Pangolin's whole request log"
        return "the last %d day%s of Pangolin's request log" % (self.retention, "" if self.retention == 1 else "s")

    def read(self, wanted=()):
        """Read the retention, then each resource's requests let through by a rule, newest first; ``wanted``:
        the (match, value) entries of interest, so reading stops when each has been seen on a resource."""
        try:
            org = self.pangolin.get_org(self.org_id).get("org") or {}
        except ApiError as exc:
            return self._cannot(exc, "getOrg")
        retention = org.get(RETENTION_SETTING)
        if not is_int(retention):
            self.problem = ("this Pangolin has no request log (Pangolin 1.18 and later keep one); the last use of "
                            "an address is unknown")
            return self
        self.retention = retention
        if retention == 0:
            self.problem = "Pangolin keeps no request log (%s is 0): %s" % (RETENTION_SETTING, RETENTION_FIX)
            return self
        start = self.now - timedelta(days=FOREVER if retention < 0 else retention)
        end = self.now + timedelta(minutes=1)  # the bound is exclusive; the log is written a few seconds late
        wanted = set(wanted)
        for resource_id in self.resource_ids:
            seen, pages = set(), 0
            try:
                for rows in self.pangolin.request_log(self.org_id, start, end, resource_id, ALLOWED_BY_RULE,
                                                      page_size=PAGE, max_pages=MAX_PAGES):
                    pages += 1
                    for row in rows:
                        self._note(resource_id, row)
                        seen |= set(e for e in wanted if covers(e, row.get("ip")))
                    if wanted and wanted <= seen:
                        break
                else:  # every row of the window was read, unless the page bound cut it short
                    self.exhausted[resource_id] = pages < MAX_PAGES
            except ApiError as exc:
                return self._cannot(exc, "viewLogs")
        return self

    def _note(self, resource_id, row):
        address = plain_address(row.get("ip"))
        when = row.get("timestamp")
        if address is None or not isinstance(when, (int, float)) or isinstance(when, bool):
            return
        when = datetime.fromtimestamp(when, timezone.utc)
        key = (resource_id, str(address))
        if key not in self.last or when > self.last[key]:
            self.last[key] = when

    def _cannot(self, exc, action):
        if exc.status == 403:
            self.problem = ("the playbook's key may not read %s (Pangolin refused it: %s); give it the %s action"
                            % ("the org's settings" if action == "getOrg" else "the request log", exc.message,
                               action))
        elif exc.status == 404 and action == "viewLogs":
            self.problem = ("this Pangolin has no request log API (Pangolin 1.18 and later have one); the last use "
                            "of an address is unknown")
        else:
            raise exc
        return self

    def last_use(self, resource_id, entry):
        """When the rule entry (match, value) last let a request through on the resource, or None (unknown when the
        log is unavailable: ask ``available``)."""
        found = [when for (rid, address), when in self.last.items() if rid == resource_id and covers(entry, address)]
        return max(found) if found else None

    def last_use_anywhere(self, entry):
        found = [self.last_use(rid, entry) for rid in self.resource_ids]
        found = [when for when in found if when is not None]
        return max(found) if found else None

    def complete(self, resource_id):
        """Whether the whole window was read for the resource (else only its newest requests)."""
        return self.exhausted.get(resource_id, False)


def covers(entry, address):
    """Whether a rule entry (match, value) lets in a request from ``address``."""
    parsed = plain_address(address)
    if parsed is None:
        return False
    match, value = entry
    if match == "IP":
        return plain_address(value) == parsed
    try:
        return parsed in ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False


def ago(when, now):
    """How long ago, in words a person reads at a glance: "12 min ago", "5 h ago", "2 d ago"."""
    seconds = max(0, (now - when).total_seconds())
    if seconds < 3600:
        return "%d min ago" % (seconds // 60)
    if seconds < 48 * 3600:
        return "%d h ago" % (seconds // 3600)
    return "%d d ago" % (seconds // 86400)


__all__ = ["RequestLog", "ago", "covers", "ALLOWED_BY_RULE"]
