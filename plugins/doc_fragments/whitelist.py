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
