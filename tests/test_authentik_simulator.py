"""The authentik simulator: observed answers replayed, the notification pipeline end to end,
and the API quirks the modules must cope with."""

import json
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests

from tests.simulators.authentik import AuthentikSimulator
from tests.simulators.base import Response, SimulatorBase

ROOT = Path(__file__).resolve().parents[1]
OBSERVED = ROOT / "tests" / "contract" / "observed-authentik.json"  # see tests/contract/README.md
TOKEN = "test-token"

BODY_MAPPING = (
    "event = request.context['notification'].event\n"
    "ip = getattr(event, 'client_ip', None)\n"
    'return {"action": "ACCEPT", "match": "IP", "value": ip or "0.0.0.0", "priority": 100, "enabled": True}'
)
HEADERS_MAPPING = 'return {"Authorization": "Bearer pangolin-key", "Content-Type": "application/json"}'
POLICY = ('event = request.context.get("event")\n'
          'return event is not None and event.action == "login" and event.user.get("pk") == %d')


class Receiver(SimulatorBase):
    """Webhook target: records every request, answers the scripted statuses then 200."""

    def __init__(self):
        super().__init__()
        self.statuses = []
        self.received = []

    def handle(self, request):
        self.received.append(request)
        status = self.statuses.pop(0) if self.statuses else 200
        return Response(status, {"ok": status < 300})


class Api:
    def __init__(self, sim, token=TOKEN):
        self.sim, self.token = sim, token
        self.http = requests.Session()  # keep-alive: the suite stays fast

    def __call__(self, method, path, body=None, token=None, **params):
        headers = {"Authorization": "Bearer %s" % (token or self.token)}
        return self.http.request(method, self.sim.base_url + "/api/v3" + path, json=body, headers=headers,
                                 params=params, timeout=10)

    def ok(self, method, path, body=None, status=None, **params):
        resp = self(method, path, body, **params)
        assert resp.status_code == (status or {"POST": 201, "DELETE": 204}.get(method, 200)), resp.text
        return resp.json() if resp.content else None


@pytest.fixture
def sim():
    with AuthentikSimulator() as s:
        s.add_token(TOKEN)
        yield s


@pytest.fixture
def api(sim):
    client = Api(sim)
    yield client
    client.http.close()  # before the server stops: it waits for open keep-alive connections


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


# -- 1. replay of what a real 2026.5.0-rc1 server answered ---------------------------
def test_replay_observed_transcript():
    observed = json.loads(OBSERVED.read_text(encoding="utf-8"))
    with AuthentikSimulator(version=observed["server"].split()[-1]) as sim:
        sim.add_token(TOKEN)
        sim.add_user("alice", name="Alice")  # the users list must not be empty
        captured = {"nothing": str(uuid.uuid4())}
        for index, exchange in enumerate(observed["exchanges"]):
            request, seen = exchange["request"], exchange["expect"]
            headers = {"Authorization": "Bearer " + TOKEN}
            for key, value in request["headers"].items():
                headers[key] = "Bearer not-a-token" if value == "<not a token>" else value
            path = request["path"]
            for name, value in captured.items():
                path = path.replace("{%s}" % name, value)
            if request["query"]:
                path += "?" + urlencode(request["query"])
            resp = requests.request(request["method"], sim.base_url + path, headers=headers,
                                    data=json.dumps(request["body"]) if request["body"] is not None else None,
                                    timeout=10)
            where = "exchange %d %s %s" % (index, request["method"], path)
            assert resp.status_code == seen["status"], where
            try:
                body, is_json = resp.json(), True
            except ValueError:
                body, is_json = None, False
            assert is_json == seen["json"], where
            if not is_json:
                continue
            assert sorted(body) == sorted(seen["keys"]), where
            if "pagination_keys" in seen:
                assert sorted(body["pagination"]) == sorted(seen["pagination_keys"]), where
            if seen.get("result_keys") and body.get("results"):
                assert sorted(body["results"][0]) == sorted(seen["result_keys"]), where
            for name, keys in exchange.get("capture", {}).items():
                value = body
                for key in keys:
                    value = value[key]
                captured[name] = str(value)


# -- 2. the pipeline, end to end ----------------------------------------------------
def build_chain(api, receiver, user_pk, version_new=True):
    body = api.ok("POST", "/propertymappings/notification/", {"name": "body", "expression": BODY_MAPPING})
    heads = api.ok("POST", "/propertymappings/notification/", {"name": "heads", "expression": HEADERS_MAPPING})
    transport = {"name": "to-pangolin", "mode": "webhook", "webhook_url": receiver.base_url + "/v1/rule",
                 "send_once": True}
    if version_new:
        transport.update(webhook_mapping_body=body["pk"], webhook_mapping_headers=heads["pk"])
    else:
        transport.update(webhook_mapping=body["pk"])
    transport = api.ok("POST", "/events/transports/", transport)
    policy = api.ok("POST", "/policies/expression/", {"name": "login-of-user", "expression": POLICY % user_pk})
    return body, heads, transport, policy


def test_pipeline_end_to_end(sim, api, receiver):
    alice = sim.add_user("alice", email="alice@example.com", password="secret")
    sim.add_user("bob")
    body, _, transport, policy = build_chain(api, receiver, alice)
    rule = api.ok("POST", "/events/rules/", {"name": "alice-login", "transports": [transport["pk"]],
                                             "destination_event_user": True})
    api.ok("POST", "/policies/bindings/", {"policy": policy["pk"], "target": rule["pk"], "order": 0})
    assert receiver.received == []  # the writes' model_* events do not match the policy

    event = sim.login("alice", "203.0.113.7")
    assert event.action == "login" and event.user == {"pk": alice, "username": "alice",
                                                      "email": "alice@example.com"}
    assert len(receiver.received) == 1
    got = receiver.received[0]
    assert got.method == "POST" and got.path == "/v1/rule"
    assert got.json() == {"action": "ACCEPT", "match": "IP", "value": "203.0.113.7", "priority": 100,
                          "enabled": True}
    assert got.headers["authorization"] == "Bearer pangolin-key"
    assert got.headers["user-agent"] == "authentik@2026.5.0-rc1"
    assert got.headers["content-type"] == "application/json"
    assert sim.deliveries[-1]["status"] == 200 and sim.deliveries[-1]["rule"] == "alice-login"

    sim.login("bob", "198.51.100.1")
    assert sim.login("alice", "203.0.113.8", password="wrong").action == "login_failed"
    assert len(receiver.received) == 1

    receiver.statuses = [500, 500]
    sim.login("alice", "203.0.113.9")
    assert [d["attempt"] for d in sim.deliveries[-3:]] == [1, 2, 3]
    assert [d["status"] for d in sim.deliveries[-3:]] == [500, 500, 200]
    assert len(receiver.received) == 4

    api.ok("PATCH", "/propertymappings/notification/%s/" % body["pk"], {"expression": "return 1 / 0"})
    sim.login("alice", "203.0.113.10")
    assert len(receiver.received) == 4
    failures = sim.events_of("property_mapping_exception")
    # Dramatiq retries any exception: every attempt evaluates the mapping again and records it
    assert len(failures) == 1 + sim.max_retries and "ZeroDivisionError" in failures[0].context["message"]


