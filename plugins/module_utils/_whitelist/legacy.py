# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The upgrade from collection versions 0.1 and 0.2: their chains adopted as ordinary slots, here and only here.

Those versions gave each user a chain named ``<name_prefix><username>``: a body
mapping, a transport, an expression policy and a notification rule of its own,
plus one shared headers mapping ``jellyfin-whitelist pangolin headers`` (and, with
a managed key, the key ``jellyfin-whitelist webhook``). ``adopt`` hands each chain
to the ownership as slot 1 of its user: the 0.2 rule (when proven) becomes the
slot's rule, address and priority included, and the chain's other objects are
the slot's superseded objects. From there the plan treats them as any slot's:
a listed user keeps the rule and gets today's chain before the old one goes; a
user no longer listed loses all of it. Deleting this module later means
deleting its one call in ``whitelist.py``.

The same proof as for today's rules applies: a 0.2 rule is adopted only when the
0.2 transport posts to this whitelist's own webhook URL, to a listed resource,
and names a rule of our shape at the priority the 0.2 body mapping records.
"""

from __future__ import annotations

import re

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._pangolin.values import ADDRESS_MATCHES
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.urls import same_base
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.webhook_key import (
    bearer_in,
    key_id_of,
)

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


def adopt(snapshot, deployment, settings, ownership):
    """Hand the 0.2 chains that post to a listed resource of this whitelist's Pangolin to ``ownership``, with
    the 0.2 headers mapping and key once nothing else uses them."""
    transports = []
    for name, transport in sorted(snapshot.transports.items()):
        username = legacy_username(deployment.prefix, name)
        target = snapshot.targets.get(name)
        if username is None or target is None:
            continue
        if not same_base(target.base, settings.webhook_url) or target.resource_id not in deployment.resource_ids:
            continue
        transports.append(transport)
        rule = snapshot.resource(target.resource_id).rule(target.rule_id)
        recorded = (snapshot.mapping_values.get(name) or {}).get("priority")
        proven = rule is not None and all((rule["action"] == settings.action, rule["match"] in ADDRESS_MATCHES,
                                           rule["priority"] == recorded))
        # Stop the old rule first; the transport goes last: it is what finds the rest of the chain, so a run that
        # stops half-way leaves a chain the next run finds.
        superseded = [(kind, found) for kind, found in (
            ("notification_rule", snapshot.notification_rules.get(name)), ("policy", snapshot.policies.get(name)),
            ("mapping", snapshot.mappings.get(name)), ("transport", transport)) if found is not None]
        ownership.adopt(username, 1, target.resource_id, rule if proven else None, superseded)
    headers = snapshot.mappings.get(LEGACY_HEADERS)
    if headers is None or not transports or (settings.headers_mapping or deployment.headers_name) == LEGACY_HEADERS:
        return
    ours = set(t["pk"] for t in transports)
    if all(t["pk"] in ours for t in snapshot.transports.values() if t.get("headers_mapping") == headers["pk"]):
        ownership.superseded_shared.append(("mapping", headers))
        key_id = key_id_of(bearer_in(headers["expression"]))
        if key_id:
            ownership.retired_keys.append((key_id, LEGACY_KEY))


__all__ = ["LEGACY_HEADERS", "LEGACY_KEY", "adopt", "legacy_username"]
