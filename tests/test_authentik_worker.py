"""The authentik simulator's worker behaves like authentik's: a queue, later deliveries, retries, load.

Every event enqueues ``event_trigger_dispatch``; that one ``event_trigger_handler``
per notification rule (loop-guarded events included: the guard runs inside the
handler); a matching handler one ``notification_transport`` per transport and
recipient. Messages run later (background threads, or when a test steps the
worker), a failing one is retried with backoff, the task API shows the rows,
and while messages for a rule or transport are queued a DELETE of it can answer
405 and leave it in place (the project's authentik reference, §16-17).
"""

import time

import pytest
import requests

from tests.simulators.authentik import AuthentikSimulator
from tests.simulators.authentik_orm import FieldError
from tests.test_authentik_simulator import Receiver

TOKEN = "worker-token"
BODY = """from authentik.events.models import Event
last = Event.objects.filter(action='login', user__pk=%d).order_by('-created').first()
return {'value': last.client_ip if last else None}"""
POLICY = "event = request.context.get('event')\nreturn event is not None and event.action == 'login'"


class Api:
    def __init__(self, sim):
        self.base = sim.base_url + "/api/v3"
        self.session = requests.Session()
        self.session.headers["Authorization"] = "Bearer " + TOKEN

    def __call__(self, method, path, body=None, **params):
        return self.session.request(method, self.base + path, json=body, params=params, timeout=10)

    def ok(self, method, path, body=None, **params):
        resp = self(method, path, body, **params)
        assert resp.status_code in (200, 201, 204), (resp.status_code, resp.text)
        return resp.json() if resp.text else None


@pytest.fixture
def receiver():
    with Receiver() as target:  # records every POST, answers 200 (or its scripted statuses)
        yield target


def chain(sim, receiver, username="alice", rules=1):
    """``rules`` notification rules, each posting a body computed from state to the receiver."""
    api = Api(sim)
    pk = sim.user_by_username(username)["pk"]
    body = api.ok("POST", "/propertymappings/notification/", {"name": "body", "expression": BODY % pk})
    transport = api.ok("POST", "/events/transports/", {
        "name": "t", "mode": "webhook", "send_once": True, "webhook_mapping_body": body["pk"],
        "webhook_url": receiver.base_url + "/hook"})
    policy = api.ok("POST", "/policies/expression/", {"name": "p", "expression": POLICY})
    made = []
    for index in range(rules):
        rule = api.ok("POST", "/events/rules/", {"name": "r%d" % index, "transports": [transport["pk"]],
                                                 "destination_event_user": True})
        api.ok("POST", "/policies/bindings/", {"policy": policy["pk"], "target": rule["pk"], "order": 0})
        made.append(rule)
    return api, transport, made


def posts(receiver):
    return [r.json() for r in receiver.received]


def test_one_handler_per_rule_per_event_and_one_transport_per_match():
    with AuthentikSimulator(worker="manual") as sim:
        sim.add_token(TOKEN)
        sim.add_user("alice")
        with Receiver() as receiver:
            chain(sim, receiver, rules=3)
            assert sim.run_until_idle(10)
            sim.reset_counts()
            sim.login("alice", "203.0.113.1")
            assert sim.enqueued == {"event_trigger_dispatch": 1, "event_trigger_handler": 0,
                                    "notification_transport": 0}  # nothing ran yet
            assert sim.step() == 1  # the dispatch: one handler per rule
            assert sim.enqueued["event_trigger_handler"] == 3
            sim.run_until_idle(10)
            assert sim.enqueued["notification_transport"] == 3  # each rule matches, each posts once
            assert len(posts(receiver)) == 3
            # an event about a bound policy still costs a handler per rule; the guard is inside it
            sim.reset_counts()
            policy_pk = next(iter(sim.policies))
            sim.create_event("policy_exception", user="alice", context={"policy_uuid": policy_pk})
            sim.run_until_idle(10)
            assert sim.enqueued["event_trigger_handler"] == 3 and sim.enqueued["notification_transport"] == 0


def test_background_deliveries_come_later_and_read_the_state_then(receiver):
    with AuthentikSimulator(worker="background") as sim:
        sim.add_token(TOKEN)
        sim.add_user("alice")
        chain(sim, receiver)
        assert sim.wait_idle(10)
        receiver.received.clear()
        sim.pause_worker(["notification_transport"])
        sim.login("alice", "203.0.113.1")  # returns at once: the webhook waits in the queue
        sim.login("alice", "203.0.113.2")
        assert sim.wait_idle(10) and posts(receiver) == []
        assert sim.queued_messages("notification_transport") == 2
        sim.resume_worker()
        assert sim.wait_idle(10)
        # both deliveries computed the body when they ran: the newest login, twice
        assert posts(receiver) == [{"value": "203.0.113.2"}] * 2


