# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # Connection options of every module, whichever API it talks to.
    DOCUMENTATION = r'''
options:
  validate_certs:
    description:
      - Verify the server's TLS certificate. Only turn this off for a throw-away test setup.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file of the CA that signed the server's certificate, when it is not in the system trust store.
    type: path
  timeout:
    description:
      - Seconds to wait for each answer.
    type: int
    default: 30
  retries:
    description:
      - How many times a read or an update is retried after a connection error, a timeout, HTTP 429 (honouring
        C(Retry-After)) or a 5xx answer, with exponential backoff. Each retry is reported as a warning.
      - Creates are never re-sent blindly; after an unanswered create the module looks for the object first.
    type: int
    default: 3
notes:
  - Each server's connection settings can also be given on their own, with the options C(pangolin_validate_certs),
    C(pangolin_ca_path), C(pangolin_timeout), C(pangolin_retries) and their C(authentik_) twins; each one wins over
    the unprefixed O(validate_certs), O(ca_path), O(timeout) or O(retries) for its server. Use them in
    C(module_defaults) for the groups C(group/homelab.pangolin_authentik.pangolin) and
    C(group/homelab.pangolin_authentik.authentik). The C(login_ip_whitelist) modules belong to both groups and
    talk to both servers, so they get one value of an unprefixed option from the two groups' defaults (that of the
    group listed last) and apply it to both servers.
requirements:
  - requests
'''
