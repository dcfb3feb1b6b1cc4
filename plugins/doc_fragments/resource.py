# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # How a module names the Pangolin resource it works on.
    DOCUMENTATION = r'''
options:
  resource_id:
    description:
      - Id of the resource. Mutually exclusive with O(resource).
    type: int
  resource:
    description:
      - Name, nice id or full domain of the resource, resolved within O(org_id). Mutually exclusive with O(resource_id).
    type: str
  org_id:
    description:
      - Organization of O(resource). Required with O(resource).
    type: str
'''
