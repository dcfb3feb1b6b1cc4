# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # Connection options shared by every module that talks to authentik.
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
requirements:
  - requests
'''
