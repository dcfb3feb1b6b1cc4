# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The doctor's vocabulary: findings, and what an address, a rule and a failed task mean.

Pure functions of what was read: whether an address is one a proxy talks from,
whether a rule matches an address, and what a failed webhook task's log says.
"""

from __future__ import annotations

import ipaddress
import json
import re

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.holdings import refusal

RERUN = "run {site}, which rebuilds the user's chain"
PROXY_SETTING = "AUTHENTIK_LISTEN__TRUSTED_PROXY_CIDRS"


def covers(rule, client_ip):
    """Whether ``rule`` matches a request from ``client_ip``: True, False or None (cannot tell)."""
    match, value = rule.get("match"), str(rule.get("value") or "")
    if match == "PATH":
        return True if value in ("*", "/*") else None
    if match in ("COUNTRY", "ASN") and value.upper() in ("ALL", "AS0"):
        # Pangolin never matches a private, loopback or shared-address client with ALL
        return True if client_ip is None or refusal(client_ip, []) is None else False
    if match in ("IP", "CIDR"):
        try:
            network = ipaddress.ip_network(value, strict=False)
        except ValueError:
            return None
        if network.prefixlen == 0:
            return True
        if client_ip is None:
            return False
        try:
            return ipaddress.ip_address(client_ip) in network
        except (ValueError, TypeError):
            return None
    return None  # COUNTRY, REGION, ASN of one place: depends on where the user is


class Finding(object):
    def __init__(self):
        self.problems = []
        self.notes = []

    def problem(self, check, message, fix, user=None):
        """A finding that breaks the whitelist or lets in who should not get in; ``user``: whom it concerns, when
        it is one user's."""
        found = dict(check=check, message=message, fix=fix)
        if user is not None:
            found["user"] = user
        self.problems.append(found)

    def note(self, check, message, fix=None):
        self.notes.append(dict(check=check, message=message, fix=fix))


def http_status(log):
    """The HTTP status of a failed webhook, from Pangolin's answer or the requests exception, or None."""
    try:
        answer = json.loads(str(log.get("event") or ""))
    except ValueError:
        answer = None
    if isinstance(answer, dict) and isinstance(answer.get("status"), int):
        return answer["status"]
    exception = json.dumps((log.get("attributes") or {}).get("exception") or "")
    found = re.search(r"\b([45]\d\d) (?:Client|Server) Error", exception)
    return int(found.group(1)) if found else None


def log_text(log):
    """A task log entry in one line: the receiver's answer (Pangolin's message), or the exception."""
    text = str(log.get("event") or "").strip()
    try:
        answer = json.loads(text)
    except ValueError:
        answer = None
    if isinstance(answer, dict) and answer.get("message"):
        text = "Pangolin answered %s %s" % (answer.get("status", ""), answer["message"])
    exception = (log.get("attributes") or {}).get("exception")
    if isinstance(exception, list) and exception and isinstance(exception[-1], dict):
        # structlog's structured traceback: the innermost exception says what happened (HTTP status, DNS, ...)
        exception = "%s: %s" % (exception[-1].get("exc_type"), exception[-1].get("exc_value"))
    elif exception:
        exception = str(exception).strip().splitlines()[-1]
    if exception and str(exception) not in text:
        text = "%s (%s)" % (text, exception) if text else str(exception)
    return text[:300]


def as_cidr(client_ip):
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return "<proxy address>/32"
    return "%s/%d" % (address, 32 if address.version == 4 else 128)


__all__ = ["Finding", "covers", "http_status", "log_text", "as_cidr", "RERUN", "PROXY_SETTING"]
