"""Stateful stand-in for the authentik REST API (``/api/v3``) plus its notification pipeline.

It copies what the real server does, warts included (section numbers refer to the
project's authentik API reference). Like the server, it is made of parts, each in its
own module, put together here as ``AuthentikSimulator``:

* ``authentik_store.py``: the database (records, kinds, field validation with the
  ``authentik_client`` pydantic models, uniqueness, defaults, cascades), the seeding
  helpers and the browser's side of logins, logouts and sessions;
* ``authentik_api.py``: routing, authentication, pagination, the events, tasks and
  authenticated-sessions endpoints and the simulator-only ``/_sim/`` control routes;
* ``authentik_viewsets.py``: the model endpoints (list, read, create, update, delete,
  custom actions), their serializers and filters, and the audit events of API writes;
* ``authentik_worker.py``: the worker (the broker's message queue, task rows and logs,
  retries with backoff, pause/step/wait_idle, the three actors and the transports' POSTs);
* ``authentik_expressions.py``: the expression sandbox and the policy engine, with the
  ORM stand-ins of ``authentik_orm.py`` behind an expression's imports.

Each module's docstring says what its part models. The parts' public names (``ANON_PK``,
``ExprUser``, ``run_expression``, ...) are importable from this module too.

Run it alone with ``python -m tests.simulators.authentik --port 9000``.
"""

import argparse
import json
import random
import signal
import threading

from tests.simulators.authentik_api import (  # noqa: F401 - re-exported
    BOOL_FALSE, BOOL_TRUE, CHOICE_ERROR, DEFAULT_TRUSTED_PROXY_CIDRS, EVENT_ORDERING, NO_PERMISSION, TASK_ORDERING,
    UNKNOWN_IP, AuthentikApi, recorded_client_ip, trusted_peer,
)
from tests.simulators.authentik_expressions import (  # noqa: F401 - re-exported
    AuthentikExpressions, ExprLogger, MappingFailed, Notification, PolicyRequest, SkipObject, error_string,
    run_expression, wrap_expression,
)
from tests.simulators.authentik_store import (  # noqa: F401 - re-exported
    ADMIN_PK, ANON_PK, DEFAULT_BRAND, EMAIL_RE, EMAIL_TEMPLATES, HTML_404, HTML_500, KINDS, KNOWN_ACTIONS,
    READ_ONLY, RELATIONS, REQUEST_MODELS, UNIQUE_MSG, URL_RE, AnonymousUser, ApiError, AuthentikStore, Event,
    ExprUser, Kind, akc, bad_request, drf_errors, iso, load_client_models, norm_uuid, now, parse_version,
    sanitize, user_dict,
)
from tests.simulators.authentik_viewsets import MAPPING_META, MODES, POLICY_META, AuthentikViewSets  # noqa: F401
from tests.simulators.authentik_worker import (  # noqa: F401 - re-exported
    ACTORS, TASK_DESCRIPTIONS, TASK_LOGGER, TASK_STATES, TASK_STATUSES, AuthentikWorker, TransportError,
)
from tests.simulators.base import SimulatorBase


class AuthentikSimulator(AuthentikApi, AuthentikViewSets, AuthentikWorker, AuthentikExpressions, AuthentikStore,
                         SimulatorBase):
    """authentik: its API, model endpoints, worker, expressions and database over one lock."""

    name = "authentik"

    def __init__(self, version="2026.5.0-rc1", page_size=None, worker="sync", worker_threads=2, task_costs=None,
                 retry_backoff=0.05, max_retries=None, webhook_timeout=5.0, busy_delete_failure=0.0,
                 busy_delete_gone=0.0, seed=0, default_rules=False, read_latency=0.0, write_latency=0.0,
                 task_cost_per_queued=0.0, event_search_latency=None, trusted_proxy_cidrs=DEFAULT_TRUSTED_PROXY_CIDRS):
        super().__init__(read_latency=read_latency, write_latency=write_latency)
        # AUTHENTIK_LISTEN__TRUSTED_PROXY_CIDRS: peers whose X-Forwarded-For is believed (a list, or a
        # comma-separated string like the setting)
        self.trusted_proxy_cidrs = trusted_proxy_cidrs
        # seconds a GET of /events/events/ filtered by username takes (None: read_latency, like any read)
        self.event_search_latency = event_search_latency
        self.default_rules = default_rules  # seed events-default.yaml's rules (a fresh install) on reset()
        if worker not in ("sync", "background", "manual"):
            raise ValueError("worker must be sync, background or manual")
        self.version = version
        self._page_size = page_size
        self.worker_mode = worker
        self.retry_backoff = retry_backoff  # seconds; attempt n waits retry_backoff * 2**(n-1)
        self._max_retries = max_retries
        self.webhook_timeout = webhook_timeout
        self.webhook_verify = True  # TLS verification of webhook targets
        # Seconds of work each task costs the worker (a real one spends tens of ms per task, §16-17).
        self.task_costs = dict.fromkeys(ACTORS, 0.0)
        self.task_costs.update(task_costs or {})
        # Seconds a task costs more for every message still queued when it starts (a task with a cost at
        # all): drains on the real server took ~B**2, not ~B, for B queued tasks (§16-17).
        self.task_cost_per_queued = task_cost_per_queued
        # Chance that a DELETE of a rule or transport with tasks still queued answers 405 and
        # leaves the object in place (§17); drawn from a seeded generator, so runs repeat.
        self.busy_delete_failure = busy_delete_failure
        # Chance that such a refused delete took effect all the same: 405, and the object gone (§16).
        self.busy_delete_gone = busy_delete_gone
        self._rng = random.Random(seed)
        self.drain_budget = 20000  # messages one synchronous drain may run: stops event storms from looping
        self.task_limit = 5000  # task rows kept; finished ones beyond it are purged, oldest first
        self._work = threading.Condition(self.lock)
        self.reset()
        self._threads = []
        if worker == "background":
            for index in range(worker_threads):
                thread = threading.Thread(target=self._worker_loop, name="authentik-worker-%d" % index, daemon=True)
                thread.start()
                self._threads.append(thread)


def main(argv=None):
    parser = argparse.ArgumentParser(description="authentik API simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--version", default="2026.5.0-rc1")
    parser.add_argument("--seed", help="JSON file with tokens, users and groups")
    parser.add_argument("--certfile")
    parser.add_argument("--keyfile")
    args = parser.parse_args(argv)
    sim = AuthentikSimulator(version=args.version)
    seed = {}
    if args.seed:
        with open(args.seed, encoding="utf-8") as fh:
            seed = json.load(fh)
    for token in seed.get("tokens", []):
        sim.add_token(token["key"], token.get("superuser", True))
    for group in seed.get("groups", []):
        sim.add_group(group["name"])
    users = {}
    for user in seed.get("users", []):
        users[user["username"]] = sim.add_user(user["username"], user.get("name", ""), user.get("email", ""),
                                               user.get("password"), user.get("groups", ()),
                                               user.get("is_active", True))
    url = sim.start(args.host, args.port, args.certfile, args.keyfile)
    print(json.dumps({"url": url, "users": users}), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    stop.wait()
    sim.stop()


if __name__ == "__main__":
    main()
