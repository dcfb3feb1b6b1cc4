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
    M(homelab.pangolin_authentik.login_ip_whitelist) keeps, from the same one read of both servers, and says in plain
    words what is wrong and what to do.
  - Per user - the authentik user exists (and whether it is active); each of the user's rules (O(max_addresses)) has
    its body mapping, rendered for the user's pk and the inventory's settings, and its transport, which posts to an
    existing rule of this resource with the body and headers mappings; the rule is enabled, of O(action) and an
    address match, and its priority is the one its body mapping sends; a notification rule of the whitelist sends the
    user's transports, with a recipient, and its policy, bound and enabled, matches the user's pk; no rule of a lower
    priority shadows the user's rules.
  - Which addresses each rule lets in, and where each comes from (the login event or the session); an address that
    authentik's state no longer accounts for is flagged - a problem for a deactivated user or a session that ended
    (O(follow_sessions)), a note for a login older than O(expire_days). When the user's newest login did not reach
    Pangolin it says why, from what authentik recorded (mapping and policy exceptions, failed webhook tasks).
  - For everyone - C(applyRules) is on; the headers mapping exists, does not send the playbook's own key, and Pangolin
    still has the key it sends with the C(updateResourceRule) action; recent logins of different users do not all
    come from one private or proxy address (an untrusted reverse proxy in front of authentik, fixed with
    C(AUTHENTIK_LISTEN__TRUSTED_PROXY_CIDRS)); the backlog of authentik's worker (2025.8 and later), with this
    whitelist's notification rules counted apart from authentik's others (its default rules, other whitelists);
    whether a worker process checked in (none is a problem) and whether logins wait for the worker (a
    C(bottleneck) note when the oldest due task has waited 5 seconds or more); objects left behind by absent or
    unlisted users and chains of collection version 0.2.
  - With O(users_from_group) - each member the whitelist has no rules for yet (a problem of that user, until
    M(homelab.pangolin_authentik.login_ip_whitelist) runs again), and, as notes, where the group and O(users)
    disagree - entries of O(users), not V(absent), for users who are not active members of the group, and members
    O(users) marks V(absent); neither is let in.
  - A C(problem) breaks a user's whitelist, or lets in what should not get in, now; a C(note) does not.
    RV(healthy) is false when there is any problem.
  - Nothing is written, also outside check mode.
author:
  - Pangolin Authentik Maintainers (@homelab-pangolin-authentik)
extends_documentation_fragment:
  - homelab.pangolin_authentik.connection
  - homelab.pangolin_authentik.connection.PANGOLIN
  - homelab.pangolin_authentik.connection.AUTHENTIK
  - homelab.pangolin_authentik.connection.RESOURCE
  - homelab.pangolin_authentik.connection.READS
  - homelab.pangolin_authentik.connection.BOTH_GROUPS
  - homelab.pangolin_authentik.whitelist
  - homelab.pangolin_authentik.whitelist.CHAIN
  - ansible.builtin.action_common_attributes
options:
  recent_logins:
    description:
      - How many of authentik's newest login events to examine for the untrusted-proxy pattern.
    type: int
    default: 100
  commands:
    description:
      - The commands the fixes name, as the operator runs them (the role passes its inventory and playbooks), so
        every fix can be pasted as it is.
    type: dict
    version_added: 0.5.0
    suboptions:
      site:
        description: How to run the site playbook.
        type: str
        default: ansible-playbook playbooks/site.yml
      expire:
        description: How to run the expiry playbook.
        type: str
        default: ansible-playbook playbooks/expire.yml
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
  sample: false
