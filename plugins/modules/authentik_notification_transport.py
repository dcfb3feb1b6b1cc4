#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: authentik_notification_transport
short_description: Manage an authentik notification transport (webhook or email)
version_added: 0.1.0
description:
  - Creates, updates or deletes a notification transport (C(/events/transports/)), found by O(name).
  - A webhook transport POSTs the body mapping's result as JSON to O(webhook_url), with the headers mapping's result as
    extra headers.
  - Mappings are referenced by name. The module writes the field names the server's version understands
    (C(webhook_mapping) before authentik 2025.4, C(webhook_mapping_body) and C(webhook_mapping_headers) since) and
    fails clearly when a feature is too new for the server (a headers mapping before 2025.4).
author:
  - Pangolin Authentik Maintainers (@homelab-pangolin-authentik)
extends_documentation_fragment:
  - homelab.pangolin_authentik.connection
  - homelab.pangolin_authentik.connection.AUTHENTIK
  - homelab.pangolin_authentik.connection.CHANGES
  - homelab.pangolin_authentik.connection.AUTHENTIK_GROUP
  - ansible.builtin.action_common_attributes
options:
  name:
    description:
      - Name of the transport.
    type: str
    required: true
  mode:
    description:
      - C(webhook) posts JSON to O(webhook_url); C(email) mails each recipient; C(local) only shows the notification in
        authentik. authentik itself defaults to C(local), so the module always sends the mode.
    type: str
    choices: [webhook, email, local]
    default: webhook
  webhook_url:
    description:
      - Where a webhook transport posts. Required with O(mode=webhook). Host names with underscores are refused, as
        authentik refuses them.
    type: str
  body_mapping:
    description:
      - Name of the webhook mapping whose result is the request body. Without it authentik sends its default body.
    type: str
  headers_mapping:
    description:
      - Name of the webhook mapping whose result is added to the request headers. Needs authentik 2025.4 or newer.
    type: str
  send_once:
    description:
      - Send once per event instead of once per recipient. Keep it on for webhooks that update a single object.
    type: bool
    default: true
  email_subject_prefix:
    description:
      - With O(mode=email), the subject prefix. Needs authentik 2025.8 or newer.
    type: str
  email_template:
    description:
      - With O(mode=email), the template used, for example C(email/event_notification.html). Needs authentik 2025.8.
    type: str
  state:
    description:
      - Whether the transport exists.
    type: str
    choices: [present, absent]
    default: present
'''

EXAMPLES = r'''
- name: Webhook that writes alice's login IP into her Pangolin rule
  homelab.pangolin_authentik.authentik_notification_transport:
    authentik_url: https://auth.example.com
    authentik_token: "{{ vault_authentik_token }}"
    name: jellyfin-whitelist-alice
    webhook_url: https://api.example.com/v1/resource/3/rule/17
    body_mapping: jellyfin-whitelist-alice
    headers_mapping: pangolin-headers

- name: Email the user at each login
  homelab.pangolin_authentik.authentik_notification_transport:
    name: login-email
    mode: email
    send_once: false
'''

RETURN = r'''
transport:
  description: The transport after the run (predicted in check mode; null when absent). Mappings are given by pk.
  returned: always
  type: dict
  contains:
    pk:
      description: The transport's uuid; null in check mode before creation.
      type: str
    name:
      description: Name.
      type: str
    mode:
      description: Mode.
      type: str
    webhook_url:
      description: Webhook URL.
      type: str
    body_mapping:
      description: pk of the body mapping.
      type: str
    headers_mapping:
      description: pk of the headers mapping (absent before authentik 2025.4).
      type: str
    send_once:
      description: Whether it sends once per event.
      type: bool
    email_subject_prefix:
      description: Subject prefix of an e-mail transport (authentik 2025.8 and later).
      type: str
    email_template:
      description: Template of an e-mail transport (authentik 2025.8 and later).
      type: str
operation:
  description:
    - What was done (or would be done in check mode) - C(create), C(update) or C(delete); null when nothing changed.
  returned: always
  type: str
  sample: update
msg:
  description: What was done, in one line.
  returned: always
  type: str
  sample: "update the object"
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.client import (
    AuthentikClient,
    authentik_argument_spec,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.objects import (
    TransportKind,
    WebhookMappingKind,
    check_name,
    check_webhook_url,
    resolve_reference,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.module import run, single_result
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.reconcile import given


def manage_transport(module, reconciler):
    params = module.params
    desired = dict(name=check_name(params["name"]))
    client = AuthentikClient.from_module(module)
    kind = TransportKind(client)
    if params["state"] == "present":
        desired.update(given(mode=params["mode"], send_once=params["send_once"],
                             email_subject_prefix=params["email_subject_prefix"],
                             email_template=params["email_template"]))
        if params["mode"] == "webhook":
            desired["webhook_url"] = check_webhook_url(params["webhook_url"])
        mappings = WebhookMappingKind(client)
        for option in ("body_mapping", "headers_mapping"):
            if params[option] is not None:
                desired[option] = resolve_reference(mappings, check_name(params[option], option), option,
                                                    module.check_mode)
        kind.check_supported(desired)
    outcome = reconciler.ensure(kind, desired, params["state"])
    return single_result(reconciler, outcome, kind)


def main():
    argument_spec = authentik_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True),
        mode=dict(type="str", default="webhook", choices=["webhook", "email", "local"]),
        webhook_url=dict(type="str"),
        body_mapping=dict(type="str"),
        headers_mapping=dict(type="str"),
        send_once=dict(type="bool", default=True),
        email_subject_prefix=dict(type="str"),
        email_template=dict(type="str"),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run(module, manage_transport)


if __name__ == "__main__":
    main()
