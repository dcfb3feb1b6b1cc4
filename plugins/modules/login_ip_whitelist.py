#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: login_ip_whitelist
short_description: Whitelist each user's current addresses on Pangolin resources through authentik notifications
version_added: 0.1.0
description:
  - For every user in O(users) (or in the authentik group O(users_from_group)), keeps the chain that makes authentik
    write the user's current address into Pangolin rules reserved for that user, so apps that cannot follow an SSO
    redirect (Jellyfin's TV and phone apps) get in.
  - Per user and per address kept (O(max_addresses)) - a body mapping, and on every resource (O(resources), or the one
    of O(resource_id) / O(resource)) a Pangolin C(ACCEPT) rule at the same priority and a webhook transport to
    C(<webhook_url>/v1/resource/<id>/rule/<rule id>). Users share notification rules, up to O(users_per_rule) on
    each, every one with an expression policy that matches the logins (and, with O(follow_sessions), logouts) of its
    users and their deactivation or deletion, and the binding of that policy.
  - Because one event makes authentik post every transport of its notification rule, a body never comes from the
    event. Each body mapping computes its rule from authentik's state when authentik sends it - the newest distinct
    addresses of the user's real C(login) events within O(expire_days), or of the user's live sessions with
    O(follow_sessions); nothing for a deactivated or deleted user - so a delivery that arrives late, twice, or for
    another user's login writes the right addresses. The module computes the same with the same code when it must
    write a rule itself (a new rule, a changed setting, a deactivated user, a session that ended).
  - Ownership is proven, never presumed. A rule is this whitelist's when a transport of this whitelist that posts to
    its own O(webhook_url) names it and it has the whitelist's shape (C(ACCEPT), C(IP) or C(CIDR)) at the priority
    the whitelist's body mapping records; or, for a rule whose transport is gone (a run that stopped half-way), when
    it is the only rule at that recorded priority, nobody posts to it, and it holds the placeholder or an address
    authentik's state gives the user. A name or a priority alone never makes a rule the whitelist's. An object that
    carries the whitelist's name (C(<name_prefix><instance>/...)) but posts elsewhere or names a rule that is not
    the whitelist's makes the run fail before any write, naming it; it is never rewritten.
  - A user who is not listed is not let in. A user the whitelist holds objects for but that O(users) no longer lists
    (or O(users_from_group) no longer holds) loses access in the run - the user's rules go back to the placeholder and
    the user's logins no longer send anything - and with O(prune) the objects are removed. O(state=absent) removes
    everything the whitelist owns.
  - Chains of collection versions 0.1 and 0.2 (one notification rule per user, named O(name_prefix) followed by the
    username) that post to a listed resource are adopted on the first run - each user keeps the rule and its address,
    the new chain is made, and only then the old objects are deleted.
  - Every list is read once, and every input, user, priority and name is checked before the first write. Writes are
    ordered for authentik's worker, which pays one task per notification rule for every event, the run's own writes
    included - notification rules that go are deleted (or shrink) first and new ones are made last. A delete that
    authentik refuses while its worker is busy (an empty HTTP 405) is tried again with backoff for up to two minutes.
  - Once for all users it also keeps C(applyRules) on each resource (Pangolin ignores every rule without it) and the
    headers mapping that sends Pangolin's key with each webhook - from O(webhook_api_key), or from a key the module
    makes with O(manage_webhook_key). The key is never shown, and the playbook's own key is never used for it. When
    no user is listed any more, the headers mapping and the managed key are removed too.
  - A resource on a shared resource policy (Pangolin 1.19+ Enterprise) keeps the users' rules in its per-resource
    overrides, which the gatekeeper evaluates before the shared policy's rules; C(applyRules) then comes from the
    shared policy, which the module reads (C(getResourcePolicy)) but never changes - it refuses to run while rules are
    off there.
  - With O(manage_webhook_key=true) the module makes an org-scoped Pangolin key named O(webhook_key_name) whose only
    action is C(updateResourceRule). A rerun keeps it when Pangolin still has the key the mapping names with exactly
    that action (its secret is never read back; Pangolin cannot show it). O(rotate_webhook_key=true) makes a new key,
    switches the mapping, waits until no webhook that rendered the old key is still queued or running (on authentik
    2025.8 and later, from its task API; 35 seconds before that), then deletes the old key. The module's own
    O(pangolin_api_key) must then be a root key with the actions C(listApiKeys), C(createApiKey), C(setApiKeyActions),
    C(listApiKeyActions) and C(deleteApiKey).
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
  - homelab.pangolin_authentik.whitelist.CHAIN
  - ansible.builtin.action_common_attributes
options:
  state:
    description:
      - V(absent) removes everything the whitelist owns, whatever O(users) says - rules, transports, body mappings,
        notification rules with their policies and bindings, the headers mapping, the managed key and the login
        e-mail. The operator's own objects, and objects of other instances, stay.
    type: str
    version_added: 0.4.0
    choices: [present, absent]
    default: present
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
  webhook_api_key:
    description:
      - The Pangolin API key (C(<id>.<secret>)) authentik sends with each webhook; the module keeps the headers
        mapping carrying it. A key with only the C(updateResourceRule) action is enough and is what it should have.
      - It must not be O(pangolin_api_key), and the module refuses it, because authentik keeps it in a mapping in
        clear text.
      - Without it and without O(manage_webhook_key), the mapping named O(headers_mapping) must exist already.
    type: str
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
      - Turn C(applyRules) on for each resource, so that Pangolin evaluates the rules.
    type: bool
    default: true
  prune:
    description:
      - What happens to a user the whitelist holds objects for but that is no longer listed. Either way the user loses
        access in the run.
      - V(false) - the user's rules go back to the placeholder and come off the notification rules (the user's logins
        send nothing); the objects stay, so listing the user again keeps the user's priority.
      - V(true) - the user's objects are removed.
    type: bool
    default: false
  login_email:
    description:
      - Also send an e-mail for every login of a listed user through authentik's e-mail transport, as the manual setup's
        e-mail step does - a notification rule, an expression policy matching those users' logins and an e-mail
        transport, all named C(<name_prefix><instance>/login-email). Unset removes them.
      - Exactly one recipient - O(login_email.group) or O(login_email.to_user).
    type: dict
    suboptions:
      group:
        description:
          - An authentik group whose members get the e-mail.
        type: str
      to_user:
        description:
          - The user who logged in gets the e-mail.
        type: bool
        default: false
      subject_prefix:
        description:
          - Subject prefix of the e-mail (authentik 2025.8 and later).
        type: str
      template:
        description:
          - authentik's e-mail template (authentik 2025.8 and later).
        type: str
  planned:
    description:
      - What a step that ran before this one in the same play did, or in check mode would do, to authentik's users
        and to the O(users_from_group) group. A dry run has not made those changes, so the module reads authentik as
        if they were made and its prediction covers the whole run.
      - The role passes its users step's results here; a playbook that manages the group itself can do the same.
    type: dict
    version_added: 0.5.0
    suboptions:
      group:
        description:
          - What happened to the group.
        type: str
        choices: [created, deleted, kept]
        default: kept
      members:
        description:
          - Usernames added to the O(users_from_group) group.
        type: list
        elements: str
        default: []
      created:
        description:
          - Usernames of authentik users that were created (in check mode not yet there).
        type: list
        elements: str
        default: []
      removed:
        description:
          - Usernames of authentik users that were deleted (in check mode still there).
        type: list
        elements: str
        default: []
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
  description:
    - How many users were created, updated, reset, removed or left unchanged.
    - "In check mode a prediction, C(3 users: 1 would be created, 2 would stay unchanged (check mode: nothing was
      written; this is what a run would do))"
  returned: always
  type: str
  sample: "3 users: 1 created, 2 unchanged"