request_log:
  description:
    - Whether Pangolin's request log can tell when each address last let a request through, and how far back.
  returned: always
  type: dict
  version_added: 0.5.0
  contains:
    available:
      description: Whether the log can tell (Pangolin 1.18 or later, an org that keeps it, a key with C(getOrg) and
        C(viewLogs)).
      type: bool
      sample: true
    retention_days:
      description: How many days the org keeps its request log (V(-1) forever, V(0) not at all); null when unknown.
      type: int
      sample: 7
    window:
      description: How far back the log reaches, in words.
      type: str
      sample: the last 7 days of Pangolin's request log
    problem:
      description: Why it cannot tell, and what to change; null when it can.
      type: str
      sample: "Pangolin keeps no request log (settingsLogRetentionDaysRequest is 0): in Pangolin's dashboard, set the
        org's request log retention (its settings, Logs; the org setting settingsLogRetentionDaysRequest) to a number
        of days"
playbook_key:
  description:
    - What the playbook's own Pangolin key is, found out without writing anything - whether it is a root key, and
      which of the actions this inventory needs it lacks (the C(problems) say so too).
  returned: always
  type: dict
  version_added: 0.5.0
  contains:
    key_id:
      description: The key's id (never its secret).
      type: str
      sample: ab12cd34ef56gh7
    root:
      description: Whether it is a root key; null when Pangolin's answer did not tell.
      type: bool
      sample: true
    missing:
      description: Actions the inventory's choices need that the key lacks.
      type: list
      elements: str
      sample: [viewLogs]
    unknown:
      description: Actions the doctor could not check.
      type: list
      elements: str
      sample: []
verdict:
  description: The doctor's word on the whole whitelist - how many problems, and whom they concern.
  returned: always
  type: str
  sample: "1 problem: carol (1)"
  version_added: 0.5.0
broken_users:
  description:
    - The users a problem concerns - a listed user whose chain is broken, or a user who is not listed but still
      let in.
  returned: always
  type: list
  elements: str
  sample: [carol]
  version_added: 0.5.0
problems:
  description:
    - Problems that concern the whole whitelist, or a user who is not listed (then with C(user)), each with C(check),
      C(message) and C(fix).
  returned: always
  type: list
  elements: dict
  sample:
    - check: apply_rules
      message: resource 3 has rules switched off (applyRules is false), so Pangolin ignores every user's rule
      fix: rerun playbooks/site.yml (it turns applyRules on), or enable rules in the resource's settings in Pangolin
notes:
  description: Findings that concern every user but break nothing now, each with C(check), C(message) and C(fix).
  returned: always
  type: list
  elements: dict
  sample:
    - check: backlog
      message: authentik's worker has 240 queued tasks; every event costs one task per notification rule (1 of this
        whitelist, 3 others in authentik), so logins wait behind the queue and the whitelist lags until it drains
      fix: 'wait for the queue to drain (authentik admin: System > Tasks), or give the worker more CPU'
