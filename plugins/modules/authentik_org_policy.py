#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: authentik_org_policy
short_description: Manage Pangolin's org policy for the authentik identity provider
version_added: 0.1.0
description:
  - Creates, updates or deletes the org policy of an identity provider (the authentik OIDC provider configured in
    Pangolin) for one Pangolin organization (C(/v1/idp/{idpId}/org/{orgId})), and optionally switches the identity
    provider's C(autoProvision).
  - When a user logs in through an identity provider with C(autoProvision) on, Pangolin evaluates, for every
    organization, the policy's O(org_mapping) (or the identity provider's default C('{{orgId}}'), which admits
    everybody) as JMESPath over the ID token's claims; the user joins the organization when it yields C(true) or the
    organization's id, with the role named by O(role_mapping) (default C('Member')).
  - The module reads the policies first and sends only the fields that differ; it never sends a duplicate create
    (Pangolin answers 400) nor an empty update (Pangolin answers 500), and treats Pangolin's 500 on deleting a
    missing policy as done once a fresh read shows the policy gone.
  - Before creating a policy it checks that O(org_id) exists; Pangolin would answer an unknown organization with a
    bare 500.
  - Needs a B(root) API key (Server Admin > API Keys) with the actions C(listIdpOrgs), C(createIdpOrg),
    C(updateIdpOrg) and C(deleteIdpOrg), C(getOrg) to check the organization before a create, and C(updateIdp) for
    O(auto_provision). Org-scoped keys are refused by Pangolin for every route of this module.
  - Raw mappings are checked for JMESPath syntax before anything is sent when the C(jmespath) Python library is
    installed.
author:
  - Pangolin Authentik Maintainers (@homelab-pangolin-authentik)
extends_documentation_fragment:
  - homelab.pangolin_authentik.connection
  - homelab.pangolin_authentik.connection.PANGOLIN
  - homelab.pangolin_authentik.connection.CHANGES
  - homelab.pangolin_authentik.connection.PANGOLIN_GROUP
  - ansible.builtin.action_common_attributes
