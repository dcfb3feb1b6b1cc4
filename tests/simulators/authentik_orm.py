"""The slice of authentik's Django models that expressions may import, over the simulator's state.

authentik runs policies and property mappings as plain Python with the full
interpreter: ``from authentik.core.models import AuthenticatedSession`` and
``from authentik.events.models import Event`` work there (the project's
authentik API reference, §17). The simulator serves those imports from this
module instead of a database, so a mapping that queries the state behaves the
same against it:

* ``User.objects`` (the users, anonymous user excluded), ``Group.objects`` (its direct members
  as ``users``, so ``users__pk=`` works as in Django), ``AuthenticatedSession.objects``
  (from 2025.4, each with ``.session`` carrying ``last_ip``, ``last_used``,
  ``last_user_agent``, ``expires``; before 2025.4 the fields sat on the session
  itself and a ``session__`` lookup raises ``FieldError``) and ``Event.objects``;
* querysets with ``filter``/``exclude`` (lookups ``exact``, ``iexact``, ``in``,
  ``gt``, ``gte``, ``lt``, ``lte``, ``isnull``, ``contains``, ``icontains``,
  ``startswith``; ``a__b`` walks attributes and JSON keys, as Django's JSONField
  key transforms do), ``order_by``, ``first``, ``last``, ``get``, ``exists``,
  ``count``, slicing and iteration;
* ``django.utils.timezone.now`` and ``timedelta`` from the real ``datetime``.

Anything else under ``authentik.`` or ``django.`` raises ``ImportError`` naming
the module, so an expression that needs more fails loudly instead of passing.
"""

import builtins
from datetime import datetime, timezone
from types import ModuleType

from tests.simulators.authentik_store import ANON_PK, ExprUser

LOOKUPS = ("exact", "iexact", "in", "gt", "gte", "lt", "lte", "isnull", "contains", "icontains", "startswith")


class FieldError(Exception):
    """django.core.exceptions.FieldError: a lookup on a field the model does not have."""


class DoesNotExist(Exception):
    pass


class MultipleObjectsReturned(Exception):
    pass


_MISSING = object()


def _step(value, name):
    if isinstance(value, dict):
        return value.get(name, _MISSING)
    return getattr(value, name, _MISSING)


def _compare(actual, lookup, wanted):
    if lookup == "isnull":
        return (actual is None) == bool(wanted)
    if actual is None:
        return False
    if lookup == "exact":
        return actual == wanted
    if lookup == "iexact":
        return str(actual).lower() == str(wanted).lower()
    if lookup == "in":
        return actual in list(wanted)
    if lookup == "contains":
        return wanted in actual
    if lookup == "icontains":
        return str(wanted).lower() in str(actual).lower()
    if lookup == "startswith":
        return str(actual).startswith(str(wanted))
    try:
        return {"gt": actual > wanted, "gte": actual >= wanted, "lt": actual < wanted,
                "lte": actual <= wanted}[lookup]
    except TypeError:
        return False


def _resolve(value, parts, lookup, wanted):
    """Follow ``parts`` from ``value``; a many-to-many relation (a list) matches when any related row does."""
    for index, part in enumerate(parts):
        if isinstance(value, list):
            return any(_resolve(item, parts[index:], lookup, wanted) for item in value)
        value = _step(value, part)
        if value is _MISSING:
            return lookup == "isnull" and bool(wanted)
    return _compare(value, lookup, wanted)


class QuerySet:
    """A lazy-looking, eager list of model instances with Django's query methods."""

    def __init__(self, model, rows):
        self.model = model
        self._rows = list(rows)

    # -- filtering -------------------------------------------------------
    def _matches(self, row, key, wanted):
        parts = key.split("__")
        lookup = "exact"
        if len(parts) > 1 and parts[-1] in LOOKUPS:
            lookup = parts.pop()
        if parts[0] not in self.model.fields:
            raise FieldError("Cannot resolve keyword %r into field. Choices are: %s"
                             % (parts[0], ", ".join(sorted(self.model.fields))))
        return _resolve(row, parts, lookup, wanted)

    def filter(self, **conditions):
        return QuerySet(self.model, [r for r in self._rows
                                     if all(self._matches(r, k, v) for k, v in conditions.items())])

    def exclude(self, **conditions):
        return QuerySet(self.model, [r for r in self._rows
                                     if not all(self._matches(r, k, v) for k, v in conditions.items())])

    def all(self):
        return QuerySet(self.model, self._rows)

    def order_by(self, *keys):
        rows = list(self._rows)
        for key in reversed(keys):
            desc = key.startswith("-")
            parts = key.lstrip("-").split("__")
            if parts[0] not in self.model.fields:
                raise FieldError("Cannot resolve keyword %r into field" % parts[0])

            def value(row, parts=parts):
                for part in parts:
                    row = _step(row, part)
                    if row is _MISSING:
                        return None
                return row

            # Postgres: NULLs last ascending, first descending
            rows.sort(key=lambda r: (value(r) is None, value(r) if value(r) is not None else 0), reverse=desc)
        return QuerySet(self.model, rows)

    # -- reading ---------------------------------------------------------
    def first(self):
        return self._rows[0] if self._rows else None

    def last(self):
        return self._rows[-1] if self._rows else None

    def get(self, **conditions):
        found = self.filter(**conditions)._rows if conditions else self._rows
        if not found:
            raise self.model.DoesNotExist("%s matching query does not exist." % self.model.__name__)
        if len(found) > 1:
            raise MultipleObjectsReturned("get() returned more than one %s" % self.model.__name__)
        return found[0]

    def exists(self):
        return bool(self._rows)

    def count(self):
        return len(self._rows)

    def values_list(self, *fields, flat=False):
        def pick(row, field):
            for part in field.split("__"):
                row = _step(row, part)
            return None if row is _MISSING else row
        if flat:
            return [pick(r, fields[0]) for r in self._rows]
        return [tuple(pick(r, f) for f in fields) for r in self._rows]

    def __iter__(self):
        return iter(self._rows)

    def __len__(self):
        return len(self._rows)

    def __bool__(self):
        return bool(self._rows)

    def __getitem__(self, item):
        if isinstance(item, slice):
            return QuerySet(self.model, self._rows[item])
        return self._rows[item]


