#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: login_ip_whitelist_expire
short_description: Bring every user's whitelisted addresses back to what authentik's state says now
version_added: 0.2.0
description:
  - For every present user of O(users), and every user the whitelist still owns rules for although O(users) no longer
    lists them (or marks them absent), writes each rule the whitelist owns from authentik's state now - the newest
    distinct addresses of the user's real C(login) events within O(expire_days) (or of the user's live sessions with
    O(follow_sessions)), and nothing for a deactivated user or one gone from authentik. The body mappings compute the
    same whenever authentik sends them, but nothing is sent while nobody logs in - this is what puts an address that
    outlived its login, its session or its user back to O(placeholder). Schedule it (cron, AWX).
  - With O(expire_users) only those users are considered, and they are revoked now, whatever their last login - their
    body mappings learn the time, so nothing from before it counts (not even when another user's login makes authentik
    recompute them) until they log in again, their rules go back to the placeholder, and every authentik session of
    theirs is ended (each device must log in again; the token must be allowed to delete sessions).
  - A user the whitelist owns rules for but that is not a present user of O(users) gets the placeholder, whatever the
    user's logins say.
  - Only rules the whitelist owns are touched, as M(homelab.pangolin_authentik.login_ip_whitelist) decides it. Failed
    logins never count as logins. A user whose rules already hold what the state says costs no write.
  - Each user's logins are read right before their rules are written, so a login earlier in the run keeps the user
    whitelisted. Only a login whose webhook lands in the instant between that read and the write can be undone; the
    user's next login, or any login of the user's group, puts it back.
author:
  - Pangolin Authentik Maintainers (@homelab-pangolin-authentik)
extends_documentation_fragment:
  - homelab.pangolin_authentik.connection
  - homelab.pangolin_authentik.connection.PANGOLIN
  - homelab.pangolin_authentik.connection.AUTHENTIK
  - homelab.pangolin_authentik.connection.RESOURCE
  - homelab.pangolin_authentik.connection.CHANGES
  - homelab.pangolin_authentik.connection.BOTH_GROUPS
  - homelab.pangolin_authentik.whitelist
  - ansible.builtin.action_common_attributes
options:
  expire_users:
    description:
      - Only these usernames, revoked now whatever their last login, until their next login. Each must be a present
        user of O(users).
    type: list
    elements: str
  idle_days:
    description:
      - Also close an address that let nothing through for this many days, from Pangolin's request log (Pangolin
        1.18 or later) - a cafe's or hotel's address a user logged in from once keeps no hole open beside the
        home address. Days count from the address's last request let through by a rule on any of the whitelist's
        resources, or from the newest login from it when that is later (a login renews an address). It never
        extends an address beyond O(expire_days). A closed address comes back at the user's next login from it.
      - The playbook's key needs the actions C(getOrg) and C(viewLogs); the run refuses, changing nothing, when the
        key may not read the log, when the org keeps no request log, or keeps it for fewer days than this.
      - V(0) turns it off.
    type: int
    default: 0
    version_added: 0.5.0
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
  sample:
    - username: bob
      rule_id: 18
      rule_ids:
        - 18
      whitelisted: 198.51.100.11
      addresses:
        - 198.51.100.11
      last_login: '2026-10-28T09:41:07.709367Z'
      expired: true
      restored: false
      reason: last login older than 30 days
      summary: 'bob: expired - last login older than 30 days'
  contains:
    username:
      description: authentik username.
      type: str
      sample: bob
    rule_id:
      description: Id of the user's rule (null when the whitelist owns none).
      type: int
      sample: 18
    rule_ids:
      description: Ids of every rule of the user the whitelist owns.
      type: list
      elements: int
      sample: [18]
    whitelisted:
      description: What the first rule let through before this run.
      type: str
      sample: 198.51.100.11
    addresses:
      description: What each rule let through before this run.
      type: list
      elements: str
      sample: [198.51.100.11]
    last_login:
      description: Time of the newest login authentik recorded (null when none was read or recorded).
      type: str
      sample: '2026-10-28T09:41:07.709367Z'
    expired:
      description: Whether the rule was (or in check mode would be) reset.
      type: bool
      sample: true
    restored:
      description:
        - Whether the rules only got back (or in check mode would get back) addresses authentik's state gives the
          user and a delivery missed (a lost webhook), with nothing taken away.
      type: bool
      sample: false
    reason:
      description: Why the user was or was not reset.
      type: str
      sample: last login older than 30 days
    summary:
      description: "The user's line in plain words, in check mode a prediction: C(bob: would expire - ...)."
      type: str
      sample: 'bob: expired - last login older than 30 days'
    closed:
      description:
        - The addresses closed (or in check mode that would be closed) for letting nothing through for
          O(idle_days).
      type: list
      elements: dict
      version_added: 0.5.0
      contains:
        address:
          description: The rule value closed.
          type: str
          sample: 198.51.100.7
        match:
          description: C(IP), or C(CIDR) for an IPv6 prefix.
          type: str
          sample: IP
        resource_ids:
          description: The resources it no longer lets in.
          type: list
          elements: int
          sample: [3, 4]
        why:
          description: Why, in plain words.
          type: str
          sample: "no request let through for 9 days (last 2026-11-28T20:11:05Z; idle_days 7)"
    sessions_ended:
      description: With O(expire_users), how many of the user's authentik sessions were (or in check mode would be)
        ended.
      type: int
      sample: 1
resource_id:
  description: Id of the Pangolin resource (the first one, with several).
  returned: always
  type: int
  sample: 3
resource_ids:
  description: Ids of every resource of the whitelist.
  returned: always
  type: list
  elements: int
  sample: [3]
msg:
  description: Who was expired, in one line.
  returned: always
  type: str
  sample: expired bob
'''

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._checks.expiry import WhitelistExpiry
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.module import ansible_module, run
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.options import (
    whitelist_argument_spec,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.whitelist import open_whitelist


def expire(module, reconciler):
    w = open_whitelist(module)
    users = WhitelistExpiry(w).apply(reconciler)
    expired = [u["username"] for u in users if u["expired"]]
    if reconciler.check_mode:
        msg = "would expire %s (check mode: nothing was written)" % ", ".join(expired) if expired else \
            "nobody would be expired (check mode: nothing was written)"
    else:
        msg = "expired %s" % ", ".join(expired) if expired else "nobody to expire"
    return dict(changed=reconciler.changed, users=users, resource_id=w.deployment.primary,
                resource_ids=list(w.deployment.resource_ids), diff=reconciler.diffs(), msg=msg)


def main():
    argument_spec, rules = whitelist_argument_spec("expire")
    module = ansible_module(argument_spec, supports_check_mode=True, **rules)
    run(module, expire)


if __name__ == "__main__":
    main()
