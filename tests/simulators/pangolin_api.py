"""Pangolin's Integration API routes (base path ``/v1``), as the Pangolin simulator serves them.

Part of the Pangolin simulator (``tests/simulators/pangolin.py`` puts the parts together);
requests are checked with ``pangolin_validation.py`` and served from the store in
``pangolin_store.py``. It copies what the real server does, warts included, because the
modules under test must cope with the real thing (section numbers refer to the project's
Pangolin API reference):

* guards run in the server's order: API key -> resource/org access or root
  -> action; every key, root included, needs the action (§2);
* bodies and list queries are strict zod schemas with zod's messages (§3, §7);
* with a shared resource policy attached (EE, 1.19+; §3.6), the four rule handlers
  (``isInlinePolicy`` false) work on the legacy table only: create/list/update/delete
  touch the resource's per-resource overrides, the list never shows the shared policy's
  rules. GET /resource/{id} then shows the stale resources-table columns (applyRules,
  sso, ...), and POST /resource/{id} writes those columns, which the gatekeeper ignores;
  a POST whose ``resourcePolicyId`` differs loosely from the stored one (an omitted key
  included) deletes the resource's overrides (clearResourceSpecificSettings;
  users/roles/password/pincode/header auth/whitelist are not modelled). GET
  /resource/{id}/policies and GET /resource-policy/{id} return policy objects with their
  rules;
* upstream bugs kept on purpose: DELETE of a rule ignores which resource it
  belongs to (§3.3); IdP policy update with ``{}``, delete of a missing
  policy and create for an unknown org answer 500 (§6.2); priorities may
  repeat (§3.1); the rule list is sorted only within the page (§3.4).

Not observed on a real server, so written from the handlers' source or
guessed (a real server wins where they differ): the success messages of
GET /idp/{id}, POST /idp/{id}/oidc, DELETE /idp/{id}/org/{org}, GET /org(s),
GET /org/{org}/roles and non-http resource updates, "Invalid resource ID",
and the 404s of the resource-policy bulk replace (the mirror's
setResourcePolicyRules.ts rather ignores an unknown ruleId; its success
message "Resource policy rules set successfully" is used here).
Shared policies, from the mirror's source (Mu-L/pangolin): the isInlinePolicy
branches of server/routers/resource/{list,update,delete}ResourceRule.ts,
getResourcePolicies.ts (message "Resource policies retrieved successfully",
404 "Resource has no default policy"), server/routers/policy/
getResourcePolicy.ts (queryResourcePolicy's shape, message "Resource Policy
retrieved successfully"), the guard verifyApiKeyResourcePolicyAccess (404
"Resource policy with ID x not found", root keys skip the org check) and
the routes in server/routers/integration.ts. The clearing on update was
read by the project owner from updateResource.ts; the stored copies of that
file predate it. Guessed: POST /resource/{id} accepts only a shared
("global") policy of the resource's own org and answers 404 "Resource
policy with ID x not found" otherwise, clears the same way for non-http
resources, and routes policy fields by the policy mode the resource had
before the request; GET /resource-policy/{id} matching only plain digits.
Of the org API-key routes (§2, §11) only the shapes and success statuses
were observed; the rest comes from the handlers: every message, the 404 of
an unknown key on DELETE, the 400s of the actions body (an empty
``actionIds`` fails on its first item: zod's tuple with a rest element),
``pagination.total`` being the page length, the org in the path being
ignored by list-actions/set-actions/delete (any key id, even a root key's),
unknown body keys being dropped on create. Guessed: create for an unknown
org answers 500 "FOREIGN KEY constraint failed" (the insert runs outside
the handler's try), set-actions on an unknown key 500 "An error occurred",
actions are listed sorted by id (a key seeded with "all" lists them all),
and the action ids known are the ActionsEnum of a later mirror commit.

Harmless probes (requests that can never write), as the server answers them; the guards
run in the order server/routers/integration.ts lists them (verifyLimits and
logActionAudit are no-ops in OSS: server/middlewares/logActionAudit.ts; an EE build's
logActionAudit may write an action-audit row, not modelled), then the handler rejects
the request before any write. Key lacking the action: 403 "Key does not have permission
perform this action"; key holding it:

* PUT /resource/{id}/rule ``{}``: 400, every missing field (createResourceRule.ts parses
  the body before the path);
* POST /resource/{id}/rule/0 ``{}`` and DELETE /resource/{id}/rule/0: 400 'Too small:
  expected number to be >0 at "ruleId"' (update/deleteResourceRule.ts parse the path
  first, ``z.coerce.number().int().positive()``);
* POST /resource/{id} ``{}``: 400 "At least one field must be provided for update"
  (updateResource.ts: the body's refine, before any write or policy clearing);
* PUT /org/{orgId}/api-key ``{}``: 400 at "name" (createOrgApiKey.ts);
* POST /org/{orgId}/api-key/{id}/actions ``{}``: 400 'expected tuple, received undefined
  at "actionIds"' (setApiKeyActions.ts parses the body first);
* DELETE /org/{orgId}/api-key/0: 404 "API Key with ID 0 not found" (deleteApiKey.ts);
* GET /org/{orgId}/api-key/{own id}/actions with a root key: 200 and the key's own
  actions (listApiKeyActions.ts selects by apiKeyId alone);
* the five api-key routes and GET /orgs with a non-root key: 403 "Key does not have
  root access" whatever its actions (verifyApiKeyIsRoot runs first); GET /orgs with a
  root key: 403 without listOrgs, else 200 with every org (listOrgs.ts: a plain
  z.object, unknown parameters ignored, limit > 0).
"""

