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
the address), e.g. ``--table --resources 3 25`` for the "25 users x 3 resources" row.

    python -m tests.bench.bench --drains

replays §17's two measured drains through the API with the profile's worker, next to the
measured times.
"""

import argparse
import copy
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
    # one whitelist over ``resources`` resources of the org: every user gets a rule and a transport on each,
    # the notification rules, policies and body mappings are shared
    env.resource_ids = [env.resource_id] + [
        env.pangolin.add_resource("homelab", "App %d" % n, subdomain="app%d" % n, full_domain="app%d.example.com" % n)
        for n in range(2, resources + 1)]
    env.bench_overrides = {} if resources == 1 else dict(
        jellyfin_whitelist_resources=[{"id": r} for r in env.resource_ids], jellyfin_whitelist_instance="bench")
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


def table(sizes, profile, dispatch_wait=True, converge_only=False, logins_per_size=20, resources=1):
    """The columns of §18's table, one row per size, plus what the converge queued."""
    print("| users | converge from empty | requests | worker busy after it | no-op rerun | check mode "
          "| remove everyone (one run) | login -> whitelisted median / p95 | converge tasks d/h/t "
          "| first rule POST at (dispatches / all tasks queued) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size in sizes:
        with open_env(size, profile, dispatch_wait, resources) as env:
            settle(env)
            env.converge_started = time.time()
            converge = playbook(env, "converge")
            first = env.rule_creates[0] if env.rule_creates else (float("nan"), 0, 0)
            cells = ["%.1f s" % converge["seconds"], "%d" % requests_of(converge), "%.0f s" % converge["busy"]]
            if converge_only:
                cells += ["-"] * 4
            else:
                noop = playbook(env, "no-op")
                cells.append("%.1f s, %d requests, %d writes" % (noop["seconds"], requests_of(noop), noop["writes"]))
                check = playbook(env, "check", check=True)
                cells.append("%.1f s" % check["seconds"])
                found = {}

                def work():
                    found["latencies"] = timed_logins(env, profile, logins_per_size)
                    return dict(modules=0, changed="-")

                measure(env, "logins", work)
                latencies = found["latencies"]
                p95 = latencies[max(0, -(-len(latencies) * 95 // 100) - 1)]
                remove = playbook(env, "remove", inventory=removal(env))
                cells.append("%.1f s" % remove["seconds"])
                cells.append("%.2f / %.2f s" % (statistics.median(latencies), p95))
            tasks = converge["tasks"]
            cells.append("%d/%d/%d" % (tasks["event_trigger_dispatch"], tasks["event_trigger_handler"],
                                       tasks["notification_transport"]))
            cells.append("%.1f s (%d / %d)" % first)
            label = "%d" % size if resources == 1 else "%d × %d resources" % (size, resources)
            print("| %s | %s |" % (label, " | ".join(cells)), flush=True)


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
            print("| %s | %d | %d | %.1f s | %.1f s |" % (label, tasks, sim.enqueued["event_trigger_handler"], seconds,
                                                        took), flush=True)


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
    for item in args.cost:
        actor, value = item.split("=")
        profile["authentik"]["task_costs"]["event_trigger_" + actor if actor in ("dispatch", "handler")
                                          else "notification_transport" if actor == "transport" else actor] = \
            float(value)
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
    parser.add_argument("--cost", action="append", default=[], help="dispatch|handler|transport=seconds")
    args = parser.parse_args()
    chosen = profile_from(args)
    print("profile: %s" % chosen, flush=True)
    if args.drains:
        drains(chosen)
    elif args.table:
        table(args.sizes or [10, 25, 50, 100], chosen, not args.no_dispatch_wait, args.converge_only, args.logins,
              args.resources)
    else:
        main(args.sizes or [5, 25, 100], chosen, args.resources)
