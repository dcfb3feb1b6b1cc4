#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: authentik_user
short_description: Manage an authentik user, its group memberships and its password
version_added: 0.1.0
description:
  - Creates, updates or deletes an authentik user (C(/core/users/)), found by O(username).
  - Group membership is changed one group at a time (C(add_user)/C(remove_user)), so the module can add or remove the
    listed groups without owning the user's whole membership. Users are only ever updated with PATCH; a PUT would
    wipe the groups it omits.
  - The password is set through C(set_password) when the user is created, or at every run with
    O(update_password=always) (which then always reports a change).
author:
  - Pangolin Authentik Maintainers (@homelab-pangolin-authentik)
extends_documentation_fragment:
  - homelab.pangolin_authentik.connection
  - homelab.pangolin_authentik.authentik
  - homelab.pangolin_authentik.attributes
  - homelab.pangolin_authentik.attributes.AUTHENTIK_GROUP
  - ansible.builtin.action_common_attributes
options:
  username:
    description:
      - The username (unique, at most 150 characters).
    type: str
    required: true
  name:
    description:
      - Display name.
    type: str
  email:
    description:
      - Email address.
    type: str
  is_active:
    description:
      - Whether the user may log in.
    type: bool
  path:
    description:
      - Path of the user in authentik's directory, for example C(users).
    type: str
  groups:
    description:
      - Names of groups; what happens with them is set by O(groups_mode).
    type: list
    elements: str
  groups_mode:
    description:
      - C(add) makes the user a member of O(groups) and leaves other memberships alone, C(remove) removes the user from
        O(groups), C(exact) makes O(groups) the user's whole membership.
    type: str
    choices: [add, remove, exact]
    default: add
  password:
    description:
      - Password to set. Never shown in any output.
    type: str
  update_password:
    description:
      - C(on_create) sets O(password) only when the user is created; C(always) sets it at every run.
    type: str
    choices: [on_create, always]
    default: on_create
  state:
    description:
      - Whether the user exists.
    type: str
    choices: [present, absent]
    default: present
'''

EXAMPLES = r'''
- name: A Jellyfin user, in the jellyfin group
  homelab.pangolin_authentik.authentik_user:
    authentik_url: https://auth.example.com
    authentik_token: "{{ vault_authentik_token }}"
    username: alice
    name: Alice
    email: alice@example.com
    groups: [jellyfin]
    password: "{{ vault_alice_password }}"
'''

RETURN = r'''
user:
  description: The user after the run (predicted in check mode; null when absent).
  returned: always
  type: dict
  contains:
    pk:
      description: The user's integer pk (the C(user.pk) of its events).
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
password_set:
  description: Whether the password was (or would be) set.
  returned: always
  type: bool
operation:
  description: What was done to the user (or would be done in check mode) - C(create), C(update), C(delete), or null.
  returned: always
  type: str
msg:
  description: What was done, in one line.
  returned: always
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.client import (
    AuthentikClient,
    authentik_argument_spec,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.directory import UserKind
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.objects import check_name
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.module import run, single_result
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.reconcile import given
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.inputs import InputError


def manage_user(module, reconciler):
    params = module.params
    desired = dict(username=check_name(params["username"], "username"))
    client = AuthentikClient.from_module(module)
    kind = UserKind(client, groups_mode=params["groups_mode"])
    if params["state"] == "present":
        desired.update(given(name=params["name"], email=params["email"], is_active=params["is_active"],
                             path=params["path"]))
        if params["groups"] is not None:
            desired["groups"] = [check_name(g, "groups") for g in params["groups"]]
            missing = [g for g in desired["groups"] if client.find_group(g) is None]
            # In check mode a group an earlier task would create does not exist yet.
            if missing and params["groups_mode"] != "remove" and not module.check_mode:
                raise InputError("groups: authentik has no group %s" % ", ".join(repr(g) for g in missing))
        if params["password"] is not None and not params["password"]:
            raise InputError("password must not be empty")
    outcome = reconciler.ensure(kind, desired, params["state"])
    password_set = False
    if params["state"] == "present" and params["password"]:
        password_set = outcome.operation == "create" or params["update_password"] == "always"
        if password_set and not module.check_mode:
            kind.set_password(outcome.after["pk"], params["password"], desired["username"])
    result = single_result(reconciler, outcome, kind, password_set=password_set)
    result["changed"] = outcome.changed or password_set
    return result


def main():
    argument_spec = authentik_argument_spec()
    argument_spec.update(
        username=dict(type="str", required=True),
        name=dict(type="str"),
        email=dict(type="str"),
        is_active=dict(type="bool"),
        path=dict(type="str"),
        groups=dict(type="list", elements="str"),
        groups_mode=dict(type="str", default="add", choices=["add", "remove", "exact"]),
        password=dict(type="str", no_log=True),
        update_password=dict(type="str", default="on_create", choices=["on_create", "always"], no_log=False),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run(module, manage_user)


if __name__ == "__main__":
    main()
