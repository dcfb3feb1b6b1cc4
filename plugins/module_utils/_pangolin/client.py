# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Client for Pangolin's Integration API (``/v1``), on the shared HTTP layer."""

from __future__ import annotations

from urllib.parse import quote

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.client import (
    ApiClient,
    ApiError,
    connection_argument_spec,
    server_connection,
)

# Every rule field Pangolin stores; compare on these only (docs: list rows and
# create answers carry different extra keys).
RULE_FIELDS = ("action", "match", "value", "priority", "enabled")


def pangolin_argument_spec():
    """Connection options shared by every Pangolin module."""
    from ansible.module_utils.basic import env_fallback

    spec = dict(
        pangolin_url=dict(type="str", required=True, fallback=(env_fallback, ["PANGOLIN_URL"])),
        pangolin_api_key=dict(type="str", required=True, no_log=True,
                              fallback=(env_fallback, ["PANGOLIN_API_KEY"])),
        pangolin_validate_certs=dict(type="bool", fallback=(env_fallback, ["PANGOLIN_VALIDATE_CERTS"])),
        pangolin_ca_path=dict(type="path", fallback=(env_fallback, ["PANGOLIN_CA_PATH"])),
        pangolin_timeout=dict(type="int", fallback=(env_fallback, ["PANGOLIN_TIMEOUT"])),
        pangolin_retries=dict(type="int", fallback=(env_fallback, ["PANGOLIN_RETRIES"])),
    )
    spec.update(connection_argument_spec())
    return spec


def resource_selector_spec():
    """Options naming one resource (by id, or by name/domain within an org), and their rules."""
    options = dict(resource_id=dict(type="int"), resource=dict(type="str"), org_id=dict(type="str"))
    rules = dict(mutually_exclusive=[("resource_id", "resource")], required_one_of=[("resource_id", "resource")],
                 required_by={"resource": "org_id"})
    return options, rules


def selected_resource_id(client, params):
    """The id of the resource the module's selector options name, checked before any write."""
    if params["resource_id"] is not None:
        if params["resource_id"] <= 0:
            raise ApiError("resource_id must be a positive integer, got %d" % params["resource_id"])
        return params["resource_id"]
    if not params["resource"].strip():
        raise ApiError("resource must be a non-empty name, nice id or full domain")
    return client.resolve_resource(params["org_id"], params["resource"])


