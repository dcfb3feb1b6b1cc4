#!/usr/bin/env python3
"""What reading Pangolin's request log costs the doctor (not a test).

    python -m tests.bench.request_log 25 100

For each N: converges N users (calibrated profile, see tests/bench/calibration.py), logs each one in from
an address of their own, fills Pangolin's request log with a week of requests (``--rows`` per user and
resource, spread over the last 7 days), then times ``playbooks/doctor.yml`` three times:

* ``log off``: the org keeps no request log (retention 0), so the doctor reads nothing and says so;
* ``all used``: every address let something through; reading stops once each was seen;
* ``one idle``: one more user logged in from an address that let nothing through, so every page of the
  window is read (at most ``MAX_PAGES`` of ``PAGE`` rows per resource: the worst case).

It prints the doctor's seconds and how many pages of the log it read; the difference to ``log off`` is the
cost of the log. The simulator serves a page of 1000 rows at its read latency plus its own serialisation; a
real Pangolin on SQLite also scans its index for the page.
"""

import argparse
import time
from datetime import datetime, timedelta, timezone

from tests.bench import bench, calibration
from tests.playbook_env import wait_for

LOG_ROUTE = "/logs/request"
RETENTION = "settingsLogRetentionDaysRequest"


def address_of(index):
    return "198.51.%d.%d" % (100 + index // 250, 1 + index % 250)


def fill(env, addresses, rows):
    """A week of requests from each address on each resource, oldest first, as the gatekeeper logs them."""
    now = datetime.now(timezone.utc)
    step = timedelta(days=7) / max(rows, 1)
    for n in range(rows):
        when = now - timedelta(days=7) + step * (n + 1) - timedelta(minutes=1)
        for address in addresses:
            for resource_id in env.resource_ids:
                env.pangolin.request(resource_id, address, when=when)


def pages_read(env):
    return sum(1 for entry in env.pangolin.log if entry.method == "GET" and entry.path.endswith(LOG_ROUTE))


def doctor(env, label):
    row = bench.playbook(env, label, playbook="doctor.yml")
    row["pages"] = pages_read(env)
    return row


def main(sizes, rows, resources):
    print("%5s %9s  %-9s %8s %6s" % ("users", "log rows", "doctor", "seconds", "pages"))
    for size in sizes:
        with bench.open_env(size + 1, calibration.CALIBRATED, resources=resources) as env:
            idle_user = env.usernames[-1]
            members = env.usernames[:-1]
            env.bench_overrides["jellyfin_whitelist_users"] = [{"username": u} for u in members]
            bench.playbook(env, "converge")
            for index, username in enumerate(members):
                env.authentik.login(username, address_of(index))
            wait_for(lambda: all(bench.whitelisted(env, address_of(i)) for i in range(len(members))),
                     timeout=1800, what="every login whitelisted")
            fill(env, [address_of(i) for i in range(len(members))], rows)
            total = len(env.pangolin.request_audit)
            org = env.pangolin.orgs["homelab"]
            kept = org[RETENTION]
            org[RETENTION] = 0
            results = [doctor(env, "log off")]
            org[RETENTION] = kept
            results.append(doctor(env, "all used"))
            env.bench_overrides["jellyfin_whitelist_users"].append({"username": idle_user})
            bench.playbook(env, "converge")
            env.authentik.login(idle_user, "203.0.113.250")
            wait_for(lambda: bench.whitelisted(env, "203.0.113.250"), timeout=600, what="the idle user whitelisted")
            results.append(doctor(env, "one idle"))
            for row in results:
                print("%5d %9d  %-9s %8.2f %6d" % (size, total, row["phase"], row["seconds"], row["pages"]),
                      flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[25, 100])
    parser.add_argument("--rows", type=int, default=100, help="requests per user and resource in the week")
    parser.add_argument("--resources", type=int, default=1)
    args = parser.parse_args()
    started = time.time()
    main(args.sizes, args.rows, args.resources)
    print("(%.0f s)" % (time.time() - started))
