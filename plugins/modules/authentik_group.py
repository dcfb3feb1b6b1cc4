#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: authentik_group
short_description: Manage an authentik group
version_added: 0.1.0
description:
  - Creates, updates or deletes an authentik group (C(/core/groups/)), found by O(name).
  - Members are not managed here (a group update that omitted them would wipe them); add users to groups with
    M(homelab.pangolin_authentik.authentik_user).
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
      - Name of the group, for example C(jellyfin).
    type: str
    required: true
  attributes:
    description:
      - Attributes of the group. When given, they replace the group's attributes.
    type: dict
  state:
    description:
      - Whether the group exists.
    type: str
    choices: [present, absent]
    default: present
'''

EXAMPLES = r'''
- name: The group whose members may use Jellyfin
  homelab.pangolin_authentik.authentik_group:
    authentik_url: https://auth.example.com
    authentik_token: "{{ vault_authentik_token }}"
    name: jellyfin
'''

RETURN = r'''
summary:
  description: What the run did (or would do, in check mode) to the group, in one line.
  returned: always
  type: str
  sample: "group jellyfin: would be created"
  version_added: 0.5.0
group:
  description: The group after the run (predicted in check mode; null when absent).
  returned: always
  type: dict
  contains:
    pk:
      description: The group's uuid.
      type: str
    name:
      description: Name.
      type: str
    attributes:
      description: Attributes.
      type: dict
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
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.directory import GroupKind
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.objects import check_name
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.module import run, single_result


def manage_group(module, reconciler):
    params = module.params
    desired = dict(name=check_name(params["name"]))
    if params["state"] == "present" and params["attributes"] is not None:
        desired["attributes"] = params["attributes"]
    kind = GroupKind(AuthentikClient.from_module(module))
    outcome = reconciler.ensure(kind, desired, params["state"])
    words = {"create": "created", "update": "updated", "delete": "deleted"}
    summary = "group %s: %s" % (desired["name"], "unchanged" if outcome.operation is None else "%s%s" % (
        "would be " if module.check_mode else "", words[outcome.operation]))
    return single_result(reconciler, outcome, kind, summary=summary)


def main():
    argument_spec = authentik_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True),
        attributes=dict(type="dict"),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run(module, manage_group)


if __name__ == "__main__":
    main()
