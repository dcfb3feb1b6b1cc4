"""Pangolin's gatekeeper (badger's verifySession), as the Pangolin simulator decides: ``apply_rules_for``.

Part of the Pangolin simulator (``tests/simulators/pangolin.py`` puts the parts together).
Section numbers refer to the project's Pangolin API reference.

Rules decide only when ``applyRules`` is on (§3.8); then the rules, sorted stably by
priority, give the action of the first enabled one that matches. With a shared resource
policy attached (EE, 1.19+; §3.6) the gatekeeper takes applyRules from the shared policy
and evaluates the resource's overrides first, then the shared policy's rules with their
priority raised by the highest override priority (at least 0, disabled rows counted); the
inline policy's rules are ignored, and so are the resources-table columns
``POST /resource/{id}`` writes then. Only IP and CIDR rules can match here: PATH,
COUNTRY, ASN and REGION need a request path or geo data.

Each decision is also written to the request log (``pangolin_logs.py``) as
verifySession does, for a request carrying no credentials (badger always sends its
cookie map, empty here): a blocked resource (``blockAccess``) gives reason 202 before
any rule is read; an ACCEPT rule 100 (action true); a DROP rule 203 (action false);
otherwise (no rule matched, a PASS rule, or applyRules off) the resource without any
auth method (sso, e-mail whitelist off; passwords, pincodes and header auth are not
modelled) 101 (action true), else 299 "no more auth methods" (action false). The
return value stays the rules' verdict, blocked or not. ``log=False`` decides without
writing; ``request()`` also lets a test give the time, path, method and headers.

From the mirror's source (Mu-L/pangolin): getResourceByDomain/getResourceRules in
server/db/queries/verifySessionQueries.ts, checkRules and the logRequestAudit calls in
server/routers/badger/verifySession.ts.
"""

import ipaddress

from tests.simulators.pangolin_logs import strip_port


class PangolinGatekeeper:
    """What badger decides for a client address, from the store's resources, policies and rules.

    A mixin of ``PangolinSimulator``.
    """

    def apply_rules_for(self, resource_id, client_ip, log=True):
        """What badger's verifySession/checkRules decides for ``client_ip`` (§3.8); None = no decision.

        getResourceByDomain: the selected policy is the shared one when attached, else the
        inline default; its applyRules wins over the resources column (``?? resources.applyRules``).
        getResourceRules: the resource's override rows (resourceRules) plus the selected
        policy's rules with their priority raised by the overrides' highest priority
        (``reduce(max, 0)``, disabled rows counted); the inline policy's rules are not read
        when a shared policy is attached. checkRules: stable sort by priority, first enabled
        match wins. The real server caches both lookups for 5 s; this answer is uncached.
        The request is logged (see the module's docstring) unless ``log`` is false.
        """
        verdict = self._rules_verdict(resource_id, client_ip)
        if log:
            self._log_decision(resource_id, client_ip, verdict)
        return verdict

    def request(self, resource_id, client_ip, when=None, method="GET", path="/", headers=None, query=None):
        """A request through the gatekeeper: decided, logged, the rules' verdict returned.

        ``when`` (unix seconds or an aware datetime) makes it a request of the past: its
        row goes straight into the table with that timestamp (no buffer). The rules are
        today's either way.
        """
        verdict = self._rules_verdict(resource_id, client_ip)
        self._log_decision(resource_id, client_ip, verdict, when=when, method=method, path=path,
                           headers=headers, query=query)
        return verdict

    def _log_decision(self, resource_id, client_ip, verdict, **request):
        """verifySession's logRequestAudit call for this outcome."""
        with self.lock:
            res = self.resources[resource_id]
            if res["blockAccess"]:
                action, reason = False, 202  # resource blocked: checked before the rules
            elif verdict == "ACCEPT":
                action, reason = True, 100  # allowed by rule
            elif verdict == "DROP":
                action, reason = False, 203  # dropped by rule
            elif not any(self._gate_setting(res, name) for name in ("sso", "emailWhitelistEnabled")):
                action, reason = True, 101  # allowed: no auth method
            else:
                action, reason = False, 299  # no credentials: no more auth methods
            return self._log_request(res, action, reason, client_ip, **request)

    def _gate_setting(self, res, name):
        """getResourceByDomain's merge: the selected policy's value ?? the resources column."""
        policy = self._selected_policy(res)
        value = policy.get(name) if policy is not None else None
        return res[name] if value is None else value

    def _rules_verdict(self, resource_id, client_ip):
        client_ip = strip_port(client_ip)  # verifySession: stripPortFromHost(requestIp)
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