options:
  idp_id:
    description:
      - Id of the identity provider in Pangolin. Mutually exclusive with O(idp_name).
    type: int
  idp_name:
    description:
      - Name of the identity provider in Pangolin, for example C(authentik). Mutually exclusive with O(idp_id).
    type: str
  org_id:
    description:
      - Id of the Pangolin organization the policy applies to.
    type: str
    required: true
  role_mapping:
    description:
      - JMESPath expression over the ID token's claims that yields the role name (or a list of role names), for
        example C(contains(groups, 'admins') && 'Admin' || 'Member').
      - An empty string makes Pangolin use the identity provider's default role mapping.
      - Mutually exclusive with O(role). When neither is given, an existing policy keeps its role mapping.
    type: str
  role:
    description:
      - Name of the Pangolin role every admitted user gets, for example C(Member). The module writes it as a JMESPath
        literal (C('Member')), escaped so that no character of the name can change the expression.
      - Mutually exclusive with O(role_mapping).
    type: str
  org_mapping:
    description:
      - JMESPath expression over the ID token's claims that decides who joins the organization; it must yield C(true)
        or the organization's id. C({{orgId}}) is replaced by the organization's id before evaluation.
      - An empty string makes Pangolin use the identity provider's default, which admits everybody.
      - Mutually exclusive with O(org_mapping_group). When neither is given, an existing policy keeps its org mapping.
    type: str
  org_mapping_group:
    description:
      - Admit only the members of this authentik group; written as C(contains(groups, '<group>')), escaped.
      - The authentik provider must put the user's groups into the C(groups) claim (authentik's default C(profile)
        scope mapping does).
      - Mutually exclusive with O(org_mapping).
    type: str
  auto_provision:
    description:
      - Ensure the identity provider's C(autoProvision) switch. Without it the mappings are never evaluated and users
        must be added to organizations by hand.
      - Applied whatever O(state); with O(state=present) after the policy is in place, with O(state=absent) before it
        is deleted. Not managed when omitted.
    type: bool
  state:
    description:
      - C(present) makes sure the policy exists with the given mappings, C(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
'''

EXAMPLES = r'''
- name: Admit only members of the jellyfin group to the homelab organization, as Member
  homelab.pangolin_authentik.authentik_org_policy:
    pangolin_url: https://api.example.com
    pangolin_api_key: "{{ vault_pangolin_root_api_key }}"
    idp_name: authentik
    org_id: homelab
    org_mapping_group: jellyfin
    role: Member
    auto_provision: true

- name: Admins get the Admin role, everybody else Member
  homelab.pangolin_authentik.authentik_org_policy:
    idp_id: 1
    org_id: homelab
    role_mapping: "contains(groups, 'admins') && 'Admin' || 'Member'"

- name: Remove the policy
  homelab.pangolin_authentik.authentik_org_policy:
    idp_name: authentik
    org_id: homelab
    state: absent
'''

RETURN = r'''
policy:
  description: The policy after the run (predicted in check mode; null when absent).
  returned: always
  type: dict
  contains:
    idp_id:
      description: Id of the identity provider.
      type: int
      sample: 1
    org_id:
      description: Id of the organization.
      type: str
      sample: homelab
    role_mapping:
      description: Role mapping; null when never set (the identity provider's default applies).
      type: str
      sample: "'Member'"
    org_mapping:
      description: Org mapping; null when never set (the identity provider's default applies).
      type: str
      sample: "contains(groups, 'jellyfin')"
idp:
  description: The identity provider's auto-provisioning after the run.
  returned: when O(auto_provision) is given
  type: dict
  contains:
    idp_id:
      description: Id of the identity provider.
      type: int
      sample: 1
    name:
      description: Name of the identity provider.
      type: str
      sample: authentik
    auto_provision:
      description: Whether users are provisioned at login.
      type: bool
      sample: true
idp_id:
  description: Id of the identity provider (resolved from O(idp_name) when given by name).
  returned: always
  type: int
  sample: 1
operation:
  description: What was done to the policy (or would be done in check mode); C(create), C(update), C(delete) or null.
  returned: always
  type: str
  sample: create
msg:
  description: What was done to the policy, in one line.
  returned: always
  type: str
diff:
  description: One before/after pair per object changed (policy, identity provider).
  returned: when changed and in diff mode
  type: list
  elements: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.client import ApiError
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.module import run
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._pangolin.client import (
    PangolinClient,
    pangolin_argument_spec,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._pangolin.objects import (
    IdpAutoProvisionKind,
    IdpOrgPolicyKind,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.reconcile import given
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.inputs import InputError
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._pangolin.values import (
    group_membership_mapping,
    jmespath_string,
)

try:
    import jmespath
    from jmespath.exceptions import JMESPathError

    HAS_JMESPATH = True
except ImportError:  # pragma: no cover - the syntax check is optional
    HAS_JMESPATH = False

ROOT_ACTIONS = "listIdpOrgs, createIdpOrg, updateIdpOrg and deleteIdpOrg (and updateIdp for auto_provision)"


def check_mapping(expression, option, org_id):
    """Refuse a raw mapping Pangolin could not evaluate at login."""
    if expression is None or expression == "":
        return expression
    if not expression.strip():
        raise InputError("%s must be a JMESPath expression or an empty string, got %r" % (option, expression))
    if HAS_JMESPATH:
        try:
            # Pangolin substitutes {{orgId}} before evaluating.
            jmespath.compile(expression.replace("{{orgId}}", org_id))
        except JMESPathError as exc:
            reason = getattr(exc, "message", None) or getattr(exc, "msg", None) or type(exc).__name__
            if type(exc).__name__ == "IncompleteExpressionError":
                reason = "the expression ends too early"
            position = getattr(exc, "lex_position", None)
            if position is not None:
                reason += " (at character %d)" % position
            raise InputError("%s %r is not a valid JMESPath expression: %s" % (option, expression, reason))
    return expression


def non_blank(value, option):
    if not value.strip():
        raise InputError("%s must be a non-empty name, got %r" % (option, value))
    return value


def desired_policy(params):
    org_id = params["org_id"]
    role_mapping = check_mapping(params["role_mapping"], "role_mapping", org_id)
    if params["role"] is not None:
        role_mapping = jmespath_string(non_blank(params["role"], "role"), "role")
    org_mapping = check_mapping(params["org_mapping"], "org_mapping", org_id)
    if params["org_mapping_group"] is not None:
        org_mapping = group_membership_mapping(non_blank(params["org_mapping_group"], "org_mapping_group"),
                                               "org_mapping_group")
    return given(role_mapping=role_mapping, org_mapping=org_mapping)


def resolve_idp_id(module, client):
    params = module.params
    if params["idp_name"] is not None:
        if not params["idp_name"].strip():
            raise InputError("idp_name must be a non-empty string")
        return client.resolve_idp(params["idp_name"])
    idp_id = params["idp_id"]
    if idp_id <= 0:
        raise InputError("idp_id must be a positive integer, got %d" % idp_id)
    if params["auto_provision"] is None and not any(i.get("idpId") == idp_id for i in client.list_idps()):
        raise InputError("idp_id %d: Pangolin has no identity provider with that id" % idp_id)
    return idp_id


def check_org(client, org_id):
    try:
        client.get_org(org_id)
    except ApiError as exc:
        if exc.status == 404 and isinstance(exc.body, dict):
            raise InputError("org_id %r: Pangolin has no such organization" % org_id)
        raise


def root_key_error(exc):
    """Pangolin's bare 403 for an org-scoped key, turned into what to do about it."""
    if exc.status == 403 and "root access" in str(exc):
        return ApiError("identity provider org policies need a root API key (Server Admin > API Keys) with the "
                        "actions %s; Pangolin refused pangolin_api_key: Key does not have root access" % ROOT_ACTIONS,
                        status=exc.status, body=exc.body)
    return exc


def manage_policy(module, reconciler):
    org_id = module.params["org_id"]
    if not org_id or not org_id.strip():
        raise InputError("org_id must be a non-empty string")
    desired = desired_policy(module.params)
    client = PangolinClient.from_module(module)
    try:
        return ensure(module, reconciler, client, desired)
    except ApiError as exc:
        raise root_key_error(exc)


def ensure(module, reconciler, client, desired):
    params = module.params
    state, org_id, auto_provision = params["state"], params["org_id"], params["auto_provision"]
    idp_id = resolve_idp_id(module, client)

    # Every read first: a missing org, IdP or root right fails before any write.
    idp_kind = idp_current = None
    if auto_provision is not None:
        idp_kind = IdpAutoProvisionKind(client, idp_id)
        idp_current = idp_kind.find({})
    policy_kind = IdpOrgPolicyKind(client, idp_id, org_id)
    policy_current = policy_kind.find(desired)
    if state == "present" and policy_current is None:
        check_org(client, org_id)

    result = dict(changed=False, idp_id=idp_id)
    idp_desired = dict(auto_provision=auto_provision)
    if idp_kind is not None and state == "absent":
        # Stop provisioning before the restriction goes away.
        result["idp"] = ensure_idp(reconciler, idp_kind, idp_desired, idp_current)
    policy = reconciler.ensure(policy_kind, desired, state, current=policy_current, lookup=False)
    if idp_kind is not None and state == "present":
        # Provision only once the policy restricts who joins.
        result["idp"] = ensure_idp(reconciler, idp_kind, idp_desired, idp_current)
    result.update(changed=reconciler.changed, operation=policy.operation,
                  msg="%s %s" % (policy.operation or "unchanged:", policy_kind.describe(desired)),
                  policy=reconciler.redact(policy_kind, policy.after), diff=reconciler.diffs())
    return result


def ensure_idp(reconciler, kind, desired, current):
    return reconciler.redact(kind, reconciler.ensure(kind, desired, current=current, lookup=False).after)


def main():
    argument_spec = pangolin_argument_spec()
    argument_spec.update(
        idp_id=dict(type="int"),
        idp_name=dict(type="str"),
        org_id=dict(type="str", required=True),
        role_mapping=dict(type="str"),
        role=dict(type="str"),
        org_mapping=dict(type="str"),
        org_mapping_group=dict(type="str"),
        auto_provision=dict(type="bool"),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[("idp_id", "idp_name"), ("role_mapping", "role"), ("org_mapping", "org_mapping_group")],
        required_one_of=[("idp_id", "idp_name")],
        supports_check_mode=True,
    )
    run(module, manage_policy)


if __name__ == "__main__":
    main()