def test_a_failing_delivery_is_retried_with_backoff_until_it_passes(receiver):
    with AuthentikSimulator(worker="background", retry_backoff=0.2, max_retries=3) as sim:
        sim.add_token(TOKEN)
        sim.add_user("alice")
        api, transport, _rules = chain(sim, receiver)
        assert sim.wait_idle(10)
        receiver.statuses = [503, 503]
        started = time.monotonic()
        sim.login("alice", "203.0.113.5")
        assert sim.wait_idle(20)
        attempts = [d["attempt"] for d in sim.deliveries]
        assert attempts == [1, 2, 3] and [d["status"] for d in sim.deliveries] == [503, 503, 200]
        assert time.monotonic() - started >= 0.2 + 0.4  # two backoffs: 0.2 s, then 0.4 s
        [row] = api.ok("GET", "/tasks/tasks/", rel_obj_id=transport["pk"])["results"]
        assert (row["state"], row["retries"]) == ("done", 2)


def test_the_task_api_shows_queued_then_consumed_then_done(receiver):
    with AuthentikSimulator(worker="manual") as sim:
        sim.add_token(TOKEN)
        sim.add_user("alice")
        api, transport, _rules = chain(sim, receiver)
        sim.run_until_idle(10)
        sim.login("alice", "203.0.113.6")
        assert [t["actor_name"].rsplit(".", 1)[1] for t in api.ok("GET", "/tasks/tasks/", state="queued")["results"]
                ] == ["event_trigger_dispatch"]
        sim.step(2)  # the dispatch, then the handler
        [queued] = api.ok("GET", "/tasks/tasks/", state="queued")["results"]
        assert queued["rel_obj_id"] == transport["pk"] and queued["logs"][-1]["event"] == "Task has been queued"
        sim.step()
        assert api.ok("GET", "/tasks/tasks/%s/" % queued["message_id"])["state"] == "done"


def test_a_delete_under_load_answers_405_and_leaves_the_rule(receiver):
    with AuthentikSimulator(worker="manual", busy_delete_failure=1.0) as sim:
        sim.add_token(TOKEN)
        sim.add_user("alice")
        api, _transport, [rule] = chain(sim, receiver)
        sim.run_until_idle(10)
        sim.login("alice", "203.0.113.7")
        sim.step()  # the dispatch ran: the rule's handler is queued
        resp = api("DELETE", "/events/rules/%s/" % rule["pk"])
        assert resp.status_code == 405 and resp.text == ""
        assert rule["pk"] in sim.rules and sim.busy_delete_refusals == 1
        sim.run_until_idle(10)  # the backlog drains ...
        assert api("DELETE", "/events/rules/%s/" % rule["pk"]).status_code == 204  # ... and the delete passes
        assert rule["pk"] not in sim.rules


def test_a_refused_delete_under_load_can_have_happened_all_the_same(receiver):
    with AuthentikSimulator(worker="manual", busy_delete_failure=1.0, busy_delete_gone=1.0) as sim:
        sim.add_token(TOKEN)
        sim.add_user("alice")
        api, _transport, [rule] = chain(sim, receiver)
        sim.run_until_idle(10)
        sim.login("alice", "203.0.113.7")
        sim.step()  # the dispatch ran: the rule's handler is queued
        resp = api("DELETE", "/events/rules/%s/" % rule["pk"])
        assert resp.status_code == 405 and resp.text == ""
        assert rule["pk"] not in sim.rules and sim.busy_deletes_gone == 1  # ... and yet it is gone (§16)
        assert api("DELETE", "/events/rules/%s/" % rule["pk"]).status_code == 404


def test_messages_of_a_deleted_rule_never_run(receiver):
    with AuthentikSimulator(worker="manual") as sim:
        sim.add_token(TOKEN)
        sim.add_user("alice")
        api, _transport, [rule] = chain(sim, receiver)
        sim.run_until_idle(10)
        receiver.received.clear()
        sim.login("alice", "203.0.113.8")
        sim.step()
        api.ok("DELETE", "/events/rules/%s/" % rule["pk"])  # its task rows go with it
        sim.run_until_idle(10)
        assert posts(receiver) == []


def test_task_costs_make_a_backlog_that_takes_time_to_drain():
    with AuthentikSimulator(worker="background", worker_threads=1,
                            task_costs={"event_trigger_dispatch": 0.01}) as sim:
        sim.add_token(TOKEN)
        for _ in range(20):
            sim.create_event("model_updated", user="akadmin")
        assert not sim.idle and sim.queued_messages() > 0
        assert sim.wait_idle(10) and sim.queued_messages() == 0


