"""authentik's model endpoints, as the authentik simulator serves them: list, read, create, update,
delete, the custom actions, the serializers and the audit events of each write.

One of the parts ``tests/simulators/authentik.py`` puts together; ``authentik_api.py`` routes
requests here. Section numbers refer to the project's authentik API reference.

* unknown query parameters and unknown body keys are silently ignored, so the
  field names of the other version generation are dropped with a 2xx (§1, §14);
* only the filters the real endpoint has exist, exact unless noted (§2-§7), plus
  ``search`` and ``?ordering=`` (unknown keys ignored);
* a serializer answers with only the simulated version's fields (§14);
* ``POST /core/groups/{pk}/add_user/`` and ``remove_user/`` answer 204 whether or not the
  user was a member; ``set_password`` answers an empty 400 for a rejected password; a
  transport's ``test`` sends one notification synchronously, without retries, and answers a
  bare JSON string with a 500 when the delivery fails (§3, §7);
* every write through the API writes a ``model_created``, ``model_updated`` or
  ``model_deleted`` event (``AuditMiddleware``), which runs the notification pipeline like
  any other event; ``context.model`` is ``model_to_dict()`` of the record: app, model name,
  pk (a uuid as 32 hex digits, a user's int pk) and the model's ``name`` when it has one (a
  user's display name, blank or not).

Group membership changes are announced as 2026.5 does (§19): ``AuditMiddleware`` (its
enterprise subclass, always installed, adds nothing without a licence) connects
``m2m_changed`` for the request, and for a ``User`` or ``Group`` instance and action
``pre_add``, ``pre_remove`` or ``post_clear`` writes a ``model_updated`` event about the
instance the change was made on: the group for ``add_user``/``remove_user`` and for a write
of a group's ``users`` (or, from 2025.12, ``parents``), the user for a write of a user's
``groups``. It does not say who was added or removed. When the signals fire follows
Django's ``ManyRelatedManager``:

* ``add(*objs)`` and ``remove(*objs)`` send ``pre_add`` / ``pre_remove`` whenever they are
  given anything: ``add()`` drops the pks already there but still sends ``pre_add`` (with an
  empty ``pk_set``), ``remove()`` does not look first. So ``add_user`` of a member and
  ``remove_user`` of a non-member write the event all the same;
* ``ModelSerializer.create()``/``update()`` save the record (its ``model_created`` /
  ``model_updated`` event) and then ``set()`` each M2M field in the data, ``default=list``
  making a POST or PUT without one a ``set([])``. ``set()`` calls ``remove()`` with the pks
  no longer wanted and ``add()`` with the wanted ones not there yet, each only when it has
  pks to give: an unchanged set writes nothing more, a changed one one event for the
  removal and one for the addition, in that order. (A pk listed twice goes to ``add()``
  the second time, already there or not.);
* ``clear()`` (``pre_clear``/``post_clear``) is called by none of the endpoints modelled.

Only API requests write these events: background tasks, blueprints, ``ak shell`` and the
simulator's seeding helpers (``add_user(groups=...)``, ``add_group(users=...)``) write
none.
"""

import re
import uuid

import pydantic

from tests.simulators.authentik_api import BOOL_FALSE, BOOL_TRUE
from tests.simulators.authentik_expressions import Notification
from tests.simulators.authentik_store import (
    ADMIN_PK, ANON_PK, HTML_404, HTML_500, KINDS, LIST_DEFAULTS, READ_ONLY, RELATIONS, ApiError, Event, ExprUser,
    _json_type, bad_request, drf_errors, iso, norm_uuid, now, user_dict,
)
from tests.simulators.base import Response

MODES = {"local": "authentik inbuilt notifications", "webhook": "Generic Webhook",
         "webhook_slack": "Slack Webhook (Slack/Discord)", "email": "Email"}
