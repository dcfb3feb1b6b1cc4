#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: login_ip_whitelist_expire
short_description: Stop whitelisting the IPs of users who have not logged in for a while
version_added: 0.2.0
description:
  - Resets the rule of every present user of O(users) whose newest authentik login is older than O(expire_days)
    to O(placeholder) (match C(IP)), so the address that login whitelisted no longer gets through. The user's next
    login whitelists them again through the unchanged chain.
  - Only rules the whitelist owns are touched, the rule each user's own transport (named O(name_prefix) followed by
    the username) updates. A user whose rule already holds the placeholder costs no request of its own.
  - With O(expire_users) only those users are considered, and they are reset whatever their last login (a revoke
    now).
  - A user with no login event (authentik's events expire) but a whitelisted address counts as stale.
  - Each user's newest login is read right before their rule is written, so a login earlier in the run keeps the
    user whitelisted. Only a login whose webhook lands in the instant between that read and the write can be
    undone; the user's next login whitelists them again.
author:
  - homelab.pangolin_authentik contributors (!UNKNOWN)
extends_documentation_fragment:
  - homelab.pangolin_authentik.connection
  - homelab.pangolin_authentik.pangolin
  - homelab.pangolin_authentik.resource
  - homelab.pangolin_authentik.authentik
  - homelab.pangolin_authentik.whitelist
  - homelab.pangolin_authentik.attributes
  - ansible.builtin.action_common_attributes
options:
  expire_days:
    description:
      - Reset users whose newest login is older than this many days.
    type: int
    default: 30
  expire_users:
    description:
      - Only these usernames, reset now whatever their last login. Each must be a present user of O(users).
    type: list
    elements: str
'''

EXAMPLES = r'''
- name: Stop whitelisting users who have not logged in for 30 days
  homelab.pangolin_authentik.login_ip_whitelist_expire:
    resource: jellyfin.example.com
    org_id: homelab
    users: "{{ jellyfin_whitelist_users }}"
    expire_days: 30

- name: Revoke bob's whitelisted address now
  homelab.pangolin_authentik.login_ip_whitelist_expire:
    resource: jellyfin.example.com
    org_id: homelab
    users: "{{ jellyfin_whitelist_users }}"
    expire_users: [bob]
'''

RETURN = r'''
users:
  description: One entry per user considered.
  returned: always
  type: list
  elements: dict
  contains:
    username:
      description: authentik username.
      type: str
    rule_id:
      description: Id of the user's rule (null when the whitelist owns none).
      type: int
    whitelisted:
      description: What the rule let through before this run.
      type: str
    last_login:
      description: Time of the newest login authentik recorded (null when none was read or recorded).
      type: str
    expired:
      description: Whether the rule was (or in check mode would be) reset.
      type: bool
    reason:
      description: Why the user was or was not reset.
      type: str
resource_id:
  description: Id of the Pangolin resource.
  returned: always
  type: int
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.authentik_objects import check_name
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.expire import WhitelistExpiry
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.module_runner import run
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.whitelist import (
    Whitelist,
    open_whitelist,
    whitelist_argument_spec,
)


def expire(module, reconciler):
    params = module.params
    expire_users = params["expire_users"]
    if expire_users is not None:
        expire_users = [check_name(u, "expire_users") for u in expire_users]
    w = open_whitelist(module)
    whitelist = Whitelist(w.pangolin, w.authentik, w.deployment, params["users"], w.settings)
    users = WhitelistExpiry(whitelist, expire_users).apply(reconciler)
    expired = [u["username"] for u in users if u["expired"]]
    return dict(changed=reconciler.changed, users=users, resource_id=w.resource_id, diff=reconciler.diffs(),
                msg="expired %s" % ", ".join(expired) if expired else "nobody to expire")


def main():
    argument_spec, rules = whitelist_argument_spec()
    argument_spec.update(
        expire_users=dict(type="list", elements="str"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, **rules)
    run(module, expire)


if __name__ == "__main__":
    main()