def test_policy_exception_and_negate(sim, api, receiver):
    alice = sim.add_user("alice")
    _, _, transport, _ = build_chain(api, receiver, alice)
    rule = api.ok("POST", "/events/rules/", {"name": "r", "transports": [transport["pk"]],
                                             "destination_event_user": True})
    broken = api.ok("POST", "/policies/expression/", {"name": "broken", "expression": "return undefined_name"})
    api.ok("POST", "/policies/bindings/", {"policy": broken["pk"], "target": rule["pk"], "order": 0})
    before = len(sim.events_of("policy_exception"))  # the binding's own model_created event ran it too
    sim.login("alice", "203.0.113.7")
    assert receiver.received == []
    after = sim.events_of("policy_exception")
    assert len(after) == before + 1  # the loop guard keeps it from re-firing on its own event
    assert after[-1].user["username"] == "alice" and after[-1].context["policy_uuid"] == broken["pk"].replace("-", "")
    deny = api.ok("POST", "/policies/expression/", {"name": "deny", "expression": "return False"})
    api.ok("POST", "/policies/bindings/", {"policy": deny["pk"], "target": rule["pk"], "order": 1,
                                           "negate": True})
    before = len(receiver.received)  # that write's model_created event (by akadmin) already fired: real
    sim.login("alice", "203.0.113.9")
    assert [r.json()["value"] for r in receiver.received[before:]] == ["203.0.113.9"]


def test_no_bindings_or_recipients_send_nothing(sim, api, receiver):
    alice = sim.add_user("alice")
    _, _, transport, policy = build_chain(api, receiver, alice)
    rule = api.ok("POST", "/events/rules/", {"name": "r", "transports": [transport["pk"]]})
    sim.login("alice", "203.0.113.7")  # no binding
    api.ok("POST", "/policies/bindings/", {"policy": policy["pk"], "target": rule["pk"], "order": 0})
    sim.login("alice", "203.0.113.7")  # no recipient
    assert receiver.received == []


def test_group_recipients_and_send_once(sim, api, receiver):
    alice, bob = sim.add_user("alice", email="a@x"), sim.add_user("bob", email="b@x")
    group = sim.add_group("watchers")
    sim.groups[group]["users"] += [alice, bob]
    transport = api.ok("POST", "/events/transports/", {"name": "t", "mode": "webhook",
                                                       "webhook_url": receiver.base_url + "/hook"})
    policy = api.ok("POST", "/policies/event_matcher/", {"name": "logins", "action": "login"})
    rule = api.ok("POST", "/events/rules/", {"name": "r", "transports": [transport["pk"]],
                                             "destination_group": group, "severity": "alert"})
    api.ok("POST", "/policies/bindings/", {"policy": policy["pk"], "target": rule["pk"], "order": 0})
    sim.login("alice", "203.0.113.7")
    bodies = [r.json() for r in receiver.received]
    assert [b["user_username"] for b in bodies] == ["alice", "bob"]  # one POST per member
    assert bodies[0]["event_user_username"] == "alice" and bodies[0]["severity"] == "alert"
    api.ok("PATCH", "/events/transports/%s/" % transport["pk"], {"send_once": True})
    sim.login("bob", "203.0.113.7")
    assert len(receiver.received) == 3


def test_old_generation_field_names(receiver):
    with AuthentikSimulator(version="2025.2.4") as sim:
        sim.add_token(TOKEN)
        api = Api(sim)
        alice = sim.add_user("alice")
        body, _, transport, policy = build_chain(api, receiver, alice, version_new=False)
        assert transport["webhook_mapping"] == body["pk"] and "webhook_mapping_body" not in transport
        # the new generation's names are silently dropped by an old server (§15.1)
        dropped = api.ok("POST", "/events/transports/", {"name": "t2", "mode": "webhook", "webhook_url":
                                                         receiver.base_url, "webhook_mapping_body": body["pk"]})
        assert dropped["webhook_mapping"] is None
        group = api.ok("POST", "/core/groups/", {"name": "g", "users": [alice]})
        rule = api.ok("POST", "/events/rules/", {"name": "r", "transports": [transport["pk"]],
                                                 "group": group["pk"], "destination_event_user": True})
        assert rule["group"] == group["pk"] and rule["group_obj"]["name"] == "g"
        assert "destination_group" not in rule and "destination_event_user" not in rule
        other = api.ok("POST", "/events/rules/", {"name": "r2", "destination_group": group["pk"]})
        assert other["group"] is None
        api.ok("POST", "/policies/bindings/", {"policy": policy["pk"], "target": rule["pk"], "order": 0})
        assert api.ok("GET", "/core/users/")["pagination"]["count"] == 2  # page size 100, no autocomplete
        sim.login("alice", "203.0.113.7")
        assert len(receiver.received) == 1
        assert receiver.received[0].json()["value"] == "203.0.113.7"
        assert receiver.received[0].headers["user-agent"] == "authentik@2025.2.4"
        assert "authorization" not in receiver.received[0].headers


def test_new_server_drops_old_names(api, receiver):
    body = api.ok("POST", "/propertymappings/notification/", {"name": "b", "expression": "return {}"})
    group = api.ok("POST", "/core/groups/", {"name": "g"})
    transport = api.ok("POST", "/events/transports/", {"name": "t", "webhook_mapping": body["pk"]})
    assert transport["webhook_mapping_body"] is None and "webhook_mapping" not in transport
    assert transport["mode"] == "local"
    rule = api.ok("POST", "/events/rules/", {"name": "r", "group": group["pk"]})
    assert rule["destination_group"] is None and "group" not in rule


