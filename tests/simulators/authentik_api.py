"""authentik's HTTP side, as the authentik simulator serves it: routing, auth, pagination, the
events, tasks and sessions endpoints, and the simulator's own ``/_sim/`` control routes.

One of the parts ``tests/simulators/authentik.py`` puts together; the model endpoints
(users, groups, mappings, transports, rules, policies, bindings) are in
``authentik_viewsets.py``. Section numbers refer to the project's authentik API reference.

It copies what the real server does, warts included:

* trailing slash mandatory, HTML 404 otherwise; bad or missing auth is 403 (§1);
* API tokens always act as akadmin; a token added with ``superuser=False`` may read
  nothing and write nothing (RBAC);
* a DELETE of a rule or transport the worker still holds tasks for can answer an
  empty 405 (``busy_delete_failure``, a seeded chance): mostly rolled back, the object
  still there (§17), sometimes gone all the same (``busy_delete_gone``, §16).

``read_latency`` / ``write_latency`` (see ``tests/simulators/base.py``) make each API request
take that long, outside the lock; the ``/_sim/`` control routes answer at once.
``event_search_latency`` (default: ``read_latency``) is what a ``GET /events/events/`` with a
``username`` filter takes instead: that filter looks into the events' ``user`` and (2026.2+)
``context`` JSON, which no index in the source covers, so a real server presumably scans the
events table (not timed on one; the bench's calibration fits it).

Events list (``GET /events/events/``, ``EventsFilter``): ``action`` is a
case-insensitive *contains* match (``action=login`` also returns ``login_failed``);
``actions`` (repeatable, exact, invalid choice -> 400) and ``brand_name`` exist from
2026.2 (the oldest schema held); ``username`` matches the event's ``user.username``,
and from 2026.2 also ``context.username``, so a user's ``login_failed`` events (user =
AnonymousUser) come back too (``filter_username`` in the 2026.2-era source);
``client_ip`` exact; ``context_model_pk`` (dashes stripped, int pks too),
``context_model_name``, ``context_model_app``, ``context_authorized_app``; ordering
``-created`` unless ``?ordering=`` names serializer fields. ``context_device`` (2026.5)
is not modelled, so it is ignored like any unknown parameter.

Worker tasks (>= 2025.8, Dramatiq; older versions answer the usual HTML 404; the rows
themselves are the worker's, see ``authentik_worker.py``): ``GET /tasks/tasks/``
(``TaskFilter``: ``state``, repeatable ``aggregated_status``, ``actor_name``,
``queue_name``, ``rel_obj_id``, ``rel_obj_id__isnull``,
``rel_obj_content_type__app_label``/``__model``; ``search``; ordering ``-mtime``),
``GET /tasks/tasks/{message_id}/`` and ``GET /tasks/tasks/status/`` (counts per
*aggregated* status over all tasks):

* ``aggregated_status`` is the state for every unfinished or rejected row and ``done``
  for done rows: 2026.5's trigger aggregates the legacy ``_messages`` column, which the
  TaskLog-era middleware no longer writes, and it never maps ``rejected`` to ``error``.
  So a failed delivery is ``state=rejected`` / ``aggregated_status=rejected``, never
  ``error``. (Source history, not modelled: 2025.8-2025.10 kept logs in ``_messages``,
  so done rows there aggregate to ``info``; the later migration 0008 aggregates TaskLog
  rows, giving ``info``/``warning``/``error`` for done rows.);
* a row without rel_obj has no ``rel_obj_app_label``/``rel_obj_model`` keys at all (DRF
  skips a dotted source through a null FK), although the schema lists them as required;
* not modelled: ``POST .../retry/``.

Client addresses (§12, §16-17, §19): an event's ``client_ip`` (and a session's ``last_ip``)
is the first (left-most) ``X-Forwarded-For`` entry only when the request's TCP peer is
inside ``trusted_proxy_cidrs`` (``AUTHENTIK_LISTEN__TRUSTED_PROXY_CIDRS``, default
``127.0.0.0/8, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, fe80::/10, ::1/128``), and the
peer's own address otherwise or without the header. The front server (``ProxyHeaders``,
``internal/utils/web/http_forwarded.go``) keeps the header of a trusted peer and overwrites
it with the peer's address for any other; ``ClientIPMiddleware`` then stores
``str(ip_address(first entry))``: the address as it came, in Python's canonical spelling
(``::ffff:203.0.113.62`` stays IPv4-mapped, as §17 saw; ``2001:DB8::1`` becomes
``2001:db8::1``), and 255.255.255.255 for an entry that is no address. From 2026.8 (the
Rust front server) the rule holds for every forwarded header (§19). This applies to the
audit events of API requests and to ``login(peer=..., forwarded_for=...)``. Not modelled:
``X-Real-IP`` and ``Forwarded`` from a trusted peer, an outpost's
``X-authentik-remote-ip``. A Django app reached directly, as in §16 and §19, believes every
peer: ``trusted_proxy_cidrs=["0.0.0.0/0", "::/0"]``.

Authenticated sessions (§17): ``/core/authenticated_sessions/`` lists, reads and deletes
them (bulk too), writing no event.

Simulator-only control routes (not part of authentik), no auth:

* ``POST /_sim/login/`` with ``{"username", "client_ip", "password"?}``, or with ``"peer"``
  and ``"x_forwarded_for"?`` (the header's value) instead of ``"client_ip"``, runs
  ``login()`` and answers ``{"event": <action>, "session_key", "client_ip", "deliveries":
  [...]}`` (the address recorded; the deliveries made before it answered: all of them
  with the sync worker);
* ``POST /_sim/logout/`` with ``{"session_key", "client_ip"?}`` runs ``logout()``;
* ``POST /_sim/worker/`` with ``{"paused": bool}`` (``GET`` reads it) pauses or resumes
  the whole worker, like ``pause_worker()`` / ``resume_worker()``, and answers
  ``{"paused": bool, "held": <messages queued>, "queued": <task rows queued>}``. Held
  messages run in order on resume; messages of paused actors do not make
  ``wait_idle`` wait.
"""

