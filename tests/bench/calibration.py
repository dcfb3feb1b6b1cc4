"""Simulator options that make the bench behave like the real servers of §16-18 (not a test).

Why the old bench said 6.7 s where a real server stayed busy 60 s after a 100-user converge
------------------------------------------------------------------------------------------
Not the fan-out the collection controls, and not the dispatch wait by itself: the worker's cost
per event on a real install. A fresh authentik has 3 default notification rules, so each of the
converge's ~230 authentik writes costs a dispatch and 3 handler tasks (~0.43 s of worker time,
0.22 s with 2 threads). The run reads first (one event search per user, ~0.47 s each, fitted) and then
writes about every 0.16 s, so the worker falls behind by ~25 % while the chains are written. At
25 users the backlog is ~1.5 s at the dispatch wait, which absorbs it; at 100 users it is more
than the wait's 10 s bound, so the 10 notification rules and their bindings are made with ~16
dispatches (151 tasks) still queued, and each of those events then fans out to 13 rules instead
of 3 (1025 handler tasks instead of ~800). The old profile had instant APIs, no default rules and
20-50 ms tasks: the worker never fell behind and all that was left was the rules' own events.
Knobs, one at a time, at 100 users (``bench.py --table --converge-only ... 100``; converge,
requests, worker busy after it): calibrated 99.7 s, 583, 64 s (the run waits the full 10 s, as
§18's 98.7 s and 573 requests suggest: 10-13 s more than the smaller runs predict, and ~28
requests more than a run that does not wait); ``--no-default-rules`` 92.4 s, 546, 7 s;
``--cost handler=0.06`` 91.5 s, 546, 7 s; ``--per-queued 0`` 96.3 s, 564, 16 s;
``--no-dispatch-wait`` 90.4 s, 545, 176 s (1386 handler tasks); ``--uncalibrated`` 4.7 s, 553,
5 s. Without the wait's 10 s bound (not a bench option: the collection's constant) a replay of
the calibrated run's requests through the same queue rules gives 34 s, the run 4 s longer. The knob
that matters is the handler cost times the number of rules against the write pace; the 10 s
bound decides whether a backlog turns into fan-out.

Section numbers are those of the project's authentik reference (``../shared/docs/authentik-api.md``);
every figure there was measured with authentik 2026.5.0-rc1 and its worker, Pangolin 1.22.0,
on 2 cores. ``CALIBRATED`` is what ``tests/bench/bench.py`` uses by default, ``UNCALIBRATED``
(``--uncalibrated``) is the profile the bench used before: instant APIs, no default rules,
the task costs of ``tests/bench/layouts.py``.

How the numbers were derived (the simulated worker runs ``worker_threads`` tasks side by side,
oldest first; a task's cost is its ``task_costs`` entry plus ``task_cost_per_queued`` for every
message queued when it starts):

* request latencies: the servers' measured latencies plus ``RESIDUAL``, fitted to §18's removal
  column; the converge's per-user event searches, ``EVENT_SEARCH``, fitted to the converge column
  (one residual for every request could not give both: the converge wants ~0.1 s a request, the
  removal 0.03 s). The no-op and check-mode columns were not fitted: Ansible's own start-up,
  most of them, is the machine's.
* login -> whitelisted on an idle worker (§18 table and its "floor" paragraph): the pipeline
  (median minus the 0.64 s login, minus half the 50 ms poll) is 0.445 s with one rule and one
  transport, 0.935 / 1.185 / 1.285 / 1.475 s with 4 / 6 / 8 / 13 rules (3 default rules plus
  one per 10 users) and a matching rule of 10 transports. The transports of the matching rule
  queue behind every handler of the event, so each extra rule adds half a handler: ~0.055 s a
  rule (least squares over the four rows) -> handler ~0.11 s; dispatch ~0.12 s from the floor;
  the transport from p95 - median.
* the worker under load: with those idle costs, the backlog term is what is left to fit §18's
  "worker busy after it" (0 s at 25 users, 60 s at 100). 0.0005 s per queued message gives 64 s
  and 3 s (50 users, not fitted: 50.8 s, 296 requests, 8 s busy, against §18's 44.7 s, 293 and
  2 s). §17's drains replayed with it (``bench.py --drains``): 10 creates with 25 rules, 250
  tasks, 20.7 s (21.6 s measured); 25 rule creates 46 s (57 s measured), with 456 handler tasks
  where the real server counted 300 (the simulated dispatch sees the rules made meanwhile). The
  steeper 0.00145 that the drains alone suggest makes the worker run away during a 100-user
  converge (hundreds of seconds busy after it).
* 25 users x 3 resources (``bench.py --table --resources 3 25``, not fitted): a converge of
  38.5 s, 314 requests, 110 writes to authentik, and the worker idle 2-3 s after it (the 10 s wait
  absorbs that backlog); login -> whitelisted on all three 2.35 / 4.0 s (the matching rule has 30
  transports).
* the seed's manual chain for one user (``bench.py --seed-chain``, not fitted beyond the floor above):
  1.14 / 1.14 s median / p95 against §18's 1.11 / 1.16 s; with a fresh install's 3 default rules
  beside it 1.24 s. A household row's p95 divided by the chain's is the bench's "p95 / seed chain p95"
  column (25 users 1.80, where §18's real servers give 2.05 / 1.16 = 1.77).
"""

