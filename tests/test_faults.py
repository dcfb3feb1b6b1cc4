"""Faults on the wire: every write of a converge fails once in each way a network can fail.

A clean converge (the role's three module calls, 3 users) is recorded once;
then each of its writes gets a 503, a lost answer (the server did the work
but the answer never arrives), a reset or a timeout on a fresh pair of
simulators. The faulty run must either succeed or fail with one clear
message; the next run must leave exactly the right state, and the run after
that must write nothing. Reads, 429s, retry bounds and concurrent runs are
covered after the matrix.
"""

import json
import os
import re
import subprocess
import sys
import time
import uuid

import pytest


from tests.module_harness import PACKAGE
from tests.module_harness import run_module
from tests.playbook_env import AUTHENTIK_TOKEN, COLLECTIONS, REPO, PlaybookEnv

PREFIX = "jellyfin-whitelist-"
HEADERS = "jellyfin-whitelist pangolin headers"
FOREIGN = dict(action="DROP", match="CIDR", value="10.0.0.0/8", priority=5)


class Stack(object):
    """Both simulators, seeded like the role's setup, driven with the role's module arguments."""

    def __init__(self, users=3):
        self.env = PlaybookEnv(users=users)
        self.pangolin, self.authentik = self.env.pangolin, self.env.authentik
        self.resource_id = self.env.resource_id
        self.usernames = list(self.env.usernames)
        self.foreign_rule = self.pangolin.add_rule(self.resource_id, **FOREIGN)
        self.secrets = [self.env.pangolin_key, self.env.webhook_key, AUTHENTIK_TOKEN,
                        self.env.pangolin_key.split(".", 1)[1], self.env.webhook_key.split(".", 1)[1]]

    def close(self):
        self.env.close()

    # -- the role's three module calls -----------------------------------------------
    def pangolin_conn(self, **extra):
        conn = dict(pangolin_url=self.pangolin.base_url, pangolin_api_key=self.env.pangolin_key, retries=2)
        conn.update(extra)
        return conn

    def authentik_conn(self, **extra):
        conn = dict(authentik_url=self.authentik.base_url, authentik_token=AUTHENTIK_TOKEN, retries=2)
        conn.update(extra)
        return conn

    def whitelist_args(self, **extra):
        args = dict(self.pangolin_conn(), **self.authentik_conn())
        args.update(resource_id=self.resource_id, users=[{"username": u} for u in self.usernames],
                    name_prefix=PREFIX, headers_mapping=HEADERS, priority_start=100, priority_end=999,
                    placeholder="0.0.0.0", prune=False)
        args.update(extra)
        return args

    def converge(self, **conn):
        """The role's module calls in order; stops at the first failure. Returns the results."""
        results = [run_module("pangolin_resource", dict(self.pangolin_conn(**conn), resource_id=self.resource_id,
                                                        apply_rules=True))]
        if not results[-1].get("failed"):
            results.append(run_module("authentik_webhook_mapping", dict(
                self.authentik_conn(**conn), name=HEADERS, template="pangolin_headers",
                webhook_api_key=self.env.webhook_key)))
        if not results[-1].get("failed"):
            results.append(run_module("login_ip_whitelist", self.whitelist_args(**conn)))
        for result in results:
            assert_clean(result, self.secrets)
        return results

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

    def assert_converged(self):
        rules = self.pangolin.rules(self.resource_id)
        foreign = [r for r in rules if r["ruleId"] == self.foreign_rule]
        assert len(foreign) == 1 and dict((k, foreign[0][k]) for k in FOREIGN) == FOREIGN
        mine = [r for r in rules if r["ruleId"] != self.foreign_rule]
        priorities = sorted(r["priority"] for r in mine)
        assert priorities == [100, 101, 102], rules  # one rule per user, no duplicate priority
        assert all((r["action"], r["match"], r["enabled"]) == ("ACCEPT", "IP", True) for r in mine), mine
        assert self.pangolin.resource(self.resource_id)["applyRules"] is True
        headers = self.named("mappings", HEADERS)
        assert len(headers) == 1
        names = set([HEADERS] + [PREFIX + u for u in self.usernames])
        for store in ("mappings", "transports", "policies", "rules"):
            stray = [o["name"] for o in getattr(self.authentik, store).values() if o["name"] not in names]
            assert stray == [], (store, stray)
        rule_ids = set()
        for username in self.usernames:
            name = PREFIX + username
            found = dict((store, self.named(store, name)) for store in ("mappings", "transports", "policies",
                                                                         "rules"))
            assert all(len(v) == 1 for v in found.values()), (username, found)
            mapping, transport, policy, rule = (found[s][0] for s in ("mappings", "transports", "policies",
                                                                      "rules"))
            priority = int(re.search(r'"priority": (\d+)', mapping["expression"]).group(1))
            match = re.search(r"/v1/resource/(\d+)/rule/(\d+)$", transport["webhook_url"])
            assert match and int(match.group(1)) == self.resource_id, transport["webhook_url"]
            target = [r for r in mine if r["ruleId"] == int(match.group(2))]
            assert len(target) == 1 and target[0]["priority"] == priority, (username, transport, mine)
            rule_ids.add(target[0]["ruleId"])
            assert transport["webhook_mapping_body"] == mapping["pk"]
            assert transport["webhook_mapping_headers"] == headers[0]["pk"]
            assert rule["transports"] == [transport["pk"]]
            bindings = [b for b in self.authentik.bindings.values() if b["target"] == rule["pk"]]
            assert [(b["policy"], b["order"], b["enabled"]) for b in bindings] == [(policy["pk"], 0, True)]
        assert len(rule_ids) == len(self.usernames)
        assert len(self.authentik.bindings) == len(self.usernames)

    def assert_logins_whitelist(self):
        for index, username in enumerate(self.usernames):
            ip = "203.0.113.%d" % (10 + index)
            self.authentik.login(username, ip)
            assert self.env.rule_of(username)["value"] == ip, username
            assert self.pangolin.apply_rules_for(self.resource_id, ip) == "ACCEPT"

    def assert_settled(self):
        """A fault-free run repairs everything; the run after it writes nothing."""
        self.clear_faults()
        results = self.converge()
        assert not any(r.get("failed") for r in results), [r.get("msg") for r in results]
        self.assert_converged()
        self.reset_logs()
        results = self.converge()
        assert not any(r.get("failed") or r.get("changed") for r in results), results
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
    if result.get("failed"):
        msg = result.get("msg") or ""
        assert msg and "\n" not in msg.strip() and not msg.startswith("unexpected error"), msg


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
        results = s.converge()
        assert not any(r.get("failed") for r in results)
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
# so it hits the first write of each kind (the headers mapping and the first user's chain).
MATRIX = [pytest.param(point, kind, id="%s-%s-%s#%d-%s" % (point + (kind,)))
          for point in WRITES for kind in ("503", "lost_answer", "reset", "timeout")
          if kind != "timeout" or point[3] == 0]


