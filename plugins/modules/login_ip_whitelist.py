#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: login_ip_whitelist
short_description: Whitelist each user's login IP on a Pangolin resource through authentik notifications
version_added: 0.1.0
description:
  - For every user in O(users), ensures the chain that makes authentik write the user's login IP into a Pangolin
    rule reserved for that user, so apps that cannot follow an SSO redirect (Jellyfin's TV and phone apps) get in.
  - Per user, in this order so that a rerun after any failure repairs the chain
    - a Pangolin C(ACCEPT)/C(IP) rule at the user's priority, created with O(placeholder) and never reverted afterwards
      (authentik rewrites its value at each login);
    - a webhook body mapping rendering a full rule update with the login's client IP;
    - a webhook transport to C(<webhook_url>/v1/resource/<id>/rule/<rule id>), the rule id re-read every run;
    - an expression policy matching a C(login) event of the user's pk;
    - a notification rule sending to the event user through the transport, with the policy bound.
  - All per-user objects are named O(name_prefix) followed by the username. With O(prune=true), objects carrying the
    prefix whose username is no longer listed are removed; nothing without the prefix is ever touched.
  - Every list is read once and every input, user and priority is checked before the first write; an unchanged user
    costs no request of its own. This is the module the C(jellyfin_whitelist) role runs; the single-object modules
    share its comparison code.
  - Once for all users it also ensures C(applyRules) on the resource (Pangolin ignores every rule without it) and,
    when O(webhook_api_key) is given, the shared headers mapping that sends Pangolin's key with each webhook (as
    M(homelab.pangolin_authentik.authentik_webhook_mapping) with C(template=pangolin_headers) would; the key is
    never shown). Without O(webhook_api_key) the mapping named O(headers_mapping) must exist.
  - With O(manage_webhook_key=true) the module makes that key itself instead, an org-scoped Pangolin key named
    O(webhook_key_name) whose only action is C(updateResourceRule), put into the headers mapping and never shown.
    A rerun keeps it when Pangolin still has the key the mapping names with exactly that action (the secret is never
    read back; Pangolin cannot show it). O(rotate_webhook_key=true) makes a new key, switches the mapping, then
    deletes the old key, so a login in between still succeeds. The module's own O(pangolin_api_key) must then be a
    root key with the actions C(listApiKeys), C(createApiKey), C(setApiKeyActions), C(listApiKeyActions) and
    C(deleteApiKey).
  - With O(ipv6_prefix) a login from an IPv6 address whitelists the enclosing prefix as a C(CIDR) rule (privacy
    addresses rotate within it); an IPv4 login still whitelists the single address. A login shows one address family
    only, so a device reaching Jellyfin over the other family is not covered.
author:
  - homelab.pangolin_authentik contributors (!UNKNOWN)
extends_documentation_fragment:
  - homelab.pangolin_authentik.connection
  - homelab.pangolin_authentik.pangolin
  - homelab.pangolin_authentik.resource
  - homelab.pangolin_authentik.authentik
  - homelab.pangolin_authentik.whitelist
  - homelab.pangolin_authentik.whitelist.CHAIN
  - homelab.pangolin_authentik.attributes
  - ansible.builtin.action_common_attributes
options:
  priority_start:
    description:
      - First priority allocated to users without one.
    type: int
    default: 100
  priority_end:
    description:
      - Last priority allocated to users without one.
    type: int
    default: 999
  webhook_url:
    description:
      - Base URL of Pangolin's Integration API as authentik's worker reaches it. Defaults to O(pangolin_url).
    type: str
  webhook_api_key:
    description:
      - The Pangolin API key (C(<id>.<secret>)) authentik sends with each webhook; the module keeps the
        O(headers_mapping) mapping carrying it. A key with only the C(updateResourceRule) action is enough.
    type: str
  manage_webhook_key:
    description:
      - Make and keep the key authentik sends (see above) instead of taking O(webhook_api_key).
    type: bool
    default: false
  rotate_webhook_key:
    description:
      - With O(manage_webhook_key), replace the key with a new one now (the run reports a change).
    type: bool
    default: false
  webhook_key_name:
    description:
      - Name of the key made with O(manage_webhook_key). Keys of the resource's org with this name that the headers
        mapping does not use are deleted (a rotation's old key at once, a key whose creation answer was lost by the
        next run).
    type: str
    default: jellyfin-whitelist webhook
  apply_rules:
    description:
      - Turn C(applyRules) on for the resource, so that Pangolin evaluates the rules.
    type: bool
    default: true
  prune:
    description:
      - Also remove the objects of users no longer listed (objects named with O(name_prefix) only).
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: Whitelist the login IPs of alice and bob
  homelab.pangolin_authentik.login_ip_whitelist:
    pangolin_url: https://api.example.com
    pangolin_api_key: "{{ vault_pangolin_api_key }}"
    authentik_url: https://auth.example.com
    authentik_token: "{{ vault_authentik_token }}"
    resource: jellyfin.example.com
    org_id: homelab
    webhook_api_key: "{{ vault_pangolin_webhook_key }}"
    users:
      - username: alice
        priority: 100
      - username: bob
      - username: carol
        state: absent
