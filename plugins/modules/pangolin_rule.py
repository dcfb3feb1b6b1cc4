#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: pangolin_rule
short_description: Manage one rule of a Pangolin resource
version_added: 0.1.0
description:
  - Creates, updates or deletes one access rule of a Pangolin resource through Pangolin's Integration API.
  - A rule is identified by its resource and its O(priority); Pangolin does not enforce unique priorities, so the
    module refuses to act when two rules of the resource share the priority and names both rule ids.
  - With O(webhook_owned=true) the rule's match and value belong to someone else (authentik rewrites them with the
    client IP at each login, as an C(IP), or as a C(CIDR) prefix for IPv6 logins); O(match) and O(value) only seed the
    rule when it is created, and an existing rule's match and value are never compared, changed or reverted.
  - Deletes only touch rule ids read from the resource's own rule list (Pangolin would delete another resource's
    rule if asked).
  - Rules are only evaluated when the resource has C(applyRules) on;
    see M(homelab.pangolin_authentik.pangolin_resource).
author:
  - Pangolin Authentik Maintainers (@homelab-pangolin-authentik)
extends_documentation_fragment:
  - homelab.pangolin_authentik.connection
  - homelab.pangolin_authentik.connection.PANGOLIN
  - homelab.pangolin_authentik.connection.RESOURCE
  - homelab.pangolin_authentik.connection.CHANGES
  - homelab.pangolin_authentik.connection.PANGOLIN_GROUP
  - ansible.builtin.action_common_attributes
options:
  priority:
    description:
      - Priority of the rule; lower priorities are evaluated first. Identifies the rule on its resource.
    type: int
    required: true
  action:
    description:
      - What a match does. C(ACCEPT) lets the request through without authentication, C(DROP) denies it, C(PASS)
        continues to the normal authentication.
    type: str
    choices: [ACCEPT, DROP, PASS]
    default: ACCEPT
  match:
    description:
      - What the rule matches on. C(COUNTRY_IS_NOT) needs Pangolin 1.22, C(REGION) 1.18, C(ASN) 1.14.
    type: str
    choices: [CIDR, IP, PATH, COUNTRY, COUNTRY_IS_NOT, ASN, REGION]
    default: IP
  value:
    description:
      - The value matched, checked as Pangolin does before anything is sent. C(IP) needs an IPv4 or IPv6 address,
        C(CIDR) a network such as C(192.168.1.0/24), C(PATH) a URL glob such as C(/api/*), C(COUNTRY) and
        C(COUNTRY_IS_NOT) an upper-case ISO 3166 code or C(ALL), C(ASN) C(AS<number>) or C(ALL), C(REGION) a UN
        M.49 id such as C(150).
      - Required when O(state=present). With O(webhook_owned=true) it defaults to C(0.0.0.0), an address no client has.
    type: str
  enabled:
    description:
      - Whether the rule is evaluated.
    type: bool
    default: true
  webhook_owned:
    description:
      - The rule's match and value are written by a webhook (authentik's login notification); O(match) and O(value)
        are only used to create the rule and an existing rule's match and value are never changed.
    type: bool
    default: false
  state:
    description:
      - C(present) makes sure the rule exists as described, C(absent) deletes the rule at O(priority).
    type: str
    choices: [present, absent]
    default: present
'''

EXAMPLES = r'''
- name: Reserve the rule that authentik rewrites with alice's login IP
  homelab.pangolin_authentik.pangolin_rule:
    pangolin_url: https://api.example.com
    pangolin_api_key: "{{ vault_pangolin_api_key }}"
    resource: jellyfin.example.com
    org_id: homelab
    priority: 100
    action: ACCEPT
    match: IP
    webhook_owned: true

- name: Let the home network in without SSO
  homelab.pangolin_authentik.pangolin_rule:
    resource_id: 3
    priority: 10
    action: ACCEPT
    match: CIDR
    value: 192.168.1.0/24

- name: Remove a rule
  homelab.pangolin_authentik.pangolin_rule:
    resource_id: 3
    priority: 10
    state: absent
'''

RETURN = r'''
rule:
  description: The rule after the run (its predicted state in check mode; null when absent).
  returned: always
  type: dict
  contains:
    rule_id:
      description: Id of the rule; null in check mode before it is created.
      type: int
      sample: 17
    action:
      description: Action of the rule.
      type: str
      sample: ACCEPT
    match:
      description: Match type.
      type: str
      sample: IP
    value:
      description: Matched value.
      type: str
      sample: 203.0.113.7
    priority:
      description: Priority.
      type: int
      sample: 100
    enabled:
      description: Whether the rule is evaluated.
      type: bool
      sample: true
resource_id:
  description: Id of the resource the rule belongs to.
  returned: always
  type: int
  sample: 3
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

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.module import run, single_result
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._pangolin.client import (
    PangolinClient,
    pangolin_argument_spec,
    resource_selector_spec,
    selected_resource_id,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._pangolin.objects import (
    RuleKind,
    validate_rule,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.reconcile import given
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.inputs import InputError
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._pangolin.values import ACTIONS, MATCHES
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.holdings import PLACEHOLDER


def manage_rule(module, reconciler):
    params = module.params
    value = params["value"]
    if value is None and params["webhook_owned"]:
        value = PLACEHOLDER
    if params["state"] == "present" and value is None:
        raise InputError("value is required when state is present (unless webhook_owned is true)")
    desired = validate_rule(given(priority=params["priority"], action=params["action"], match=params["match"],
                                  value=value, enabled=params["enabled"]), params["state"])
    client = PangolinClient.from_module(module)
    resource_id = selected_resource_id(client, module.params)
    kind = RuleKind(client, resource_id, webhook_owned=params["webhook_owned"])
    outcome = reconciler.ensure(kind, desired, params["state"])
    return single_result(reconciler, outcome, kind, resource_id=resource_id)


def main():
    argument_spec = pangolin_argument_spec()
    selector, selector_rules = resource_selector_spec()
    argument_spec.update(selector)
    argument_spec.update(
        priority=dict(type="int", required=True),
        action=dict(type="str", default="ACCEPT", choices=list(ACTIONS)),
        match=dict(type="str", default="IP", choices=list(MATCHES)),
        value=dict(type="str"),
        enabled=dict(type="bool", default=True),
        webhook_owned=dict(type="bool", default=False),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        **selector_rules
    )
    run(module, manage_rule)


if __name__ == "__main__":
    main()
