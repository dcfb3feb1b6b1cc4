# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a webhook posts: Pangolin's base URL, and the rule a transport's URL names.

The ownership proof starts here: a transport proves nothing unless it posts to
this whitelist's own Pangolin (same scheme, host, port and path prefix), to a
rule URL of the form ``<base>/v1/resource/<id>/rule/<rule id>``.
"""

from __future__ import annotations

import re
from collections import namedtuple

from urllib.parse import urlsplit

RULE_URL = re.compile(r"^(.*)/v1/resource/(\d+)/rule/(\d+)/?$")

# Where a transport posts: Pangolin's base URL (without /v1), the resource and the rule.
Target = namedtuple("Target", "base resource_id rule_id")


def api_base(url):
    """Pangolin's base URL without the API's ``/v1``, to which rule paths are appended."""
    url = url.rstrip("/")
    return url[:-3] if url.endswith("/v1") else url


def rule_url(base, resource_id, rule_id):
    """The URL a transport posts to, to update one rule of one resource."""
    return "%s/v1/resource/%d/rule/%s" % (base, resource_id, rule_id)


def rule_target(url):
    """The Target a transport URL posts to, or None when it is no Pangolin rule URL."""
    match = RULE_URL.match(url or "")
    return Target(match.group(1), int(match.group(2)), int(match.group(3))) if match else None


def same_base(url, base):
    """Whether ``url`` lies under ``base``: same scheme, host and port, and ``base``'s path as its prefix."""
    def parts(text):
        split = urlsplit(text or "")
        port = split.port or {"http": 80, "https": 443}.get(split.scheme)
        return split.scheme.lower(), (split.hostname or "").lower(), port, split.path.rstrip("/")
    try:
        scheme, host, port, path = parts(url)
        want = parts(base)
    except ValueError:
        return False
    return (scheme, host, port) == want[:3] and (path == want[3] or path.startswith(want[3] + "/"))


__all__ = ["Target", "api_base", "rule_url", "rule_target", "same_base"]
