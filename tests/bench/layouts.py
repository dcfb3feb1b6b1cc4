#!/usr/bin/env python3
"""How the notification layout loads authentik's worker (a measurement, not a test).

    python -m tests.bench.layouts 5 25 100

Builds three layouts of the login → webhook → Pangolin chain straight through
the simulators' APIs, for N users each:

* ``per-user``: one notification rule per user whose body is the event's client_ip
  (the layout of collection versions 0.1 and 0.2);
* ``one rule``: one rule for all users, every user's transport on it, bodies computed
  from authentik's state (the user's newest login), so a POST caused by another
  user's login rewrites the same value;
* ``groups of 10``: the same, with rules of up to 10 users each.

and reports, per layout: worker tasks for an event that is not a login (every
API write is one), tasks and Pangolin writes for one login, and the time from
a login to the rule holding its address, p50/p95 over logins of random users,
with a worker of 2 threads whose tasks cost what the real one was measured to
spend (dispatch 20 ms, handler 50 ms, transport 60 ms plus the POST).
"""

import random
import statistics
import sys
import time

import requests

from tests.simulators.authentik import AuthentikSimulator
from tests.simulators.pangolin import PangolinSimulator

TOKEN = "layout-bench-token"
COSTS = {"event_trigger_dispatch": 0.02, "event_trigger_handler": 0.05, "notification_transport": 0.06}
HEADERS = "return {'Authorization': 'Bearer %s'}"
EVENT_BODY = """event = request.context['notification'].event
return {'action': 'ACCEPT', 'match': 'IP', 'value': event.client_ip or '0.0.0.0', 'priority': %d, 'enabled': True}"""
STATE_BODY = """from authentik.events.models import Event
last = Event.objects.filter(action='login', user__pk=%d).order_by('-created').first()
return {'action': 'ACCEPT', 'match': 'IP', 'value': (last.client_ip if last else None) or '0.0.0.0',
        'priority': %d, 'enabled': True}"""
ONE_POLICY = "event = request.context.get('event')\nreturn event is not None and event.action == 'login' and " \
             "(event.user or {}).get('pk') == %d"
GROUP_POLICY = "event = request.context.get('event')\nreturn event is not None and event.action == 'login' and " \
               "(event.user or {}).get('pk') in %r"


class Api:
    def __init__(self, base):
        self.base = base + "/api/v3"
        self.session = requests.Session()
        self.session.headers["Authorization"] = "Bearer " + TOKEN

    def post(self, path, body):
        resp = self.session.post(self.base + path, json=body, timeout=30)
        resp.raise_for_status()
        return resp.json()


def build(layout, users, auth, pangolin, resource, key):
    """Create the layout's objects; returns {username: rule id}."""
    api = Api(auth.base_url)
    heads = api.post("/propertymappings/notification/", {"name": "heads", "expression": HEADERS % key})
    transports, rule_ids = {}, {}
    for index, (username, pk) in enumerate(users):
        rule_id = pangolin.add_rule(resource, "ACCEPT", "IP", "0.0.0.0", 100 + index)
        rule_ids[username] = rule_id
        expression = EVENT_BODY % (100 + index) if layout == "per-user" else STATE_BODY % (pk, 100 + index)
        body = api.post("/propertymappings/notification/", {"name": "body-" + username, "expression": expression})
        transports[username] = api.post("/events/transports/", {
            "name": "t-" + username, "mode": "webhook", "send_once": True,
            "webhook_url": "%s/v1/resource/%d/rule/%d" % (pangolin.base_url, resource, rule_id),
            "webhook_mapping_body": body["pk"], "webhook_mapping_headers": heads["pk"]})["pk"]
    size = {"per-user": 1, "one rule": len(users), "groups of 10": 10}[layout]
    for start in range(0, len(users), size):
        group = users[start:start + size]
        expression = ONE_POLICY % group[0][1] if size == 1 else GROUP_POLICY % (tuple(pk for _, pk in group),)
        policy = api.post("/policies/expression/", {"name": "p%d" % start, "expression": expression})
        rule = api.post("/events/rules/", {"name": "r%d" % start, "destination_event_user": True,
                                           "transports": [transports[u] for u, _ in group]})
        api.post("/policies/bindings/", {"policy": policy["pk"], "target": rule["pk"], "order": 0})
    return rule_ids


def measure(layout, count, logins):
    pangolin, auth = PangolinSimulator(), AuthentikSimulator(worker="background")
    pangolin.start()
    auth.start()
    try:
        key = pangolin.add_api_key(org_id="homelab", actions=["updateResourceRule"])
        resource = pangolin.add_resource("homelab", "Jellyfin", subdomain="jellyfin",
                                         full_domain="jellyfin.example.com")
        auth.add_token(TOKEN)
        users = [("u%03d" % i, auth.add_user("u%03d" % i)) for i in range(count)]
        auth.pause_worker()  # build without the worker, then let it drain
        rule_ids = build(layout, users, auth, pangolin, resource, key)
        auth.resume_worker()
        auth.wait_idle(600)
        auth.task_costs.update(COSTS)  # the build drains at no cost; what follows costs what it would
        auth.reset_counts()
        auth.create_event("model_updated", user="akadmin")
        auth.wait_idle(600)
        idle_event = dict(auth.enqueued)
        rng = random.Random(7)
        latencies, login_tasks, writes = [], [], []
        for n in range(logins):
            username, _ = rng.choice(users)
            address = "198.51.100.%d" % (n + 1)
            auth.reset_counts()
            pangolin.reset_log()
            start = time.monotonic()
            auth.login(username, address)
            while next(r for r in pangolin.rules(resource) if r["ruleId"] == rule_ids[username])["value"] != address:
                time.sleep(0.005)
            latencies.append(time.monotonic() - start)
            auth.wait_idle(600)
            login_tasks.append(auth.enqueued["event_trigger_handler"] + auth.enqueued["notification_transport"])
            writes.append(len(pangolin.writes()))
        latencies.sort()
        return dict(idle=idle_event["event_trigger_handler"], login_tasks=max(login_tasks), writes=max(writes),
                    p50=statistics.median(latencies), p95=latencies[max(0, int(len(latencies) * 0.95) - 1)])
    finally:
        auth.stop()
        pangolin.stop()


def main(sizes, logins=10):
    print("%5s  %-13s %14s %12s %15s %8s %8s" % ("users", "layout", "tasks/event", "tasks/login", "writes/login",
                                                 "p50 s", "p95 s"))
    for count in sizes:
        for layout in ("per-user", "one rule", "groups of 10"):
            row = measure(layout, count, logins)
            print("%5d  %-13s %14d %12d %15d %8.2f %8.2f" % (count, layout, row["idle"], row["login_tasks"],
                                                             row["writes"], row["p50"], row["p95"]), flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [5, 25, 100])
