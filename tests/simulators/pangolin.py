"""Stateful stand-in for the Pangolin 1.22 Integration API (base path ``/v1``).

It copies what the real server does, warts included, because the modules
under test must cope with the real thing (section numbers refer to the
project's Pangolin API reference). Like the server, it is made of parts, each
in its own module, put together here as ``PangolinSimulator``:

* ``pangolin_store.py``: the database (orgs, roles, resources, resource policies and
  their rules, API keys, IdPs and their org policies), the seeding and inspection helpers;
* ``pangolin_api.py``: the Integration API routes, with the key check and the guards,
  checking requests with the zod look-alike of ``pangolin_validation.py``;
* ``pangolin_gatekeeper.py``: badger's decision for a client address (``apply_rules_for``,
  ``request``), which it writes to the request log;
* ``pangolin_logs.py``: the request audit log (its write buffer, retention cleanup, the
  cached retention setting) and its query route, GET /org/{orgId}/logs/request;
* ``pangolin_clock.py``: the clock all of it runs on: real time until a test calls
  ``sim.clock.advance(seconds)``, after which what became due is applied (every API
  request applies it first too), so no test sleeps to see a flush or a cleanup;
  ``sim.clock.freeze()`` holds it still for tests that need the exact second.

``version`` (default "1.22.0") is the Pangolin version simulated; only the request-log
route depends on it (from 1.18 on); everything else answers as 1.22 does.

Each module's docstring says what its part models; the parts' public names are
importable from this module too.

Run it alone with ``python -m tests.simulators.pangolin --port 8000``.
"""

import argparse
import json
import signal
import threading

from tests.simulators.base import SimulatorBase
from tests.simulators.pangolin_api import ACTION_IDS, HTML_404, PUB, RID, PangolinApi  # noqa: F401 - re-exported
from tests.simulators.pangolin_clock import SimClock
from tests.simulators.pangolin_gatekeeper import PangolinGatekeeper
from tests.simulators.pangolin_logs import PangolinRequestLog
from tests.simulators.pangolin_store import ALNUM, BASE32, POLICY_FIELDS, PangolinStore  # noqa: F401 - re-exported
from tests.simulators.pangolin_validation import (  # noqa: F401 - re-exported
    ACTIONS, API_KEY_FIELDS, COUNTRIES, EXPECTED, HTTP_RESOURCE_FIELDS, IDP_ORG_FIELDS, IDP_UPDATE_FIELDS,
    KEY_ACTIONS_FIELDS, KEY_LIST_QUERY, LIMIT_OFFSET, MATCHES, PATH_CHAR, RAW_RESOURCE_FIELDS, REGIONS, RULE_FIELDS,
    RULE_LIST_QUERY, RULE_MODES, V4_PREFIX, V6_PREFIX, VALUE_CHECKS, ApiError, check_rule_value, page_param,
    zod_query, zod_strict,
)


class PangolinSimulator(PangolinApi, PangolinGatekeeper, PangolinRequestLog, PangolinStore, SimulatorBase):
    """Pangolin: its Integration API, gatekeeper, request log and database over one lock and one clock."""

    name = "pangolin"

    def __init__(self, version="1.22.0"):
        super().__init__()
        self.version = version
        self.clock = SimClock()
        self._build_routes()
        self.reset()


# -- standalone ----------------------------------------------------------------

def seed_from(sim, seed):
    """Apply a seed dict; return (resources name->id, idps name->id)."""
    resources, idps = {}, {}
    for org in seed.get("orgs", []):
        sim.add_org(org["org_id"], org.get("name"), org.get("log_retention_days", 7))
        for res in org.get("resources", []):
            rid = sim.add_resource(org["org_id"], res["name"], res.get("subdomain"), res.get("full_domain"),
                                   res.get("mode", "http"), res.get("apply_rules", False),
                                   res.get("legacy", False))
            resources[res["name"]] = rid
            for rule in res.get("rules", []):
                sim.add_rule(rid, rule["action"], rule["match"], rule["value"], rule["priority"],
                             rule.get("enabled", True))
    for key in seed.get("api_keys", []):
        sim.add_api_key(key.get("root", False), key.get("org_id"), key.get("actions", "all"), key.get("key"),
                        key.get("name"))
    for idp in seed.get("idps", []):
        idp_id = sim.add_idp(idp["name"], idp.get("auto_provision", False))
        idps[idp["name"]] = idp_id
        for pol in idp.get("policies", []):
            sim.add_idp_org_policy(idp_id, pol["org_id"], pol.get("role_mapping"), pol.get("org_mapping"))
    return resources, idps


def main(argv=None):
    parser = argparse.ArgumentParser(description="Pangolin 1.22 Integration API simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--seed", help="seed JSON file")
    parser.add_argument("--certfile")
    parser.add_argument("--keyfile")
    args = parser.parse_args(argv)
    seed = {}
    if args.seed:
        with open(args.seed) as fh:
            seed = json.load(fh)
    sim = PangolinSimulator()
    resources, idps = seed_from(sim, seed)
    info = {}
    if not seed.get("api_keys"):  # otherwise nobody could get in
        info["api_key"] = sim.add_api_key(root=True)
    url = sim.start(args.host, args.port, args.certfile, args.keyfile)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    print(json.dumps(dict({"url": url, "resources": resources, "idps": idps}, **info)), flush=True)
    while not done.wait(0.5):
        pass
    sim.stop()


if __name__ == "__main__":
    main()
