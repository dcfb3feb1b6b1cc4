# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which actions a Pangolin key has, found out without writing anything.

Pangolin has no route that tells a key about itself. Its Integration API checks, in this order, the key
(401), root-only routes (403 "Key does not have root access"), the org or resource the route names, then the
route's action (403 "Key does not have permission perform this action"), and only then does the handler parse
the request. So a request the handler is bound to refuse (an empty body where one is required, rule id 0,
key id 0) tells whether the key holds the action: a 403 for the permission when it does not, the handler's own
400 or 404 when it does, and nothing is written either way. Reads are simply read. A root key that may list
API key actions is asked for its own list instead.

Routes and guards from Pangolin's ``server/routers/integration.ts`` (1.22; the same in 1.23 and 1.24); the
handlers' parsing from ``server/routers/resource/*ResourceRule.ts``, ``updateResource.ts`` and
``server/routers/apiKeys/*.ts``.
"""

from __future__ import annotations

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.client import ApiError
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.secrets import split_key
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._pangolin.client import _seg

ROOT_ACTIONS = ("listApiKeys", "createApiKey", "setApiKeyActions", "listApiKeyActions", "deleteApiKey")


def probes(org_id, resource_id, key_id):
    """{action: (method, path, body)}: a request each action's route answers without writing anything."""
    org, rid, own = _seg(org_id), resource_id, _seg(key_id)
    return {
        "getOrg": ("GET", "/org/%s" % org, None),
        "listResources": ("GET", "/org/%s/resources?pageSize=1" % org, None),
        "getResource": ("GET", "/resource/%d" % rid, None),
        "getResourcePolicy": ("GET", "/resource/%d/policies" % rid, None),
        "updateResource": ("POST", "/resource/%d" % rid, {}),  # an empty update is refused (400)
        "listResourceRules": ("GET", "/resource/%d/rules?limit=1" % rid, None),
        "createResourceRule": ("PUT", "/resource/%d/rule" % rid, {}),  # no action, match, value: 400
        "updateResourceRule": ("POST", "/resource/%d/rule/0" % rid, {}),  # rule id 0: 400
        "deleteResourceRule": ("DELETE", "/resource/%d/rule/0" % rid, None),  # rule id 0: 400
        "viewLogs": ("GET", "/org/%s/logs/request?limit=1" % org, None),
        "listApiKeys": ("GET", "/org/%s/api-keys?limit=1" % org, None),
        "listApiKeyActions": ("GET", "/org/%s/api-key/%s/actions" % (org, own), None),
        "createApiKey": ("PUT", "/org/%s/api-key" % org, {}),  # no name: 400
        "setApiKeyActions": ("POST", "/org/%s/api-key/%s/actions" % (org, own), {}),  # no actionIds: 400
        "deleteApiKey": ("DELETE", "/org/%s/api-key/0" % org, None),  # no key 0: 404
    }


def needed_actions(settings, by_name=False, shared_policy=False, request_log=True):
    """The actions the playbook's key needs for what the inventory chose."""
    needed = ["getOrg", "getResource", "listResourceRules", "createResourceRule", "updateResourceRule",
              "deleteResourceRule"]
    if settings.apply_rules:
        needed.append("updateResource")
    if by_name:
        needed.append("listResources")
    if shared_policy:
        needed.append("getResourcePolicy")
    if request_log:
        needed.append("viewLogs")
    if settings.manage_webhook_key:
        needed.extend(ROOT_ACTIONS)
    return needed


class KeyCheck(object):
    """What the client's own key is: root or not, and which of the ``needed`` actions it lacks."""

    def __init__(self, client, org_id, resource_id):
        self.client = client
        self.org_id = org_id
        self.resource_id = resource_id
        self.key_id = (split_key(client.token) or ("?",))[0]

    def _ask(self, method, path, body):
        """(status, message) of a request whose answer is the point, refusals included."""
        params = None
        if "?" in path:
            path, query = path.split("?", 1)
            params = dict(item.split("=", 1) for item in query.split("&"))
        try:
            status, decoded = self.client.request(method, path, "ask whether the key may %s %s" % (method, path),
                                                  params=params, body=body, idempotent=True,
                                                  ok=(200, 201, 204, 400, 404, 409, 500))
        except ApiError as exc:
            return exc.status, str((exc.body or {}).get("message") if isinstance(exc.body, dict) else exc.message)
        return status, str((decoded or {}).get("message") if isinstance(decoded, dict) else "")

    def is_root(self):
        """True, False, or None when Pangolin's answer says neither."""
        status, message = self._ask("GET", "/orgs?limit=1", None)
        if status == 403 and "root access" in message:
            return False
        if status == 200 or (status == 403 and "permission" in message):
            return True
        return None

    def check(self, needed):
        """{root, missing: [action], unknown: [action]} for the ``needed`` actions."""
        root = self.is_root()
        found = probes(self.org_id, self.resource_id, self.key_id)
        missing, unknown = [], []
        listed = self._own_actions() if root else None
        for action in needed:
            if listed is not None:
                if action not in listed:
                    missing.append(action)
                continue
            if action in ROOT_ACTIONS and root is False:
                missing.append(action)
                continue
            status, message = self._ask(*found[action])
            if status == 403 and "permission" in message:
                missing.append(action)
            elif status in (401, 403) or status is None or status >= 500:
                unknown.append(action)
        return dict(root=root, key_id=self.key_id, missing=missing, unknown=unknown)

    def _own_actions(self):
        """The key's own actions, when it is a root key that may list API key actions; else None."""
        try:
            data = self.client.call("GET", "/org/%s/api-key/%s/actions" % (_seg(self.org_id), _seg(self.key_id)),
                                    "list the actions of the playbook's key", "listApiKeyActions")
        except ApiError:
            return None
        actions = [a.get("actionId") for a in (data or {}).get("actions") or []]
        return set(actions) if actions else None


__all__ = ["KeyCheck", "needed_actions", "probes", "ROOT_ACTIONS"]
