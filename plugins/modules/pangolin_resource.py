#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: pangolin_resource
short_description: Manage the access settings of an existing Pangolin resource
version_added: 0.1.0
description:
  - Sets the access settings of an existing Pangolin resource through Pangolin's Integration API
    (C(POST /v1/resource/{id})).
  - Only the settings given are compared and sent; every other field of the resource is left as it is. A run that
    changes nothing sends no write.
  - Creating, renaming and deleting resources is out of scope; O(state) only accepts C(present), and the resource
    must already exist.
  - On Pangolin 1.19 and newer, O(apply_rules), O(sso) and O(email_whitelist_enabled) live on the resource's inline
    default policy; the values shown are the effective ones Pangolin returns for the resource.
  - The key needs the actions C(getResource) and C(updateResource), and C(listResources) when the resource is given
    by O(resource).
  - With O(resource_id) and O(org_id) both given, the module fails when the resource belongs to another organization.
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
  apply_rules:
    description:
      - Whether the resource's rules are evaluated. Rules (M(homelab.pangolin_authentik.pangolin_rule)) do nothing
        while this is off.
      - Only for C(http) resources.
    type: bool
  sso:
    description:
      - Whether visitors must authenticate (Pangolin's platform SSO) before reaching the resource.
      - Only for C(http) resources.
    type: bool
  block_access:
    description:
      - Whether every request to the resource is denied.
      - Only for C(http) resources.
    type: bool
  email_whitelist_enabled:
    description:
      - Whether the e-mail whitelist (one-time passcode by e-mail) is enabled.
      - Only for C(http) resources.
    type: bool
  enabled:
    description:
      - Whether the resource is enabled at all.
    type: bool
  state:
    description:
      - Only C(present) is supported; the module never creates or deletes a resource.
    type: str
    choices: [present]
    default: present
'''

EXAMPLES = r'''
- name: Evaluate the rules of the Jellyfin resource
  homelab.pangolin_authentik.pangolin_resource:
    pangolin_url: https://api.example.com
    pangolin_api_key: "{{ vault_pangolin_api_key }}"
    resource: jellyfin.example.com
    org_id: homelab
    apply_rules: true

- name: Keep SSO on and the resource enabled
  homelab.pangolin_authentik.pangolin_resource:
    resource_id: 3
    sso: true
    enabled: true
'''

RETURN = r'''
resource:
  description: The resource's settings after the run (predicted in check mode).
  returned: always
  type: dict
  contains:
    resource_id:
      description: Id of the resource.
      type: int
      sample: 3
    name:
      description: Name of the resource.
      type: str
      sample: Jellyfin
    full_domain:
      description: Full domain of the resource; null for non-http resources.
      type: str
      sample: jellyfin.example.com
    mode:
      description: Protocol mode of the resource (C(http), C(tcp), ...).
      type: str
      sample: http
    org_id:
      description: Organization of the resource.
      type: str
      sample: homelab
    apply_rules:
      description: Whether the rules are evaluated.
      type: bool
      sample: true
    sso:
      description: Whether platform SSO is required.
      type: bool
      sample: true
    block_access:
      description: Whether all access is denied.
      type: bool
      sample: false
    email_whitelist_enabled:
      description: Whether the e-mail whitelist is enabled.
      type: bool
      sample: false
    enabled:
      description: Whether the resource is enabled.
      type: bool
      sample: true
    resource_policy_id:
      description: The shared resource policy the resource is on (Pangolin 1.19+ Enterprise), or null.
      type: int
      sample: null
operation:
  description: What was done (or would be done in check mode); C(update) or null.
  returned: always
  type: str
  sample: update
msg:
  description: What was done, in one line.
  returned: always
  type: str
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
    RESOURCE_SETTINGS,
    ResourceSettingsKind,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.reconcile import given
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.inputs import InputError

# Settings Pangolin accepts only in the update body of http resources.
HTTP_ONLY = ("apply_rules", "sso", "block_access", "email_whitelist_enabled")


def manage_resource(module, reconciler):
    params = module.params
    if params["org_id"] is not None and not params["org_id"].strip():
        raise InputError("org_id must be a non-empty string")
    desired = given(**dict((opt, params[opt]) for opt in RESOURCE_SETTINGS))
    client = PangolinClient.from_module(module)
    resource_id = selected_resource_id(client, module.params)
    kind = ResourceSettingsKind(client, resource_id)
    current = kind.find(desired)
    if params["org_id"] is not None and current["org_id"] != params["org_id"]:
        raise InputError("resource_id %s belongs to org %r, not to org_id %r"
                         % (resource_id, current["org_id"], params["org_id"]))
    mode = current["mode"]
    http_only = [opt for opt in HTTP_ONLY if desired.get(opt) is not None]
    if mode and mode != "http" and http_only:
        raise InputError("resource %s (%s) is a %s resource: Pangolin accepts %s only on http resources"
                         % (resource_id, current["name"], mode, ", ".join(http_only)))
    policy_settings = [opt for opt in ("apply_rules", "sso", "email_whitelist_enabled") if opt in desired]
    if current.get("resource_policy_id") is not None and policy_settings:
        raise InputError("resource %s (%s) is on shared resource policy %s, which decides %s for it; change them in "
                         "that policy in Pangolin" % (resource_id, current["name"], current["resource_policy_id"],
                                                      ", ".join(policy_settings)))
    outcome = reconciler.ensure(kind, desired, "present", current=current, lookup=False)
    return single_result(reconciler, outcome, kind)


def main():
    argument_spec = pangolin_argument_spec()
    selector, selector_rules = resource_selector_spec()
    argument_spec.update(selector)
    argument_spec.update(
        apply_rules=dict(type="bool"),
        sso=dict(type="bool"),
        block_access=dict(type="bool"),
        email_whitelist_enabled=dict(type="bool"),
        enabled=dict(type="bool"),
        state=dict(type="str", default="present", choices=["present"]),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        **selector_rules
    )
    run(module, manage_resource)


if __name__ == "__main__":
    main()