def test_async_pipeline_and_control_route(receiver):
    with AuthentikSimulator(worker="background") as sim:
        sim.add_token(TOKEN)
        api = Api(sim)
        alice = sim.add_user("alice")
        _, _, transport, policy = build_chain(api, receiver, alice)
        rule = api.ok("POST", "/events/rules/", {"name": "r", "transports": [transport["pk"]],
                                                 "destination_event_user": True})
        api.ok("POST", "/policies/bindings/", {"policy": policy["pk"], "target": rule["pk"], "order": 0})
        resp = requests.post(sim.base_url + "/_sim/login/", json={"username": "alice", "client_ip": "192.0.2.1"},
                             timeout=10)
        assert resp.status_code == 200 and resp.json()["event"] == "login"
        assert sim.wait_idle(5)
        assert [r.json()["value"] for r in receiver.received] == ["192.0.2.1"]


def bound_rule(api, receiver, user_pk):
    """build_chain plus a rule for the event user with the policy bound: alice's logins POST once each."""
    _, _, transport, policy = build_chain(api, receiver, user_pk)
    rule = api.ok("POST", "/events/rules/", {"name": "r", "transports": [transport["pk"]],
                                             "destination_event_user": True})
    api.ok("POST", "/policies/bindings/", {"policy": policy["pk"], "target": rule["pk"], "order": 0})
    return transport, rule


def tasks_of(api, **params):
    return api.ok("GET", "/tasks/tasks/", page_size=100, **params)["results"]


TRANSPORT_ACTOR = "authentik.events.tasks.notification_transport"


def test_tasks_record_the_pipeline(receiver):
    with AuthentikSimulator(max_retries=2, retry_backoff=0.01) as sim:
        sim.add_token(TOKEN)
        api = Api(sim)
        alice = sim.add_user("alice")
        transport, rule = bound_rule(api, receiver, alice)
        sim.login("alice", "203.0.113.7")
        [sent] = tasks_of(api, rel_obj_id=transport["pk"])
        assert sent["actor_name"] == TRANSPORT_ACTOR and sent["queue_name"] == "default"
        assert (sent["state"], sent["aggregated_status"], sent["retries"]) == ("done", "done", 0)
        assert (sent["rel_obj_app_label"], sent["rel_obj_model"]) == ("authentik_events", "notificationtransport")
        assert [log["event"] for log in sent["logs"]] == ["Task has been queued", "Task is being processed",
                                                          "Task finished processing without errors"]
        assert api.ok("GET", "/tasks/tasks/%s/" % sent["message_id"]) == sent
        handler = tasks_of(api, rel_obj_id=rule["pk"], actor_name="authentik.events.tasks.event_trigger_handler")
        assert "Created 1 notification tasks" in [log["event"] for log in handler[0]["logs"]]  # newest first
        dispatch = tasks_of(api, actor_name="authentik.events.tasks.event_trigger_dispatch")
        assert len(dispatch) == len(sim.events) == len(tasks_of(api, rel_obj_id__isnull="true"))
        assert "rel_obj_app_label" not in dispatch[0] and dispatch[0]["rel_obj_id"] is None

        receiver.statuses = [404, 404, 404]  # every attempt refused: 1 + max_retries POSTs
        sim.login("alice", "203.0.113.8")
        failed = tasks_of(api, rel_obj_id=transport["pk"], state="rejected")
        assert len(failed) == 1 and len(receiver.received) == 4
        failed = failed[0]
        assert (failed["aggregated_status"], failed["retries"]) == ("rejected", 2)
        error = failed["logs"][-1]
        assert error["log_level"] == "error"
        assert error["event"] == '{"ok": false}'  # NotificationTransportError(response.text)
        assert "404 Client Error" in error["attributes"]["exception"][1]["exc_value"]  # the chained cause
        assert failed["logs"][0]["event"] == "Task will be retried" and failed["previous_logs"]
        # a failed delivery is rejected, not "error": the aggregated_status filter for error misses it
        assert tasks_of(api, aggregated_status="error") == []
        assert len(tasks_of(api, aggregated_status=["rejected", "error"])) == 1
        status = api.ok("GET", "/tasks/tasks/status/")
        assert status["rejected"] == 1 and status["queued"] == status["error"] == 0
        assert status["done"] == api.ok("GET", "/tasks/tasks/", state="done")["pagination"]["count"]

        api.ok("PATCH", "/propertymappings/notification/%s/" % transport["webhook_mapping_body"],
               {"expression": "return 1 / 0"})
        sim.login("alice", "203.0.113.9")
        broken = tasks_of(api, rel_obj_id=transport["pk"])[0]
        # retried like any exception, one property_mapping_exception event per attempt, nothing sent
        assert (broken["state"], broken["aggregated_status"], broken["retries"]) == ("rejected", "rejected", 2)
        assert broken["logs"][-1]["event"] == ""  # str(PropertyMappingExpressionException)
        assert broken["logs"][-1]["attributes"]["exception"][1]["exc_type"] == "ZeroDivisionError"
        assert len(sim.events_of("property_mapping_exception")) == 3 and len(receiver.received) == 4

        assert api("GET", "/tasks/tasks/not-a-uuid/").json() == {"detail": "No Task matches the given query."}
        assert api("GET", "/tasks/tasks/", state="bogus").status_code == 400
        api.ok("DELETE", "/events/transports/%s/" % transport["pk"])
        assert tasks_of(api, rel_obj_id=transport["pk"]) == []  # the rows go with their object


