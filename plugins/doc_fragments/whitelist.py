# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # The users of a login IP whitelist and how their objects are named.
    DOCUMENTATION = r'''
options:
  users:
    description:
      - The users, each a dict with C(username) (the authentik username, required), C(priority) (optional; when absent
        the priority an earlier run gave the user is kept, or the lowest free one of the priority range is allocated)
        and C(state) (C(present) or C(absent), default C(present)).
    type: list
    elements: raw
    required: true
  name_prefix:
    description:
      - Prefix of the names of the objects created per user.
    type: str
    default: jellyfin-whitelist-
  placeholder:
    description:
      - Value of a user's rule while no login IP is whitelisted; an address no client has.
    type: str
    default: 0.0.0.0
'''

    # The chain every user gets, as the modules that build or check it see it.
    CHAIN = r'''
options:
  action:
    description:
      - Action of the users' rules.
    type: str
    choices: [ACCEPT, PASS]
    default: ACCEPT
  headers_mapping:
    description:
      - Name of the webhook mapping that adds Pangolin's bearer key to each webhook.
    type: str
    default: jellyfin-whitelist pangolin headers
  ipv6_prefix:
    description:
      - Prefix length whitelisted for an IPv6 login, for example C(64), as a C(CIDR) rule; C(0) whitelists the single
        address.
    type: int
    default: 0
  destination_group:
    description:
      - Only for authentik older than 2025.8, which cannot send to the event's user; a group with at least one member
        that the notification rules send to (C(send_once) makes them post once).
    type: str
'''