users:
  description: One entry per user, in the order processed (users no longer listed last).
  returned: always
  type: list
  elements: dict
  sample:
    - username: alice
      state: present
      status: created
      priority: 100
      priorities:
        - 100
      rule_id: 17
      rule_ids:
        - 17
      rules:
        - resource_id: 3
          priority: 100
          rule_id: 17
      group: 1
      pruned: false
      changed: true
      changes:
        - create webhook mapping 'jellyfin-whitelist-resource-3/alice/1'
        - create rule priority 100 on resource 3
        - create notification transport 'jellyfin-whitelist-resource-3/alice/1'
      summary: 'alice: created, priority 100.'
  contains:
    username:
      description: authentik username.
      type: str
      sample: alice
    state:
      description: C(present) or C(absent).
      type: str
      sample: present
    status:
      description:
        - C(created) (the user's first rules), C(updated), C(reset) (a deactivated user's rules put back to the
          placeholder), C(removed), C(absent) (nothing to remove), C(disabled) (no longer listed, access ended, objects
          kept), C(kept_out) (no longer listed and already without access), or C(unchanged). In check mode the same
          words say what a run would do.
      type: str
      sample: created
    summary:
      description: "The user's line in plain words, in check mode a prediction: C(alice: would create, priority 100.)"
      type: str
      sample: 'alice: created, priority 100.'
    rules:
      description: Each of the user's rules on each resource.
      type: list
      elements: dict
      sample:
        - resource_id: 3
          priority: 100
          rule_id: 17
      contains:
        resource_id:
          description: The resource.
          type: int
          sample: 3
        priority:
          description: The rule's priority (the same on every resource).
          type: int
          sample: 100
        rule_id:
          description: The rule's id (null in check mode before creation).
          type: int
          sample: 17
    priority:
      description: Priority of the user's first rule (null when absent).
      type: int
      sample: 100
    priorities:
      description: Priority of each of the user's rules, first to last.
      type: list
      elements: int
      sample: [100, 101]
    rule_id:
      description: Id of the user's first Pangolin rule on the first resource (null when absent, or in check mode
        before creation).
      type: int
      sample: 17
    rule_ids:
      description: Id of each of the user's rules on the first resource.
      type: list
      elements: int
      sample: [17, 18]
    group:
      description: Which of the shared notification rules (C(<head>/logins/<group>)) sends the user's webhooks.
      type: int
      sample: 1
    pruned:
      description: Whether the user was removed because O(prune) is on and the user is no longer listed.
      type: bool
      sample: false
    changed:
      description: Whether anything of this user changed.
      type: bool
      sample: true
    changes:
      description: What changed of the user's own objects, one line per object.
      type: list
      elements: str
      sample:
        - create webhook mapping 'jellyfin-whitelist-resource-3/alice/1'
        - create rule priority 100 on resource 3
        - create notification transport 'jellyfin-whitelist-resource-3/alice/1'
