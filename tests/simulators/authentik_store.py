"""authentik's database, as the authentik simulator keeps it: records, kinds, validation, seeding.

One of the parts ``tests/simulators/authentik.py`` puts together (the API in
``authentik_api.py`` and ``authentik_viewsets.py``, the worker in ``authentik_worker.py``,
the expressions in ``authentik_expressions.py``). Section numbers refer to the project's
authentik API reference. This part holds:

* the records, one dict per row and kind (``users``, ``groups``, ``mappings``,
  ``transports``, ``rules``, ``policies``, ``bindings``, ``sessions``, ``events``), with the
  rows the worker keeps in the database too (the Postgres broker's messages and task rows);
* the kinds an endpoint serves (``KINDS``), the official pydantic request models of
  ``authentik_client`` that check a write's fields, translated into DRF's messages;
* what a write must pass besides the fields: names are unique across all property-mapping
  types and all policy types (§15.2); policy bindings take exactly one of policy/group/user,
  and a PATCH without ``target`` is a 500 (§6); a PUT wipes the ``default=list`` M2Ms (user
  groups, group users/parents) (§1);
* the models' defaults and the cascades and SET_NULLs of a delete;
* the users and events as code sees them (``ExprUser``, ``AnonymousUser``, ``Event``,
  ``sanitize``), shared by the worker, the expressions and the ORM stand-ins.

Seeded state: the anonymous user (pk 1, never listed), ``akadmin`` (pk 4, member
of the superuser group "authentik Admins"); users added later get pks from 5 on.

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

Sessions (§17): a login creates an ``AuthenticatedSession`` (one day, or 30 days with
"stay signed in"), ``use_session()`` refreshes its address and last use,
``expire_session()`` runs it out without an event, ``logout()`` writes a ``logout``
event and deletes it. A login's address is given as recorded (``client_ip=``), or as
the request brought it (``peer=`` and ``forwarded_for=``, the ``X-Forwarded-For``
value), and then recorded as authentik does (``trusted_proxy_cidrs``, see
``authentik_api.py``).
"""

import importlib
import importlib.util
import ipaddress
import re
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType, SimpleNamespace

from tests.simulators.base import Response

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
EMAIL_TEMPLATES = ("email/event_notification.html", "email/event_notification.txt")
KNOWN_ACTIONS = {e.value for e in akc.EventActions}
DEFAULT_BRAND = {"app": "authentik_brands", "model_name": "brand",
                 "pk": "0" * 31 + "1", "name": "Default brand"}

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


# -- users and events as code sees them ---------------------------------------
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
# relation fields: value -> (store, error label); malformed ones get Django's uuid message
RELATIONS = {
    "webhook_mapping": "mappings", "webhook_mapping_body": "mappings", "webhook_mapping_headers": "mappings",
    "webhook_ca": "certificates", "transports": "transports", "destination_group": "groups", "policy": "policies",
    "target": "rules", "user": "users", "groups": "groups", "roles": "roles", "users": "users",
    "parents": "groups", "parent": "groups",
}
# serializer fields with ``default=list``: a POST or PUT without them sets them to [] (§1)
LIST_DEFAULTS = {"core/users": ("groups", "roles"), "core/groups": ("users", "parents")}
UNIQUE_MSG = {
    "mappings": "property mapping with this name already exists.",
    "transports": "Notification Transport with this name already exists.",
    "rules": "Notification Rule with this name already exists.",
    "policies": "policy with this name already exists.",
    "groups": "Group with this name already exists.",
}


class AuthentikStore:
    """The database: every record, the seeding helpers, and what a write must pass.

    A mixin of ``AuthentikSimulator``; it relies on the worker (``_enqueue`` when an event is
    saved, ``_drop_tasks_of`` when a rule or transport goes) and on the expressions
    (``_compile_policy_expression`` to check a policy's expression).
    """

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
            # the worker processes that check in (WorkerStatus rows seen within 45 s, ``/tasks/workers/``);
            # ``worker_down()`` empties it, a version given here is one the worker runs apart from the server
            self.worker_processes, self.worker_version = 1, None
            self._worker_down = False
            self.reset_counts()  # the worker's counts: messages sent per actor, refused deletes
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

    # -- version-dependent behaviour (§14) ---------------------------------
    @property
    def vt(self):
        return parse_version(self.version)

    # -- seeding -----------------------------------------------------------
    def add_token(self, key, superuser=True, without=()):
        """An API token; ``without`` names permissions its user lacks although a superuser (for the checks that
        ask for one, such as ``authentik_rbac.view_system_info``)."""
        with self.lock:
            self.tokens[key] = {"superuser": superuser, "without": frozenset(without)}
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
    def login(self, username, client_ip=None, password=None, user_agent="python-requests", stay_signed_in=False,
              peer=None, forwarded_for=None):
        """A login through the flow executor: ``login`` (and a session) or ``login_failed``, then the pipeline.

        ``client_ip`` is the address authentik recorded (a shortcut); or give the request as it
        reached authentik: its TCP ``peer`` and the ``X-Forwarded-For`` header's value
        (``forwarded_for``, one or several comma-separated entries, None for no header), and the
        address is worked out as authentik does (``client_ip_for``). The session lasts a day, or
        30 days when "stay signed in" is ticked (the default authentication flow's user-login
        stage). The returned event carries ``session_key``.
        """
        if client_ip is None:
            if peer is None:
                raise TypeError("login() needs client_ip, or peer (and forwarded_for)")
            client_ip = self.client_ip_for(peer, forwarded_for)
        elif peer is not None or forwarded_for is not None:
            raise TypeError("login() takes client_ip, or peer and forwarded_for: not both")
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

    # -- events --------------------------------------------------------------------
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

    def _event(self, event_uuid):
        return next((e for e in reversed(self.events) if e.event_uuid == event_uuid), None)

    # -- relations -------------------------------------------------------------------
    def _is_superuser(self, user_pk):
        return any(g["is_superuser"] for g in self._groups_of(user_pk))

    def _groups_of(self, user_pk):
        return [g for g in self.groups.values() if user_pk in g["users"]]

    def _bound_to(self, policy_pk):
        return sum(1 for b in self.bindings.values() if b["policy"] == policy_pk)

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
                self._compile_policy_expression(data["expression"], data.get("name") or "PolicyEvaluator")
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
            for field in LIST_DEFAULTS.get(base, ()):
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

    def _delete_record(self, base, rec):
        """Delete with the model's cascades / SET_NULLs (the API's ``_delete`` adds the event)."""
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
