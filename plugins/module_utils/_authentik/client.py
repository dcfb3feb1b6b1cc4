# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Client for authentik's REST API (``/api/v3``), on the shared HTTP layer.

What it knows so modules don't have to: trailing slashes, page-number
pagination, exact ``name=`` filters re-checked client-side (unknown filters
are silently ignored), and the field names of the server's version (unknown
body fields are silently dropped).
"""

from __future__ import annotations

from datetime import datetime, timezone

import re

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.client import (
    ApiClient,
    ApiError,
    connection_argument_spec,
    server_connection,
)

# Versions where field names changed (docs: version matrix).
HEADERS_MAPPING_SINCE = (2025, 4)
DESTINATION_RENAME_SINCE = (2025, 8)
TASK_API_SINCE = (2025, 8)  # the Dramatiq worker and its /tasks/ API
WORKERS_SLASH_SINCE = (2026, 5)  # /tasks/workers/ (before: /tasks/workers, the one path without the slash)
SESSIONS_IN_DATABASE_SINCE = (2025, 4)  # Session model with last_ip/last_used/expires; AuthenticatedSession.session
EXACT_ACTIONS_FILTER_SINCE = (2026, 2)  # events ?actions= (exact, repeatable) next to ?action= (contains)


def authentik_argument_spec():
    """Connection options shared by every authentik module."""
    from ansible.module_utils.basic import env_fallback

    spec = dict(
        authentik_url=dict(type="str", required=True, fallback=(env_fallback, ["AUTHENTIK_URL"])),
        authentik_token=dict(type="str", required=True, no_log=True, fallback=(env_fallback, ["AUTHENTIK_TOKEN"])),
        authentik_validate_certs=dict(type="bool", fallback=(env_fallback, ["AUTHENTIK_VALIDATE_CERTS"])),
        authentik_ca_path=dict(type="path", fallback=(env_fallback, ["AUTHENTIK_CA_PATH"])),
        authentik_timeout=dict(type="int", fallback=(env_fallback, ["AUTHENTIK_TIMEOUT"])),
        authentik_retries=dict(type="int", fallback=(env_fallback, ["AUTHENTIK_RETRIES"])),
    )
    spec.update(connection_argument_spec())
    return spec


def parse_time(text):
    """An aware datetime from authentik's ISO timestamps, or None."""
    if not isinstance(text, str) or not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def format_time(value):
    """A datetime as authentik writes it (``...Z``); anything else as it is."""
    return value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else value


def parse_version(text):
    """``2026.5.0-rc1`` → (2026, 5, 0)."""
    match = re.match(r"^(\d{4})\.(\d{1,2})(?:\.(\d+))?", text or "")
    if not match:
        raise ApiError("authentik reported an unknown version %r" % (text,))
    return (int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))


