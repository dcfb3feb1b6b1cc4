# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # The users of a login IP whitelist, how its objects are named, and what its rules let in.
    DOCUMENTATION = r'''
options:
  resources:
    description:
      - Several resources in one whitelist (Jellyfin, Jellyseerr, Audiobookshelf, ...), each given as its id (a
        number), as its name, nice id or full domain within O(org_id) (text), or as a mapping with the key C(id) or
        C(name). Every user gets a rule on every resource, at the same priority, and one login
        updates all of them; the authentik side (notification rules, policies, bindings, body mappings) is shared, so
        a login costs the worker one task per notification rule and one per resource of its users. Their transports
        to the first resource keep the plain name C(<head>/<username>/<n>); further resources add C(/resource-<id>).
      - All resources must belong to one Pangolin org. With more than one, O(instance) is required.
      - Mutually exclusive with O(resource_id) and O(resource), which name one resource.
    type: list
    version_added: 0.4.0
    elements: raw
  users:
    description:
      - The users of the whitelist. With O(users_from_group), entries add settings (priority, state) to the
        group's members of the same username.
      - A user the whitelist holds objects for but that is no longer listed loses access in the run
        (see O(homelab.pangolin_authentik.login_ip_whitelist#module:prune)).
      - One of O(users) and O(users_from_group) is required.
    type: list
    elements: dict
    suboptions:
      username:
        description:
          - The authentik username.
        type: str
        required: true
      priority:
        description:
          - Priority of the user's first Pangolin rule. When absent, the priority an earlier run gave the rule is
            kept, or the lowest free one of the priority range is allocated. Further rules (O(max_addresses)) are
            always allocated.
        type: int
      state:
        description:
          - V(absent) removes the user's objects (only those this whitelist owns).
        type: str
        choices: [present, absent]
        default: present
  users_from_group:
    description:
      - Name of an authentik group whose active direct members are the whitelist's users, next to the entries of
        O(users) with the same username. A member who leaves the group, or is deactivated, is no longer listed, and
        loses access in the next run. An entry of O(users) for a user who is not a member is not listed.
    type: str
    version_added: 0.4.0
  webhook_url:
    description:
      - Base URL of Pangolin's Integration API as authentik's worker reaches it (C(https://api.example.com), with or
        without C(/v1)). Defaults to O(pangolin_url).
      - It also proves which objects are this whitelist's - a transport carrying its name but posting elsewhere is
        refused, never rewritten. To change it, remove the whitelist with the old URL first
        (O(homelab.pangolin_authentik.login_ip_whitelist#module:state=absent)).
    type: str
  name_prefix:
    description:
      - Prefix of every object name, followed by O(instance).
      - Objects of collection versions 0.1 and 0.2 were named O(name_prefix) followed by the username; the whitelist
        adopts them on its first run.
    type: str
    default: jellyfin-whitelist-
  instance:
    description:
      - What identifies this whitelist in every object name and in the key it makes, so two resources (or two
        inventories) in one authentik and one Pangolin org never touch each other's objects.
      - 1-64 letters, digits, C(.), C(_) or C(-). Default C(resource-<resource id>).
    type: str
  placeholder:
    description:
      - Value of a rule that lets nobody in (before the first login, after an expiry); an address no client has.
      - With O(action=ACCEPT), an address no connection comes from (unspecified, V(255.255.255.255) or multicast);
        any other fails before anything is written, since every rule holding it would let that address in.
    type: str
    default: 0.0.0.0
  action:
    description:
      - Action of the users' rules.
    type: str
    choices: [ACCEPT, PASS]
    default: ACCEPT
  ipv6_prefix:
    description:
      - Prefix length whitelisted for an IPv6 login, for example V(64), as a C(CIDR) rule; V(0) whitelists the single
        address. IPv4 logins, also IPv4-mapped ones (C(::ffff:a.b.c.d)), always whitelist the single IPv4 address.
    type: int
    default: 0
  max_addresses:
    description:
      - How many addresses each user has whitelisted at once, one rule each, the newest distinct ones first.
    type: int
    default: 1
  follow_sessions:
    description:
      - Whitelist the addresses of the user's live authentik sessions (newest use first) instead of the addresses of
        the user's last logins. A logout removes its session's address at once; a session that ended without an
        event (expired, revoked by an admin) is gone after the next run of this module or of the expiry module, or the
        user's next login or logout. Needs authentik 2025.4 or newer.
    type: bool
    default: false
  expire_days:
    description:
      - A login's address lets the user in for this many days; V(0) means until the user's next login. It is also
        what the expiry module judges by. Ignored with O(follow_sessions), where sessions expire by themselves.
    type: int
    default: 30
  private_networks:
    description:
      - Private networks, in CIDR form, whose addresses may become a user's rule - for a Pangolin that sees clients
        on your own network directly. Only networks inside RFC 1918 (C(10.0.0.0/8), C(172.16.0.0/12),
        C(192.168.0.0/16)), the shared address space C(100.64.0.0/10) and IPv6 unique local addresses
        (C(fc00::/7)) may be listed.
      - Without it, a login from a private address whitelists nothing, and neither does one from an address that
        can never be a device's as Pangolin's gatekeeper sees it (loopback, unspecified, link-local, multicast,
        reserved), whatever is listed here; IPv4-mapped forms count as their IPv4 address. Such a login is skipped
        (the rules keep the user's newest acceptable addresses, or the placeholder) and the doctor names it. It
        usually means a reverse proxy in front of authentik that authentik does not trust (see
        C(AUTHENTIK_LISTEN__TRUSTED_PROXY_CIDRS)) or that sends no C(X-Forwarded-For).
      - Documentation and benchmarking ranges (C(192.0.2.0/24), C(198.51.100.0/24), C(203.0.113.0/24),
        C(198.18.0.0/15), C(2001:db8::/32)) are not private and need no listing.
    type: list
    elements: str
    default: []
    version_added: 0.5.0
'''

    # The chain every user gets, as the modules that build or check it see it.
    CHAIN = r'''
options:
  headers_mapping:
    description:
      - Name of the webhook mapping that adds Pangolin's bearer key to each webhook. Default
        C(<name_prefix><instance>/headers).
    type: str
  destination_group:
    description:
      - Only for authentik older than 2025.8, which cannot send to the event's user; a group with at least one member
        that the notification rules send to (C(send_once) makes them post once).
    type: str
  users_per_rule:
    description:
      - How many users share one notification rule. Every notification rule costs authentik's worker one task per
        event, and every login posts once per transport of its rule; the default keeps both small.
    type: int
    default: 10
  manage_webhook_key:
    description:
      - Whether the whitelist makes and keeps its own webhook key. With the doctor, a key the headers mapping sends
        but Pangolin no longer has is then a problem, not a note; checking the key needs a root O(pangolin_api_key)
        with C(listApiKeys) and C(listApiKeyActions), without it the check is skipped with a note.
    type: bool
    default: false
'''
