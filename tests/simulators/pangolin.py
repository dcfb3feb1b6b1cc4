"""Stateful stand-in for the Pangolin 1.22 Integration API (base path ``/v1``).

It copies what the real server does, warts included, because the modules
under test must cope with the real thing (section numbers refer to the
project's Pangolin API reference):

* guards run in the server's order: API key -> resource/org access or root
  -> action; every key, root included, needs the action (§2);
* bodies and list queries are strict zod schemas with zod's messages (§3, §7);
* rules live on the resource's inline default policy, or in the legacy
  per-resource table (§3.5, §3.6); the two tables keep separate ruleId
  sequences (SQLite AUTOINCREMENT per table), so one id can exist in both;
* shared resource policies (EE, 1.19+; §3.6): a resource may carry a shared
  ``resourcePolicyId`` beside its inline ``defaultResourcePolicyId``. Then
  the four rule handlers (``isInlinePolicy`` false) work on the legacy table
  only: create/list/update/delete touch the resource's per-resource
  overrides, the list never shows the shared policy's rules. The gatekeeper
  (``apply_rules_for``) takes applyRules from the shared policy and
  evaluates the overrides first, then the shared policy's rules with their
  priority raised by the highest override priority (at least 0, disabled
  rows counted); the inline policy's rules are ignored. GET /resource/{id}
  then shows the stale resources-table columns (applyRules, sso, ...), and
  POST /resource/{id} writes those columns, which the gatekeeper ignores;
  a POST whose ``resourcePolicyId`` differs loosely from the stored one
  (an omitted key included) deletes the resource's overrides
  (clearResourceSpecificSettings; users/roles/password/pincode/header
  auth/whitelist are not modelled). GET /resource/{id}/policies and
  GET /resource-policy/{id} return policy objects with their rules.
  Seed with ``add_shared_policy``, ``add_policy_rule`` and
  ``attach_shared_policy``;
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
Shared policies, from the mirror's source (Mu-L/pangolin):
getResourceByDomain/getResourceRules in
server/db/queries/verifySessionQueries.ts, checkRules in
server/routers/badger/verifySession.ts, the isInlinePolicy branches of
server/routers/resource/{list,update,delete}ResourceRule.ts,
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
before the request; an inline policy's niceId (the resource's niceId);
``headerAuth`` being null (drizzle nulls a nested left-join select with no
row); GET /resource-policy/{id} matching only plain digits.
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

Run it alone with ``python -m tests.simulators.pangolin --port 8000``.
"""

import argparse
import ipaddress
import math
import json
import re
import secrets
import signal
import string
import threading
import uuid
from datetime import datetime, timezone
from urllib.parse import urlencode

from tests.simulators.base import Response, SimulatorBase

ALNUM = string.ascii_lowercase + string.digits
ACTIONS = ("ACCEPT", "DROP", "PASS")
MATCHES = ("CIDR", "IP", "PATH", "COUNTRY", "COUNTRY_IS_NOT", "ASN", "REGION")
RULE_MODES = ("http", "ssh", "rdp", "vnc")  # §3.1: rules only on these modes

# server/db/countries.ts: ISO-3166 alpha-2 codes (upper case only) plus ALL
COUNTRIES = frozenset("""
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS
BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE
EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM
HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC
LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA
NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW
SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO
TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW ALL
""".split())

# server/db/regions.ts: UN M.49 regions and sub-regions
REGIONS = frozenset("""
002 015 202 014 017 018 011 019 419 029 013 005 021 142 143 030 035 034 145
150 151 154 039 155 009 053 054 057 061
""".split())

PATH_CHAR = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;#=@:]")
V4_PREFIX = re.compile(r"^(3[0-2]|[12]?[0-9])$")
V6_PREFIX = re.compile(r"^(12[0-8]|1[01][0-9]|[1-9]?[0-9])$")

HTML_404 = ('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Error</title>\n'
            "</head>\n<body>\n<pre>Cannot %s %s</pre>\n</body>\n</html>\n")


def _no_constant(name):
    raise json.JSONDecodeError("Unexpected token", name, 0)  # JSON.parse has no NaN/Infinity


class ApiError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


# -- zod look-alike ------------------------------------------------------
# A field spec is (kind, options). kinds: int, number, bool, str, enum, array,
# tuple (z.tuple([item], item): an array whose first item is required).
# Messages follow zod v4 + zod-validation-error, e.g.
# 'Validation error: Invalid input: expected number, received undefined at "priority"'.