import ipaddress
import json
import math
import re

from tests.simulators.authentik_store import (
    ADMIN_PK, HTML_404, HTML_500, KINDS, KNOWN_ACTIONS, READ_ONLY, ApiError, bad_request, iso, norm_uuid,
)
from tests.simulators.authentik_worker import TASK_DESCRIPTIONS, TASK_STATES, TASK_STATUSES
from tests.simulators.base import Response

NO_PERMISSION = "You do not have permission to perform this action."
TASK_ORDERING = ("message_id", "queue_name", "actor_name", "state", "mtime", "retries", "eta", "rel_obj_id",
                 "aggregated_status")
EVENT_ORDERING = {"pk": lambda e: str(e.event_uuid), "action": lambda e: e.action, "app": lambda e: e.app,
                  "client_ip": lambda e: e.client_ip, "created": lambda e: e.created,
                  "expires": lambda e: e.expires}
CHOICE_ERROR = "Select a valid choice. %s is not one of the available choices."
BOOL_TRUE, BOOL_FALSE = ("true", "True", "1"), ("false", "False", "0")
# AUTHENTIK_LISTEN__TRUSTED_PROXY_CIDRS's default (authentik/lib/default.yml, §12)
DEFAULT_TRUSTED_PROXY_CIDRS = ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fe80::/10",
                               "::1/128")
UNKNOWN_IP = "255.255.255.255"  # ClientIPMiddleware.default_ip: what an unreadable address is recorded as


def trusted_peer(peer, cidrs):
    """The front server's ``ProxyHeaders`` check: is the TCP peer inside one of ``cidrs`` (a list, or a
    comma-separated string like the setting)? A CIDR that does not parse is skipped; an IPv4-mapped peer
    counts as its IPv4 address, as Go's ``IPNet.Contains`` has it."""
    if isinstance(cidrs, str):
        cidrs = cidrs.split(",")
    address = ipaddress.ip_address(peer)
    candidates = [a for a in (address, getattr(address, "ipv4_mapped", None)) if a is not None]
    for cidr in cidrs:
        try:
            network = ipaddress.ip_network(str(cidr).strip(), strict=False)
        except ValueError:
            continue
        if any(a.version == network.version and a in network for a in candidates):
            return True
    return False