from tests.bench.layouts import COSTS

# Seconds per request, any server, that the servers' own latencies leave unexplained (fitted): §18's "remove
# everyone" column (13.2 s at 25 users, 43.5 s at 100; 117 and 433 requests here, mostly DELETEs) minus what the
# controller takes against instant simulators (3.3 s and 5.3 s on this bench) minus the measured server latencies
# leaves 0.029 s and 0.034 s a request. (The real controller, API servers, Postgres and the worker share 2 cores.)
RESIDUAL = 0.03
# Seconds an event search by username takes on the server (fitted; not timed on the real servers): a converge
# reads each user it writes for with GET /events/events/?actions=login&username=U, whose username filter scans
# the events' JSON. §18's converge (24.7 s at 25 users, 98.7 s at 100) minus the controller (3.8 s, 5.9 s) minus
# everything else at the latencies above leaves 10.3 s over 25 searches and 54 s over 100 (0.41 s and 0.53 s
# each: the events table grows from one run to the next); 0.44 s is the fit to both. One uniform residual
# cannot give both columns: the converge needs 0.09-0.12 s a request, the removal 0.03 s.
EVENT_SEARCH = 0.44

CALIBRATED = {
    "authentik": {
        # §16 "authentik list GET about 30 ms", plus the residual
        "read_latency": 0.03 + RESIDUAL,
        # §17 "API writes themselves took about 0.09 s each, also while the worker was busy"; §18 "authentik writes
        # take about 0.09 s each"; plus the residual
        "write_latency": 0.09 + RESIDUAL,
        # see EVENT_SEARCH
        "event_search_latency": EVENT_SEARCH + RESIDUAL,
        # a fresh install's blueprints/default/events-default.yaml: 3 notification rules, so every event costs 3
        # handler tasks before the collection made any rule (§16 "one handler task per notification rule")
        "default_rules": True,
        # authentik's worker defaults: 1 process, 2 threads (AUTHENTIK_WORKER__THREADS); the servers had 2 cores
        "worker_threads": 2,
        # §16-17 drains: B tasks queued at once took more than B times a task to drain. Fitted together with the
        # handler cost to §18's 25- and 100-user converges (worker idle right after / busy 60 s, the run 10-13 s
        # longer at 100 users than the smaller runs predict); it then gives §17's 250-task drain (21.6 s): see
        # the module docstring
        "task_cost_per_queued": 0.0005,
        "task_costs": {
            # §18 login -> whitelisted: the pipeline after the 0.64 s login is 1.185 s with 6 rules, 1.475 s with 13;
            # the floor (one rule, one transport) 0.445 s in all bounds dispatch + one handler + the POST
            "event_trigger_dispatch": 0.12,
            # §18 login rows: about 0.055 s more per rule on an idle worker (least squares over 4 / 6 / 8 / 13 rules),
            # i.e. half a handler with 2 threads -> ~0.11 s; 0.105 s, with the backlog term above, is the fit to
            # §18's "worker busy after it" (the worker falls behind while a 100-user converge writes, see the
            # module docstring)
            "event_trigger_handler": 0.105,
            # §18 login rows: fitted to the medians / p95 at 25 and 100 users (1.85 / 2.05 s, 2.14 / 2.55 s; the
            # bench gives 1.60 / 2.05 s and 2.16 / 2.71 s): the user's transport is one of up to 10 of the matching
            # rule, run 2 at a time after every handler, so p95 - median is about two of them. A body mapping
            # that reads authentik's state; the POST itself is Pangolin's latency below. Transports run on
            # logins only, so this cost does not touch the converge columns.
            "notification_transport": 0.17,
        },
    },
    "pangolin": {
        # §16 "Pangolin authenticated GET about 22 ms (every request verifies the key with argon2)"; writes were
        # not timed apart, the argon2 check is the same; plus the residual
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