def test_celery_retries_a_failed_delivery_but_not_a_mapping_exception(receiver):
    with AuthentikSimulator(version="2025.6.3") as sim:
        sim.add_token(TOKEN)
        api = Api(sim)
        alice = sim.add_user("alice")
        body, _, transport, policy = build_chain(api, receiver, alice)
        group = api.ok("POST", "/core/groups/", {"name": "g", "users": [alice]})  # "group" before 2025.8
        rule = api.ok("POST", "/events/rules/", {"name": "alice-login", "transports": [transport["pk"]],
                                                 "group": group["pk"]})
        api.ok("POST", "/policies/bindings/", {"policy": policy["pk"], "target": rule["pk"], "order": 0})
        receiver.statuses = [500]
        sim.login("alice", "203.0.113.7")
        assert [d["status"] for d in sim.deliveries] == [500, 200]  # autoretry_for NotificationTransportError
        api.ok("PATCH", "/propertymappings/notification/%s/" % body["pk"], {"expression": "return 1 / 0"})
        sim.login("alice", "203.0.113.8")
        assert len(sim.events_of("property_mapping_exception")) == 1 and len(receiver.received) == 2  # not sent


def test_tasks_api_absent_before_dramatiq():
    with AuthentikSimulator(version="2025.6.3") as sim:
        sim.add_token(TOKEN)
        api = Api(sim)
        sim.create_event("login", user="akadmin")
        for path in ("/tasks/tasks/", "/tasks/tasks/status/", "/tasks/workers/"):
            resp = api("GET", path)
            assert resp.status_code == 404 and "text/html" in resp.headers["content-type"]
        assert sim.tasks == {}


def test_workers_lists_the_processes_that_checked_in(sim, api):
    """``WorkerView``: a plain list of the worker processes seen within 45 s, for a token that may view system
    info; a stopped worker is in no row."""
    assert api.ok("GET", "/tasks/workers/") == [
        {"worker_id": "1@authentik-worker", "version": sim.version, "version_matching": True}]
    sim.worker_processes, sim.worker_version = 2, "2026.2.2"
    rows = api.ok("GET", "/tasks/workers/")
    assert [r["worker_id"] for r in rows] == ["1@authentik-worker", "2@authentik-worker"]
    assert all(r["version"] == "2026.2.2" and r["version_matching"] is False for r in rows)
    sim.worker_down()
    assert api.ok("GET", "/tasks/workers/") == []
    sim.worker_up()
    assert len(api.ok("GET", "/tasks/workers/")) == 2
    assert api("POST", "/tasks/workers/").status_code == 405
    sim.add_token("plain-user-token", superuser=False)
    assert api("GET", "/tasks/workers/", token="plain-user-token").status_code == 403
    assert api("GET", "/tasks/workers").status_code == 404  # APPEND_SLASH = False


def test_workers_is_routed_without_the_slash_before_2026_5():
    """2026.2's API schema has ``/tasks/workers``, the one path without a trailing slash; 2026.5's adds it."""
    with AuthentikSimulator(version="2026.2.2") as sim:
        sim.add_token(TOKEN)
        api = Api(sim)
        assert [r["worker_id"] for r in api.ok("GET", "/tasks/workers")] == ["1@authentik-worker"]
        resp = api("GET", "/tasks/workers/")
        assert resp.status_code == 404 and "text/html" in resp.headers["content-type"]


def test_events_filters_and_ordering(sim, api):
    sim.add_user("alice", password="pw")
    sim.add_user("bob", password="pw")
    sim.login("alice", "203.0.113.1")
    sim.login("alice", "203.0.113.2", password="wrong")
    sim.login("bob", "198.51.100.1")
    group = api.ok("POST", "/core/groups/", {"name": "g"})

    def actions(**params):
        return [e["action"] for e in api.ok("GET", "/events/events/", **params)["results"]]

    assert actions(action="login") == ["login", "login_failed", "login"]  # icontains, newest first
    assert actions(action="LOGIN_F") == ["login_failed"]
    assert actions(actions=["login", "model_created"]) == ["model_created", "login", "login"]
    assert api("GET", "/events/events/", actions="nope").json() == {
        "actions": ["Select a valid choice. nope is not one of the available choices."]}
    # username matches event.user and (2026.2+) context.username: alice's failed login comes back too
    assert actions(username="alice") == ["login_failed", "login"]
    assert actions(client_ip="198.51.100.1") == ["login"]
    found = api.ok("GET", "/events/events/", context_model_pk=group["pk"], context_model_app="authentik_core",
                   context_model_name="group")["results"]
    assert [e["action"] for e in found] == ["model_created"]
    assert sorted(found[0]) == ["action", "app", "brand", "client_ip", "context", "created", "expires", "pk",
                                "user"]
    newest_first = [e["pk"] for e in api.ok("GET", "/events/events/")["results"]]
    assert [e["pk"] for e in api.ok("GET", "/events/events/", ordering="created")["results"]] == newest_first[::-1]
    assert [e["pk"] for e in api.ok("GET", "/events/events/", ordering="-created")["results"]] == newest_first
    assert [e["pk"] for e in api.ok("GET", "/events/events/", ordering="nope", flavour="x")["results"]] == \
        newest_first  # unknown ordering fields and parameters are ignored


def test_paused_worker_shows_the_backlog(receiver):
    with AuthentikSimulator(worker="background") as sim:
        sim.add_token(TOKEN)
        api = Api(sim)
        alice = sim.add_user("alice")
        bound_rule(api, receiver, alice)
        assert sim.wait_idle(5)
        control = sim.base_url + "/_sim/worker/"
        assert requests.post(control, json={"paused": "yes"}, timeout=10).status_code == 400
        assert requests.post(control, json={"paused": True}, timeout=10).json() == {"paused": True, "held": 0,
                                                                                      "queued": 0}
        for ip in ("192.0.2.1", "192.0.2.2"):
            sim.login("alice", ip)
        assert sim.wait_idle(1)  # held messages do not count as work in flight
        queued = tasks_of(api, state="queued")  # per event: its dispatch, not yet run
        assert sorted(t["actor_name"].rsplit(".", 1)[1] for t in queued) == ["event_trigger_dispatch"] * 2
        assert api.ok("GET", "/tasks/tasks/status/")["queued"] == 2 and receiver.received == []
        assert requests.get(control, timeout=10).json() == {"paused": True, "held": 2, "queued": 2}
        sim.resume_worker()
        assert sim.wait_idle(5)
        assert api.ok("GET", "/tasks/tasks/status/")["queued"] == 0
        assert sorted(r.json()["value"] for r in receiver.received) == ["192.0.2.1", "192.0.2.2"]
        assert len(tasks_of(api, actor_name=TRANSPORT_ACTOR, state="done")) == 2
        # a worker that runs dispatches but not handlers: the backlog a busy worker shows (§16)
        sim.pause_worker(["event_trigger_handler", "notification_transport"])
        sim.login("alice", "192.0.2.3")
        assert sim.wait_idle(5)
        queued = tasks_of(api, state="queued")
        assert [t["actor_name"].rsplit(".", 1)[1] for t in queued] == ["event_trigger_handler"]
        assert requests.post(control, json={"paused": False}, timeout=10).json()["paused"] is False
        assert sim.wait_idle(5) and len(receiver.received) == 3


