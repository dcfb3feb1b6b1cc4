"""Stateful stand-in for the authentik REST API (``/api/v3``) plus its notification pipeline.

It copies what the real server does, warts included (section numbers refer to
the project's authentik API reference):

* trailing slash mandatory, HTML 404 otherwise; bad or missing auth is 403 (§1);
* unknown query parameters and unknown body keys are silently ignored, so the
  field names of the other version generation are dropped with a 2xx (§1, §14);
* names are unique across all property-mapping types and all policy types (§15.2);
* PUT wipes the ``default=list`` M2Ms (user groups, group users/parents) (§1);
* policy bindings: exactly one of policy/group/user, PATCH without target is a 500 (§6);
* every event runs the notification pipeline: rules -> bound policies (mode any)
  -> recipients -> transports, with real Python expressions (evaluated by the
  worker when it runs the task, against the state of that moment) and webhook POSTs
  with retries (§4, §10, §11);
* a DELETE of a rule or transport the worker still holds tasks for can answer an
  empty 405 (``busy_delete_failure``, a seeded chance): mostly rolled back, the object
  still there (§17), sometimes gone all the same (``busy_delete_gone``, §16).

The worker (§10.7, §16-17) is a queue of messages, oldest first, like the Postgres
broker: saving an event enqueues ``event_trigger_dispatch``, which enqueues one
``event_trigger_handler`` per notification rule whatever the event, which enqueues one
``notification_transport`` per recipient and transport. The dispatch reads the rules
that exist when it runs (``NotificationRule.objects.all()`` in ``event_trigger_dispatch``),
so a new rule's own ``model_created`` event reaches that rule too: creating 25 rules
queues 325 handlers here, where §17 counted 300 on a real server. The source is
followed; the simulator's handler counts may be that much higher than a real server's.
``worker=`` picks who runs it:

* ``"sync"`` (default): the request that saved the event drains the queue before it
  answers, so a test sees the delivery at once;
* ``"background"``: ``worker_threads`` threads run it while the API keeps answering,
  as the real worker does; ``task_costs`` gives each actor the seconds of work a task
  costs (the real worker spends tens of ms per task), so a backlog builds up and
  logins wait behind it; ``task_cost_per_queued`` adds that many seconds to a task's
  cost for every message queued when it starts (the real worker slows down under a
  backlog: §16-17's drains took time growing with the square of the backlog); tests
  wait with ``wait_idle()`` or on a condition;
* ``"manual"``: nothing runs until a test calls ``step()`` / ``run_until_idle()``.

A failed task is retried with exponential backoff (``retry_backoff`` * 2**n) up to
``max_retries`` (Dramatiq's 5, 20 before 2025.8.4, Celery's 3 before 2025.8; before
2025.8 only a transport's delivery error is retried). ``pause_worker(actors)`` leaves
the messages of those actors queued (a stalled worker); ``enqueued`` counts the
messages sent per actor, which is what the load tests measure.

Sessions (§17): a login creates an ``AuthenticatedSession`` (one day, or 30 days with
"stay signed in"), ``use_session()`` refreshes its address and last use,
``expire_session()`` runs it out without an event, ``logout()`` writes a ``logout``
event and deletes it; ``/core/authenticated_sessions/`` lists, reads and deletes them
(bulk too), writing no event.

Seeded state: the anonymous user (pk 1, never listed), ``akadmin`` (pk 4, member
of the superuser group "authentik Admins"); users added later get pks from 5 on.
API tokens always act as akadmin; a token added with ``superuser=False`` may read
nothing and write nothing (RBAC).

``default_rules=True`` seeds what a fresh install's ``blueprints/default/events-default.yaml``
makes (off by default, so tests see only their own objects): the transports
``default-email-transport`` (mode email) and ``default-local-transport`` (mode local), the
event matcher policies ``default-match-configuration-error`` (action ``configuration_error``),
``default-match-update`` (``update_available``), ``default-match-policy-exception``
(``policy_exception``) and ``default-match-property-mapping-exception``
(``property_mapping_exception``), and the rules ``default-notify-configuration-error``,
``default-notify-update`` and ``default-notify-exception`` (severity ``alert``, both transports,
destination group "authentik Admins"), bound order 0 (the exception rule: both exception
matchers, orders 0 and 1). They are ordinary rules to the worker: every event costs one
handler task per default rule before any rule of a client exists, and a rule fires (email +
local notification to akadmin) for its own actions. (The blueprint still passes ``group:``,
which a 2025.8+ serializer drops (§13); the group is set here all the same.) No events are
written for the seeding.

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

Worker tasks (>= 2025.8, Dramatiq; older versions answer the usual HTML 404):
``GET /tasks/tasks/`` (``TaskFilter``: ``state``, repeatable ``aggregated_status``,
``actor_name``, ``queue_name``, ``rel_obj_id``, ``rel_obj_id__isnull``,
``rel_obj_content_type__app_label``/``__model``; ``search``; ordering ``-mtime``),
``GET /tasks/tasks/{message_id}/`` and ``GET /tasks/tasks/status/`` (counts per
*aggregated* status over all tasks). The pipeline records the rows the real worker
writes (§10.7, §16): saving an event enqueues ``event_trigger_dispatch`` (no rel_obj),
which enqueues one ``event_trigger_handler`` per rule (rel_obj = the rule), which
enqueues one ``notification_transport`` per recipient and transport (rel_obj = the
transport, ``authentik_events``/``notificationtransport``). Actor names are
``authentik.events.tasks.<function>`` (django_dramatiq_postgres'
``FullyQualifiedActorName`` middleware: module + function), queue ``default``; these
exact names were derived from source, not observed on a running server. Task states
and logs follow ``TaskLogMiddleware`` and the Postgres broker:

* queued ("Task has been queued") -> consumed ("Task is being processed") -> done
  ("Task finished processing without errors");
* a failed attempt logs an ``error`` entry whose ``event`` is ``str(exception)``: for a
  non-2xx answer that is ``NotificationTransportError(response.text)``, the *response
  body* (the requests ``"404 Client Error: ..."`` text is the chained cause in
  ``attributes.exception``), for a connection error the requests exception text. With
  retries left the earlier logs move to ``previous_logs``, "Task will be retried" is
  logged, ``retries`` goes up and the row is queued again (with an ``eta``); when the
  retries are used up the row is ``rejected`` with ``retries`` = the retry count;
* ``aggregated_status`` is the state for every unfinished or rejected row and ``done``
  for done rows: 2026.5's trigger aggregates the legacy ``_messages`` column, which the
  TaskLog-era middleware no longer writes, and it never maps ``rejected`` to ``error``.
  So a failed delivery is ``state=rejected`` / ``aggregated_status=rejected``, never
  ``error``. (Source history, not modelled: 2025.8-2025.10 kept logs in ``_messages``,
  so done rows there aggregate to ``info``; the later migration 0008 aggregates TaskLog
  rows, giving ``info``/``warning``/``error`` for done rows.);
* a webhook mapping exception: the ``property_mapping_exception`` event as before and an
  ``error`` log on the transport row whose ``event`` is ``""``
  (``str(PropertyMappingExpressionException)``; the mapping's exception is the chained
  cause). Dramatiq retries it like any exception, one event per attempt, and rejects
  the row when the retries are spent;
* deleting a rule or transport deletes its task rows (GenericRelation cascade), so a
  queued handler of a deleted rule never runs; a row without rel_obj has no
  ``rel_obj_app_label``/``rel_obj_model`` keys at all (DRF skips a dotted source through
  a null FK), although the schema lists them as required;
* not modelled: ``POST .../retry/``, ``system_task_exception`` events (both exceptions
  above subclass ``SentryIgnoredException``, which the middleware skips, so the real
  worker records none for them either), email
  ``send_mail`` tasks, worker rows. At most ``task_limit`` rows are kept (finished ones
  are purged oldest first, like the broker's expiry).

Simulator-only control routes (not part of authentik), no auth:

* ``POST /_sim/login/`` with ``{"username", "client_ip", "password"?}`` runs ``login()``
  and answers ``{"event": <action>, "session_key", "deliveries": [...]}`` (the
  deliveries made before it answered: all of them with the sync worker);
* ``POST /_sim/logout/`` with ``{"session_key", "client_ip"?}`` runs ``logout()``;
* ``POST /_sim/worker/`` with ``{"paused": bool}`` (``GET`` reads it) pauses or resumes
  the whole worker, like ``pause_worker()`` / ``resume_worker()``, and answers
  ``{"paused": bool, "held": <messages queued>, "queued": <task rows queued>}``. Held
  messages run in order on resume; messages of paused actors do not make
  ``wait_idle`` wait.

Run it alone with ``python -m tests.simulators.authentik --port 9000``.
"""

import argparse
import builtins
import importlib
import importlib.util
import ipaddress
import json
import math
import random
import re
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from textwrap import indent
from types import ModuleType, SimpleNamespace

import pydantic
import requests

from tests.simulators.authentik_orm import expression_builtins
from tests.simulators.base import Response, SimulatorBase

REQUEST_MODELS = [m + "Request" for m in ("NotificationWebhookMapping", "NotificationTransport", "NotificationRule",
                                          "ExpressionPolicy", "EventMatcherPolicy", "PolicyBinding", "User", "Group")]


def load_client_models(names=tuple(REQUEST_MODELS + ["Patched" + m for m in REQUEST_MODELS] + ["EventActions"])):
    """The official pydantic models from ``authentik_client``, without its package ``__init__``.

    That ``__init__`` imports every API and ~900 models (about 20 s); the request
    models only need their own modules, so they are loaded under stand-in parent
    packages which are removed again: a later real ``import authentik_client``
    still runs the full ``__init__`` and reuses these same modules.
    """
    if "authentik_client" in sys.modules:
        return sys.modules["authentik_client"]
    root = Path(importlib.util.find_spec("authentik_client").origin).parent
    stubs = {}
    for name, path in (("authentik_client", root), ("authentik_client.models", root / "models")):
        stubs[name] = sys.modules[name] = ModuleType(name)
        stubs[name].__path__ = [str(path)]
    try:
        found = {}
        for name in names:
            module = importlib.import_module("authentik_client.models." + re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower())
            found[name] = getattr(module, name)
        return SimpleNamespace(**found)
    finally:
        for name, stub in stubs.items():
            if sys.modules.get(name) is stub:
                del sys.modules[name]


akc = load_client_models()

ANON_PK = 1
ADMIN_PK = 4
HTML_404 = (b'<!doctype html>\n<html lang="en">\n<head>\n  <title>Not Found</title>\n</head>\n'
            b"<body>\n  <h1>Not Found</h1><p>The requested resource was not found on this server.</p>\n"
            b"</body>\n</html>\n")
HTML_500 = b"<!doctype html>\n<html lang=\"en\">\n<body>\n  <h1>Server Error (500)</h1>\n</body>\n</html>\n"
NO_PERMISSION = "You do not have permission to perform this action."
MODES = {"local": "authentik inbuilt notifications", "webhook": "Generic Webhook",
         "webhook_slack": "Slack Webhook (Slack/Discord)", "email": "Email"}
