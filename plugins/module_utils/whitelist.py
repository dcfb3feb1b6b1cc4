# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The login → webhook → Pangolin rule chain for many users at once.

Per user the chain is: a Pangolin ACCEPT/IP rule at the user's priority, a
body mapping, a webhook transport to that rule, an expression policy "login
of this user", a notification rule and the binding of the policy to it.

Everything is read once (each list one request), every input is checked and
every priority settled before the first write, then each user's objects go
through the same ``ObjectKind``s and ``Reconciler`` as the single-object
modules. An unchanged user costs no request beyond those shared reads.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.api_client import ApiError
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.authentik import (
    DESTINATION_RENAME_SINCE,
    HEADERS_MAPPING_SINCE,
    AuthentikClient,
    authentik_argument_spec,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.authentik_objects import (
    BindingKind,
    ExpressionPolicyKind,
    NotificationRuleKind,
    TransportKind,
    WebhookMappingKind,
    check_name,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.pangolin import (
    PangolinClient,
    pangolin_argument_spec,
    resource_selector_spec,
    selected_resource_id,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.pangolin_objects import (
    PRIORITY_MAX,
    PRIORITY_MIN,
    ResourceSettingsKind,
    RuleKind,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.pangolin_values import rule_value_error
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.reconcile import InputError
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.render import (
    check_ipv6_prefix,
    headers_mapping_expression,
    login_policy_expression,
    rendered_values,
    rule_body_expression,
)

RULE_URL = re.compile(r"/v1/resource/(\d+)/rule/(\d+)/?$")


def validate_users(users):
    """Each entry checked and normalised: username, priority (int or None), state, where."""
    if not isinstance(users, list):
        raise InputError("users must be a list of {username, priority, state} entries")
    seen = {}
    checked = []
    for index, entry in enumerate(users):
        where = "users[%d]" % index
        if not isinstance(entry, dict):
            raise InputError("%s must be a dict with a username, got %r" % (where, entry))
        unknown = set(entry) - {"username", "priority", "state"}
        if unknown:
            raise InputError("%s has unknown keys %s (allowed: username, priority, state)"
                             % (where, ", ".join(sorted(map(str, unknown)))))
        username = check_name(entry.get("username"), "%s.username" % where)
        where = "users[%d] (%s)" % (index, username)
        if username in seen:
            raise InputError("%s: username %r is listed twice (also users[%d])" % (where, username, seen[username]))
        seen[username] = index
        state = entry.get("state") or "present"
        if state not in ("present", "absent"):
            raise InputError("%s.state must be present or absent, got %r" % (where, state))
        priority = entry.get("priority")
        if priority is not None:
            if isinstance(priority, str) and re.match(r"^-?\d+$", priority.strip()):
                priority = int(priority)
            if isinstance(priority, bool) or not isinstance(priority, int):
                raise InputError("%s.priority must be an integer, got %r" % (where, priority))
            if not PRIORITY_MIN <= priority <= PRIORITY_MAX:
                raise InputError("%s.priority %d is out of range" % (where, priority))
        checked.append(dict(username=username, priority=priority, state=state, where=where))
    return checked


def rule_id_in_url(url, resource_id):
    """The rule id a transport URL updates, when it is a rule of ``resource_id``."""
    match = RULE_URL.search(url or "")
    if match and int(match.group(1)) == resource_id:
        return int(match.group(2))
    return None


class WhitelistPlan(object):
    """Reads everything once, validates, and settles each user's priority."""

    def __init__(self, pangolin, authentik, resource_id, users, prefix, priority_range, placeholder="0.0.0.0",
                 action="ACCEPT", prune=False, headers_mapping=None, webhook_url=None, destination_group=None,
                 check_mode=False, webhook_api_key=None, apply_rules=False, ipv6_prefix=0, webhook_key_factory=None,
                 org_id=None):
        self.pangolin = pangolin
        self.authentik = authentik
        self.resource_id = resource_id
        self.prefix = prefix
        self.priority_range = priority_range
        self.placeholder = placeholder
        self.action = action
        self.prune = prune
        self.headers_mapping_name = headers_mapping
        self.webhook_url = webhook_url.rstrip("/")
        self.destination_group_name = destination_group
        self.check_mode = check_mode
        # Shared by all users: the headers mapping (rendered from the key when
        # given) and applyRules on the resource.
        self.webhook_api_key = webhook_api_key
        if webhook_api_key is not None and ("." not in webhook_api_key or any(c.isspace() for c in webhook_api_key)):
            raise InputError("webhook_api_key must be a Pangolin API key of the form <key id>.<secret>")
        self.apply_rules = apply_rules
        self.ipv6_prefix = check_ipv6_prefix(ipv6_prefix)
        # org id -> WebhookKey, when the collection keeps its own webhook key.
        self.webhook_key_factory = webhook_key_factory
        self.webhook_key = None
        self.org_id = org_id
        self.users = validate_users(users)

    # -- input -------------------------------------------------------------
    # -- reads ---------------------------------------------------------------
    def read(self):
        """One request per list; everything after this is lookups."""
        self.rule_kind = RuleKind(self.pangolin, self.resource_id, webhook_owned=True)
        self.rules = self.rule_kind.rules()
        self.mappings = WebhookMappingKind(self.authentik).preload()
        self.transports = TransportKind(self.authentik).preload()
        self.policies = ExpressionPolicyKind(self.authentik).preload()
        self.notification_rules = NotificationRuleKind(self.authentik).preload()
        present = [u["username"] for u in self.users if u["state"] == "present"]
        self.accounts = self.authentik.users_by_username(present) if present else {}
        if self.apply_rules:
            self.resource_settings = ResourceSettingsKind(self.pangolin, self.resource_id)
            self.resource_now = self.resource_settings.find({})
        self.headers_pk = None
        if self.headers_mapping_name:
            found = self.mappings.find({"name": self.headers_mapping_name})
            if self.webhook_key_factory is not None:
                self.webhook_key = self.webhook_key_factory(self.resource_org_id())
                self.webhook_key.read((found or {}).get("expression"))
            if found is not None:
                self.headers_pk = found["pk"]
            elif self.check_mode or self.webhook_api_key is not None or self.webhook_key is not None:
                self.headers_pk = "(webhook mapping %r, not created yet)" % self.headers_mapping_name
            else:
                raise InputError("headers_mapping: authentik has no webhook mapping named %r"
                                 % self.headers_mapping_name)
        if not self.authentik.at_least(HEADERS_MAPPING_SINCE):
            raise InputError("authentik %s cannot send headers with a webhook (needs 2025.4 or newer), and Pangolin "
                             "needs its API key in the Authorization header" % self.authentik.version_text)
        self.group_pk = None
        if not self.authentik.at_least(DESTINATION_RENAME_SINCE):
            if not self.destination_group_name:
                raise InputError("authentik %s cannot send a notification to the event's user (needs 2025.8); "
                                 "set destination_group to a group with at least one member"
                                 % self.authentik.version_text)
            self.group_pk = self.authentik.group_pk(self.destination_group_name, "destination_group")
        rule_pks = [r["pk"] for r in (self.notification_rules._rows or {}).values()
                    if str(r.get("name", "")).startswith(self.prefix)]
        self.bindings = self.authentik.list("/policies/bindings/", "policy bindings",
                                            {"target_in": rule_pks}) if rule_pks else []

    def resource_org_id(self):
        if self.org_id:
            return self.org_id
        if self.apply_rules:
            return self.resource_now["org_id"]
        return self.pangolin.get_resource(self.resource_id).get("orgId")

    # -- planning ------------------------------------------------------------
    def name_of(self, username):
        return self.prefix + username

    def transport_rule_id(self, name):
        """The rule id the user's transport points at, when it targets this resource."""
        row = (self.transports._rows or {}).get(name)
        return rule_id_in_url((row or {}).get("webhook_url"), self.resource_id)

    def recorded_priority(self, name):
        """The priority an earlier run gave this user, from its body mapping or its rule."""
        row = (self.mappings._rows or {}).get(name)
        priority = rendered_values((row or {}).get("expression")).get("priority")
        if isinstance(priority, int) and not isinstance(priority, bool):
            return priority
        rule_id = self.transport_rule_id(name)
        for rule in self.rules:
            if rule["rule_id"] == rule_id:
                return rule["priority"]
        return None

    def owned_rule_ids(self):
        ids = set()
        for name in (self.transports._rows or {}):
            if name.startswith(self.prefix):
                rule_id = self.transport_rule_id(name)
                if rule_id is not None:
                    ids.add(rule_id)
        return ids

    def plan(self):
        """Settle every user's priority and check every collision; no write yet."""
        self.read()
        missing = [u["username"] for u in self.users if u["state"] == "present" and u["username"] not in self.accounts]
        if missing:
            raise InputError("users: authentik has no user %s; create the user%s first or mark %s state: absent"
                             % (", ".join(repr(m) for m in missing), "s" if len(missing) > 1 else "",
                                "them" if len(missing) > 1 else "it"))
        listed = set(u["username"] for u in self.users)
        if self.prune:
            for kind in (self.notification_rules, self.transports, self.mappings, self.policies):
                for name in kind.names():
                    if name.startswith(self.prefix) and name != self.headers_mapping_name:
                        username = name[len(self.prefix):]
                        if username and username not in listed:
                            listed.add(username)
                            self.users.append(dict(username=username, priority=None, state="absent",
                                                   where="pruned user %r" % username, pruned=True))
        owned = self.owned_rule_ids()
        taken = {}  # priority -> username
        for user in self.users:
            name = self.name_of(user["username"])
            user["name"] = name
            user["recorded"] = self.recorded_priority(name)
            if user["priority"] is None:
                user["priority"] = user["recorded"]
            if user["state"] == "present" and user["priority"] is not None:
                self._claim(user, taken, owned)
        for user in self.users:
            if user["state"] == "present" and user["priority"] is None:
                user["priority"] = self._allocate(taken)
                taken[user["priority"]] = user["username"]
        return self.users

    def _claim(self, user, taken, owned):
        priority = user["priority"]
        if priority in taken:
            raise InputError("%s: priority %d is also used by user %r; each user needs a priority of their own"
                             % (user["where"], priority, taken[priority]))
        taken[priority] = user["username"]
        at = [r for r in self.rules if r["priority"] == priority]
        if len(at) > 1:
            raise InputError("%s: resource %d has %d rules with priority %d (rule ids %s); delete the extra ones"
                             % (user["where"], self.resource_id, len(at), priority,
                                ", ".join(str(r["rule_id"]) for r in at)))
        if not at:
            return
        rule = at[0]
        mine = rule["rule_id"] == self.transport_rule_id(user["name"]) or user["recorded"] == priority
        if mine:
            return
        adoptable = (rule["action"] == self.action and rule["match"] == "IP" and rule["value"] == self.placeholder
                     and rule["rule_id"] not in owned)
        if not adoptable:
            raise InputError("%s: priority %d collides with rule %d (%s %s %s) on resource %d, which this "
                             "whitelist does not own; choose another priority"
                             % (user["where"], priority, rule["rule_id"], rule["action"], rule["match"],
                                rule["value"], self.resource_id))

    def _allocate(self, taken):
        start, end = self.priority_range
        # A lone placeholder rule nobody's transport points at is what a run that stopped
        # (or a concurrent run) left after step 1: reuse it rather than strand it.
        owned = self.owned_rule_ids()
        counts = {}
        for rule in self.rules:
            counts[rule["priority"]] = counts.get(rule["priority"], 0) + 1
        used = set(r["priority"] for r in self.rules
                   if counts[r["priority"]] > 1 or r["rule_id"] in owned or r["action"] != self.action
                   or r["match"] != "IP" or r["value"] != self.placeholder) | set(taken)
        for priority in range(start, end + 1):
            if priority not in used:
                return priority
        raise InputError("priority_range %d-%d has no free priority left on resource %d"
                         % (start, end, self.resource_id))

    # -- applying ------------------------------------------------------------
    def apply(self, reconciler):
        """Converge the shared objects, then every user; returns one summary per user."""
        if self.apply_rules:
            reconciler.ensure(self.resource_settings, {"apply_rules": True}, current=self.resource_now)
        api_key = self.webhook_api_key
        if self.webhook_key is not None:
            api_key = self.webhook_key.ensure(reconciler)
        if api_key is not None:
            headers = reconciler.ensure(self.mappings, dict(name=self.headers_mapping_name,
                                                            expression=headers_mapping_expression(api_key)))
            self.headers_pk = _pk(headers, self.headers_mapping_name)
        if self.webhook_key is not None:
            self.webhook_key.retire(reconciler)  # only now that the mapping sends the kept key
        summaries = []
        for user in self.users:
            before = len(reconciler.outcomes)
            if user["state"] == "present":
                rule_id = self._present(reconciler, user)
            else:
                rule_id = self._absent(reconciler, user)
            changed = [o for o in reconciler.outcomes[before:] if o.changed]
            summaries.append(dict(username=user["username"], state=user["state"], priority=user["priority"],
                                  rule_id=rule_id, name=user["name"], pruned=bool(user.get("pruned")),
                                  changed=bool(changed),
                                  changes=["%s %s" % (o.action, o.kind.describe(o.desired)) for o in changed]))
        return summaries

    def _present(self, reconciler, user):
        name, priority = user["name"], user["priority"]
        account = self.accounts[user["username"]]
        # 1. The Pangolin rule: the webhook's target must exist before anything can fire.
        rule = reconciler.ensure(self.rule_kind, dict(priority=priority, action=self.action, match="IP",
                                                      value=self.placeholder, enabled=True))
        rule_id = rule.after["rule_id"]
        # 2. The body mapping: a full rule update carrying the login's client IP.
        body = reconciler.ensure(self.mappings, dict(name=name, expression=rule_body_expression(
            priority, self.action, self.placeholder, ipv6_prefix=self.ipv6_prefix)))
        # 3. The transport: its URL names the rule's current id, re-read every run.
        target = rule_id if rule_id is not None else "(rule id of priority %d, not created yet)" % priority
        transport = dict(name=name, mode="webhook", send_once=True, body_mapping=_pk(body, name),
                         webhook_url="%s/v1/resource/%d/rule/%s" % (self.webhook_url, self.resource_id, target))
        if self.headers_pk is not None:
            transport["headers_mapping"] = self.headers_pk
        transport = reconciler.ensure(self.transports, transport)
        # 4. The policy and the rule last, so nothing fires before its target exists.
        policy = reconciler.ensure(self.policies, dict(name=name, expression=login_policy_expression(account["pk"])))
        desired_rule = dict(name=name, transports=[_pk(transport, name)], severity="notice")
        if self.group_pk is not None:
            desired_rule["destination_group"] = self.group_pk
        else:
            desired_rule["destination_event_user"] = True
        notification = reconciler.ensure(self.notification_rules, desired_rule)
        binding_kind = BindingKind(self.authentik, notification.after["pk"], policy.after["pk"], name,
                                   bindings=self.bindings, target_name=name)
        exists = notification.after["pk"] is not None and policy.after["pk"] is not None
        reconciler.ensure(binding_kind, dict(order=0, enabled=True), lookup=exists)
        return rule_id

    def _absent(self, reconciler, user):
        name = user["name"]
        # Stop the firing first, keep the body mapping (it records the priority) for last.
        reconciler.ensure(self.notification_rules, dict(name=name), "absent")
        reconciler.ensure(self.policies, dict(name=name), "absent")
        rule_id = self.transport_rule_id(name)
        owned = [r for r in self.rules if r["rule_id"] == rule_id]
        if not owned and user["priority"] is not None:
            # The transport is gone or points at a renumbered rule: fall back
            # to the recorded priority, for a rule of the shape we create.
            owned = [r for r in self.rules if r["priority"] == user["priority"] and r["match"] in ("IP", "CIDR")
                     and r["action"] == self.action]
        if len(owned) == 1:
            reconciler.ensure(self.rule_kind, dict(priority=owned[0]["priority"]), "absent", current=owned[0])
        reconciler.ensure(self.transports, dict(name=name), "absent")
        reconciler.ensure(self.mappings, dict(name=name), "absent")
        return None


def _pk(outcome, name):
    """The object's pk, or a readable marker in check mode before it exists."""
    if outcome.after and outcome.after.get("pk") is not None:
        return outcome.after["pk"]
    return "(%s %r, not created yet)" % (outcome.kind.what, name)


def api_base(url):
    """Pangolin's base URL without the API's ``/v1``, to which rule paths are appended."""
    url = url.rstrip("/")
    return url[:-3] if url.endswith("/v1") else url


def whitelist_argument_spec(chain=False):
    """Options every whitelist module takes, and the resource selector's rules.

    Both connections, the resource and the users (doc fragments connection,
    pangolin, resource, authentik, whitelist); with ``chain`` also the options
    of the chain each user gets (whitelist.CHAIN).
    """
    spec = pangolin_argument_spec()
    selector, rules = resource_selector_spec()
    spec.update(selector)
    spec.update(authentik_argument_spec())
    spec.update(
        users=dict(type="list", elements="raw", required=True),
        name_prefix=dict(type="str", default="jellyfin-whitelist-"),
        placeholder=dict(type="str", default="0.0.0.0"),
    )
    if chain:
        spec.update(
            action=dict(type="str", default="ACCEPT", choices=["ACCEPT", "PASS"]),
            headers_mapping=dict(type="str", default="jellyfin-whitelist pangolin headers"),
            ipv6_prefix=dict(type="int", default=0),
            destination_group=dict(type="str"),
        )
    return spec, rules


def open_whitelist(module):
    """The shared options checked, then both clients and the resource's id.

    Nothing is sent before every shared option passed; naming the resource
    by name is the first request.
    """
    params = module.params
    inputs = dict(prefix=check_name(params["name_prefix"], "name_prefix"),
                  placeholder=check_placeholder(params["placeholder"]))
    if "headers_mapping" in params:
        inputs.update(headers_mapping=check_name(params["headers_mapping"], "headers_mapping"),
                      ipv6_prefix=check_ipv6_prefix(params["ipv6_prefix"]))
    pangolin = PangolinClient.from_module(module)
    authentik = AuthentikClient.from_module(module)
    inputs.update(pangolin=pangolin, authentik=authentik, resource_id=selected_resource_id(pangolin, params))
    return SimpleNamespace(**inputs)


def check_placeholder(value, option="placeholder"):
    error = rule_value_error("IP", value)
    if error:
        raise InputError("%s %r %s" % (option, value, error))
    return value


def check_priority_range(start, end):
    for option, value in (("priority_start", start), ("priority_end", end)):
        if isinstance(value, bool) or not isinstance(value, int) or not PRIORITY_MIN <= value <= PRIORITY_MAX:
            raise InputError("%s must be an integer, got %r" % (option, value))
    if start > end:
        raise InputError("priority_start %d is greater than priority_end %d" % (start, end))
    return start, end


__all__ = ["WhitelistPlan", "open_whitelist", "validate_users", "rule_id_in_url", "api_base", "check_placeholder",
           "check_priority_range", "whitelist_argument_spec", "ApiError"]