def test_transport_test_action(api, receiver):
    transport = api.ok("POST", "/events/transports/", {"name": "t", "mode": "webhook",
                                                       "webhook_url": receiver.base_url + "/x"})
    resp = api("POST", "/events/transports/%s/test/" % transport["pk"])
    assert resp.status_code == 200 and resp.json()["messages"][0] == "200"
    assert receiver.received[0].json()["body"] == "Test Notification"
    receiver.statuses = [404]
    resp = api("POST", "/events/transports/%s/test/" % transport["pk"])
    assert resp.status_code == 500 and isinstance(resp.json(), str)


# -- 3. API behaviours ----------------------------------------------------------------
def test_trailing_slash_and_auth(sim, api):
    resp = api("GET", "/core/users")
    assert resp.status_code == 404 and "text/html" in resp.headers["content-type"]
    assert api("GET", "/core/users/", token="wrong").json() == {"detail": "Token invalid/expired"}
    resp = requests.get(sim.base_url + "/api/v3/core/users/", timeout=10)
    assert resp.status_code == 403
    assert resp.json() == {"detail": "Authentication credentials were not provided."}
    sim.add_token("reader", superuser=False)
    resp = api("POST", "/core/groups/", {"name": "x"}, token="reader")
    assert resp.status_code == 403
    assert resp.json() == {"detail": "You do not have permission to perform this action."}
    assert api.ok("GET", "/admin/version/")["version_current"] == "2026.5.0-rc1"


def test_pagination(sim, api):
    for i in range(25):
        sim.add_user("user%02d" % i)
    first = api.ok("GET", "/core/users/")
    assert first["pagination"] == {"next": 2, "previous": 0, "count": 26, "current": 1, "total_pages": 2,
                                   "start_index": 1, "end_index": 20}
    assert first["autocomplete"] == {} and first["results"][0]["username"] == "akadmin"
    page = api.ok("GET", "/core/users/", page=3, page_size=10)
    assert page["pagination"]["next"] == 0 and page["pagination"]["previous"] == 2
    assert [u["username"] for u in page["results"]] == ["user19", "user20", "user21", "user22",
                                                        "user23", "user24"]
    assert len(api.ok("GET", "/core/users/", page_size=500)["results"]) == 26  # capped at 100
    assert api("GET", "/core/users/", page=9).status_code == 404


def test_filters_exact_and_unknown_ignored(api):
    for name in ("alpha", "Alpha", "beta"):
        api.ok("POST", "/propertymappings/notification/", {"name": name, "expression": "return {}"})
    assert [m["name"] for m in api.ok("GET", "/propertymappings/notification/", name="alpha")["results"]] == ["alpha"]
    assert api.ok("GET", "/propertymappings/notification/", name__iexact="alpha")["pagination"]["count"] == 3
    assert api.ok("GET", "/propertymappings/notification/", search="ALP")["pagination"]["count"] == 2


def test_cross_type_name_uniqueness(sim, api):
    sim.add_other_property_mapping("taken")
    assert api.ok("GET", "/propertymappings/notification/", name="taken")["results"] == []
    resp = api("POST", "/propertymappings/notification/", {"name": "taken", "expression": "return {}"})
    assert resp.status_code == 400
    assert resp.json() == {"name": ["property mapping with this name already exists."]}
    assert api.ok("GET", "/propertymappings/all/", name="taken")["pagination"]["count"] == 1
    sim.add_other_policy("pol")
    resp = api("POST", "/policies/expression/", {"name": "pol", "expression": "return True"})
    assert resp.status_code == 400 and list(resp.json()) == ["name"]
    api.ok("POST", "/policies/event_matcher/", {"name": "matcher", "action": "login"})
    assert api("POST", "/policies/expression/", {"name": "matcher", "expression": "return 1"}).status_code == 400
    assert api.ok("GET", "/policies/all/", search="pol")["pagination"]["count"] == 1


# -- client_ip from the TCP peer and X-Forwarded-For (§12, §17, §19) -------------------------------
@pytest.mark.parametrize("peer, forwarded_for, recorded", [
    ("127.0.0.1", "203.0.113.7", "203.0.113.7"),  # a trusted proxy: the header's first entry
    ("10.1.2.3", "198.51.100.5, 10.1.2.3", "198.51.100.5"),
    ("172.18.0.1", "203.0.113.8,192.168.1.1", "203.0.113.8"),
    ("::1", "2001:db8::7, 10.0.0.1", "2001:db8::7"),
    ("fe80::1", "203.0.113.9", "203.0.113.9"),
    ("127.0.0.1", "::ffff:203.0.113.62", "::ffff:203.0.113.62"),  # IPv4-mapped: stored as it came
    ("192.168.1.50", "2001:db8:0:0:0:0:0:1", "2001:db8::1"),  # ip_address()'s canonical spelling
    ("127.0.0.1", "unknown", "255.255.255.255"),  # no address: ClientIPMiddleware's default
    ("198.51.100.9", "203.0.113.7", "198.51.100.9"),  # an untrusted peer: its own address
    ("fd00::5", "203.0.113.7", "fd00::5"),  # a ULA proxy is not in the default list
    ("::ffff:198.51.100.9", "203.0.113.7", "::ffff:198.51.100.9"),
    ("::ffff:127.0.0.1", "203.0.113.7", "203.0.113.7"),  # IPv4-mapped loopback: trusted, as Go has it
    ("127.0.0.1", None, "127.0.0.1"),  # no header: the peer
    ("198.51.100.9", None, "198.51.100.9"),
    ("2001:db8::9", None, "2001:db8::9"),
])
def test_login_client_ip_from_peer_and_forwarded_for(sim, peer, forwarded_for, recorded):
    sim.add_user("alice", password="pw")
    event = sim.login("alice", peer=peer, forwarded_for=forwarded_for, password="pw")
    assert event.action == "login" and event.client_ip == recorded
    assert sim.sessions_of("alice")[0]["last_ip"] == recorded
    failed = sim.login("alice", peer=peer, forwarded_for=forwarded_for, password="wrong")
    assert failed.action == "login_failed" and failed.client_ip == recorded


