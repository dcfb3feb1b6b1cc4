"""Faults on the wire: every write of a converge fails once in each way a network can fail.

A clean converge (the role's one ``login_ip_whitelist`` call, 3 users) is
recorded once; then each of its writes gets a 503, a lost answer (the server
did the work but the answer never arrives), a reset or a timeout on a fresh
pair of simulators. The faulty run must either succeed or fail with one clear
message; the next run must leave exactly the right state, and the run after
that must write nothing. Reads, 429s, retry bounds, concurrent runs and the
shape of the simulators' injected answers are covered after the matrix.
authentik's worker delivers in the background; logins wait until it is idle.
"""

import json
import os
import re
import subprocess
import sys
import time
import uuid

import pytest
import requests

from tests.module_harness import PACKAGE
from tests.module_harness import run_module
from tests.playbook_env import AUTHENTIK_TOKEN, COLLECTIONS, REPO, PlaybookEnv

PREFIX = "jellyfin-whitelist-"
FOREIGN = dict(action="DROP", match="CIDR", value="10.0.0.0/8", priority=5)


class Stack(object):
    """Both simulators, seeded like the role's setup, driven with the arguments the role gives its module."""

    def __init__(self, users=3):
        self.env = PlaybookEnv(users=users)
        self.pangolin, self.authentik = self.env.pangolin, self.env.authentik
        self.resource_id = self.env.resource_id
        self.usernames = list(self.env.usernames)
        self.foreign_rule = self.pangolin.add_rule(self.resource_id, **FOREIGN)
        self.head = PREFIX + "resource-%d" % self.resource_id
        self.headers_name = self.head + "/headers"
        self.group_name = self.head + "/logins/1"
        self.secrets = [self.env.pangolin_key, self.env.webhook_key, AUTHENTIK_TOKEN,
                        self.env.pangolin_key.split(".", 1)[1], self.env.webhook_key.split(".", 1)[1]]

    def close(self):
        self.env.close()

    # -- the role's module call ---------------------------------------------------------
    def whitelist_args(self, **extra):
        """What roles/jellyfin_whitelist/tasks/whitelist.yml hands login_ip_whitelist for the example
        inventory (the resource by name within its org, the webhook key given), with 2 retries."""
        args = dict(pangolin_url=self.pangolin.base_url, pangolin_api_key=self.env.pangolin_key,
                    authentik_url=self.authentik.base_url, authentik_token=AUTHENTIK_TOKEN,
                    resource="jellyfin.example.com", org_id="homelab",
                    users=[{"username": u} for u in self.usernames], name_prefix=PREFIX, placeholder="0.0.0.0",
                    ipv6_prefix=0, max_addresses=1, follow_sessions=False, expire_days=30,
                    webhook_api_key=self.env.webhook_key, manage_webhook_key=False, rotate_webhook_key=False,
                    priority_start=100, priority_end=999, users_per_rule=10, prune=False, retries=2)
        args.update(extra)
        return args

    def converge(self, **conn):
        """The role's whitelist task; returns its result, checked for tracebacks and secrets."""
        result = run_module("login_ip_whitelist", self.whitelist_args(**conn))
        assert_clean(result, self.secrets)
        return result

    def writes(self):
        return self.pangolin.writes() + self.authentik.writes()

    def reset_logs(self):
        self.pangolin.reset_log()
        self.authentik.reset_log()

    def clear_faults(self):
        self.pangolin.clear_faults()
        self.authentik.clear_faults()

    # -- the state that must result ------------------------------------------------------
    def named(self, store, name):
        return [o for o in getattr(self.authentik, store).values() if o.get("name") == name]

    def slot_name(self, username):
        return "%s/%s/1" % (self.head, username)

    def assert_converged(self):
        rules = self.pangolin.rules(self.resource_id)
        foreign = [r for r in rules if r["ruleId"] == self.foreign_rule]
        assert len(foreign) == 1 and dict((k, foreign[0][k]) for k in FOREIGN) == FOREIGN
        mine = [r for r in rules if r["ruleId"] != self.foreign_rule]
        assert sorted(r["priority"] for r in mine) == [100, 101, 102], rules  # one rule per user, none twice
        assert all((r["action"], r["match"], r["enabled"]) == ("ACCEPT", "IP", True) for r in mine), mine
        assert self.pangolin.resource(self.resource_id)["applyRules"] is True
        headers = self.named("mappings", self.headers_name)
        assert len(headers) == 1, headers
        # Nothing but the deployment's own objects: no stray, no duplicate left by a retried create.
        slots = set(self.slot_name(u) for u in self.usernames)
        expected = dict(mappings=slots | {self.headers_name}, transports=slots, policies={self.group_name},
                        rules={self.group_name})
        for store, names in expected.items():
            found = sorted(o["name"] for o in getattr(self.authentik, store).values())
            assert found == sorted(names), (store, found)
        transport_pks, user_pks = [], []
        for index, username in enumerate(self.usernames):
            name = self.slot_name(username)
            mapping, transport = self.named("mappings", name)[0], self.named("transports", name)[0]
            priority = int(re.search(r"'priority': (\d+),", mapping["expression"]).group(1))
            user_pk = int(re.search(r"'user_pk': (\d+),", mapping["expression"]).group(1))
            assert user_pk == self.authentik.user_by_username(username)["pk"], (username, mapping["expression"])
            assert priority == 100 + index, (username, priority)
            match = re.search(r"/v1/resource/(\d+)/rule/(\d+)$", transport["webhook_url"])
            assert match and int(match.group(1)) == self.resource_id, transport["webhook_url"]
            target = [r for r in mine if r["ruleId"] == int(match.group(2))]
            assert len(target) == 1 and target[0]["priority"] == priority, (username, transport, mine)
            assert transport["webhook_mapping_body"] == mapping["pk"]
            assert transport["webhook_mapping_headers"] == headers[0]["pk"]
            transport_pks.append(transport["pk"])
            user_pks.append(user_pk)
        targets = set(self.env.rule_of(u)["ruleId"] for u in self.usernames)
        assert len(targets) == len(self.usernames)  # every user posts to a rule of their own
        # One notification rule for the three users: their transports, their policy, one binding.
        group_rule = self.named("rules", self.group_name)[0]
        policy = self.named("policies", self.group_name)[0]
        assert sorted(group_rule["transports"]) == sorted(transport_pks), (group_rule, transport_pks)
        members = re.search(r"'users': \[([\d, ]*)\],", policy["expression"]).group(1)
        assert sorted(int(pk) for pk in members.split(",")) == sorted(user_pks), policy["expression"]
        assert [(b["policy"], b["target"], b["order"], b["enabled"]) for b in self.authentik.bindings.values()] == [
            (policy["pk"], group_rule["pk"], 0, True)], self.authentik.bindings

    def assert_logins_whitelist(self):
        for index, username in enumerate(self.usernames):
            ip = "203.0.113.%d" % (10 + index)
            self.env.login(username, ip)  # waits until the worker delivered
            assert self.env.rule_of(username)["value"] == ip, username
            assert self.pangolin.apply_rules_for(self.resource_id, ip) == "ACCEPT"

    def assert_settled(self):
        """A fault-free run repairs everything; the run after it writes nothing."""
        self.clear_faults()
        result = self.converge()
        assert not result.get("failed"), result.get("msg")
        self.assert_converged()
        self.reset_logs()
        result = self.converge()
        assert not (result.get("failed") or result.get("changed")), result
        assert self.writes() == []
        self.assert_logins_whitelist()


