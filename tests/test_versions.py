"""The newest releases the README names: the whole chain against authentik 2026.8, as read from its source.

What changed for the collection in 2026.8 (its release notes and source): forwarded headers are honoured only from
trusted proxies, the right-most entry of a trusted proxy's ``X-Forwarded-For`` counts, the task API has one more
state (``waiting_for_dependencies``, which older versions refuse as a filter choice), and policy bindings answer
with ``expires``/``expiring``. The simulator follows those; here the collection runs on it end to end.
"""

import pytest

from tests.module_harness import run_module
from tests.playbook_env import PlaybookEnv, module_args

PLACEHOLDER = "0.0.0.0"


@pytest.fixture
def env():
    with PlaybookEnv(users=2, authentik_version="2026.8.2") as environment:
        yield environment


def ok(result):
    assert not result.get("failed"), result.get("msg")
    return result


def test_the_chain_runs_on_authentik_2026_8(env):
    managed = dict(manage_webhook_key=True)
    ok(run_module("login_ip_whitelist", module_args(env, **managed)))
    assert ok(run_module("login_ip_whitelist", module_args(env, **managed)))["changed"] is False
    # through a trusted proxy that appends: the right-most entry is the one the proxy saw
    env.authentik.login("user000", peer="10.9.8.7", forwarded_for="192.0.2.1, 203.0.113.20")
    assert env.authentik.wait_idle(60)
    assert env.addresses_of("user000") == ["203.0.113.20"]
    # a rotation asks the task API for unfinished webhooks, the 2026.8 state among them
    env.authentik.reset_log()
    ok(run_module("login_ip_whitelist", module_args(env, rotate_webhook_key=True, **managed)))
    asked = [e for e in env.authentik.log if e.path == "/api/v3/tasks/tasks/" and "aggregated_status" in e.query]
    assert asked and all(e.status == 200 for e in asked)
    assert any("waiting_for_dependencies" in e.query["aggregated_status"] for e in asked)
    env.authentik.login("user001", peer="10.9.8.7", forwarded_for="198.51.100.21")
    assert env.authentik.wait_idle(60)
    assert env.addresses_of("user001") == ["198.51.100.21"]
    report = ok(run_module("login_ip_whitelist_info", module_args(env, **managed)))
    assert report["healthy"], (report["problems"], [u["problems"] for u in report["users"]])
    ok(run_module("login_ip_whitelist_expire", module_args(env)))
    assert env.addresses_of("user000") == ["203.0.113.20"]


def test_authentik_2026_5_is_never_asked_for_the_2026_8_state():
    with PlaybookEnv(users=1, authentik_version="2026.5.0-rc1") as env:
        ok(run_module("login_ip_whitelist", module_args(env, manage_webhook_key=True)))
        env.authentik.reset_log()
        ok(run_module("login_ip_whitelist", module_args(env, manage_webhook_key=True, rotate_webhook_key=True)))
        asked = [e for e in env.authentik.log if e.path == "/api/v3/tasks/tasks/" and "aggregated_status" in e.query]
        assert asked and all(e.status == 200 for e in asked)
        assert not any("waiting_for_dependencies" in e.query["aggregated_status"] for e in asked)