def test_from_2026_8_a_trusted_proxy_gives_the_right_most_entry():
    """2026.8's Rust front server takes the right-most X-Forwarded-For entry of a trusted peer (the address the
    proxy itself saw), where 2026.5's Django took the left-most (the client's to choose when a proxy appends)."""
    for version, recorded in (("2026.5.0", "198.51.100.5"), ("2026.8.2", "10.1.2.3")):
        with AuthentikSimulator(version=version) as sim:
            sim.add_user("alice")
            assert sim.login("alice", peer="10.9.9.9", forwarded_for="198.51.100.5, 10.1.2.3").client_ip == recorded
            assert sim.login("alice", peer="203.0.113.1", forwarded_for="198.51.100.5").client_ip == "203.0.113.1"


def test_trusted_proxy_cidrs_setting(sim):
    with AuthentikSimulator(trusted_proxy_cidrs=["198.51.100.0/24", "not a cidr"]) as custom:
        custom.add_user("alice")
        assert custom.login("alice", peer="198.51.100.9", forwarded_for="203.0.113.7").client_ip == "203.0.113.7"
        # loopback is no longer trusted: the proxy's own address is every login's client_ip (§12)
        assert custom.login("alice", peer="127.0.0.1", forwarded_for="203.0.113.7").client_ip == "127.0.0.1"
    sim.add_user("bob")
    sim.trusted_proxy_cidrs = "0.0.0.0/0, ::/0"  # the Django app reached directly believes every header
    assert sim.login("bob", peer="203.0.113.200", forwarded_for="192.0.2.4").client_ip == "192.0.2.4"


def test_login_client_ip_shortcut_and_arguments(sim):
    sim.add_user("alice")
    assert sim.login("alice", "192.0.2.77").client_ip == "192.0.2.77"  # what authentik recorded, as given
    assert sim.login("alice", client_ip="::ffff:192.0.2.78").client_ip == "::ffff:192.0.2.78"
    with pytest.raises(TypeError):
        sim.login("alice")
    with pytest.raises(TypeError):
        sim.login("alice", "192.0.2.77", peer="127.0.0.1")
    with pytest.raises(TypeError):
        sim.login("alice", "192.0.2.77", forwarded_for="203.0.113.7")
    with pytest.raises(ValueError):
        sim.login("alice", peer="not-an-address")
    assert [e.client_ip for e in sim.events_of("login")] == ["192.0.2.77", "::ffff:192.0.2.78"]


def test_sim_login_route_with_peer_and_forwarded_for(sim):
    sim.add_user("alice")
    url = sim.base_url + "/_sim/login/"
    resp = requests.post(url, json={"username": "alice", "peer": "127.0.0.1",
                                    "x_forwarded_for": "203.0.113.5, 127.0.0.1"}, timeout=10)
    assert resp.status_code == 200 and resp.json()["client_ip"] == "203.0.113.5"
    resp = requests.post(url, json={"username": "alice", "peer": "198.51.100.9", "x_forwarded_for": "203.0.113.5"},
                         timeout=10)
    assert resp.json()["client_ip"] == "198.51.100.9"
    resp = requests.post(url, json={"username": "alice", "peer": "::1"}, timeout=10)
    assert resp.json()["client_ip"] == "::1"
    resp = requests.post(url, json={"username": "alice", "client_ip": "192.0.2.9"}, timeout=10)
    assert resp.json()["client_ip"] == "192.0.2.9"
    assert [e.client_ip for e in sim.events_of("login")] == ["203.0.113.5", "198.51.100.9", "::1", "192.0.2.9"]
    for body in ({"username": "alice"}, {"username": "alice", "x_forwarded_for": "203.0.113.5"},
                 {"username": "alice", "client_ip": "192.0.2.9", "peer": "127.0.0.1"},
                 {"username": "alice", "peer": "nope"},
                 {"username": "alice", "peer": "127.0.0.1", "x_forwarded_for": ["203.0.113.5"]}):
        assert requests.post(url, json=body, timeout=10).status_code == 400, body
    assert len(sim.events_of("login")) == 4


def test_audit_events_record_the_request_address(sim, api):
    """The API's own requests go through the same rule: the test client's peer is loopback, trusted."""
    group = api.ok("POST", "/core/groups/", {"name": "g"})
    assert sim.events[-1].client_ip == "127.0.0.1"
    api.http.headers["X-Forwarded-For"] = "203.0.113.30, 10.0.0.2"
    api.ok("PATCH", "/core/groups/%s/" % group["pk"], {"attributes": {}})
    assert sim.events[-1].action == "model_updated" and sim.events[-1].client_ip == "203.0.113.30"
    sim.trusted_proxy_cidrs = ["10.0.0.0/8"]
    api.ok("PATCH", "/core/groups/%s/" % group["pk"], {"attributes": {}})
    assert sim.events[-1].client_ip == "127.0.0.1"


def test_put_wipes_groups_patch_keeps(sim, api):
    group = api.ok("POST", "/core/groups/", {"name": "jellyfin"})
    user = api.ok("POST", "/core/users/", {"username": "carol", "name": "Carol", "groups": [group["pk"]]})
    assert user["groups"] == [group["pk"]] and isinstance(user["pk"], int)
    patched = api.ok("PATCH", "/core/users/%d/" % user["pk"], {"name": "Caroline"})
    assert patched["groups"] == [group["pk"]]
    put = api.ok("PUT", "/core/users/%d/" % user["pk"], {"username": "carol", "name": "Carol"})
    assert put["groups"] == []
    assert api("POST", "/core/groups/%s/add_user/" % group["pk"], {"pk": user["pk"]}).status_code == 204
    assert api.ok("GET", "/core/groups/%s/" % group["pk"])["users"] == [user["pk"]]
    assert api("POST", "/core/groups/%s/add_user/" % group["pk"], {"pk": 999}).json() == {"detail": "Not found."}
    assert api.ok("PUT", "/core/groups/%s/" % group["pk"], {"name": "jellyfin"})["users"] == []
    resp = api("POST", "/core/users/%d/set_password/" % user["pk"], {"password": ""})
    assert resp.status_code == 400 and resp.content == b""
    assert api("POST", "/core/users/%d/set_password/" % user["pk"], {"password": "pw"}).status_code == 204
    assert api.ok("GET", "/core/users/", username="car")["results"] == []
    resp = api("POST", "/core/users/", {"username": "carol", "name": ""})
    assert resp.json() == {"username": ["A user with that username already exists."]}


