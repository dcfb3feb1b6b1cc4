#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: authentik_notification_rule
short_description: Manage an authentik notification rule with its policy and binding
version_added: 0.1.0
description:
  - Creates, updates or deletes a notification rule (C(/events/rules/)), found by O(name), together with the policy
    that decides when it fires and the binding of that policy to the rule.
  - The policy is one of
    an expression policy rendered from a username (O(login_of_user)) that matches a C(login) event of that user (the
    user's integer pk is looked up and written as a literal),
    an expression policy written by hand (O(policy_expression)),
    or an event matcher policy for an event action (O(event_action)), for example an email at each login.
    Existing policies can be bound too (O(policies)).
  - authentik never fires a rule without a bound policy or without a recipient; the module refuses to create such a
    silently useless rule.
  - Field names follow the server's version (C(group) before authentik 2025.8, C(destination_group) and
    C(destination_event_user) since).
author:
  - Pangolin Authentik Maintainers (@homelab-pangolin-authentik)
extends_documentation_fragment:
  - homelab.pangolin_authentik.connection
  - homelab.pangolin_authentik.connection.AUTHENTIK
  - homelab.pangolin_authentik.connection.CHANGES
  - homelab.pangolin_authentik.connection.AUTHENTIK_GROUP
  - ansible.builtin.action_common_attributes
options:
  name:
    description:
      - Name of the rule.
    type: str
    required: true
  transports:
    description:
      - Names of the transports the rule sends through. The list replaces the rule's transports.
    type: list
    elements: str
  severity:
    description:
      - Severity of the notifications.
    type: str
    choices: [notice, warning, alert]
    default: notice
  destination_event_user:
    description:
      - Send to the user of the event (the user who logged in). Needs authentik 2025.8 or newer.
    type: bool
    default: true
  destination_group:
    description:
      - Name of a group whose members receive the notifications.
    type: str
  login_of_user:
    description:
      - Manage an expression policy that matches a C(login) event of this authentik username.
      - Mutually exclusive with O(policy_expression) and O(event_action).
    type: str
  policy_expression:
    description:
      - Manage an expression policy with this Python body. authentik checks its syntax; so does the module, first.
    type: str
  event_action:
    description:
      - Manage an event matcher policy that matches events with this action, for example C(login).
    type: str
  policy_name:
    description:
      - Name of the managed policy. Defaults to O(name). Policy names are unique across all policy types.
    type: str
  policies:
    description:
      - Names of existing policies (of any type) to bind as well, after the managed one.
      - The rule's policy bindings are exactly the managed policy and these; other policies bound to the rule are
        unbound (user and group bindings are left alone).
    type: list
    elements: str
  state:
    description:
      - Whether the rule exists. C(absent) also deletes the managed policy named O(policy_name) (default O(name)).
    type: str
    choices: [present, absent]
    default: present
'''

EXAMPLES = r'''
- name: Fire alice's webhook at each of her logins
  homelab.pangolin_authentik.authentik_notification_rule:
    authentik_url: https://auth.example.com
    authentik_token: "{{ vault_authentik_token }}"
    name: jellyfin-whitelist-alice
    transports: [jellyfin-whitelist-alice]
    login_of_user: alice

- name: Email every user at each login
  homelab.pangolin_authentik.authentik_notification_rule:
    name: login-email
    transports: [login-email]
    event_action: login
    policy_name: login-events
'''

RETURN = r'''
notification_rule:
  description: The rule after the run (predicted in check mode; null when absent). Transports and group are pks.
  returned: always
  type: dict
  contains:
    pk:
      description: The rule's uuid (its policy binding target).
      type: str
    name:
      description: Name.
      type: str
    transports:
      description: pks of its transports.
      type: list
      elements: str
    severity:
      description: Severity.
      type: str
    destination_event_user:
      description: Whether the event user receives it.
      type: bool
    destination_group:
      description: pk of the destination group.
      type: str
policy:
  description: The managed policy after the run, when one is managed.
  returned: when a policy is managed
  type: dict
bindings:
  description: The bindings of the rule's policies after the run.
  returned: when state is present
  type: list
  elements: dict
operation:
  description: What was done to the rule itself - C(create), C(update), C(delete), or null.
  returned: always
  type: str
