"""No key, token, key secret or password ever leaves a module or the role.

Every module runs in normal, check and diff mode and fails once against a
server that echoes everything it received (the Authorization header and the
body) back in its error; every whole result is searched for every secret.
A few real playbook runs at -vvv with --diff (a converge, a dry run, and a
failing run with a retry warning and a server echoing a secret) are searched
the same way, stdout and stderr.
"""

import json

import pytest

from tests.module_harness import run_module
from tests.playbook_env import AUTHENTIK_TOKEN, PANGOLIN_KEY, WEBHOOK_KEY, PlaybookEnv
from tests.simulators.base import Response

PASSWORD = "pw-Sup3rSecretPassw0rd-42"
HEADERS = "jellyfin-whitelist pangolin headers"
SECRETS = [PANGOLIN_KEY, PANGOLIN_KEY.split(".", 1)[1], WEBHOOK_KEY, WEBHOOK_KEY.split(".", 1)[1], AUTHENTIK_TOKEN,
           PASSWORD]


def assert_no_secret(text, where=""):
    for secret in SECRETS:
        assert secret not in text, (where, secret, text[max(0, text.find(secret) - 300):text.find(secret) + 300])




@pytest.fixture
def env():
    with PlaybookEnv(users=2) as environment:
        environment.idp = environment.pangolin.add_idp("authentik")
        environment.authentik.add_group("jellyfin")
        yield environment


def pangolin_conn(env):
    return dict(pangolin_url=env.pangolin.base_url, pangolin_api_key=PANGOLIN_KEY, retries=0)


def authentik_conn(env):
    return dict(authentik_url=env.authentik.base_url, authentik_token=AUTHENTIK_TOKEN, retries=0)


def steps(env):
    """Every module, in an order where each finds what it needs; (module, args)."""
    p, a = pangolin_conn(env), authentik_conn(env)
    rid = env.resource_id
    return [
        ("pangolin_resource", dict(p, resource_id=rid, apply_rules=True)),
        ("pangolin_rule", dict(p, resource_id=rid, priority=10, match="CIDR", value="192.168.1.0/24")),
        ("pangolin_resource_info", dict(p, org_id="homelab", name="Jellyfin")),
        ("authentik_org_policy", dict(p, idp_name="authentik", org_id="homelab", role="Member",
                                      org_mapping_group="jellyfin", auto_provision=True)),
        ("authentik_group", dict(a, name="viewers", attributes={"note": "plain"})),
        ("authentik_user", dict(a, username="carol", name="Carol", groups=["viewers"], password=PASSWORD,
                                update_password="always")),
        ("authentik_user_info", dict(a, usernames=["carol", "user000"])),
        ("authentik_webhook_mapping", dict(a, name=HEADERS, template="pangolin_headers", webhook_api_key=WEBHOOK_KEY)),
        ("authentik_webhook_mapping", dict(a, name="body-10", template="pangolin_rule_body", priority=10)),
        ("authentik_notification_transport", dict(a, name="t-10", webhook_url=env.pangolin.base_url + "/v1/resource/"
                                                  "%d/rule/1" % rid, body_mapping="body-10",
                                                  headers_mapping=HEADERS)),
        ("authentik_notification_rule", dict(a, name="r-10", transports=["t-10"], login_of_user="user000")),
        ("login_ip_whitelist", dict(p, **dict(a, resource_id=rid, headers_mapping=HEADERS,
                                              users=[{"username": u} for u in env.usernames]))),
        ("login_ip_whitelist_info", dict(p, **dict(a, resource_id=rid, headers_mapping=HEADERS,
                                                   users=[{"username": u} for u in env.usernames]))),
        ("login_ip_whitelist_expire", dict(p, **dict(a, resource_id=rid, expire_days=0,
                                                     users=[{"username": u} for u in env.usernames]))),
    ]


MODULES = ["pangolin_resource", "pangolin_rule", "pangolin_resource_info", "authentik_org_policy", "authentik_group",
           "authentik_user", "authentik_user_info", "authentik_webhook_mapping", "authentik_notification_transport",
           "authentik_notification_rule", "login_ip_whitelist", "login_ip_whitelist_info", "login_ip_whitelist_expire"]


@pytest.mark.parametrize("check,diff", [(False, False), (True, True), (False, True)], ids=["normal", "check-diff",
                                                                                         "diff"])
def test_every_module_keeps_secrets_in_every_mode(env, check, diff):
    seen = set()
    for name, args in steps(env):
        result = run_module(name, args, check=check, diff=diff)
        assert not result.get("failed"), (name, result.get("msg"))
        seen.add(name)
        if diff and result.get("changed") and name not in ("pangolin_resource_info", "authentik_user_info"):
            assert result.get("diff"), name
    assert seen == set(MODULES)
    if not check:
        # The headers mapping shows up redacted, never in clear, also when it is only read back.
        again = run_module("authentik_webhook_mapping", dict(authentik_conn(env), name=HEADERS, state="absent"),
                           check=True, diff=True)
        assert again["changed"] and "REDACTED" in json.dumps(again["diff"])
        # Rerun of everything: no-op results carry no secret either.
        for name, args in steps(env):
            run_module(name, args, diff=True)