POLICY_META = {
    "expression": ("ak-policy-expression-form", "Expression Policy", "Expression Policies",
                   "authentik_policies_expression.expressionpolicy"),
    "event_matcher": ("ak-policy-event-matcher-form", "Event-matcher Policy", "Event-matcher Policies",
                      "authentik_policies_event_matcher.eventmatcherpolicy"),
    "dummy": ("ak-policy-dummy-form", "Dummy Policy", "Dummy Policies", "authentik_policies_dummy.dummypolicy"),
}
# The many-to-many fields of the models AuditMiddleware watches (User, Group), in the serializers'
# field order: ModelSerializer.create()/update() set() them in that order, after the save.
M2M_FIELDS = {"core/users": ("groups", "roles"), "core/groups": ("parents", "users", "roles")}
MAPPING_META = {
    "notification": ("ak-property-mapping-notification-form", "Webhook Mapping", "Webhook Mappings",
                     "authentik_events.notificationwebhookmapping"),
    "scope": ("ak-property-mapping-provider-scope-form", "Scope Mapping", "Scope Mappings",
              "authentik_providers_oauth2.scopemapping"),
}


def m2m_set_actions(current, wanted):
    """The ``m2m_changed`` actions AuditMiddleware logs when ``ManyRelatedManager.set(wanted)`` runs on
    a relation holding ``current`` (pks): ``set()`` hands the pks no longer wanted to one ``remove()``
    and the wanted ones it did not find (each time it meets one again, too) to one ``add()``, calling
    either only with pks to give; ``remove()`` and ``add()`` send ``pre_remove`` / ``pre_add`` whenever
    they are called."""
    old = set(current)
    added = []
    for pk in wanted:
        if pk in old:
            old.remove(pk)
        else:
            added.append(pk)
    return (["pre_remove"] if old else []) + (["pre_add"] if added else [])


class AuthentikViewSets:
    """The ``ModelViewSet``s of the eight writable kinds and the three read-only lists.

    A mixin of ``AuthentikSimulator``; it validates and applies writes with the store
    (``_writable``, ``_check_relation``, ``_field_checks``, ``_validate``, ``_apply``,
    ``_delete_record``) and paginates with ``AuthentikApi``.
    """

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
        written = self._m2m_written(base, data, partial)
        before = {field: self._m2m_current(base, instance, field) for field in written}
        rec = self._apply(base, data, instance, partial)
        self._audit(req, "model_updated" if instance else "model_created", kind, rec)
        for field, wanted in written.items():  # then the serializer set()s each M2M field
            for _ in m2m_set_actions(before[field], wanted):
                self._audit(req, "model_updated", kind, rec)
        return Response(200 if instance else 201, self._serialize(base, rec, req))

    def _m2m_written(self, base, data, partial):
        """The M2M fields of a user or group a write ``set()``s, each with the pks it asks for."""
        fields = M2M_FIELDS.get(base, ())
        if base == "core/groups" and self.vt < (2025, 12):
            fields = ("users", "roles")  # ``parent`` was a ForeignKey
        written = {}
        for field in fields:
            if field in data:
                written[field] = [pk if field == "users" else norm_uuid(pk) for pk in data[field]]
            elif not partial and field in LIST_DEFAULTS[base]:
                written[field] = []  # default=list
        return written

    def _m2m_current(self, base, rec, field):
        """The pks an M2M field of a user or group holds (none for a record not created yet)."""
        if rec is None:
            return []
        if base == "core/users" and field == "groups":
            return [g["pk"] for g in self._groups_of(rec["pk"])]
        return list(rec[field])

    def _delete(self, req, base, rec):
        """Delete with the model's cascades / SET_NULLs, and its ``model_deleted`` event."""
        self._delete_record(base, rec)
        kind = KINDS.get(base) or KINDS["policies/expression"]
        self._audit(req, "model_deleted", kind, rec)

    def _audit(self, req, action, kind, rec):
        """AuditMiddleware: API writes create model_* events, which run the pipeline too.

        ``context.model`` is ``model_to_dict(rec)``, whose ``name`` is the model's ``name`` field
        when it has one: for a user the display name, blank or not.
        """
        peer = self.client_ip_for(req.client_ip, req.headers.get("x-forwarded-for"))
        if "username" in rec:
            name = rec["name"]
        else:
            name = rec.get("name") or "Binding %s" % rec.get("order")
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
            # group.users.add(user) / .remove(user): pre_add / pre_remove on the group, member or not
            self._audit(req, "model_updated", kind, rec)
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