shared:
  description: What changed of the objects all users share - applyRules, the key, the headers mapping, the notification
    rules, their policies and bindings, the login e-mail.
  returned: always
  type: list
  elements: str
  sample:
    - update resource 3
    - create webhook mapping 'jellyfin-whitelist-resource-3/headers'
    - create expression policy 'jellyfin-whitelist-resource-3/logins/1'
    - create notification rule 'jellyfin-whitelist-resource-3/logins/1'
    - create binding of policy 'jellyfin-whitelist-resource-3/logins/1' to notification rule
      'jellyfin-whitelist-resource-3/logins/1'
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
instance:
  description: The instance the object names carry.
  returned: always
  type: str
  sample: resource-3
requests:
  description: Number of HTTP requests sent to each API by this run.
  returned: always
  type: dict
  sample:
    pangolin: 7
    authentik: 18
  contains:
    pangolin:
      description: Requests sent to Pangolin.
      type: int
      sample: 7
    authentik:
      description: Requests sent to authentik.
      type: int
      sample: 18
'''

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.module import ansible_module, run
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.planner import plan_whitelist
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.runner import Runner
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.options import (
    whitelist_argument_spec,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.summary import (
    run_message,
    user_results,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.whitelist import open_whitelist


def manage_whitelist(module, reconciler):
    w = open_whitelist(module)
    # A new key's secret must be scrubbed from everything either client or the reconciler prints.
    w.read(secrets=reconciler.secrets, key_secrets=[w.pangolin.secrets, w.authentik.secrets, reconciler.secrets])
    plan = plan_whitelist(w)
    w.check_headers(plan)
    outcomes, shared, learned = Runner(w, plan, reconciler).run()
    users = user_results(plan, outcomes, learned, reconciler.check_mode)
    return dict(changed=reconciler.changed, msg=run_message(users, reconciler.check_mode), users=users,
                shared=shared, resource_id=w.deployment.primary, resource_ids=list(w.deployment.resource_ids),
                instance=w.deployment.instance, diff=reconciler.diffs(),
                requests=dict(pangolin=w.pangolin.request_count, authentik=w.authentik.request_count))


def main():
    argument_spec, rules = whitelist_argument_spec("site")
    module = ansible_module(argument_spec, supports_check_mode=True, **rules)
    run(module, manage_whitelist)


if __name__ == "__main__":
    main()
