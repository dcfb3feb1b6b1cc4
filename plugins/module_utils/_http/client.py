# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one HTTP layer every module of the collection talks through.

It knows about base URLs, bearer tokens, TLS options, bounded retries and
turning any failure into one clear sentence with no secret in it. The
API-specific clients (``pangolin.py``, ``authentik.py``) only add paths,
envelopes and hints.
"""

from __future__ import annotations

import html
import json
import os
import re
import time

try:
    import requests
    from requests.adapters import HTTPAdapter

    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - reported by the module
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = _exc

from urllib.parse import urlsplit

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.inputs import is_int
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.secrets import Secrets

RETRY_STATUSES = frozenset((429, 500, 502, 503, 504))
# Retrying must not turn a short outage into a run that hangs for minutes.
MAX_RETRY_WAIT = 30.0
MAX_RETRY_TOTAL = 120.0


class ApiError(Exception):
    """A failed API call, already phrased for the operator.

    ``status`` is the HTTP status (None when no answer arrived) and
    ``body`` the decoded answer, for callers that react to specific errors.
    ``uncertain`` is true when a write may have happened although no
    answer said so (connection lost after sending, or a 5xx).
    """

    def __init__(self, message, status=None, body=None, uncertain=False, empty=False):
        super(ApiError, self).__init__(message)
        self.message = message
        self.status = status
        self.body = body
        self.uncertain = uncertain
        self.empty = empty  # the answer had no body at all

    def __str__(self):
        return self.message

    @property
    def busy(self):
        """A refusal of an object the server is still working on: authentik answers a delete under load with an
        empty 405 (a 405 with a body is a method really not allowed, by the server or a proxy in front);
        connection errors, 429 and 5xx are the retried requests' business instead."""
        return self.status in (409, 423) or (self.status == 405 and self.empty)


def connection_argument_spec():
    """The connection options every module has, whichever API it talks to."""
    return dict(
        validate_certs=dict(type="bool", default=True),
        ca_path=dict(type="path"),
        timeout=dict(type="int", default=30),
        retries=dict(type="int", default=3),
    )


def server_connection(params, prefix):
    """The connection settings of one server, as keyword arguments of ``ApiClient``.

    Each of the server's own options (``<prefix>_validate_certs``, ``<prefix>_ca_path``,
    ``<prefix>_timeout``, ``<prefix>_retries``) wins where it is set; the shared option of
    ``connection_argument_spec()`` applies otherwise. Messages name the option a value came from.
    """
    settings = {}
    for name, default in (("validate_certs", True), ("ca_path", None), ("timeout", 30), ("retries", 3)):
        own = "%s_%s" % (prefix, name)
        value = params.get(own)
        if value is None or (name == "ca_path" and not value):
            own, value = name, params.get(name)
        settings[name] = default if value is None or (name == "ca_path" and not value) else value
        if name != "validate_certs":
            settings["%s_option" % name] = own
    return settings


def normalize_base_url(url, suffix, option):
    """Return ``url`` without trailing slash and without ``suffix``.

    Operators paste either ``https://api.example.com`` or
    ``https://api.example.com/v1``; both must work.
    """
    if not url or not isinstance(url, str):
        raise ApiError("%s is required (or set its environment variable)" % option)
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ApiError("%s must be an http:// or https:// URL, got %r" % (option, url))
    if parts.query or parts.fragment:
        raise ApiError("%s must not carry a query or fragment, got %r" % (option, url))
    url = url.rstrip("/")
    if url.endswith(suffix):
        url = url[: -len(suffix)].rstrip("/")
    return url


def excerpt(text, limit=160):
    """A short single-line excerpt of an answer that is not JSON (HTML error pages)."""
    text = html.unescape(re.sub(r"<[^>]+>", " ", text or ""))
    text = re.sub(r"\s+", " ", text).strip()
    return text[:limit] + ("..." if len(text) > limit else "")


