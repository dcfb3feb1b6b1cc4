#!/usr/bin/env python3
"""Benchmark of playbooks/site.yml against the simulators (not a test).

    python -m tests.bench.bench 5 25 100

For each N: seeds N authentik users, then times a --check --diff run, a
converge from empty, a no-op rerun, and (after every user logged in once)
playbooks/doctor.yml and a playbooks/expire.yml that expires nobody, and counts module invocations and the
HTTP requests each simulator received, by method. The simulators answer in
well under a millisecond, so the times are Ansible's and the collection's
own; on real servers add about 20-35 ms per request.
"""

import sys
import time

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


def phase(env, label, **kwargs):
    env.pangolin.reset_log()
    env.authentik.reset_log()
    env.authentik.reset_counts()
    start = time.time()
    rc, parsed, out, err = env.run(**kwargs)
    elapsed = time.time() - start
    if rc != 0:
        raise SystemExit("%s failed:\n%s\n%s" % (label, out[-3000:], err[-2000:]))
    return dict(phase=label, seconds=elapsed, modules=module_invocations(parsed),
                changed=env.stats(parsed).get("changed"),
                pangolin=env.pangolin.requests_by_method(), authentik=env.authentik.requests_by_method(),
                writes=len(env.writes()), tasks=dict(env.authentik.enqueued))


def fmt(counts):
    return " ".join("%s=%d" % item for item in sorted(counts.items())) or "-"


def main(sizes):
    print("%5s  %-8s %8s %8s %8s %7s %8s %9s  %-28s %s" % (
        "users", "phase", "seconds", "modules", "changed", "writes", "handler", "transport", "pangolin requests",
        "authentik requests"))
    for size in sizes:
        with PlaybookEnv(users=size) as env:
            for label, kwargs in (("check", dict(check=True, diff=True)), ("converge", {}), ("no-op", {}),
                                  ("doctor", dict(playbook="doctor.yml")), ("expire", dict(playbook="expire.yml")),
                                  ("remove", dict(absent=True))):
                if kwargs.pop("absent", False):
                    kwargs["inventory"] = env.inventory(users=[{"username": u, "state": "absent"}
                                                               for u in env.usernames])
                if label == "doctor":
                    for index, username in enumerate(env.usernames):
                        env.authentik.login(username, "198.51.%d.%d" % (100 + index // 250, 1 + index % 250))
                row = phase(env, label, **kwargs)
                print("%5d  %-8s %8.2f %8d %8s %7d %8d %9d  %-28s %s" % (
                    size, row["phase"], row["seconds"], row["modules"], row["changed"], row["writes"],
                    row["tasks"]["event_trigger_handler"], row["tasks"]["notification_transport"],
                    fmt(row["pangolin"]), fmt(row["authentik"])), flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [5, 25, 100])
