"""authentik's expression sandbox and policy engine, as the authentik simulator runs them.

One of the parts ``tests/simulators/authentik.py`` puts together. Section numbers refer to
the project's authentik API reference.

Expressions are real Python, run as authentik runs them (§11): the expression becomes the
body of a ``handler`` function (``BaseEvaluator.wrap_expression``) and runs with the full
interpreter and the globals authentik gives every expression (``ak_logger``,
``ak_create_event``, ``ak_is_group_member``, ``ak_user_by``, ``ak_send_email``, ``requests``,
``ip_address``, ``regex_match``, ...; the JWT helpers and ``ak_call_policy`` raise). An
expression's ``import`` of authentik's or Django's models is served by the ORM stand-ins of
``authentik_orm.py`` over the simulator's state.

A notification rule passes through the policy engine in mode ANY with an empty result of
False: no bindings, no fire (§4). A binding to a user or group passes for that user or a
member; a binding to a policy runs it: an event matcher compares ``action``, ``client_ip``,
``app`` and ``model``; an expression policy sees ``request`` (``request.context["event"]``,
and from 2025.8 ``request.obj``), ``ak_client_ip`` and ``ak_message``. A policy that raises
gives the binding's ``failure_result`` (no negate) and a ``policy_exception`` event; with
``execution_logging`` each run writes a ``policy_execution`` event. A webhook mapping that
raises writes a ``property_mapping_exception`` event, and that delivery sends nothing.
"""

import builtins
import ipaddress
import re
import socket
import traceback
import uuid
from textwrap import indent

import requests

from tests.simulators.authentik_orm import expression_builtins
from tests.simulators.authentik_store import (
    KNOWN_ACTIONS, AnonymousUser, Event, ExprUser, now, sanitize, user_dict,
)


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


class AuthentikExpressions:
    """The expression evaluator and the policy engine over the simulator's state.

    A mixin of ``AuthentikSimulator``; it reads the store's records and saves the events an
    expression or a failing policy writes with the store's ``_record_event``.
    """

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

    def _compile_policy_expression(self, expression, filename):
        """``BaseEvaluator.validate``: compile the wrapped function (§5); raises SyntaxError or ValueError."""
        names = ["request", "context", "ak_message", "ak_is_sso_flow", "ak_client_ip"]
        compile(wrap_expression(expression, names + list(self._helpers("x"))), filename, "exec")

    # -- the policy engine (authentik/policies) ---------------------------------------
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

    # -- webhook mappings ----------------------------------------------------------------
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