users:
  description: One entry per present user.
  returned: always
  type: list
  elements: dict
  sample:
    - username: alice
      rule_id: 17
      priority: 100
      match: CIDR
      whitelisted: 2001:db8:5:7::/64
      addresses:
        - resource_id: 3
          rule_id: 17
          priority: 100
          match: CIDR
          value: 2001:db8:5:7::/64
          source:
            kind: login
            id: e05635b1-c230-4c06-8fa8-6e4d46f77504
            when: '2026-12-07T10:12:00.278279Z'
            address: 2001:db8:5:7::42
      last_login: '2026-12-07T10:12:00.278279Z'
      last_login_ip: 2001:db8:5:7::42
      group: 1
      refused_logins: []
      healthy: true
      problems: []
      notes: []
  contains:
    username:
      description: authentik username.
      type: str
      sample: alice
    healthy:
      description: Whether the user's chain has no problem.
      type: bool
      sample: true
    problems:
      description: What breaks the user's whitelist, each with C(check), C(message) and C(fix).
      type: list
      elements: dict
      sample:
        - check: rule
          message: rule 17 of resource 3 is disabled
          fix: rerun playbooks/site.yml, which rebuilds the user's chain
    notes:
      description: What is worth knowing, same shape.
      type: list
      elements: dict
      sample:
        - check: last_login
          message: no login recorded yet; the rules hold the placeholder 0.0.0.0 until the first login
          fix: null
    rule_id:
      description: Id of the user's first rule, the one its first transport updates.
      type: int
      sample: 17
    priority:
      description: Priority of that rule.
      type: int
      sample: 100
    match:
      description: C(IP), or C(CIDR) after an IPv6 login with a prefix.
      type: str
      sample: CIDR
    whitelisted:
      description: The address (or prefix) the first rule lets through now; the placeholder before the first login.
      type: str
      sample: 2001:db8:5:7::/64
    addresses:
      description: Every rule of the user, first to last and resource by resource, with what it lets in and why.
      type: list
      elements: dict
      sample:
        - resource_id: 3
          rule_id: 17
          priority: 100
          match: CIDR
          value: 2001:db8:5:7::/64
          source:
            kind: login
            id: e05635b1-c230-4c06-8fa8-6e4d46f77504
            when: '2026-12-07T10:12:00.278279Z'
            address: 2001:db8:5:7::42
      contains:
        resource_id:
          description: The resource of the rule.
          type: int
          sample: 3
        rule_id:
          description: Id of the rule.
          type: int
          sample: 17
        priority:
          description: Its priority.
          type: int
          sample: 100
        match:
          description: C(IP) or C(CIDR).
          type: str
          sample: CIDR
        value:
          description: The address or prefix it lets in (the placeholder lets nobody in).
          type: str
          sample: 2001:db8:5:7::/64
        source:
          description:
            - The newest login event (C(kind=login)) or live session (C(kind=session)) whose address this is, with its
              C(id), C(when) and the C(address) authentik recorded; null when nothing in authentik's state explains it.
          type: dict
          sample:
            kind: login
            id: e05635b1-c230-4c06-8fa8-6e4d46f77504
            when: '2026-12-07T10:12:00.278279Z'
            address: 2001:db8:5:7::42
        last_used:
          description:
            - When the rule last let a request through on this resource, from Pangolin's request log; null when it
              did not within the log's window, or when the log cannot tell (see RV(request_log)).
          type: str
          sample: "2026-12-07T09:48:12Z"
          version_added: 0.5.0
        last_use:
          description: The same in words - C(12 min ago), C(2 d ago), C(not in the last 7 days of Pangolin's request
            log), or C(unknown).
          type: str
          sample: 12 min ago
          version_added: 0.5.0
    group:
      description: Which of the whitelist's notification rules sends the user's webhooks.
      type: int
      sample: 1
    last_login:
      description: Time of the user's newest login authentik recorded.
      type: str
      sample: '2026-12-07T10:12:00.278279Z'
    last_login_ip:
      description: Client address of that login.
      type: str
      sample: 2001:db8:5:7::42
    refused_logins:
      description:
        - The user's logins within O(expire_days) (all recorded ones with 0) whose address may not become a rule -
          one that cannot be a device's as Pangolin sees it (loopback, unspecified, link-local, multicast, reserved),
          or a private one outside O(private_networks) - newest first. When every such login was refused, the user
          cannot get in and the user's C(problems) say why.
      type: list
      elements: dict
      sample:
        - address: 192.168.1.50
          when: '2026-12-07T10:09:43.356920Z'
          kind: private
      version_added: 0.5.0
      contains:
        address:
          description: The address authentik recorded for the login.
          type: str
          sample: 172.18.0.1
        when:
          description: When the user logged in.
          type: str
          sample: "2026-12-07T10:12:00Z"
        kind:
          description: What kind of address it is.
          type: str
          sample: private
apply_rules:
  description: Whether the resource evaluates its rules.
  returned: always
  type: bool
  sample: true