def recorded_client_ip(peer, forwarded_for, cidrs, rightmost=False):
    """The ``client_ip`` authentik records for a request from ``peer`` carrying ``X-Forwarded-For:
    forwarded_for`` (None: no such header), the peer trusted when it is inside ``cidrs``.

    The front server keeps the header of a trusted peer and sets it to the peer's address otherwise
    (the proxy to Django adds the peer's address when there is none); ``ClientIPMiddleware`` takes
    the first entry and stores ``str(ip_address(entry))``, or 255.255.255.255 when it is no address.
    From 2026.8 (``rightmost``) the Rust front server takes the header's right-most entry of a trusted
    peer (``client_ip::rightmost_x_forwarded_for`` in ``packages/ak-axum/src/extract/client_ip.rs``) and
    hands Django that address alone.
    """
    if not trusted_peer(peer, cidrs) or forwarded_for is None:  # a peer that is no address: ValueError
        forwarded_for = peer
    entries = [entry.strip() for entry in forwarded_for.split(",")]
    try:
        address = ipaddress.ip_address(entries[-1] if rightmost else entries[0])
    except ValueError:
        return UNKNOWN_IP
    mapped = getattr(address, "ipv4_mapped", None)  # dotted, as str() writes it from Python 3.13 on
    return "::ffff:%s" % mapped if mapped is not None else str(address)


