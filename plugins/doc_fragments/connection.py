# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# The pieces every module's documentation is made of, each written once. A module lists the ones it needs under
# extends_documentation_fragment (Ansible merges their options and attributes): the connection options shared by
# both servers (DOCUMENTATION), each server's own (PANGOLIN, AUTHENTIK), the resource a module works on (RESOURCE),
# what the module does in check and diff mode (CHANGES or READS) and its module_defaults action groups.
# Each piece is a plain string: ansible-test reads fragments without running them.


class ModuleDocFragment(object):
    # The connection options of both servers, with the notes and requirements every module shares.
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

    # Pangolin's URL and key, and Pangolin's own connection settings.
    PANGOLIN = r'''
options:
  pangolin_url:
    description:
      - Base URL of Pangolin's Integration API, for example C(https://api.example.com) or C(http://pangolin:3003).
      - A trailing C(/v1) is accepted and ignored.
      - The Integration API must be enabled (C(flags.enable_integration_api=true) in Pangolin's C(config.yml)).
      - If not set, the value of the E(PANGOLIN_URL) environment variable is used.
    type: str
    required: true
  pangolin_api_key:
    description:
      - Pangolin API key as C(<key id>.<secret>), sent as a bearer token.
      - The key needs the actions of the operations the module performs; every key needs them, root keys included.
      - If not set, the value of the E(PANGOLIN_API_KEY) environment variable is used.
    type: str
    required: true
  pangolin_validate_certs:
    description:
      - Verify Pangolin's TLS certificate; overrides O(validate_certs) for Pangolin only.
      - If not set, the value of the E(PANGOLIN_VALIDATE_CERTS) environment variable is used, else O(validate_certs).
    type: bool
  pangolin_ca_path:
    description:
      - PEM file of the CA that signed Pangolin's certificate; overrides O(ca_path) for Pangolin only (a private-CA
        Pangolin next to a publicly signed authentik, say).
      - If not set, the value of the E(PANGOLIN_CA_PATH) environment variable is used, else O(ca_path).
    type: path
  pangolin_timeout:
    description:
      - Seconds to wait for each answer of Pangolin; overrides O(timeout) for Pangolin only.
      - If not set, the value of the E(PANGOLIN_TIMEOUT) environment variable is used, else O(timeout).
    type: int
  pangolin_retries:
    description:
      - How many times a read or an update sent to Pangolin is retried; overrides O(retries) for Pangolin only.
      - If not set, the value of the E(PANGOLIN_RETRIES) environment variable is used, else O(retries).
    type: int
'''

    # authentik's URL and token, and authentik's own connection settings.
    AUTHENTIK = r'''
options:
  authentik_url:
    description:
      - Base URL of authentik, for example C(https://auth.example.com).
      - A trailing C(/api/v3) is accepted and ignored.
      - If not set, the value of the E(AUTHENTIK_URL) environment variable is used.
    type: str
    required: true
  authentik_token:
    description:
      - authentik API token (a token with intent C(API)), sent as a bearer token.
      - authentik answers HTTP 403, not 401, for a missing, expired or wrong token.
      - If not set, the value of the E(AUTHENTIK_TOKEN) environment variable is used.
    type: str
    required: true
  authentik_validate_certs:
    description:
      - Verify authentik's TLS certificate; overrides O(validate_certs) for authentik only.
      - If not set, the value of the E(AUTHENTIK_VALIDATE_CERTS) environment variable is used, else
        O(validate_certs).
    type: bool
  authentik_ca_path:
    description:
      - PEM file of the CA that signed authentik's certificate; overrides O(ca_path) for authentik only.
      - If not set, the value of the E(AUTHENTIK_CA_PATH) environment variable is used, else O(ca_path).
    type: path
  authentik_timeout:
    description:
      - Seconds to wait for each answer of authentik; overrides O(timeout) for authentik only.
      - If not set, the value of the E(AUTHENTIK_TIMEOUT) environment variable is used, else O(timeout).
    type: int
  authentik_retries:
    description:
      - How many times a read or an update sent to authentik is retried; overrides O(retries) for authentik only.
      - If not set, the value of the E(AUTHENTIK_RETRIES) environment variable is used, else O(retries).
    type: int
'''

    # The Pangolin resource a module works on.
    RESOURCE = r'''
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

    # A module that changes something: check and diff mode in full.
    CHANGES = r'''
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

    # A module that only reads.
    READS = r'''
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

    # A module of the action group pangolin.
    PANGOLIN_GROUP = r'''
attributes:
  action_group:
    description: Use C(group/homelab.pangolin_authentik.pangolin) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - homelab.pangolin_authentik.pangolin
'''

    # A module of the action group authentik.
    AUTHENTIK_GROUP = r'''
attributes:
  action_group:
    description:
      - Use C(group/homelab.pangolin_authentik.authentik) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - homelab.pangolin_authentik.authentik
'''

    # A module of both action groups (it talks to both servers).
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
