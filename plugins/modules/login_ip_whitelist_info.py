#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: login_ip_whitelist_info
short_description: Check every link of the login IP whitelist, per user
version_added: 0.2.0
description:
  - Reads, for every present user of O(users), each link of the chain
    M(homelab.pangolin_authentik.login_ip_whitelist) keeps, and says in plain words what is wrong and what to do.
  - Per user - the authentik user exists and is active; the transport posts to an existing rule of the resource and
    sends the body and headers mappings; the rule's priority and the body mapping's priority agree; the policy matches
    the user's pk; the notification rule uses the transport, has a recipient and has the policy bound; no rule of a
    lower priority shadows the user's rule; the address the rule whitelists, and the user's last login and its
    address. When the last login did not reach Pangolin it says why, from what authentik recorded (mapping exceptions,
    failed webhook tasks).
  - For everyone - C(applyRules) is on for the resource; the headers mapping exists and Pangolin still has the key
    it sends, with the C(updateResourceRule) action; recent logins of different users
    do not all come from one private or proxy address (an untrusted reverse proxy in front of authentik, fixed with
    C(AUTHENTIK_LISTEN__TRUSTED_PROXY_CIDRS)); the backlog of authentik's worker, on servers with a task API
    (2025.8 and later).
  - A C(problem) breaks a user's whitelist now; a C(note) does not. RV(healthy) is false when there is any problem.
  - Nothing is written, also outside check mode.
author:
  - homelab.pangolin_authentik contributors (!UNKNOWN)
extends_documentation_fragment:
  - homelab.pangolin_authentik.connection
  - homelab.pangolin_authentik.pangolin
  - homelab.pangolin_authentik.resource
  - homelab.pangolin_authentik.authentik
  - homelab.pangolin_authentik.whitelist
  - homelab.pangolin_authentik.whitelist.CHAIN
  - homelab.pangolin_authentik.attributes.INFO_MODULE
  - ansible.builtin.action_common_attributes
options:
  webhook_url:
    description:
      - Base URL of Pangolin's Integration API as authentik's worker reaches it; when given, each transport must post
        below it.
    type: str
  manage_webhook_key:
    description:
      - Whether the whitelist makes its own webhook key (as with O(homelab.pangolin_authentik.login_ip_whitelist#module:manage_webhook_key));
        then a key the headers mapping sends but Pangolin no longer has is a problem, not a note.
      - Checking the key needs a root O(pangolin_api_key) with C(listApiKeys) and C(listApiKeyActions); without it
        the check is skipped with a note.
    type: bool
    default: false
  recent_logins:
    description:
      - How many of authentik's newest login events to examine for the untrusted-proxy pattern.
    type: int
    default: 100
'''

EXAMPLES = r'''
- name: Check the whitelist of alice and bob
  homelab.pangolin_authentik.login_ip_whitelist_info:
    resource: jellyfin.example.com
    org_id: homelab
    users:
      - username: alice
      - username: bob
  register: doctor

- name: Fail when something is broken
  ansible.builtin.assert:
    that: doctor.healthy
    fail_msg: "{{ doctor.users | selectattr('healthy', 'false') | map(attribute='username') | list }}"
'''

RETURN = r'''
healthy:
  description: Whether no problem was found.
  returned: always
  type: bool
problems:
  description: Problems that concern every user, each with C(check), C(message) and C(fix).
  returned: always
  type: list
  elements: dict
notes:
  description: Findings that concern every user but break nothing now, each with C(check), C(message) and C(fix).
  returned: always
  type: list
  elements: dict
users:
  description: One entry per present user.
  returned: always
  type: list
  elements: dict
  contains:
    username:
      description: authentik username.
      type: str
    healthy:
      description: Whether the user's chain has no problem.
      type: bool
    problems:
      description: What breaks the user's whitelist, each with C(check), C(message) and C(fix).
      type: list
      elements: dict
    notes:
      description: What is worth knowing, same shape.
      type: list
      elements: dict
    rule_id:
      description: Id of the rule the user's transport updates.
      type: int
    priority:
      description: Priority of that rule.
      type: int
    match:
      description: C(IP), or C(CIDR) after an IPv6 login with a prefix.
      type: str
    whitelisted:
      description: The address (or prefix) the rule lets through now; the placeholder before the first login.
      type: str
    last_login:
      description: Time of the user's newest login authentik recorded.
      type: str
    last_login_ip:
      description: Client address of that login.
      type: str
apply_rules:
  description: Whether the resource evaluates its rules.
  returned: always
  type: bool
backlog:
  description: authentik's worker queue.
  returned: always
  type: dict
  contains:
    available:
      description: Whether the task API could be read (authentik 2025.8 and later, with a token that may read tasks).
      type: bool
    queued:
      description: Number of queued tasks (null without a task API).
      type: int
    notification_rules:
      description: Number of notification rules; each costs one worker task per authentik event.
      type: int
resource_id:
  description: Id of the Pangolin resource.
  returned: always
  type: int
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.authentik_objects import check_webhook_url
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.doctor import WhitelistDoctor
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.module_runner import run
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.reconcile import InputError
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.whitelist import (
    Whitelist,
    api_base,
    open_whitelist,
    whitelist_argument_spec,
)


def examine(module, reconciler):
    params = module.params
    webhook_url = check_webhook_url(params["webhook_url"], "webhook_url") if params["webhook_url"] else None
    if not 1 <= params["recent_logins"] <= 100:
        raise InputError("recent_logins must be from 1 to 100 (one page of events), got %d" % params["recent_logins"])
    w = open_whitelist(module)
    whitelist = Whitelist(w.pangolin, w.authentik, w.deployment, params["users"], w.settings)
    doctor = WhitelistDoctor(whitelist, webhook_url=api_base(webhook_url) if webhook_url else None,
                             recent_logins=params["recent_logins"], manage_webhook_key=params["manage_webhook_key"],
                             secrets=reconciler.secrets)
    result = doctor.examine()
    problems = len(result["problems"]) + sum(len(u["problems"]) for u in result["users"])
    result.update(changed=False, msg="healthy" if result["healthy"] else "%d problem%s found" % (
        problems, "" if problems == 1 else "s"))
    return result


def main():
    argument_spec, rules = whitelist_argument_spec(chain=True)
    argument_spec.update(
        webhook_url=dict(type="str"),
        manage_webhook_key=dict(type="bool", default=False),
        recent_logins=dict(type="int", default=100),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, **rules)
    run(module, examine)


if __name__ == "__main__":
    main()
