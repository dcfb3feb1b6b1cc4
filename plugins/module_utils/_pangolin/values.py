# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pangolin's values: rule actions and matches, client-side copies of its rule value checks, JMESPath literals.

Pangolin checks a rule's ``value`` against its ``match`` only when the value
is sent, and answers one terse message per failure. Checking here first lets
a module name the option and the value before anything is written.
Mirrors ``getResourceRuleValueValidationError`` of Pangolin 1.22.
"""

from __future__ import annotations

import ipaddress
import json
import re

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.inputs import InputError

ACTIONS = ("ACCEPT", "DROP", "PASS")
# The matches of a rule that lets one address (or one network) in.
ADDRESS_MATCHES = ("IP", "CIDR")
MATCHES = ("CIDR", "IP", "PATH", "COUNTRY", "COUNTRY_IS_NOT", "ASN", "REGION")

# ISO 3166-1 alpha-2, as in Pangolin's server/db/countries.ts, plus its special ALL.
COUNTRY_CODES = frozenset("""
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS
BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE
EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM
HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC
LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA
NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW
SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO
TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW XK ALL
""".split())

# UN M.49 regions and sub-regions known to Pangolin (server/db/regions.ts).
REGION_IDS = frozenset("""
002 015 014 017 018 011 019 029 013 005 021 142 143 030 035 034 145 150 151 154 039 155 009 053
054 057 061
""".split())

_GLOB_CHAR = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,;#=@:]$")
_HEX = re.compile(r"^[0-9A-Fa-f]$")


def _is_ip(value):
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return "/" not in value and "%" not in value


def _is_cidr(value):
    if "/" not in value:
        return False
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def is_url_glob(pattern):
    """Pangolin's ``isValidUrlGlobPattern``, character for character."""
    if pattern == "/":
        return True
    if pattern.startswith("/"):
        pattern = pattern[1:]
    if not pattern:
        return False
    segments = pattern.split("/")
    for index, segment in enumerate(segments):
        if not segment and index != len(segments) - 1:
            return False
        j = 0
        while j < len(segment):
            char = segment[j]
            if char == "%" and j + 2 < len(segment):
                if not (_HEX.match(segment[j + 1]) and _HEX.match(segment[j + 2])):
                    return False
                j += 3
                continue
            if not _GLOB_CHAR.match(char):
                return False
            j += 1
    return True


def rule_value_error(match, value):
    """Why ``value`` is not accepted for ``match``, or None when it is."""
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    if match == "IP":
        return None if _is_ip(value) else "is not an IPv4 or IPv6 address (a CIDR needs match: CIDR)"
    if match == "CIDR":
        return None if _is_cidr(value) else "is not an IPv4 or IPv6 CIDR such as 192.168.1.0/24"
    if match == "PATH":
        return None if is_url_glob(value) else "is not a URL glob pattern such as /api/*"
    if match in ("COUNTRY", "COUNTRY_IS_NOT"):
        return None if value in COUNTRY_CODES else "is not an upper-case ISO 3166 country code or ALL"
    if match == "ASN":
        text = value.strip().upper()
        return None if re.match(r"^AS\d+$", text) or text == "ALL" else "is not an ASN such as AS13335 (or ALL)"
    if match == "REGION":
        return None if value in REGION_IDS else "is not a UN M.49 region id such as 150 (Europe)"
    return "cannot be checked: unknown match %r" % (match,)


# -- JMESPath, which Pangolin evaluates for an identity provider's org and role mappings ------------
def jmespath_string(value, option):
    """A JMESPath literal that evaluates to exactly ``value``.

    Plain names use the familiar raw string ``'name'``. Anything with a quote,
    backslash or brace becomes a JSON literal with those characters \\u-escaped:
    Pangolin's JMESPath library unescapes only the first ``\\'`` of a raw
    string, and substitutes ``{{orgId}}`` before evaluating.
    """
    if not isinstance(value, str) or not value:
        raise InputError("%s must be a non-empty string" % option)
    if any(ord(c) < 32 for c in value):
        raise InputError("%s %r contains a control character" % (option, value))
    if not any(c in value for c in "'\\{}`"):
        return "'%s'" % value
    text = json.dumps(value, ensure_ascii=True)
    for char in "`{}'":
        text = text.replace(char, "\\u%04x" % ord(char))
    return "`%s`" % text


def group_membership_mapping(group, option="org_mapping_group"):
    """``contains(groups, '<group>')``: admit users of one IdP group."""
    return "contains(groups, %s)" % jmespath_string(group, option)