class ApiClient(object):
    """HTTP client with bearer auth, TLS options and bounded, warned retries.

    Subclasses set ``api_name`` and ``api_prefix`` and implement
    ``error_detail(status, body)`` and ``hint(status, detail, action)``.
    """

    api_name = "API"
    token_is_key = False  # a Pangolin key, whose secret half is a secret of its own
    api_prefix = ""
    url_option = "url"
    token_option = "token"

    def __init__(self, base_url, token, validate_certs=True, ca_path=None, timeout=30,
                 retries=3, warn=None, secrets=None, retry_backoff=0.5, ca_path_option="ca_path",
                 timeout_option="timeout", retries_option="retries"):
        self.secrets = secrets or Secrets()
        if self.token_is_key:
            self.secrets.add_key(token)
        else:
            self.secrets.add(token)
        self.base_url = normalize_base_url(base_url, self.api_prefix, self.url_option)
        if not token:
            raise ApiError("%s is required (or set its environment variable)" % self.token_option)
        self.token = token
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ApiError("%s must be a positive number of seconds, got %r" % (timeout_option, timeout))
        if not is_int(retries) or retries < 0:
            raise ApiError("%s must be 0 or a positive integer, got %r" % (retries_option, retries))
        self.timeout = timeout
        self.retries = retries
        self.retry_backoff = retry_backoff
        self.warn = warn or (lambda msg: None)
        self.ca_option = ca_path_option
        self.request_count = 0
        self.session = requests.Session()
        # Our own retry loop decides what may be re-sent; the adapter must never retry.
        self.session.mount("http://", HTTPAdapter(max_retries=0))
        self.session.mount("https://", HTTPAdapter(max_retries=0))
        self.session.headers.update({
            "Authorization": "Bearer %s" % token,
            "Accept": "application/json",
            "User-Agent": "homelab.pangolin_authentik",
        })
        if not validate_certs:
            self.session.verify = False
            self.warn("validate_certs is false: TLS certificates of %s are not verified" % self.base_url)
            try:
                import urllib3

                urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
            except Exception:  # pragma: no cover
                pass
        elif ca_path:
            if not os.path.exists(ca_path):
                raise ApiError("%s %r does not exist" % (ca_path_option, ca_path))
            self.session.verify = ca_path

    # -- hooks for subclasses ------------------------------------------
    def error_detail(self, status, body):
        """The server's own message from its error body."""
        return None

    def hint(self, status, detail, action):
        return None

    # -- requests ------------------------------------------------------
    def url(self, path):
        return self.base_url + self.api_prefix + path

    def request(self, method, path, operation, params=None, body=None, idempotent=None,
                ok=(200, 201, 204), action=None):
        """Send one request and return ``(status, decoded body)``.

        ``operation`` names what is being done ("list rules of resource 3")
        for error messages. Requests that are not ``idempotent`` (creates)
        are never re-sent: a lost answer raises an uncertain ApiError and
        the caller looks before creating again.
        """
        if idempotent is None:
            idempotent = method == "GET"
        deadline = time.time() + MAX_RETRY_TOTAL
        attempt = 0
        while True:
            attempt += 1
            status, decoded, raw, error, retry_after = self._send(method, path, params, body)
            # A certificate that fails verification does not get better by asking again.
            retryable = (error is not None and not error.startswith("TLS verification")) or status in RETRY_STATUSES
            if retryable and idempotent and attempt <= self.retries:
                wait = min(retry_after if retry_after is not None else self.retry_backoff * (2 ** (attempt - 1)),
                           MAX_RETRY_WAIT)
                if time.time() + wait < deadline:
                    reason = error or "HTTP %s" % status
                    self.warn(self.secrets.scrub("%s: %s failed (%s); retry %d of %d in %.1fs"
                                                 % (self.api_name, operation, reason, attempt, self.retries, wait)))
                    time.sleep(wait)
                    continue
            gave_up = " (gave up after %d attempts)" % attempt if attempt > 1 else ""
            if error is not None:
                raise ApiError(self.secrets.scrub("%s: %s failed: %s%s" % (self.api_name, operation, error, gave_up)),
                               uncertain=method != "GET")
            if status in ok:
                return status, decoded
            failure = self._failure(operation, status, decoded, raw, action, method)
            failure.message += gave_up
            raise failure

    def _send(self, method, path, params, body):
        """One attempt: (status, decoded, raw text, connection error, Retry-After)."""
        self.request_count += 1
        # verify per request: a session-level value loses to REQUESTS_CA_BUNDLE in the environment.
        kwargs = {"params": params, "timeout": self.timeout, "verify": self.session.verify}
        if body is not None:
            kwargs["data"] = json.dumps(body)
            kwargs["headers"] = {"Content-Type": "application/json"}
        try:
            resp = self.session.request(method, self.url(path), **kwargs)
        except requests.exceptions.SSLError as exc:
            return None, None, None, self._tls_error(exc), None
        except requests.exceptions.Timeout:
            return None, None, None, "no answer within %ss (timeout)" % self.timeout, None
        except requests.exceptions.ConnectionError as exc:
            return None, None, None, "%s: cannot connect to %s (%s)" % (self.url_option, self.base_url,
                                                                        _short_reason(exc)), None
        except requests.exceptions.RequestException as exc:
            return None, None, None, _short_reason(exc), None
        raw = resp.text
        try:
            decoded = resp.json() if raw else None
        except ValueError:
            decoded = None
        retry_after = None
        if resp.status_code == 429:
            try:
                retry_after = float(resp.headers.get("Retry-After", ""))
            except ValueError:
                retry_after = None
        return resp.status_code, decoded, raw, None, retry_after

    def _tls_error(self, exc):
        reason = _short_reason(exc)
        return ("TLS verification of %s failed (%s); set %s to the CA that signed the server's "
                "certificate, or validate_certs: false for a test setup" % (self.base_url, reason, self.ca_option))

    def _failure(self, operation, status, decoded, raw, action, method):
        detail = self.error_detail(status, decoded) if decoded is not None else None
        if detail is None:
            text = excerpt(raw)
            label = "answer is not JSON" if decoded is None else "answer"
            detail = ("%s: %s" % (label, text)) if text else "empty answer"
        message = "%s: %s failed: HTTP %s %s" % (self.api_name, operation, status, detail)
        hint = self.hint(status, detail, action)
        if hint:
            message += " (%s)" % hint
        return ApiError(self.secrets.scrub(message), status=status, body=decoded,
                        uncertain=method != "GET" and status >= 500, empty=not raw)


def _short_reason(exc):
    text = str(exc)
    # requests nests the useful part deep inside urllib3's repr.
    match = re.search(r"\[SSL: [A-Z_]+\] [^(\]]+|\[Errno -?\d+\] [^')\"]+|Connection refused|"
                      r"Connection reset by peer|RemoteDisconnected\([^)]*\)|certificate verify failed[^')]*", text)
    return match.group(0).strip() if match else excerpt(text, 200)
