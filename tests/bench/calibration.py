"""Simulator options that make the bench behave like the real servers of §16-18 (not a test).

Section numbers are those of the project's authentik reference (``../shared/docs/authentik-api.md``);
every figure there was measured with authentik 2026.5.0-rc1 and its worker, Pangolin 1.22.0,
on 2 cores. ``CALIBRATED`` is what ``tests/bench/bench.py`` uses by default, ``UNCALIBRATED``
(``--uncalibrated``) is the profile the bench used before: instant APIs, no default rules,
the task costs of ``tests/bench/layouts.py``.

How the numbers were derived (wall time "w" = seconds per task as the queue drains; the
simulated worker runs ``worker_threads`` tasks side by side, so a task's cost = threads * w):

* login -> whitelisted on an idle worker (§18 table and its "floor" paragraph): the pipeline
  (median minus the 0.64 s login, minus half the 50 ms poll) is 0.445 s with one rule and one
  transport, 0.935 / 1.185 / 1.285 / 1.475 s with 4 / 6 / 8 / 13 rules (3 default rules plus
  one per 10 users) and a matching rule of 10 transports. The transports of the matching rule
  queue behind every handler of the event, so each extra rule adds a half handler:
  (1.475 - 0.935) / 9 rules = 0.06 s -> handler 0.12 s; the floor and the 10-user row then give
  dispatch + transport = 0.30 s and transport ~ 0.18 s (a body mapping that reads authentik's
  state), dispatch ~ 0.12 s.
* drains (§16, §17): 10 creates with 25 rules, 250 tasks in 21.6 s -> w = 0.086 s, cost 0.17 s;
  25 rule creates, 300 (+25 dispatch) tasks in 57 s -> w = 0.175 s, cost 0.35 s; 534 tasks in
  138 s -> w = 0.26 s, cost 0.52 s. Under a backlog a handler costs more than on an idle worker
  (the broker's tables grow, the API server and Postgres share the 2 cores).

The final handler cost is the one the converge's "worker busy after it" column needs (the
iterations are in the report of the change that added this file); see ``CALIBRATED`` below.
"""

from tests.bench.layouts import COSTS

# Seconds per request, any server, that the measured server latencies leave unexplained (fitted): with them
# alone the simulated converge took 14.1 / 24.6 / 42.8 s for 25 / 50 / 100 users against §18's 24.7 / 44.7 /
# 98.7 s, i.e. 10.6 s over 164 requests and 20.1 s over 309 = 0.065 s a request (at 100 the dispatch wait's
# cap blurs it). The same 0.065 s then also gives §18's "remove everyone" (6.2 ... 43.5 s, ~2.2 authentik and
# 1 Pangolin DELETE per user) and no-op (3.9 s at 100) columns, which were not used to fit it: the real
# controller, API servers, Postgres and the busy worker share 2 cores, so each request costs the run more
# than the server's own time measured alone.
RESIDUAL = 0.1

CALIBRATED = {
    "authentik": {
        # §16 "authentik list GET about 30 ms", plus the residual below
        "read_latency": 0.03 + RESIDUAL,
        # §17 "API writes themselves took about 0.09 s each, also while the worker was busy"; §18 "authentik writes
        # take about 0.09 s each"; plus the residual below
        "write_latency": 0.09 + RESIDUAL,
        # a fresh install's blueprints/default/events-default.yaml: 3 notification rules, so every event costs 3
        # handler tasks before the collection made any rule (§16 "one handler task per notification rule")
        "default_rules": True,
        # authentik's worker defaults: 1 process, 2 threads (AUTHENTIK_WORKER__THREADS); the servers had 2 cores
        "worker_threads": 2,
        # §16-17 drains: B queued tasks took ~B**2 to drain (see the module docstring)
        "task_cost_per_queued": 0.00145,
        "task_costs": {
            # §18 floor: dispatch + transport = 0.30 s, transport ~0.18 s
            "event_trigger_dispatch": 0.12,
            # §18 login rows: +0.06 s wall per rule with 2 threads (idle worker); §17 drains: 0.17-0.35 s
            "event_trigger_handler": 0.12,
            # §18 10-user row against the floor; the POST itself is Pangolin's latency below
            "notification_transport": 0.18,
        },
    },
    "pangolin": {
        # §16 "Pangolin authenticated GET about 22 ms (every request verifies the key with argon2)"; writes were
        # not timed apart, the argon2 check is the same; plus the residual below
        "read_latency": 0.022 + RESIDUAL,
        "write_latency": 0.022 + RESIDUAL,
    },
    # §18 floor: "the login itself takes 0.64 s (median)" (the flow executor's requests, before the login event)
    "login_seconds": 0.64,
    # §18: "whitelisted is the moment Pangolin's rule list shows the address (polled every 50 ms)"
    "poll_interval": 0.05,
}

UNCALIBRATED = {
    "authentik": {"task_costs": dict(COSTS), "worker_threads": 2},
    "pangolin": {},
    "login_seconds": 0.0,
    "poll_interval": 0.005,
}


def apply(env, profile):
    """Set the Pangolin simulator's latencies of ``profile`` on a running PlaybookEnv (its authentik
    options go to ``PlaybookEnv(**profile["authentik"])``)."""
    for key, value in profile["pangolin"].items():
        setattr(env.pangolin, key, value)
