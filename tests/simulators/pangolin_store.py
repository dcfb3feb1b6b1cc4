"""Pangolin's database, as the Pangolin simulator keeps it: orgs, roles, resources, resource
policies and their rules, API keys and IdPs, with the seeding and inspection helpers.

Part of the Pangolin simulator (``tests/simulators/pangolin.py`` puts the parts together).
Section numbers refer to the project's Pangolin API reference.

* rules live on the resource's inline default policy, or in the legacy
  per-resource table (§3.5, §3.6); the two tables keep separate ruleId
  sequences (SQLite AUTOINCREMENT per table), so one id can exist in both;
* shared resource policies (EE, 1.19+; §3.6): a resource may carry a shared
  ``resourcePolicyId`` beside its inline ``defaultResourcePolicyId``; the rules of the
  rule API are then the resource's per-resource overrides (the legacy table), and a
  change of shared policy deletes them (clearResourceSpecificSettings). Seed with
  ``add_shared_policy``, ``add_policy_rule`` and ``attach_shared_policy``;
* every new org gets the roles Admin and Member (createOrg.ts, §5), and the request-log
  retention of the column default, 7 days (``add_org(log_retention_days=...)``,
  ``set_log_retention`` in ``pangolin_logs.py``); ``createdAt`` comes from the clock;
* an API key is ``<id>.<secret>``: a 15-character id and a 40-character base32 secret
  (generateId(15), generateIdFromEntropySize(25), §2).

Guessed: an inline policy's niceId (the resource's niceId); ``headerAuth`` of a policy
being null (drizzle nulls a nested left-join select with no row).
"""

import json
import re
import secrets
import string
import uuid

ALNUM = string.ascii_lowercase + string.digits
POLICY_FIELDS = ("sso", "emailWhitelistEnabled", "applyRules", "skipToIdpId")  # §3.6
BASE32 = "abcdefghijklmnopqrstuvwxyz234567"


def _nice_id(name):
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "resource"


class PangolinStore:
    """The database: every record, the seeding and inspection helpers, and the row logic the
    handlers and the gatekeeper share (which policy a resource uses, where its rules live).

    A mixin of ``PangolinSimulator``.
    """

    def reset(self):
        """Forget all state, log and faults, as a restarted server would (lets a test module
        reuse one server); the clock goes back to real time."""
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
            self._reset_request_log()  # pangolin_logs.py: the request log, its buffer, the clock

    def _next(self, kind):
        self._ids[kind] = self._ids.get(kind, 0) + 1
        return self._ids[kind]

    # -- seeding -----------------------------------------------------------
    def add_org(self, org_id, name=None, log_retention_days=7):
        """An org as createOrg.ts makes it; ``log_retention_days`` seeds its request-log
        retention (settingsLogRetentionDaysRequest, column default 7)."""
        with self.lock:
            # the three retention columns of orgs (server/db/sqlite/schema/schema.ts, defaults
            # 7/0/0); the org row's other columns are not modelled
            self.orgs[org_id] = {"orgId": org_id, "name": name or org_id,
                                 "subnet": "100.90.128.0/24", "utilitySubnet": "100.96.128.0/24",
                                 "createdAt": self.clock.iso(), "settings": None,
                                 "settingsLogRetentionDaysRequest": int(log_retention_days),
                                 "settingsLogRetentionDaysAccess": 0, "settingsLogRetentionDaysAction": 0}
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
                                 "name": name, "lastChars": secret[-4:], "createdAt": self.clock.iso()}
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
