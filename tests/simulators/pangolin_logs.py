"""Pangolin's request audit log, as the Pangolin simulator keeps and serves it.

Part of the Pangolin simulator (``tests/simulators/pangolin.py`` puts the parts together);
the gatekeeper (``pangolin_gatekeeper.py``) writes it, the route GET
/v1/org/{orgId}/logs/request reads it, and everything runs on the simulator's clock
(``pangolin_clock.py``). Section 12 of the project's Pangolin API reference; the source
read is the mirror's and upstream's (Mu-L/pangolin, fosrl/pangolin):

* writing (server/routers/badger/logRequestAudit.ts): a row is stamped
  ``floor(now)`` when the gatekeeper decides and goes to an in-memory buffer; the
  buffer is written to the table 5 s (BATCH_INTERVAL_MS) after the first row that
  found no timer pending, or at once when it holds 100 rows (BATCH_SIZE). The size
  flush leaves the timer running, so rows buffered after it still go out when that
  first timer fires. Row ids are given at the write, in buffer order. Nothing is
  buffered when the org's ``settingsLogRetentionDaysRequest`` is 0 (or the org is
  unknown); that value is read through a 300-second cache per org, which the org
  update handler (updateOrg.ts) drops: ``set_log_retention`` does the same unless
  ``invalidate_cache=False`` (a direct database edit, which the cache hides for up to
  300 s);
* retention (server/lib/cleanupLogs.ts): every 3 hours from the server's start (here:
  the last ``reset()``), for each org whose value is > 0, rows with a timestamp below
  ``now - days*86400`` are deleted; 9001 means "until the end of the following year"
  (rows before 1 January of last year, UTC, go); 0 and -1 are never cleaned (-1 keeps
  forever, 0 only stops new rows);
* reading (server/routers/auditLogs/queryRequestAuditLog.ts): the guards are
  verifyApiKeyOrgAccess then verifyApiKeyHasAction(viewLogs) (server/routers/integration.ts;
  a root key passes the org check, so an unknown org gives 200 and nothing); the query is
  parsed by ``request_log_query`` (pangolin_validation.py; no ``ip`` filter in 1.22); the
  rows are the org's with ``timeStart < timestamp < timeEnd`` (both exclusive; timeStart
  defaults to midnight seven days ago, getSevenDaysAgo(), the server's local time taken as
  UTC; timeEnd to now, so a row of the current second is left out) and the filters given (resourceId matches
  resourceId or siteResourceId; actor/method/reason/host/location/path by equality,
  empty strings ignored; action true/false), newest first, then ``limit``/``offset``;
  ``pagination.total`` counts every matching row before paging; ``filterAttributes``
  takes the org and the time window only (no other filter): the distinct non-null
  actors, locations, hosts and paths, at most 501 of each, and ``resources`` = the
  distinct resource ids that still exist, with their names, sorted by name then id;
  each row gets ``resourceName`` and ``resourceNiceId`` (null when the resource is gone);
* the route exists from Pangolin 1.18 on (present in 1.18.4's integration.ts, absent
  from the 1.14 copy read); ``version`` below that answers Express's HTML 404 as any
  unknown route. The gatekeeper logs whatever the version (below 1.18 no route of this
  API reads the rows).

Helpers: ``request_audit_log(org_id)`` (the table), ``pending_request_audit_log()`` (the
buffer), ``set_log_retention(org_id, days)``, ``now()``; the gatekeeper's ``request()``
records a request, of the past if given a time.

Simulator's choices where the server leaves it open: rows of one second come newest id
first (the server sorts by timestamp only); distinct values keep first-seen order (SQL
DISTINCT without ORDER BY). Not modelled: the buffer's 10000-row cap, failed writes, the
export route (/logs/request/export, action exportLogs), the analytics route, site resources.
Guessed: which version added the route (between 1.14 and 1.18.4); whether 1.22's query
schema is strict (older copies read are a plain z.object, later ones z.strictObject; strict
is modelled); sorting ``resources`` (only the later copies sort them).
"""

import calendar
import json
import math
import re
import time

from tests.simulators.pangolin_validation import request_log_query

BATCH_SIZE = 100
BATCH_INTERVAL = 5.0  # seconds
RETENTION_CACHE_SECONDS = 300
CLEANUP_INTERVAL = 3 * 3600.0
DISTINCT_LIMIT = 500
LOG_ROUTE_SINCE = (1, 18, 0)