def test_sessions_are_made_at_login_and_deleted_by_a_logout():
    with AuthentikSimulator() as sim:
        sim.add_token(TOKEN)
        sim.add_user("alice", password="pw")
        api = Api(sim)
        first = sim.login("alice", "203.0.113.1", password="pw")
        sim.login("alice", "198.51.100.2", password="pw")
        assert sim.login("alice", "192.0.2.3", password="wrong").session_key is None
        listed = api.ok("GET", "/core/authenticated_sessions/", user__username="alice")["results"]
        assert sorted(s["last_ip"] for s in listed) == ["198.51.100.2", "203.0.113.1"]
        assert api.ok("GET", "/core/authenticated_sessions/", session__last_ip="203.0.113.1")["pagination"][
            "count"] == 1
        event = sim.logout(first.session_key, client_ip="203.0.113.1")
        assert event.action == "logout" and event.user["username"] == "alice"
        assert [s["last_ip"] for s in api.ok("GET", "/core/authenticated_sessions/")["results"]] == ["198.51.100.2"]
        remaining = api.ok("GET", "/core/authenticated_sessions/")["results"][0]
        before = len(sim.events)
        assert api("DELETE", "/core/authenticated_sessions/%s/" % remaining["uuid"]).status_code == 204
        assert len(sim.events) == before  # an admin's revoke writes no event


def test_expressions_read_sessions_like_authentik_2025_4_and_later():
    expression = ("from authentik.core.models import AuthenticatedSession\n"
                  "from django.utils.timezone import now\n"
                  "live = AuthenticatedSession.objects.filter(user__pk=%d, session__expires__gt=now())\n"
                  "return [s.session.last_ip for s in live.order_by('-session__last_used')]")
    with AuthentikSimulator() as sim:
        pk = sim.add_user("alice")
        first = sim.login("alice", "203.0.113.1")
        sim.login("alice", "198.51.100.2")
        sim.expire_session(first.session_key)
        from tests.simulators.authentik import run_expression
        assert run_expression(expression % pk, {}, "test", sim) == ["198.51.100.2"]
    with AuthentikSimulator(version="2025.2.4") as old:
        pk = old.add_user("alice")
        old.login("alice", "203.0.113.1")
        with pytest.raises(FieldError, match="Cannot resolve keyword 'session' into field"):
            run_expression(expression % pk, {}, "test", old)  # before 2025.4 the session's fields were its own


# -- options that model the real servers (tests/bench/calibration.py) ---------------------------
def _timed(call):
    start = time.monotonic()
    result = call()
    return result, time.monotonic() - start


def test_request_latency_is_per_kind_and_slept_outside_the_lock():
    import threading

    with AuthentikSimulator(read_latency=0.5, write_latency=0.0) as sim:
        sim.add_token(TOKEN)
        api = Api(sim)
        resp, read = _timed(lambda: api("GET", "/events/rules/"))
        assert resp.status_code == 200 and read >= 0.45, read
        resp, write = _timed(lambda: api("POST", "/policies/expression/", {"name": "p", "expression": POLICY}))
        assert resp.status_code == 201 and write < 0.3, write  # writes have their own latency (0 here)
        # two reads at the same time take about one latency, not two: the sleep does not hold the lock
        took = []
        threads = [threading.Thread(target=lambda: took.append(_timed(lambda: Api(sim)("GET", "/events/rules/"))))
                   for _ in range(2)]
        start = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        both = time.monotonic() - start
        assert [r.status_code for r, _ in took] == [200, 200]
        assert min(t for _, t in took) >= 0.45 and both < 0.9, (took, both)


def test_a_write_commits_at_the_end_of_its_latency_and_leaves_the_lock_free_meanwhile():
    import threading

    with AuthentikSimulator(worker="background", write_latency=1.0) as sim:
        sim.add_token(TOKEN)
        sim.add_user("alice")
        answer = {}
        writer = threading.Thread(target=lambda: answer.update(resp=Api(sim)(
            "POST", "/policies/expression/", {"name": "slow", "expression": POLICY})))
        writer.start()
        wait_for(lambda: len(sim.log) == 1, what="the write to arrive")  # logged, now in its latency
        assert sim.lock.acquire(timeout=0.5)  # the lock is free while the request waits ...
        try:
            assert writer.is_alive() and not sim.policies  # ... and nothing is written yet
        finally:
            sim.lock.release()
        sim.login("alice", "203.0.113.9")  # the API and the worker go on meanwhile
        assert sim.wait_idle(5) and writer.is_alive()
        writer.join(10)
        assert answer["resp"].status_code == 201 and [p["name"] for p in sim.policies.values()] == ["slow"]
        resp, took = _timed(lambda: requests.post(sim.base_url + "/_sim/login/", json={
            "username": "alice", "client_ip": "203.0.113.10"}, timeout=10))
        assert resp.status_code == 200 and took < 0.5  # the simulator's control routes answer at once