def warning_texts(result):
    """The warning messages of a result (plain strings, or ansible-core 2.19+ warning summaries)."""
    texts = []
    for warning in result.get("warnings") or []:
        texts.append(warning if isinstance(warning, str) else (warning.get("event") or warning).get("msg", ""))
    return texts


def assert_clean(result, secrets):
    """One clear message when failed, never a traceback, never a secret."""
    text = json.dumps(result)
    for secret in secrets:
        assert secret not in text
    assert "Traceback" not in text
    assert "exception" not in result or "Traceback" not in result["exception"]
    msg = result.get("msg") or ""
    assert msg, result  # every module says what it did
    if result.get("failed"):
        assert "\n" not in msg.strip() and not msg.startswith("unexpected error"), msg


@pytest.fixture
def stack():
    s = Stack()
    yield s
    s.close()


# -- the write matrix ------------------------------------------------------------------

def _pattern(path):
    return "^" + re.escape(path) + "$"


def record_writes():
    """Every write of a clean converge as (simulator, method, path, occurrence)."""
    s = Stack()
    try:
        s.reset_logs()
        result = s.converge()
        assert not result.get("failed"), result.get("msg")
        points, seen = [], {}
        for sim_name, sim in (("pangolin", s.pangolin), ("authentik", s.authentik)):
            for entry in sim.writes():
                key = (sim_name, entry.method, entry.path)
                points.append(key + (seen.get(key, 0),))
                seen[key] = seen.get(key, 0) + 1
        return points
    finally:
        s.close()


