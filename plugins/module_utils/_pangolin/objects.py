# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Pangolin objects the collection manages, as ``ObjectKind``s."""

from __future__ import annotations

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.client import ApiError
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._pangolin.values import (
    ACTIONS,
    MATCHES,
    rule_value_error,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.reconcile import ObjectKind
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.inputs import InputError, is_int

# Pangolin's rule priority is a JS integer; stay inside what it stores exactly.
PRIORITY_MIN, PRIORITY_MAX = -(2 ** 31), 2 ** 31 - 1


def validate_rule(rule, state="present", prefix=""):
    """Check a desired rule the way Pangolin will, naming the option on failure."""
    priority = rule.get("priority")
    if not is_int(priority):
        raise InputError("%spriority must be an integer, got %r" % (prefix, priority))
    if not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise InputError("%spriority %d is out of range" % (prefix, priority))
    if state == "absent":
        return rule
    if rule.get("action") not in ACTIONS:
        raise InputError("%saction must be one of %s, got %r" % (prefix, ", ".join(ACTIONS), rule.get("action")))
    if rule.get("match") not in MATCHES:
        raise InputError("%smatch must be one of %s, got %r" % (prefix, ", ".join(MATCHES), rule.get("match")))
    error = rule_value_error(rule["match"], rule.get("value"))
    if error:
        raise InputError("%svalue %r %s" % (prefix, rule.get("value"), error))
    return rule


class RuleKind(ObjectKind):
    """One rule of one resource, identified by its priority.

    ``webhook_owned`` rules get their match and value from authentik at each
    login (an IPv4 login writes ``IP``, an IPv6 one may write a ``CIDR``
    prefix): the ones given here only seed a new rule, and an existing rule's
    match and value are never compared or sent back.

    A rule created while a concurrent run created one of the same shape at the
    same priority gives way to the older one, which is taken over as this
    priority's rule; with ``take_over_twins`` false (the whitelist, where the
    twin may be another deployment's) the run fails instead, and its rerun
    sees whose the priority is.
    """

    label = "Pangolin rule"
    id_field = "rule_id"
    result_key = "rule"

    def __init__(self, client, resource_id, webhook_owned=False, rules=None, take_over_twins=True):
        self.client = client
        self.resource_id = resource_id
        self.webhook_owned = webhook_owned
        self.take_over_twins = take_over_twins
        self._rules = rules  # a list read once by the caller (the snapshot's), kept up to date in place

    def describe(self, desired):
        return "rule priority %s on resource %s" % (desired.get("priority"), self.resource_id)

    def rules(self, refresh=False):
        if self._rules is None or refresh:
            self._keep(self.client.list_rules(self.resource_id))
        return self._rules

    def _keep(self, rules):
        """Replace the cached list's content, not the list: whoever shares it (the snapshot) sees the change."""
        if self._rules is None:
            self._rules = list(rules)
        else:
            self._rules[:] = rules

    def at_priority(self, priority, refresh=False):
        return [r for r in self.rules(refresh) if r["priority"] == priority]

    def find(self, desired):
        found = self.at_priority(desired["priority"], refresh=self._rules is None)
        if len(found) > 1:
            raise ApiError("resource %s has %d rules with priority %s (rule ids %s); a priority must identify "
                           "one rule: delete or renumber the extra ones"
                           % (self.resource_id, len(found), desired["priority"],
                              ", ".join(str(r["rule_id"]) for r in found)))
        return found[0] if found else None

    def refind(self, desired):
        """After a create whose answer was lost: the rule at the priority, when it is the one sent. Where a twin
        may be someone else's (``take_over_twins`` false), only a rule of exactly the shape sent counts."""
        self.rules(refresh=True)
        if self.take_over_twins:
            return self.find(desired)
        found = [r for r in self.at_priority(desired["priority"]) if self._twin(r, desired)]
        return found[0] if len(found) == 1 else None

    def exists(self, current, desired):
        return any(r["rule_id"] == current["rule_id"] for r in self.rules(refresh=True))

    def comparable(self, desired):
        fields = super(RuleKind, self).comparable(desired)
        if self.webhook_owned:
            fields.pop("value", None)
            fields.pop("match", None)
        return fields

    def create(self, desired):
        if not getattr(self, "_mode_checked", False):
            # Pangolin keeps rules only for these modes (docs 3.1); say so before sending anything.
            try:
                mode = self.client.get_resource(self.resource_id).get("mode")
            except ApiError as exc:
                if exc.status != 403:
                    raise
                mode = None  # a key without getResource: Pangolin itself refuses other modes
            if mode and mode not in ("http", "ssh", "rdp", "vnc"):
                raise InputError("resource %s is a %s resource: Cannot create rule for non-http resource (Pangolin "
                                 "keeps rules only for http, ssh, rdp and vnc resources)" % (self.resource_id, mode))
            self._mode_checked = True
        created = self.client.create_rule(self.resource_id, desired)
        # Priorities are not unique in Pangolin: a concurrent run may have created
        # a rule of the same shape at the same priority. Keep the oldest, drop ours.
        same = [r for r in self.at_priority(desired["priority"], refresh=True)
                if r["rule_id"] == created["rule_id"] or self._twin(r, desired)]
        keep = min(same, key=lambda r: r["rule_id"]) if same else created
        if keep["rule_id"] != created["rule_id"] and any(r["rule_id"] == created["rule_id"] for r in same):
            self.client.delete_rule(self.resource_id, created["rule_id"])
            self._keep([r for r in self._rules if r["rule_id"] != created["rule_id"]])
            if not self.take_over_twins:
                raise ApiError("%s: another run created rule %d at priority %d at the same moment; this run's "
                               "rule %d was removed again, rerun to settle which run owns the priority"
                               % (self.describe(desired), keep["rule_id"], desired["priority"], created["rule_id"]))
        return keep

    def update(self, current, desired, changes):
        # Only what is managed, and priority, which Pangolin requires. Match and value
        # go only when managed, and then together (Pangolin checks a value against the
        # match it is sent with): a login landing between our read and this write must
        # not be reverted by a value we merely read.
        body = dict(self.comparable(desired))
        body.setdefault("priority", current["priority"])
        if "value" in body or "match" in body:
            body.setdefault("match", current["match"])
            body.setdefault("value", current["value"])
        updated = self.client.update_rule(self.resource_id, current["rule_id"], body)
        self._replace(updated)
        return updated

    def delete(self, current):
        # Pangolin deletes a rule of *another* resource if asked (docs 3.3):
        # only ids read from this resource's own list are ever deleted.
        if not any(r["rule_id"] == current["rule_id"] for r in self.rules(refresh=True)):
            return
        self.client.delete_rule(self.resource_id, current["rule_id"])
        self._keep([r for r in self._rules if r["rule_id"] != current["rule_id"]])

    @staticmethod
    def _twin(rule, desired):
        return all(rule.get(k) == desired.get(k) for k in ("action", "match", "value", "enabled")
                   if desired.get(k) is not None)

    def _replace(self, rule):
        if self._rules is not None:
            self._keep([rule if r["rule_id"] == rule["rule_id"] else r for r in self._rules])

    def predict(self, current, desired):
        after = super(RuleKind, self).predict(current, desired)
        if self.webhook_owned:
            # A webhook-owned match and value are kept as they are, or created from the placeholder.
            after["value"] = current.get("value") if current else desired.get("value")
            after["match"] = current.get("match") if current else desired.get("match")
        return after


RESOURCE_SETTINGS = {
    # option name: Pangolin field
    "apply_rules": "applyRules",
    "sso": "sso",
    "block_access": "blockAccess",
    "email_whitelist_enabled": "emailWhitelistEnabled",
    "enabled": "enabled",
}


class ResourceSettingsKind(ObjectKind):
    """Access settings of an existing resource; only the settings given are touched."""

    label = "Pangolin resource"
    id_field = "resource_id"
    result_key = "resource"

    def __init__(self, client, resource_id):
        self.client = client
        self.resource_id = resource_id

    def describe(self, desired):
        return "resource %s" % self.resource_id

    @staticmethod
    def view(raw):
        view = dict((opt, _as_bool(raw.get(field))) for opt, field in RESOURCE_SETTINGS.items())
        view.update(resource_id=raw.get("resourceId"), name=raw.get("name"), full_domain=raw.get("fullDomain"),
                    org_id=raw.get("orgId"), mode=raw.get("mode"), resource_policy_id=raw.get("resourcePolicyId"))
        return view

    def find(self, desired):
        try:
            return self.view(self.client.get_resource(self.resource_id))
        except ApiError as exc:
            if exc.status == 404 and isinstance(exc.body, dict):  # Pangolin's own 404, not an unknown route
                raise InputError("resource_id %s: Pangolin has no such resource" % self.resource_id)
            raise

    def comparable(self, desired):
        return dict((k, v) for k, v in desired.items() if v is not None and k in RESOURCE_SETTINGS)

    def update(self, current, desired, changes):
        body = dict((RESOURCE_SETTINGS[k], v) for k, v in changes.items())
        if current.get("resource_policy_id") is not None:
            # Pangolin clears a resource's own rules, users and roles when an update omits the shared policy it
            # is on (it takes that as a change of policy): name the current one
            body["resourcePolicyId"] = current["resource_policy_id"]
        self.client.update_resource(self.resource_id, body)
        # The update answer merges policy fields inconsistently across
        # versions; the effective settings come from a fresh read.
        return self.find(desired)


class IdpOrgPolicyKind(ObjectKind):
    """The org policy of one identity provider for one org (``/idp/{id}/org/{org}``)."""

    label = "Pangolin IdP org policy"
    id_field = "org_id"
    result_key = "policy"

    def __init__(self, client, idp_id, org_id):
        self.client = client
        self.idp_id = idp_id
        self.org_id = org_id

    def describe(self, desired):
        return "org policy of identity provider %s for org %s" % (self.idp_id, self.org_id)

    def find(self, desired):
        for row in self.client.list_idp_org_policies(self.idp_id):
            if row.get("orgId") == self.org_id:
                return {"idp_id": self.idp_id, "org_id": self.org_id,
                        "role_mapping": row.get("roleMapping"), "org_mapping": row.get("orgMapping")}
        return None

    def _body(self, fields):
        names = {"role_mapping": "roleMapping", "org_mapping": "orgMapping"}
        return dict((names[k], v) for k, v in fields.items() if k in names and v is not None)

    def create(self, desired):
        self.client.create_idp_org_policy(self.idp_id, self.org_id, self._body(desired))
        found = self.find(desired)
        if found is None:
            raise ApiError("%s: created but not found when read back" % self.describe(desired))
        return found

    def update(self, current, desired, changes):
        # Only changed fields, and never an empty body (Pangolin answers 500).
        self.client.update_idp_org_policy(self.idp_id, self.org_id, self._body(changes))
        return self.find(desired)

    def delete(self, current):
        self.client.delete_idp_org_policy(self.idp_id, self.org_id)

    def predict(self, current, desired):
        after = dict(current) if current else {"idp_id": self.idp_id, "org_id": self.org_id,
                                               "role_mapping": None, "org_mapping": None}
        after.update(self.comparable(desired))
        return after


class IdpAutoProvisionKind(ObjectKind):
    """The ``autoProvision`` switch of an identity provider."""

    label = "Pangolin identity provider"
    id_field = "idp_id"
    result_key = "idp"

    def __init__(self, client, idp_id):
        self.client = client
        self.idp_id = idp_id

    def describe(self, desired):
        return "identity provider %s" % self.idp_id

    def find(self, desired):
        for row in self.client.list_idps():
            if row.get("idpId") == self.idp_id:
                return {"idp_id": self.idp_id, "name": row.get("name"),
                        "auto_provision": _as_bool(row.get("autoProvision"))}
        raise ApiError("idp_id %s: Pangolin has no identity provider with that id" % self.idp_id)

    def update(self, current, desired, changes):
        self.client.update_idp(self.idp_id, {"autoProvision": changes["auto_provision"]})
        return self.find(desired)


def _as_bool(value):
    # SQLite answers 1/0 for some booleans (docs 4).
    return None if value is None else bool(value)
