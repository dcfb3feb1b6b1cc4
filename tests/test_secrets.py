"""No key, token, key secret or password ever leaves a module or the role.

Every module runs in normal, check+diff and diff mode, and fails once against a
server that echoes everything it received (the Authorization header and the
body) back in its error; every whole result, failing ones included, is
searched for every secret: both keys and their secret halves, the authentik
token, the password, and the secret of every key the collection made itself
(read from the Pangolin simulator). A hand-written headers mapping is shown
redacted in every diff. A few real playbook runs at -vvv with --diff (a
converge, a dry run, and a failing run with a retry warning and a server
echoing a secret) are searched the same way, stdout and stderr.
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
REDACTED = "**REDACTED**"


def assert_no_secret(text, where="", secrets=SECRETS):
    for secret in secrets:
        assert secret not in text, (where, secret, text[max(0, text.find(secret) - 300):text.find(secret) + 300])


def known_secrets(env):
    """SECRETS and the secret of every key Pangolin holds, made by the collection or by a test, as far as
    this test has seen them (a rotated key is gone from Pangolin but not from the results it passed through)."""
    seen = env.__dict__.setdefault("seen_secrets", list(SECRETS))
    for key_id, key in list(env.pangolin.api_keys.items()):
        for secret in (key["secret"], "%s.%s" % (key_id, key["secret"])):
            if secret not in seen:
                seen.append(secret)
    return seen


def assert_clean(env, result, where):
    """A module result: no secret anywhere in it, no traceback; returns it."""
    text = json.dumps(result)
    assert_no_secret(text, where, known_secrets(env))
    assert "Traceback" not in text, (where, text[-3000:])
    return result


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
    """Every module, in an order where each finds what it needs; (step, module, args)."""
    p, a = pangolin_conn(env), authentik_conn(env)
    rid = env.resource_id
    users = [{"username": u} for u in env.usernames]
    return [
        ("pangolin_resource", "pangolin_resource", dict(p, resource_id=rid, apply_rules=True)),
        ("pangolin_rule", "pangolin_rule", dict(p, resource_id=rid, priority=10, match="CIDR",
                                                value="192.168.1.0/24")),
        ("pangolin_resource_info", "pangolin_resource_info", dict(p, org_id="homelab", name="Jellyfin")),
        ("authentik_org_policy", "authentik_org_policy", dict(p, idp_name="authentik", org_id="homelab",
                                                              role="Member", org_mapping_group="jellyfin",
                                                              auto_provision=True)),
        ("authentik_group", "authentik_group", dict(a, name="viewers", attributes={"note": "plain"})),
        ("authentik_user", "authentik_user", dict(a, username="carol", name="Carol", groups=["viewers"],
                                                  password=PASSWORD, update_password="always")),
        ("authentik_user_info", "authentik_user_info", dict(a, usernames=["carol", "user000"])),
        ("authentik_webhook_mapping", "authentik_webhook_mapping", dict(a, name=HEADERS, template="pangolin_headers",
                                                                        webhook_api_key=WEBHOOK_KEY)),
        ("authentik_webhook_mapping:body", "authentik_webhook_mapping", dict(a, name="body-10",
                                                                             template="pangolin_rule_body",
                                                                             priority=10)),
        ("authentik_notification_transport", "authentik_notification_transport", dict(
            a, name="t-10", webhook_url=env.pangolin.base_url + "/v1/resource/%d/rule/1" % rid,
            body_mapping="body-10", headers_mapping=HEADERS)),
        ("authentik_notification_rule", "authentik_notification_rule", dict(a, name="r-10", transports=["t-10"],
                                                                             login_of_user="user000")),
        # The role's call: the webhook key given.
        ("login_ip_whitelist", "login_ip_whitelist", dict(p, **dict(a, resource_id=rid, webhook_api_key=WEBHOOK_KEY,
                                                                    users=users))),
        # A second deployment whose webhook key the collection makes, then rotates: secrets it learns itself.
        ("login_ip_whitelist:managed_key", "login_ip_whitelist", dict(p, **dict(
            a, resource_id=rid, instance="managed", manage_webhook_key=True, users=users, priority_start=200))),
        ("login_ip_whitelist:rotated_key", "login_ip_whitelist", dict(p, **dict(
            a, resource_id=rid, instance="managed", manage_webhook_key=True, rotate_webhook_key=True, users=users,
            priority_start=200))),
        ("login_ip_whitelist_info", "login_ip_whitelist_info", dict(p, **dict(a, resource_id=rid, users=users))),
        ("login_ip_whitelist_info:managed_key", "login_ip_whitelist_info", dict(p, **dict(
            a, resource_id=rid, instance="managed", manage_webhook_key=True, users=users))),
        ("login_ip_whitelist_expire", "login_ip_whitelist_expire", dict(p, **dict(a, resource_id=rid, expire_days=0,
                                                                                  users=users))),
    ]


MODULES = ["pangolin_resource", "pangolin_rule", "pangolin_resource_info", "authentik_org_policy", "authentik_group",
           "authentik_user", "authentik_user_info", "authentik_webhook_mapping", "authentik_notification_transport",
           "authentik_notification_rule", "login_ip_whitelist", "login_ip_whitelist_info", "login_ip_whitelist_expire"]


def managed_key_secrets(env):
    """The secrets of the keys the collection made (every key but the two the test seeded)."""
    seeded = set(k.split(".", 1)[0] for k in (PANGOLIN_KEY, WEBHOOK_KEY))
    return [k["secret"] for key_id, k in env.pangolin.api_keys.items() if key_id not in seeded]


@pytest.mark.parametrize("check,diff", [(False, False), (True, True), (False, True)], ids=["normal", "check-diff",
                                                                                         "diff"])
def test_every_module_keeps_secrets_in_every_mode(env, check, diff):
    seen = set()
    for step, name, args in steps(env):
        result = assert_clean(env, run_module(name, args, check=check, diff=diff), step)
        assert not result.get("failed"), (step, result.get("msg"))
        seen.add(name)
        if diff and result.get("changed") and name not in ("pangolin_resource_info", "authentik_user_info"):
            assert result.get("diff"), step
        if diff and result.get("changed") and name == "login_ip_whitelist":
            # The headers mapping is in the diff, its key is not.
            headers = [d for d in result["diff"] if d["before_header"].endswith("/headers'")]
            assert headers and all(REDACTED in json.dumps(d) for d in headers), (step, headers)
    assert seen == set(MODULES)
    if check:
        assert managed_key_secrets(env) == []  # check mode makes no key
        return
    # The collection made a key, then a new one for the rotation: both were searched for above
    # (each as <id>.<secret> and as its secret alone), and the rotated-out one is gone from Pangolin.
    assert len(known_secrets(env)) == len(SECRETS) + 2 * 2, known_secrets(env)
    assert len(managed_key_secrets(env)) == 1
    # The headers mapping shows up redacted, never in clear, also when it is only read back.
    again = assert_clean(env, run_module("authentik_webhook_mapping", dict(authentik_conn(env), name=HEADERS,
                                                                           state="absent"), check=True, diff=True),
                         "headers mapping, absent")
    assert again["changed"] and REDACTED in json.dumps(again["diff"])
    # Rerun of everything: no-op results carry no secret either.
    for step, name, args in steps(env):
        if not step.endswith(":rotated_key"):
            result = assert_clean(env, run_module(name, args, diff=True), step + " (rerun)")
            assert not result.get("failed"), (step, result.get("msg"))


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
    ("login_ip_whitelist", "authentik", "POST", r"/propertymappings/"),  # the headers mapping, with the key
    ("login_ip_whitelist:managed_key", "authentik", "POST", r"/propertymappings/"),  # with the key just made
    ("login_ip_whitelist_info", "authentik", "GET", r"/events/events/"),
    ("login_ip_whitelist_expire", "authentik", "GET", r"/events/transports/"),
]


@pytest.mark.parametrize("step,sim_name,method,path_regex", FAILING, ids=[f[0] for f in FAILING])
def test_failing_module_scrubs_what_the_server_echoes(env, step, sim_name, method, path_regex):
    sim = getattr(env, sim_name)
    for label, name, args in steps(env):
        if label == step:
            echo_everything(sim, method, path_regex)
            result = assert_clean(env, run_module(name, args, diff=True), label)
            assert result.get("failed"), (label, result)
            assert "rejected" in result["msg"] and REDACTED in result["msg"], result["msg"]
            if step.endswith(":managed_key"):
                assert managed_key_secrets(env), "the key was not made before the echo"
            return
        result = assert_clean(env, run_module(name, args), label)
        assert not result.get("failed"), (label, result.get("msg"))
    raise AssertionError("step %s not in the steps" % step)


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
    result = assert_clean(env, run_module("pangolin_resource", dict(pangolin_conn(env), retries=1,
                                                                    resource_id=env.resource_id, apply_rules=True)),
                          "retry warning")
    assert not result.get("failed"), result.get("msg")
    assert "retry 1 of 1" in json.dumps(result["warnings"])


# -- a hand-written headers mapping ------------------------------------------------------------

def diffs_of(result):
    diff = result.get("diff") or []
    return diff if isinstance(diff, list) else [diff]


def test_a_hand_written_headers_mapping_is_redacted_in_every_diff(env):
    """A mapping someone wrote by hand, sending a key no module option names: every diff of it hides the key,
    whether a module writes it, reads it, replaces it or deletes it."""
    hand_key = env.pangolin.add_api_key(org_id="homelab", actions=["updateResourceRule"])
    name = "hand-written headers"
    expression = 'return {"Authorization": "Bearer %s"}' % hand_key
    a, p = authentik_conn(env), pangolin_conn(env)
    whitelist = dict(p, **dict(a, resource_id=env.resource_id, headers_mapping=name,
                               users=[{"username": u} for u in env.usernames]))
    runs = [
        ("mapping created (check)", "authentik_webhook_mapping", dict(a, name=name, expression=expression), True),
        ("mapping created", "authentik_webhook_mapping", dict(a, name=name, expression=expression), False),
        ("mapping changed by hand", "authentik_webhook_mapping",
         dict(a, name=name, expression=expression.replace("}", ', "X-Note": "by hand"}')), False),
        ("whitelist using it as it is", "login_ip_whitelist", whitelist, False),
        ("doctor reading it", "login_ip_whitelist_info", whitelist, False),
        ("whitelist taking it over (check)", "login_ip_whitelist", dict(whitelist, webhook_api_key=WEBHOOK_KEY), True),
        ("whitelist taking it over", "login_ip_whitelist", dict(whitelist, webhook_api_key=WEBHOOK_KEY), False),
        ("mapping written by hand again", "authentik_webhook_mapping", dict(a, name=name, expression=expression),
         False),
        ("mapping deleted (check)", "authentik_webhook_mapping", dict(a, name=name, state="absent"), True),
        ("mapping deleted", "authentik_webhook_mapping", dict(a, name=name, state="absent"), False),
    ]
    for where, module, args, check in runs:
        result = assert_clean(env, run_module(module, args, check=check, diff=True), where)
        assert not result.get("failed"), (where, result.get("msg"))
        mine = [d for d in diffs_of(result) if name in d.get("before_header", "")]
        if module == "authentik_webhook_mapping" or "taking it over" in where:
            assert result["changed"] and mine, (where, result)
        for diff in mine:
            for side in ("before", "after"):
                if diff[side]:
                    assert str(diff[side].get("expression", "")).startswith(REDACTED), (where, side, diff)
        if where == "whitelist using it as it is":
            assert [d for d in diffs_of(result) if name in d.get("before_header", "")] == []  # used, not written
            env.login("user000", "203.0.113.90")  # and it works: authentik sends the hand-written key
            assert env.rule_of("user000")["value"] == "203.0.113.90"
    assert hand_key.split(".", 1)[1] in known_secrets(env)


# -- playbook runs -----------------------------------------------------------------------------

def playbook_text(env, **kwargs):
    rc, _parsed, out, err = env.run(verbosity=3, diff=True, stdout_callback="default", **kwargs)
    assert_no_secret(out + err, "playbook output", known_secrets(env))
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
        assert env.authentik.wait_idle(30) and env.rule_of("user000")["value"] == "203.0.113.80"
        rc, text = playbook_text(env, playbook="doctor.yml")
        assert rc == 0, text[-3000:]
        assert "user000: OK" in text and "203.0.113.80" in text
        rc, text = playbook_text(env, playbook="expire.yml", check=True)
        assert rc == 0, text[-3000:]
        inventory = env.inventory(jellyfin_whitelist_expire_users=["user000"])
        rc, text = playbook_text(env, playbook="expire.yml", inventory=inventory)
        assert rc == 0, text[-3000:]
        assert env.rule_of("user000")["value"] == "0.0.0.0"


# -- what is hidden: whole secrets, never words -----------------------------------------------------------------
def test_a_password_is_hidden_whole_and_never_by_a_part_after_a_dot():
    """A Pangolin key hides its secret half too; a password with a dot is one secret, not two."""
    from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.client import Secrets

    secrets = Secrets()
    secrets.add("hunter.pass")  # a password
    secrets.add_key(PANGOLIN_KEY)
    assert secrets.scrub("password_set for hunter.pass") == "password_set for " + REDACTED
    assert secrets.scrub("the half: " + PANGOLIN_KEY.split(".", 1)[1]) == "the half: " + REDACTED
    assert "pass" not in secrets.values() and secrets.scrub("password_set") == "password_set"


def test_a_users_password_with_a_dot_leaves_the_result_readable(env):
    result = run_module("authentik_user", dict(authentik_conn(env), username="dora", password="hunter.pass"),
                        diff=True)
    assert not result.get("failed"), result.get("msg")
    assert result["password_set"] is True and "hunter.pass" not in json.dumps(result)
    assert REDACTED not in json.dumps(dict((k, v) for k, v in result.items() if k != "invocation"))


def test_a_hand_written_headers_mapping_hides_its_key_and_not_its_words_or_urls():
    from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.client import Secrets

    key = "handkey00000009.k3ysecretk3ysecretk3ysecretk3ysecret1234"
    expression = ('token = "%s"\nreturn {"Authorization": "Bearer " + token, "X-Forwarded-Host": '
                  '"https://jellyfin.example.com/web/index.html", "Content-Type": "application/json"}' % key)
    secrets = Secrets()
    secrets.add_credentials(expression)
    assert key in secrets.values() and key.split(".", 1)[1] in secrets.values()
    text = secrets.scrub(expression)
    for word in ("Authorization", "X-Forwarded-Host", "https://jellyfin.example.com/web/index.html",
                 "application/json", "Content-Type"):
        assert word in text, word
    assert key not in text and key.split(".", 1)[1] not in text