class AuthentikClient(ApiClient):
    api_name = "authentik API"
    api_prefix = "/api/v3"
    url_option = "authentik_url"
    token_option = "authentik_token"

    def __init__(self, *args, **kwargs):
        super(AuthentikClient, self).__init__(*args, **kwargs)
        self._version = None

    @classmethod
    def from_module(cls, module):
        params = module.params
        return cls(params["authentik_url"], params["authentik_token"], warn=module.warn,
                   **server_connection(params, "authentik"))

    # -- errors ----------------------------------------------------------
    def error_detail(self, status, body):
        if isinstance(body, dict):
            if isinstance(body.get("detail"), str):
                return body["detail"]
            parts = []
            for field, messages in body.items():
                if isinstance(messages, list):
                    messages = " ".join(str(m) for m in messages)
                parts.append("%s: %s" % (field, messages))
            if parts:
                return "; ".join(parts)
        if isinstance(body, str) and body:
            return body
        return None

    def hint(self, status, detail, action):
        if status in (401, 403):
            return ("authentik answers 403 for a missing, wrong or expired token as well as for a missing "
                    "permission: check authentik_token and that its user may do this")
        if status == 404 and detail.startswith("answer is not JSON"):
            return "is authentik_url the authentik server?"
        return None

    # -- version -----------------------------------------------------------
    @property
    def version(self):
        """The server's (year, month, patch), read once per client."""
        if self._version is None:
            _status, body = self.request("GET", "/admin/version/", "read the authentik version")
            if not isinstance(body, dict) or "version_current" not in body:
                raise ApiError("%s: read the authentik version: the answer is not authentik's; does authentik_url "
                               "point at authentik?" % self.api_name)
            self._version = parse_version(body["version_current"])
        return self._version

    def at_least(self, since):
        return self.version[:2] >= since

    @property
    def version_text(self):
        return "%d.%d.%d" % self.version

    # -- generic CRUD ------------------------------------------------------
    def pages(self, path, what, params=None, max_pages=None):
        """Each page's rows of a list endpoint in turn, following page numbers until ``next == 0``
        (or ``max_pages`` pages; a page number seen before ends it too)."""
        page, seen = 1, set()
        while page and page not in seen and (max_pages is None or len(seen) < max_pages):
            seen.add(page)
            body = self._page(path, what, params, page, 100)
            yield body["results"]
            page = (body.get("pagination") or {}).get("next") or 0

    def list(self, path, what, params=None):
        """Every row of a list endpoint."""
        return [row for rows in self.pages(path, what, params) for row in rows]

    def first_page(self, path, what, params=None, page_size=100):
        """The first page of a list (newest first where the list sorts so) and the total count."""
        body = self._page(path, what, params, 1, page_size)
        return body["results"], (body.get("pagination") or {}).get("count", len(body["results"]))

    def _page(self, path, what, params, page, page_size):
        query = dict(params or {})
        query.update(page=page, page_size=page_size)
        _status, body = self.request("GET", path, "list %s" % what, params=query)
        if not isinstance(body, dict) or "results" not in body:
            raise ApiError("%s: list %s: the answer is not an authentik list; does authentik_url point at "
                           "authentik?" % (self.api_name, what))
        return body

    def events(self, action, username=None, user_pk=None, since=None, limit=200, max_pages=10):
        """The newest events of exactly ``action`` (of one user when given), newest first:
        [{pk, created, client_ip, user, context}].

        The server's ``?action=`` is a contains match (``login`` also returns ``login_failed``, which
        anyone who knows a username can cause); servers with the exact ``actions`` filter get that one.
        Every row is checked for the exact action (and the user's name and pk), and pages are followed
        until ``limit`` events, an event older than ``since``, or ``max_pages`` pages.
        """
        params = {"ordering": "-created"}
        params["actions" if self.at_least(EXACT_ACTIONS_FILTER_SINCE) else "action"] = action
        if username is not None:
            params["username"] = username
        found = []
        what = "%s events%s" % (action, " of %r" % username if username is not None else "")
        for rows in self.pages("/events/events/", what, params, max_pages=max_pages):
            for row in rows:
                created = parse_time(row.get("created"))
                if since is not None and created is not None and created < since:
                    return found
                user = row.get("user") or {}
                if row.get("action") != action or (username is not None and user.get("username") != username) or (
                        user_pk is not None and user.get("pk") != user_pk):
                    continue
                found.append(dict(pk=row.get("pk"), created=created, client_ip=row.get("client_ip"), user=user,
                                  context=row.get("context") or {}))
                if len(found) >= limit:
                    return found
        return found

    def login_events(self, username=None, user_pk=None, since=None, limit=200, max_pages=10):
        """The real ``login`` events (of one user, or of everyone), newest first: the one login-history reader."""
        return self.events("login", username, user_pk, since, limit, max_pages)

    def tasks(self, params, page_size=100):
        """Rows and count of the worker's task list, or None where the server has no task API (before 2025.8)."""
        if not self.at_least(TASK_API_SINCE):
            return None
        try:
            return self.first_page("/tasks/tasks/", "worker tasks", params, page_size=page_size)
        except ApiError as exc:
            if exc.status in (403, 404):
                return None  # no task API, or a token that may not see tasks
            raise

    def workers(self):
        """The workers that checked in within the last 45 s (``[{worker_id, version, version_matching}]``), or
        None where the server has no such list (before 2025.8) or the token may not read it."""
        if not self.at_least(TASK_API_SINCE):
            return None
        path = "/tasks/workers/"
        if not self.at_least(WORKERS_SLASH_SINCE):
            path = path.rstrip("/")  # routed without the trailing slash until 2026.2 (its API schema)
        try:
            found = self.get(path, "worker list")
        except ApiError as exc:
            if exc.status in (403, 404):
                return None
            raise
        return [row for row in found if isinstance(row, dict)] if isinstance(found, list) else None

    def find_by(self, path, what, field, value, extra=None):
        """The one object whose ``field`` equals ``value``, or None.

        The exact filter narrows the list; the client-side check guards against
        a server that ignored the filter.
        """
        params = {field: value}
        params.update(extra or {})
        found = [row for row in self.list(path, what, params) if row.get(field) == value]
        if len(found) > 1:
            raise ApiError("%s %r is ambiguous: %d objects carry it" % (what, value, len(found)))
        return found[0] if found else None

    def get(self, path, what):
        return self.request("GET", path, "read %s" % what)[1]

    def create(self, path, what, body):
        return self.request("POST", path, "create %s" % what, body=body, idempotent=False)[1]

    def put(self, path, what, body):
        return self.request("PUT", path, "update %s" % what, body=body, idempotent=True)[1]

    def patch(self, path, what, body):
        return self.request("PATCH", path, "update %s" % what, body=body, idempotent=True)[1]

    def delete(self, path, what):
        self.request("DELETE", path, "delete %s" % what, idempotent=True, ok=(200, 202, 204))

    def post_action(self, path, what, body):
        return self.request("POST", path, what, body=body, idempotent=True, ok=(200, 204))[1]

    # -- users -------------------------------------------------------------
    def find_user(self, username):
        return self.find_by("/core/users/", "user", "username", username, {"include_groups": "false"})

    def user_pk(self, username, option="username"):
        user = self.find_user(username)
        if user is None:
            raise ApiError("%s %r: authentik has no user with that username" % (option, username))
        return user["pk"]

    def users_by_username(self, usernames):
        """{username: user} for the given usernames, with as few requests as possible."""
        usernames = list(dict.fromkeys(usernames))
        if len(usernames) <= 3:
            found = dict((u, self.find_user(u)) for u in usernames)
            return dict((u, row) for u, row in found.items() if row is not None)
        wanted = set(usernames)
        rows = self.list("/core/users/", "users", {"include_groups": "false"})
        return dict((row["username"], row) for row in rows if row.get("username") in wanted)

    def find_group(self, name):
        return self.find_by("/core/groups/", "group", "name", name, {"include_users": "false"})

    def group_members(self, name, option="group"):
        """The direct members of the group named ``name``: [{pk, username, is_active}]."""
        group = self.find_by("/core/groups/", "group", "name", name, {"include_users": "true"})
        if group is None:
            raise ApiError("%s %r: authentik has no group with that name" % (option, name))
        return [dict(pk=u.get("pk"), username=u.get("username"), is_active=bool(u.get("is_active")))
                for u in group.get("users_obj") or []]

    def group_pk(self, name, option="group"):
        group = self.find_group(name)
        if group is None:
            raise ApiError("%s %r: authentik has no group with that name" % (option, name))
        return group["pk"]

    def owner_of_name(self, family, name):
        """Which object of any type in ``family`` ("propertymappings" or "policies") holds ``name``."""
        row = self.find_by("/%s/all/" % family, family, "name", name)
        if row is None:
            return None
        return "%s %r (pk %s)" % (row.get("verbose_name") or row.get("component") or "object", name, row.get("pk"))
