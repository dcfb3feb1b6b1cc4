#!/usr/bin/env python3
"""Benchmark of playbooks/site.yml against the simulators (not a test).

    python -m tests.bench.bench 5 25 100

For each N: seeds N authentik users, then times a --check --diff run, a
converge from empty, a no-op rerun, every user logging in once, then
playbooks/doctor.yml, a playbooks/expire.yml that expires nobody, and the
removal of every user. For each phase it counts module invocations, the HTTP
requests each simulator received (by method), the writes, and the worker tasks
the phase queued in authentik, and how long authentik's worker stayed busy
after it (a worker of 2 threads whose tasks cost what the real one was measured
to spend, see tests/bench/layouts.py). Each phase starts with an idle worker.

By default the simulators run with the calibrated profile of tests/bench/calibration.py
(request latencies, the 3 default notification rules of a fresh authentik, task costs
measured on real servers, §16-18 of the authentik reference); ``--uncalibrated`` runs the
old profile (instant APIs, no default rules, dispatch 20 ms / handler 50 ms / transport 60 ms).

    python -m tests.bench.bench --table 10 25 50 100

prints the columns of §18's table instead: converge from empty, its requests, how long the
worker stayed busy after it, a no-op rerun (requests, writes), check mode, login ->
whitelisted median / p95 (a login takes ``login_seconds``, then Pangolin's rule is polled
every ``poll_interval``), and the removal of everyone. Ablations for finding out what makes
the difference: ``--no-latency``, ``--no-default-rules``, ``--no-dispatch-wait`` (the
collection's wait for the event dispatches sees an empty queue), ``--cost actor=seconds``,
``--threads N``, ``--converge-only``. ``--resources R`` runs one whitelist over R resources (every
user gets a rule and a transport on each; "whitelisted" is then every resource's rule list showing
the address), e.g. ``--table --resources 3 25`` for the "25 users x 3 resources" row. Each row also says
what a login cost the worker (handler tasks per event: one per notification rule; transport tasks per login)
and the spread of the login times (fastest-slowest). ``--logins N`` times N logins (``--login-seed`` picks
which users log in).

    python -m tests.bench.bench --table --seed-chain --resources 3 25

first times the seed's manual chain of one user on the same profile (§18's floor: one Pangolin rule, one
transport whose body is the event's address, one notification rule sending to the event's user with a policy
matching the user's login; that rule the only one on the server, as it was measured), then each row's
login p95 as a multiple of the chain's. ``--seed-chain`` alone prints that row and the same chain next to
a fresh install's 3 default rules.

What-ifs, for finding out what a layout or the server could gain: ``--users-per-rule N`` (or ``balanced``:
as many rules as 10 a rule makes, the users spread evenly); ``--order listed|shuffled|own-first``, the order
in which the matching rule's handler queues its transports; ``--cost own_transport=S`` /
``--cost other_transport=S``, what a transport task costs when its user is / is not the one who logged in;
``--threads N`` and ``--processes P`` (authentik's ``AUTHENTIK_WORKER__THREADS`` and
``AUTHENTIK_WORKER__PROCESSES``: P x N tasks run side by side; the simulated worker does not model the
cores they share). See ``vary_worker``.

    python -m tests.bench.bench --drains

replays §17's two measured drains through the API with the profile's worker, next to the
measured times.
"""

import argparse
import copy
import hashlib
import random
import statistics
import sys
import time

from tests.bench import calibration
from tests.playbook_env import PlaybookEnv

OWN_PREFIX = "homelab.pangolin_authentik."


def module_invocations(parsed):
    """Tasks that ran one of the collection's modules (skipped loops excluded)."""
    count = 0
    for play in (parsed or {}).get("plays", []):
        for task in play["tasks"]:
            result = task["hosts"].get("localhost") or {}
            if task["task"]["action"].startswith(OWN_PREFIX) and not result.get("skipped"):
                count += len(result.get("results") or [None])
    return count


def settle(env):
    """Seconds until authentik's worker has nothing left to do."""
    start = time.time()
    if not env.authentik.wait_idle(1800):
        raise SystemExit("authentik's worker did not drain")
    return time.time() - start