def test_clean_converge_has_the_expected_writes():
    # One applyRules switch, the headers mapping, and per user a rule and five authentik objects.
    assert len(WRITES) == 2 + 6 * 3, WRITES
    assert len(MATRIX) == 3 * 20 + 7


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
    results = stack.converge(**conn)
    hit = [e for e in sim.log if e.fault == kind]
    assert len(hit) == 1, "the fault never fired"
    if kind == "lost_answer" and method == "PUT" and sim_name == "pangolin":
        # A lost create answer: the same run re-finds the rule instead of creating it twice.
        assert not any(r.get("failed") for r in results)
        assert sorted(r["priority"] for r in stack.pangolin.rules(stack.resource_id)) == [5, 100, 101, 102]
    stack.assert_settled()


# -- reads -----------------------------------------------------------------------------

READS = [
    pytest.param("pangolin", r"^/v1/resource/\d+/rules$", "list rules", id="rules-list"),
    pytest.param("authentik", r"^/api/v3/core/users/$", "list user", id="users-list"),
    pytest.param("authentik", r"^/api/v3/propertymappings/notification/$", "list webhook mapping",
                 id="mappings-list"),
    pytest.param("authentik", r"^/api/v3/admin/version/$", "read the authentik version", id="version"),
]


@pytest.mark.parametrize("sim_name,regex,operation", READS)
@pytest.mark.parametrize("kind", ["503", "reset"])
def test_fault_on_a_read_is_retried_with_a_warning(stack, sim_name, regex, operation, kind):
    sim = getattr(stack, sim_name)
    sim.inject(kind, method="GET", path_regex=regex)
    results = stack.converge()
    assert not any(r.get("failed") for r in results), [r.get("msg") for r in results]
    warnings = " ".join(w for r in results for w in warning_texts(r))
    assert "retry 1 of 2" in warnings and operation in warnings, warnings
    assert len([e for e in sim.log if e.fault == kind]) == 1
    stack.assert_converged()