backlog:
  description: authentik's worker queue.
  returned: always
  type: dict
  sample:
    available: true
    queued: 0
    notification_rules: 1
    other_notification_rules: 3
  contains:
    available:
      description: Whether the task API could be read (authentik 2025.8 and later, with a token that may read tasks).
      type: bool
      sample: true
    queued:
      description: Number of queued tasks (null without a task API).
      type: int
      sample: 0
    notification_rules:
      description:
        - Number of this whitelist's notification rules (those of its user groups and login e-mail, and of chains
          of collection version 0.2); each costs the worker one handler task per authentik event.
      type: int
      sample: 1
    other_notification_rules:
      description:
        - Number of authentik's other notification rules (its default rules, other whitelists', the operator's),
          which cost the same; each event costs RV(backlog.notification_rules) plus these handler tasks.
      type: int
      sample: 3
worker:
  description:
    - authentik's worker as the task API shows it (authentik 2025.8 and later), and what a login of this whitelist
      costs it.
  returned: always
  type: dict
  sample:
    connected: 1
    queue_wait: 0.0
    bottleneck: false
    handler_tasks_per_event: 6
    webhook_tasks_per_login: 30
  contains:
    connected:
      description:
        - Number of worker processes that checked in within the last 45 seconds; 0 means no webhook is sent
          (a problem). Null before authentik 2025.8, or with a token that may not list the workers (a
          C(worker_list) note).
      type: int
      sample: 1
    queue_wait:
      description:
        - Seconds the oldest queued task that is due has waited for the worker (tasks waiting out a retry's backoff
          do not count); a login made now waits about as long. Null without a task API (before 2025.8, or a token
          that may not read tasks).
      type: float
      sample: 0.0
    bottleneck:
      description:
        - Whether logins wait for the worker (RV(worker.queue_wait) of 5 seconds or more); the C(bottleneck) note
          says which authentik settings help.
      type: bool
      sample: false
    handler_tasks_per_event:
      description: Handler tasks every authentik event costs the worker (one per notification rule).
      type: int
      sample: 6
    webhook_tasks_per_login:
      description:
        - The most webhook tasks one login of a listed user queues - every transport of the notification rule
          of the user's group, one per user of the group, address slot and resource.
      type: int
      sample: 30
group:
  description:
    - With O(users_from_group), the group's members against O(users); null without it.
  returned: always
  type: dict
  sample:
    name: jellyfin
    members:
      - alice
      - bob
      - dave
    without_rules:
      - dave
    not_members:
      - carol
    absent_members: []
  contains:
    name:
      description: The group, O(users_from_group).
      type: str
      sample: jellyfin
    members:
      description: Its active direct members, the listed users (also those O(users) marks V(absent)).
      type: list
      elements: str
      sample: [alice, bob, dave]
    without_rules:
      description:
        - Members, not marked V(absent), the whitelist has no rules (no objects) for yet, so they are not let in
          until the whitelist runs again.
      type: list
      elements: str
      sample: [dave]
    not_members:
      description: Usernames of entries of O(users), not V(absent), that are not active members; not let in.
      type: list
      elements: str
      sample: [carol]
    absent_members:
      description: Members whose entry in O(users) is V(absent); not let in.
      type: list
      elements: str
      sample: [erin]
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
msg:
  description: C(healthy), or how many problems were found.
  returned: always
  type: str
  sample: 2 problems found
'''

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._checks.doctor import WhitelistDoctor
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.module import ansible_module, run
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.options import (
    whitelist_argument_spec,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.whitelist import open_whitelist


def examine(module, reconciler):
    w = open_whitelist(module)
    result = WhitelistDoctor(w, recent_logins=w.inputs.recent_logins, secrets=reconciler.secrets,
                             commands=dict((k, v) for k, v in (module.params["commands"] or {}).items() if v)).examine()
    problems = len(result["problems"]) + sum(len(u["problems"]) for u in result["users"])
    result.update(changed=False, msg="healthy" if result["healthy"] else "%d problem%s found" % (
        problems, "" if problems == 1 else "s"))
    return result


def main():
    argument_spec, rules = whitelist_argument_spec("doctor")
    module = ansible_module(argument_spec, supports_check_mode=True, **rules)
    run(module, examine)


if __name__ == "__main__":
    main()