EMAIL_TEMPLATES = ("email/event_notification.html", "email/event_notification.txt")
KNOWN_ACTIONS = {e.value for e in akc.EventActions}
TASK_STATES = ("queued", "consumed", "preprocess", "running", "postprocess", "rejected", "done")
TASK_STATUSES = TASK_STATES + ("info", "warning", "error")
TASK_LOGGER = "authentik.tasks.middleware.TaskLogMiddleware"  # class_to_path(TaskLogMiddleware)
ACTORS = ("event_trigger_dispatch", "event_trigger_handler", "notification_transport")
TASK_DESCRIPTIONS = {  # the actors' ``description`` option (authentik/events/tasks.py)
    "event_trigger_dispatch": "Dispatch new event notifications.",
    "event_trigger_handler": "Check if policies attached to NotificationRule match event and dispatch "
                             "notification tasks.",
    "notification_transport": "Send notification.",
}
TASK_ORDERING = ("message_id", "queue_name", "actor_name", "state", "mtime", "retries", "eta", "rel_obj_id",
                 "aggregated_status")
EVENT_ORDERING = {"pk": lambda e: str(e.event_uuid), "action": lambda e: e.action, "app": lambda e: e.app,
                  "client_ip": lambda e: e.client_ip, "created": lambda e: e.created,
                  "expires": lambda e: e.expires}
CHOICE_ERROR = "Select a valid choice. %s is not one of the available choices."
DEFAULT_BRAND = {"app": "authentik_brands", "model_name": "brand",
                 "pk": "0" * 31 + "1", "name": "Default brand"}
BOOL_TRUE, BOOL_FALSE = ("true", "True", "1"), ("false", "False", "0")

# Django's URLValidator host part; DomainlessURLValidator makes the TLD optional,
# so "http://receiver:8080/x" passes but an underscore in the host does not (§3).
_HOST = r"[a-z0-9\u00a1-\uffff](?:[a-z0-9\u00a1-\uffff-]{0,61}[a-z0-9\u00a1-\uffff])?"
_DOMAIN = r"(?:\.(?!-)[a-z0-9\u00a1-\uffff-]{1,63}(?<!-))*\.?"
URL_RE = re.compile(
    r"^(?:https?|ftps?)://(?:[^\s:@/]+(?::[^\s:@/]*)?@)?"
    r"(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}|\[[0-9a-f:.]+\]|" +
    _HOST + _DOMAIN + r")(?::\d{1,5})?(?:[/?#][^\s]*)?\Z", re.IGNORECASE)


EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")


def parse_version(version):
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    return tuple(int(x or 0) for x in m.groups())


def now():
    return datetime.now(timezone.utc)


def iso(value):
    return value.isoformat().replace("+00:00", "Z") if value else None


def norm_uuid(value):
    return str(uuid.UUID(str(value)))


class ApiError(Exception):
    def __init__(self, status, body, content_type="application/json"):
        super().__init__(status)
        self.response = Response(status, body, content_type)


def bad_request(errors):
    return ApiError(400, errors)


# -- objects expressions see ------------------------------------------------
class ExprUser:
    """What an expression sees as ``User`` (the recipient or ``request.user``)."""

    is_anonymous = False
    is_authenticated = True

    def __init__(self, sim, rec):
        self._sim = sim
        for key in ("pk", "username", "name", "email", "is_active", "attributes", "path", "type"):
            setattr(self, key, rec[key])
        self.uuid = uuid.UUID(rec["uuid"])
        self.id = self.pk

    @property
    def is_superuser(self):
        return self._sim._is_superuser(self.pk)

    @property
    def group_names(self):
        return [g["name"] for g in self._sim.groups.values() if self.pk in g["users"]]

    def __repr__(self):
        return "User(%s)" % self.username


class AnonymousUser:
    pk = id = ANON_PK
    username = "AnonymousUser"
    name = ""
    email = ""
    is_active = True
    is_anonymous = True
    is_authenticated = False
    is_superuser = False
    attributes = {}
    group_names = []

    def __repr__(self):
        return "AnonymousUser"


class Event:
    """An authentik Event: ``user`` is a dict, ``context`` a dict (§11)."""

    def __init__(self, action, user=None, client_ip=None, context=None, app="authentik.events.models"):
        self.event_uuid = uuid.uuid4()
        self.pk = self.event_uuid
        self.action = action
        self.user = dict(user or {})
        self.client_ip = client_ip
        self.context = dict(context or {})
        self.app = app
        self.brand = dict(DEFAULT_BRAND)
        self.created = now()
        self.expires = self.created + timedelta(days=365)
        self.dispatch_task = None  # its event_trigger_dispatch task row (>= 2025.8)
        self.handler_tasks = None  # [(rule name, handler row)] once dispatched or held

    @property
    def summary(self):
        if "message" in self.context:
            return self.context["message"]
        return "%s: %s" % (self.action, self.context)

    def as_dict(self):
        return {"pk": str(self.event_uuid), "user": self.user, "action": self.action, "app": self.app,
                "context": sanitize(self.context), "client_ip": self.client_ip, "created": iso(self.created),
                "expires": iso(self.expires), "brand": self.brand}

    def __repr__(self):
        return "Event(%s, user=%s, client_ip=%s)" % (self.action, self.user.get("username"), self.client_ip)


class Notification:
    """Unsaved Notification handed to the mappings (§11)."""

    def __init__(self, event, user, severity, body):
        self.event, self.user, self.severity, self.body = event, user, severity, body
        self.hyperlink = self.hyperlink_label = None
        self.seen = False
        self.created = now()


class PolicyRequest:
    def __init__(self, user, context, obj=None):
        self.user, self.context, self.obj = user, context, obj
        self.http_request = None
        self.debug = False


class ExprLogger:
    def __init__(self, sink, source):
        self._sink, self._source = sink, source

    def __getattr__(self, level):
        if level not in ("debug", "info", "warning", "warn", "error", "exception", "critical"):
            raise AttributeError(level)
        return lambda msg, **kw: self._sink.append({"source": self._source, "level": level, "msg": msg, **kw})


class SkipObject(Exception):
    pass


class MappingFailed(Exception):
    """A webhook mapping raised: the event is recorded, nothing is sent."""


class TransportError(Exception):
    """What a failed ``notification_transport`` raises; ``task_log`` is (logged message, exception chain)."""

    def __init__(self, message, chain):
        super().__init__(message)
        self.task_log = (message, chain)


def user_dict(user):
    """Event ``user`` dict (``get_user()``): username, pk, email (§11)."""
    if user is None:
        return {}
    data = {"username": user.username, "pk": user.pk, "email": user.email}
    if getattr(user, "is_anonymous", False):
        data["is_anonymous"] = True
    return data


