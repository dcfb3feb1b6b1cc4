"""The Pangolin simulator's request log, its clock, and the guard order of harmless probes.

Pangolin 1.22's gatekeeper logs every request it decides (section 12 of the Pangolin API
reference); the rows reach the table through a 5-second buffer and leave it by the org's
retention, and GET /v1/org/{orgId}/logs/request reads them. Every wait here is simulated:
``sim.clock.advance(seconds)``, never a sleep.
"""

import calendar
import json
import math
import time
from types import SimpleNamespace

import pytest
import requests

from tests.simulators.pangolin import ACTION_IDS, PangolinSimulator
from tests.simulators.pangolin_validation import js_date_parse

DAY = 86400


@pytest.fixture
def env(pangolin_server):
    """Org homelab with two http resources that apply rules, org other with one; a root key."""
    sim = pangolin_server
    sim.reset()
    sim.add_org("homelab", "Home Lab")
    sim.add_org("other")
    ns = SimpleNamespace(sim=sim, url=sim.base_url + "/v1", http=requests.Session())
    ns.res = sim.add_resource("homelab", "Jellyfin", subdomain="jellyfin", apply_rules=True)
    ns.res2 = sim.add_resource("homelab", "Grafana", subdomain="grafana", apply_rules=True)
    ns.foreign = sim.add_resource("other", "Wiki", subdomain="wiki", apply_rules=True)
    for rid in (ns.res, ns.res2, ns.foreign):
        sim.add_rule(rid, "DROP", "IP", "10.1.2.3", 1)
        sim.add_rule(rid, "ACCEPT", "CIDR", "10.0.0.0/8", 5)
    ns.key = sim.add_api_key(root=True)

    def call(method, path, key=ns.key, **kw):
        headers = kw.pop("headers", {})
        if key is not None:
            headers.setdefault("Authorization", "Bearer " + key)
        return ns.http.request(method, ns.url + path, headers=headers, timeout=5, **kw)

    def logs(query="", org="homelab", key=ns.key):
        resp = call("GET", "/org/%s/logs/request%s" % (org, query), key=key)
        assert resp.status_code == 200, resp.text
        return resp.json()["data"]

    ns.call, ns.logs = call, logs
    yield ns
    ns.http.close()


def msg(resp):
    return resp.json()["message"]