# -- group membership changes are announced (AuditMiddleware's m2m_changed handler, §19) ----------
def audit_events(sim, since):
    """(action, context.model) of the events written since index ``since``."""
    return [(e.action, e.context.get("model")) for e in sim.events[since:]]


def group_model(group):
    return {"app": "authentik_core", "model_name": "group", "pk": uuid.UUID(group["pk"]).hex, "name": group["name"]}


def test_add_user_and_remove_user_announce_the_group(sim, api):
    alice = sim.add_user("alice", name="Alice")
    group = api.ok("POST", "/core/groups/", {"name": "family"})
    before = len(sim.events)
    api.ok("POST", "/core/groups/%s/add_user/" % group["pk"], {"pk": alice}, status=204)
    assert audit_events(sim, before) == [("model_updated", group_model(group))]
    event = sim.events[-1]
    assert event.user["username"] == "akadmin" and event.client_ip == "127.0.0.1"
    assert event.app == "authentik.events.middleware"
    assert event.context["http_request"]["path"] == "/api/v3/core/groups/%s/add_user/" % group["pk"]
    assert "diff" not in event.context  # who was added: only the licensed enterprise audit says
    before = len(sim.events)
    api.ok("POST", "/core/groups/%s/remove_user/" % group["pk"], {"pk": alice}, status=204)
    assert audit_events(sim, before) == [("model_updated", group_model(group))]
    assert api.ok("GET", "/core/groups/%s/" % group["pk"])["users"] == []
    found = api.ok("GET", "/events/events/", action="model_updated", context_model_pk=group["pk"])["results"]
    assert len(found) == 2 and all(e["context"]["model"] == group_model(group) for e in found)
    # a request the server refuses changes nothing and announces nothing
    before = len(sim.events)
    assert api("POST", "/core/groups/%s/add_user/" % group["pk"], {"pk": 999}).status_code == 404
    assert sim.events[before:] == []


def test_membership_no_ops_announce_as_django_signals(sim, api):
    """add() sends pre_add even when the user is a member already, remove() sends pre_remove even when
    the user is not one: each writes its event all the same."""
    alice = sim.add_user("alice")
    group = api.ok("POST", "/core/groups/", {"name": "family", "users": [alice]})
    before = len(sim.events)
    api.ok("POST", "/core/groups/%s/add_user/" % group["pk"], {"pk": alice}, status=204)
    api.ok("POST", "/core/groups/%s/remove_user/" % group["pk"], {"pk": alice}, status=204)
    api.ok("POST", "/core/groups/%s/remove_user/" % group["pk"], {"pk": alice}, status=204)
    assert audit_events(sim, before) == [("model_updated", group_model(group))] * 3


def test_group_write_of_users_announces_each_set_step(sim, api):
    alice, bob, carol = (sim.add_user(name) for name in ("alice", "bob", "carol"))
    before = len(sim.events)
    group = api.ok("POST", "/core/groups/", {"name": "family", "users": [alice]})
    # the create, then set() adding alice
    assert audit_events(sim, before) == [("model_created", group_model(group)), ("model_updated", group_model(group))]
    path = "/core/groups/%s/" % group["pk"]
    steps = [({"users": [alice, bob]}, 2),  # the save, then the addition
             ({"users": [bob, alice]}, 1),  # same set: the save only
             ({"attributes": {"k": "v"}}, 1),  # PATCH without users leaves them alone
             ({"users": [bob]}, 2),  # the save, then the removal
             ({"users": [carol]}, 3)]  # the save, the removal, the addition
    for body, count in steps:
        before = len(sim.events)
        api.ok("PATCH", path, body)
        assert audit_events(sim, before) == [("model_updated", group_model(group))] * count, body
    before = len(sim.events)
    assert api.ok("PUT", path, {"name": "family"})["users"] == []  # default=list: set([]) removes carol
    assert audit_events(sim, before) == [("model_updated", group_model(group))] * 2
    before = len(sim.events)
    api.ok("PUT", path, {"name": "family"})  # nothing left to remove
    assert audit_events(sim, before) == [("model_updated", group_model(group))]


def test_user_write_of_groups_announces_the_user(sim, api):
    family = api.ok("POST", "/core/groups/", {"name": "family"})
    friends = api.ok("POST", "/core/groups/", {"name": "friends"})
    alice = sim.add_user("alice", name="Alice")
    model = {"app": "authentik_core", "model_name": "user", "pk": alice, "name": "Alice"}
    path = "/core/users/%d/" % alice
    before = len(sim.events)
    api.ok("PATCH", path, {"groups": [family["pk"]]})
    assert audit_events(sim, before) == [("model_updated", model)] * 2  # the save, then the addition
    before = len(sim.events)
    api.ok("PATCH", path, {"groups": [family["pk"]]})
    assert audit_events(sim, before) == [("model_updated", model)]  # unchanged: the save only
    before = len(sim.events)
    api.ok("PATCH", path, {"groups": [friends["pk"]]})
    assert audit_events(sim, before) == [("model_updated", model)] * 3  # save, removal, addition
    assert api.ok("GET", "/core/groups/%s/" % friends["pk"])["users"] == [alice]
    # the group whose members changed is not announced: the change was made on the user
    assert all(m["model_name"] == "user" for _, m in audit_events(sim, before))
    # context.model.name is model_to_dict's: the user's display name, even a blank one
    bob = api.ok("POST", "/core/users/", {"username": "bob", "name": "", "groups": [family["pk"]]})
    assert audit_events(sim, -2) == [
        ("model_created", {"app": "authentik_core", "model_name": "user", "pk": bob["pk"], "name": ""}),
        ("model_updated", {"app": "authentik_core", "model_name": "user", "pk": bob["pk"], "name": ""})]


