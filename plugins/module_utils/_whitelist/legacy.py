# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The upgrade from collection versions 0.1 and 0.2: found, adopted and retired here, and only here.

Those versions gave each user a chain named ``<name_prefix><username>``: a body
mapping, a transport, an expression policy and a notification rule of its own,
plus one shared headers mapping ``jellyfin-whitelist pangolin headers`` (and, with
a managed key, the key ``jellyfin-whitelist webhook``). A first run of this
version adopts each listed user's rule, address and priority included, makes
the new chain, and only then deletes the old one; a user no longer listed loses
the old chain whole. Delete this module one release after nobody runs 0.2.

The same proof as for today's rules applies: a 0.2 rule is adopted only when the
0.2 transport posts to this whitelist's own webhook URL, to a listed resource,
and names a rule of our shape at the priority the 0.2 body mapping records.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.ownership import RULE_MATCHES
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.options import same_base

LEGACY_HEADERS = "jellyfin-whitelist pangolin headers"
LEGACY_KEY = "jellyfin-whitelist webhook"


def legacy_username(prefix, name):
    """The username of a 0.1/0.2 object ``<prefix><username>``, or None.

    Any name of the form ``<prefix><word>/...`` is some deployment's object of
    today's scheme, never a 0.2 one, whoever it belongs to.
    """
    if not isinstance(name, str) or not name.startswith(prefix) or name == LEGACY_HEADERS:
        return None
    rest = name[len(prefix):]
    if not rest or re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}/", rest):
        return None
    return rest


class LegacyChain(object):
    """A user's 0.2 chain posting to this whitelist's Pangolin."""

    def __init__(self, username, resource_id):
        self.username = username
        self.resource_id = resource_id
        self.mapping = self.transport = self.policy = self.notification_rule = self.rule = None
        self.bindings = []


def find_chains(snapshot, deployment, settings, ownership):
    """{username: LegacyChain} of the 0.2 chains that post to a listed resource of this whitelist's Pangolin."""
    chains = {}
    for name, transport in sorted(snapshot.transports.items()):
        username = legacy_username(deployment.prefix, name)
        target = snapshot.targets.get(name)
        if username is None or target is None:
            continue
        if not same_base(target.base, settings.webhook_url) or target.resource_id not in deployment.resource_ids:
            continue
        chain = chains[username] = LegacyChain(username, target.resource_id)
        chain.transport = transport
        chain.mapping = snapshot.mappings.get(name)
        chain.policy = snapshot.policies.get(name)
        chain.notification_rule = snapshot.notification_rules.get(name)
        recorded = (snapshot.mapping_values.get(name) or {}).get("priority")
        rule = snapshot.resource(target.resource_id).rule(target.rule_id)
        if rule is None or ownership.owner_of_rule(target.resource_id, rule["rule_id"]) is not None:
            continue
        if all((rule["action"] == settings.action, rule["match"] in RULE_MATCHES, rule["priority"] == recorded)):
            chain.rule = rule
    return chains


def legacy_headers(snapshot, chains):
    """The 0.2 shared headers mapping, when no transport but the 0.2 chains found here uses it."""
    mapping = snapshot.mappings.get(LEGACY_HEADERS)
    if mapping is None or not chains:
        return None
    ours = set(c.transport["pk"] for c in chains.values())
    users = [t for t in snapshot.transports.values() if t.get("headers_mapping") == mapping["pk"]]
    return mapping if all(t["pk"] in ours for t in users) else None


@dataclass(frozen=True)
class MigrationPlan(object):
    """What happens to the 0.2 chains this run."""

    adopted: tuple = ()  # usernames whose 0.2 rule became their first rule
    stop_first: tuple = ()  # notification rules of leaving users: deleted before anything else
    rules_to_delete: tuple = ()  # (resource id, rule) of leaving users, while the old transport names it
    stop_after: tuple = ()  # notification rules of adopted users: deleted once the new chain is in place
    retire: tuple = ()  # (kind, view) of every chain that goes: policy, transport, body mapping
    headers: dict = None  # the shared 0.2 headers mapping, deleted with the chains
    key_id: str = None  # the key 0.2 made for it, deleted after the mapping

    @property
    def active(self):
        return bool(self.adopted or self.stop_first or self.rules_to_delete or self.retire or self.headers)


def plan_migration(chains, staying, headers=None, bearer=None):
    """The migration of every chain: ``staying`` are the usernames that keep access (their rule is adopted)."""
    adopted = tuple(sorted(u for u in chains if u in staying and chains[u].rule is not None))
    leaving = [chains[u] for u in sorted(chains) if u not in staying]
    retire = []
    for chain in (chains[u] for u in sorted(chains)):
        parts = (("policy", chain.policy), ("transport", chain.transport), ("mapping", chain.mapping))
        retire += [(kind, view) for kind, view in parts if view is not None]
    return MigrationPlan(
        adopted=adopted,
        stop_first=tuple(c.notification_rule for c in leaving if c.notification_rule),
        rules_to_delete=tuple((c.resource_id, c.rule) for c in leaving if c.rule),
        stop_after=tuple(chains[u].notification_rule for u in sorted(chains)
                         if u in staying and chains[u].notification_rule),
        retire=tuple(retire), headers=headers,
        key_id=bearer.split(".", 1)[0] if headers is not None and bearer else None)


__all__ = ["LEGACY_HEADERS", "LEGACY_KEY", "LegacyChain", "find_chains", "legacy_headers", "legacy_username",
           "MigrationPlan", "plan_migration"]
