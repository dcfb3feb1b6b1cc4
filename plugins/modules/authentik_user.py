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
  - homelab.pangolin_authentik.connection.AUTHENTIK
  - homelab.pangolin_authentik.connection.CHANGES
  - homelab.pangolin_authentik.connection.AUTHENTIK_GROUP
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
  initial_groups:
    description:
      - Names of groups the user joins only when this run creates the user; an existing user's membership of them is
        left as authentik has it. For a group whose membership authentik owns (a whitelist's
        C(users_from_group), from which an operator removes people in authentik's UI), so a run never adds back
        someone who was removed.
    type: list
    elements: str
    version_added: 0.5.0
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

- name: A user who joins the jellyfin group when created; later membership is authentik's
  homelab.pangolin_authentik.authentik_user:
    username: bob
    initial_groups: [jellyfin]
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
username:
  description: The username the task was about.
  returned: always
  type: str
  sample: alice
  version_added: 0.5.0
summary:
  description: What the run did (or would do, in check mode) to the user, in one line; a group the user was added
    back to is named.
  returned: always
  type: str
  sample: "user carol: would be updated, would be added back to 'admins'"
  version_added: 0.5.0
groups_added:
  description:
    - Groups the user joined in this run (or would join, in check mode), by name; on an existing user, a group
      listed in O(groups) that someone had removed the user from.
  returned: always
  type: list
  elements: str
  sample: [jellyfin]
  version_added: 0.5.0
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
    current = kind.find(desired)
    if params["state"] == "present":
        desired.update(given(name=params["name"], email=params["email"], is_active=params["is_active"],
                             path=params["path"]))
        groups = params["groups"]
        if current is None and params["initial_groups"]:
            groups = (groups or []) + [g for g in params["initial_groups"] if g not in (groups or [])]
        if groups is not None:
            desired["groups"] = [check_name(g, "groups") for g in groups]
            missing = [g for g in desired["groups"] if client.find_group(g) is None]
            # In check mode a group an earlier task would create does not exist yet.
            if missing and params["groups_mode"] != "remove" and not module.check_mode:
                raise InputError("groups: authentik has no group %s" % ", ".join(repr(g) for g in missing))
        if params["password"] is not None and not params["password"]:
            raise InputError("password must not be empty")
    outcome = reconciler.ensure(kind, desired, params["state"], current=current, lookup=False)
    password_set = False
    if params["state"] == "present" and params["password"]:
        password_set = outcome.operation == "create" or params["update_password"] == "always"
        if password_set and not module.check_mode:
            kind.set_password(outcome.after["pk"], params["password"], desired["username"])
    before = set((current or {}).get("groups") or [])
    added = sorted(set((outcome.after or {}).get("groups") or []) - before)
    result = single_result(reconciler, outcome, kind, password_set=password_set, username=desired["username"],
                           groups_added=added)
    result["changed"] = outcome.changed or password_set
    result["summary"] = summary_line(desired["username"], outcome.operation, added, module.check_mode)
    return result


def summary_line(username, operation, added, check_mode):
    """What the run did to the user, in one line; a group joined again is said out loud."""
    words = {"create": "created", "update": "updated", "delete": "deleted"}
    if operation is None and not added:
        return "user %s: unchanged" % username
    text = "user %s: %s%s" % (username, "would be " if check_mode else "", words.get(operation, "updated"))
    if added:
        joined = ", ".join(repr(g) for g in added)
        text += ", %s %s" % (("joins" if check_mode else "joined") if operation == "create" else
                             "would be added back to" if check_mode else "added back to", joined)
    return text


def main():
    argument_spec = authentik_argument_spec()
    argument_spec.update(
        username=dict(type="str", required=True),
        name=dict(type="str"),
        email=dict(type="str"),
        is_active=dict(type="bool"),
        path=dict(type="str"),
        groups=dict(type="list", elements="str"),
        initial_groups=dict(type="list", elements="str"),
        groups_mode=dict(type="str", default="add", choices=["add", "remove", "exact"]),
        password=dict(type="str", no_log=True),
        update_password=dict(type="str", default="on_create", choices=["on_create", "always"], no_log=False),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run(module, manage_user)


if __name__ == "__main__":
    main()
