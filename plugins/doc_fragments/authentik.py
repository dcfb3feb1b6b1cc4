# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # Options naming the server and key of every module that talks to authentik.
    DOCUMENTATION = r'''
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
