#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: role_variables
short_description: Warn about unknown and deprecated variables of a role of this collection
version_added: 0.3.0
description:
  - Runs on the controller, inside a role of this collection. Every variable whose name starts with O(prefix) but is
    not an option of any entry point in the role's C(meta/argument_specs.yml) gets a warning (a typo in the inventory
    is otherwise silently ignored).
  - Every variable named in O(deprecated) that the play defines gets a deprecation warning naming its replacement.
  - Changes nothing.
author:
  - Pangolin Authentik Maintainers (@homelab-pangolin-authentik)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.conn
  - ansible.builtin.action_common_attributes.flow
attributes:
  action:
    support: full
  async:
    support: none
  become:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
    description: It only reads the play's variables.
  connection:
    support: none
  delegation:
    support: none
  diff_mode:
    support: none
  platform:
    platforms: all
options:
  prefix:
    description:
      - Prefix of the role's variables, for example C(jellyfin_whitelist_).
    type: str
    required: true
  deprecated:
    description:
      - Deprecated variable names, each mapped to the name that replaces it.
    type: dict
    default: {}
  removed_in:
    description:
      - Version of the collection that stops reading the deprecated names.
    type: str
    default: 1.0.0
'''

EXAMPLES = r'''
- name: Check the role's variables
  homelab.pangolin_authentik.role_variables:
    prefix: jellyfin_whitelist_
    deprecated:
      pangolin_url: jellyfin_whitelist_pangolin_url
'''

RETURN = r'''
unknown:
  description: Variables with the prefix that the role does not know.
  returned: always
  type: list
  elements: str
deprecated:
  description: Deprecated variables the play defines.
  returned: always
  type: list
  elements: str
takes_over:
  description: New variable names that are unset, each mapped to the deprecated name whose value it should take.
  returned: always
  type: dict
  sample: {"jellyfin_whitelist_pangolin_url": "pangolin_url"}
'''

from ansible.module_utils.basic import AnsibleModule


def main():
    # The action plugin does the work; this is what ansible-doc and sanity tests read.
    module = AnsibleModule(argument_spec=dict(prefix=dict(type="str", required=True),
                                              deprecated=dict(type="dict", default={}),
                                              removed_in=dict(type="str", default="1.0.0")),
                           supports_check_mode=True)
    module.fail_json(msg="role_variables is an action plugin: it runs on the controller, inside a role")


if __name__ == "__main__":
    main()
