#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: authentik_webhook_mapping
short_description: Manage an authentik notification webhook mapping
version_added: 0.1.0
description:
  - Creates, updates or deletes a webhook property mapping (C(/propertymappings/notification/)), found by O(name).
  - The expression is either given as is (O(expression)) or rendered from typed options (O(template)), with every
    value written as a Python literal, so no key or value can change what the expression does.
  - C(template=pangolin_headers) renders the headers mapping that sends Pangolin's bearer key with each webhook. The key
    is never shown; the mapping's expression is redacted in results and diffs, while a changed key is still detected
    and rewritten.
  - C(template=pangolin_rule_body) renders the body of a Pangolin rule update whose value is the client IP of the
    login event (or O(placeholder) when the event has none, or its address cannot be a device's - loopback,
    unspecified, link-local, multicast, reserved - or is private and not in O(private_networks)).
  - authentik does not check webhook mappings when they are saved; a broken one would only fail at the next login.
    This module refuses any expression that is not valid Python before writing.
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
      - Name of the mapping. Names are unique across all of authentik's property mapping types.
    type: str
    required: true
  expression:
    description:
      - The Python function body authentik runs; it must C(return) the body (or headers) to send.
      - Mutually exclusive with O(template). Required with O(state=present) when O(template) is not set.
    type: str
  template:
    description:
      - Render the expression instead of giving it.
    type: str
    choices: [pangolin_headers, pangolin_rule_body]
  webhook_api_key:
    description:
      - With O(template=pangolin_headers), the Pangolin API key (C(<id>.<secret>)) authentik sends. A key limited to
        the C(updateResourceRule) action is enough.
    type: str
  priority:
    description:
      - With O(template=pangolin_rule_body), the priority of the rule the webhook updates; Pangolin requires it in
        every update.
    type: int
  action:
    description:
      - With O(template=pangolin_rule_body), the rule's action.
    type: str
    choices: [ACCEPT, DROP, PASS]
    default: ACCEPT
  placeholder:
    description:
      - With O(template=pangolin_rule_body), the IP written when the event carries no client IP that may become a
        rule.
    type: str
    default: 0.0.0.0
  private_networks:
    description:
      - With O(template=pangolin_rule_body), private networks (RFC 1918, 100.64.0.0/10, fc00::/7, in CIDR form)
        whose addresses may become the rule's value, for a Pangolin that sees clients on your own network
        directly. Any other private address writes the placeholder.
    type: list
    elements: str
    default: []
    version_added: 0.5.0
  state:
    description:
      - Whether the mapping exists.
    type: str
    choices: [present, absent]
    default: present
'''

EXAMPLES = r'''
- name: Headers mapping carrying Pangolin's key
  homelab.pangolin_authentik.authentik_webhook_mapping:
    authentik_url: https://auth.example.com
    authentik_token: "{{ vault_authentik_token }}"
    name: pangolin-headers
    template: pangolin_headers
    webhook_api_key: "{{ vault_pangolin_rule_key }}"

- name: Body mapping for alice's rule at priority 100
  homelab.pangolin_authentik.authentik_webhook_mapping:
    name: jellyfin-whitelist-alice
    template: pangolin_rule_body
    priority: 100

- name: A mapping written by hand
  homelab.pangolin_authentik.authentik_webhook_mapping:
    name: slack-body
    expression: |
      return {"text": notification.body}
'''

RETURN = r'''
mapping:
  description: The mapping after the run (predicted in check mode; null when absent). A headers mapping's expression is
    redacted.
  returned: always
  type: dict
  contains:
    pk:
      description: The mapping's uuid; null in check mode before creation.
      type: str
    name:
      description: Name.
      type: str
    expression:
      description: Expression (redacted when it embeds a key).
      type: str
operation:
  description:
    - What was done (or would be done in check mode) - C(create), C(update) or C(delete); null when nothing changed.
  returned: always
  type: str
  sample: update
msg:
  description: What was done, in one line.
  returned: always
  type: str
  sample: "update the object"
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.client import (
    AuthentikClient,
    authentik_argument_spec,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.objects import (
    WebhookMappingKind,
    check_name,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.module import run, single_result
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._pangolin.objects import validate_rule
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.inputs import InputError
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.render import check_python
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.webhook_key import (
    headers_mapping_expression,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.secrets import split_key
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._pangolin.values import ACTIONS
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.body import event_body_expression
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.holdings import PLACEHOLDER
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.options import (
    check_placeholder,
    check_private_networks,
)


def desired_expression(params):
    template = params["template"]
    if template == "pangolin_headers":
        key = params["webhook_api_key"]
        if split_key(key) is None:
            raise InputError("webhook_api_key must be a Pangolin API key of the form <key id>.<secret>")
        return headers_mapping_expression(key)
    if template == "pangolin_rule_body":
        if params["priority"] is None:
            raise InputError("priority is required with template pangolin_rule_body")
        validate_rule(dict(priority=params["priority"], action=params["action"], match="IP", value=PLACEHOLDER))
        placeholder = check_placeholder(params["placeholder"], params["action"])
        return event_body_expression(params["priority"], params["action"], placeholder,
                                     private_networks=check_private_networks(params["private_networks"]))
    if params["expression"] is None:
        raise InputError("expression (or template) is required when state is present")
    return check_python(params["expression"], "expression")


def manage_mapping(module, reconciler):
    params = module.params
    desired = dict(name=check_name(params["name"]))
    reconciler.secrets.add_credentials(params["expression"])  # a hand-written headers mapping's token
    if params["state"] == "present":
        desired["expression"] = desired_expression(params)
    kind = WebhookMappingKind(AuthentikClient.from_module(module), secret=params["template"] == "pangolin_headers")
    outcome = reconciler.ensure(kind, desired, params["state"])
    return single_result(reconciler, outcome, kind)


def main():
    argument_spec = authentik_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True),
        expression=dict(type="str"),
        template=dict(type="str", choices=["pangolin_headers", "pangolin_rule_body"]),
        webhook_api_key=dict(type="str", no_log=True),
        priority=dict(type="int"),
        action=dict(type="str", default="ACCEPT", choices=list(ACTIONS)),
        placeholder=dict(type="str", default=PLACEHOLDER),
        private_networks=dict(type="list", elements="str", default=[]),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[("expression", "template")],
        supports_check_mode=True,
    )
    run(module, manage_mapping)


if __name__ == "__main__":
    main()