def echo_everything(sim, method=None, path_regex=None):
    """Make the simulator reject matching requests, echoing the request's credentials and body."""
    import re

    original = sim.handle

    def handle(request, _orig=original):
        if (method is None or request.method == method) and (path_regex is None or re.search(path_regex,
                                                                                             request.path)):
            echo = "rejected %s %s with %s: %s" % (request.method, request.path, request.headers.get("authorization"),
                                                 request.raw_body.decode("utf-8", "replace"))
            return Response(400, {"message": echo, "detail": echo, "non_field_errors": [echo]})
        return _orig(request)

    sim.handle = handle
    return original


# Each module, failing on the request that carries the most secrets.
FAILING = [
    ("pangolin_resource", "pangolin", "POST", None),
    ("pangolin_rule", "pangolin", "PUT", None),
    ("pangolin_resource_info", "pangolin", "GET", None),
    ("authentik_org_policy", "pangolin", "PUT", None),
    ("authentik_group", "authentik", "POST", None),
    ("authentik_user", "authentik", "POST", r"/core/users/$"),
    ("authentik_user_info", "authentik", "GET", r"/core/users/"),
    ("authentik_webhook_mapping", "authentik", "POST", None),
    ("authentik_notification_transport", "authentik", "POST", None),
    ("authentik_notification_rule", "authentik", "POST", r"/events/rules/"),
    ("login_ip_whitelist", "authentik", "POST", r"/propertymappings/"),
    ("login_ip_whitelist_info", "authentik", "GET", r"/events/events/"),
    ("login_ip_whitelist_expire", "authentik", "GET", r"/events/transports/"),
]


@pytest.mark.parametrize("module,sim_name,method,path_regex", FAILING, ids=[f[0] for f in FAILING])
def test_failing_module_scrubs_what_the_server_echoes(env, module, sim_name, method, path_regex):
    sim = getattr(env, sim_name)
    for name, args in steps(env):
        if name == module:
            if module == "authentik_webhook_mapping" and args.get("template") != "pangolin_headers":
                continue
            echo_everything(sim, method, path_regex)
            result = run_module(name, args, diff=True)
            assert result.get("failed"), (name, result)
            assert "rejected" in result["msg"] and "REDACTED" in result["msg"], result["msg"]
            return
        assert not run_module(name, args).get("failed"), name
    raise AssertionError("module %s not in the steps" % module)


def test_a_secret_echoed_in_a_retry_warning_is_scrubbed(env):
    """A transient failure whose answer repeats the key: the warning must not carry it."""
    original = env.pangolin.handle
    calls = []

    def handle(request, _orig=original):
        if request.method == "GET" and not calls:
            calls.append(1)
            return Response(503, {"message": "overloaded, try again: %s" % request.headers.get("authorization")})
        return _orig(request)

    env.pangolin.handle = handle
    result = run_module("pangolin_resource", dict(pangolin_conn(env), retries=1, resource_id=env.resource_id,
                                                  apply_rules=True))
    assert not result.get("failed"), result.get("msg")
    assert "retry 1 of 1" in json.dumps(result["warnings"])


# -- playbook runs -----------------------------------------------------------------------------

def playbook_text(env, **kwargs):
    rc, _parsed, out, err = env.run(verbosity=3, diff=True, stdout_callback="default", **kwargs)
    assert_no_secret(out + err, "playbook output")
    assert "Traceback" not in out + err, out[-3000:]
    return rc, out + err


def test_playbook_at_vvv_with_diff_keeps_secrets():
    with PlaybookEnv(users=2) as env:
        inventory = env.inventory(authentik_groups=["jellyfin"], authentik_users=[
            {"username": "user000", "groups": ["jellyfin"], "password": PASSWORD}])
        rc, text = playbook_text(env, inventory=inventory, check=True)
        assert rc == 0, text[-3000:]
        rc, text = playbook_text(env, inventory=inventory)
        assert rc == 0, text[-3000:]
        assert "REDACTED" in text  # the headers mapping's diff is shown, its key is not


def test_failing_playbook_with_retry_and_echoed_secret_keeps_secrets():
    with PlaybookEnv(users=2) as env:
        # A retry warning on the user lookup, then authentik refusing the user by echoing
        # everything it was sent: its token, and a display name that contains the token too.
        env.authentik.inject("503", method="GET", path_regex=r"^/api/v3/core/users/$")
        echo_everything(env.authentik, "POST", r"^/api/v3/core/users/$")
        inventory = env.inventory(authentik_users=[
            {"username": "echo", "name": "Echo %s" % AUTHENTIK_TOKEN, "password": PASSWORD}])
        rc, text = playbook_text(env, inventory=inventory)
        assert rc != 0
        assert "rejected POST /api/v3/core/users/" in text, text[-3000:]
        assert "HTTP 503" in text and "retry 1 of 3" in text, text[-3000:]


def test_doctor_and_expire_playbooks_at_vvv_keep_secrets():
    with PlaybookEnv(users=2) as env:
        rc, text = playbook_text(env)
        assert rc == 0, text[-3000:]
        env.authentik.login("user000", "203.0.113.80")
        rc, text = playbook_text(env, playbook="doctor.yml")
        assert rc == 0, text[-3000:]
        assert "user000: OK" in text
        rc, text = playbook_text(env, playbook="expire.yml", check=True)
        assert rc == 0, text[-3000:]
        inventory = env.inventory(jellyfin_whitelist_expire_users=["user000"])
        rc, text = playbook_text(env, playbook="expire.yml", inventory=inventory)
        assert rc == 0, text[-3000:]
        assert env.rule_of("user000")["value"] == "0.0.0.0"
