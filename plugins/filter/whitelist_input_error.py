# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a whitelist module would refuse in its options, found on the controller before the role writes anything.

The role's users step runs before the whitelist step and may create users; the options of the whitelist are
checked first with the module's own argument spec and input checks, so a typo fails the run before any write.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: whitelist_input_error
short_description: What a whitelist module would refuse in its options
version_added: 0.6.0
author: contributors to homelab.pangolin_authentik
description:
  - Checks the options of M(homelab.pangolin_authentik.login_ip_whitelist) (or its C(_info) and C(_expire)
    siblings) with the module's own argument spec and input checks, without asking any server.
  - Returns the first problem as the module would word it, or an empty string.
options:
  _input:
    description: The module's options, as the task and its module defaults would give them.
    type: dict
    required: true
  module:
    description: Which module's options - C(site) (login_ip_whitelist), C(doctor) (_info) or C(expire) (_expire).
    type: str
    default: site
    choices: [site, doctor, expire]
"""

EXAMPLES = r"""
- name: Refuse a bad setting before anything is written
  ansible.builtin.assert:
    that: problem | length == 0
    fail_msg: "{{ problem }}"
  vars:
    problem: "{{ settings | homelab.pangolin_authentik.whitelist_input_error }}"
"""

RETURN = r"""
_value:
  description: The first problem, naming the option and what is wrong; empty when there is none.
  type: str
  sample: "placeholder '192.0.2.1' is an address a client can connect from, so every rule holding it would let that
    address in; use 0.0.0.0, ::, 255.255.255.255 or a multicast address"
"""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.client import (
    authentik_argument_spec,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.inputs import InputError
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._pangolin.client import (
    pangolin_argument_spec,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.options import (
    whitelist_argument_spec,
    whitelist_inputs,
)

# The servers may be given where this filter cannot see them (a play's module_defaults for the collection's
# action groups, a play's environment): the module insists on them, this check only on what it is given.
CONNECTION = frozenset(pangolin_argument_spec()) | frozenset(authentik_argument_spec())
# Stands in for an unseen pangolin_url, which only serves as the webhook URL's default.
UNSEEN_URL = "https://pangolin.invalid"


def whitelist_input_error(options, module="site"):
    if not isinstance(options, dict):
        raise AnsibleFilterError("whitelist_input_error expects the module's options as a dict")
    if module not in ("site", "doctor", "expire"):
        raise AnsibleFilterError("whitelist_input_error: module must be site, doctor or expire")
    spec, rules = whitelist_argument_spec(module)
    spec = dict((name, dict(option, required=False) if name in CONNECTION else option) for name, option in spec.items())
    result = ArgumentSpecValidator(spec, **rules).validate(dict(options))
    params = dict(result.validated_parameters)
    # as the module's fail_json would: no key or token in what is said
    secrets = set(str(params[name]) for name, option in spec.items() if option.get("no_log") and params.get(name))
    if result.error_messages:
        return remove_values(result.error_messages[0], secrets)
    params["pangolin_url"] = params.get("pangolin_url") or UNSEEN_URL
    try:
        whitelist_inputs(params)
    except InputError as exc:
        return remove_values(str(exc), secrets)
    return ""


class FilterModule(object):
    def filters(self):
        return {"whitelist_input_error": whitelist_input_error}
