# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which addresses a user's rules let through: one function, in the modules and in authentik.

A user's rules hold the newest distinct addresses of the user's real logins
(or live sessions), each written the way Pangolin's gatekeeper compares it:
an IPv4-mapped IPv6 address as plain IPv4, an IPv6 address as its prefix when
one is configured. The body mappings run in authentik, so they carry this
very source text (``SOURCE``); the modules run the same text. Neither can
drift from the other.
"""

from __future__ import annotations

import ipaddress

# Runs in authentik's expression sandbox too: standard library only, no annotations.
SOURCE = '''
def rule_entry(address, ipv6_prefix):
    """(match, value) of a rule that lets ``address`` through, or None for no usable address."""
    import ipaddress
    try:
        parsed = ipaddress.ip_address(str(address).strip().split("%")[0])
    except ValueError:
        return None
    if parsed.version == 6 and parsed.ipv4_mapped is not None:
        return ("IP", str(parsed.ipv4_mapped))
    if parsed.version == 6 and ipv6_prefix:
        return ("CIDR", str(ipaddress.ip_network("%s/%d" % (parsed, ipv6_prefix), strict=False)))
    return ("IP", str(parsed))


def whitelist_entries(candidates, slots, ipv6_prefix, placeholder, since=None):
    """The (match, value) of each of a user's ``slots`` rules, newest distinct address first.

    ``candidates`` are (time, address) pairs of the user's logins or sessions; only those at
    or after ``since`` count. Rules left over hold the placeholder.
    """
    entries = []
    for when, address in sorted(candidates, key=lambda pair: pair[0], reverse=True):
        if since is not None and when < since:
            continue
        entry = rule_entry(address, ipv6_prefix)
        if entry is not None and entry not in entries:
            entries.append(entry)
    entries = entries[:slots]
    return entries + [("IP", placeholder)] * (slots - len(entries))
'''

_namespace = {"ipaddress": ipaddress}
exec(compile(SOURCE, "<homelab.pangolin_authentik addresses>", "exec"), _namespace)  # pylint: disable=exec-used
rule_entry = _namespace["rule_entry"]
whitelist_entries = _namespace["whitelist_entries"]

__all__ = ["SOURCE", "rule_entry", "whitelist_entries"]
