#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: login_ip_whitelist
short_description: Whitelist each user's current addresses on a Pangolin resource through authentik notifications
version_added: 0.1.0
description:
  - For every user in O(users), keeps the chain that makes authentik write the user's current address into Pangolin
    rules reserved for that user, so apps that cannot follow an SSO redirect (Jellyfin's TV and phone apps) get in.
  - Per user and per address kept (O(max_addresses)) - a Pangolin C(ACCEPT) rule at its own priority, a webhook body
    mapping and a webhook transport to C(<webhook_url>/v1/resource/<id>/rule/<rule id>) (the rule id re-read every
    run). Users share notification rules, up to O(users_per_rule) on each, every one with an expression policy that
    matches the logins (and, with O(follow_sessions), logouts) of its users and their deactivation or deletion, and
    the binding of that policy.
  - Because one event makes authentik post every transport of its notification rule, a body never comes from the
    event. Each body mapping computes its rule from authentik's state when authentik sends it - the newest distinct
    addresses of the user's real C(login) events within O(expire_days), or of the user's live sessions with
    O(follow_sessions); nothing for a deactivated or deleted user - so a delivery that arrives late, twice, or for
    another user's login writes the right addresses. The module computes the same with the same code when it must
    write a rule itself (a new rule, a changed setting, a deactivated user, a session that ended).
  - Ownership is decided in one place. A rule is this whitelist's when one of its transports posts to it, or when it
    is the only rule at the priority its body mapping recorded (a run that stopped half way, rules renumbered by
    Pangolin) with nobody else posting to it. A priority from the inventory never makes a rule the whitelist's. All
    objects are named C(<name_prefix><instance>/...), so two resources or two inventories keep apart; O(prune)
    removes the objects of users no longer listed, this instance's only.
  - Chains of collection versions 0.1 and 0.2 (one notification rule per user, named O(name_prefix) followed by the
    username) that post to this resource are adopted on the first run - each user keeps the rule and its address,
    the new chain is made, and only then the old objects are deleted.
  - Every list is read once, and every input, user and priority is checked before the first write. Writes are ordered
    for authentik's worker, which pays one task per notification rule for every event, the run's own writes
    included - notification rules that go are deleted (or shrink) first and new ones are made last. A delete that
    authentik refuses while its worker is busy (HTTP 405) is tried again with backoff until the object is gone.
  - Once for all users it also keeps C(applyRules) on the resource (Pangolin ignores every rule without it) and the
    headers mapping that sends Pangolin's key with each webhook - from O(webhook_api_key), or from a key the module
    makes with O(manage_webhook_key). The key is never shown, and the playbook's own key is never used for it.
  - With O(manage_webhook_key=true) the module makes an org-scoped Pangolin key named O(webhook_key_name) whose only
    action is C(updateResourceRule). A rerun keeps it when Pangolin still has the key the mapping names with exactly
    that action (its secret is never read back; Pangolin cannot show it). O(rotate_webhook_key=true) makes a new key,
    switches the mapping, waits until no webhook that rendered the old key is still running (on authentik 2025.8 and
    later, from its task API; 35 seconds before that), then deletes the old key. The module's own O(pangolin_api_key)
    must then be a root key with the actions C(listApiKeys), C(createApiKey), C(setApiKeyActions),
    C(listApiKeyActions) and C(deleteApiKey).
author:
  - Pangolin Authentik Maintainers (@homelab-pangolin-authentik)
extends_documentation_fragment:
  - homelab.pangolin_authentik.connection
  - homelab.pangolin_authentik.pangolin
  - homelab.pangolin_authentik.resource
  - homelab.pangolin_authentik.authentik
  - homelab.pangolin_authentik.whitelist
  - homelab.pangolin_authentik.whitelist.CHAIN
  - homelab.pangolin_authentik.attributes
  - homelab.pangolin_authentik.attributes.BOTH_GROUPS
  - ansible.builtin.action_common_attributes
options:
  priority_start:
    description:
      - First priority allocated to rules without one.
    type: int
    default: 100
  priority_end:
    description:
      - Last priority allocated to rules without one.
    type: int
    default: 999
  webhook_url:
    description:
      - Base URL of Pangolin's Integration API as authentik's worker reaches it. Defaults to O(pangolin_url).
    type: str
  webhook_api_key:
    description:
      - The Pangolin API key (C(<id>.<secret>)) authentik sends with each webhook; the module keeps the headers
        mapping carrying it. A key with only the C(updateResourceRule) action is enough and is what it should have.
      - It must not be O(pangolin_api_key), and the module refuses it, because authentik keeps it in a mapping in
        clear text.
      - Without it and without O(manage_webhook_key), the mapping named O(headers_mapping) must exist already.
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
        next run). Default C(<name_prefix><instance>/webhook).
    type: str
  apply_rules:
    description:
      - Turn C(applyRules) on for the resource, so that Pangolin evaluates the rules.
    type: bool
    default: true
  prune:
    description:
      - Also remove the objects of users no longer listed (this instance's objects only). Without it, such users keep
        what they have.
    type: bool
    default: false
  login_email:
    description:
      - Also send an e-mail for every login of a listed user through authentik's e-mail transport, as the manual setup's
        e-mail step does - a notification rule, an expression policy matching those users' logins and an e-mail
        transport, all named C(<name_prefix><instance>/login-email). Unset removes them.
      - Exactly one recipient - C(group), an authentik group whose members get the e-mail, or C(to_user=true), the user
        who logged in. Optionally C(subject_prefix) and C(template) (authentik 2025.8 and later).
    type: dict
'''

EXAMPLES = r'''
- name: Whitelist the current addresses of alice and bob
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

- name: Two devices per user, following their live sessions, with a key the collection makes
  homelab.pangolin_authentik.login_ip_whitelist:
    resource_id: 3
    manage_webhook_key: true
    max_addresses: 2
    follow_sessions: true
    users: "{{ jellyfin_users }}"
    login_email:
      group: admins
'''

RETURN = r'''
msg:
  description: How many users were created, updated, reset, removed or left unchanged.
  returned: always
  type: str
  sample: "3 users: 1 created, 2 unchanged"
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
      description: C(present) or C(absent).
      type: str
    status:
      description:
        - C(created) (the user's first rules), C(updated), C(reset) (a deactivated user's rules put back to the
          placeholder), C(removed), or C(unchanged).
      type: str
    priority:
      description: Priority of the user's first rule (null when absent).
      type: int
    priorities:
      description: Priority of each of the user's rules, first to last.
      type: list
      elements: int
    rule_id:
      description: Id of the user's first Pangolin rule (null when absent, or in check mode before creation).
      type: int
    rule_ids:
      description: Id of each of the user's rules.
      type: list
      elements: int
    group:
      description: Which of the shared notification rules (C(<head>/logins/<group>)) sends the user's webhooks.
      type: int
    pruned:
      description: Whether the user was removed because O(prune) is on and the user is no longer listed.
      type: bool
    changed:
      description: Whether anything of this user changed.
      type: bool
    changes:
      description: What changed of the user's own objects, one line per object.
      type: list
      elements: str
shared:
  description: What changed of the objects all users share - applyRules, the key, the headers mapping, the notification
    rules, their policies and bindings, the login e-mail.
  returned: always
  type: list
  elements: str
resource_id:
  description: Id of the Pangolin resource.
  returned: always
  type: int
instance:
  description: The instance the object names carry.
  returned: always
  type: str
  sample: resource-3
requests:
  description: Number of HTTP requests sent to each API by this run.
  returned: always
  type: dict
  contains:
    pangolin:
      description: Requests sent to Pangolin.
      type: int
    authentik:
      description: Requests sent to authentik.
      type: int
'''

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.authentik_objects import (
    EmailTransport,
    check_name,
    check_webhook_url,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.module_runner import ansible_module, run
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.reconcile import InputError
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.webhook_key import WebhookKey, sends_key
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
    if sends_key(key, params["pangolin_api_key"]):
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
    module = ansible_module(argument_spec, supports_check_mode=True, **rules)
    run(module, manage_whitelist)


if __name__ == "__main__":
    main()