WRITES = record_writes()
# Every write gets a 503, a lost answer and a reset; a timeout costs seconds of waiting,
# so it hits the first write of each kind (applyRules, the headers mapping, the first
# user's rule and transport, the group's policy, rule and binding).
MATRIX = [pytest.param(point, kind, id="%s-%s-%s#%d-%s" % (point + (kind,)))
          for point in WRITES for kind in ("503", "lost_answer", "reset", "timeout")
          if kind != "timeout" or point[3] == 0]


def test_clean_converge_has_the_expected_writes():
    # One applyRules switch and the headers mapping; per user a body mapping, a Pangolin rule and
    # a transport (3 x 3); then, for all three users together, one policy, one notification rule
    # and one binding: users share a notification rule (users_per_rule 10) instead of each getting
    # a policy, a rule and a binding of their own.
    assert len(WRITES) == 2 + 3 * 3 + 3, WRITES
    assert len(set(point[:3] for point in WRITES)) == 7
    assert len(MATRIX) == 3 * 14 + 7


@pytest.mark.parametrize("point,kind", MATRIX)
def test_fault_on_each_write_is_repaired(stack, point, kind):
    sim_name, method, path, occurrence = point
    sim = getattr(stack, sim_name)
    conn = {}
    if kind == "timeout":
        conn = dict(timeout=1)
        sim.inject("timeout", method=method, path_regex=_pattern(path), skip=occurrence, delay=1.5)
    else:
        sim.inject(kind, method=method, path_regex=_pattern(path), skip=occurrence)
    result = stack.converge(**conn)
    hit = [e for e in sim.log if e.fault == kind]
    assert len(hit) == 1, "the fault never fired"
    if kind == "lost_answer" and method == "PUT" and sim_name == "pangolin":
        # A lost create answer: the same run re-finds the rule instead of creating it twice.
        assert not result.get("failed"), result.get("msg")
        assert sorted(r["priority"] for r in stack.pangolin.rules(stack.resource_id)) == [5, 100, 101, 102]
    stack.assert_settled()


# -- reads -----------------------------------------------------------------------------

READS = [
    pytest.param("pangolin", r"^/v1/org/homelab/resources$", "list resources of org", id="resources-list"),
    pytest.param("pangolin", r"^/v1/resource/\d+/rules$", "list rules", id="rules-list"),
    pytest.param("authentik", r"^/api/v3/core/users/$", "list user", id="users-list"),
    pytest.param("authentik", r"^/api/v3/propertymappings/notification/$", "list webhook mapping",
                 id="mappings-list"),
    pytest.param("authentik", r"^/api/v3/events/events/$", "list login events", id="login-events"),
    pytest.param("authentik", r"^/api/v3/admin/version/$", "read the authentik version", id="version"),
]


@pytest.mark.parametrize("sim_name,regex,operation", READS)
@pytest.mark.parametrize("kind", ["503", "reset"])
def test_fault_on_a_read_is_retried_with_a_warning(stack, sim_name, regex, operation, kind):
    sim = getattr(stack, sim_name)
    sim.inject(kind, method="GET", path_regex=regex)
    result = stack.converge()
    assert not result.get("failed"), result.get("msg")
    warnings = " ".join(warning_texts(result))
    assert "retry 1 of 2" in warnings and operation in warnings, warnings
    assert len([e for e in sim.log if e.fault == kind]) == 1
    stack.assert_converged()


# -- 429 -------------------------------------------------------------------------------

