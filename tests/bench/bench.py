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

The simulators answer in well under a millisecond, so the run times are
Ansible's and the collection's own; on real servers add 20-90 ms per request.
"""

import sys
import time

from tests.bench.layouts import COSTS
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
        env.wait_for(lambda: all(env.addresses_of(u)[:1] == [a] for u, a in wanted.items()), timeout=1800,
                     what="every login whitelisted")
        return dict(modules=0, changed="-")
    return measure(env, "logins", work)


def fmt(counts):
    return " ".join("%s=%d" % item for item in sorted(counts.items())) or "-"


def main(sizes):
    print("%5s  %-8s %8s %7s %8s %7s %8s %9s %9s  %-28s %s" % (
        "users", "phase", "seconds", "modules", "changed", "writes", "handler", "transport", "busy (s)",
        "pangolin requests", "authentik requests"))
    for size in sizes:
        with PlaybookEnv(users=size, task_costs=COSTS) as env:
            for row in (lambda: playbook(env, "check", check=True, diff=True),
                        lambda: playbook(env, "converge"),
                        lambda: playbook(env, "no-op"),
                        lambda: logins(env),
                        lambda: playbook(env, "doctor", playbook="doctor.yml"),
                        lambda: playbook(env, "expire", playbook="expire.yml"),
                        lambda: playbook(env, "remove", inventory=env.inventory(users=[
                            {"username": u, "state": "absent"} for u in env.usernames]))):
                row = row()
                print("%5d  %-8s %8.2f %7d %8s %7d %8d %9d %9.1f  %-28s %s" % (
                    size, row["phase"], row["seconds"], row["modules"], row["changed"], row["writes"],
                    row["tasks"]["event_trigger_handler"], row["tasks"]["notification_transport"], row["busy"],
                    fmt(row["pangolin"]), fmt(row["authentik"])), flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [5, 25, 100])