def test_membership_events_run_the_pipeline(sim, api):
    """A rule matching group updates fires for a membership change like for any event."""
    admins = next(g for g in sim.groups.values() if g["name"] == "authentik Admins")
    transport = api.ok("POST", "/events/transports/", {"name": "local", "mode": "local"})
    rule = api.ok("POST", "/events/rules/", {"name": "r", "transports": [transport["pk"]],
                                             "destination_group": admins["pk"]})
    matcher = api.ok("POST", "/policies/event_matcher/", {"name": "m", "action": "model_updated",
                                                          "model": "authentik_core.group"})
    api.ok("POST", "/policies/bindings/", {"policy": matcher["pk"], "target": rule["pk"], "order": 0})
    alice = sim.add_user("alice")
    group = api.ok("POST", "/core/groups/", {"name": "family"})
    assert sim.notifications == []
    api.ok("POST", "/core/groups/%s/add_user/" % group["pk"], {"pk": alice}, status=204)
    assert [(n["rule"], n["event"].action, n["event"].context["model"]["pk"]) for n in sim.notifications] == [
        ("r", "model_updated", uuid.UUID(group["pk"]).hex)]


def test_seeding_membership_writes_no_event(sim):
    assert sim.events == []  # akadmin joined "authentik Admins" at reset without one
    family = sim.add_group("family")
    alice = sim.add_user("alice", groups=[family])
    sim.add_group("friends", users=[alice])
    assert sim.events == [] and sim.queued_messages() == 0


def test_binding_validation(api):
    rule = api.ok("POST", "/events/rules/", {"name": "r"})
    policy = api.ok("POST", "/policies/expression/", {"name": "p", "expression": "return True"})
    group = api.ok("POST", "/core/groups/", {"name": "g"})
    resp = api("POST", "/policies/bindings/", {"target": rule["pk"], "order": 0})
    assert resp.json() == {"non_field_errors": ["One of 'group', 'policy', 'user' must be set."]}
    resp = api("POST", "/policies/bindings/", {"target": rule["pk"], "order": 0, "policy": policy["pk"],
                                               "group": group["pk"]})
    assert resp.json() == {"non_field_errors": ["Only one of 'group', 'policy', 'user' can be set."]}
    binding = api.ok("POST", "/policies/bindings/", {"target": rule["pk"], "order": 0, "policy": policy["pk"]})
    assert binding["enabled"] is True and binding["timeout"] == 30 and binding["policy_obj"]["bound_to"] == 1
    resp = api("POST", "/policies/bindings/", {"target": rule["pk"], "order": 0, "policy": policy["pk"]})
    assert resp.json() == {"non_field_errors": ["The fields policy, target, order must make a unique set."]}
    assert api("PATCH", "/policies/bindings/%s/" % binding["pk"], {"order": 3}).status_code == 500
    resp = api("POST", "/policies/bindings/", {"order": 1, "policy": policy["pk"]})
    assert resp.json() == {"target": ["This field is required."]}
    assert api.ok("GET", "/policies/bindings/", target=rule["pk"], policy=policy["pk"])["pagination"]["count"] == 1
    assert api("DELETE", "/events/rules/%s/" % rule["pk"]).status_code == 204
    assert api.ok("GET", "/policies/bindings/")["results"] == []  # cascade


def test_expression_validation(api):
    resp = api("POST", "/policies/expression/", {"name": "p", "expression": "return ("})
    assert resp.status_code == 400 and resp.json()["expression"][0].startswith("Expression Syntax Error: ")
    resp = api("POST", "/policies/expression/", {"name": "", "expression": ""})
    assert resp.json() == {"name": ["This field may not be blank."], "expression": ["This field may not be blank."]}
    assert api("POST", "/policies/expression/", {"expression": "return 1"}).json() == {
        "name": ["This field is required."]}
    # webhook mappings are not syntax-checked on save (§2)
    api.ok("POST", "/propertymappings/notification/", {"name": "m", "expression": "return ("})


def test_transport_validation(api):
    resp = api("POST", "/events/transports/", {"name": "t", "mode": "webhook"})
    assert resp.json() == {"webhook_url": ["Webhook URL may not be empty."]}
    resp = api("POST", "/events/transports/", {"name": "t", "mode": "webhook", "webhook_url": "http://my_host/x"})
    assert resp.json() == {"webhook_url": ["Enter a valid URL."]}
    ok = api.ok("POST", "/events/transports/", {"name": "t", "mode": "webhook",
                                                "webhook_url": "http://receiver:8080/x"})
    assert ok["send_once"] is False and ok["mode_verbose"] == "Generic Webhook"
    missing = str(uuid.uuid4())
    resp = api("POST", "/events/transports/", {"name": "t2", "webhook_mapping_body": missing})
    assert resp.json() == {"webhook_mapping_body": ['Invalid pk "%s" - object does not exist.' % missing]}
    assert api("POST", "/events/transports/", {"name": "t2", "mode": "carrier-pigeon"}).json() == {
        "mode": ['"carrier-pigeon" is not a valid choice.']}
    # mode absent from a PATCH: the URL check does not run (§3)
    api.ok("PATCH", "/events/transports/%s/" % ok["pk"], {"webhook_url": ""})
    assert api("GET", "/events/transports/%s/" % missing).json() == {
        "detail": "No NotificationTransport matches the given query."}


def test_standalone_entry_point(tmp_path):
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"tokens": [{"key": "k", "superuser": True}],
                                "users": [{"username": "alice", "password": "pw"}], "groups": [{"name": "g"}]}))
    proc = subprocess.Popen([sys.executable, "-m", "tests.simulators.authentik", "--port", "0", "--seed", str(seed)],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        assert info["users"] == {"alice": 5}
        resp = requests.post(info["url"] + "/_sim/login/", json={"username": "alice", "client_ip": "192.0.2.5",
                                                                 "password": "pw"}, timeout=10)
        assert resp.json()["event"] == "login" and resp.json()["deliveries"] == []
        assert len(resp.json()["session_key"]) == 32
        groups = requests.get(info["url"] + "/api/v3/core/groups/", params={"name": "g"},
                              headers={"Authorization": "Bearer k"}, timeout=10).json()
        assert groups["pagination"]["count"] == 1
    finally:
        proc.terminate()
        proc.wait(timeout=10)