import json
import re
import secrets
from urllib.parse import urlencode

from tests.simulators.base import Response
from tests.simulators.pangolin_logs import LOG_ROUTE_SINCE
from tests.simulators.pangolin_store import POLICY_FIELDS
from tests.simulators.pangolin_validation import (
    API_KEY_FIELDS, HTTP_RESOURCE_FIELDS, IDP_ORG_FIELDS, IDP_UPDATE_FIELDS, KEY_ACTIONS_FIELDS, KEY_LIST_QUERY,
    LIMIT_OFFSET, ORG_LIST_QUERY, RAW_RESOURCE_FIELDS, RULE_FIELDS, RULE_LIST_QUERY, RULE_MODES, ApiError,
    _check_field, _js_number, _js_str, check_rule_value, page_param, zod_query, zod_strict,
)

HTML_404 = ('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Error</title>\n'
            "</head>\n<body>\n<pre>Cannot %s %s</pre>\n</body>\n</html>\n")

# server/auth/actions.ts ActionsEnum; ensureActions copies it into the actions table,
# which is what setApiKeyActions checks ids against
ACTION_IDS = tuple(sorted("""
createOrgUser listOrgs listUserOrgs createOrg getOrg updateOrg deleteOrg createSite deleteSite getSite
listSites updateSite updateSiteApprovals restartSite resetSiteBandwidth reGenerateSecret createResource
deleteResource getResource listResources updateResource createTarget deleteTarget getTarget listTargets
updateTarget createRole deleteRole getRole listRoles updateRole inviteUser listInvitations removeInvitation
removeUser listUsers listSiteRoles listResourceRoles setResourceUsers setResourceRoles listResourceUsers
listResourceAiModels setResourceAiModels listRoleResources addUserRole removeUserRole setUserOrgRoles
getOrgUser updateUser getUser setResourcePassword setResourcePincode setResourceHeaderAuth
setResourceWhitelist getResourceWhitelist generateAccessToken createResourceSessionToken deleteAcessToken
listAccessTokens createResourceRule deleteResourceRule listResourceRules updateResourceRule
createSiteResource deleteSiteResource getSiteResource listSiteResources updateSiteResource createClient
deleteClient archiveClient unarchiveClient blockClient unblockClient updateClient listClients getClient
listOrgDomains getDomain updateOrgDomain getDNSRecords createNewt createOlm createIdp updateIdp deleteIdp
listIdps getIdp createIdpOrg deleteIdpOrg listIdpOrgs updateIdpOrg checkOrgId createApiKey deleteApiKey
setApiKeyActions setApiKeyOrgs listApiKeyActions listApiKeys getApiKey createSiteProvisioningKey
listSiteProvisioningKeys updateSiteProvisioningKey deleteSiteProvisioningKey getCertificate
restartCertificate billing createOrgDomain deleteOrgDomain restartOrgDomain createRemoteExitNode
updateRemoteExitNode getRemoteExitNode listRemoteExitNode deleteRemoteExitNode updateOrgUser
createLoginPage updateLoginPage getLoginPage deleteLoginPage listBlueprints getBlueprint applyBlueprint
viewLogs exportLogs listApprovals updateApprovals signSshKey createEventStreamingDestination
updateEventStreamingDestination deleteEventStreamingDestination listEventStreamingDestinations
createAlertRule updateAlertRule deleteAlertRule listAlertRules listOrgLabels createOrgLabel updateOrgLabel
deleteOrgLabel attachLabelToItem detachLabelFromItem getAlertRule createHealthCheck updateHealthCheck
deleteHealthCheck listHealthChecks createBrowserGatewayTarget updateBrowserGatewayTarget
deleteBrowserGatewayTarget getBrowserGatewayTarget listBrowserGatewayTargets listResourcePolicies
getResourcePolicy createResourcePolicy updateResourcePolicy deleteResourcePolicy listResourcePolicyRoles
setResourcePolicyRoles listResourcePolicyUsers setResourcePolicyUsers setResourcePolicyPassword
setResourcePolicyPincode setResourcePolicyHeaderAuth setResourcePolicyWhitelist setResourcePolicyRules
createOrgWideLauncherView createAiProvider deleteAiProvider getAiProvider listAiProviders updateAiProvider
createAiModel deleteAiModel getAiModel listAiModels updateAiModel createAiBudget deleteAiBudget getAiBudget
listAiBudgets updateAiBudget
""".split()))