def test_429_retry_after_is_honoured(stack):
    stack.pangolin.inject("429", method="GET", path_regex=r"^/v1/resource/\d+$", retry_after=1)
    started = time.monotonic()
    result = stack.converge()
    elapsed = time.monotonic() - started
    assert not result.get("failed"), result.get("msg")
    assert elapsed >= 1.0, elapsed
    assert any("HTTP 429" in w and "in 1.0s" in w for w in warning_texts(result)), result["warnings"]
    stack.assert_converged()


@pytest.mark.parametrize("sim_name,regex,operation", [
    ("pangolin", r"^/v1/resource/\d+$", "read resource"),
    ("authentik", r"^/api/v3/admin/version/$", "read the authentik version"),
])
def test_429_forever_fails_after_the_retries(stack, sim_name, regex, operation):
    sim = getattr(stack, sim_name)
    sim.inject("429", method="GET", path_regex=regex, retry_after=0, count=-1)
    result = stack.converge()
    assert result.get("failed")
    assert "HTTP 429" in result["msg"] and operation in result["msg"], result["msg"]
    assert len([e for e in sim.log if e.fault == "429"]) == 3  # one try and two retries
    assert len(warning_texts(result)) == 2
    assert "3 attempts" in result["msg"] and "not JSON" not in result["msg"], result["msg"]
    assert stack.writes() == []


def test_429_retry_after_is_capped(stack, monkeypatch):
    from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http import client as api_client

    slept, real_sleep = [], time.sleep

    def sleep(seconds):
        # Only the HTTP layer's waits are recorded (and skipped); the simulators' threads sleep as usual.
        if sys._getframe(1).f_globals.get("__name__") == api_client.__name__:
            slept.append(seconds)
            return
        real_sleep(seconds)

    monkeypatch.setattr(api_client.time, "sleep", sleep)
    stack.pangolin.inject("429", method="GET", path_regex=r"^/v1/resource/\d+$", retry_after=3600)
    result = stack.converge()
    assert not result.get("failed"), result.get("msg")
    assert slept == [api_client.MAX_RETRY_WAIT]


def test_non_idempotent_create_is_not_retried_on_5xx_without_looking(stack):
    """A 503 on every create of a webhook mapping: the run looks before it creates again, and gives up."""
    stack.authentik.inject("503", method="POST", path_regex=r"^/api/v3/propertymappings/notification/$", count=-1)
    result = stack.converge()
    assert result.get("failed") and "webhook mapping" in result["msg"], result
    log = [(e.method, e.path) for e in stack.authentik.log if e.path == "/api/v3/propertymappings/notification/"]
    # create_attempts: two creates of the headers mapping, a fresh look before the second and after it
    assert log[-4:] == [("POST", "/api/v3/propertymappings/notification/"),
                        ("GET", "/api/v3/propertymappings/notification/")] * 2, log
    assert len([m for m in log if m[0] == "POST"]) == 2
    assert stack.pangolin.writes()[-1].path == "/v1/resource/%d" % stack.resource_id  # only applyRules so far
    stack.assert_settled()


# -- concurrency -----------------------------------------------------------------------