# -- 429 -------------------------------------------------------------------------------

def test_429_retry_after_is_honoured(stack):
    stack.pangolin.inject("429", method="GET", path_regex=r"^/v1/resource/\d+$", retry_after=1)
    started = time.monotonic()
    result = run_module("pangolin_resource", dict(stack.pangolin_conn(), resource_id=stack.resource_id,
                                                  apply_rules=True))
    elapsed = time.monotonic() - started
    assert not result.get("failed"), result.get("msg")
    assert elapsed >= 1.0, elapsed
    assert any("HTTP 429" in w and "in 1.0s" in w for w in warning_texts(result)), result["warnings"]


def test_429_forever_fails_after_the_retries(stack):
    stack.pangolin.inject("429", method="GET", path_regex=r"^/v1/resource/\d+$", retry_after=0, count=-1)
    result = run_module("pangolin_resource", dict(stack.pangolin_conn(retries=2), resource_id=stack.resource_id,
                                                  apply_rules=True))
    assert result.get("failed")
    assert "HTTP 429" in result["msg"] and "read resource" in result["msg"], result["msg"]
    assert len([e for e in stack.pangolin.log if e.fault == "429"]) == 3  # one try and two retries
    assert len(warning_texts(result)) == 2
    assert "3 attempts" in result["msg"] and "not JSON" not in result["msg"], result["msg"]
    assert_clean(result, stack.secrets)
    assert stack.writes() == []


def test_429_retry_after_is_capped(stack, monkeypatch):
    from ansible_collections.homelab.pangolin_authentik.plugins.module_utils import api_client

    slept = []
    monkeypatch.setattr(api_client.time, "sleep", slept.append)
    stack.pangolin.inject("429", method="GET", path_regex=r"^/v1/resource/\d+$", retry_after=3600)
    result = run_module("pangolin_resource", dict(stack.pangolin_conn(), resource_id=stack.resource_id,
                                                  apply_rules=True))
    assert not result.get("failed"), result.get("msg")
    assert slept == [api_client.MAX_RETRY_WAIT]


def test_non_idempotent_create_is_not_retried_on_5xx_without_looking(stack):
    """A 503 on a create: the run looks before it creates again, and never creates twice."""
    stack.authentik.inject("503", method="POST", path_regex=r"^/api/v3/events/transports/$", count=-1)
    results = stack.converge()
    assert results[-1].get("failed") and "transport" in results[-1]["msg"], results[-1]
    posts = [e for e in stack.authentik.log if e.method == "POST" and e.path == "/api/v3/events/transports/"]
    assert len(posts) == 2  # create_attempts, each after a fresh look
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
    for result in [run_module("pangolin_resource", dict(stack.pangolin_conn(), resource_id=stack.resource_id,
                                                        apply_rules=True)),
                   run_module("authentik_webhook_mapping", dict(
                       stack.authentik_conn(), name=HEADERS, template="pangolin_headers",
                       webhook_api_key=stack.env.webhook_key))]:
        assert not result.get("failed"), result.get("msg")
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
    """The rule is created first; if the chain then fails, the next run must take that rule back."""
    stack.authentik.inject("503", method="POST", path_regex=r"^/api/v3/propertymappings/notification/$",
                           skip=1, count=-1)  # the headers mapping passes, every body mapping fails
    results = stack.converge()
    assert results[-1].get("failed") and "webhook mapping" in results[-1]["msg"], results[-1]
    assert [r["priority"] for r in stack.pangolin.rules(stack.resource_id)] == [5, 100]
    stack.assert_settled()