def test_an_event_search_by_username_has_its_own_latency():
    with AuthentikSimulator(read_latency=0.0, event_search_latency=0.5) as sim:
        sim.add_token(TOKEN)
        sim.add_user("alice")
        api = Api(sim)
        resp, search = _timed(lambda: api("GET", "/events/events/", actions="login", username="alice"))
        assert resp.status_code == 200 and search >= 0.45, search
        # other reads, the events list without a username among them, keep the read latency
        for path, params in (("/events/events/", {"actions": "login"}), ("/events/rules/", {})):
            resp, took = _timed(lambda: api("GET", path, **params))
            assert resp.status_code == 200 and took < 0.3, (path, took)
    with AuthentikSimulator(read_latency=0.4) as plain:  # unset: an event search is a read like any other
        plain.add_token(TOKEN)
        resp, took = _timed(lambda: Api(plain)("GET", "/events/events/", username="akadmin"))
        assert resp.status_code == 200 and 0.35 <= took < 0.9, took


def wait_for(condition, timeout=10.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for %s" % what
        time.sleep(0.005)


DEFAULT_RULES = {"default-notify-configuration-error": ["configuration_error"],
                 "default-notify-update": ["update_available"],
                 "default-notify-exception": ["policy_exception", "property_mapping_exception"]}


def test_default_rules_are_seeded_like_a_fresh_install():
    with AuthentikSimulator(default_rules=True) as sim:
        sim.add_token(TOKEN)
        api = Api(sim)
        rules = api.ok("GET", "/events/rules/")["results"]
        transports = {t["pk"]: t for t in api.ok("GET", "/events/transports/")["results"]}
        admins = next(g["pk"] for g in api.ok("GET", "/core/groups/", name="authentik Admins")["results"])
        assert sorted(r["name"] for r in rules) == sorted(DEFAULT_RULES)
        for rule in rules:
            assert rule["severity"] == "alert" and rule["destination_group"] == admins
            assert sorted((transports[t]["name"], transports[t]["mode"]) for t in rule["transports"]) == [
                ("default-email-transport", "email"), ("default-local-transport", "local")]
            bindings = api.ok("GET", "/policies/bindings/", target=rule["pk"])["results"]
            matchers = {p["pk"]: p for p in api.ok("GET", "/policies/event_matcher/")["results"]}
            assert [matchers[b["policy"]]["action"] for b in sorted(bindings, key=lambda b: b["order"])] == \
                DEFAULT_RULES[rule["name"]]
        assert not sim.events  # seeding writes no event
    with AuthentikSimulator() as plain:  # off by default: tests see only their own objects
        assert not plain.rules and not plain.transports and not plain.policies and not plain.bindings


def test_default_rules_cost_one_handler_each_per_event_and_fire_for_their_own_actions():
    with AuthentikSimulator(worker="manual", default_rules=True) as sim:
        sim.add_token(TOKEN)
        sim.reset_counts()
        sim.create_event("model_created", user="akadmin")
        assert sim.run_until_idle(10)
        assert sim.enqueued == {"event_trigger_dispatch": 1, "event_trigger_handler": 3,
                                "notification_transport": 0}
        for rule, actions in DEFAULT_RULES.items():
            for action in actions:
                sim.reset_counts()
                mails, notes = len(sim.outbox), len(sim.notifications)
                sim.create_event(action, user="akadmin", context={"message": "boom"})
                assert sim.run_until_idle(10)
                # one handler per rule; the matching rule: email + local transport to akadmin (its group)
                assert sim.enqueued == {"event_trigger_dispatch": 1, "event_trigger_handler": 3,
                                        "notification_transport": 2}, (action, sim.enqueued)
                assert [(m["rule"], m["to"], m["event"]) for m in sim.outbox[mails:]] == [
                    (rule, "root@example.com", action)]
                assert [(n["rule"], n["severity"], n["body"]) for n in sim.notifications[notes:]] == [
                    (rule, "alert", "boom")]
        # a rule of the client's own adds its handler on top of the three
        api = Api(sim)
        api.ok("POST", "/events/rules/", {"name": "own", "destination_event_user": True})
        assert sim.run_until_idle(10)
        sim.reset_counts()
        sim.create_event("model_updated", user="akadmin")
        assert sim.run_until_idle(10) and sim.enqueued["event_trigger_handler"] == 4
    with AuthentikSimulator(worker="manual") as plain:
        plain.create_event("configuration_error", user="akadmin")
        assert plain.run_until_idle(10)
        assert plain.enqueued["event_trigger_handler"] == 0 and not plain.outbox