def iso(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def flushed(env):
    """Let the pending buffer's timer fire."""
    env.sim.clock.advance(6)


# -- the gatekeeper writes the log ------------------------------------------------------

def test_gatekeeper_logs_rule_decisions_with_reason_100_and_203(env):
    sim = env.sim
    assert sim.apply_rules_for(env.res, "10.9.8.7") == "ACCEPT"  # return value unchanged
    assert sim.apply_rules_for(env.res, "10.1.2.3") == "DROP"
    before = math.floor(sim.now())
    flushed(env)
    accept, drop = sim.request_audit_log("homelab")
    assert (accept["action"], accept["reason"], accept["ip"]) == (True, 100, "10.9.8.7")
    assert (drop["action"], drop["reason"], drop["ip"]) == (False, 203, "10.1.2.3")
    assert accept["resourceId"] == env.res and accept["orgId"] == "homelab"
    assert before - 1 <= accept["timestamp"] <= before
    assert (accept["host"], accept["path"], accept["method"], accept["tls"], accept["scheme"]) == \
        ("jellyfin.example.com", "/", "GET", True, "")
    assert accept["originalRequestURL"] == "https://jellyfin.example.com/"
    assert accept["actor"] is None and accept["actorType"] is None and accept["location"] is None


def test_undecided_requests_go_on_to_auth_and_are_logged_too(env):
    sim = env.sim
    assert sim.apply_rules_for(env.res, "192.0.2.1") is None  # no rule: SSO wants a login, none came
    env.call("POST", "/resource/%d" % env.res2, json={"sso": False})
    assert sim.apply_rules_for(env.res2, "192.0.2.1") is None  # no auth method at all
    sim.resources[env.foreign]["blockAccess"] = True
    assert sim.apply_rules_for(env.foreign, "10.9.8.7") == "ACCEPT"  # the rules' verdict...
    assert sim.apply_rules_for(env.res, "10.9.8.7", log=False) == "ACCEPT"  # not logged
    flushed(env)
    assert [(r["resourceId"], r["action"], r["reason"]) for r in sim.request_audit_log()] == [
        (env.res, False, 299), (env.res2, True, 101), (env.foreign, False, 202)]  # ...but blocked first


def test_request_helper_strips_the_port_and_records_the_past(env):
    sim = env.sim
    then = math.floor(sim.now()) - 3600
    assert sim.request(env.res, "10.9.8.7:51234", when=then, method="POST", path="/api",
                       headers={"User-Agent": "curl/8"}, query={"a": "1"}) == "ACCEPT"
    row, = sim.request_audit_log()  # a past request goes straight into the table
    assert (row["ip"], row["timestamp"], row["method"], row["path"], row["userAgent"]) == \
        ("10.9.8.7", then, "POST", "/api", "curl/8")
    assert json.loads(row["headers"]) == {"User-Agent": "curl/8"} and json.loads(row["query"]) == {"a": "1"}
    assert row["originalRequestURL"] == "https://jellyfin.example.com/api?a=1"
    sim.request(env.res, "[2001:db8::5]:443")
    flushed(env)
    assert sim.request_audit_log()[-1]["ip"] == "2001:db8::5"


# -- the write buffer ---------------------------------------------------------------------

def test_rows_reach_the_table_five_seconds_after_the_first(env):
    sim = env.sim
    sim.apply_rules_for(env.res, "10.9.8.7")
    sim.clock.advance(2)
    sim.apply_rules_for(env.res, "10.9.8.8")  # joins the pending flush
    assert sim.request_audit_log() == [] and len(sim.pending_request_audit_log()) == 2
    assert env.logs("?timeEnd=" + iso(sim.now() + 60))["log"] == []  # the API reads the table only
    sim.clock.advance(2)  # 4 s after the first row
    assert sim.request_audit_log() == []
    sim.clock.advance(1.5)
    assert [r["ip"] for r in sim.request_audit_log()] == ["10.9.8.7", "10.9.8.8"]
    assert [r["id"] for r in sim.request_audit_log()] == [1, 2] and sim.pending_request_audit_log() == []
    sim.apply_rules_for(env.res, "10.9.8.9")  # a new timer
    sim.clock.advance(4)
    assert len(sim.request_audit_log()) == 2
    # an API request applies what is due first
    sim.clock.offset += 2  # time passes by itself, as real time does: no advance() call
    assert [r["ip"] for r in env.logs("?timeEnd=" + iso(sim.now() + 60))["log"]] == \
        ["10.9.8.9", "10.9.8.8", "10.9.8.7"]


def test_the_hundredth_row_flushes_at_once_and_the_timer_keeps_running(env):
    sim = env.sim
    sim.apply_rules_for(env.res, "10.0.0.1")  # starts the 5-second timer
    sim.clock.advance(1)
    for n in range(2, 101):
        sim.apply_rules_for(env.res, "10.0.0.%d" % n)
    assert len(sim.request_audit_log()) == 100 and sim.pending_request_audit_log() == []
    sim.apply_rules_for(env.res, "10.0.1.1")
    sim.clock.advance(3.5)  # 4.5 s after the first row
    assert len(sim.request_audit_log()) == 100
    sim.clock.advance(1)  # the first timer fires, not one 5 s after row 101
    assert len(sim.request_audit_log()) == 101


def test_retention_zero_logs_nothing(env):
    sim = env.sim
    sim.apply_rules_for(env.res, "10.9.8.7")
    flushed(env)
    sim.set_log_retention("homelab", 0)
    sim.apply_rules_for(env.res, "10.9.8.7")
    sim.apply_rules_for(env.foreign, "10.9.8.7")  # other orgs still log
    assert [r["orgId"] for r in sim.pending_request_audit_log()] == ["other"]
    sim.clock.advance(4 * 3600)  # a cleanup leaves an org at 0 alone: its old rows stay
    assert [r["orgId"] for r in sim.request_audit_log()] == ["homelab", "other"]


def test_the_retention_setting_is_cached_for_five_minutes(env):
    sim = env.sim
    sim.apply_rules_for(env.res, "10.9.8.7")  # reads 7 and caches it
    sim.set_log_retention("homelab", 0, invalidate_cache=False)  # a database edit, no cache drop
    sim.clock.advance(299)
    sim.apply_rules_for(env.res, "10.9.8.8")
    sim.clock.advance(2)
    sim.apply_rules_for(env.res, "10.9.8.9")
    flushed(env)
    assert [r["ip"] for r in sim.request_audit_log()] == ["10.9.8.7", "10.9.8.8"]
    sim.set_log_retention("homelab", 7)  # as the org update route does: the cache is dropped
    sim.apply_rules_for(env.res, "10.9.8.9")
    assert len(sim.pending_request_audit_log()) == 1


# -- retention cleanup on the clock -----------------------------------------------------------

def test_cleanup_runs_every_three_hours_and_keeps_the_retention(env):
    sim = env.sim
    sim.set_log_retention("homelab", 1)
    now = math.floor(sim.now())
    sim.request(env.res, "10.0.0.1", when=now - DAY - 3600)  # older than a day
    sim.request(env.res, "10.0.0.2", when=now - DAY + 3 * 3600 + 60)  # a day old just after the first run
    sim.request(env.foreign, "10.0.0.3", when=now - 6 * DAY)  # org other keeps 7 days
    sim.clock.advance(3 * 3600 - 60)
    assert len(sim.request_audit_log()) == 3  # no cleanup before three hours
    sim.clock.advance(120)
    assert [r["ip"] for r in sim.request_audit_log()] == ["10.0.0.2", "10.0.0.3"]
    sim.clock.advance(3 * 3600 - 120)  # the next run is at six hours
    assert [r["ip"] for r in sim.request_audit_log()] == ["10.0.0.2", "10.0.0.3"]
    sim.clock.advance(240)
    assert [r["ip"] for r in sim.request_audit_log()] == ["10.0.0.3"]
    sim.clock.advance(DAY)
    assert sim.request_audit_log() == []


def test_minus_one_keeps_forever_and_9001_keeps_until_the_end_of_next_year(env):
    sim = env.sim
    sim.set_log_retention("homelab", -1)
    sim.set_log_retention("other", 9001)
    now = math.floor(sim.now())
    year = time.gmtime(now).tm_year
    last_year = calendar.timegm((year - 1, 1, 1, 0, 0, 0))
    sim.request(env.res, "10.0.0.1", when=now - 400 * DAY)
    sim.request(env.foreign, "10.0.0.2", when=last_year + 3600)  # last year: kept
    sim.request(env.foreign, "10.0.0.3", when=last_year - 3600)  # the year before: gone
    sim.clock.advance(3 * 3600 + 1)
    assert [r["ip"] for r in sim.request_audit_log()] == ["10.0.0.1", "10.0.0.2"]


def test_reset_brings_the_clock_back(env):
    sim = env.sim
    sim.clock.advance(10 * DAY)
    with pytest.raises(ValueError):
        sim.clock.advance(-1)
    sim.reset()
    assert abs(sim.now() - time.time()) < 5 and sim.request_audit_log() == []
    sim.clock.freeze()
    frozen = sim.now()
    time.sleep(0.01)
    assert sim.now() == frozen and sim.clock.advance(3) == frozen + 3
    sim.clock.unfreeze()
    assert sim.now() >= frozen + 3


# -- GET /org/{orgId} carries the setting ----------------------------------------------------

def test_get_org_returns_the_retention(env):
    org = env.call("GET", "/org/homelab").json()["data"]["org"]
    assert org["settingsLogRetentionDaysRequest"] == 7
    env.sim.set_log_retention("homelab", 30)
    assert env.call("GET", "/org/homelab").json()["data"]["org"]["settingsLogRetentionDaysRequest"] == 30
    env.sim.add_org("quiet", log_retention_days=0)
    assert env.call("GET", "/org/quiet").json()["data"]["org"]["settingsLogRetentionDaysRequest"] == 0
    assert env.call("GET", "/orgs").json()["data"]["orgs"][0]["settingsLogRetentionDaysRequest"] == 30


# -- the query route ------------------------------------------------------------------------

def test_query_guards(env):
    path = "/org/homelab/logs/request"
    no_view = env.sim.add_api_key(org_id="homelab", actions=["getOrg"])
    resp = env.call("GET", path, key=no_view)
    assert (resp.status_code, msg(resp)) == (403, "Key does not have permission perform this action")
    foreign = env.sim.add_api_key(org_id="other", actions=["viewLogs"])
    resp = env.call("GET", path, key=foreign)
    assert (resp.status_code, msg(resp)) == (403, "Key does not have access to this organization")
    # the org check runs before the action check, and both before the query is parsed
    resp = env.call("GET", path + "?bogus=1", key=env.sim.add_api_key(org_id="other", actions=[]))
    assert (resp.status_code, msg(resp)) == (403, "Key does not have access to this organization")
    assert env.call("GET", path, key=None).status_code == 401
    viewer = env.sim.add_api_key(org_id="homelab", actions=["viewLogs"])
    resp = env.call("GET", path, key=viewer)
    assert (resp.status_code, msg(resp)) == (200, "Request audit logs retrieved successfully")
    # a root key passes the org check: an unknown org is simply empty
    assert env.logs(org="nowhere")["log"] == []


@pytest.mark.parametrize("query,message", [
    ("?ip=10.0.0.1", 'Unrecognized key: "ip"'),
    ("?page=1&sort=asc", 'Unrecognized keys: "page", "sort"'),
    ("?timeStart=yesterday", 'timeStart must be a valid ISO date string at "timeStart"'),
    ("?timeEnd=2026-13-01", 'timeEnd must be a valid ISO date string at "timeEnd"'),
    ("?limit=0", 'Too small: expected number to be >0 at "limit"'),
    ("?limit=", 'Too small: expected number to be >0 at "limit"'),
    ("?limit=2.5", 'Invalid input: expected int, received number at "limit"'),
    ("?offset=-1", 'Too small: expected number to be >=0 at "offset"'),
    ("?reason=abc", 'Invalid input: expected number, received NaN at "reason"'),
    ("?resourceId=0", 'Too small: expected number to be >0 at "resourceId"'),
    ("?method=HEAD", 'Invalid option: expected one of "GET"|"POST"|"PUT"|"DELETE"|"PATCH" at "method"'),
    ("?actor=a&actor=b", 'Invalid input: expected string, received array at "actor"'),
    ("?limit=0&reason=x&nope=1", 'Invalid input: expected number, received NaN at "reason"; '
                                 'Too small: expected number to be >0 at "limit"; '
                                 'Unrecognized key: "nope"'),  # the schema's order, unknown names last
])
def test_query_is_strict(env, query, message):
    resp = env.call("GET", "/org/homelab/logs/request" + query)
    assert (resp.status_code, msg(resp)) == (400, "Validation error: " + message)


def test_query_defaults_and_exclusive_bounds(env):
    sim = env.sim
    sim.clock.freeze()
    sim.clock.advance(math.floor(sim.now()) + 1.5 - sim.now())  # the middle of a second
    now = math.floor(sim.now())
    midnight_7 = (now // DAY - 7) * DAY  # getSevenDaysAgo(): midnight, seven days back
    for ip, when in (("10.0.0.1", midnight_7), ("10.0.0.2", midnight_7 + 1), ("10.0.0.3", now - 10),
                     ("10.0.0.4", now)):
        sim.request(env.res, ip, when=when)
    data = env.logs()
    # defaults: from midnight seven days ago to now, both bounds exclusive (this second is out)
    assert [r["ip"] for r in data["log"]] == ["10.0.0.3", "10.0.0.2"]
    assert data["pagination"] == {"total": 2, "limit": 1000, "offset": 0}
    data = env.logs("?timeStart=%s&timeEnd=%s" % (iso(midnight_7 + 1), iso(now - 10)))
    assert data["log"] == []
    data = env.logs("?timeStart=%s&timeEnd=%s" % (iso(midnight_7), iso(now - 9)))
    assert [r["ip"] for r in data["log"]] == ["10.0.0.3", "10.0.0.2"]
    sim.clock.advance(1)
    assert [r["ip"] for r in env.logs()["log"]] == ["10.0.0.4", "10.0.0.3", "10.0.0.2"]


def test_query_rows_carry_the_resource(env):
    sim = env.sim
    sim.request(env.res, "10.9.8.7", when=math.floor(sim.now()) - 60)
    row, = env.logs()["log"]
    assert list(row) == ["id", "timestamp", "orgId", "action", "reason", "actorType", "actor", "actorId",
                         "resourceId", "siteResourceId", "ip", "location", "userAgent", "metadata", "headers",
                         "query", "originalRequestURL", "scheme", "host", "path", "method", "tls",
                         "resourceName", "resourceNiceId"]
    assert (row["resourceName"], row["resourceNiceId"], row["reason"], row["action"]) == \
        ("Jellyfin", "jellyfin", 100, True)
    del sim.resources[env.res]  # a resource that is gone: the row stays, its name is null
    row, = env.logs()["log"]
    assert (row["resourceId"], row["resourceName"], row["resourceNiceId"]) == (env.res, None, None)
    assert env.logs()["filterAttributes"]["resources"] == []


def test_query_filters(env):
    sim = env.sim
    t = math.floor(sim.now()) - 600
    sim.request(env.res, "10.9.8.7", when=t)  # 100
    sim.request(env.res, "10.1.2.3", when=t + 1)  # 203
    sim.request(env.res2, "10.9.8.7", when=t + 2, method="POST", path="/api")  # 100
    sim.request(env.res2, "192.0.2.1", when=t + 3)  # 299
    sim.request(env.foreign, "10.9.8.7", when=t + 4)  # another org: never listed

    def ips(query):
        return [(r["resourceId"], r["ip"]) for r in env.logs(query)["log"]]

    assert ips("?reason=100") == [(env.res2, "10.9.8.7"), (env.res, "10.9.8.7")]
    assert ips("?action=true") == ips("?reason=100")
    assert ips("?action=false") == [(env.res2, "192.0.2.1"), (env.res, "10.1.2.3")]
    assert ips("?action=yes") == ips("?action=false")  # anything but "true" is false
    assert ips("?resourceId=%d" % env.res2) == [(env.res2, "192.0.2.1"), (env.res2, "10.9.8.7")]
    assert ips("?host=grafana.example.com&method=POST") == [(env.res2, "10.9.8.7")]
    assert ips("?path=/api") == [(env.res2, "10.9.8.7")]
    assert len(ips("?actor=&location=&path=")) == 4  # empty strings filter nothing
    assert ips("?actor=alice") == []
    assert ips("?resourceId=%d" % env.foreign) == []


def test_query_orders_newest_first_and_pages(env):
    sim = env.sim
    t = math.floor(sim.now()) - 600
    for n, when in enumerate((t, t + 5, t + 5, t + 9)):
        sim.request(env.res, "10.0.0.%d" % (n + 1), when=when)
    order = [r["ip"] for r in env.logs()["log"]]
    assert order == ["10.0.0.4", "10.0.0.3", "10.0.0.2", "10.0.0.1"]  # one second: newest id first
    data = env.logs("?limit=2&offset=1")
    assert [r["ip"] for r in data["log"]] == ["10.0.0.3", "10.0.0.2"]
    assert data["pagination"] == {"total": 4, "limit": 2, "offset": 1}  # total before paging
    data = env.logs("?limit=2&offset=1&reason=100&timeStart=%s" % iso(t))
    assert data["pagination"]["total"] == 3 and [r["ip"] for r in data["log"]] == ["10.0.0.3", "10.0.0.2"]
    assert env.logs("?offset=10")["log"] == [] and env.logs("?offset=10")["pagination"]["total"] == 4


def test_filter_attributes_follow_the_window_only(env):
    sim = env.sim
    t = math.floor(sim.now()) - 600
    sim.request(env.res2, "10.9.8.7", when=t, path="/api")
    sim.request(env.res, "10.9.8.7", when=t + 1)
    sim.request(env.res, "10.1.2.3", when=t + 2, path="/api")
    sim.request(env.foreign, "10.9.8.7", when=t + 3, path="/wiki")
    sim.request(env.res, "10.9.8.7", when=t - 2 * DAY, path="/old")
    attrs = env.logs("?reason=203&timeStart=%s" % iso(t - 1))["filterAttributes"]
    assert attrs == {"actors": [], "locations": [], "hosts": ["grafana.example.com", "jellyfin.example.com"],
                     "paths": ["/api", "/"],
                     "resources": [{"id": env.res2, "name": "Grafana"}, {"id": env.res, "name": "Jellyfin"}]}


def test_the_route_came_with_pangolin_1_18():
    for version, status in (("1.14.1", 404), ("1.18.0", 200), ("1.22.0", 200)):
        sim = PangolinSimulator(version=version)
        with sim:
            sim.add_org("homelab")
            key = sim.add_api_key(root=True)
            resp = requests.get(sim.base_url + "/v1/org/homelab/logs/request",
                                headers={"Authorization": "Bearer " + key}, timeout=5)
            assert resp.status_code == status, version
            if status == 404:
                assert "Cannot GET /v1/org/homelab/logs/request" in resp.text
                assert resp.headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("text,expected", [
    ("2026-03-04T05:06:07Z", "2026-03-04 05:06:07"),
    ("2026-03-04T05:06:07.999Z", "2026-03-04 05:06:07"),
    ("2026-03-04T05:06:07+02:00", "2026-03-04 03:06:07"),
    ("2026-03-04", "2026-03-04 00:00:00"),
    ("2026-03", "2026-03-01 00:00:00"),
    ("2026", "2026-01-01 00:00:00"),
    ("2026-03-04T05:06", "2026-03-04 05:06:00"),
    ("2026-03-04 05:06:07", "2026-03-04 05:06:07"),
    ("2026/03/04", "2026-03-04 00:00:00"),
    ("Wed, 04 Mar 2026 05:06:07 GMT", "2026-03-04 05:06:07"),
    ("2026-02-30", "2026-03-02 00:00:00"),  # V8 rolls a day past the month's end over
])
def test_time_bounds_accept_what_date_parse_accepts(text, expected):
    ms = js_date_parse(text)
    assert time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms // 1000)) == expected


@pytest.mark.parametrize("text", ["yesterday", "", "2026-13-01", "2026-03-04T25:00:00Z", "-000000-01-01",
                                  "2026-03-04T05:06:07+0200x"])
def test_time_bounds_refuse_what_date_parse_refuses(text):
    assert js_date_parse(text) is None


# -- harmless probes: the guard order says which actions a key holds --------------------------

def state(sim):
    with sim.lock:
        return json.dumps([sim.resources, sim.policies, sim.policy_rules, sim.legacy_rules,
                           {k: dict(v, actions=sorted(v["actions"]) if v["actions"] != "all" else "all")
                            for k, v in sim.api_keys.items()}, sim.orgs], sort_keys=True, default=str)


def probes(env, own_id):
    r = env.res
    return [
        ("createResourceRule", "PUT", "/resource/%d/rule" % r, {}, 400,
         'Validation error: Invalid option: expected one of "ACCEPT"|"DROP"|"PASS" at "action"; '
         'Invalid option: expected one of "CIDR"|"IP"|"PATH"|"COUNTRY"|"COUNTRY_IS_NOT"|"ASN"|"REGION" at "match"; '
         'Invalid input: expected string, received undefined at "value"; '
         'Invalid input: expected number, received undefined at "priority"'),
        ("updateResourceRule", "POST", "/resource/%d/rule/0" % r, {}, 400,
         'Validation error: Too small: expected number to be >0 at "ruleId"'),
        ("deleteResourceRule", "DELETE", "/resource/%d/rule/0" % r, None, 400,
         'Validation error: Too small: expected number to be >0 at "ruleId"'),
        ("updateResource", "POST", "/resource/%d" % r, {}, 400,
         "Validation error: At least one field must be provided for update"),
        ("createApiKey", "PUT", "/org/homelab/api-key", {}, 400,
         'Validation error: Invalid input: expected string, received undefined at "name"'),
        ("setApiKeyActions", "POST", "/org/homelab/api-key/%s/actions" % own_id, {}, 400,
         'Validation error: Invalid input: expected tuple, received undefined at "actionIds"'),
        ("deleteApiKey", "DELETE", "/org/homelab/api-key/0", None, 404, "API Key with ID 0 not found"),
    ]


@pytest.mark.parametrize("index", range(7))
def test_write_probes_answer_by_the_action_held_and_change_nothing(env, index):
    sim = env.sim
    with_all = sim.add_api_key(root=True)
    own_id = with_all.split(".")[0]
    action, method, path, body, status, message = probes(env, own_id)[index]
    everything_but = sim.add_api_key(root=True, actions=[a for a in ACTION_IDS if a != action])
    before = state(sim)
    resp = env.call(method, path, key=everything_but, json=body)
    assert (resp.status_code, msg(resp)) == (403, "Key does not have permission perform this action")
    resp = env.call(method, path, key=with_all, json=body)
    assert (resp.status_code, msg(resp)) == (status, message)
    assert state(sim) == before


def test_write_probes_on_resources_work_for_an_org_key_too(env):
    sim = env.sim
    org_key = sim.add_api_key(org_id="homelab")
    before = state(sim)
    for action, method, path, body, status, message in probes(env, "x")[:4]:
        resp = env.call(method, path, key=org_key, json=body)
        assert (resp.status_code, msg(resp)) == (status, message), action
        resp = env.call(method, path.replace("/%d" % env.res, "/%d" % env.foreign, 1), key=org_key, json=body)
        assert (resp.status_code, msg(resp)) == (403, "Key does not have access to this organization")
    for action, method, path, body, status, message in probes(env, "x")[4:]:
        resp = env.call(method, path, key=org_key, json=body)
        assert (resp.status_code, msg(resp)) == (403, "Key does not have root access"), action
    assert state(sim) == before


def test_a_root_key_lists_its_own_actions(env):
    sim = env.sim
    key = sim.add_api_key(root=True, actions=["listApiKeyActions", "viewLogs"])
    own = "/org/homelab/api-key/%s/actions" % key.split(".")[0]
    data = env.call("GET", own, key=key).json()["data"]
    assert data == {"actions": [{"actionId": "listApiKeyActions"}, {"actionId": "viewLogs"}],
                    "pagination": {"total": 2, "limit": 1000, "offset": 0}}
    # the org in the path is not looked at
    assert env.call("GET", own.replace("homelab", "nowhere"), key=key).json()["data"] == data
    blind = sim.add_api_key(root=True, actions=["viewLogs"])
    resp = env.call("GET", "/org/homelab/api-key/%s/actions" % blind.split(".")[0], key=blind)
    assert (resp.status_code, msg(resp)) == (403, "Key does not have permission perform this action")


def test_list_orgs_needs_a_root_key_with_list_orgs(env):
    sim = env.sim
    for key in (sim.add_api_key(org_id="homelab"), sim.add_api_key(org_id="homelab", actions=[])):
        resp = env.call("GET", "/orgs", key=key)
        assert (resp.status_code, msg(resp)) == (403, "Key does not have root access")
    resp = env.call("GET", "/orgs", key=sim.add_api_key(root=True, actions=["getOrg"]))
    assert (resp.status_code, msg(resp)) == (403, "Key does not have permission perform this action")
    data = env.call("GET", "/orgs", key=sim.add_api_key(root=True, actions=["listOrgs"])).json()["data"]
    assert [o["orgId"] for o in data["orgs"]] == ["homelab", "other"]
    assert data["pagination"] == {"total": 2, "limit": 1000, "offset": 0}
    # listOrgs.ts: a plain z.object with limit > 0
    assert env.call("GET", "/orgs?page=2").status_code == 200
    assert msg(env.call("GET", "/orgs?limit=0")) == 'Validation error: Too small: expected number to be >0 at "limit"'
    data = env.call("GET", "/orgs?limit=1&offset=1").json()["data"]
    assert [o["orgId"] for o in data["orgs"]] == ["other"] and data["pagination"]["total"] == 2
