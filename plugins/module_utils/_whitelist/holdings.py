# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a user's rules hold: one text, run by authentik's body mappings and by the modules.

A body mapping computes its rule from authentik's state whenever authentik
sends it; the converge, expiry and the doctor compute the same thing from the
same state as they read it. Both run this very source text (``SOURCE``): the
body mappings carry it, the modules execute it here. Neither can drift.

It decides, from plain data:

* which addresses may become a rule at all (``refusal``): never an address
  that cannot be a device's as Pangolin's gatekeeper sees it (loopback,
  unspecified, link-local, multicast, reserved); a private address (RFC 1918,
  shared address space 100.64/10, IPv6 unique local) only inside the
  networks the operator opted in to; IPv4-mapped addresses as their IPv4
  form. A refused login is skipped: the rules keep the newest acceptable
  addresses;
* how an address is written (``rule_entry``): as Pangolin compares it,
  an IPv6 address as its prefix when one is configured;
* which logins or sessions count (``user_entries``): nothing for an
  inactive user or one who left the group; the newest distinct addresses of
  the user's logins within ``expire_days``, or of the live sessions; nothing
  from before a revocation (``not_before``) until the next login, and never
  a session that was live at the revocation; an address closed for being idle
  (``closed``) only from a login (or a session's use) after the closing.
"""

from __future__ import annotations

import datetime
import ipaddress

# A rule value that matches no client: what a user's rules hold while nothing lets the user in.
PLACEHOLDER = "0.0.0.0"

# How many of a user's newest logins a body mapping looks at for distinct addresses.
LOGIN_SCAN = 200

# Runs in authentik's expression sandbox too (as the body of a function): standard library only, no annotations.
SOURCE = '''
NEVER_NETWORKS = [
    ("0.0.0.0/8", "unspecified"), ("127.0.0.0/8", "loopback"), ("169.254.0.0/16", "link-local"),
    ("224.0.0.0/4", "multicast"), ("240.0.0.0/4", "reserved"), ("::/128", "unspecified"), ("::1/128", "loopback"),
    ("fe80::/10", "link-local"), ("fec0::/10", "site-local"), ("ff00::/8", "multicast"),
]
PRIVATE_NETWORKS = [
    ("10.0.0.0/8", "private"), ("172.16.0.0/12", "private"), ("192.168.0.0/16", "private"),
    ("100.64.0.0/10", "shared address space"), ("fc00::/7", "unique local"),
]


def plain_address(address):
    """The address as Pangolin's gatekeeper compares it (an IPv4-mapped one as IPv4, no zone), or None."""
    import ipaddress
    try:
        parsed = ipaddress.ip_address(str(address).strip().split("%")[0])
    except ValueError:
        return None
    if parsed.version == 6 and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed


def refusal(address, private_networks):
    """Why a login from ``address`` may not open a rule (the kind of address), or None when it may."""
    import ipaddress
    parsed = plain_address(address)
    if parsed is None:
        return "not an address"
    for network, kind in NEVER_NETWORKS:
        if parsed in ipaddress.ip_network(network):
            return kind
    for network, kind in PRIVATE_NETWORKS:
        if parsed in ipaddress.ip_network(network):
            if any(parsed in ipaddress.ip_network(allowed) for allowed in private_networks):
                return None
            return kind
    return None


def written_as(address, ipv6_prefix):
    """(match, value) of a rule that lets ``address`` through, whether or not it may become one; None for no
    address."""
    import ipaddress
    parsed = plain_address(address)
    if parsed is None:
        return None
    if parsed.version == 6 and ipv6_prefix:
        return ("CIDR", str(ipaddress.ip_network("%s/%d" % (parsed, ipv6_prefix), strict=False)))
    return ("IP", str(parsed))


def rule_entry(address, ipv6_prefix, private_networks):
    """(match, value) of a rule that lets ``address`` through, or None when it may not become a rule."""
    if refusal(address, private_networks) is not None:
        return None
    return written_as(address, ipv6_prefix)


def whitelist_entries(candidates, slots, ipv6_prefix, placeholder, since, private_networks, closed=None):
    """The (match, value) of each of a user's ``slots`` rules, newest distinct acceptable address first.

    ``candidates`` are (time, address) pairs of the user's logins or sessions; only those at or after
    ``since`` count, and none from before the time an entry was closed for being idle (``closed``:
    {(match, value): time}). Rules left over hold the placeholder.
    """
    entries = []
    for when, address in sorted(candidates, key=lambda pair: pair[0], reverse=True):
        if since is not None and when < since:
            continue
        entry = rule_entry(address, ipv6_prefix, private_networks)
        if entry is not None and entry in (closed or {}) and when < closed[entry]:
            continue
        if entry is not None and entry not in entries:
            entries.append(entry)
    entries = entries[:slots]
    return entries + [("IP", placeholder)] * (slots - len(entries))


def user_entries(settings, now, active, member, logins, sessions):
    """The (match, value) of each of a user's rules, from authentik's state.

    ``settings``: a body mapping's settings. ``active``: the account exists and is active; ``member``:
    it is a direct member of the whitelist's group (always true without one). ``logins``: (created,
    address) of the user's newest real logins; ``sessions``: (last used, address, uuid) of the live ones.
    """
    import datetime
    slots, placeholder = settings["slots"], settings["placeholder"]
    if not active or not member:
        return [("IP", placeholder)] * slots
    since = now - datetime.timedelta(days=settings["expire_days"]) if settings["expire_days"] else None
    revoked = datetime.datetime.fromisoformat(settings["not_before"]) if settings["not_before"] else None
    if revoked is not None and (since is None or revoked > since):
        since = revoked
    if settings["sessions"]:
        # A session counts only when a login after the revocation opened it: none before such a login,
        # never one that was live at the revocation, nor one last used before it.
        if revoked is not None and not any(created >= revoked for created, _address in logins):
            return [("IP", placeholder)] * slots
        ended = settings.get("revoked_sessions") or []
        candidates = [(used, address) for used, address, uuid in sessions
                      if str(uuid) not in ended and (revoked is None or used >= revoked)]
        since = None
    else:
        candidates = logins
    closed = dict(((match, value), datetime.datetime.fromisoformat(when))
                  for match, value, when in settings.get("closed") or [])
    return whitelist_entries(candidates, slots, settings["ipv6_prefix"], placeholder, since,
                             settings.get("private_networks") or [], closed)
'''

_namespace = {"ipaddress": ipaddress, "datetime": datetime}
exec(compile(SOURCE, "<homelab.pangolin_authentik holdings>", "exec"), _namespace)  # pylint: disable=exec-used
NEVER_NETWORKS = _namespace["NEVER_NETWORKS"]
PRIVATE_NETWORKS = _namespace["PRIVATE_NETWORKS"]
plain_address = _namespace["plain_address"]
refusal = _namespace["refusal"]
written_as = _namespace["written_as"]
rule_entry = _namespace["rule_entry"]
whitelist_entries = _namespace["whitelist_entries"]
user_entries = _namespace["user_entries"]


def may_hold(rule, body):
    """Whether an owned rule's value may stand under the body settings ``body``: the placeholder, or exactly what
    a login from an address that may become a rule writes (an IP, or an IPv6 login's prefix as the settings
    give it), never a wider network. A rule holding anything else is written again in the run."""
    if (rule["match"], rule["value"]) == ("IP", body.placeholder):
        return True
    address = str(rule["value"]).split("/", maxsplit=1)[0]
    return rule_entry(address, body.ipv6_prefix, body.private_networks) == (rule["match"], str(rule["value"]))


def opt_in_error(cidr):
    """Why ``cidr`` cannot be opted in as a private network, or None when it can."""
    try:
        network = ipaddress.ip_network(str(cidr), strict=False)
    except ValueError:
        return "is not a network in CIDR form such as 192.168.1.0/24"
    for never, kind in NEVER_NETWORKS:
        never = ipaddress.ip_network(never)
        if network.version == never.version and network.overlaps(never):
            return "reaches into %s (%s addresses), which never become a rule" % (never, kind)
    if not any(network.version == ipaddress.ip_network(p).version and network.subnet_of(ipaddress.ip_network(p))
               for p, _kind in PRIVATE_NETWORKS):
        return ("is not inside a private network (%s); addresses outside them need no opt-in"
                % ", ".join(p for p, _kind in PRIVATE_NETWORKS))
    return None


__all__ = ["SOURCE", "PLACEHOLDER", "LOGIN_SCAN", "NEVER_NETWORKS", "PRIVATE_NETWORKS", "plain_address",
           "refusal", "written_as", "rule_entry", "whitelist_entries", "user_entries", "may_hold", "opt_in_error"]