def measure(env, label, work):
    settle(env)
    env.pangolin.reset_log()
    env.authentik.reset_log()
    env.authentik.reset_counts()
    start = time.time()
    row = work() or {}
    elapsed = time.time() - start
    busy = settle(env)  # what the phase queued is what later logins wait behind
    row.update(phase=label, seconds=elapsed, busy=busy, pangolin=env.pangolin.requests_by_method(),
               authentik=env.authentik.requests_by_method(), writes=len(env.writes()),
               tasks=dict(env.authentik.enqueued))
    return row


def playbook(env, label, **kwargs):
    if kwargs.get("inventory") is None:  # (setdefault would write the default inventory over the given one)
        kwargs["inventory"] = inventory(env)

    def work():
        rc, parsed, out, err = env.run(**kwargs)
        if rc != 0:
            raise SystemExit("%s failed:\n%s\n%s" % (label, out[-3000:], err[-2000:]))
        return dict(modules=module_invocations(parsed), changed=env.stats(parsed).get("changed"))
    return measure(env, label, work)


def logins(env):
    """Every user logs in once, from an address of their own; done when every rule holds it."""
    def work():
        wanted = {}
        for index, username in enumerate(env.usernames):
            wanted[username] = "198.51.%d.%d" % (100 + index // 250, 1 + index % 250)
            env.authentik.login(username, wanted[username])
        env.wait_for(lambda: all(whitelisted(env, a) for a in wanted.values()), timeout=1800,
                     what="every login whitelisted")
        return dict(modules=0, changed="-")
    return measure(env, "logins", work)


def fmt(counts):
    return " ".join("%s=%d" % item for item in sorted(counts.items())) or "-"


def open_env(size, profile, dispatch_wait=True, resources=1):
    env = PlaybookEnv(users=size, **profile["authentik"])
    calibration.apply(env, profile)
    vary_worker(env, **profile.get("variant", {}))
    # one whitelist over ``resources`` resources of the org: every user gets a rule and a transport on each,
    # the notification rules, policies and body mappings are shared
    env.resource_ids = [env.resource_id] + [
        env.pangolin.add_resource("homelab", "App %d" % n, subdomain="app%d" % n, full_domain="app%d.example.com" % n)
        for n in range(2, resources + 1)]
    env.bench_overrides = {} if resources == 1 else dict(
        jellyfin_whitelist_resources=[{"id": r} for r in env.resource_ids], jellyfin_whitelist_instance="bench")
    per_rule = profile.get("users_per_rule")
    if per_rule == "balanced":  # as few rules as 10 a rule makes, their users spread evenly
        per_rule = -(-size // -(-size // 10)) if size else 10
    if per_rule is not None:
        env.bench_overrides["jellyfin_whitelist_users_per_rule"] = int(per_rule)
    env.rule_creates = []  # (seconds since the converge began, dispatches queued, all queued) at each rule POST
    env.converge_started = None
    handle = env.authentik.handle

    def watching(request):
        if request.method == "POST" and request.path == "/api/v3/events/rules/" and env.converge_started:
            env.rule_creates.append((time.time() - env.converge_started,
                                     env.authentik.queued_messages("event_trigger_dispatch"),
                                     env.authentik.queued_messages()))
        if not dispatch_wait and request.path == "/api/v3/tasks/tasks/" and \
                request.q("actor_name", "").endswith("event_trigger_dispatch"):
            request.query["actor_name"] = ["ablation.no_such_actor"]  # the wait sees nothing queued
        return handle(request)

    env.authentik.handle = watching
    return env


def vary_worker(env, order="listed", own_transport=None, other_transport=None):
    """What-ifs on authentik's worker, for finding out what a layout could gain (none is a setting of authentik):

    * ``order``: the order in which a matching rule's handler queues its transports. ``listed``: as the rule's
      ``transports`` were last sent (what the simulator does by default); ``shuffled``: a fixed arbitrary order per
      rule (what ``trigger.transports.all()`` without an ordering leaves to the database); ``own-first``: the
      transports of the user who logged in first (no authentik does this);
    * ``own_transport`` / ``other_transport``: seconds a transport task costs when its user is / is not the one the
      event is about (a body mapping that did no work for other users' logins), instead of the profile's cost.
    """
    sim = env.authentik
    handler, transport = sim._actor_event_trigger_handler, sim._actor_notification_transport

    def owner(transport_pk):
        """The username in the transport's name (``<head>/<username>/<slot>[/resource-<id>]``)."""
        parts = (sim.transports.get(transport_pk) or {}).get("name", "").split("/")
        return parts[1] if len(parts) >= 3 else None

    def ordered(message, event_uuid, rule_name):
        with sim.lock:
            rule = next((r for r in sim.rules.values() if r["name"] == rule_name), None)
            event = sim._event(event_uuid)
            if order == "listed" or rule is None or event is None:
                return handler(message, event_uuid, rule_name)
            listed = list(rule["transports"])
            if order == "shuffled":
                rule["transports"] = sorted(listed, key=lambda pk: hashlib.sha256(
                    ("%s %s" % (rule["pk"], pk)).encode()).hexdigest())
            else:
                rule["transports"] = sorted(listed, key=lambda pk: owner(pk) != event.user.get("username"))
            try:
                return handler(message, event_uuid, rule_name)
            finally:
                rule["transports"] = listed

    base = sim.task_costs["notification_transport"]
    own = base if own_transport is None else own_transport
    other = base if other_transport is None else other_transport
    if own != base or other != base:
        sim.task_costs["notification_transport"] = max(min(own, other), 0.001)  # the rest is slept below

    def costed(message, transport_pk, event_uuid, user_pk, rule_pk):
        with sim.lock:
            mine = owner(transport_pk) == (sim.users.get(user_pk) or {}).get("username")
        rest = (own if mine else other) - sim.task_costs["notification_transport"]
        if rest > 0:
            time.sleep(rest)
        return transport(message, transport_pk, event_uuid, user_pk, rule_pk)

    if order not in ("listed", "shuffled", "own-first"):
        raise SystemExit("--order is listed, shuffled or own-first")
    sim._actor_event_trigger_handler = ordered
    sim._actor_notification_transport = costed


def inventory(env, **overrides):
    """The bench's inventory: every user of the env, over the env's resources."""
    return env.inventory(**dict(env.bench_overrides, **overrides))


def whitelisted(env, address):
    """Whether Pangolin's rule list of every resource shows ``address`` (what §18 polled)."""
    return all(any(rule["value"] == address for rule in env.pangolin.rules(r)) for r in env.resource_ids)


def removal(env):
    return inventory(env, jellyfin_whitelist_users=[{"username": u, "state": "absent"} for u in env.usernames])


def main(sizes, profile=None, resources=1):
    profile = profile or calibration.CALIBRATED
    print("%5s  %-8s %8s %7s %8s %7s %8s %9s %9s  %-28s %s" % (
        "users", "phase", "seconds", "modules", "changed", "writes", "handler", "transport", "busy (s)",
        "pangolin requests", "authentik requests"))
    for size in sizes:
        with open_env(size, profile, resources=resources) as env:
            for row in (lambda: playbook(env, "check", check=True, diff=True),
                        lambda: playbook(env, "converge"),
                        lambda: playbook(env, "no-op"),
                        lambda: logins(env),
                        lambda: playbook(env, "doctor", playbook="doctor.yml"),
                        lambda: playbook(env, "expire", playbook="expire.yml"),
                        lambda: playbook(env, "remove", inventory=removal(env))):
                row = row()
                print("%5d  %-8s %8.2f %7d %8s %7d %8d %9d %9.1f  %-28s %s" % (
                    size, row["phase"], row["seconds"], row["modules"], row["changed"], row["writes"],
                    row["tasks"]["event_trigger_handler"], row["tasks"]["notification_transport"], row["busy"],
                    fmt(row["pangolin"]), fmt(row["authentik"])), flush=True)


def requests_of(row):
    return sum(row["pangolin"].values()) + sum(row["authentik"].values())


def timed_logins(env, profile, count=20, seed=7):
    """Logins of random users on an idle worker, each timed from the start of its login flow until
    Pangolin's rule list shows the address, on every resource (polled like §18); returns the sorted latencies."""
    rng = random.Random(seed)
    latencies = []
    for n in range(count):
        settle(env)
        username = rng.choice(env.usernames)
        address = "203.0.%d.%d" % (113 + n // 250, 1 + n % 250)
        start = time.monotonic()
        time.sleep(profile["login_seconds"])  # the flow executor's requests before the login event
        env.authentik.login(username, address)
        while not whitelisted(env, address):
            if time.monotonic() - start > 600:
                raise SystemExit("login of %s never whitelisted" % username)
            time.sleep(profile["poll_interval"])
        latencies.append(time.monotonic() - start)
    return sorted(latencies)


def p95_of(latencies):
    return latencies[max(0, -(-len(latencies) * 95 // 100) - 1)]


TABLE_HEADER = ("| users | converge from empty | requests | worker busy after it | no-op rerun | check mode "
                "| remove everyone (one run) | login -> whitelisted median / p95 | converge tasks d/h/t "
                "| first rule POST at (dispatches / all tasks queued) | handler tasks per event "
                "| transports per login | login spread (min-max) | p95 / seed chain p95 |")


def print_header():
    print(TABLE_HEADER)
    print("|---" * TABLE_HEADER.count(" | ") + "|---|")


def login_cells(env, profile, count, seed, floor=None):
    """Timed logins on an idle worker: the login columns of a row."""
    found = {}

    def work():
        found["latencies"] = timed_logins(env, profile, count, seed)
        return dict(modules=0, changed="-")

    row = measure(env, "logins", work)
    latencies = found["latencies"]
    tasks = row["tasks"]
    dispatches = max(1, tasks["event_trigger_dispatch"])
    return latencies, dict(
        login="%.2f / %.2f s" % (statistics.median(latencies), p95_of(latencies)),
        handlers="%.1f" % (tasks["event_trigger_handler"] / float(dispatches)),
        transports="%.1f" % (tasks["notification_transport"] / float(len(latencies))),
        spread="%.2f-%.2f s" % (latencies[0], latencies[-1]),
        ratio="%.2f" % (p95_of(latencies) / floor) if floor else "-")


def table(sizes, profile, dispatch_wait=True, converge_only=False, logins_per_size=20, resources=1, floor=None,
          seed=7, header=True, label_suffix=""):
    """The columns of §18's table, one row per size, plus what the converge queued and what a login costs."""
    if header:
        print_header()
    for size in sizes:
        with open_env(size, profile, dispatch_wait, resources) as env:
            settle(env)
            env.converge_started = time.time()
            converge = playbook(env, "converge")
            first = env.rule_creates[0] if env.rule_creates else (float("nan"), 0, 0)
            cells = ["%.1f s" % converge["seconds"], "%d" % requests_of(converge), "%.0f s" % converge["busy"]]
            login = dict.fromkeys(("login", "handlers", "transports", "spread", "ratio"), "-")
            if converge_only:
                cells += ["-"] * 4
            else:
                noop = playbook(env, "no-op")
                cells.append("%.1f s, %d requests, %d writes" % (noop["seconds"], requests_of(noop), noop["writes"]))
                check = playbook(env, "check", check=True)
                cells.append("%.1f s" % check["seconds"])
                _latencies, login = login_cells(env, profile, logins_per_size, seed, floor)
                remove = playbook(env, "remove", inventory=removal(env))
                cells.append("%.1f s" % remove["seconds"])
                cells.append(login["login"])
            tasks = converge["tasks"]
            cells.append("%d/%d/%d" % (tasks["event_trigger_dispatch"], tasks["event_trigger_handler"],
                                       tasks["notification_transport"]))
            cells.append("%.1f s (%d / %d)" % first)
            cells += [login["handlers"], login["transports"], login["spread"], login["ratio"]]
            label = "%d" % size if resources == 1 else "%d × %d resources" % (size, resources)
            print("| %s%s | %s |" % (label, label_suffix, " | ".join(cells)), flush=True)


def seed_chain(profile, logins=20, seed=7, default_rules=False, header=True, floor=None):
    """The seed's manual chain for one user, on the profile's servers: one Pangolin rule, one webhook transport
    whose body is the address of the event that made authentik send it, one notification rule sending to the
    event's user, with an expression policy matching the user's login bound to it. §18's floor was measured with
    that rule the only notification rule on the server (``default_rules`` False); with ``default_rules`` a fresh
    install's 3 rules are there too. Built through the simulators' APIs; returns the p95."""
    import requests

    from tests.playbook_env import COLLECTIONS, REPO
    for path in (str(REPO), str(COLLECTIONS)):
        if path not in sys.path:
            sys.path.insert(0, path)
    from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.render import (
        login_policy_expression,
    )
    from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.body import (
        event_body_expression,
    )
    from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.urls import rule_url
    from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.webhook_key import (
        headers_mapping_expression,
    )
    from tests.playbook_env import AUTHENTIK_TOKEN

    profile = copy.deepcopy(profile)
    profile["authentik"]["default_rules"] = default_rules
    if header:
        print_header()
    with open_env(1, profile) as env:
        session = requests.Session()
        session.headers["Authorization"] = "Bearer " + AUTHENTIK_TOKEN
        base = env.authentik.base_url + "/api/v3"

        def post(path, body):
            resp = session.post(base + path, json=body, timeout=60)
            resp.raise_for_status()
            return resp.json()

        username = env.usernames[0]
        user_pk = env.authentik.user_by_username(username)["pk"]
        priority = 100
        rule_id = env.pangolin.add_rule(env.resource_id, "ACCEPT", "IP", "0.0.0.0", priority)
        headers = post("/propertymappings/notification/", {"name": "seed/headers",
                                                           "expression": headers_mapping_expression(env.webhook_key)})
        body = post("/propertymappings/notification/", {"name": "seed/body",
                                                        "expression": event_body_expression(priority)})
        transport = post("/events/transports/", {
            "name": "seed/transport", "mode": "webhook", "send_once": True,
            "webhook_url": rule_url(env.pangolin.base_url, env.resource_id, rule_id),
            "webhook_mapping_body": body["pk"], "webhook_mapping_headers": headers["pk"]})
        policy = post("/policies/expression/", {"name": "seed/login", "expression": login_policy_expression(user_pk)})
        rule = post("/events/rules/", {"name": "seed/login", "destination_event_user": True, "severity": "notice",
                                       "transports": [transport["pk"]]})
        post("/policies/bindings/", {"policy": policy["pk"], "target": rule["pk"], "order": 0})
        latencies, login = login_cells(env, profile, logins, seed, floor)
        label = "1 (seed chain%s)" % (", with the 3 default rules" if default_rules else ", its rule the only one")
        cells = ["-"] * 6 + [login["login"], "-", "-", login["handlers"], login["transports"], login["spread"],
                             login["ratio"] if floor else "1.00"]
        print("| %s | %s |" % (label, " | ".join(cells)), flush=True)
        return p95_of(latencies)


def drains(profile):
    """§17's two drains, replayed through the API with the profile's latencies and worker (no playbook):
    10 creates with 25 notification rules (250 tasks, 21.6 s), then 25 rule creates from none (300 tasks, 57 s).
    Each is timed from its first request until the worker is idle; the rules are those of the per-user layout
    the measurements were made with (each with an expression policy bound). No default rules: 250 = 10 x 25
    and 300 = 0 + 1 + ... + 24 count none."""
    import requests

    from tests.simulators.authentik import AuthentikSimulator

    options = dict(profile["authentik"], default_rules=False)
    print("| drain | tasks measured | tasks simulated | measured | simulated |")
    print("|---|---|---|---|---|")
    for label, rules, creates, tasks, seconds in (("10 creates with 25 rules (§17)", 25, "policies", 250, 21.6),
                                                  ("25 rule creates (§17)", 0, "rules", 300, 57.0)):
        with AuthentikSimulator(worker="background", **options) as sim:
            sim.add_token("bench-token")
            session = requests.Session()
            session.headers["Authorization"] = "Bearer bench-token"
            base = sim.base_url + "/api/v3"

            def post(path, body):
                resp = session.post(base + path, json=body, timeout=60)
                resp.raise_for_status()
                return resp.json()

            costs = dict(sim.task_costs)
            sim.task_costs.update(dict.fromkeys(costs, 0.0))  # the setup drains at no cost
            for n in range(rules):
                policy = post("/policies/expression/", {"name": "p%d" % n, "expression": "return False"})
                rule = post("/events/rules/", {"name": "r%d" % n, "destination_event_user": True})
                post("/policies/bindings/", {"policy": policy["pk"], "target": rule["pk"], "order": 0})
            sim.wait_idle(600)
            sim.task_costs.update(costs)
            sim.reset_counts()
            start = time.time()
            for n in range(creates == "policies" and 10 or 25):
                if creates == "policies":
                    post("/policies/expression/", {"name": "new%d" % n, "expression": "return False"})
                else:
                    post("/events/rules/", {"name": "new%d" % n, "destination_event_user": True})
            if not sim.wait_idle(1800):
                raise SystemExit("the worker did not drain")
            took = time.time() - start
            print("| %s | %d | %d | %.1f s | %.1f s |"
                  % (label, tasks, sim.enqueued["event_trigger_handler"], seconds, took), flush=True)


def profile_from(args):
    profile = copy.deepcopy(calibration.UNCALIBRATED if args.uncalibrated else calibration.CALIBRATED)
    if args.no_latency:
        for server in ("authentik", "pangolin"):
            for key in ("read_latency", "write_latency", "event_search_latency"):
                profile[server].pop(key, None)
        profile["login_seconds"] = 0.0
    if args.no_default_rules:
        profile["authentik"]["default_rules"] = False
    if args.default_rules:
        profile["authentik"]["default_rules"] = True
    if args.residual is not None and not args.no_latency:
        for server in ("authentik", "pangolin"):
            for key in ("read_latency", "write_latency", "event_search_latency"):
                if key in profile[server]:
                    profile[server][key] += args.residual - calibration.RESIDUAL
    if args.per_queued is not None:
        profile["authentik"]["task_cost_per_queued"] = args.per_queued
    if args.threads:
        profile["authentik"]["worker_threads"] = args.threads
    if args.processes:  # each process runs its own threads: processes x threads tasks side by side
        profile["authentik"]["worker_threads"] = args.processes * profile["authentik"]["worker_threads"]
    variant = profile.setdefault("variant", {})
    for item in args.cost:
        actor, value = item.split("=")
        if actor in ("own_transport", "other_transport"):
            variant[actor] = float(value)
            continue
        name = ("event_trigger_" + actor if actor in ("dispatch", "handler")
                else "notification_transport" if actor == "transport" else actor)
        profile["authentik"]["task_costs"][name] = float(value)
    if args.order:
        variant["order"] = args.order
    if args.users_per_rule:
        profile["users_per_rule"] = args.users_per_rule if args.users_per_rule == "balanced" \
            else int(args.users_per_rule)
    return profile


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", nargs="*", type=int)
    parser.add_argument("--table", action="store_true", help="print the columns of §18's table")
    parser.add_argument("--uncalibrated", action="store_true", help="the old profile: instant APIs, old costs")
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument("--no-default-rules", action="store_true")
    parser.add_argument("--default-rules", action="store_true")
    parser.add_argument("--no-dispatch-wait", action="store_true")
    parser.add_argument("--converge-only", action="store_true")
    parser.add_argument("--drains", action="store_true", help="replay §17's drains instead of the playbook runs")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--residual", type=float, help="seconds added to every request instead of the calibrated")
    parser.add_argument("--per-queued", type=float, help="task_cost_per_queued instead of the calibrated")
    parser.add_argument("--logins", type=int, default=20)
    parser.add_argument("--resources", type=int, default=1,
                        help="one whitelist over this many resources (a rule and a transport per user on each)")
    parser.add_argument("--cost", action="append", default=[],
                        help="dispatch|handler|transport|own_transport|other_transport=seconds")
    parser.add_argument("--processes", type=int, help="worker processes, each with the profile's (or --threads) "
                                                      "threads")
    parser.add_argument("--seed-chain", action="store_true",
                        help="with --table: first a row for the seed's manual chain of one user, then the ratio of "
                             "each row's p95 to its p95; alone: only that row (and the one with the 3 default rules)")
    parser.add_argument("--users-per-rule", help="users per notification rule (the inventory's), or 'balanced': "
                                                 "as many rules as 10 a rule makes, users spread evenly")
    parser.add_argument("--order", help="listed (default), shuffled or own-first: see vary_worker")
    parser.add_argument("--login-seed", type=int, default=7, help="seed of the timed logins' choice of users")
    args = parser.parse_args()
    chosen = profile_from(args)
    print("profile: %s" % chosen, flush=True)
    if args.drains:
        drains(chosen)
    elif args.table or args.seed_chain:
        floor = None
        if args.seed_chain:
            floor = seed_chain(chosen, args.logins, args.login_seed)
            if not args.table:
                seed_chain(chosen, args.logins, args.login_seed, default_rules=True, header=False, floor=floor)
        if args.table:
            table(args.sizes or [10, 25, 50, 100], chosen, not args.no_dispatch_wait, args.converge_only, args.logins,
                  args.resources, floor=floor, seed=args.login_seed, header=not args.seed_chain)
    else:
        main(args.sizes or [5, 25, 100], chosen, args.resources)