def version_tuple(version):
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def strip_port(ip):
    """stripPortFromHost: ``1.2.3.4:5678`` and ``[2001:db8::1]:443`` lose the port."""
    m = re.fullmatch(r"\[([^\]]+)\](?::\d+)?", ip)
    if m:
        return m.group(1)
    if ip.count(":") == 1:
        return ip.split(":")[0]
    return ip


class PangolinRequestLog:
    """The requestAuditLog table, its write buffer, retention cleanup, the retention cache
    and the query route. A mixin of ``PangolinSimulator``, before ``PangolinStore``.
    """

    # -- state -----------------------------------------------------------------
    def _reset_request_log(self):
        """Called by ``reset()``: empty table and buffer, a fresh cleanup schedule."""
        self.clock.on_advance = self._clock_advanced
        self.clock.reset()
        self.request_audit = []  # the table: rows in id order
        self._audit_buffer = []  # rows waiting for the flush
        self._flush_at = None  # when the pending setTimeout fires
        self._retention_cache = {}  # orgId -> (value, expires at)
        self._next_cleanup = self.clock.now() + CLEANUP_INTERVAL

    def now(self):
        """The simulator's clock: seconds since the epoch."""
        return self.clock.now()

    def _clock_advanced(self):
        with self.lock:
            self._apply_due()

    def _apply_due(self):
        """Run the flushes and cleanups that are due by the clock, in time order.

        Between two calls nothing but time changes, and each cleanup's cutoff grows
        with time, so of several cleanups in a row only the last one matters.
        """
        now = self.clock.now()
        while True:
            flush = self._flush_at if self._flush_at is not None and self._flush_at <= now else None
            if flush is not None and flush <= self._next_cleanup:
                self._flush_at = None
                self._flush()
                continue
            if self._next_cleanup > now:
                return
            limit = now if flush is None else flush
            ticks = int((limit - self._next_cleanup) // CLEANUP_INTERVAL)
            tick = self._next_cleanup + ticks * CLEANUP_INTERVAL
            if flush is not None and tick >= flush:
                tick -= CLEANUP_INTERVAL
            self._cleanup(tick)
            self._next_cleanup = tick + CLEANUP_INTERVAL

    def _flush(self):
        for row in self._audit_buffer:
            row["id"] = self._next("request_log")
            self.request_audit.append(row)
        self._audit_buffer = []

    def _cleanup(self, at):
        """initLogCleanupInterval's run at time ``at`` (request logs only)."""
        cutoffs = {}
        for org_id, org in self.orgs.items():
            days = org["settingsLogRetentionDaysRequest"]
            if days > 0:
                cutoffs[org_id] = self._cutoff(days, at)
        self.request_audit = [r for r in self.request_audit
                              if r["orgId"] not in cutoffs or r["timestamp"] >= cutoffs[r["orgId"]]]

    @staticmethod
    def _cutoff(days, at):
        """calculateCutoffTimestamp: 9001 keeps until the end of the following year."""
        if days == 9001:
            year = time.gmtime(at).tm_year
            return calendar.timegm((year - 1, 1, 1, 0, 0, 0))
        return math.floor(at) - days * 86400

    def _retention_days(self, org_id):
        """getRetentionDays: through the 300-second cache; an unknown org is 0."""
        now = self.clock.now()
        cached = self._retention_cache.get(org_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        org = self.orgs.get(org_id)
        if org is None:
            return 0  # not cached
        value = org["settingsLogRetentionDaysRequest"]
        self._retention_cache[org_id] = (value, now + RETENTION_CACHE_SECONDS)
        return value

    # -- writing (the gatekeeper calls this) -------------------------------------
    def _log_request(self, res, action, reason, client_ip, when=None, method="GET", path="/", headers=None,
                     query=None, location=None):
        """logRequestAudit(...) for a request badger sent about resource ``res``.

        The request is what badger forwards (fosrl/badger main.go): ``scheme`` is Go's
        ``req.URL.Scheme``, empty on a server, ``tls`` whether the client came over
        TLS (the resource's ssl here), ``host`` the resource's domain, ``headers`` and
        ``query`` maps stored as JSON, the user agent taken from the headers. ``when``
        (unix seconds or an aware datetime) records a past request straight into the table.
        """
        self._apply_due()
        if when is not None and not isinstance(when, (int, float)):
            when = when.timestamp()
        if self._retention_days(res["orgId"]) == 0:
            return None
        now = self.clock.now()
        headers = {} if headers is None else headers
        query = {} if query is None else query
        tls = bool(res["ssl"])
        host = res["fullDomain"] or ""
        url = "%s://%s%s" % ("https" if tls else "http", host, path)
        if query:
            url += "?" + "&".join("%s=%s" % kv for kv in query.items())
        row = {
            "id": None, "timestamp": math.floor(now if when is None else when), "orgId": res["orgId"],
            "action": bool(action), "reason": reason, "actorType": None, "actor": None, "actorId": None,
            "resourceId": res["resourceId"], "siteResourceId": None,
            "ip": None if client_ip is None else strip_port(client_ip), "location": location,
            "userAgent": next((v for k, v in headers.items() if k.lower() == "user-agent"), None),
            "metadata": None, "headers": json.dumps(headers, separators=(",", ":")),
            "query": json.dumps(query, separators=(",", ":")), "originalRequestURL": url, "scheme": "",
            "host": host, "path": path, "method": method, "tls": tls,
        }
        if when is not None:
            row["id"] = self._next("request_log")
            self.request_audit.append(row)
            return row
        self._audit_buffer.append(row)
        if len(self._audit_buffer) >= BATCH_SIZE:
            self._flush()  # fire and forget; the pending timer keeps running
        elif self._flush_at is None:
            self._flush_at = now + BATCH_INTERVAL
        return row

    # -- seeding and inspection --------------------------------------------------
    def set_log_retention(self, org_id, days, invalidate_cache=True):
        """Set the org's settingsLogRetentionDaysRequest (0 = log nothing, -1 = forever,
        9001 = until the end of the following year); as the org update route does, the
        cached value is dropped, unless ``invalidate_cache=False``."""
        with self.lock:
            self._apply_due()
            self.orgs[org_id]["settingsLogRetentionDaysRequest"] = int(days)
            if invalidate_cache:
                self._retention_cache.pop(org_id, None)

    def request_audit_log(self, org_id=None):
        """The rows written to the table so far (the buffer not included), oldest first."""
        with self.lock:
            self._apply_due()
            return [dict(r) for r in self.request_audit if org_id is None or r["orgId"] == org_id]

    def pending_request_audit_log(self):
        """The rows still in the write buffer."""
        with self.lock:
            self._apply_due()
            return [dict(r) for r in self._audit_buffer]

    # -- the route ---------------------------------------------------------------
    def _query_request_log(self, req, key, p, body):
        self._org_access(key, p["orgId"])
        self._need(key, "viewLogs")
        q = request_log_query(req, self.clock.now())
        org_id = p["orgId"]
        window = [r for r in self.request_audit
                  if r["orgId"] == org_id and q["timeStart"] < r["timestamp"] < q["timeEnd"]]
        rows = [r for r in window if self._log_row_matches(r, q)]
        rows.sort(key=lambda r: (r["timestamp"], r["id"]), reverse=True)
        page = rows[q["offset"]:q["offset"] + q["limit"]]
        log = []
        for row in page:
            res = self.resources.get(row["resourceId"]) if row["resourceId"] is not None else None
            log.append(dict(row, resourceName=res["name"] if res else None,
                            resourceNiceId=res["niceId"] if res else None))
        return self.ok({"log": log,
                        "pagination": {"total": len(rows), "limit": q["limit"], "offset": q["offset"]},
                        "filterAttributes": self._filter_attributes(window)},
                       "Request audit logs retrieved successfully")

    @staticmethod
    def _log_row_matches(row, q):
        if q["resourceId"] and q["resourceId"] not in (row["resourceId"], row["siteResourceId"]):
            return False
        for name in ("actor", "method", "reason", "host", "location", "path"):
            if q[name] and row[name] != q[name]:
                return False
        return q["action"] is None or row["action"] == q["action"]

    def _filter_attributes(self, window):
        def distinct(field):
            seen, known = [], set()  # the set only makes the lookup cheap; the list keeps the order
            for row in window:
                value = row[field]
                if value is not None and value not in known and len(seen) <= DISTINCT_LIMIT:
                    seen.append(value)
                    known.add(value)
            return seen

        resources = [{"id": rid, "name": self.resources[rid]["name"]}
                     for rid in distinct("resourceId") if rid in self.resources]
        resources.sort(key=lambda r: (r["name"] or "", r["id"]))
        return {"actors": distinct("actor"), "resources": resources, "locations": distinct("location"),
                "hosts": distinct("host"), "paths": distinct("path")}

    def _route_available(self, since):
        if since is None:
            return True
        return version_tuple(self.version) >= since