msg:
  description: What was done to the rule, in one line.
  returned: always
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.client import (
    AuthentikClient,
    authentik_argument_spec,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.objects import (
    BindingKind,
    EventMatcherPolicyKind,
    ExpressionPolicyKind,
    NotificationRuleKind,
    TransportKind,
    check_name,
    resolve_reference,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.module import run
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.inputs import InputError
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.render import (
    check_python,
    login_policy_expression,
)


def managed_policy(module, client):
    """(kind, desired) of the policy this module manages, or (None, None)."""
    params = module.params
    name = check_name(params["policy_name"] or params["name"], "policy_name")
    if params["login_of_user"] is not None:
        username = check_name(params["login_of_user"], "login_of_user")
        pk = client.user_pk(username, "login_of_user")
        return ExpressionPolicyKind(client), dict(name=name, expression=login_policy_expression(pk))
    if params["policy_expression"] is not None:
        return ExpressionPolicyKind(client), dict(name=name, expression=check_python(params["policy_expression"],
                                                                                     "policy_expression"))
    if params["event_action"] is not None:
        return EventMatcherPolicyKind(client), dict(name=name, action=check_name(params["event_action"],
                                                                                 "event_action"))
    return None, None


def absent(module, reconciler, client):
    params = module.params
    rule_kind = NotificationRuleKind(client)
    outcome = reconciler.ensure(rule_kind, dict(name=check_name(params["name"])), "absent")
    policy_name = check_name(params["policy_name"] or params["name"], "policy_name")
    for kind in (ExpressionPolicyKind(client), EventMatcherPolicyKind(client)):
        reconciler.ensure(kind, dict(name=policy_name), "absent")
    return dict(changed=reconciler.changed, operation=outcome.operation, notification_rule=None,
                msg="%s notification rule %r" % (outcome.operation or "unchanged:", params["name"]),
                diff=reconciler.diffs())


def present(module, reconciler, client):
    params = module.params
    name = check_name(params["name"])
    policy_kind, policy_desired = managed_policy(module, client)
    extra = [check_name(p, "policies") for p in params["policies"] or []]
    if policy_kind is None and not extra:
        raise InputError("notification rule %r would have no bound policy and would never fire: give login_of_user, "
                         "policy_expression, event_action or policies" % name)
    if not params["destination_event_user"] and not params["destination_group"]:
        raise InputError("notification rule %r would have no recipient and would never send anything: set "
                         "destination_event_user or destination_group" % name)
    transports = TransportKind(client)
    desired = dict(name=name, severity=params["severity"],
                   destination_event_user=params["destination_event_user"],
                   transports=[resolve_reference(transports, check_name(t, "transports"), "transports",
                                                 module.check_mode) for t in params["transports"] or []])
    if params["destination_group"]:
        group = client.find_group(check_name(params["destination_group"], "destination_group"))
        if group is None:
            raise InputError("destination_group: authentik has no group named %r" % params["destination_group"])
        desired["destination_group"] = group["pk"]
    bound = []  # (policy pk, policy name)
    for policy in extra:
        row = client.find_by("/policies/all/", "policy", "name", policy)
        if row is None:
            raise InputError("policies: authentik has no policy named %r" % policy)
        bound.append((row["pk"], policy))
    rule_kind = NotificationRuleKind(client)
    rule_kind.check_supported(desired)

    result = dict(changed=False)
    if policy_kind is not None:
        policy = reconciler.ensure(policy_kind, policy_desired)
        result["policy"] = reconciler.redact(policy_kind, policy.after)
        bound.insert(0, (policy.after["pk"], policy_desired["name"]))
    rule = reconciler.ensure(rule_kind, desired)
    result["notification_rule"] = reconciler.redact(rule_kind, rule.after)
    result["operation"] = rule.operation
    result["msg"] = "%s notification rule %r" % (rule.operation or "unchanged:", name)
    result["bindings"] = []
    for order, (policy_pk, policy_name) in enumerate(bound):
        kind = BindingKind(client, rule.after["pk"], policy_pk, policy_name, target_name=name)
        # In check mode a rule or policy not created yet has no binding either.
        exists = rule.after["pk"] is not None and policy_pk is not None
        binding = reconciler.ensure(kind, dict(order=order, enabled=True), lookup=exists)
        result["bindings"].append(binding.after)
    if rule.after["pk"] is not None:
        # The rule's bindings are what this task lists: a policy dropped from
        # the list must stop firing the rule.
        wanted = set(str(pk) for pk, _name in bound)
        for row in client.list("/policies/bindings/", "policy bindings", {"target": rule.after["pk"]}):
            policy = row.get("policy")
            if str(row.get("target")) == str(rule.after["pk"]) and policy and str(policy) not in wanted:
                kind = BindingKind(client, rule.after["pk"], policy, (row.get("policy_obj") or {}).get("name"),
                                   target_name=name)
                reconciler.ensure(kind, {}, "absent", current=BindingKind.view(row))
    result["changed"] = reconciler.changed
    result["diff"] = reconciler.diffs()
    return result


def manage_rule(module, reconciler):
    client = AuthentikClient.from_module(module)
    if module.params["state"] == "absent":
        return absent(module, reconciler, client)
    return present(module, reconciler, client)


def main():
    argument_spec = authentik_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True),
        transports=dict(type="list", elements="str"),
        severity=dict(type="str", default="notice", choices=["notice", "warning", "alert"]),
        destination_event_user=dict(type="bool", default=True),
        destination_group=dict(type="str"),
        login_of_user=dict(type="str"),
        policy_expression=dict(type="str"),
        event_action=dict(type="str"),
        policy_name=dict(type="str"),
        policies=dict(type="list", elements="str"),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[("login_of_user", "policy_expression", "event_action")],
        supports_check_mode=True,
    )
    run(module, manage_rule)


if __name__ == "__main__":
    main()