def spawn_module(stack, name, args):
    """Start a module in its own process, as Ansible would (the in-process harness owns stdout)."""
    path = stack.env.workdir / ("args-%s.json" % uuid.uuid4().hex)
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(COLLECTIONS), str(REPO)]))
    return subprocess.Popen([sys.executable, "-m", PACKAGE + name, str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def finish(proc):
    out, err = proc.communicate(timeout=120)
    try:
        return json.loads(out[out.index("{"):])
    except ValueError:
        raise AssertionError("no module result: %r %r" % (out[-2000:], err[-2000:]))


def slow_writes(sim, delay):
    """Hold every write back a little before the simulator serves it: widens the race window."""
    original = sim._dispatch

    def dispatch(http, _orig=original):
        if http.command in ("POST", "PUT", "PATCH", "DELETE"):
            time.sleep(delay)
        return _orig(http)

    sim._dispatch = dispatch


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_converges_end_like_one(stack, round_):
    if round_:
        slow_writes(stack.pangolin, 0.02 * round_)
        slow_writes(stack.authentik, 0.02 * round_)
    args = stack.whitelist_args()
    procs = [spawn_module(stack, "login_ip_whitelist", args) for _ in range(2)]
    results = [finish(p) for p in procs]
    for result in results:
        assert_clean(result, stack.secrets)
    # At most one run may lose a race it cannot settle, and then only with a clear message.
    assert any(not r.get("failed") for r in results), [r.get("msg") for r in results]
    stack.pangolin.__dict__.pop("_dispatch", None)
    stack.authentik.__dict__.pop("_dispatch", None)
    stack.assert_settled()


def test_a_run_that_stops_after_the_rule_leaves_no_stray_rule(stack):
    """A slot's rule is created before its transport; if the transport then fails, the next run must
    take that rule back as the user's, not leave it behind nor collide with it."""
    stack.authentik.inject("503", method="POST", path_regex=r"^/api/v3/events/transports/$",
                           skip=1, count=-1)  # the first user's transport passes, every other fails
    result = stack.converge()
    assert result.get("failed") and "transport" in result["msg"], result
    assert sorted(r["priority"] for r in stack.pangolin.rules(stack.resource_id)) == [5, 100, 101]
    assert stack.named("transports", stack.slot_name("user001")) == []
    assert stack.named("rules", stack.group_name) == []  # the notification rule comes last
    stack.assert_settled()
    assert len(stack.pangolin.rules(stack.resource_id)) == 4


# -- what an injected fault looks like -------------------------------------------------

def test_injected_faults_have_each_servers_shape(stack):
    """A fault reads like the server's own answer, so the modules' error paths are the real ones."""
    pangolin_url = stack.pangolin.base_url + "/v1/resource/%d" % stack.resource_id
    auth = {"Authorization": "Bearer " + stack.env.pangolin_key}
    for status in (429, 500, 502, 503):
        stack.pangolin.inject(str(status), method="GET", retry_after=7)
        resp = requests.get(pangolin_url, headers=auth, timeout=10)
        assert resp.status_code == status
        body = resp.json()
        assert sorted(body) == ["data", "error", "message", "stack", "status", "success"], body
        assert (body["data"], body["success"], body["error"], body["status"], body["stack"]) == (
            None, False, True, status, None), body
        assert body["message"] and "injected" not in body["message"], body
        assert resp.headers["X-Powered-By"] == "Express"
        assert ("Retry-After" in resp.headers) == (status == 429)
        if status == 429:
            assert resp.headers["Retry-After"] == "7" and body["message"].startswith("Rate limit exceeded"), body
    # The shape Pangolin uses for its own errors, by comparison.
    own = requests.get(stack.pangolin.base_url + "/v1/resource/9999", headers=auth, timeout=10).json()
    assert sorted(own) == sorted(body) and own["success"] is False

    authentik_url = stack.authentik.base_url + "/api/v3/core/users/"
    auth = {"Authorization": "Bearer " + AUTHENTIK_TOKEN}
    for retry_after, text in ((7, "7 seconds"), (1, "1 second")):
        stack.authentik.inject("429", method="GET", retry_after=retry_after)
        resp = requests.get(authentik_url, headers=auth, timeout=10)
        assert resp.status_code == 429 and resp.headers["Retry-After"] == str(retry_after)
        assert resp.json() == {"detail": "Request was throttled. Expected available in %s." % text}
    for status in (500, 502, 503):
        stack.authentik.inject(str(status), method="GET")
        resp = requests.get(authentik_url, headers=auth, timeout=10)
        assert resp.status_code == status and resp.headers["Content-Type"].startswith("text/html")
        assert "<h1>Server Error (500)</h1>" in resp.text and "injected" not in resp.text
        assert "Retry-After" not in resp.headers

    # What the modules make of them: the server's message, once, after the retries.
    stack.clear_faults()
    stack.pangolin.inject("503", method="GET", path_regex=r"^/v1/resource/\d+/rules$", count=-1)
    result = stack.converge()
    assert result.get("failed") and "HTTP 503 Service Unavailable" in result["msg"], result["msg"]
    stack.clear_faults()
    stack.authentik.inject("503", method="GET", path_regex=r"^/api/v3/admin/version/$", count=-1)
    result = stack.converge()
    assert result.get("failed") and "HTTP 503 answer is not JSON: Server Error (500)" in result["msg"], result["msg"]