class PangolinClient(ApiClient):
    api_name = "Pangolin API"
    token_is_key = True
    api_prefix = "/v1"
    url_option = "pangolin_url"
    token_option = "pangolin_api_key"

    def __init__(self, base_url, api_key, **kwargs):
        if api_key and "." not in api_key:
            # Pangolin answers this with a 500; say what is wrong instead.
            raise ApiError("pangolin_api_key must have the form <key id>.<secret> as Pangolin shows it "
                           "at creation; the value given has no '.'")
        super(PangolinClient, self).__init__(base_url, api_key, **kwargs)

    @classmethod
    def from_module(cls, module):
        params = module.params
        return cls(params["pangolin_url"], params["pangolin_api_key"], warn=module.warn,
                   **server_connection(params, "pangolin"))

    # -- envelope ------------------------------------------------------
    def error_detail(self, status, body):
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            return body["message"]
        return None

    def hint(self, status, detail, action):
        if status == 401:
            return "pangolin_api_key is not accepted: check the key id and secret"
        if status == 403 and "root access" in detail:
            return "this needs a root API key (Server Admin > API Keys)%s" % (
                " with the '%s' action" % action if action else "")
        if status == 403 and "permission" in detail and action:
            return "grant the key the '%s' action" % action
        if status == 403 and "access to this organization" in detail:
            return "the key belongs to another organization"
        if status == 404 and detail.startswith("answer is not JSON"):
            return "is pangolin_url the Integration API (port 3003, enable_integration_api: true)?"
        return None

    def call(self, method, path, operation, action, body=None, params=None, idempotent=None, ok=(200, 201)):
        """Send a request and unwrap Pangolin's ``{data, success, ...}`` envelope."""
        status, decoded = self.request(method, path, operation, params=params, body=body,
                                       idempotent=idempotent, ok=ok, action=action)
        if not isinstance(decoded, dict) or "data" not in decoded or decoded.get("success") is not True:
            raise ApiError("%s: %s: the answer is not a Pangolin API envelope; does pangolin_url point "
                           "at Pangolin's Integration API?" % (self.api_name, operation))
        return decoded["data"]

    # -- resources -----------------------------------------------------
    def get_resource(self, resource_id):
        return self.call("GET", "/resource/%d" % resource_id, "read resource %d" % resource_id, "getResource")

    def resource_policies(self, resource_id):
        """``{defaultPolicy, sharedPolicy}`` of a resource (1.19+): where its access settings and rules live."""
        return self.call("GET", "/resource/%d/policies" % resource_id, "read the policies of resource %d"
                         % resource_id, "getResourcePolicy")

    def update_resource(self, resource_id, fields):
        if not fields:
            raise ValueError("refusing to send an empty resource update")
        return self.call("POST", "/resource/%d" % resource_id, "update resource %d" % resource_id,
                         "updateResource", body=fields, idempotent=True)

    def list_resources(self, org_id, query=None):
        """Every resource of an org (page-based, unlike the rules list)."""
        resources, page = [], 1
        while True:
            params = {"page": page, "pageSize": 100}
            if query:
                params["query"] = query
            data = self.call("GET", "/org/%s/resources" % _seg(org_id), "list resources of org %r" % org_id,
                             "listResources", params=params)
            batch = data.get("resources") or []
            resources.extend(batch)
            total = (data.get("pagination") or {}).get("total", len(resources))
            if not batch or len(resources) >= total:
                return resources
            page += 1

    def get_org(self, org_id):
        return self.call("GET", "/org/%s" % _seg(org_id), "read org %r" % org_id, "getOrg")

    def request_log(self, org_id, start, end, resource_id=None, reason=None, page_size=1000, max_pages=None):
        """Rows of the org's request audit log between ``start`` and ``end`` (aware datetimes), newest first, one
        page at a time (a generator): {ip, timestamp (unix seconds), resourceId, reason, action, ...}."""
        params = {"timeStart": start.isoformat(), "timeEnd": end.isoformat(), "limit": page_size, "offset": 0}
        if resource_id is not None:
            params["resourceId"] = resource_id
        if reason is not None:
            params["reason"] = reason
        pages = 0
        while max_pages is None or pages < max_pages:
            data = self.call("GET", "/org/%s/logs/request" % _seg(org_id), "read the request log of org %r"
                             % org_id, "viewLogs", params=dict(params))
            pages += 1
            rows = data.get("log") or []
            yield rows
            total = (data.get("pagination") or {}).get("total")
            params["offset"] += len(rows)
            if len(rows) < page_size or (total is not None and params["offset"] >= total):
                return

    def resolve_resource(self, org_id, name_or_domain):
        """The id of the resource whose name, niceId or full domain is ``name_or_domain``."""
        wanted = name_or_domain.strip()
        matches = [r for r in self.list_resources(org_id) if _names(r, wanted)]
        ids = sorted(set(r["resourceId"] for r in matches))
        if not ids:
            self.get_org(org_id)  # a missing org gets its own clear 404
            raise ApiError("resource %r: no resource of org %r has that name, nice id or full domain"
                           % (name_or_domain, org_id))
        if len(ids) > 1:
            raise ApiError("resource %r is ambiguous in org %r: resources %s match; use resource_id"
                           % (name_or_domain, org_id, ", ".join(str(i) for i in ids)))
        return ids[0]

    # -- rules ---------------------------------------------------------
    def list_rules(self, resource_id):
        # One call: the server sorts only within a page, so never page (docs 3.4).
        data = self.call("GET", "/resource/%d/rules" % resource_id, "list rules of resource %d" % resource_id,
                         "listResourceRules", params={"limit": 1000})
        return [normalize_rule(r) for r in data.get("rules") or []]

    def create_rule(self, resource_id, rule):
        body = dict((k, rule[k]) for k in RULE_FIELDS if rule.get(k) is not None)
        data = self.call("PUT", "/resource/%d/rule" % resource_id,
                         "create rule with priority %s on resource %d" % (rule.get("priority"), resource_id),
                         "createResourceRule", body=body, idempotent=False, ok=(201, 200))
        return normalize_rule(data)

    def update_rule(self, resource_id, rule_id, rule):
        # Pangolin requires priority on every update; send the whole rule (docs 3.2).
        body = dict((k, rule[k]) for k in RULE_FIELDS if rule.get(k) is not None)
        data = self.call("POST", "/resource/%d/rule/%d" % (resource_id, rule_id),
                         "update rule %d of resource %d" % (rule_id, resource_id),
                         "updateResourceRule", body=body, idempotent=True)
        return normalize_rule(data)

    def delete_rule(self, resource_id, rule_id):
        self.call("DELETE", "/resource/%d/rule/%d" % (resource_id, rule_id),
                  "delete rule %d of resource %d" % (rule_id, resource_id), "deleteResourceRule",
                  idempotent=True)

    # -- identity providers ----------------------------------------------
    def list_idps(self):
        idps, offset = [], 0
        while True:
            data = self.call("GET", "/idp", "list identity providers", "listIdps",
                             params={"limit": 1000, "offset": offset})
            batch = data.get("idps") or []
            idps.extend(batch)
            total = (data.get("pagination") or {}).get("total", len(idps))
            if not batch or len(idps) >= total:
                return idps
            offset = len(idps)

    def resolve_idp(self, name):
        ids = sorted(set(i["idpId"] for i in self.list_idps() if i.get("name") == name))
        if not ids:
            raise ApiError("idp_name %r: Pangolin has no identity provider with that name" % name)
        if len(ids) > 1:
            raise ApiError("idp_name %r is ambiguous: identity providers %s; use idp_id"
                           % (name, ", ".join(str(i) for i in ids)))
        return ids[0]

    def update_idp(self, idp_id, fields):
        return self.call("POST", "/idp/%d/oidc" % idp_id, "update identity provider %d" % idp_id,
                         "updateIdp", body=fields, idempotent=True)

    def list_idp_org_policies(self, idp_id):
        policies, offset = [], 0
        while True:
            data = self.call("GET", "/idp/%d/org" % idp_id, "list org policies of identity provider %d" % idp_id,
                             "listIdpOrgs", params={"limit": 1000, "offset": offset})
            batch = data.get("policies") or []
            policies.extend(batch)
            total = (data.get("pagination") or {}).get("total", len(policies))
            if not batch or len(policies) >= total:
                return policies
            offset = len(policies)

    def create_idp_org_policy(self, idp_id, org_id, fields):
        return self.call("PUT", "/idp/%d/org/%s" % (idp_id, _seg(org_id)),
                         "create org policy of identity provider %d for org %r" % (idp_id, org_id),
                         "createIdpOrg", body=fields, idempotent=False, ok=(201, 200))

    def update_idp_org_policy(self, idp_id, org_id, fields):
        if not fields:
            raise ValueError("refusing to send an empty org policy update (Pangolin answers 500)")
        return self.call("POST", "/idp/%d/org/%s" % (idp_id, _seg(org_id)),
                         "update org policy of identity provider %d for org %r" % (idp_id, org_id),
                         "updateIdpOrg", body=fields, idempotent=True)

    def delete_idp_org_policy(self, idp_id, org_id):
        return self.call("DELETE", "/idp/%d/org/%s" % (idp_id, _seg(org_id)),
                         "delete org policy of identity provider %d for org %r" % (idp_id, org_id),
                         "deleteIdpOrg", idempotent=True)

    # -- org API keys (root key only) ----------------------------------------
    def list_api_keys(self, org_id):
        """The org's API keys: id, name and last characters, never the secret."""
        keys, offset = [], 0
        while True:
            data = self.call("GET", "/org/%s/api-keys" % _seg(org_id), "list API keys of org %r" % org_id,
                             "listApiKeys", params={"limit": 1000, "offset": offset})
            batch = data.get("apiKeys") or []
            keys.extend(batch)
            total = (data.get("pagination") or {}).get("total", len(keys))
            if not batch or len(keys) >= total:
                return keys
            offset = len(keys)

    def create_api_key(self, org_id, name):
        """A new org key; the answer carries the secret, shown this once only."""
        return self.call("PUT", "/org/%s/api-key" % _seg(org_id), "create API key %r in org %r" % (name, org_id),
                         "createApiKey", body={"name": name}, idempotent=False, ok=(201, 200))

    def api_key_actions(self, org_id, key_id):
        data = self.call("GET", "/org/%s/api-key/%s/actions" % (_seg(org_id), _seg(key_id)),
                         "list actions of API key %s" % key_id, "listApiKeyActions",
                         params={"limit": 1000})
        return sorted(a.get("actionId") for a in data.get("actions") or [])

    def set_api_key_actions(self, org_id, key_id, actions):
        # Replaces the whole set; Pangolin refuses an empty one.
        self.call("POST", "/org/%s/api-key/%s/actions" % (_seg(org_id), _seg(key_id)),
                  "set actions of API key %s" % key_id, "setApiKeyActions",
                  body={"actionIds": list(actions)}, idempotent=True)

    def delete_api_key(self, org_id, key_id):
        self.call("DELETE", "/org/%s/api-key/%s" % (_seg(org_id), _seg(key_id)),
                  "delete API key %s" % key_id, "deleteApiKey", idempotent=True)


def _names(resource, wanted):
    """Whether ``wanted`` is the resource's name, nice id or (in any case) full domain."""
    return wanted in (resource.get("name"), resource.get("niceId")) or (
        (resource.get("fullDomain") or "").lower() == wanted.lower())


def normalize_rule(raw):
    """The comparable view of a rule row: ``rule_id`` plus the rule fields."""
    rule = dict((k, raw.get(k)) for k in RULE_FIELDS)
    rule["rule_id"] = raw.get("ruleId")
    return rule


def _seg(value):
    """Quote one path segment (org ids are free text)."""
    return quote(str(value), safe="")
