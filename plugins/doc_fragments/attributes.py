# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # Attributes of every module that changes something.
    DOCUMENTATION = r'''
attributes:
  check_mode:
    support: full
    description: Reports what would change and sends no write.
  diff_mode:
    support: full
    description: Shows the managed fields before and after; secrets are redacted.
  platform:
    platforms: all
'''

    # Attributes of the read-only *_info modules.
    INFO_MODULE = r'''
attributes:
  check_mode:
    support: full
    description: The module only reads.
  diff_mode:
    support: N/A
    description: The module changes nothing.
  platform:
    platforms: all
'''

    # Membership of the module_defaults action groups (meta/runtime.yml).
    PANGOLIN_GROUP = r'''
attributes:
  action_group:
    description: Use C(group/homelab.pangolin_authentik.pangolin) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - homelab.pangolin_authentik.pangolin
'''

    AUTHENTIK_GROUP = r'''
attributes:
  action_group:
    description: Use C(group/homelab.pangolin_authentik.authentik) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - homelab.pangolin_authentik.authentik
'''

    BOTH_GROUPS = r'''
attributes:
  action_group:
    description:
      - Use C(group/homelab.pangolin_authentik.pangolin) and C(group/homelab.pangolin_authentik.authentik) in
        C(module_defaults) to set defaults for this module; it talks to both servers.
      - Give each group its server's connection settings with the prefixed options (C(pangolin_validate_certs),
        C(authentik_timeout), ...); an unprefixed one (C(validate_certs), C(timeout), ...) set in both groups
        reaches this module once, from the group listed last, for both servers.
    support: full
    membership:
      - homelab.pangolin_authentik.pangolin
      - homelab.pangolin_authentik.authentik
'''