def _js_type(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "NaN" if value != value else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


EXPECTED = {"int": "number", "number": "number", "bool": "boolean", "str": "string", "array": "array",
            "tuple": "tuple"}


def _check_field(kind, opts, value):
    """Return a zod message for one present value, or None."""
    if value is None and opts.get("nullable"):
        return None
    if kind == "enum":
        if value not in opts["values"]:
            return "Invalid option: expected one of %s" % "|".join('"%s"' % v for v in opts["values"])
        return None
    expected = EXPECTED[kind]
    if kind == "tuple" and isinstance(value, list):
        return None
    if _js_type(value) != expected:
        return "Invalid input: expected %s, received %s" % (expected, _js_type(value))
    if kind == "int" and not (math.isfinite(value) and value == int(value)):
        return "Invalid input: expected int, received number"  # z.int() on 1.5
    if kind in ("int", "number"):
        if "gt" in opts and not value > opts["gt"]:
            return "Too small: expected number to be >%s" % opts["gt"]
        if "min" in opts and value < opts["min"]:
            return "Too small: expected number to be >=%s" % opts["min"]
        if "max" in opts and value > opts["max"]:
            return "Too big: expected number to be <=%s" % opts["max"]
    if kind == "str":
        if "min" in opts and len(value) < opts["min"]:
            return "Too small: expected string to have >=%d characters" % opts["min"]
        if "max" in opts and len(value) > opts["max"]:
            return "Too big: expected string to have <=%d characters" % opts["max"]
        if "regex" in opts and not re.search(opts["regex"], value):
            return "Invalid string: must match pattern /%s/" % opts["regex"]
    return None


def zod_strict(data, fields, required=(), strict=True, nonempty_msg=None, path=""):
    """Validate ``data`` against ``fields``; raise ApiError(400) like the server."""
    issues = []

    def at(name):
        return "%s.%s" % (path, name) if path and not name.startswith("[") else path + name

    if not isinstance(data, dict):
        issues.append(("Invalid input: expected object, received %s" % (
            "undefined" if data is ... else _js_type(data)), path))
    else:
        for name, (kind, opts) in fields.items():
            if name not in data:
                if name in required:
                    if kind == "enum":
                        msg = _check_field(kind, opts, None)
                    else:
                        msg = "Invalid input: expected %s, received undefined" % EXPECTED[kind]
                    issues.append((msg, at(name)))
                continue
            msg = _check_field(kind, opts, data[name])
            if msg:
                issues.append((msg, at(name)))
            elif kind == "array" and data[name] is not None and "items" in opts:
                for i, item in enumerate(data[name]):
                    try:
                        zod_strict(item, opts["items"], opts.get("items_required", ()),
                                   path="%s[%d]" % (at(name), i))
                    except ApiError as exc:
                        issues.append((exc.message[len("Validation error: "):], None))
            elif kind == "tuple":
                item_kind, item_opts = opts["item"]
                for i in range(max(1, len(data[name]))):  # the rest element makes later items optional
                    msg = ("Invalid input: expected %s, received undefined" % EXPECTED[item_kind]
                           if i >= len(data[name]) else _check_field(item_kind, item_opts, data[name][i]))
                    if msg:
                        issues.append((msg, "%s[%d]" % (at(name), i)))
        unknown = [k for k in data if k not in fields]
        if strict and unknown:
            issues.append(("Unrecognized key%s: %s" % ("s" if len(unknown) > 1 else "",
                                                       ", ".join('"%s"' % k for k in unknown)), path))
        if not issues and nonempty_msg and not data:
            issues.append((nonempty_msg, path))
    if issues:
        parts = [m if p is None else ('%s at "%s"' % (m, p) if p else m) for m, p in issues]
        raise ApiError(400, "Validation error: " + "; ".join(parts))


def _js_str(value):
    """String(value) for a JSON number: 7.0 prints as 7."""
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return str(int(value))
    return str(value)


def _js_number(raw):
    """JS Number(): "" is 0, junk is NaN; integral floats become ints."""
    raw = raw.strip()
    try:
        value = float(raw) if raw else 0.0
    except ValueError:
        return float("nan")
    return int(value) if math.isfinite(value) and value == int(value) else value


def zod_query(req, fields, strict=True):
    """Strict limit/offset style query: string -> Number -> int check (§3.4)."""
    unknown = [k for k in req.query if k not in fields]
    if strict and unknown:
        raise ApiError(400, "Validation error: Unrecognized key%s: %s" % (
            "s" if len(unknown) > 1 else "", ", ".join('"%s"' % k for k in unknown)))
    out = {}
    for name, (default, opts) in fields.items():
        value = _js_number(req.q(name, default))
        if value != value:
            raise ApiError(400, 'Validation error: Invalid input: expected number, received NaN at "%s"' % name)
        msg = _check_field("int", opts, value)
        if msg:
            raise ApiError(400, 'Validation error: %s at "%s"' % (msg, name))
        out[name] = value
    return out


def page_param(req, name, default):
    """listResources/listRoles: invalid values fall back to defaults (.catch)."""
    try:
        value = int(req.q(name, ""))
    except ValueError:
        return default
    return value if value > 0 else default


# -- value checks (server/lib/validators.ts, §3.1) -------------------------

def _is_ip(value):
    if "%" in value:  # zod rejects zone ids
        return False
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


def _is_cidr(value):
    addr, sep, prefix = value.partition("/")
    if not sep or not _is_ip(addr):
        return False
    return bool((V6_PREFIX if ":" in addr else V4_PREFIX).match(prefix))


def _is_url_glob(value):
    if value == "/":
        return True
    pattern = value[1:] if value.startswith("/") else value
    if not pattern:
        return False
    segments = pattern.split("/")
    for i, seg in enumerate(segments):
        if not seg and i != len(segments) - 1:
            return False  # "//"
        j = 0
        while j < len(seg):
            if re.fullmatch(r"%[0-9A-Fa-f]{2}", seg[j:j + 3]):
                j += 3
                continue
            if not PATH_CHAR.fullmatch(seg[j]):
                return False
            j += 1
    return True


def _is_asn(value):
    v = value.strip().upper()
    return v in ("ALL", "AS0") or bool(re.fullmatch(r"AS\d+", v))


VALUE_CHECKS = {
    "IP": (_is_ip, "Invalid IP provided"),
    "CIDR": (_is_cidr, "Invalid CIDR provided"),
    "PATH": (_is_url_glob, "Invalid URL glob pattern provided"),
    "COUNTRY": (COUNTRIES.__contains__, "Invalid country code provided"),
    "COUNTRY_IS_NOT": (COUNTRIES.__contains__, "Invalid country code provided"),
    "ASN": (_is_asn, "Invalid ASN provided"),
    "REGION": (REGIONS.__contains__, "Invalid region ID provided"),
}


def check_rule_value(match, value):
    ok, message = VALUE_CHECKS[match]
    if not ok(value):
        raise ApiError(400, message)


RULE_FIELDS = {
    "action": ("enum", {"values": ACTIONS}),
    "match": ("enum", {"values": MATCHES}),
    "value": ("str", {"min": 1}),
    "priority": ("int", {}),
    "enabled": ("bool", {}),
}

_NSTR = ("str", {"nullable": True})
HTTP_RESOURCE_FIELDS = {
    "name": ("str", {"min": 1, "max": 255}),
    "niceId": ("str", {"min": 1, "max": 255, "regex": r"^[a-zA-Z0-9-]+$"}),
    "subdomain": _NSTR,
    "ssl": ("bool", {}), "sso": ("bool", {}), "blockAccess": ("bool", {}),
    "emailWhitelistEnabled": ("bool", {}), "applyRules": ("bool", {}),
    "domainId": ("str", {}), "enabled": ("bool", {}), "stickySession": ("bool", {}),
    "tlsServerName": _NSTR, "setHostHeader": _NSTR,
    "skipToIdpId": ("int", {"nullable": True, "gt": 0}),
    "headers": ("array", {"nullable": True, "items": {"name": ("str", {}), "value": ("str", {})},
                          "items_required": ("name", "value")}),
    "maintenanceModeEnabled": ("bool", {}),
    "maintenanceModeType": ("enum", {"values": ("forced", "automatic")}),
    "maintenanceTitle": ("str", {"nullable": True, "max": 255}),
    "maintenanceMessage": ("str", {"nullable": True, "max": 2000}),
    "maintenanceEstimatedTime": ("str", {"nullable": True, "max": 100}),
    "postAuthPath": _NSTR,
    "pamMode": ("enum", {"values": ("passthrough", "push")}),
    "authDaemonMode": ("enum", {"values": ("site", "remote", "native")}),
    "authDaemonPort": ("int", {"nullable": True, "min": 1, "max": 65535}),
    "resourcePolicyId": ("number", {"nullable": True}),
}
RAW_RESOURCE_FIELDS = {
    "name": ("str", {"min": 1, "max": 255}), "niceId": ("str", {"min": 1, "max": 255}),
    "proxyPort": ("int", {"min": 1, "max": 65535}), "stickySession": ("bool", {}),
    "enabled": ("bool", {}), "proxyProtocol": ("bool", {}),
    "proxyProtocolVersion": ("int", {"min": 1}), "resourcePolicyId": ("number", {"nullable": True}),
}
POLICY_FIELDS = ("sso", "emailWhitelistEnabled", "applyRules", "skipToIdpId")  # §3.6
IDP_UPDATE_FIELDS = {k: ("str", {}) for k in (
    "name", "clientId", "clientSecret", "authUrl", "tokenUrl", "identifierPath", "emailPath",
    "namePath", "scopes", "defaultRoleMapping", "defaultOrgMapping", "tags")}
IDP_UPDATE_FIELDS["autoProvision"] = ("bool", {})
IDP_UPDATE_FIELDS["variant"] = ("enum", {"values": ("oidc", "google", "azure")})
IDP_ORG_FIELDS = {"roleMapping": ("str", {}), "orgMapping": ("str", {})}
LIMIT_OFFSET = {"limit": ("1000", {"min": 0}), "offset": ("0", {"min": 0})}
# resource rule list: limit must be > 0 (§3.4)
RULE_LIST_QUERY = {"limit": ("1000", {"gt": 0}), "offset": ("0", {"min": 0})}
# listOrgApiKeys/listApiKeyActions: the same limits, but a plain z.object (unknown params ignored)
KEY_LIST_QUERY = RULE_LIST_QUERY
API_KEY_FIELDS = {"name": ("str", {"min": 1, "max": 255})}  # createOrgApiKey.ts: z.object, not strict
KEY_ACTIONS_FIELDS = {"actionIds": ("tuple", {"item": ("str", {})})}  # setApiKeyActions.ts: z.strictObject
BASE32 = "abcdefghijklmnopqrstuvwxyz234567"

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


def _nice_id(name):
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "resource"


def _now():
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class PangolinSimulator(SimulatorBase):
    name = "pangolin"

    def __init__(self):
        super().__init__()
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
        self.routes = [(m, re.compile("^/v1/" + p + "$"), fn) for m, p, fn in self.routes]
        self.reset()

    def reset(self):
        """Forget all state, log and faults (lets a test module reuse one server)."""
        with self.lock:
            self.orgs = {}
            self.roles = {}
            self.resources = {}
            self.policies = {}  # resourcePolicies (inline "resource" and shared "global"), by id
            self.policy_rules = {}  # resourcePolicyRules, by ruleId (own id sequence)
            self.legacy_rules = {}  # resourceRules (per-resource overrides), by ruleId (own id sequence)
            self.api_keys = {}
            self.idps = {}
            self.idp_orgs = {}  # (idpId, orgId) -> {roleMapping, orgMapping}
            self._ids = {}
            self.log = []
            self.faults = []

    def _next(self, kind):
        self._ids[kind] = self._ids.get(kind, 0) + 1
        return self._ids[kind]

    # -- seeding -----------------------------------------------------------
    def add_org(self, org_id, name=None):
        with self.lock:
            self.orgs[org_id] = {"orgId": org_id, "name": name or org_id,
                                 "subnet": "100.90.128.0/24", "utilitySubnet": "100.96.128.0/24",
                                 "createdAt": _now(), "settings": None}
            # createOrg.ts: every new org gets Admin and Member (§5)
            for role_name, admin, desc in (("Admin", True, "Admin role with the most permissions"),
                                           ("Member", None, "Members can only view resources")):
                rid = self._next("role")
                self.roles[rid] = {
                    "roleId": rid, "orgId": org_id, "isAdmin": admin, "name": role_name,
                    "description": desc, "requireDeviceApproval": False, "sshSudoMode": "none",
                    "sshSudoCommands": "[]", "sshCreateHomeDir": True, "sshUnixGroups": "[]",
                    "allowSsh": bool(admin)}
        return org_id

    def add_resource(self, org_id, name, subdomain=None, full_domain=None, mode="http",
                     apply_rules=False, legacy=False):
        with self.lock:
            if org_id not in self.orgs:
                self.add_org(org_id)
            rid = self._next("resource")
            nice = base = _nice_id(name)
            taken = {r["niceId"] for r in self.resources.values() if r["orgId"] == org_id}
            n = 2
            while nice in taken:
                nice, n = "%s-%d" % (base, n), n + 1
            http = mode == "http"
            if http and subdomain is None and full_domain is None:
                subdomain = nice
            if http and full_domain is None:
                full_domain = "%s.example.com" % subdomain
            if http and subdomain is None:
                subdomain = full_domain.split(".", 1)[0]
            base_domain = full_domain.split(".", 1)[1] if http and "." in full_domain else full_domain
            policy_id = None
            if not legacy:
                policy_id = self._next("policy")
                # the inline policy's niceId is a guess
                self.policies[policy_id] = {
                    "resourcePolicyId": policy_id, "orgId": org_id, "scope": "resource",
                    "niceId": nice, "name": "default policy for %s" % nice, "sso": True,
                    "emailWhitelistEnabled": False, "applyRules": bool(apply_rules), "skipToIdpId": None}
            self.resources[rid] = {
                "resourceId": rid, "resourcePolicyId": None, "defaultResourcePolicyId": policy_id,
                "resourceGuid": str(uuid.uuid4()), "orgId": org_id, "niceId": nice, "name": name,
                "subdomain": subdomain if http else None, "fullDomain": full_domain if http else None,
                "domainId": "domain1" if http else None, "ssl": http, "blockAccess": False,
                "proxyPort": None if http else 20000 + rid, "sso": True, "emailWhitelistEnabled": False,
                "applyRules": bool(apply_rules), "enabled": True, "stickySession": False,
                "tlsServerName": None, "setHostHeader": None, "enableProxy": True, "skipToIdpId": None,
                "headers": None, "proxyProtocol": False, "proxyProtocolVersion": 1,
                "maintenanceModeEnabled": False, "maintenanceModeType": "forced",
                "maintenanceTitle": None, "maintenanceMessage": None, "maintenanceEstimatedTime": None,
                "postAuthPath": None, "health": "unknown", "wildcard": False, "mode": mode,
                "pamMode": "passthrough", "authDaemonMode": "site", "authDaemonPort": None,
                "status": "approved", "_baseDomain": base_domain,
            }
            return rid

    def add_api_key(self, root=False, org_id=None, actions="all", key=None, name=None):
        """Return the bearer value ``<id>.<secret>``; ``actions`` is "all" or action ids."""
        if not root and org_id is None:
            raise ValueError("an org-scoped key needs org_id")
        with self.lock:
            if key is None:
                key = "%s.%s" % self._new_key()
            key_id, _, secret = key.partition(".")
            if not re.fullmatch(r"[a-z0-9]{15}", key_id) or not secret:
                raise ValueError("key must look like <15 [a-z0-9]>.<secret>")
            self._store_key(key_id, secret, root, org_id, "all" if actions == "all" else set(actions),
                            name or ("root key" if root else "org key"))
        return key

    def _new_key(self):
        """generateId(15) and generateIdFromEntropySize(25): an unused id and a 40-char base32 secret (§2)."""
        while True:
            key_id = "".join(secrets.choice(ALNUM) for _ in range(15))
            if key_id not in self.api_keys:
                return key_id, "".join(secrets.choice(BASE32) for _ in range(40))

    def _store_key(self, key_id, secret, root, org_id, actions, name):
        self.api_keys[key_id] = {"secret": secret, "root": root, "orgId": org_id, "actions": actions,
                                 "name": name, "lastChars": secret[-4:], "createdAt": _now()}
        return self.api_keys[key_id]

    def add_idp(self, name, auto_provision=False):
        with self.lock:
            idp_id = self._next("idp")
            self.idps[idp_id] = {
                "idp": {"idpId": idp_id, "name": name, "type": "oidc",
                        "defaultRoleMapping": "'Member'", "defaultOrgMapping": "'{{orgId}}'",
                        "autoProvision": bool(auto_provision), "tags": None},
                "idpOidcConfig": {"idpOauthConfigId": idp_id, "idpId": idp_id,
                                  "clientId": "%s-client" % _nice_id(name), "clientSecret": "secret",
                                  "authUrl": "https://idp.example.com/authorize",
                                  "tokenUrl": "https://idp.example.com/token", "identifierPath": "sub",
                                  "emailPath": "email", "namePath": "name",
                                  "scopes": "openid profile email", "variant": "oidc"},
            }
            return idp_id

    def add_idp_org_policy(self, idp_id, org_id, role_mapping=None, org_mapping=None):
        with self.lock:
            self.idp_orgs[(idp_id, org_id)] = {"roleMapping": role_mapping, "orgMapping": org_mapping}

    def add_rule(self, resource_id, action, match, value, priority, enabled=True):
        """A rule where the rule API would put it: the inline policy, else a per-resource override."""
        with self.lock:
            return self._insert_rule(self.resources[resource_id], action, match, value, priority, enabled)

    def add_shared_policy(self, org_id, name, apply_rules=True, rules=(), sso=True):
        """A shared ("global") policy of ``org_id`` (created in the EE UI or API); return its id.

        ``rules`` holds dicts (action, match, value, priority[, enabled]) or tuples in that order.
        """
        with self.lock:
            if org_id not in self.orgs:
                self.add_org(org_id)
            policy_id = self._next("policy")  # one resourcePolicies table for both kinds
            nice = base = _nice_id(name)
            taken = {p["niceId"] for p in self.policies.values() if p["orgId"] == org_id}
            n = 2
            while nice in taken:
                nice, n = "%s-%d" % (base, n), n + 1
            self.policies[policy_id] = {
                "resourcePolicyId": policy_id, "orgId": org_id, "scope": "global", "niceId": nice,
                "name": name, "sso": bool(sso), "emailWhitelistEnabled": False,
                "applyRules": bool(apply_rules), "skipToIdpId": None}
            for rule in rules:
                if isinstance(rule, dict):
                    self.add_policy_rule(policy_id, **rule)
                else:
                    self.add_policy_rule(policy_id, *rule)
            return policy_id

    def add_policy_rule(self, policy_id, action, match, value, priority, enabled=True):
        """A row of resourcePolicyRules on any policy (shared or inline); return its ruleId."""
        with self.lock:
            if policy_id not in self.policies:
                raise KeyError("no resource policy %r" % policy_id)
            return self._insert_policy_rule(policy_id, action, match, value, priority, enabled)

    def attach_shared_policy(self, resource_id, policy_id):
        """Set resources.resourcePolicyId (``None`` detaches), as updateResource does.

        A change of policy runs the server's clearResourceSpecificSettings: the
        resource's per-resource overrides (its resourceRules rows) are deleted.
        """
        with self.lock:
            res = self.resources[resource_id]
            if policy_id is not None:
                policy = self.policies[policy_id]
                if policy["scope"] != "global" or policy["orgId"] != res["orgId"]:
                    raise ValueError("policy %r is not a shared policy of org %r" % (policy_id, res["orgId"]))
            self._set_resource_policy(res, policy_id)

    def renumber_rules(self):
        """Give every rule a fresh ruleId, content unchanged (as a migration can)."""
        with self.lock:
            for table, kind in ((self.policy_rules, "policy_rule"), (self.legacy_rules, "legacy_rule")):
                old = sorted(table.items())
                table.clear()
                for _, row in old:
                    row["ruleId"] = self._next(kind)
                    table[row["ruleId"]] = row

    # -- inspection ----------------------------------------------------------
    def resource(self, resource_id):
        with self.lock:
            return self._resource_view(self.resources[resource_id])

    def rules(self, resource_id):
        """The resource's rules as the rule API lists them, in storage (ruleId) order.

        With a shared policy attached these are the per-resource overrides only.
        """
        with self.lock:
            return [self._list_row(r) for r in self._rules_of(self.resources[resource_id])]

    def policy(self, policy_id):
        """A policy as GET /resource-policy/{id} returns it (rules included)."""
        with self.lock:
            return self._policy_view(policy_id)

    def idp(self, idp_id):
        with self.lock:
            return json.loads(json.dumps(self.idps[idp_id]))

    def idp_policies(self, idp_id):
        with self.lock:
            return [dict(idpId=i, orgId=o, **p) for (i, o), p in sorted(self.idp_orgs.items()) if i == idp_id]

    def apply_rules_for(self, resource_id, client_ip):
        """What badger's verifySession/checkRules decides for ``client_ip`` (§3.8); None = no decision.

        getResourceByDomain: the selected policy is the shared one when attached, else the
        inline default; its applyRules wins over the resources column (``?? resources.applyRules``).
        getResourceRules: the resource's override rows (resourceRules) plus the selected
        policy's rules with their priority raised by the overrides' highest priority
        (``reduce(max, 0)``, disabled rows counted); the inline policy's rules are not read
        when a shared policy is attached. checkRules: stable sort by priority, first enabled
        match wins. The real server caches both lookups for 5 s; this answer is uncached.
        """
        with self.lock:
            res = self.resources[resource_id]
            policy = self._selected_policy(res)
            apply_rules = policy["applyRules"] if policy is not None else res["applyRules"]
            if not apply_rules:
                return None
            direct = [dict(r) for _, r in sorted(self.legacy_rules.items()) if r["resourceId"] == resource_id]
            offset = max([0] + [r["priority"] for r in direct])
            shared = [] if policy is None else [
                dict(r, priority=offset + r["priority"])
                for _, r in sorted(self.policy_rules.items())
                if r["resourcePolicyId"] == policy["resourcePolicyId"]]
        ip = ipaddress.ip_address(client_ip)
        for rule in sorted(direct + shared, key=lambda r: r["priority"]):  # stable, like Array.sort
            if not rule["enabled"]:
                continue
            if rule["match"] == "IP" and ipaddress.ip_address(rule["value"]) == ip:
                return rule["action"]
            if rule["match"] == "CIDR" and ip in ipaddress.ip_network(rule["value"], strict=False):
                return rule["action"]
            # PATH/COUNTRY/ASN/REGION need a request path or geo data: never match here
        return None

    # -- internals -----------------------------------------------------------
    def _inline(self, res):
        return res["resourcePolicyId"] is None and res["defaultResourcePolicyId"] is not None

    def _selected_policy(self, res):
        """getResourceByDomain: the shared policy when one is attached, else the inline default."""
        if res["resourcePolicyId"] is not None:
            return self.policies.get(res["resourcePolicyId"])
        if res["defaultResourcePolicyId"] is not None:
            return self.policies.get(res["defaultResourcePolicyId"])
        return None

    def _clear_overrides_if_changed(self, res, policy_id):
        """updateResource: `if (resource.resourcePolicyId != updateData.resourcePolicyId)
        clearResourceSpecificSettings(...)`, a loose JS compare (null == undefined, so None
        stands for both). Of the per-resource settings only the override rules are modelled."""
        if res["resourcePolicyId"] != policy_id:
            for rule_id in [i for i, r in self.legacy_rules.items() if r["resourceId"] == res["resourceId"]]:
                del self.legacy_rules[rule_id]

    def _set_resource_policy(self, res, policy_id):
        self._clear_overrides_if_changed(res, policy_id)
        res["resourcePolicyId"] = policy_id

    def _policy_view(self, policy_id):
        """queryResourcePolicy (server/routers/policy/getResourcePolicy.ts)."""
        policy = self.policies[policy_id]
        rules = [{"ruleId": r["ruleId"], "enabled": r["enabled"], "priority": r["priority"],
                  "action": r["action"], "match": r["match"], "value": r["value"]}
                 for _, r in sorted(self.policy_rules.items()) if r["resourcePolicyId"] == policy_id]
        # headerAuth is a nested select over a left join: drizzle turns it into null when
        # the join found no row (no header auth is modelled, so always null)
        return json.loads(json.dumps({
            "resourcePolicyId": policy_id, "sso": policy["sso"], "applyRules": policy["applyRules"],
            "emailWhitelistEnabled": policy["emailWhitelistEnabled"], "idpId": policy["skipToIdpId"],
            "niceId": policy["niceId"], "name": policy["name"], "passwordId": None, "pincodeId": None,
            "headerAuth": None, "roles": [], "users": [], "emailWhiteList": [], "rules": rules}))

    def _rules_of(self, res):
        if self._inline(res):
            pid = res["defaultResourcePolicyId"]
            return [r for _, r in sorted(self.policy_rules.items()) if r["resourcePolicyId"] == pid]
        return [r for _, r in sorted(self.legacy_rules.items()) if r["resourceId"] == res["resourceId"]]

    def _insert_rule(self, res, action, match, value, priority, enabled=True):
        # the handler returns the raw DB row, whose shape depends on the table (§3.5)
        if self._inline(res):
            return self._insert_policy_rule(res["defaultResourcePolicyId"], action, match, value, priority,
                                            enabled)
        rule_id = self._next("legacy_rule")  # each table has its own AUTOINCREMENT sequence
        self.legacy_rules[rule_id] = {"ruleId": rule_id, "resourceId": res["resourceId"],
                                      "enabled": enabled, "priority": priority, "action": action,
                                      "match": match, "value": value}
        return rule_id

    def _insert_policy_rule(self, policy_id, action, match, value, priority, enabled=True):
        rule_id = self._next("policy_rule")
        self.policy_rules[rule_id] = {"ruleId": rule_id, "resourcePolicyId": policy_id,
                                      "enabled": enabled, "priority": priority, "action": action,
                                      "match": match, "value": value}
        return rule_id

    @staticmethod
    def _list_row(rule):
        # list rows carry resourceId: null for inline-policy rules (§3.4)
        return {"ruleId": rule["ruleId"], "resourceId": rule.get("resourceId"), "action": rule["action"],
                "match": rule["match"], "value": rule["value"], "priority": rule["priority"],
                "enabled": rule["enabled"]}

    def _resource_view(self, res):
        view = {k: v for k, v in res.items() if not k.startswith("_")}
        if self._inline(res):  # applyInlinePolicyFields (§3.8)
            policy = self.policies[res["defaultResourcePolicyId"]]
            view.update({k: policy[k] for k in POLICY_FIELDS})
        return json.loads(json.dumps(view))

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
            for route_method, pattern, fn in self.routes:
                m = pattern.match(path)
                if m and route_method == method:
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
        PangolinSimulator._need(key, action)

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
        q = zod_query(req, LIMIT_OFFSET)
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


# -- standalone ----------------------------------------------------------------

def seed_from(sim, seed):
    """Apply a seed dict; return (resources name->id, idps name->id)."""
    resources, idps = {}, {}
    for org in seed.get("orgs", []):
        sim.add_org(org["org_id"], org.get("name"))
        for res in org.get("resources", []):
            rid = sim.add_resource(org["org_id"], res["name"], res.get("subdomain"), res.get("full_domain"),
                                   res.get("mode", "http"), res.get("apply_rules", False),
                                   res.get("legacy", False))
            resources[res["name"]] = rid
            for rule in res.get("rules", []):
                sim.add_rule(rid, rule["action"], rule["match"], rule["value"], rule["priority"],
                             rule.get("enabled", True))
    for key in seed.get("api_keys", []):
        sim.add_api_key(key.get("root", False), key.get("org_id"), key.get("actions", "all"), key.get("key"),
                        key.get("name"))
    for idp in seed.get("idps", []):
        idp_id = sim.add_idp(idp["name"], idp.get("auto_provision", False))
        idps[idp["name"]] = idp_id
        for pol in idp.get("policies", []):
            sim.add_idp_org_policy(idp_id, pol["org_id"], pol.get("role_mapping"), pol.get("org_mapping"))
    return resources, idps


def main(argv=None):
    parser = argparse.ArgumentParser(description="Pangolin 1.22 Integration API simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--seed", help="seed JSON file")
    parser.add_argument("--certfile")
    parser.add_argument("--keyfile")
    args = parser.parse_args(argv)
    seed = {}
    if args.seed:
        with open(args.seed) as fh:
            seed = json.load(fh)
    sim = PangolinSimulator()
    resources, idps = seed_from(sim, seed)
    info = {}
    if not seed.get("api_keys"):  # otherwise nobody could get in
        info["api_key"] = sim.add_api_key(root=True)
    url = sim.start(args.host, args.port, args.certfile, args.keyfile)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    print(json.dumps(dict({"url": url, "resources": resources, "idps": idps}, **info)), flush=True)
    while not done.wait(0.5):
        pass
    sim.stop()


if __name__ == "__main__":
    main()