'''

RETURN = r'''
users:
  description: One entry per user, in the order processed (pruned users last).
  returned: always
  type: list
  elements: dict
  contains:
    username:
      description: authentik username.
      type: str
    state:
      description: present or absent.
      type: str
    priority:
      description: Priority of the user's rule.
      type: int
    rule_id:
      description: Id of the user's Pangolin rule (null when absent, or in check mode before creation).
      type: int
    changed:
      description: Whether anything of this user changed.
      type: bool
    changes:
      description: What changed, one line per object.
      type: list
      elements: str
resource_id:
  description: Id of the Pangolin resource.
  returned: always
  type: int
requests:
  description: Number of HTTP requests sent to each API by this run.
  returned: always
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.authentik_objects import (
    EmailTransport,
    check_name,
    check_webhook_url,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.module_runner import run
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.reconcile import InputError
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.webhook_key import WebhookKey
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.whitelist import (
    Whitelist,
    WhitelistPlan,
    api_base,
    check_priority_range,
    open_whitelist,
    whitelist_argument_spec,
)


def check_webhook_key(params):
    """The key authentik will send: never the playbook's own key (it would sit in a mapping in clear text)."""
    key = params["webhook_api_key"]
    if params["manage_webhook_key"] and key:
        raise InputError("webhook_api_key and manage_webhook_key exclude each other: with manage_webhook_key the "
                         "collection makes the key authentik sends")
    if params["rotate_webhook_key"] and not params["manage_webhook_key"]:
        raise InputError("rotate_webhook_key needs manage_webhook_key: only a key the collection made can be rotated")
    if key is None:
        return None
    if "." not in key or any(c.isspace() for c in key):
        raise InputError("webhook_api_key must be a Pangolin API key of the form <key id>.<secret>")
    if key.split(".", 1)[0] == str(params["pangolin_api_key"]).split(".", 1)[0]:
        raise InputError("webhook_api_key is this playbook's own Pangolin key (pangolin_api_key): authentik would "
                         "keep it in a mapping in clear text and could do anything the playbook can; give authentik "
                         "a key with only the updateResourceRule action, or set manage_webhook_key")
    return key


def manage_whitelist(module, reconciler):
    params = module.params
    # Inputs first: nothing is read or written before they all pass.
    priority_range = check_priority_range(params["priority_start"], params["priority_end"])
    webhook_url = check_webhook_url(params["webhook_url"] or params["pangolin_url"], "webhook_url")
    webhook_api_key = check_webhook_key(params)
    key_name = None
    if params["manage_webhook_key"] and params["webhook_key_name"] is not None:
        key_name = check_name(params["webhook_key_name"], "webhook_key_name")
    login_email = EmailTransport.check(params["login_email"])
    w = open_whitelist(module)
    w.settings.__dict__.update(priority_range=priority_range, webhook_url=api_base(webhook_url),
                               webhook_api_key=webhook_api_key, prune=params["prune"],
                               apply_rules=params["apply_rules"], login_email=login_email)
    if params["manage_webhook_key"]:
        key_name = key_name or w.deployment.key_name

    def managed_key(org_id):
        # The new key's secret must be scrubbed from everything either client or the reconciler prints.
        return WebhookKey(w.pangolin, org_id, key_name, rotate=params["rotate_webhook_key"],
                          secrets=[w.pangolin.secrets, w.authentik.secrets, reconciler.secrets])

    whitelist = Whitelist(w.pangolin, w.authentik, w.deployment, params["users"], w.settings).read()
    plan = WhitelistPlan(whitelist, reconciler, key_factory=managed_key if key_name else None).plan()
    users = plan.apply()
    counts = {}
    for user in users:
        counts[user["status"]] = counts.get(user["status"], 0) + 1
    msg = "%d users: %s" % (len(users), ", ".join("%d %s" % (n, s) for s, n in sorted(counts.items())) or "none")
    return dict(changed=reconciler.changed, msg=msg, users=users, shared=plan.shared, resource_id=w.resource_id,
                instance=w.deployment.instance, diff=reconciler.diffs(),
                requests=dict(pangolin=w.pangolin.request_count, authentik=w.authentik.request_count))


def main():
    argument_spec, rules = whitelist_argument_spec(chain=True)
    argument_spec.update(
        priority_start=dict(type="int", default=100),
        priority_end=dict(type="int", default=999),
        webhook_url=dict(type="str"),
        webhook_api_key=dict(type="str", no_log=True),
        manage_webhook_key=dict(type="bool", default=False),
        rotate_webhook_key=dict(type="bool", default=False),
        webhook_key_name=dict(type="str", no_log=False),
        apply_rules=dict(type="bool", default=True),
        prune=dict(type="bool", default=False),
        login_email=dict(type="dict"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, **rules)
    run(module, manage_whitelist)


if __name__ == "__main__":
    main()