def sanitize(value):
    """``sanitize_item``: users -> dicts, uuids -> hex, datetimes -> iso, falsy list items dropped (§10.2)."""
    if isinstance(value, dict):
        return {k: sanitize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [sanitize(v) for v in value if v]
    if isinstance(value, (ExprUser, AnonymousUser)):
        return {"username": value.username, "pk": value.pk, "email": value.email}
    if isinstance(value, Event):
        return {"app": "authentik_events", "model_name": "event", "pk": value.event_uuid.hex, "name": str(value)}
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address,
                          ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return str(value)
    return value


def wrap_expression(expression, names):
    """``BaseEvaluator.wrap_expression``: the expression is the body of ``handler`` (§11)."""
    sig = ", ".join(names)
    return "def handler(%s):\n%s\nresult = handler(%s)" % (sig, indent(expression, "    "), sig)


def run_expression(expression, context, filename, sim=None):
    """Run an expression as authentik does; with ``sim`` its imports of authentik's models see the simulator."""
    code = compile(wrap_expression(expression, list(context)), filename, "exec")
    scope = dict(context)
    scope_builtins = expression_builtins(sim) if sim is not None else builtins
    exec(code, {"__builtins__": scope_builtins}, scope)  # noqa: S102 - that is what authentik does
    return scope["result"]


def error_string(exc):
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


# -- pydantic -> DRF error messages ------------------------------------------
def _json_type(value):
    return {dict: "dict", list: "list", str: "str", int: "int", float: "float", bool: "bool"}.get(type(value), "str")


def drf_errors(exc, relations):
    """Translate a pydantic ValidationError into DRF's ``{field: [msg]}``."""
    errors = {}
    for err in exc.errors():
        field, typ, inp = str(err["loc"][0]), err["type"], err.get("input")
        ctx = err.get("ctx") or {}
        if typ == "missing":
            msg = "This field is required."
        elif inp is None:
            msg = "This field may not be null."
        elif typ == "string_too_short":
            msg = "This field may not be blank."
        elif typ == "string_too_long":
            msg = "Ensure this field has no more than %s characters." % ctx.get("max_length")
        elif typ == "enum":
            msg = '"%s" is not a valid choice.' % inp
        elif typ.startswith("uuid"):
            msg = ("\u201c%s\u201d is not a valid UUID." % inp) if field in relations else "Must be a valid UUID."
        elif typ.startswith("bool"):
            msg = "Must be a valid boolean."
        elif typ.startswith("int"):
            msg = ("Incorrect type. Expected pk value, received %s." % _json_type(inp)
                   if field in relations else "A valid integer is required.")
        elif typ == "list_type":
            msg = 'Expected a list of items but got type "%s".' % _json_type(inp)
        elif typ == "dict_type":
            msg = 'Expected a dictionary of items but got type "%s".' % _json_type(inp)
        elif typ.startswith("string"):
            msg = "Not a valid string."
        elif typ == "greater_than_equal":
            msg = "Ensure this value is greater than or equal to %s." % ctx.get("ge")
        elif typ == "less_than_equal":
            msg = "Ensure this value is less than or equal to %s." % ctx.get("le")
        elif typ.startswith("datetime"):
            msg = ("Datetime has wrong format. Use one of these formats instead: "
                   "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].")
        else:
            msg = err["msg"]
        if msg not in errors.setdefault(field, []):
            errors[field].append(msg)
    return errors


class Kind:
    """One model endpoint: its store, 404 name, pydantic request models and audit name."""

    def __init__(self, store, model, request_model, app, model_name, tag=None, ordering="name"):
        self.store, self.model, self.app, self.model_name = store, model, app, model_name
        self.create_model = getattr(akc, request_model)
        self.patch_model = getattr(akc, "Patched" + request_model)
        self.tag, self.ordering = tag, ordering


KINDS = {
    "propertymappings/notification": Kind("mappings", "NotificationWebhookMapping", "NotificationWebhookMappingRequest",
                                          "authentik_events", "notificationwebhookmapping"),
    "events/transports": Kind("transports", "NotificationTransport", "NotificationTransportRequest",
                              "authentik_events", "notificationtransport"),
    "events/rules": Kind("rules", "NotificationRule", "NotificationRuleRequest",
                         "authentik_events", "notificationrule"),
    "policies/expression": Kind("policies", "ExpressionPolicy", "ExpressionPolicyRequest",
                                "authentik_policies_expression", "expressionpolicy", tag="expression"),
    "policies/event_matcher": Kind("policies", "EventMatcherPolicy", "EventMatcherPolicyRequest",
                                   "authentik_policies_event_matcher", "eventmatcherpolicy", tag="event_matcher"),
    "policies/bindings": Kind("bindings", "PolicyBinding", "PolicyBindingRequest", "authentik_policies",
                              "policybinding", ordering="order"),
    "core/users": Kind("users", "User", "UserRequest", "authentik_core", "user", ordering="username"),
    "core/groups": Kind("groups", "Group", "GroupRequest", "authentik_core", "group"),
}
READ_ONLY = {"propertymappings/all": "PropertyMapping", "policies/all": "Policy", "events/events": "Event"}
POLICY_META = {
    "expression": ("ak-policy-expression-form", "Expression Policy", "Expression Policies",
                   "authentik_policies_expression.expressionpolicy"),
    "event_matcher": ("ak-policy-event-matcher-form", "Event-matcher Policy", "Event-matcher Policies",
                      "authentik_policies_event_matcher.eventmatcherpolicy"),
    "dummy": ("ak-policy-dummy-form", "Dummy Policy", "Dummy Policies", "authentik_policies_dummy.dummypolicy"),
}
MAPPING_META = {
    "notification": ("ak-property-mapping-notification-form", "Webhook Mapping", "Webhook Mappings",
                     "authentik_events.notificationwebhookmapping"),
    "scope": ("ak-property-mapping-provider-scope-form", "Scope Mapping", "Scope Mappings",
              "authentik_providers_oauth2.scopemapping"),
}
# relation fields: value -> (store, error label); malformed ones get Django's uuid message
RELATIONS = {
    "webhook_mapping": "mappings", "webhook_mapping_body": "mappings", "webhook_mapping_headers": "mappings",
    "webhook_ca": "certificates", "transports": "transports", "destination_group": "groups", "policy": "policies",
    "target": "rules", "user": "users", "groups": "groups", "roles": "roles", "users": "users",
    "parents": "groups", "parent": "groups",
}
UNIQUE_MSG = {
    "mappings": "property mapping with this name already exists.",
    "transports": "Notification Transport with this name already exists.",
    "rules": "Notification Rule with this name already exists.",
    "policies": "policy with this name already exists.",
    "groups": "Group with this name already exists.",
}


class AuthentikSimulator(SimulatorBase):
    name = "authentik"

    def __init__(self, version="2026.5.0-rc1", page_size=None, worker="sync", worker_threads=2, task_costs=None,
                 retry_backoff=0.05, max_retries=None, webhook_timeout=5.0, busy_delete_failure=0.0,
                 busy_delete_gone=0.0, seed=0, default_rules=False, read_latency=0.0, write_latency=0.0,
                 task_cost_per_queued=0.0, event_search_latency=None):
        super().__init__(read_latency=read_latency, write_latency=write_latency)
        # seconds a GET of /events/events/ filtered by username takes (None: read_latency, like any read)
        self.event_search_latency = event_search_latency
        self.default_rules = default_rules  # seed events-default.yaml's rules (a fresh install) on reset()
        if worker not in ("sync", "background", "manual"):
            raise ValueError("worker must be sync, background or manual")
        self.version = version
        self._page_size = page_size
        self.worker_mode = worker
        self.retry_backoff = retry_backoff  # seconds; attempt n waits retry_backoff * 2**(n-1)
        self._max_retries = max_retries
        self.webhook_timeout = webhook_timeout
        self.webhook_verify = True  # TLS verification of webhook targets
        # Seconds of work each task costs the worker (a real one spends tens of ms per task, §16-17).
        self.task_costs = dict.fromkeys(ACTORS, 0.0)
        self.task_costs.update(task_costs or {})
        # Seconds a task costs more for every message still queued when it starts (a task with a cost at
        # all): drains on the real server took ~B**2, not ~B, for B queued tasks (§16-17).
        self.task_cost_per_queued = task_cost_per_queued
        # Chance that a DELETE of a rule or transport with tasks still queued answers 405 and
        # leaves the object in place (§17); drawn from a seeded generator, so runs repeat.
        self.busy_delete_failure = busy_delete_failure
        # Chance that such a refused delete took effect all the same: 405, and the object gone (§16).
        self.busy_delete_gone = busy_delete_gone
        self._rng = random.Random(seed)
        self.drain_budget = 20000  # messages one synchronous drain may run: stops event storms from looping
        self.task_limit = 5000  # task rows kept; finished ones beyond it are purged, oldest first
        self._work = threading.Condition(self.lock)
        self.reset()
        self._threads = []
        if worker == "background":
            for index in range(worker_threads):
                thread = threading.Thread(target=self._worker_loop, name="authentik-worker-%d" % index, daemon=True)
                thread.start()
                self._threads.append(thread)

    def reset(self):
        with self.lock:
            self.tokens = {}
            self.users, self.groups = {}, {}
            self.mappings, self.other_mappings = {}, {}
            self.transports, self.rules = {}, {}
            self.policies, self.bindings = {}, {}
            self.sessions = {}  # session_key -> session row
            self.events, self.deliveries, self.outbox, self.notifications = [], [], [], []
            self.expression_log = []
            self.tasks = {}  # message_id -> task row (insertion order = enqueue order)
            self._task_seq = 0
            self._messages = []  # the broker's queue, oldest first
            self._running = 0
            self._paused = set()  # actors the worker leaves alone
            self.enqueued = dict.fromkeys(ACTORS, 0)  # messages sent per actor since reset_counts()
            self.busy_delete_refusals = self.busy_deletes_gone = 0
            self._next_user = ADMIN_PK
            self.add_user("akadmin", name="authentik Default Admin", email="root@example.com")
            admins = self.add_group("authentik Admins", is_superuser=True)
            self.groups[admins]["users"].append(ADMIN_PK)
            if self.default_rules:
                self._seed_default_rules(admins)

    # blueprints/default/events-default.yaml: rule -> its event matcher policies (binding order = index)
    DEFAULT_RULES = (
        ("default-notify-configuration-error", (("default-match-configuration-error", "configuration_error"),)),
        ("default-notify-update", (("default-match-update", "update_available"),)),
        ("default-notify-exception", (("default-match-policy-exception", "policy_exception"),
                                      ("default-match-property-mapping-exception", "property_mapping_exception"))),
    )

    def _seed_default_rules(self, admins):
        """What a fresh install's default events blueprint makes; no events (lock held)."""
        transports = []
        for name, mode in (("default-email-transport", "email"), ("default-local-transport", "local")):
            rec = dict(self._defaults("events/transports"), pk=str(uuid.uuid4()), name=name, mode=mode)
            self.transports[rec["pk"]] = rec
            transports.append(rec["pk"])
        for rule_name, matchers in self.DEFAULT_RULES:
            rule = dict(self._defaults("events/rules"), pk=str(uuid.uuid4()), name=rule_name, severity="alert",
                        transports=list(transports), destination_group=admins)
            self.rules[rule["pk"]] = rule
            for order, (policy_name, action) in enumerate(matchers):
                policy = dict(self._defaults("policies/event_matcher"), pk=str(uuid.uuid4()), name=policy_name,
                              action=action)
                self.policies[policy["pk"]] = policy
                binding = dict(self._defaults("policies/bindings"), pk=str(uuid.uuid4()), policy=policy["pk"],
                               target=rule["pk"], order=order)
                self.bindings[binding["pk"]] = binding

    def reset_counts(self):
        with self.lock:
            self.enqueued = dict.fromkeys(ACTORS, 0)
            self.busy_delete_refusals = self.busy_deletes_gone = 0

    # -- version-dependent behaviour (§14) ---------------------------------
    @property
    def vt(self):
        return parse_version(self.version)

    @property
    def page_size(self):
        if self._page_size:
            return self._page_size
        return 20 if self.vt >= (2025, 12) else 100

    @property
    def max_page_size(self):
        return 100 if self.vt >= (2025, 12) else None  # ≤2025.10 had no maximum (§1)

    @property
    def max_retries(self):
        if self._max_retries is not None:
            return self._max_retries
        if self.vt < (2025, 8):
            return 3  # Celery default (§10.7)
        return 20 if self.vt < (2025, 8, 4) else 5  # Dramatiq task_max_retries

    # -- seeding -----------------------------------------------------------
    def add_token(self, key, superuser=True):
        with self.lock:
            self.tokens[key] = {"superuser": superuser}
        return key

    def add_user(self, username, name="", email="", password=None, groups=(), is_active=True):
        with self.lock:
            pk = self._next_user
            self._next_user += 1
            stamp = now()
            self.users[pk] = {"pk": pk, "username": username, "name": name, "email": email, "is_active": is_active,
                              "last_login": None, "path": "users", "type": "internal", "attributes": {},
                              "uuid": str(uuid.uuid4()), "date_joined": stamp, "last_updated": stamp,
                              "password_change_date": stamp, "password": password, "roles": []}
            for g in groups:
                self._group_by_ref(g)["users"].append(pk)
        return pk

    def add_group(self, name, is_superuser=False, users=()):
        with self.lock:
            pk = str(uuid.uuid4())
            self.groups[pk] = {"pk": pk, "name": name, "is_superuser": is_superuser, "parents": [],
                               "users": list(users), "attributes": {}, "roles": []}
        return pk

    def add_other_property_mapping(self, name, kind="scope", expression="return {}"):
        """A mapping of another type: only there to own a name (§15.2)."""
        with self.lock:
            pk = str(uuid.uuid4())
            self.other_mappings[pk] = {"pk": pk, "name": name, "expression": expression, "_type": kind}
        return pk

    def add_other_policy(self, name, kind="dummy"):
        with self.lock:
            pk = str(uuid.uuid4())
            self.policies[pk] = {"pk": pk, "name": name, "execution_logging": False, "_type": kind}
        return pk

    def _group_by_ref(self, ref):
        for g in self.groups.values():
            if ref in (g["pk"], g["name"]):
                return g
        raise KeyError(ref)

    def user_by_username(self, username):
        with self.lock:
            return next((u for u in self.users.values() if u["username"] == username), None)

    # -- logins, logouts and sessions (§16-17) --------------------------------
    def login(self, username, client_ip, password=None, user_agent="python-requests", stay_signed_in=False):
        """A login through the flow executor: ``login`` (and a session) or ``login_failed``, then the pipeline.

        The session lasts a day, or 30 days when "stay signed in" is ticked (the default
        authentication flow's user-login stage). The returned event carries ``session_key``.
        """
        with self.lock:
            rec = self.user_by_username(username)
            http = {"args": {"query": "next=%2F"}, "path": "/api/v3/flows/executor/default-authentication-flow/",
                    "method": "GET", "request_id": uuid.uuid4().hex, "user_agent": user_agent}
            if rec and rec["is_active"] and (password is None or password == rec["password"]):
                stamp = now()
                rec["last_login"] = stamp
                event = Event("login", user_dict(ExprUser(self, rec)), client_ip,
                              {"auth_method": "password", "auth_method_args": {}, "http_request": http},
                              app="authentik.events.signals")
                key = uuid.uuid4().hex[:32]
                self.sessions[key] = {"session_key": key, "uuid": str(uuid.uuid4()), "user": rec["pk"],
                                      "last_ip": client_ip, "last_user_agent": user_agent, "last_used": stamp,
                                      "expires": stamp + timedelta(days=30 if stay_signed_in else 1),
                                      "expiring": True}
                event.session_key = key
            else:
                # on_login_failed: credentials (password cleansed) in the context; since 2026.x the
                # event names the user when the username exists (authentik/events/signals.py)
                known = rec if rec and self.vt >= (2026, 2) else None
                event = Event("login_failed", user_dict(ExprUser(self, known) if known else AnonymousUser()),
                              client_ip,
                              {"username": username, "password": "********************", "http_request": http,
                               "stage": {"app": "authentik_stages_password", "model_name": "passwordstage",
                                         "pk": uuid.uuid4().hex, "name": "default-authentication-password"}},
                              app="authentik.events.signals")
                event.session_key = None
            self._record_event(event)
        self._drain()
        return event

    def logout(self, session_key, client_ip=None):
        """The invalidation flow with the browser's session: a ``logout`` event, that session deleted (§17)."""
        with self.lock:
            session = self.sessions.pop(session_key)
            event = Event("logout", user_dict(ExprUser(self, self.users[session["user"]])),
                          client_ip or session["last_ip"], {}, app="authentik.events.signals")
            self._record_event(event)
        self._drain()
        return event

    def sessions_of(self, username):
        """Session rows of a user, newest use first (test helper)."""
        with self.lock:
            rec = self.user_by_username(username)
            return sorted((dict(s) for s in self.sessions.values() if rec and s["user"] == rec["pk"]),
                          key=lambda s: s["last_used"], reverse=True)

    def use_session(self, session_key, client_ip=None, when=None):
        """The browser uses its session again (authentik refreshes last_used and last_ip)."""
        with self.lock:
            session = self.sessions[session_key]
            session["last_used"] = when or now()
            if client_ip:
                session["last_ip"] = client_ip

    def expire_session(self, session_key):
        """The session runs out (no event is written; the cleanup task deletes the row later)."""
        with self.lock:
            self.sessions[session_key]["expires"] = now() - timedelta(seconds=1)

    def create_event(self, action, user=None, client_ip=None, context=None, app="authentik.events.models"):
        """Any other event; unknown actions get the ``custom_`` prefix like ``Event.new``."""
        if action not in KNOWN_ACTIONS and not action.startswith("custom_"):
            action = "custom_" + action
        with self.lock:
            if isinstance(user, (int, str)) and not isinstance(user, bool):
                rec = self.users.get(user) if isinstance(user, int) else self.user_by_username(user)
                user = user_dict(ExprUser(self, rec)) if rec else {}
            event = Event(action, user, client_ip, context, app=app)
            self._record_event(event)
        self._drain()
        return event

    def events_of(self, action):
        with self.lock:
            return [e for e in self.events if e.action == action]

    def _record_event(self, event):
        """``post_save`` of an Event: enqueue ``event_trigger_dispatch`` (§10.7)."""
        with self.lock:
            self.events.append(event)
            self._enqueue("event_trigger_dispatch", (event.event_uuid,))

    # -- the worker: a queue of messages, like the Postgres broker ---------------------
    def _enqueue(self, actor, args, rel=None, delay=None):
        """Send a message; before 2025.8 (Celery) there is no task row, only the message."""
        with self.lock:
            self.enqueued[actor] += 1
            message = {"actor": actor, "args": args, "task": self._new_task(actor, rel), "attempt": 0,
                       "eta": time.monotonic() + delay if delay else None,
                       "rel": str(rel[2]) if rel else None}
            self._messages.append(message)
            self._work.notify()
            return message

    def _runnable(self, message, at=None):
        if message["actor"] in self._paused:
            return False
        return message["eta"] is None or message["eta"] <= (at if at is not None else time.monotonic())

    def _take(self):
        """The oldest runnable message, taken off the queue; None when nothing is due. Lock held."""
        at = time.monotonic()
        for index, message in enumerate(self._messages):
            if self._runnable(message, at):
                del self._messages[index]
                task = message["task"]
                if task is not None and task["message_id"] not in self.tasks:
                    continue  # its row went with a deleted object: the message never runs
                self._running += 1
                return message
        return None

    def _execute(self, message):
        """Run one message (called WITHOUT the lock); retries with backoff like Dramatiq's Retries."""
        cost = self.task_costs.get(message["actor"]) or 0
        if cost and self.task_cost_per_queued:
            with self.lock:
                cost += self.task_cost_per_queued * len(self._messages)
        if cost:
            time.sleep(cost)
        task = message["task"]
        try:
            with self.lock:
                self._task_start(task)
            getattr(self, "_actor_" + message["actor"])(message, *message["args"])
        except Exception as exc:  # noqa: BLE001 - the worker keeps running, like the real one
            with self.lock:
                message["attempt"] += 1
                message_text, chain = getattr(exc, "task_log", (error_string(exc), [(type(exc).__name__,
                                                                                     str(exc), False)]))
                retry = message["attempt"] <= self.max_retries and self._retried(message["actor"], exc)
                delay = self.retry_backoff * 2 ** (message["attempt"] - 1) if retry else None
                self._task_fail(task, message_text, chain, delay)
                if retry:
                    message["eta"] = time.monotonic() + delay
                    self._messages.append(message)
                    self._work.notify()
        else:
            with self.lock:
                self._task_finish(task)
        finally:
            with self.lock:
                self._running -= 1
                self._work.notify_all()

    def _retried(self, actor, exc):
        """Dramatiq (2025.8+) retries any exception; Celery retried only a transport's delivery error
        (``autoretry_for=(NotificationTransportError,)``), never a mapping exception (§10.7)."""
        if self.vt >= (2025, 8):
            return True
        return (actor == "notification_transport" and isinstance(exc, TransportError) and
                not isinstance(exc.__cause__, MappingFailed))

    def _worker_loop(self):
        while True:
            with self.lock:
                message = self._take()
                while message is None:
                    self._work.wait(self._next_due())
                    message = self._take()
            self._execute(message)

    def _next_due(self):
        """Seconds until the next delayed message is due (lock held), for the worker's wait."""
        etas = [m["eta"] for m in self._messages if m["eta"] is not None and m["actor"] not in self._paused]
        return max(0.001, min(etas) - time.monotonic()) if etas else 0.5

    def _drain(self):
        """The synchronous worker: run everything before returning. Call WITHOUT holding the lock:
        a webhook target may be another simulator (or this one) in the same process."""
        if self.worker_mode != "sync":
            return
        for _ in range(self.drain_budget):
            with self.lock:
                message = self._take()
                if message is None:
                    due = [m["eta"] for m in self._messages if m["actor"] not in self._paused and m["eta"]]
                    if not due:
                        return
            if message is None:  # only retries waiting out their backoff
                time.sleep(max(0.0, min(due) - time.monotonic()))
                continue
            self._execute(message)

    def step(self, count=1):
        """Run the next ``count`` due messages in the calling thread (manual worker); how many ran."""
        ran = 0
        while ran < count:
            with self.lock:
                message = self._take()
            if message is None:
                break
            self._execute(message)
            ran += 1
        return ran

    def run_until_idle(self, timeout=10.0):
        """Step until nothing is left (waiting out retry backoffs); True when idle."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.step(100):
                continue
            if self.idle:
                return True
            time.sleep(0.005)
        return self.idle

    @property
    def idle(self):
        """No message the worker would run, now or after a backoff, and none running."""
        with self.lock:
            return self._running == 0 and not any(m["actor"] not in self._paused for m in self._messages)

    def wait_idle(self, timeout=10.0):
        """Wait until the worker has nothing left to do (messages of paused actors excepted)."""
        if self.worker_mode == "manual":
            return self.run_until_idle(timeout)
        deadline = time.monotonic() + timeout
        with self.lock:
            while not self.idle:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._work.wait(min(left, 0.05))
        return True

    def pause_worker(self, actors=None):
        """Leave messages of ``actors`` (default: all) queued until ``resume_worker()``: a backlog (§16)."""
        with self.lock:
            self._paused = set(actors or ACTORS)

    def resume_worker(self):
        """Let the worker run the held messages. Call WITHOUT holding the lock (the sync worker drains here)."""
        with self.lock:
            self._paused = set()
            self._work.notify_all()
        self._drain()

    @property
    def worker_paused(self):
        return bool(self._paused)

    def reorder_queue(self, actor, repeat=0):
        """Deliveries late, out of order and repeated, as retries and at-least-once delivery make them:
        the queued messages of ``actor`` in reverse order, then the ``repeat`` oldest of them once more."""
        with self.lock:
            held = [m for m in self._messages if m["actor"] == actor]
            others = [m for m in self._messages if m["actor"] != actor]
            again = [dict(m, attempt=0) for m in held[:repeat]]
            self._messages[:] = others + held[::-1] + again

    def queued_messages(self, actor=None):
        with self.lock:
            return sum(1 for m in self._messages if actor is None or m["actor"] == actor)

    def _busy(self, pk):
        """Whether the worker still holds messages for the object (queued or running)."""
        pk = str(pk)
        return any(m["rel"] == pk for m in self._messages) or any(
            t["rel_obj_id"] == pk and t["state"] in ("consumed", "running") for t in self.tasks.values())

    @contextmanager
    def _unlocked(self):
        """Temporarily drop the request lock taken by the base dispatcher."""
        try:
            self.lock.release()
            held = True
        except RuntimeError:
            held = False
        try:
            yield
        finally:
            if held:
                self.lock.acquire()

    # -- the actors (authentik/events/tasks.py) ----------------------------------------
    def _actor_event_trigger_dispatch(self, message, event_uuid):
        """One ``event_trigger_handler`` per rule, by name, whatever the event."""
        with self.lock:
            for rule in sorted(self.rules.values(), key=lambda r: r["name"]):
                self._enqueue("event_trigger_handler", (event_uuid, rule["name"]),
                              ("authentik_events", "notificationrule", rule["pk"]))

    def _actor_event_trigger_handler(self, message, event_uuid, rule_name):
        """Loop guard, the rule's policies (mode any), then one transport message per recipient."""
        task = message["task"]
        with self.lock:
            event = self._event(event_uuid)
            rule = next((r for r in self.rules.values() if r["name"] == rule_name), None)
            if event is None or rule is None:
                return  # deleted or renamed since: the handler returns quietly
            guard = event.context.get("policy_uuid")
            if guard:  # loop guard: events about a policy bound to any rule are ignored (§10.8)
                try:
                    guard = norm_uuid(guard)
                except ValueError:
                    guard = None
                if guard and any(b["policy"] == guard and b["target"] in self.rules for b in self.bindings.values()):
                    return
            if not self._rule_passes(rule, event, self._expr_user(event.user.get("pk"))):
                return
            recipients = self._recipients(rule, event)
            count = 0
            for tr_pk in rule["transports"]:
                transport = self.transports.get(tr_pk)
                if not transport:
                    continue
                for user in recipients:
                    count += 1
                    self._enqueue("notification_transport", (transport["pk"], event_uuid, user.pk, rule["pk"]),
                                  ("authentik_events", "notificationtransport", transport["pk"]))
                    if transport["send_once"]:
                        break
            self._task_log(task, "info", "Created %d notification tasks" % count,
                           logger=task["actor_name"] if task else None)

    def _actor_notification_transport(self, message, transport_pk, event_uuid, user_pk, rule_pk):
        """Look everything up again, evaluate the mappings now, then POST (§10)."""
        with self.lock:
            event = self._event(event_uuid)
            rec = self.users.get(user_pk)
            rule = self.rules.get(rule_pk)
            transport = self.transports.get(transport_pk)
            if event is None or rec is None or rule is None or transport is None:
                return
            notification = Notification(event, ExprUser(self, rec), rule["severity"], event.summary)
            try:
                job = self._send_prepare(transport, rule, notification)
            except MappingFailed as exc:  # PropertyMappingExpressionException: str() is empty
                raise TransportError("", [("PropertyMappingExpressionException", "", False),
                                          (type(exc.__cause__).__name__, str(exc.__cause__), True)]) from exc
        if job is None:
            return  # local / email: done inside the task
        record, resp = self._post_once(job)
        with self.lock:
            record["attempt"] = message["attempt"] + 1
            self.deliveries.append(record)
        if resp is None or not resp.ok:
            message, chain = self._send_error(job, resp)
            raise TransportError(message, chain)

    def _event(self, event_uuid):
        return next((e for e in reversed(self.events) if e.event_uuid == event_uuid), None)

    def _expr_user(self, pk):
        rec = self.users.get(pk) if pk is not None else None
        return ExprUser(self, rec) if rec else AnonymousUser()

    def _helpers(self, source, request_user=None):
        """Globals authentik gives every expression (§11)."""

        def create_event(action, **kwargs):
            ev = Event(action if action in KNOWN_ACTIONS else "custom_" + action,
                       user_dict(request_user) if request_user else {}, None, kwargs, app=source)
            self._record_event(ev)
            return ev

        def is_group_member(user, **filters):
            return any(user.pk in g["users"] and all(g.get(k) == v for k, v in filters.items())
                       for g in self.groups.values())

        def user_by(**filters):
            rec = next((u for u in self.users.values() if all(u.get(k) == v for k, v in filters.items())), None)
            return ExprUser(self, rec) if rec else None

        def send_email(address, subject, body=None, **kwargs):
            self.outbox.append({"to": address, "subject": subject, "body": body, "source": source, **kwargs})
            return True

        def unsupported(*args, **kwargs):
            raise NotImplementedError("not available in the simulator")

        def reverse_dns(ip):
            try:
                return socket.gethostbyaddr(ip)[0]
            except OSError:
                return ip

        def resolve_dns(host, ip_version=None):
            try:
                return sorted({i[4][0] for i in socket.getaddrinfo(host, None)})
            except OSError:
                return []

        return {
            "ak_logger": ExprLogger(self.expression_log, source), "ak_create_event": create_event,
            "ak_call_policy": unsupported, "ak_is_group_member": is_group_member, "ak_user_by": user_by,
            "ak_user_has_authenticator": lambda user, device_type=None: False, "ak_send_email": send_email,
            "ak_create_jwt": unsupported, "ak_create_jwt_raw": unsupported, "requests": requests,
            "ip_address": ipaddress.ip_address, "ip_network": ipaddress.ip_network,
            "regex_match": lambda value, regex: re.search(regex, value) is not None,
            "regex_replace": lambda value, regex, repl: re.sub(regex, repl, value),
            "list_flatten": lambda v: (v[0] if v else None) if isinstance(v, list) else v,
            "resolve_dns": resolve_dns, "reverse_dns": reverse_dns,
            "slugify": lambda v: re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", str(v)).strip().lower()),
        }

    # -- worker task rows (>= 2025.8) ---------------------------------------
    def _new_task(self, actor, rel=None):
        """A task row as the Postgres broker writes it on enqueue; None before the Dramatiq era."""
        if self.vt < (2025, 8):
            return None
        stamp = now()
        self._task_seq += 1
        app, model, obj = rel or (None, None, None)
        task = {"message_id": str(uuid.uuid4()), "queue_name": "default", "actor": actor,
                "actor_name": "authentik.events.tasks." + actor, "state": "queued", "mtime": stamp, "retries": 0,
                "eta": None, "rel_obj_app_label": app, "rel_obj_model": model,
                "rel_obj_id": str(obj) if obj is not None else None, "logs": [], "previous_logs": [],
                "seq": self._task_seq}
        self._task_log(task, "info", "Task has been queued", {"delay": None})
        self.tasks[task["message_id"]] = task
        if len(self.tasks) > self.task_limit:
            self._purge_tasks()
        return task

    def _purge_tasks(self):
        """Drop the oldest finished rows down to 80 % of ``task_limit`` (queued ones stay)."""
        excess = len(self.tasks) - self.task_limit * 4 // 5
        finished = [m for m, t in self.tasks.items() if t["state"] in ("done", "rejected")][:max(excess, 0)]
        for message_id in finished:
            del self.tasks[message_id]

    def _drop_tasks_of(self, pk):
        self.tasks = {m: t for m, t in self.tasks.items() if t["rel_obj_id"] != str(pk)}

    @staticmethod
    def _task_log(task, level, message, attributes=None, logger=TASK_LOGGER):
        if task is not None:
            task["logs"].append({"event": message, "log_level": level, "logger": logger, "timestamp": now(),
                                 "attributes": attributes or {}})

    def _task_start(self, task):
        if task is not None:
            task.update(state="consumed", mtime=now())
            self._task_log(task, "info", "Task is being processed")

    def _task_finish(self, task):
        if task is not None:
            self._task_log(task, "info", "Task finished processing without errors")
            task.update(state="done", eta=None, mtime=now())

    def _task_fail(self, task, message, chain, retry_in=None):
        """An exception in the actor: error log, then a retry (queued again) or rejected.
        ``chain``: (type name, str, is_cause) from the raised exception down its causes."""
        if task is None:
            return
        exception = [{"exc_type": name, "exc_value": text, "exc_notes": [], "syntax_error": None,
                      "is_cause": cause, "is_group": False, "exceptions": [], "frames": []}
                     for name, text, cause in chain]
        self._task_log(task, "error", message, {"exception": exception})
        stamp = now()
        if retry_in is None:
            task.update(state="rejected", eta=None, mtime=stamp)
            return
        task["previous_logs"].extend(task["logs"])  # re-enqueue marks the earlier logs previous
        task["logs"] = []
        self._task_log(task, "info", "Task will be retried", {"delay": int(retry_in * 1000)})
        task.update(state="queued", retries=task["retries"] + 1, eta=stamp + timedelta(seconds=retry_in),
                    mtime=stamp)

    def _recipients(self, rule, event):
        users = []
        if self.vt >= (2025, 8) and rule["destination_event_user"] and event.user.get("pk"):
            if event.user["pk"] in self.users:
                users.append(ExprUser(self, self.users[event.user["pk"]]))
        group = self.groups.get(rule["destination_group"]) if rule["destination_group"] else None
        if group:
            users.extend(ExprUser(self, self.users[pk]) for pk in group["users"] if pk in self.users)
        return users

    def _rule_passes(self, rule, event, request_user):
        """Policy engine in mode ANY with empty_result False: no bindings, no fire (§4)."""
        bindings = sorted((b for b in self.bindings.values() if b["target"] == rule["pk"] and b["enabled"]),
                          key=lambda b: b["order"])
        request = PolicyRequest(request_user, {"event": event}, event if self.vt >= (2025, 8) else None)
        results = [self._binding_passes(b, request) for b in bindings]
        return any(results)

    def _binding_passes(self, binding, request):
        if binding["user"] is not None:
            passing = request.user.pk == binding["user"]
        elif binding["group"] is not None:
            passing = request.user.pk in self.groups.get(binding["group"], {}).get("users", [])
        else:
            policy = self.policies.get(binding["policy"])
            if not policy:
                return False
            try:
                passing, messages = self._policy_passes(policy, request)
            except Exception as exc:  # PolicyException: failure_result, no negate, an event (§11)
                self._record_event(Event("policy_exception", user_dict(request.user), None, {
                    "message": "Traceback (most recent call last):\n" + error_string(exc),
                    "policy_uuid": uuid.UUID(policy["pk"]).hex, "binding": self._binding_ref(binding),
                    "expression": policy.get("expression")}, app="authentik.policies.process"))
                return binding["failure_result"]
            if binding["negate"]:
                passing = not passing
            if policy.get("execution_logging"):
                self._record_event(Event("policy_execution", user_dict(request.user), None, {
                    "message": "Policy Execution", "policy_uuid": uuid.UUID(policy["pk"]).hex,
                    "binding": self._binding_ref(binding), "result": {"passing": passing, "messages": messages}},
                    app="authentik.policies.process"))
            return passing
        return not passing if binding["negate"] else passing

    @staticmethod
    def _binding_ref(binding):
        return {"app": "authentik_policies", "model_name": "policybinding",
                "pk": uuid.UUID(binding["pk"]).hex, "name": "Binding %s" % binding["order"]}

    def _policy_passes(self, policy, request):
        event = request.context.get("event")
        if policy["_type"] == "event_matcher":
            if event is None:
                return False, []
            checks = []
            for field, actual in (("action", event.action), ("client_ip", event.client_ip), ("app", event.app)):
                if policy.get(field):
                    checks.append(policy[field] == actual)
            if policy.get("model"):
                model = event.context.get("model") or {}
                checks.append("%s.%s" % (model.get("app"), model.get("model_name")) == policy["model"])
            return all(checks), []
        if policy["_type"] != "expression":
            return False, []
        messages = []
        client_ip = getattr(request.obj, "client_ip", None) if request.obj is not None else None
        try:
            ak_client_ip = ipaddress.ip_address(client_ip or "255.255.255.255")
        except ValueError:
            ak_client_ip = ipaddress.ip_address("255.255.255.255")
        ctx = self._helpers(policy["name"], request.user)
        ctx.update(request=request, context=request.context, ak_message=messages.append,
                   ak_is_sso_flow=False, ak_client_ip=ak_client_ip)
        return bool(run_expression(policy["expression"], ctx, policy["name"], self)), messages

    def _eval_mapping(self, mapping_pk, notification):
        """Evaluate a webhook mapping; on error a property_mapping_exception event and ``MappingFailed``."""
        mapping = self.mappings.get(mapping_pk)
        ctx = self._helpers(mapping["name"], notification.user)
        ctx.update(user=notification.user, notification=notification, SkipObject=SkipObject,
                   request=PolicyRequest(notification.user, {"notification": notification}, obj=mapping))
        try:
            return sanitize(run_expression(mapping["expression"], ctx, mapping["name"], self))
        except Exception as exc:
            self._record_event(Event("property_mapping_exception", user_dict(notification.user), None,
                                     {"expression": mapping["expression"], "message": error_string(exc),
                                      "mapping": {"app": "authentik_events",
                                                  "model_name": "notificationwebhookmapping",
                                                  "pk": uuid.UUID(mapping["pk"]).hex, "name": mapping["name"]}},
                                     app="authentik.core.expression.evaluator"))
            raise MappingFailed(error_string(exc)) from exc

    def _prepare(self, transport, rule, notification):
        """``transport.send()`` up to the HTTP request (§10): a job to post, or None."""
        try:
            return self._send_prepare(transport, rule, notification)
        except MappingFailed:
            return None

    def _send_prepare(self, transport, rule, notification):
        """Like ``_prepare``, but a mapping exception raises ``MappingFailed``."""
        mode = transport["mode"]
        if mode == "local":  # body mapping evaluated, result discarded
            if transport["webhook_mapping_body"]:
                self._eval_mapping(transport["webhook_mapping_body"], notification)
            self.notifications.append({"user": notification.user.pk, "event": notification.event,
                                       "severity": notification.severity, "body": notification.body,
                                       "rule": rule["name"]})
            return None
        if mode == "email":
            if notification.user.email:
                self.outbox.append({"to": notification.user.email, "template": transport["email_template"],
                                    "subject": transport["email_subject_prefix"] + notification.body[:75],
                                    "body": notification.body, "event": notification.event.action,
                                    "rule": rule["name"], "transport": transport["name"]})
            return None
        headers = {}
        if mode == "webhook_slack":  # mappings ignored (§10.10)
            body = self._slack_body(notification)
        else:
            body = self._default_body(notification)
            if transport["webhook_mapping_body"]:
                body = self._eval_mapping(transport["webhook_mapping_body"], notification)
            if transport["webhook_mapping_headers"] and self.vt >= (2025, 4):
                headers = self._eval_mapping(transport["webhook_mapping_headers"], notification) or {}
        return {"url": transport["webhook_url"], "body": body, "headers": headers, "rule": rule["name"],
                "transport": transport["name"], "mode": mode, "recipient": notification.user.username,
                "event": notification.event.action, "version": self.version}

    @staticmethod
    def _default_body(notification):
        body = {"body": notification.body, "severity": notification.severity,
                "user_email": notification.user.email, "user_username": notification.user.username}
        if notification.event and notification.event.user:
            body["event_user_email"] = notification.event.user.get("email", None)
            body["event_user_username"] = notification.event.user.get("username", None)
        return body

    def _slack_body(self, notification):
        fields = [{"title": "Severity", "value": notification.severity, "short": True}]
        if notification.event and notification.event.user:
            fields.append({"title": "Event user", "value": str(notification.event.user.get("username")),
                           "short": True})
        return {"username": "authentik", "icon_url": "https://goauthentik.io/img/icon.png",
                "attachments": [{"author_name": "authentik", "author_link": "https://goauthentik.io",
                                 "title": notification.body, "color": "#fd4b2d", "fields": fields,
                                 "footer": "authentik %s" % self.version}]}

    def _post_once(self, job):
        """One POST like ``get_http_session().post(url, json=..., headers=...)`` (§10.4)."""
        record = {k: job[k] for k in ("url", "body", "rule", "transport", "mode", "recipient", "event")}
        session = requests.Session()
        session.headers["User-Agent"] = "authentik@%s" % job["version"]
        record["headers"] = {**session.headers, **(job["headers"] or {})}
        try:
            resp = session.post(job["url"], json=job["body"], headers=job["headers"] or None,
                                timeout=self.webhook_timeout, verify=self.webhook_verify)
            record.update(headers=dict(resp.request.headers), status=resp.status_code, response=resp.text[:4096],
                          exception=None)
            if not resp.ok:  # raise_for_status -> NotificationTransportError
                record["exception"] = "%s Error for url: %s" % (resp.status_code, job["url"])
            return record, resp
        except (requests.RequestException, ValueError, TypeError, AttributeError) as exc:
            record.update(status=None, response=None, exception=str(exc))
            job["error"] = exc  # for the task row's error log
            return record, None
        finally:
            session.close()

    @staticmethod
    def _send_error(job, resp):
        """What ``send_webhook`` raises: ``NotificationTransportError(response.text)`` for a non-2xx
        answer, ``NotificationTransportError(str(exc))`` for a requests error (the requests exception
        chained as the cause), any other exception as it is. Returns (str, chain)."""
        if resp is not None:
            try:
                resp.raise_for_status()
                cause = ("HTTPError", "%s Error for url: %s" % (resp.status_code, job["url"]))
            except requests.HTTPError as exc:
                cause = ("HTTPError", str(exc))
            return resp.text, [("NotificationTransportError", resp.text, False), cause + (True,)]
        exc = job.pop("error", None)
        text = str(exc)
        if isinstance(exc, requests.RequestException):
            return text, [("NotificationTransportError", text, False), (type(exc).__name__, text, True)]
        return text, [(type(exc).__name__, text, False)]

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

    def _sim_body(self, req):
        try:
            body = req.json() or {}
        except ValueError:
            body = {}
        return body if isinstance(body, dict) else {}

    def _sim_login(self, req):
        """Simulator-only control route: log a user in over HTTP (separate-process demos)."""
        body = self._sim_body(req)
        if not body.get("username") or not body.get("client_ip"):
            return Response(400, {"detail": "username and client_ip are required"})
        before = len(self.deliveries)
        with self._unlocked():
            event = self.login(body["username"], body["client_ip"], body.get("password"))
        return Response(200, {"event": event.action, "session_key": event.session_key,
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
        state = req.q("state")
        if state and state not in TASK_STATES:
            errors["state"] = [CHOICE_ERROR % state]
        statuses = [v for v in req.query.get("aggregated_status", []) if v]
        bad = [v for v in statuses if v not in TASK_STATUSES]
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

    # -- reading ---------------------------------------------------------------
    def _items(self, base):
        kind = KINDS[base]
        store = getattr(self, kind.store)
        return [r for r in store.values() if kind.tag is None or r["_type"] == kind.tag]

    def _get(self, token, base, pk):
        model = KINDS[base].model if base in KINDS else READ_ONLY[base]
        not_found = ApiError(404, {"detail": "No %s matches the given query." % model})
        if not token["superuser"]:  # RBAC ObjectFilter hides everything
            raise not_found
        try:
            key = int(pk) if base == "core/users" else norm_uuid(pk)
        except ValueError:
            raise not_found from None
        if base == "propertymappings/all":
            rec = self.mappings.get(key) or self.other_mappings.get(key)
        elif base == "policies/all":
            rec = self.policies.get(key)
        elif base == "events/events":
            rec = next((e for e in self.events if str(e.event_uuid) == key), None)
        elif base == "core/users" and key == ANON_PK:
            rec = None
        else:
            rec = next((r for r in self._items(base) if r["pk"] == key), None)
        if rec is None:
            raise not_found
        return rec

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

    @staticmethod
    def _order(req, items, default):
        """``?ordering=``: known scalar keys only, unknown ones ignored like DRF."""
        key = req.q("ordering") or default
        desc = key.startswith("-")
        key = key.lstrip("-")
        if not items or key not in items[0] or isinstance(items[0][key], (dict, list)):
            key, desc = default.lstrip("-"), default.startswith("-")
        return sorted(items, key=lambda r: (r.get(key) is None, str(r.get(key)) if not isinstance(
            r.get(key), (int, float)) else r.get(key)), reverse=desc)

    def _filters(self, base):
        """Exact filters the real endpoint has (§2-§7); everything else is ignored."""
        group_name = lambda r: (self.groups.get(r["destination_group"]) or {}).get("name")  # noqa: E731
        f = {
            "propertymappings/notification": {"name": "name"},
            "events/transports": {"name": "name", "mode": "mode", "webhook_url": "webhook_url",
                                  "send_once": ("bool", "send_once")},
            "events/rules": {"name": "name", "severity": "severity",
                             ("destination_group__name" if self.vt >= (2025, 8) else "group__name"): group_name},
            "policies/expression": {"name": "name", "expression": "expression", "policy_uuid": "pk",
                                    "execution_logging": ("bool", "execution_logging")},
            "policies/event_matcher": {"name": "name", "action": "action", "app": "app", "client_ip": "client_ip",
                                       "model": "model", "policy_uuid": "pk",
                                       "execution_logging": ("bool", "execution_logging")},
            "policies/bindings": {"policy": "policy", "target": "target", "enabled": ("bool", "enabled"),
                                  "order": ("int", "order"), "timeout": ("int", "timeout"),
                                  "policy__isnull": ("isnull", "policy"), "target_in": ("in", "target")},
            "core/users": {"username": "username", "email": "email", "name": "name", "uuid": "uuid",
                           "path": "path", "is_active": ("bool", "is_active"),
                           "is_superuser": ("bool", lambda r: self._is_superuser(r["pk"])),
                           "type": ("in", "type"), "path_startswith": ("prefix", "path"),
                           "groups_by_name": ("any", lambda r: [g["name"] for g in self._groups_of(r["pk"])]),
                           "groups_by_pk": ("any", lambda r: [g["pk"] for g in self._groups_of(r["pk"])])},
            "core/groups": {"name": "name", "is_superuser": ("bool", "is_superuser"),
                            "members_by_pk": ("any", lambda r: [str(p) for p in r["users"]]),
                            "members_by_username": ("any", lambda r: [self.users[p]["username"]
                                                                      for p in r["users"] if p in self.users])},
            "propertymappings/all": {"name": "name"},
            "policies/all": {"bindings__isnull": ("isnull", lambda r: self._bound_to(r["pk"]) or None)},
        }
        return f[base]

    SEARCH = {"propertymappings/notification": ("name",), "events/transports": ("name", "mode", "webhook_url"),
              "events/rules": ("name",), "policies/expression": ("name",), "policies/event_matcher": ("name",),
              "policies/bindings": (), "core/users": ("email", "name", "uuid", "username"),
              "core/groups": ("name",), "propertymappings/all": ("name",), "policies/all": ("name",)}

    def _apply_filters(self, req, base, records):
        def get(rec, accessor):
            return accessor(rec) if callable(accessor) else rec.get(accessor)

        for param, spec in self._filters(base).items():
            values = req.query.get(param)
            if not values:
                continue
            mode, accessor = spec if isinstance(spec, tuple) else ("exact", spec)
            value = values[-1]
            if mode == "bool":
                if value not in BOOL_TRUE + BOOL_FALSE:
                    continue
                want = value in BOOL_TRUE
                records = [r for r in records if bool(get(r, accessor)) == want]
            elif mode == "isnull":
                if value not in BOOL_TRUE + BOOL_FALSE:
                    continue
                records = [r for r in records if (get(r, accessor) is None) == (value in BOOL_TRUE)]
            elif mode == "int":
                if not re.fullmatch(r"-?\d+", value):
                    raise bad_request({param: ["Enter a number."]})
                records = [r for r in records if get(r, accessor) == int(value)]
            elif mode == "in":
                records = [r for r in records if str(get(r, accessor)) in values]
            elif mode == "any":
                records = [r for r in records if set(map(str, get(r, accessor))) & set(values)]
            elif mode == "prefix":
                records = [r for r in records if str(get(r, accessor) or "").startswith(value)]
            else:
                records = [r for r in records if str(get(r, accessor)) == value]
        search = req.q("search")
        if search:
            fields = self.SEARCH[base]
            records = [r for r in records if any(search.lower() in str(r.get(f) or "").lower() for f in fields)]
        return records

    def _list(self, req, token, base):
        if not token["superuser"]:
            return self._paginate(req, [])
        if base == "core/users":
            records = [u for u in self.users.values() if u["pk"] != ANON_PK]
        else:
            records = self._items(base)
        records = self._apply_filters(req, base, records)
        records = self._order(req, records, KINDS[base].ordering)
        return self._paginate(req, [self._serialize(base, r, req) for r in records])

    def _read_only(self, req, token, base, pk, action):
        if pk is None:
            if req.method != "GET":
                raise ApiError(405, {"detail": 'Method "%s" not allowed.' % req.method})
            if not token["superuser"]:
                return self._paginate(req, [])
            if base == "events/events":
                return self._list_events(req)
            if base == "propertymappings/all":
                records = [dict(r, _type="notification") for r in self.mappings.values()]
                records += list(self.other_mappings.values())
            else:
                records = list(self.policies.values())
            records = self._order(req, self._apply_filters(req, base, records), "name")
            return self._paginate(req, [self._serialize(base, r) for r in records])
        rec = self._get(token, base, pk)
        if action == "used_by" and req.method == "GET":
            return Response(200, [])
        if action:
            raise ApiError(404, HTML_404, "text/html")
        if req.method == "GET":
            return Response(200, rec.as_dict() if isinstance(rec, Event) else self._serialize(base, rec))
        if req.method == "DELETE" and base != "events/events":
            self._need_write(token)
            self._delete(req, "propertymappings/notification" if rec.get("_type", "notification") == "notification" and
                         base == "propertymappings/all" else base, rec)
            return Response(204)
        raise ApiError(405, {"detail": 'Method "%s" not allowed.' % req.method})

    # -- serializers (only the simulated version's fields, §14) -----------------
    def _is_superuser(self, user_pk):
        return any(g["is_superuser"] for g in self._groups_of(user_pk))

    def _groups_of(self, user_pk):
        return [g for g in self.groups.values() if user_pk in g["users"]]

    def _bound_to(self, policy_pk):
        return sum(1 for b in self.bindings.values() if b["policy"] == policy_pk)

    @staticmethod
    def _partial_group(g):
        return {"pk": g["pk"], "num_pk": uuid.UUID(g["pk"]).int >> 97, "name": g["name"],
                "is_superuser": g["is_superuser"], "attributes": g["attributes"]}

    def _uid(self, u):
        return uuid.uuid5(uuid.NAMESPACE_URL, "authentik-sim-%s" % u["pk"]).hex * 2

    def _partial_user(self, u):
        return {"pk": u["pk"], "username": u["username"], "name": u["name"], "is_active": u["is_active"],
                "last_login": iso(u["last_login"]), "email": u["email"], "attributes": u["attributes"],
                "uid": self._uid(u)}

    def _policy_common(self, p):
        component, verbose, plural, meta = POLICY_META.get(p["_type"], POLICY_META["dummy"])
        return {"pk": p["pk"], "name": p["name"], "execution_logging": p["execution_logging"],
                "component": component, "verbose_name": verbose, "verbose_name_plural": plural,
                "meta_model_name": meta, "bound_to": self._bound_to(p["pk"])}

    def _serialize(self, base, r, req=None):
        v = self.vt
        if base == "propertymappings/notification":
            return {"pk": r["pk"], "name": r["name"], "expression": r["expression"]}
        if base == "propertymappings/all":
            component, verbose, plural, meta = MAPPING_META.get(r.get("_type", "notification"), MAPPING_META["scope"])
            return {"pk": r["pk"], "managed": None, "name": r["name"], "expression": r["expression"],
                    "component": component, "verbose_name": verbose, "verbose_name_plural": plural,
                    "meta_model_name": meta}
        if base == "events/transports":
            out = {"pk": r["pk"], "name": r["name"], "mode": r["mode"], "mode_verbose": MODES[r["mode"]],
                   "webhook_url": r["webhook_url"]}
            if v >= (2026, 5):
                out["webhook_ca"] = r["webhook_ca"]
            if v >= (2025, 4):
                out.update(webhook_mapping_body=r["webhook_mapping_body"],
                           webhook_mapping_headers=r["webhook_mapping_headers"])
            else:
                out["webhook_mapping"] = r["webhook_mapping_body"]
            if v >= (2025, 8):
                out.update(email_subject_prefix=r["email_subject_prefix"], email_template=r["email_template"])
            out["send_once"] = r["send_once"]
            return out
        if base == "events/rules":
            group = self.groups.get(r["destination_group"]) if r["destination_group"] else None
            group_obj = self._serialize("core/groups", group) if group else None
            out = {"pk": r["pk"], "name": r["name"], "transports": list(r["transports"]), "severity": r["severity"]}
            if v >= (2025, 8):
                out.update(destination_group=r["destination_group"], destination_group_obj=group_obj,
                           destination_event_user=r["destination_event_user"])
            else:
                out.update(group=r["destination_group"], group_obj=group_obj)
            return out
        if base in ("policies/expression", "policies/event_matcher", "policies/all"):
            out = self._policy_common(r)
            if base == "policies/expression":
                out["expression"] = r["expression"]
            elif base == "policies/event_matcher":
                out.update({k: r[k] for k in ("action", "client_ip", "app", "model")})
            return out
        if base == "policies/bindings":
            policy = self.policies.get(r["policy"]) if r["policy"] else None
            group = self.groups.get(r["group"]) if r["group"] else None
            user = self.users.get(r["user"]) if r["user"] is not None else None
            return {"pk": r["pk"], "policy": r["policy"], "group": r["group"], "user": r["user"],
                    "policy_obj": self._policy_common(policy) if policy else None,
                    "group_obj": self._partial_group(group) if group else None,
                    "user_obj": self._partial_user(user) if user else None,
                    "target": r["target"], "negate": r["negate"], "enabled": r["enabled"], "order": r["order"],
                    "timeout": r["timeout"], "failure_result": r["failure_result"]}
        if base == "core/users":
            groups = self._groups_of(r["pk"])
            include = req is None or req.q("include_groups", "true") not in BOOL_FALSE
            out = {"pk": r["pk"], "username": r["username"], "name": r["name"], "is_active": r["is_active"],
                   "last_login": iso(r["last_login"]), "date_joined": iso(r["date_joined"]),
                   "is_superuser": self._is_superuser(r["pk"]), "groups": [g["pk"] for g in groups],
                   "groups_obj": [self._partial_group(g) for g in groups] if include else None}
            if v >= (2025, 12):
                out.update(roles=list(r["roles"]), roles_obj=[])
            out.update(email=r["email"], avatar="/static/dist/assets/images/user_default.png",
                       attributes=r["attributes"], uid=self._uid(r), path=r["path"], type=r["type"],
                       uuid=r["uuid"], password_change_date=iso(r["password_change_date"]),
                       last_updated=iso(r["last_updated"]))
            return out
        if base == "core/groups":
            include = req is None or req.q("include_users", "true") not in BOOL_FALSE
            users = [self.users[p] for p in r["users"] if p in self.users]
            out = {"pk": r["pk"], "num_pk": uuid.UUID(r["pk"]).int >> 97, "name": r["name"],
                   "is_superuser": r["is_superuser"]}
            children = [g for g in self.groups.values() if r["pk"] in g["parents"]]
            if v >= (2025, 12):
                out.update(parents=list(r["parents"]),
                           parents_obj=[self._partial_group(self.groups[p]) for p in r["parents"]
                                        if p in self.groups])
            else:
                parent = self.groups.get(r["parents"][0]) if r["parents"] else None
                out.update(parent=parent["pk"] if parent else None, parent_name=parent["name"] if parent else None)
            out.update(users=[u["pk"] for u in users],
                       users_obj=[self._partial_user(u) for u in users] if include else None,
                       attributes=r["attributes"], roles=list(r["roles"]), roles_obj=[])
            if v >= (2025, 12):
                out["inherited_roles_obj"] = []
            if v >= (2025, 8):
                out.update(children=[g["pk"] for g in children],
                           children_obj=[self._partial_group(g) for g in children])
            return out
        raise KeyError(base)

    # -- writing -------------------------------------------------------------------
    def _writable(self, base):
        v = self.vt
        if base == "propertymappings/notification":
            return ["name", "expression"]
        if base == "events/transports":
            fields = ["name", "mode", "webhook_url", "send_once"]
            fields += ["webhook_mapping_body", "webhook_mapping_headers"] if v >= (2025, 4) else ["webhook_mapping"]
            fields += ["email_subject_prefix", "email_template"] if v >= (2025, 8) else []
            return fields + (["webhook_ca"] if v >= (2026, 5) else [])
        if base == "events/rules":
            extra = ["destination_group", "destination_event_user"] if v >= (2025, 8) else ["group"]
            return ["name", "transports", "severity"] + extra
        if base == "policies/expression":
            return ["name", "execution_logging", "expression"]
        if base == "policies/event_matcher":
            return ["name", "execution_logging", "action", "client_ip", "app", "model"]
        if base == "policies/bindings":
            return ["policy", "group", "user", "target", "negate", "enabled", "order", "timeout", "failure_result"]
        if base == "core/users":
            fields = ["username", "name", "is_active", "last_login", "groups", "email", "attributes", "path", "type"]
            return fields + (["roles"] if v >= (2025, 12) else [])
        if base == "core/groups":
            return ["name", "is_superuser", "users", "attributes", "roles"] + (
                ["parents"] if v >= (2025, 12) else ["parent"])
        raise KeyError(base)

    def _check_relation(self, field, value, errors):
        """PrimaryKeyRelatedField: the referenced object must exist."""
        values = value if isinstance(value, list) else [value]
        store = RELATIONS[field]
        for item in values:
            if item is None:
                continue
            if store == "users":
                ok = isinstance(item, int) and item in self.users and item != ANON_PK
            elif store == "rules":
                ok = norm_uuid(item) in self.rules
            elif store in ("certificates", "roles"):
                ok = False  # the simulator has none
            else:
                ok = norm_uuid(item) in getattr(self, store)
            if not ok:
                errors.setdefault(field, []).append('Invalid pk "%s" - object does not exist.' % item)
                return

    def _save(self, req, base, instance):
        """Create (POST), full (PUT) or partial (PATCH) update through the serializer rules."""
        kind = KINDS[base]
        partial = req.method == "PATCH"
        try:
            body = req.json()
        except ValueError as exc:
            raise bad_request({"detail": "JSON parse error - %s" % exc}) from None
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise bad_request({"non_field_errors": ["Invalid data. Expected a dictionary, but got %s."
                                                    % _json_type(body)]})
        # unknown keys, including the other generation's field names, are dropped (§1)
        data = {k: v for k, v in body.items() if k in self._writable(base)}
        model = kind.patch_model if partial else kind.create_model
        errors = {}
        try:  # the package's models carry the ≥2025.8 names; old-only names are checked below
            model.model_validate({k: v for k, v in data.items() if k in model.model_fields})
        except pydantic.ValidationError as exc:
            errors = drf_errors(exc, RELATIONS)
        for field in ("webhook_mapping", "group", "parent"):
            if field in data and data[field] is not None:
                try:
                    norm_uuid(data[field])
                except (ValueError, TypeError, AttributeError):
                    errors[field] = ["\u201c%s\u201d is not a valid UUID." % data[field]]
        for field, value in data.items():
            if field in RELATIONS and field not in errors:
                self._check_relation(field, value, errors)
        self._field_checks(base, data, instance, errors)
        if errors:
            raise bad_request(errors)
        self._validate(base, data, instance, partial)
        rec = self._apply(base, data, instance, partial)
        self._audit(req, "model_updated" if instance else "model_created", kind, rec)
        return Response(200 if instance else 201, self._serialize(base, rec, req))

    def _field_checks(self, base, data, instance, errors):
        own = instance["pk"] if instance else None
        name = data.get("name")
        if isinstance(name, str) and name and "name" not in errors:
            if base == "propertymappings/notification":
                taken = [r for r in list(self.mappings.values()) + list(self.other_mappings.values())]
            elif base.startswith("policies/"):
                taken = list(self.policies.values())  # unique across all policy types (§5)
            elif base in ("events/transports", "events/rules", "core/groups"):
                taken = list(getattr(self, KINDS[base].store).values())
            else:
                taken = []
            if any(r["name"] == name and r["pk"] != own for r in taken):
                errors["name"] = [UNIQUE_MSG[KINDS[base].store]]
        if base == "core/users" and isinstance(data.get("username"), str) and "username" not in errors:
            if any(u["username"] == data["username"] and u["pk"] != own for u in self.users.values()):
                errors["username"] = ["A user with that username already exists."]
        if base == "events/transports":
            url = data.get("webhook_url")
            if isinstance(url, str) and url and "webhook_url" not in errors and not URL_RE.match(url):
                errors["webhook_url"] = ["Enter a valid URL."]
            template = data.get("email_template")
            if isinstance(template, str) and template and template not in EMAIL_TEMPLATES:
                errors.setdefault("email_template", []).append("Invalid template '%s' specified." % template)
        if base == "policies/expression" and isinstance(data.get("expression"), str) and data["expression"]:
            try:  # BaseEvaluator.validate: compile the wrapped function (§5)
                names = ["request", "context", "ak_message", "ak_is_sso_flow", "ak_client_ip"]
                compile(wrap_expression(data["expression"], names + list(self._helpers("x"))),
                        data.get("name") or "PolicyEvaluator", "exec")
            except (SyntaxError, ValueError) as exc:
                errors["expression"] = ["Expression Syntax Error: %s" % exc]
        email = data.get("email") if base == "core/users" else None
        if isinstance(email, str) and email and "email" not in errors and not EMAIL_RE.match(email):
            errors["email"] = ["Enter a valid email address."]
        if base == "core/users" and data.get("type") == "internal_service_account":
            errors["type"] = ["Can't change internal service account to other user type."]

    def _validate(self, base, data, instance, partial):
        """Object-level ``validate()``: errors land in non_field_errors or a named field."""
        if base == "events/transports" and data.get("mode") in ("webhook", "webhook_slack"):
            if not data.get("webhook_url"):  # only when mode is in the payload (§3)
                raise bad_request({"webhook_url": ["Webhook URL may not be empty."]})
        if base == "policies/event_matcher":
            merged = dict(instance or {}, **data)
            if not any(merged.get(k) for k in ("action", "client_ip", "app", "model")):
                raise bad_request({"non_field_errors": ["At least one criteria must be set."]})
        if base == "policies/bindings":
            # UniqueTogetherValidator (policy, target, order) runs before validate(); skipped if one is None
            merged = dict(instance or {}, **{k: v for k, v in data.items()})
            policy, target, order = merged.get("policy"), merged.get("target"), merged.get("order")
            if policy is not None and target is not None and order is not None:
                policy, target = norm_uuid(policy), norm_uuid(target)
                own = instance["pk"] if instance else None
                if any(b["policy"] == policy and b["target"] == target and b["order"] == order and b["pk"] != own
                       for b in self.bindings.values()):
                    raise bad_request({"non_field_errors": [
                        "The fields policy, target, order must make a unique set."]})
            if "target" not in data:  # attrs.get("target").supported_policy_binding_targets() on None (§6)
                raise ApiError(500, HTML_500, "text/html")
            count = sum(1 for k in ("group", "policy", "user") if data.get(k))
            if count > 1:
                raise bad_request({"non_field_errors": ["Only one of 'group', 'policy', 'user' can be set."]})
            if count < 1:
                raise bad_request({"non_field_errors": ["One of 'group', 'policy', 'user' must be set."]})

    def _apply(self, base, data, instance, partial):
        data = dict(data)
        for field in ("webhook_mapping_body", "webhook_mapping_headers", "webhook_ca", "destination_group",
                      "policy", "group", "target", "webhook_mapping", "parent"):
            if data.get(field) is not None:
                data[field] = norm_uuid(data[field])
        for field in ("transports", "groups", "parents", "roles"):
            if field in data:
                data[field] = [norm_uuid(x) for x in data[field]]
        # old generation names live under the new names internally (RenameField migrations)
        if "webhook_mapping" in data:
            data["webhook_mapping_body"] = data.pop("webhook_mapping")
        if base == "events/rules" and "group" in data:
            data["destination_group"] = data.pop("group")
        if "parent" in data:
            parent = data.pop("parent")
            data["parents"] = [parent] if parent else []
        if not partial:  # PUT/POST: serializer default=list M2Ms are reset when omitted (§1)
            for field in {"core/users": ("groups", "roles"), "core/groups": ("users", "parents")}.get(base, ()):
                data.setdefault(field, [])
        stamp = now()
        if instance is None:
            rec = self._defaults(base)
            rec.update(pk=str(uuid.uuid4()))
            if base == "core/users":
                rec.update(pk=self._next_user, uuid=str(uuid.uuid4()), date_joined=stamp,
                           password_change_date=stamp, password=None)
                self._next_user += 1
        else:
            rec = instance
        groups = data.pop("groups", None) if base == "core/users" else None
        rec.update(data)
        if base == "core/users":
            rec["last_updated"] = stamp
            if isinstance(rec.get("last_login"), str):
                rec["last_login"] = datetime.fromisoformat(rec["last_login"].replace("Z", "+00:00"))
        getattr(self, KINDS[base].store)[rec["pk"]] = rec
        if groups is not None:  # user.groups replaces the whole membership set
            for g in self.groups.values():
                if rec["pk"] in g["users"] and g["pk"] not in groups:
                    g["users"].remove(rec["pk"])
                elif g["pk"] in groups and rec["pk"] not in g["users"]:
                    g["users"].append(rec["pk"])
        return rec

    def _defaults(self, base):
        return {
            "propertymappings/notification": {},
            "events/transports": {"mode": "local", "webhook_url": "", "webhook_ca": None,
                                  "webhook_mapping_body": None, "webhook_mapping_headers": None,
                                  "email_subject_prefix": "authentik Notification: ",
                                  "email_template": EMAIL_TEMPLATES[0], "send_once": False},
            "events/rules": {"transports": [], "severity": "notice", "destination_group": None,
                             "destination_event_user": False},
            "policies/expression": {"_type": "expression", "execution_logging": False},
            "policies/event_matcher": {"_type": "event_matcher", "execution_logging": False, "action": None,
                                       "client_ip": None, "app": None, "model": None},
            "policies/bindings": {"policy": None, "group": None, "user": None, "negate": False, "enabled": True,
                                  "timeout": 30, "failure_result": False},
            "core/users": {"name": "", "email": "", "is_active": True, "last_login": None, "path": "users",
                           "type": "internal", "attributes": {}, "roles": []},
            "core/groups": {"is_superuser": False, "parents": [], "users": [], "attributes": {}, "roles": []},
        }[base]

    def _delete(self, req, base, rec):
        """Delete with the model's cascades / SET_NULLs."""
        pk = rec["pk"]
        if base == "propertymappings/notification" and pk in self.mappings:
            del self.mappings[pk]
            for t in self.transports.values():
                for field in ("webhook_mapping_body", "webhook_mapping_headers"):
                    if t[field] == pk:
                        t[field] = None
        elif base == "propertymappings/all":
            self.other_mappings.pop(pk, None)
        elif base == "events/transports":
            del self.transports[pk]
            self._drop_tasks_of(pk)  # TasksModel: its task rows go with it
            for r in self.rules.values():
                if pk in r["transports"]:
                    r["transports"].remove(pk)
        elif base == "events/rules":
            del self.rules[pk]
            self._drop_tasks_of(pk)
            self.bindings = {k: b for k, b in self.bindings.items() if b["target"] != pk}
        elif base.startswith("policies/") and base != "policies/bindings":
            del self.policies[pk]
            self.bindings = {k: b for k, b in self.bindings.items() if b["policy"] != pk}
        elif base == "policies/bindings":
            del self.bindings[pk]
        elif base == "core/users":
            del self.users[pk]
            for g in self.groups.values():
                if pk in g["users"]:
                    g["users"].remove(pk)
            self.bindings = {k: b for k, b in self.bindings.items() if b["user"] != pk}
        elif base == "core/groups":
            del self.groups[pk]
            self.bindings = {k: b for k, b in self.bindings.items() if b["group"] != pk}
            for r in self.rules.values():
                if r["destination_group"] == pk:
                    r["destination_group"] = None
            for g in self.groups.values():
                if pk in g["parents"]:
                    g["parents"].remove(pk)
        kind = KINDS.get(base) or KINDS["policies/expression"]
        self._audit(req, "model_deleted", kind, rec)

    def _audit(self, req, action, kind, rec):
        """AuditMiddleware: API writes create model_* events, which run the pipeline too."""
        peer = (req.headers.get("x-forwarded-for") or req.client_ip).split(",")[0].strip()
        name = rec.get("name") or rec.get("username") or "Binding %s" % rec.get("order")
        pk = rec["pk"] if isinstance(rec["pk"], int) else uuid.UUID(rec["pk"]).hex
        self._record_event(Event(action, user_dict(ExprUser(self, self.users[ADMIN_PK])) if ADMIN_PK in self.users
                                 else {}, peer, {
                                     "model": {"app": kind.app, "model_name": kind.model_name, "pk": pk,
                                               "name": name},
                                     "http_request": {"args": {}, "path": req.path, "method": req.method,
                                                      "request_id": uuid.uuid4().hex,
                                                      "user_agent": req.headers.get("user-agent", "")}},
                                 app="authentik.events.middleware"))

    # -- custom actions ---------------------------------------------------------------
    def _action(self, req, token, base, kind, rec, action):
        if action == "used_by":
            if req.method != "GET":
                raise ApiError(405, {"detail": 'Method "%s" not allowed.' % req.method})
            return Response(200, self._used_by(base, rec))
        routes = {("events/transports", "test"), ("core/users", "set_password"),
                  ("core/groups", "add_user"), ("core/groups", "remove_user")}
        if (base, action) not in routes:
            raise ApiError(404, HTML_404, "text/html")
        if req.method != "POST":
            raise ApiError(405, {"detail": 'Method "%s" not allowed.' % req.method})
        self._need_write(token)
        try:
            body = req.json() or {}
        except ValueError:
            body = {}
        if action == "set_password":
            password = body.get("password") if isinstance(body, dict) else None
            if not isinstance(password, str) or not password:
                return Response(400)  # empty body (§7)
            rec.update(password=password, password_change_date=now())
            return Response(204)
        if action in ("add_user", "remove_user"):
            user_pk = body.get("pk") if isinstance(body, dict) else None
            if not isinstance(user_pk, int) or isinstance(user_pk, bool):
                raise bad_request({"pk": ["This field is required."] if user_pk is None
                                   else ["A valid integer is required."]})
            if user_pk not in self.users or user_pk == ANON_PK:
                raise ApiError(404, {"detail": "Not found."})
            if action == "add_user" and user_pk not in rec["users"]:
                rec["users"].append(user_pk)
            if action == "remove_user" and user_pk in rec["users"]:
                rec["users"].remove(user_pk)
            return Response(204)
        return self._transport_test(rec)

    def _used_by(self, base, rec):
        pk, out = rec["pk"], []

        def ref(app, model_name, obj, name, action="cascade"):
            out.append({"app": app, "model_name": model_name, "pk": str(obj), "name": name, "action": action})

        if base == "propertymappings/notification":
            for t in self.transports.values():
                if pk in (t["webhook_mapping_body"], t["webhook_mapping_headers"]):
                    ref("authentik_events", "notificationtransport", t["pk"], t["name"], "set_null")
        elif base == "events/transports":
            for r in self.rules.values():
                if pk in r["transports"]:
                    ref("authentik_events", "notificationrule", r["pk"], r["name"], "left_dangling")
        elif base.startswith("policies/") and base != "policies/bindings":
            for b in self.bindings.values():
                if b["policy"] == pk:
                    ref("authentik_policies", "policybinding", b["pk"], "Binding %s" % b["order"])
        return out

    def _transport_test(self, transport):
        """``test`` action: synthetic custom_notification_test event, sent synchronously, no retries (§3)."""
        admin = self.users[ADMIN_PK]
        event = Event("custom_notification_test", {}, None,
                      {"user": user_dict(ExprUser(self, admin)), "context": {"foo": "bar"}})
        notification = Notification(event, ExprUser(self, admin), "notice", "Test Notification")
        if transport["mode"] in ("local", "email"):
            self._prepare(transport, {"name": None}, notification)
            return Response(200, {"messages": []})
        job = self._prepare(transport, {"name": None}, notification)
        if job is None:  # mapping exception: not caught by the view
            raise ApiError(500, HTML_500, "text/html")
        with self._unlocked():
            record, resp = self._post_once(job)
        record["attempt"] = 1
        self.deliveries.append(record)
        if resp is None or not resp.ok:
            return Response(500, record["exception"])
        return Response(200, {"messages": [str(resp.status_code), resp.text]})


def main(argv=None):
    parser = argparse.ArgumentParser(description="authentik API simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--version", default="2026.5.0-rc1")
    parser.add_argument("--seed", help="JSON file with tokens, users and groups")
    parser.add_argument("--certfile")
    parser.add_argument("--keyfile")
    args = parser.parse_args(argv)
    sim = AuthentikSimulator(version=args.version)
    seed = {}
    if args.seed:
        with open(args.seed, encoding="utf-8") as fh:
            seed = json.load(fh)
    for token in seed.get("tokens", []):
        sim.add_token(token["key"], token.get("superuser", True))
    for group in seed.get("groups", []):
        sim.add_group(group["name"])
    users = {}
    for user in seed.get("users", []):
        users[user["username"]] = sim.add_user(user["username"], user.get("name", ""), user.get("email", ""),
                                               user.get("password"), user.get("groups", ()),
                                               user.get("is_active", True))
    url = sim.start(args.host, args.port, args.certfile, args.keyfile)
    print(json.dumps({"url": url, "users": users}), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    stop.wait()
    sim.stop()


if __name__ == "__main__":
    main()
