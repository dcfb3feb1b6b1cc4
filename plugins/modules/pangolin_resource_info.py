#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: pangolin_resource_info
short_description: List the resources of a Pangolin organization with their access settings and rules
version_added: 0.1.0
description:
  - Reads the resources of one organization through Pangolin's Integration API, with the settings that decide who
    gets in (C(applyRules), SSO, ...) and, optionally, their rules.
  - Pangolin's resource list does not carry C(applyRules); the module reads each selected resource once more for it.
    Resources filtered out by O(name) or O(resource_id) cost no request of their own.
  - The key needs the actions C(listResources) and C(getResource), C(listResourceRules) with O(include_rules=true),
    and C(getOrg) to tell an unknown organization from an empty one.
author:
  - Pangolin Authentik Maintainers (@homelab-pangolin-authentik)
extends_documentation_fragment:
  - homelab.pangolin_authentik.connection
  - homelab.pangolin_authentik.connection.PANGOLIN
  - homelab.pangolin_authentik.connection.READS
  - homelab.pangolin_authentik.connection.PANGOLIN_GROUP
  - ansible.builtin.action_common_attributes
options:
  org_id:
    description:
      - Organization whose resources are listed. The module fails when Pangolin has no such organization.
    type: str
    required: true
  name:
    description:
      - Only the resource whose name, nice id or full domain is exactly this (full domains compare case-insensitively).
    type: str
  resource_id:
    description:
      - Only the resource with this id. It is read directly, without listing the organization.
    type: int
  query:
    description:
      - Server-side filter passed to Pangolin's resource list; Pangolin keeps the resources whose name contains it,
        ignoring case.
    type: str
  include_rules:
    description:
      - Also read the rules of each selected resource.
    type: bool
    default: true
'''

EXAMPLES = r'''
- name: Read every resource of the homelab organization with its rules
  homelab.pangolin_authentik.pangolin_resource_info:
    pangolin_url: https://api.example.com
    pangolin_api_key: "{{ vault_pangolin_api_key }}"
    org_id: homelab
  register: pangolin

- name: Read one resource by its full domain, without rules
  homelab.pangolin_authentik.pangolin_resource_info:
    org_id: homelab
    name: jellyfin.example.com
    include_rules: false
  register: jellyfin

- name: Fail when the rules of Jellyfin are not evaluated
  ansible.builtin.assert:
    that: jellyfin.resources | map(attribute='apply_rules') | list == [true]
'''

RETURN = r'''
resources:
  description: The selected resources, in the order Pangolin lists them.
  returned: always
  type: list
  elements: dict
  contains:
    resource_id:
      description: Id of the resource.
      type: int
      sample: 3
    name:
      description: Name of the resource.
      type: str
      sample: Jellyfin
    nice_id:
      description: Nice id of the resource (its short name in URLs).
      type: str
      sample: jellyfin
    full_domain:
      description: Full domain of the resource; null for non-http resources.
      type: str
      sample: jellyfin.example.com
    org_id:
      description: Organization of the resource.
      type: str
      sample: homelab
    mode:
      description: Kind of resource, for example C(http), C(tcp) or C(udp).
      type: str
      sample: http
    enabled:
      description: Whether the resource is enabled.
      type: bool
      sample: true
    resource_policy_id:
      description: The shared resource policy the resource is on (Pangolin 1.19+ Enterprise), or null.
      type: int
      sample: null
    apply_rules:
      description: Whether the resource's rules are evaluated.
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
    rules:
      description: The resource's rules, by ascending priority.
      returned: when O(include_rules=true)
      type: list
      elements: dict
      contains:
        rule_id:
          description: Id of the rule.
          type: int
          sample: 17
        action:
          description: C(ACCEPT), C(DROP) or C(PASS).
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
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.client import ApiError
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.module import run
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._pangolin.client import (
    PangolinClient,
    pangolin_argument_spec,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._pangolin.objects import (
    ResourceSettingsKind,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.inputs import InputError


def name_matches(row, name):
    if name is None:
        return True
    domain = row.get("fullDomain") or ""
    return name in (row.get("name"), row.get("niceId"), domain) or domain.lower() == name.lower()


def query_matches(row, query):
    # What Pangolin's list does with ``query``, for a resource read by id.
    return not query or query.lower() in (row.get("name") or "").lower()


def resource_view(detail, include_rules, client):
    view = ResourceSettingsKind.view(detail)
    view.update(nice_id=detail.get("niceId"), mode=detail.get("mode"))
    if include_rules:
        view["rules"] = sorted(client.list_rules(detail["resourceId"]),
                               key=lambda r: (r["priority"], r["rule_id"]))
    return view


def read_resource(client, resource_id):
    """The full resource, or None when it does not exist (any more)."""
    try:
        return client.get_resource(resource_id)
    except ApiError as exc:
        if exc.status == 404 and isinstance(exc.body, dict):  # not an HTML page: Pangolin's own 404
            return None
        raise


def check_org(client, org_id):
    """An unknown organization is an error, not an empty list."""
    try:
        client.get_org(org_id)
    except ApiError as exc:
        if exc.status == 404 and isinstance(exc.body, dict):
            raise InputError("org_id %r: Pangolin has no such organization" % org_id)
        raise


def list_resources(module, reconciler):
    params = module.params
    org_id = params["org_id"]
    if not org_id or not org_id.strip():
        raise InputError("org_id must be a non-empty string")
    name = params["name"]
    if name is not None:
        name = name.strip()
        if not name:
            raise InputError("name must be a non-empty name, nice id or full domain")
    if params["resource_id"] is not None and params["resource_id"] <= 0:
        raise InputError("resource_id must be a positive integer, got %d" % params["resource_id"])
    client = PangolinClient.from_module(module)

    if params["resource_id"] is not None:
        detail = read_resource(client, params["resource_id"])
        selected = [detail] if detail is not None and detail.get("orgId") == org_id else []
        selected = [d for d in selected if name_matches(d, name) and query_matches(d, params["query"])]
    else:
        rows = [r for r in client.list_resources(org_id, params["query"]) if name_matches(r, name)]
        selected = [d for d in (read_resource(client, r["resourceId"]) for r in rows) if d is not None]
    if not selected:
        check_org(client, org_id)
    resources = [resource_view(detail, params["include_rules"], client) for detail in selected]
    return dict(changed=False, resources=resources)


def main():
    argument_spec = pangolin_argument_spec()
    argument_spec.update(
        org_id=dict(type="str", required=True),
        name=dict(type="str"),
        resource_id=dict(type="int"),
        query=dict(type="str"),
        include_rules=dict(type="bool", default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run(module, list_resources)


if __name__ == "__main__":
    main()
