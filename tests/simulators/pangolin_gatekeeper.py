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

From the mirror's source (Mu-L/pangolin): getResourceByDomain/getResourceRules in
server/db/queries/verifySessionQueries.ts and checkRules in
server/routers/badger/verifySession.ts.
"""

import ipaddress


class PangolinGatekeeper:
    """What badger decides for a client address, from the store's resources, policies and rules.

    A mixin of ``PangolinSimulator``.
    """

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
