# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # Options naming the server and key of every module that talks to Pangolin.
    DOCUMENTATION = r'''
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
