# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The authentik objects the collection manages, as ``ObjectKind``s.

Views use one set of field names whatever the server's version; the kinds
translate to the names the server understands (``webhook_mapping`` before
2025.4, ``group`` before 2025.8, ...).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.client import ApiError
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.secrets import mentions_credentials
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.client import (
    DESTINATION_RENAME_SINCE,
    HEADERS_MAPPING_SINCE,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.render import compact_diff_views
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.reconcile import ObjectKind, _is_conflict
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.inputs import InputError


def check_name(name, option="name"):
    """authentik accepts any text; refuse what would only confuse (blank, control characters)."""
    if not isinstance(name, str) or not name.strip():
        raise InputError("%s must be a non-empty string, got %r" % (option, name))
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InputError("%s %r contains a control character (newline, tab, ...)" % (option, name))
    if len(name) > 150 and option.endswith("username"):
        raise InputError("%s %r is longer than authentik's 150 characters" % (option, name))
    return name


class NamedKind(ObjectKind):
    """An authentik object found by its unique ``name``.

    ``fields`` maps view field names to API field names; ``family`` is the
    set of types the name is unique across ("propertymappings", "policies").
    """

    path = None
    what = None
    family = None
    fields = {}
    id_field = "pk"

    def __init__(self, client):
        self.client = client
        self._rows = None  # name -> raw row, when the whole list was read once

    def describe(self, desired):
        return "%s %r" % (self.what, desired.get("name"))

    def preload(self):
        """Read the whole list once; later finds are lookups (bulk modules)."""
        self._rows = dict((row.get("name"), row) for row in self.client.list(self.path, self.what + "s"))
        return self

    def names(self):
        return list(self._rows or {})

    def views(self):
        """Every object of the list read by ``preload``, as views."""
        return [self.view(raw) for raw in (self._rows or {}).values()]

    def api_fields(self):
        return self.fields

    def view(self, raw):
        view = dict((k, raw.get(api)) for k, api in self.api_fields().items())
        view["pk"] = raw.get("pk")
        view["name"] = raw.get("name")
        return view

    def body(self, fields):
        names = self.api_fields()
        return dict((names.get(k, k), v) for k, v in fields.items() if k != "pk")

    def find(self, desired):
        if self._rows is not None:
            raw = self._rows.get(desired["name"])
        else:
            raw = self.client.find_by(self.path, self.what, "name", desired["name"])
        return self.view(raw) if raw else None

    def refind(self, desired):
        """Ask the server again for this one name, keeping the rest of a preloaded list."""
        raw = self.client.find_by(self.path, self.what, "name", desired["name"])
        if self._rows is not None:
            if raw:
                self._rows[desired["name"]] = raw
            else:
                self._rows.pop(desired["name"], None)
        return self.view(raw) if raw else None

    def create(self, desired):
        try:
            raw = self.client.create(self.path, self.describe(desired), self.body(self.comparable(desired)))
        except ApiError as exc:
            if _is_conflict(exc) and self.family and self.refind(desired) is None:
                owner = self.client.owner_of_name(self.family, desired["name"])
                if owner:
                    kinds = {"propertymappings": "property mapping", "policies": "policy"}[self.family]
                    raise ApiError("%s: the name is already taken by %s; names are unique across all %s types "
                                   "in authentik, choose another name" % (self.describe(desired), owner, kinds))
            raise
        return self.view(raw)

    def update(self, current, desired, changes):
        raw = self.client.patch("%s%s/" % (self.path, current["pk"]), self.describe(desired), self.body(changes))
        return self.view(raw)

    def delete(self, current):
        self.client.delete("%s%s/" % (self.path, current["pk"]), self.describe(current))


class ExpressionKind(NamedKind):
    """A named object with an ``expression``; a rendered one diffs by its settings."""

    fields = {"expression": "expression"}

    def diff_views(self, before, after, verbose=False):
        return compact_diff_views(before, after, verbose=verbose)


class WebhookMappingKind(ExpressionKind):
    label = "authentik webhook mapping"
    result_key = "mapping"
    path = "/propertymappings/notification/"
    what = "webhook mapping"
    family = "propertymappings"
    fields = {"expression": "expression"}

    def __init__(self, client, secret=False):
        super(WebhookMappingKind, self).__init__(client)
        self.secret = secret  # a headers mapping's expression embeds the Pangolin key

    def is_secret(self, field, view):
        # A headers mapping embeds a key even when this run was not given it (state=absent,
        # a plain expression now), whether this collection rendered it or someone wrote it by hand.
        return field == "expression" and (self.secret or mentions_credentials((view or {}).get("expression")))


class ExpressionPolicyKind(ExpressionKind):
    label = "authentik expression policy"
    result_key = "policy"
    path = "/policies/expression/"
    what = "expression policy"
    family = "policies"
    fields = {"expression": "expression"}


class EventMatcherPolicyKind(NamedKind):
    label = "authentik event matcher policy"
    result_key = "policy"
    path = "/policies/event_matcher/"
    what = "event matcher policy"
    family = "policies"
    fields = {"action": "action", "app": "app", "client_ip": "client_ip"}


class TransportKind(NamedKind):
    label = "authentik notification transport"
    result_key = "transport"
    path = "/events/transports/"
    what = "notification transport"
    WEBHOOK_MODES = ("webhook", "webhook_slack")
    EMAIL_FIELDS = ("email_subject_prefix", "email_template")

    def diff_views(self, before, after, verbose=False):
        """A webhook transport's diff shows webhook fields only: its e-mail settings do nothing."""
        sides = [v for v in (before, after) if v]
        if sides and all(v.get("mode") in self.WEBHOOK_MODES for v in sides):
            before, after = [dict((k, v) for k, v in view.items() if k not in self.EMAIL_FIELDS) if view else view
                             for view in (before, after)]
        return before, after

    def api_fields(self):
        fields = {"mode": "mode", "webhook_url": "webhook_url", "send_once": "send_once"}
        if self.client.at_least(HEADERS_MAPPING_SINCE):
            fields.update(body_mapping="webhook_mapping_body", headers_mapping="webhook_mapping_headers")
        else:
            fields.update(body_mapping="webhook_mapping")
        if self.client.at_least(DESTINATION_RENAME_SINCE):
            fields.update(email_subject_prefix="email_subject_prefix", email_template="email_template")
        return fields

    def check_supported(self, desired):
        fields = self.api_fields()
        for name in ("headers_mapping", "email_subject_prefix", "email_template"):
            if desired.get(name) is not None and name not in fields:
                raise InputError("%s: %s needs a newer authentik than %s"
                                 % (self.describe(desired), name, self.client.version_text))

    def create(self, desired):
        self.check_supported(desired)
        return super(TransportKind, self).create(desired)

    def update(self, current, desired, changes):
        self.check_supported(desired)
        changes = dict(changes)
        # authentik checks webhook_url only when mode is in the request, and then wants it in the request too
        # (a rename alone would be refused: "Webhook URL may not be empty").
        changes["mode"] = desired.get("mode") or current.get("mode")
        if changes["mode"] in ("webhook", "webhook_slack") and "webhook_url" not in changes:
            changes["webhook_url"] = desired.get("webhook_url") or current.get("webhook_url")
        return super(TransportKind, self).update(current, desired, changes)


class NotificationRuleKind(NamedKind):
    label = "authentik notification rule"
    result_key = "notification_rule"
    path = "/events/rules/"
    what = "notification rule"
    unordered_fields = ("transports",)

    def __init__(self, client):
        super(NotificationRuleKind, self).__init__(client)
        self.transport_names = {}  # pk -> name of the transports known, so that a diff names them

    def diff_views(self, before, after, verbose=False):
        """A rule's transports by name, in a stable order, as a person reads them."""
        def named(view):
            if not view or not isinstance(view.get("transports"), list):
                return view
            return dict(view, transports=sorted(self.transport_names.get(str(pk), pk) for pk in view["transports"]))
        return named(before), named(after)

    def api_fields(self):
        fields = {"transports": "transports", "severity": "severity"}
        if self.client.at_least(DESTINATION_RENAME_SINCE):
            fields.update(destination_group="destination_group", destination_event_user="destination_event_user")
        else:
            fields.update(destination_group="group")
        return fields

    def view(self, raw):
        view = super(NotificationRuleKind, self).view(raw)
        if "destination_event_user" not in self.api_fields():
            view["destination_event_user"] = False
        return view

    def check_supported(self, desired):
        if desired.get("destination_event_user") and "destination_event_user" not in self.api_fields():
            raise InputError("%s: destination_event_user needs authentik 2025.8 or newer (this server runs %s); "
                             "use destination_group instead" % (self.describe(desired), self.client.version_text))

    def body(self, fields):
        body = super(NotificationRuleKind, self).body(fields)
        if "destination_event_user" not in self.api_fields():
            body.pop("destination_event_user", None)
        return body

    def create(self, desired):
        self.check_supported(desired)
        return super(NotificationRuleKind, self).create(desired)

    def update(self, current, desired, changes):
        self.check_supported(desired)
        return super(NotificationRuleKind, self).update(current, desired, changes)


class BindingKind(ObjectKind):
    """The binding of one policy to one target (a notification rule)."""

    label = "authentik policy binding"
    result_key = "binding"
    id_field = "pk"
    path = "/policies/bindings/"

    def __init__(self, client, target, policy, policy_name=None, bindings=None, target_name=None):
        self.client = client
        self.target = target
        self.policy = policy
        self.policy_name = policy_name or policy
        self.target_name = target_name or target
        self._bindings = bindings

    def describe(self, desired):
        return "binding of policy %r to notification rule %r" % (self.policy_name, self.target_name)

    @staticmethod
    def view(raw):
        return dict((k, raw.get(k)) for k in ("pk", "target", "policy", "order", "enabled", "negate", "timeout"))

    @classmethod
    def list_for(cls, client, targets):
        """The bindings of these targets, in one request."""
        return [cls.view(raw) for raw in client.list(cls.path, "policy bindings", {"target_in": list(targets)})]

    def find(self, desired):
        if self._bindings is None:
            self._bindings = self.client.list(self.path, "policy bindings", {"target": self.target})
        found = [b for b in self._bindings
                 if (str(b.get("target")), str(b.get("policy"))) == (str(self.target), str(self.policy))]
        return self.view(found[0]) if found else None

    def refind(self, desired):
        self._bindings = None
        return self.find(desired)

    def full_body(self, current, desired):
        # Bindings are written whole: PATCH without target/policy fails in authentik.
        body = dict(order=0, enabled=True, negate=False, timeout=30)
        if current:
            body.update(dict((k, current[k]) for k in body if current.get(k) is not None))
        body.update(self.comparable(desired))
        body.update(target=self.target, policy=self.policy)
        return body

    def create(self, desired):
        raw = self.client.create(self.path, self.describe(desired), self.full_body(None, desired))
        self._bindings = None
        return self.view(raw)

    def update(self, current, desired, changes):
        raw = self.client.put("%s%s/" % (self.path, current["pk"]), self.describe(desired),
                              self.full_body(current, desired))
        self._bindings = None
        return self.view(raw)

    def delete(self, current):
        self.client.delete("%s%s/" % (self.path, current["pk"]), self.describe(current))
        self._bindings = None


def resolve_reference(kind, name, option, check_mode=False):
    """The pk of the object ``name`` of ``kind``, for a field that references it.

    In check mode an object an earlier task would have created does not
    exist yet; stand in a readable marker instead of failing the dry run.
    """
    found = kind.find({"name": name})
    if found is not None:
        return found["pk"]
    if check_mode:
        return "(%s %r, not created yet)" % (kind.what, name)
    raise InputError("%s: authentik has no %s named %r" % (option, kind.what, name))


class EmailTransport(object):
    """The desired e-mail transport of a login e-mail setting."""

    @staticmethod
    def desired(name, setting):
        """``setting``: a settings.LoginEmail."""
        desired = dict(name=name, mode="email")
        if setting.subject_prefix is not None:
            desired["email_subject_prefix"] = setting.subject_prefix
        if setting.template is not None:
            desired["email_template"] = setting.template
        return desired


def check_webhook_url(url, option="webhook_url"):
    """authentik's URL validator, applied before writing (underscored hosts are refused)."""
    if not isinstance(url, str) or not url:
        raise InputError("%s is required for a webhook transport" % option)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError("%s must be an http:// or https:// URL, got %r" % (option, url))
    if "_" in parts.hostname or any(c.isspace() for c in url):
        raise InputError("%s %r is not a URL authentik accepts (no underscores in host names, no spaces)"
                         % (option, url))
    return url