class Manager:
    def __init__(self, model, source):
        self.model = model
        self._source = source  # callable returning the current instances

    def get_queryset(self):
        return QuerySet(self.model, self._source())

    def __getattr__(self, name):
        return getattr(self.get_queryset(), name)


class SessionRecord:
    """authentik.core.models.Session (2025.4+): where last_ip and expiry live."""

    def __init__(self, rec):
        self.session_key = rec["session_key"]
        self.last_ip = rec["last_ip"]
        self.last_user_agent = rec["last_user_agent"]
        self.last_used = rec["last_used"]
        self.expires = rec["expires"]
        self.expiring = rec["expiring"]


class AuthenticatedSessionRecord:
    def __init__(self, sim, rec):
        self.uuid = rec["uuid"]
        self.pk = rec["session_key"]
        self.user = ExprUser(sim, sim.users[rec["user"]])
        self.user_id = rec["user"]
        if sim.vt >= (2025, 4):
            self.session = SessionRecord(rec)
        else:  # the old model: one row with the fields on it, keyed by uuid
            self.pk = rec["uuid"]
            for key in ("session_key", "last_ip", "last_user_agent", "last_used", "expires"):
                setattr(self, key, rec[key])


class GroupRecord:
    """authentik.core.models.Group: its direct members are ``users`` (the reverse of ``User.groups``)."""

    def __init__(self, sim, rec):
        from tests.simulators.authentik import ExprUser

        self.pk = self.group_uuid = rec["pk"]
        self.name = rec["name"]
        self.is_superuser = rec["is_superuser"]
        self.users = [ExprUser(sim, sim.users[pk]) for pk in rec["users"] if pk in sim.users]


def models_for(sim):
    """The model classes an expression of ``sim`` may import."""
    def model(name, fields, source):
        cls = type(name, (), {"fields": frozenset(fields), "DoesNotExist": type("DoesNotExist", (DoesNotExist,), {})})
        cls.objects = Manager(cls, source)
        return cls

    user = model("User", ("pk", "id", "username", "name", "email", "is_active", "attributes", "path", "type", "uuid"),
                 lambda: [ExprUser(sim, u) for u in sim.users.values() if u["pk"] != ANON_PK])
    session_fields = ("uuid", "pk", "user", "user_id", "session") if sim.vt >= (2025, 4) else (
        "uuid", "pk", "user", "user_id", "session_key", "last_ip", "last_user_agent", "last_used", "expires")
    session = model("AuthenticatedSession", session_fields,
                    lambda: [AuthenticatedSessionRecord(sim, s) for s in sim.sessions.values()
                             if s["user"] in sim.users])
    event = model("Event", ("pk", "event_uuid", "action", "app", "user", "context", "client_ip", "created", "expires",
                            "brand"), lambda: list(sim.events))
    group = model("Group", ("pk", "group_uuid", "name", "is_superuser", "users"),
                  lambda: [GroupRecord(sim, g) for g in sim.groups.values()])
    return {"User": user, "AuthenticatedSession": session, "Event": event, "Group": group}


def _module(name, **attrs):
    module = ModuleType(name)
    module.__dict__.update(attrs)
    return module


def import_hook(sim):
    """An ``__import__`` for expressions: authentik and django modules come from the simulator."""
    models = models_for(sim)
    tree = {
        "authentik": _module("authentik"),
        "authentik.core": _module("authentik.core"),
        "authentik.core.models": _module("authentik.core.models", User=models["User"], Group=models["Group"],
                                         AuthenticatedSession=models["AuthenticatedSession"]),
        "authentik.events": _module("authentik.events"),
        "authentik.events.models": _module("authentik.events.models", Event=models["Event"]),
        "django": _module("django"),
        "django.utils": _module("django.utils"),
        "django.utils.timezone": _module("django.utils.timezone", now=lambda: datetime.now(timezone.utc)),
        "django.core": _module("django.core"),
        "django.core.exceptions": _module("django.core.exceptions", FieldError=FieldError,
                                          ObjectDoesNotExist=DoesNotExist),
    }
    for name, module in tree.items():  # parents carry their children as attributes
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(tree[parent], child, module)
    real_import = builtins.__import__

    def hooked(name, globals=None, locals=None, fromlist=(), level=0):
        root = name.split(".")[0]
        if level == 0 and root in ("authentik", "django"):
            if name not in tree:
                raise ImportError("No module named %r (not modelled by the authentik simulator)" % name)
            return tree[name] if fromlist else tree[root]
        return real_import(name, globals, locals, fromlist, level)

    return hooked


def expression_builtins(sim):
    """The builtins an expression runs with: the real ones, imports of authentik served by ``sim``."""
    scope = dict(vars(builtins))
    scope["__import__"] = import_hook(sim)
    return scope