RID = r"(?P<resourceId>[^/]+)"
PUB = r"(?:resource|public-resource)"


def _no_constant(name):
    raise json.JSONDecodeError("Unexpected token", name, 0)  # JSON.parse has no NaN/Infinity


class PangolinApi:
    """The Integration API: routing, the key check, the guards and every route's handler.

    A mixin of ``PangolinSimulator`` placed before ``SimulatorBase``, whose ``handle`` and
    ``fault_response`` it implements; the handlers read and write the store's records.
    """

    def _build_routes(self):
        """``self.routes``: (method, compiled path pattern, handler), matched in this order."""
        self.routes = [
            ("GET", PUB + "/" + RID + "/rules", self._list_rules),
            ("GET", PUB + "/" + RID + "/policies", self._get_resource_policies),
            ("PUT", PUB + "/" + RID + "/rule", self._create_rule),
            ("POST", PUB + "/" + RID + r"/rule/(?P<ruleId>[^/]+)", self._update_rule),
            ("DELETE", PUB + "/" + RID + r"/rule/(?P<ruleId>[^/]+)", self._delete_rule),
            ("GET", PUB + "/" + RID, self._get_resource),
            ("POST", PUB + "/" + RID, self._update_resource),
            ("GET", r"(?:public-)?resource-policy/(?P<policyId>[^/]+)", self._get_policy),
            ("POST", r"(?:public-)?resource-policy/(?P<policyId>[^/]+)/rules", self._set_policy_rules),
            ("PUT", r"(?:public-)?resource-policy/(?P<policyId>[^/]+)/rules", self._set_policy_rules),
            ("GET", r"org/(?P<orgId>[^/]+)/(?:public-)?resources", self._list_resources),
            ("GET", r"org/(?P<orgId>[^/]+)/(?:resource-names|resources-names|public-resource-names)",
             self._resource_names),
            ("GET", r"org/(?P<orgId>[^/]+)/roles", self._list_roles),
            ("GET", r"org/(?P<orgId>[^/]+)/api-keys", self._list_api_keys),
            ("PUT", r"org/(?P<orgId>[^/]+)/api-key", self._create_api_key),
            ("DELETE", r"org/(?P<orgId>[^/]+)/api-key/(?P<apiKeyId>[^/]+)", self._delete_api_key),
            ("GET", r"org/(?P<orgId>[^/]+)/api-key/(?P<apiKeyId>[^/]+)/actions", self._list_api_key_actions),
            ("GET", r"org/(?P<orgId>[^/]+)/logs/request", self._query_request_log, LOG_ROUTE_SINCE),
            ("POST", r"org/(?P<orgId>[^/]+)/api-key/(?P<apiKeyId>[^/]+)/actions", self._set_api_key_actions),
            ("GET", r"org/(?P<orgId>[^/]+)", self._get_org),
            ("GET", r"orgs", self._list_orgs),
            ("GET", r"idp", self._list_idps),
            ("GET", r"idp/(?P<idpId>[^/]+)", self._get_idp),
            ("POST", r"idp/(?P<idpId>[^/]+)/oidc", self._update_idp),
            ("GET", r"idp/(?P<idpId>[^/]+)/org", self._list_idp_orgs),
            ("PUT", r"idp/(?P<idpId>[^/]+)/org/(?P<orgId>[^/]+)", self._create_idp_org),
            ("POST", r"idp/(?P<idpId>[^/]+)/org/(?P<orgId>[^/]+)", self._update_idp_org),
            ("DELETE", r"idp/(?P<idpId>[^/]+)/org/(?P<orgId>[^/]+)", self._delete_idp_org),
        ]
        # a fourth item is the first version serving the route (older ones 404 like Express)
        self.routes = [(r[0], re.compile("^/v1/" + r[1] + "$"), r[2], r[3] if len(r) > 3 else None)
                       for r in self.routes]

    @staticmethod
    def ok(data, message, status=200):
        return Response(status, {"data": data, "success": True, "error": False,
                                 "message": message, "status": status})

    @staticmethod
    def err(status, message):
        return Response(status, {"data": None, "success": False, "error": True,
                                 "message": message, "status": status, "stack": None})

    def fault_response(self, status, fault):
        """An injected fault as Pangolin answers it: errorHandlerMiddleware's envelope, Express's headers.

        The integration API has no rate limiter of its own (§1): a 429 is modelled with the
        text of Pangolin's dashboard limiter (``express-rate-limit``, default limits), for a
        client's Retry-After handling; its Retry-After comes from the fault. A 5xx carries the
        handlers' catch-all message (500) or the status's reason phrase (createHttpError's
        default); a 502/504 from a proxy in front would rather be HTML. Not observed on a real
        server.
        """
        messages = {429: "Rate limit exceeded. You can make 500 requests every 1 minute(s).",
                    500: "An error occurred", 502: "Bad Gateway", 503: "Service Unavailable",
                    504: "Gateway Timeout"}
        message = messages.get(status, "Internal Server Error")
        resp = self.err(status, message)
        resp.headers.update({"Access-Control-Allow-Origin": "*", "X-Powered-By": "Express"})
        return resp

    # -- dispatch ------------------------------------------------------------
    def handle(self, request):
        self._apply_due()  # the request log's flushes and cleanups due by the clock
        resp = self._route(request)
        resp.headers.setdefault("Access-Control-Allow-Origin", "*")  # cors() (§1)
        resp.headers.setdefault("X-Powered-By", "Express")
        return resp

    def _route(self, req):
        method = "GET" if req.method == "HEAD" else req.method
        path = req.path.rstrip("/") or "/"  # Express routing ignores a trailing slash
        if path == "/v1" and method == "GET":
            return Response(200, {"message": "Healthy"})
        # express.json() runs before any router, so bad JSON beats auth
        body = ...  # zod sees `undefined` when no JSON body came
        if req.raw_body and "application/json" in req.headers.get("content-type", ""):
            try:
                body = json.loads(req.raw_body.decode("utf-8"), parse_constant=_no_constant)
            except ValueError as exc:
                return self.err(400, self._json_error(exc))
            if not isinstance(body, (dict, list)):  # body-parser strict mode
                return self.err(400, 'Unexpected token in JSON at position 0')
        if not (path + "/").startswith("/v1/"):
            return self._html_404(req)
        try:
            key = self._authenticate(req)
            for route_method, pattern, fn, since in self.routes:
                m = pattern.match(path)
                if m and route_method == method and self._route_available(since):
                    return fn(req, key, m.groupdict(), body)
            return self._html_404(req)
        except ApiError as exc:
            return self.err(exc.status, exc.message)

    @staticmethod
    def _json_error(exc):
        pos = getattr(exc, "pos", 0)
        if "property name" in str(exc):
            return "Expected property name or '}' in JSON at position %d" % pos
        return "Unexpected token in JSON at position %d" % pos

    @staticmethod
    def _html_404(req):
        # Express finalhandler's page; notFoundMiddleware only covers /api (§7)
        url = req.path + ("?" + urlencode(req.query, doseq=True) if req.query else "")
        url = url.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return Response(404, (HTML_404 % (req.method, url)).encode(), "text/html; charset=utf-8",
                        {"Content-Security-Policy": "default-src 'none'", "X-Content-Type-Options": "nosniff"})

    def _authenticate(self, req):
        header = req.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            raise ApiError(401, "API key required")
        token = header.split(" ")[1]
        if "." not in token:  # secret undefined -> argon2 throws (§2)
            raise ApiError(500, "An error occurred checking API key")
        key_id, secret = token.split(".")[:2]
        key = self.api_keys.get(key_id)
        if key is None or not secrets.compare_digest(key["secret"], secret):
            raise ApiError(401, "Invalid API key")
        return key

    # guards (server/middlewares/integration) ---------------------------------
    @staticmethod
    def _need(key, action):
        if key["actions"] != "all" and action not in key["actions"]:
            raise ApiError(403, "Key does not have permission perform this action")

    @staticmethod
    def _root(key, action):
        if not key["root"]:
            raise ApiError(403, "Key does not have root access")
        PangolinApi._need(key, action)

    @staticmethod
    def _org_access(key, org_id):
        if not key["root"] and key["orgId"] != org_id:
            raise ApiError(403, "Key does not have access to this organization")

    def _resource_access(self, key, raw_id, action):
        m = re.match(r"\s*([+-]?\d+)", raw_id)  # parseInt()
        if not m:
            raise ApiError(400, "Invalid resource ID")
        rid = int(m.group(1))
        res = self.resources.get(rid)
        if res is None:
            raise ApiError(404, "Resource with ID %d not found" % rid)
        self._org_access(key, res["orgId"])
        self._need(key, action)
        return res

    @staticmethod
    def _int_param(raw, name, positive=True):
        """z.coerce.number().int().positive() on a path parameter."""
        value = _js_number(raw)
        if value != value:
            raise ApiError(400, 'Validation error: Invalid input: expected number, received NaN at "%s"' % name)
        msg = _check_field("int", {"gt": 0} if positive else {}, value)
        if msg:
            raise ApiError(400, 'Validation error: %s at "%s"' % (msg, name))
        return int(value)

    # rules (§3) ----------------------------------------------------------------
    def _list_rules(self, req, key, p, body):
        res = self._resource_access(key, p["resourceId"], "listResourceRules")
        q = zod_query(req, RULE_LIST_QUERY)
        rows = self._rules_of(res)
        # SQL has no ORDER BY; the priority sort runs on the page only (§3.4)
        page = sorted(rows[q["offset"]:q["offset"] + q["limit"]], key=lambda r: r["priority"])
        return self.ok({"rules": [self._list_row(r) for r in page],
                        "pagination": {"total": len(rows), "limit": q["limit"], "offset": q["offset"]}},
                       "Resource rules retrieved successfully")

    def _create_rule(self, req, key, p, body):
        res = self._resource_access(key, p["resourceId"], "createResourceRule")
        zod_strict(body, RULE_FIELDS, required=("action", "match", "value", "priority"))
        if res["mode"] not in RULE_MODES:
            raise ApiError(400, "Cannot create rule for non-http resource")
        check_rule_value(body["match"], body["value"])
        rule_id = self._insert_rule(res, body["action"], body["match"], body["value"], body["priority"],
                                    body.get("enabled", True))
        row = (self.policy_rules if self._inline(res) else self.legacy_rules)[rule_id]
        return self.ok(dict(row), "Resource rule created successfully", 201)

    def _update_rule(self, req, key, p, body):
        res = self._resource_access(key, p["resourceId"], "updateResourceRule")
        rule_id = self._int_param(p["ruleId"], "ruleId")
        zod_strict(body, RULE_FIELDS, required=("priority",))
        if res["mode"] not in RULE_MODES:
            raise ApiError(400, "Cannot update rule for non-http resource")
        table = self.policy_rules if self._inline(res) else self.legacy_rules
        rule = table.get(rule_id)
        if rule is None:
            raise ApiError(404, "Resource rule with ID %d not found" % rule_id)
        owner = ("resourcePolicyId", res["defaultResourcePolicyId"]) if self._inline(res) \
            else ("resourceId", res["resourceId"])
        if rule[owner[0]] != owner[1]:
            raise ApiError(403, "Resource rule %d does not belong to resource %d" % (rule_id, res["resourceId"]))
        # value is checked only when sent, against match ?? existing match (§3.2)
        if "value" in body:
            check_rule_value(body.get("match") or rule["match"], body["value"])
        rule.update(body)
        return self.ok(dict(rule), "Resource rule updated successfully")

    def _delete_rule(self, req, key, p, body):
        res = self._resource_access(key, p["resourceId"], "deleteResourceRule")
        rule_id = self._int_param(p["ruleId"], "ruleId")
        # upstream bug (§3.3): deletes by ruleId alone, whatever resource owns it
        table = self.policy_rules if self._inline(res) else self.legacy_rules
        if table.pop(rule_id, None) is None:
            raise ApiError(404, "Resource rule with ID %d not found" % rule_id)
        return self.ok(None, "Resource rule deleted successfully")

    def _set_policy_rules(self, req, key, p, body):
        # §3.7 bulk replace on a policy, inline or shared
        try:
            pid = int(p["policyId"])
        except ValueError:
            raise ApiError(400, "Invalid resource policy ID")
        policy = self.policies.get(pid)
        if policy is None:
            raise ApiError(404, "Resource policy with ID %d not found" % pid)
        self._org_access(key, policy["orgId"])
        self._need(key, "setResourcePolicyRules")
        item = dict(RULE_FIELDS, ruleId=("int", {"gt": 0}))
        zod_strict(body, {"applyRules": ("bool", {}),
                          "rules": ("array", {"items": item,
                                              "items_required": ("action", "match", "value", "priority")})},
                   required=("applyRules", "rules"))
        for rule in body["rules"]:
            check_rule_value(rule["match"], rule["value"])
            if "ruleId" in rule:
                existing = self.policy_rules.get(rule["ruleId"])
                if existing is None or existing["resourcePolicyId"] != pid:
                    raise ApiError(404, "Rule with ID %d not found" % rule["ruleId"])
        keep = {r["ruleId"] for r in body["rules"] if "ruleId" in r}
        for rule_id in [i for i, r in self.policy_rules.items() if r["resourcePolicyId"] == pid and i not in keep]:
            del self.policy_rules[rule_id]
        for rule in body["rules"]:
            if "ruleId" in rule:
                self.policy_rules[rule["ruleId"]].update({k: v for k, v in rule.items() if k != "ruleId"})
            else:
                self._insert_policy_rule(pid, rule["action"], rule["match"], rule["value"], rule["priority"],
                                         rule.get("enabled", True))
        policy["applyRules"] = body["applyRules"]
        return self.ok({}, "Resource policy rules set successfully")

    def _get_resource_policies(self, req, key, p, body):
        # server/routers/resource/getResourcePolicies.ts; guards: resource access, then the action
        res = self._resource_access(key, p["resourceId"], "getResourcePolicy")
        self._int_param(p["resourceId"], "resourceId")  # z.string().transform(Number).pipe(z.int().positive())
        if res["defaultResourcePolicyId"] is None:
            raise ApiError(404, "Resource has no default policy")
        shared = res["resourcePolicyId"]
        return self.ok({"defaultPolicy": self._policy_view(res["defaultResourcePolicyId"]),
                        "sharedPolicy": None if shared is None else self._policy_view(shared)},
                       "Resource policies retrieved successfully")

    def _get_policy(self, req, key, p, body):
        # verifyApiKeyResourcePolicyAccess looks the raw path value up against the integer
        # column (only plain digits are modelled as matching), root keys skip the org check
        raw = p["policyId"]
        policy = self.policies.get(int(raw)) if re.fullmatch(r"\d+", raw) else None
        if policy is None:
            raise ApiError(404, "Resource policy with ID %s not found" % raw)
        self._org_access(key, policy["orgId"])
        self._need(key, "getResourcePolicy")
        return self.ok(self._policy_view(policy["resourcePolicyId"]), "Resource Policy retrieved successfully")

    # resources (§4) ------------------------------------------------------------
    def _list_resources(self, req, key, p, body):
        self._org_access(key, p["orgId"])
        self._need(key, "listResources")
        page_size, page = page_param(req, "pageSize", 20), page_param(req, "page", 1)
        rows = [r for r in self.resources.values() if r["orgId"] == p["orgId"]]
        needle = req.q("query")
        if needle:
            rows = [r for r in rows if needle.lower() in r["name"].lower()]
        if req.q("enabled") in ("true", "false"):
            rows = [r for r in rows if r["enabled"] == (req.q("enabled") == "true")]
        if req.q("sort_by") == "name":
            rows.sort(key=lambda r: r["name"].lower(), reverse=req.q("order") == "desc")
        chunk = rows[(page - 1) * page_size:page * page_size]
        out = []
        for r in chunk:
            view = self._resource_view(r)
            # SQLite returns sso/whitelist as 1/0; no applyRules in list rows (§4)
            out.append({"resourceId": r["resourceId"], "niceId": r["niceId"], "name": r["name"],
                        "ssl": r["ssl"], "fullDomain": r["fullDomain"], "passwordId": None,
                        "sso": int(view["sso"]), "pincodeId": None,
                        "whitelist": int(view["emailWhitelistEnabled"]), "proxyPort": r["proxyPort"],
                        "wildcard": r["wildcard"], "mode": r["mode"], "enabled": r["enabled"],
                        "domainId": r["domainId"], "headerAuthId": None, "health": r["health"],
                        "targets": [], "sites": [], "labels": []})
        return self.ok({"resources": out, "pagination": {"total": len(rows), "pageSize": page_size,
                                                         "page": page}},
                       "Resources retrieved successfully")

    def _resource_names(self, req, key, p, body):
        self._org_access(key, p["orgId"])
        self._need(key, "listResources")
        return self.ok([{"resourceId": r["resourceId"], "name": r["name"]}
                        for r in self.resources.values() if r["orgId"] == p["orgId"]],
                       "Resource Names retrieved successfully")

    def _get_resource(self, req, key, p, body):
        res = self._resource_access(key, p["resourceId"], "getResource")
        return self.ok(self._resource_view(res), "Resource retrieved successfully")

    def _update_resource(self, req, key, p, body):
        res = self._resource_access(key, p["resourceId"], "updateResource")
        http = res["mode"] == "http"
        zod_strict(body, HTTP_RESOURCE_FIELDS if http else RAW_RESOURCE_FIELDS,
                   nonempty_msg="At least one field must be provided for update")
        wanted = body.get("resourcePolicyId")  # undefined and null alike
        if wanted is not None:
            # accepted: a shared policy of the resource's org (guessed: anything else 404s)
            policy = self.policies.get(wanted)
            if policy is None or policy["scope"] != "global" or policy["orgId"] != res["orgId"]:
                raise ApiError(404, "Resource policy with ID %s not found" % _js_str(wanted))
            wanted = int(wanted)
        inline = self._inline(res)  # the row as the handler read it, before this update
        # `resource.resourcePolicyId != updateData.resourcePolicyId` is true when a resource
        # with a shared policy gets a body without the key: its overrides are deleted
        self._clear_overrides_if_changed(res, wanted)
        if "resourcePolicyId" in body:
            res["resourcePolicyId"] = wanted
        for field, value in body.items():
            if field == "resourcePolicyId":
                continue
            if field in POLICY_FIELDS and inline:
                self.policies[res["defaultResourcePolicyId"]][field] = value
            else:
                res[field] = value  # with a shared policy: the resources column badger ignores
        if "subdomain" in body:
            res["fullDomain"] = ("%s.%s" % (body["subdomain"], res["_baseDomain"])
                                 if body["subdomain"] else res["_baseDomain"])
        return self.ok(self._resource_view(res),
                       "HTTP resource updated successfully" if http else "Non-http resource updated successfully")

    # orgs and roles (§5) -------------------------------------------------------
    def _get_org(self, req, key, p, body):
        self._org_access(key, p["orgId"])
        self._need(key, "getOrg")
        org = self.orgs.get(p["orgId"])
        if org is None:
            raise ApiError(404, "Organization with ID %s not found" % p["orgId"])
        return self.ok({"org": dict(org)}, "Organization retrieved successfully")

    def _list_orgs(self, req, key, p, body):
        self._root(key, "listOrgs")
        q = zod_query(req, ORG_LIST_QUERY, strict=False)
        orgs = list(self.orgs.values())
        return self.ok({"orgs": [dict(o) for o in orgs[q["offset"]:q["offset"] + q["limit"]]],
                        "pagination": {"total": len(orgs), "limit": q["limit"], "offset": q["offset"]}},
                       "Organizations retrieved successfully")

    def _list_roles(self, req, key, p, body):
        self._org_access(key, p["orgId"])
        self._need(key, "listRoles")
        page_size, page = page_param(req, "pageSize", 20), page_param(req, "page", 1)
        org = self.orgs.get(p["orgId"])  # unknown org with a root key: 200 and empty (§5)
        rows = [dict(r, orgName=org["name"]) for r in self.roles.values() if r["orgId"] == p["orgId"]]
        needle = req.q("query")
        if needle:
            rows = [r for r in rows if needle.lower() in r["name"].lower()]
        if req.q("sort_by") == "name":
            rows.sort(key=lambda r: r["name"].lower(), reverse=req.q("order") == "desc")
        return self.ok({"roles": rows[(page - 1) * page_size:page * page_size],
                        "pagination": {"total": len(rows), "page": page, "pageSize": page_size}},
                       "Roles retrieved successfully")

    # org API keys (§2, §11; server/routers/apiKeys) ---------------------------
    # Every route: verifyApiKeyIsRoot -> verifyApiKeyHasAction. The handlers other
    # than create and list look the key up by id alone, whatever org the path names.
    def _list_api_keys(self, req, key, p, body):
        self._root(key, "listApiKeys")
        q = zod_query(req, KEY_LIST_QUERY, strict=False)
        rows = [{"apiKeyId": key_id, "orgId": k["orgId"], "lastChars": k["lastChars"],
                 "createdAt": k["createdAt"], "name": k["name"]}
                for key_id, k in self.api_keys.items() if k["orgId"] == p["orgId"] and not k["root"]]
        page = rows[q["offset"]:q["offset"] + q["limit"]]
        # total is the length of the page, not a count of all rows
        return self.ok({"apiKeys": page, "pagination": {"total": len(page), "limit": q["limit"],
                                                        "offset": q["offset"]}},
                       "API keys retrieved successfully")

    def _create_api_key(self, req, key, p, body):
        self._root(key, "createApiKey")
        zod_strict(body, API_KEY_FIELDS, required=("name",), strict=False)
        if p["orgId"] not in self.orgs:
            # apiKeyOrg's foreign key; the insert runs outside the handler's try, so
            # Express 5 hands the raw SqliteError to formatError (guessed)
            raise ApiError(500, "FOREIGN KEY constraint failed")
        key_id, secret = self._new_key()
        row = self._store_key(key_id, secret, False, p["orgId"], set(), body["name"])  # no actions yet
        return self.ok({"apiKeyId": key_id, "apiKey": secret, "name": row["name"], "lastChars": row["lastChars"],
                        "createdAt": row["createdAt"]}, "API key created", 201)

    def _delete_api_key(self, req, key, p, body):
        self._root(key, "deleteApiKey")
        if self.api_keys.pop(p["apiKeyId"], None) is None:  # its actions and org link cascade
            raise ApiError(404, "API Key with ID %s not found" % p["apiKeyId"])
        return self.ok(None, "API key deleted successfully")

    def _list_api_key_actions(self, req, key, p, body):
        self._root(key, "listApiKeyActions")
        q = zod_query(req, KEY_LIST_QUERY, strict=False)
        target = self.api_keys.get(p["apiKeyId"])  # unknown key: an empty list
        held = [] if target is None else [a for a in ACTION_IDS if target["actions"] == "all" or
                                          a in target["actions"]]
        page = [{"actionId": a} for a in held[q["offset"]:q["offset"] + q["limit"]]]
        return self.ok({"actions": page, "pagination": {"total": len(page), "limit": q["limit"],
                                                        "offset": q["offset"]}},
                       "API keys retrieved successfully")

    def _set_api_key_actions(self, req, key, p, body):
        self._root(key, "setApiKeyActions")
        zod_strict(body, KEY_ACTIONS_FIELDS, required=("actionIds",))
        wanted = set(body["actionIds"])  # duplicates dropped
        if not wanted.issubset(ACTION_IDS):
            raise ApiError(400, "One or more actions do not exist")
        target = self.api_keys.get(p["apiKeyId"])
        if target is None:
            raise ApiError(500, "An error occurred")  # apiKeyActions' foreign key (guessed)
        target["actions"] = wanted  # replaces the whole set
        return self.ok({}, "API key actions updated successfully")

    # IdPs (§6) ------------------------------------------------------------------
    def _idp_id(self, raw):
        try:
            return int(float(raw))
        except ValueError:
            raise ApiError(400, 'Validation error: Invalid input: expected number, received NaN at "idpId"')

    def _list_idps(self, req, key, p, body):
        # guards commented out upstream: any valid key may list (§2)
        q = zod_query(req, LIMIT_OFFSET)
        rows = []
        for idp_id, entry in sorted(self.idps.items()):
            i = entry["idp"]
            rows.append({"idpId": idp_id, "name": i["name"], "type": i["type"],
                         "variant": entry["idpOidcConfig"]["variant"],
                         "orgCount": sum(1 for (x, _) in self.idp_orgs if x == idp_id),
                         "autoProvision": i["autoProvision"], "tags": i["tags"]})
        return self.ok({"idps": rows[q["offset"]:q["offset"] + q["limit"]],
                        "pagination": {"total": len(rows), "limit": q["limit"], "offset": q["offset"]}},
                       "Idps retrieved successfully")

    def _get_idp(self, req, key, p, body):
        self._root(key, "getIdp")
        entry = self.idps.get(self._idp_id(p["idpId"]))
        if entry is None:
            raise ApiError(404, "Idp not found")
        return self.ok(json.loads(json.dumps(entry)), "Idp retrieved successfully")

    def _update_idp(self, req, key, p, body):
        self._root(key, "updateIdp")
        idp_id = self._idp_id(p["idpId"])
        zod_strict(body, IDP_UPDATE_FIELDS)
        entry = self.idps.get(idp_id)
        if entry is None:
            raise ApiError(404, "IdP not found")
        for field, value in body.items():  # only the fields sent change (§6.1)
            target = entry["idp"] if field in entry["idp"] else entry["idpOidcConfig"]
            target[field] = value
        return self.ok({"idpId": idp_id}, "IdP updated successfully")

    def _list_idp_orgs(self, req, key, p, body):
        self._root(key, "listIdpOrgs")
        idp_id = self._idp_id(p["idpId"])
        q = zod_query(req, LIMIT_OFFSET)
        rows = self.idp_policies(idp_id)
        return self.ok({"policies": rows[q["offset"]:q["offset"] + q["limit"]],
                        "pagination": {"total": len(rows), "limit": q["limit"], "offset": q["offset"]}},
                       "Policies retrieved successfully")

    def _create_idp_org(self, req, key, p, body):
        self._root(key, "createIdpOrg")
        idp_id = self._idp_id(p["idpId"])
        zod_strict(body, IDP_ORG_FIELDS)
        if idp_id not in self.idps:
            raise ApiError(400, "An IDP with this ID does not exist.")
        if (idp_id, p["orgId"]) in self.idp_orgs:
            raise ApiError(400, "An IDP org policy already exists.")  # 400, not 409 (§6.2)
        if p["orgId"] not in self.orgs:
            raise ApiError(500, "An error occurred")  # FK failure (§6.2)
        self.idp_orgs[(idp_id, p["orgId"])] = {"roleMapping": body.get("roleMapping"),
                                               "orgMapping": body.get("orgMapping")}
        return self.ok({}, "Idp created successfully", 201)

    def _update_idp_org(self, req, key, p, body):
        self._root(key, "updateIdpOrg")
        idp_id = self._idp_id(p["idpId"])
        zod_strict(body, IDP_ORG_FIELDS)
        if idp_id not in self.idps:
            raise ApiError(400, "An IDP with this ID does not exist.")
        policy = self.idp_orgs.get((idp_id, p["orgId"]))
        if policy is None:
            raise ApiError(400, "A policy for this IDP and org does not exist.")
        if not body:
            raise ApiError(500, "An error occurred")  # drizzle refuses an empty set() (§6.2)
        policy.update(body)
        return self.ok({}, "Policy updated successfully")

    def _delete_idp_org(self, req, key, p, body):
        self._root(key, "deleteIdpOrg")
        idp_id = self._idp_id(p["idpId"])
        if self.idp_orgs.pop((idp_id, p["orgId"]), None) is None:
            raise ApiError(500, "An error occurred")  # `existing.idp` on undefined (§6.2)
        return self.ok(None, "Policy deleted successfully")