class AuthentikApi:
    """The HTTP entry point: routing, authentication, pagination and ordering, and the endpoints
    that are no model viewset (events, tasks, authenticated sessions, ``/_sim/``).

    A mixin of ``AuthentikSimulator`` placed before ``SimulatorBase``, whose ``handle``,
    ``latency`` and ``fault_response`` it implements; the model endpoints come from
    ``AuthentikViewSets``.
    """

    def client_ip_for(self, peer, forwarded_for=None):
        """The ``client_ip`` authentik records for a request from ``peer`` with ``X-Forwarded-For:
        forwarded_for`` (None: no header), given ``trusted_proxy_cidrs``: the header's first entry
        (from 2026.8 its last) when the peer is a trusted proxy, the peer's own address otherwise."""
        return recorded_client_ip(peer, forwarded_for, self.trusted_proxy_cidrs, rightmost=self.vt >= (2026, 8))

    @property
    def page_size(self):
        if self._page_size:
            return self._page_size
        return 20 if self.vt >= (2025, 12) else 100

    @property
    def max_page_size(self):
        return 100 if self.vt >= (2025, 12) else None  # ≤2025.10 had no maximum (§1)

    # -- HTTP ----------------------------------------------------------------
    def latency(self, request):
        """The API's read/write latency (an event search by username: ``event_search_latency``); the
        simulator-only ``/_sim/`` routes answer at once."""
        if request.path.startswith("/_sim/"):
            return 0.0
        if (self.event_search_latency is not None and request.method == "GET" and
                request.path == "/api/v3/events/events/" and request.q("username") is not None):
            return self.event_search_latency
        return super().latency(request)

    def fault_response(self, status, fault):
        """An injected fault as authentik answers it: DRF's throttling answer for a 429 (with
        Retry-After), Django's HTML error page for a 5xx (or the proxy in front of it)."""
        if status == 429:
            wait = fault.retry_after
            return Response(429, {"detail": "Request was throttled. Expected available in %d second%s."
                                            % (wait, "" if wait == 1 else "s")},
                            headers={"Retry-After": str(wait)})
        return Response(status, HTML_500, "text/html")

    def handle(self, request):
        try:
            resp = self._route(request)
        except ApiError as exc:
            resp = exc.response
        if self.worker_mode == "sync" and self._messages:  # model_* events: run the pipeline before answering
            with self._unlocked():
                self._drain()
        return resp

    def _route(self, req):
        path = req.path
        if path == "/_sim/login/" and req.method == "POST":
            return self._sim_login(req)
        if path == "/_sim/worker/" and req.method in ("GET", "POST"):
            return self._sim_worker(req)
        if path == "/_sim/logout/" and req.method == "POST":
            return self._sim_logout(req)
        if path.rstrip("/") == "/api/v3/tasks/workers" and (path.endswith("/") == (self.vt >= (2026, 5))):
            return self._workers_api(req)  # routed without the trailing slash until 2026.2 (its API schema)
        if not path.startswith("/api/v3/") or not path.endswith("/"):
            raise ApiError(404, HTML_404, "text/html")  # APPEND_SLASH = False (§1)
        rest = path[len("/api/v3/"):-1]
        if rest in ("admin/version", "core/users/me"):
            token = self._authenticate(req)
            if req.method != "GET":
                raise ApiError(405, {"detail": 'Method "%s" not allowed.' % req.method})
            return Response(200, self._version() if rest == "admin/version" else self._me(token))
        m = re.match(r"^([a-z_]+/[a-z_]+)(?:/([^/]+))?(?:/([a-z_]+))?$", rest)
        if m and m.group(1) == "tasks/tasks" and self.vt >= (2025, 8):  # Dramatiq era only (§10.7)
            return self._tasks_api(req, self._authenticate(req), m.group(2), m.group(3))
        if m and m.group(1) == "core/authenticated_sessions":
            return self._sessions_api(req, self._authenticate(req), m.group(2), m.group(3))
        if not m or (m.group(1) not in KINDS and m.group(1) not in READ_ONLY):
            raise ApiError(404, HTML_404, "text/html")
        base, pk, action = m.groups()
        token = self._authenticate(req)
        if base in READ_ONLY:
            return self._read_only(req, token, base, pk, action)
        kind = KINDS[base]
        if pk is None:
            if req.method == "GET":
                return self._list(req, token, base)
            if req.method == "POST":
                self._need_write(token)
                return self._save(req, base, None)
            raise ApiError(405, {"detail": 'Method "%s" not allowed.' % req.method})
        rec = self._get(token, base, pk)
        if action:
            return self._action(req, token, base, kind, rec, action)
        if req.method == "GET":
            return Response(200, self._serialize(base, rec, req))
        if req.method in ("PUT", "PATCH"):
            self._need_write(token)
            return self._save(req, base, rec)
        if req.method == "DELETE":
            self._need_write(token)
            if base in ("events/rules", "events/transports") and self.vt >= (2025, 8) and self._busy(rec["pk"]) \
                    and self._rng.random() < self.busy_delete_failure:
                # Under a worker backlog the delete of an object with queued tasks was refused
                # with an empty 405: mostly rolled back, the object still there (§17), sometimes
                # gone all the same (§16).
                self.busy_delete_refusals += 1
                if self._rng.random() < self.busy_delete_gone:
                    self.busy_deletes_gone += 1
                    self._delete(req, base, rec)
                return Response(405)
            self._delete(req, base, rec)
            return Response(204)
        raise ApiError(405, {"detail": 'Method "%s" not allowed.' % req.method})

    def _authenticate(self, req):
        """TokenAuthentication: no ``authenticate_header``, so 403 not 401 (§1)."""
        header = (req.headers.get("authorization") or "").strip()
        if not header or " " not in header:
            raise ApiError(403, {"detail": "Authentication credentials were not provided."})
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer":
            raise ApiError(403, {"detail": "Unsupported authentication type"})
        if not key:
            raise ApiError(403, {"detail": "Malformed header"})
        token = self.tokens.get(key)
        if token is None:
            raise ApiError(403, {"detail": "Token invalid/expired"})
        return token

    @staticmethod
    def _need_write(token):
        if not token["superuser"]:
            raise ApiError(403, {"detail": NO_PERMISSION})

    def _version(self):
        return {"version_current": self.version, "version_latest": self.version, "version_latest_valid": True,
                "build_hash": "", "outdated": False, "outpost_outdated": False}

    def _me(self, token):
        user = self._serialize("core/users", self.users[ADMIN_PK])
        return {"user": user, "original": None}

    # -- simulator-only control routes ---------------------------------------------------
    def _sim_body(self, req):
        try:
            body = req.json() or {}
        except ValueError:
            body = {}
        return body if isinstance(body, dict) else {}

    def _sim_login(self, req):
        """Simulator-only control route: log a user in over HTTP (separate-process demos)."""
        body = self._sim_body(req)
        client_ip, peer, forwarded_for = body.get("client_ip") or None, body.get("peer"), body.get("x_forwarded_for")
        if not body.get("username") or not (client_ip or peer):
            return Response(400, {"detail": "username and client_ip (or peer) are required"})
        if client_ip and (peer or forwarded_for):
            return Response(400, {"detail": "client_ip, or peer and x_forwarded_for: not both"})
        if peer is not None:
            try:
                ipaddress.ip_address(peer)
            except (ValueError, TypeError):
                return Response(400, {"detail": "peer must be an IP address"})
        if forwarded_for is not None and not isinstance(forwarded_for, str):
            return Response(400, {"detail": "x_forwarded_for must be a string (the header's value)"})
        before = len(self.deliveries)
        with self._unlocked():
            event = self.login(body["username"], client_ip, body.get("password"), peer=peer,
                               forwarded_for=forwarded_for)
        return Response(200, {"event": event.action, "session_key": event.session_key, "client_ip": event.client_ip,
                              "deliveries": self.deliveries[before:]})

    def _sim_logout(self, req):
        """Simulator-only control route: the invalidation flow for one session."""
        body = self._sim_body(req)
        if body.get("session_key") not in self.sessions:
            return Response(400, {"detail": "session_key of a live session is required"})
        with self._unlocked():
            event = self.logout(body["session_key"], body.get("client_ip"))
        return Response(200, {"event": event.action})

    def _sim_worker(self, req):
        """Simulator-only control route: pause or resume the worker (the task backlog, §16)."""
        if req.method == "POST":
            paused = self._sim_body(req).get("paused")
            if not isinstance(paused, bool):
                return Response(400, {"detail": "paused (a boolean) is required"})
            if paused:
                self.pause_worker()
            else:
                with self._unlocked():
                    self.resume_worker()
        return Response(200, {"paused": self.worker_paused, "held": len(self._messages),
                              "queued": sum(1 for t in self.tasks.values() if t["state"] == "queued")})

    # -- authenticated sessions ---------------------------------------------------------
    def _sessions_api(self, req, token, pk, action):
        """``AuthenticatedSessionViewSet``: list, retrieve, destroy, bulk_delete (no write events)."""
        if not token["superuser"]:
            if pk is None and req.method == "GET":
                return self._paginate(req, [])
            raise ApiError(404, {"detail": "No AuthenticatedSession matches the given query."})
        if pk == "bulk_delete" and action is None:
            if req.method != "DELETE":
                raise ApiError(405, {"detail": 'Method "%s" not allowed.' % req.method})
            pks = req.query.get("user_pks") or []
            if not pks or not all(re.fullmatch(r"\d+", p) for p in pks):
                raise bad_request({"user_pks": ["This field is required."] if not pks
                                   else ["A valid integer is required."]})
            doomed = [k for k, sess in self.sessions.items() if str(sess["user"]) in pks]
            for key in doomed:
                del self.sessions[key]
            return Response(200, {"deleted": len(doomed)})
        if pk is None:
            if req.method != "GET":
                raise ApiError(405, {"detail": 'Method "%s" not allowed.' % req.method})
            new = self.vt >= (2025, 4)
            filters = {"user__username": lambda sess: self.users[sess["user"]]["username"],
                       ("session__last_ip" if new else "last_ip"): lambda sess: sess["last_ip"],
                       ("session__last_user_agent" if new else "last_user_agent"):
                           lambda sess: sess["last_user_agent"]}
            rows = [sess for sess in self.sessions.values() if sess["user"] in self.users]
            for param, value_of in filters.items():
                value = req.q(param)
                if value:
                    rows = [sess for sess in rows if value_of(sess) == value]
            rows.sort(key=lambda sess: (self.users[sess["user"]]["username"], sess["uuid"]))
            return self._paginate(req, [self._serialize_session(sess) for sess in rows])
        found = next((sess for sess in self.sessions.values() if sess["uuid"] == pk), None)
        if found is None:
            raise ApiError(404, {"detail": "No AuthenticatedSession matches the given query."})
        if action == "used_by" and req.method == "GET":
            return Response(200, [])
        if action:
            raise ApiError(404, HTML_404, "text/html")
        if req.method == "GET":
            return Response(200, self._serialize_session(found))
        if req.method == "DELETE":  # an admin's revoke: the session ends, no event for its user (§17)
            del self.sessions[found["session_key"]]
            return Response(204)
        raise ApiError(405, {"detail": 'Method "%s" not allowed.' % req.method})

    def _serialize_session(self, sess):
        return {"uuid": sess["uuid"], "current": False,
                "user_agent": {"device": {"brand": "", "family": "Other", "model": ""},
                               "os": {"family": "Other", "major": "", "minor": "", "patch": "", "patch_minor": ""},
                               "user_agent": {"family": "Other", "major": "", "minor": "", "patch": ""},
                               "string": sess["last_user_agent"]},
                "geo_ip": None, "asn": None, "user": sess["user"], "last_ip": sess["last_ip"],
                "last_user_agent": sess["last_user_agent"], "last_used": iso(sess["last_used"]),
                "expires": iso(sess["expires"])}

    # -- worker tasks (>= 2025.8) ------------------------------------------------
    def _workers_api(self, req):
        """``WorkerView`` (>= 2025.8): the worker processes that checked in, a plain list, not the paginated shape."""
        if self.vt < (2025, 8):
            raise ApiError(404, HTML_404, "text/html")  # the Celery era's count is /admin/workers/
        token = self._authenticate(req)
        if req.method != "GET":
            raise ApiError(405, {"detail": 'Method "%s" not allowed.' % req.method})
        if not token["superuser"] or "authentik_rbac.view_system_info" in token.get("without", ()):
            raise ApiError(403, {"detail": NO_PERMISSION})  # HasPermission("authentik_rbac.view_system_info")
        return Response(200, self.workers())

    def _tasks_api(self, req, token, pk, action):
        """``TaskViewSet``: list, retrieve and the ``status`` list action; read-only."""
        if action:
            raise ApiError(404, HTML_404, "text/html")  # retry: not modelled
        if req.method != "GET":
            raise ApiError(405, {"detail": 'Method "%s" not allowed.' % req.method})
        if pk == "status":
            if not token["superuser"]:  # permission_required(None, ["authentik_tasks.view_task"])
                raise ApiError(403, {"detail": NO_PERMISSION})
            counts = dict.fromkeys(TASK_STATUSES, 0)
            for task in self.tasks.values():
                counts[self._aggregated_status(task)] += 1
            return Response(200, counts)
        if pk is not None:
            not_found = ApiError(404, {"detail": "No Task matches the given query."})
            try:
                key = norm_uuid(pk)
            except ValueError:
                raise not_found from None
            task = self.tasks.get(key)
            if task is None or not token["superuser"]:
                raise not_found
            return Response(200, self._serialize_task(task))
        if not token["superuser"]:
            return self._paginate(req, [])
        tasks = self._filter_tasks(req, list(self.tasks.values()))
        terms = self._ordering_terms(req, TASK_ORDERING, [("mtime", True)])
        tasks = self._sort(tasks, terms, lambda t, f: self._aggregated_status(t) if f == "aggregated_status"
                           else t[f], lambda t: t["seq"])
        resp = self._paginate(req, tasks)
        resp.body["results"] = [self._serialize_task(t) for t in resp.body["results"]]
        return resp

    def _filter_tasks(self, req, tasks):
        """``TaskFilter`` (exact lookups, choice validation like django-filter) plus ``search``."""
        errors = {}
        # 2026.8 added a state (tasks waiting for others), which the filters of older versions refuse as a choice
        later = ("waiting_for_dependencies",) if self.vt >= (2026, 8) else ()
        state = req.q("state")
        if state and state not in TASK_STATES + later:
            errors["state"] = [CHOICE_ERROR % state]
        statuses = [v for v in req.query.get("aggregated_status", []) if v]
        bad = [v for v in statuses if v not in TASK_STATUSES + later]
        if bad:
            errors["aggregated_status"] = [CHOICE_ERROR % bad[0]]
        if errors:
            raise bad_request(errors)
        if state:
            tasks = [t for t in tasks if t["state"] == state]
        if statuses:
            tasks = [t for t in tasks if self._aggregated_status(t) in statuses]
        for param, key in (("queue_name", "queue_name"), ("actor_name", "actor_name"), ("rel_obj_id", "rel_obj_id"),
                           ("rel_obj_content_type__app_label", "rel_obj_app_label"),
                           ("rel_obj_content_type__model", "rel_obj_model")):
            value = req.q(param)
            if value:
                tasks = [t for t in tasks if t[key] == value]
        isnull = {"true": True, "1": True, "false": False, "0": False}.get((req.q("rel_obj_id__isnull") or "").lower())
        if isnull is not None:  # BooleanWidget: anything else is no filter
            tasks = [t for t in tasks if (t["rel_obj_id"] is None) == isnull]
        search = (req.q("search") or "").lower()
        if search:
            tasks = [t for t in tasks if any(search in str(v).lower() for v in (
                t["message_id"], t["queue_name"], t["actor_name"], t["state"], t["rel_obj_app_label"] or "",
                t["rel_obj_model"] or "", t["rel_obj_id"] or "", self._aggregated_status(t)))]
        return tasks

    @staticmethod
    def _aggregated_status(task):
        """2026.5's ``update_aggregated_status`` trigger: the state unless done, and for done rows the
        worst level in the legacy ``_messages`` column, which TaskLog-era workers leave empty: so
        done -> "done", rejected -> "rejected", never "error" for a failed delivery."""
        return task["state"]

    def _serialize_task(self, t):
        """``TaskSerializer`` (2026.2/2026.5 fields)."""
        def logs(entries):
            return [{"event": e["event"], "log_level": e["log_level"], "logger": e["logger"],
                     "timestamp": iso(e["timestamp"]), "attributes": e["attributes"]} for e in entries]

        out = {"message_id": t["message_id"], "queue_name": t["queue_name"], "actor_name": t["actor_name"],
               "state": t["state"], "mtime": iso(t["mtime"]), "retries": t["retries"], "eta": iso(t["eta"])}
        if t["rel_obj_app_label"] is not None:  # ReadOnlyField through a null FK: SkipField, key absent
            out.update(rel_obj_app_label=t["rel_obj_app_label"], rel_obj_model=t["rel_obj_model"])
        out.update(rel_obj_id=t["rel_obj_id"], uid=t["actor_name"], logs=logs(t["logs"]),
                   previous_logs=logs(t["previous_logs"]), aggregated_status=self._aggregated_status(t),
                   description=TASK_DESCRIPTIONS.get(t["actor"]))
        return out

    # -- events (EventsFilter) ------------------------------------------------------
    def _list_events(self, req):
        rows = [(seq, e, e.as_dict()) for seq, e in enumerate(self.events)]
        since_2026_2 = self.vt >= (2026, 2)
        if since_2026_2:  # MultipleChoiceFilter: exact, OR-ed, every value must be a choice
            actions = [v for v in req.query.get("actions", []) if v]
            bad = [v for v in actions if v not in KNOWN_ACTIONS]
            if bad:
                raise bad_request({"actions": [CHOICE_ERROR % bad[0]]})
            if actions:
                rows = [r for r in rows if r[2]["action"] in actions]
        action = req.q("action")
        if action:  # CharFilter(lookup_expr="icontains"): "login" also matches "login_failed"
            rows = [r for r in rows if action.lower() in r[2]["action"].lower()]
        username = req.q("username")
        if username:  # user__username, and from 2026.2 also context__username (filter_username)
            rows = [r for r in rows if (r[2]["user"] or {}).get("username") == username or
                    (since_2026_2 and isinstance(r[2]["context"], dict) and
                        r[2]["context"].get("username") == username)]
        client_ip = req.q("client_ip")
        if client_ip:
            rows = [r for r in rows if r[2]["client_ip"] == client_ip]

        def ctx(row, *keys):
            value = row[2]["context"]
            for key in keys:
                value = value.get(key) if isinstance(value, dict) else None
            return value

        model_pk = req.q("context_model_pk")
        if model_pk:  # dashes stripped (pks are stored as uuid hex), int pks match too
            wanted = model_pk.replace("-", "")
            number = int(wanted) if re.fullmatch(r"-?\d+", wanted) else None
            rows = [r for r in rows if (isinstance(ctx(r, "model", "pk"), str) and ctx(r, "model", "pk") == wanted) or
                    (number is not None and type(ctx(r, "model", "pk")) is int and ctx(r, "model", "pk") == number)]
        for param, keys in (("context_model_name", ("model", "model_name")), ("context_model_app", ("model", "app")),
                            ("context_authorized_app", ("authorized_application", "pk"))):
            value = req.q(param)
            if value:
                rows = [r for r in rows if ctx(r, *keys) == value]
        brand = req.q("brand_name")
        if brand and since_2026_2:
            rows = [r for r in rows if (r[2]["brand"] or {}).get("name") == brand]
        search = (req.q("search") or "").lower()
        if search:  # SearchFilter over event_uuid, user, action, app, context, client_ip
            rows = [r for r in rows if any(search in text.lower() for text in (
                r[2]["pk"], json.dumps(r[2]["user"]), r[2]["action"], r[2]["app"], json.dumps(r[2]["context"]),
                r[2]["client_ip"] or ""))]
        terms = self._ordering_terms(req, EVENT_ORDERING, [("created", True)])
        rows = self._sort(rows, terms, lambda r, f: EVENT_ORDERING[f](r[1]), lambda r: r[0])
        return self._paginate(req, [r[2] for r in rows])

    # -- pagination and ordering ------------------------------------------------------
    @staticmethod
    def _ordering_terms(req, allowed, default):
        """DRF ``OrderingFilter``: comma-separated fields, invalid ones dropped, none left -> default."""
        terms = []
        for term in (req.q("ordering") or "").split(","):
            term = term.strip()
            if term.lstrip("-") in allowed:
                terms.append((term.lstrip("-"), term.startswith("-")))
        return terms or default

    @staticmethod
    def _sort(items, terms, value, seq):
        """Stable multi-key sort; NULLs last ascending, first descending (Postgres); ties by ``seq``
        in the first term's direction."""
        items = sorted(items, key=seq, reverse=terms[0][1])
        for field, desc in reversed(terms):
            items.sort(key=lambda item: (value(item, field) is None,
                                         "" if value(item, field) is None else value(item, field)), reverse=desc)
        return items

    def _paginate(self, req, items):
        size = self.page_size
        raw = req.q("page_size")
        if raw and raw.isdigit() and int(raw) > 0:
            size = int(raw) if self.max_page_size is None else min(int(raw), self.max_page_size)
        total = max(1, math.ceil(len(items) / size))
        page = req.q("page", "1")
        page = total if page == "last" else page
        try:
            page = int(page)
        except ValueError:
            raise ApiError(404, {"detail": "Invalid page."}) from None
        if page < 1 or page > total:
            raise ApiError(404, {"detail": "Invalid page."})
        chunk = items[(page - 1) * size:page * size]
        start = (page - 1) * size + 1 if items else 0
        body = {"pagination": {"next": page + 1 if page < total else 0, "previous": page - 1 if page > 1 else 0,
                               "count": len(items), "current": page, "total_pages": total,
                               "start_index": start, "end_index": start + len(chunk) - 1 if items else 0},
                "results": chunk}
        if self.vt >= (2026, 2):
            body["autocomplete"] = {}
        return Response(200, body)
