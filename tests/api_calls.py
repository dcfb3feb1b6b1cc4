"""The API operations the collection calls, as the contract data and its tests see them.

Read by ``tests/test_openapi_conformance.py`` and by ``scripts/contract_data.py``
(which writes ``tests/contract/*.json`` for exactly these operations), so this
module uses the standard library only and imports nothing from the suite.

Paths are written with ``{}`` for each path parameter.
"""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODULE_UTILS = REPO / "plugins" / "module_utils"

# -- Pangolin ------------------------------------------------------------------------

# ``self.call("GET", "/resource/%d" % ...)`` in the Pangolin client
PANGOLIN_CALL = re.compile(r'self\.call\(\s*"(GET|PUT|POST|DELETE|PATCH)",\s*"([^"]+)"')
PANGOLIN_CLIENT = MODULE_UTILS / "_pangolin"

# What authentik's webhook transport POSTs to (login_ip_whitelist builds the URL).
PANGOLIN_WEBHOOK_TARGET = ("POST", "/resource/{}/rule/{}")
PANGOLIN_WEBHOOK_SOURCE = MODULE_UTILS / "_whitelist" / "urls.py"

# Reads of a feature under way: the org's request audit log, and the org itself
# (its settingsLogRetentionDaysRequest).
PANGOLIN_PLANNED_CALLS = [
    ("GET", "/org/{}/logs/request"),
    ("GET", "/org/{}"),
]


def pangolin_client_calls(client_dir=PANGOLIN_CLIENT):
    """(method, path with {}) of every ``self.call`` in the Pangolin client package, sorted."""
    calls = set()
    for source in sorted(Path(client_dir).rglob("*.py")):
        for method, path in PANGOLIN_CALL.findall(source.read_text()):
            calls.add((method, re.sub(r"%[ds]", "{}", path)))
    return sorted(calls)


def pangolin_calls(client_dir=PANGOLIN_CLIENT):
    """Every Pangolin operation the collection calls: the client's, the webhook target, the planned reads."""
    return sorted(set(pangolin_client_calls(client_dir)) | {PANGOLIN_WEBHOOK_TARGET} | set(PANGOLIN_PLANNED_CALLS))


# -- authentik -----------------------------------------------------------------------

# (method, path with {} for ids, query parameters sent). Collection endpoints
# are listed with the page parameters the client always adds.
PAGE = ("page", "page_size")
AUTHENTIK_CALLS = [
    ("GET", "/admin/version/", ()),
    ("GET", "/core/users/", PAGE + ("username", "include_groups")),
    ("POST", "/core/users/", ()),
    ("PATCH", "/core/users/{}/", ()),
    ("DELETE", "/core/users/{}/", ()),
    ("POST", "/core/users/{}/set_password/", ()),
    ("GET", "/core/groups/", PAGE + ("name", "include_users")),
    ("POST", "/core/groups/", ()),
    ("PATCH", "/core/groups/{}/", ()),
    ("DELETE", "/core/groups/{}/", ()),
    ("POST", "/core/groups/{}/add_user/", ()),
    ("POST", "/core/groups/{}/remove_user/", ()),
    ("GET", "/propertymappings/all/", PAGE + ("name",)),
    ("GET", "/policies/all/", PAGE + ("name",)),
    ("GET", "/policies/bindings/", PAGE + ("target", "target_in")),
    ("POST", "/policies/bindings/", ()),
    ("PUT", "/policies/bindings/{}/", ()),
    ("DELETE", "/policies/bindings/{}/", ()),
    # the doctor and expiry: what authentik recorded (the exact "actions" filter
    # on 2026.2 and later, the "action" contains match before)
    ("GET", "/events/events/", PAGE + ("action", "actions", "username", "ordering")),
    ("GET", "/tasks/tasks/", PAGE + ("aggregated_status", "rel_obj_content_type__app_label",
                                     "rel_obj_content_type__model", "ordering", "state", "actor_name")),
    # the doctor: which worker processes checked in (a plain list)
    ("GET", "/tasks/workers/", ()),
    # follow_sessions reads every session; a revocation ends the user's own
    ("GET", "/core/authenticated_sessions/", PAGE + ("user__username",)),
    ("DELETE", "/core/authenticated_sessions/{}/", ()),
]
for _collection in ("/propertymappings/notification/", "/policies/expression/", "/policies/event_matcher/",
                    "/events/transports/", "/events/rules/"):
    AUTHENTIK_CALLS += [("GET", _collection, PAGE + ("name",)), ("POST", _collection, ()),
                        ("PATCH", _collection + "{}/", ()), ("DELETE", _collection + "{}/", ())]
del _collection

# Filters authentik does not declare (it ignores unknown filters silently). Each
# is only acceptable because the client re-checks the field on every row.
KNOWN_UNDECLARED_FILTERS = {
    ("/policies/all/", "name"): "authentik has no name filter on /policies/all/; find_by re-checks names "
                                "client-side, so this only costs reading every page",
}
