#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: authentik_user_info
short_description: Look up authentik users
version_added: 0.1.0
description:
  - Returns authentik users with their integer pk (what login events and policies refer to), username, name, email,
    activity and group names.
  - Usernames are matched exactly (authentik's C(username) filter, re-checked client-side).
author:
  - Pangolin Authentik Maintainers (@homelab-pangolin-authentik)
extends_documentation_fragment:
  - homelab.pangolin_authentik.connection
  - homelab.pangolin_authentik.connection.AUTHENTIK
  - homelab.pangolin_authentik.connection.READS
  - homelab.pangolin_authentik.connection.AUTHENTIK_GROUP
  - ansible.builtin.action_common_attributes
options:
  usernames:
    description:
      - Usernames to look up. Without it, every user is returned.
    type: list
    elements: str
  fail_on_missing:
    description:
      - Fail, naming them, when some of O(usernames) do not exist.
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: Resolve alice and bob
  homelab.pangolin_authentik.authentik_user_info:
    authentik_url: https://auth.example.com
    authentik_token: "{{ vault_authentik_token }}"
    usernames: [alice, bob]
  register: found

- name: Show alice's pk
  ansible.builtin.debug:
    msg: "{{ (found.users | selectattr('username', 'equalto', 'alice') | first).pk }}"
'''

RETURN = r'''
users:
  description: The users found, sorted by username.
  returned: always
  type: list
  elements: dict
  contains:
    pk:
      description: Integer pk.
      type: int
    username:
      description: Username.
      type: str
    name:
      description: Display name.
      type: str
    email:
      description: Email.
      type: str
    is_active:
      description: Whether the user may log in.
      type: bool
    path:
      description: The user's path (its folder in authentik's directory).
      type: str
    groups:
      description: Names of the user's groups.
      type: list
      elements: str
missing:
  description: Usernames asked for that do not exist.
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.client import (
    AuthentikClient,
    authentik_argument_spec,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.directory import UserKind
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.objects import check_name
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.module import run
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.inputs import InputError


def read_users(module, reconciler):
    client = AuthentikClient.from_module(module)
    kind = UserKind(client)
    wanted = module.params["usernames"]
    if wanted is None:
        rows = client.list("/core/users/", "users")
        missing = []
    else:
        wanted = [check_name(u, "usernames") for u in wanted]
        found = client.users_by_username(wanted)
        rows = list(found.values())
        missing = [u for u in wanted if u not in found]
    if missing and module.params["fail_on_missing"]:
        raise InputError("usernames: authentik has no user %s" % ", ".join(repr(u) for u in missing))
    users = sorted((kind.view(row) for row in rows), key=lambda u: u["username"])
    return dict(changed=False, users=users, missing=missing)


def main():
    argument_spec = authentik_argument_spec()
    argument_spec.update(
        usernames=dict(type="list", elements="str"),
        fail_on_missing=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run(module, read_users)


if __name__ == "__main__":
    main()
