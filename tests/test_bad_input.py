"""Bad input never reaches the servers: one clear message naming the option and the value, no write.

Each row of ``CASES`` is one kind of bad input for one module, run in-process
against both simulators, in normal and in check mode; a few role-level rows
run the real playbook. Every row must fail with a message that names the
offending option (and value, unless the value is a secret), without a
traceback, a secret, or any write on either simulator. Some rows are refused
by Ansible itself (types, choices, the ``users`` suboptions): its message is
the one checked there.
"""

import json

import pytest

from tests.module_harness import run_module
from tests.playbook_env import AUTHENTIK_TOKEN, PlaybookEnv

PREFIX = "jellyfin-whitelist-"
HEADERS = "jellyfin-whitelist pangolin headers"
DROP = object()  # an override that removes the option
FOREIGN_PRIORITY = 5
LONG_INSTANCE = "i" * 65


@pytest.fixture(scope="module")
def world():
    env = PlaybookEnv(users=2)
    env.add_user("a'b")
    env.tcp_resource = env.pangolin.add_resource("homelab", "Minecraft", mode="tcp")
    env.idp = env.pangolin.add_idp("authentik")
    env.pangolin.add_rule(env.resource_id, "DROP", "CIDR", "10.0.0.0/8", FOREIGN_PRIORITY)
    env.group = env.authentik.add_group("jellyfin")
    result = run_module("authentik_webhook_mapping", dict(
        authentik_url=env.authentik.base_url, authentik_token=AUTHENTIK_TOKEN, name=HEADERS,
        template="pangolin_headers", webhook_api_key=env.webhook_key))
    assert not result.get("failed"), result.get("msg")
    result = run_module("authentik_webhook_mapping", dict(
        authentik_url=env.authentik.base_url, authentik_token=AUTHENTIK_TOKEN, name="body",
        template="pangolin_rule_body", priority=50))
    assert not result.get("failed"), result.get("msg")
    env.secrets = [env.pangolin_key, env.webhook_key, AUTHENTIK_TOKEN, env.pangolin_key.split(".", 1)[1],
                   env.webhook_key.split(".", 1)[1], "wrongkey0000001.nottherightsecret", "nottherightsecret",
                   "wrong-authentik-token-0000"]
    yield env
    env.close()


# -- base arguments per module ------------------------------------------------------------

def pangolin_conn(w):
    return dict(pangolin_url=w.pangolin.base_url, pangolin_api_key=w.pangolin_key, retries=0)


def authentik_conn(w):
    return dict(authentik_url=w.authentik.base_url, authentik_token=AUTHENTIK_TOKEN, retries=0)


BASE = {
    "login_ip_whitelist": lambda w: dict(
        pangolin_conn(w), **dict(authentik_conn(w), resource_id=w.resource_id, headers_mapping=HEADERS,
                                 users=[{"username": "user000"}, {"username": "user001", "priority": 120}])),
    "login_ip_whitelist_info": lambda w: dict(
        pangolin_conn(w), **dict(authentik_conn(w), resource_id=w.resource_id, users=[{"username": "user000"}])),
    "login_ip_whitelist_expire": lambda w: dict(
        pangolin_conn(w), **dict(authentik_conn(w), resource_id=w.resource_id, users=[{"username": "user000"}])),
    "pangolin_rule": lambda w: dict(pangolin_conn(w), resource_id=w.resource_id, priority=10, match="CIDR",
                                    value="192.168.1.0/24"),
    "pangolin_resource": lambda w: dict(pangolin_conn(w), resource_id=w.resource_id, apply_rules=True),
    "authentik_org_policy": lambda w: dict(pangolin_conn(w), idp_name="authentik", org_id="homelab", role="Member",
                                           org_mapping_group="jellyfin"),
    "authentik_webhook_mapping": lambda w: dict(authentik_conn(w), name="m1", template="pangolin_headers",
                                                webhook_api_key=w.webhook_key),
    "authentik_notification_transport": lambda w: dict(authentik_conn(w), name="t1",
                                                       webhook_url="https://pangolin.example.com/v1/x",
                                                       body_mapping="body"),
    "authentik_notification_rule": lambda w: dict(authentik_conn(w), name="r1", login_of_user="user000"),
    "authentik_user": lambda w: dict(authentik_conn(w), username="newuser"),
    "authentik_group": lambda w: dict(authentik_conn(w), name="g1"),
}


def users(*entries):
    return {"users": list(entries)}


U0 = {"username": "user000"}

# (id, module, overrides, fragments the message must contain)
CASES = [
    # -- options Ansible itself checks -------------------------------------------------------
    ("missing-users", "login_ip_whitelist", {"users": DROP}, ["users"]),
    ("missing-priority", "pangolin_rule", {"priority": DROP}, ["priority"]),
    ("priority-start-not-int", "login_ip_whitelist", {"priority_start": "abc"}, ["priority_start", "abc"]),
    ("action-not-a-choice", "login_ip_whitelist", {"action": "DROP"}, ["action", "DROP"]),
    ("match-lowercase", "pangolin_rule", {"match": "cidr"}, ["match", "cidr"]),
    ("resource-id-and-resource", "login_ip_whitelist", {"resource": "Jellyfin", "org_id": "homelab"},
     ["resource_id", "resource"]),
    ("resource-without-org", "pangolin_resource", {"resource_id": DROP, "resource": "Jellyfin"},
     ["resource", "org_id"]),
    # -- the users list -------------------------------------------------------------------------
    # ansible-core alone would echo every secret option in clear here; the modules refuse it first.
    ("user-not-a-dict", "login_ip_whitelist", users("user000"), ["users", "'user000'"]),
    # Ansible's own suboption validation: username required, known keys only, state a choice.
    ("user-without-username", "login_ip_whitelist", users({"priority": 100}),
     ["missing required arguments: username", "users"]),
    ("user-unknown-key", "login_ip_whitelist", users(dict(U0, prio=3)), ["users.prio", "username"]),
    ("user-username-empty", "login_ip_whitelist", users({"username": ""}), ["users[0].username", "''"]),
    ("username-newline", "login_ip_whitelist", users({"username": "bad\nname"}),
     ["users[0].username", "bad\\nname", "control character"]),
    ("username-listed-twice", "login_ip_whitelist", users(U0, U0), ["users[1]", "'user000'", "twice"]),
    ("user-state-invalid", "login_ip_whitelist", users(dict(U0, state="gone")),
     ["value of state must be one of: present, absent, got: gone", "users"]),
    ("priority-not-int", "login_ip_whitelist", users(dict(U0, priority="abc")), ["priority", "users", "'abc'"]),
    ("priority-bool", "login_ip_whitelist", users(dict(U0, priority=True)), ["priority", "True"]),
    ("priority-out-of-range", "login_ip_whitelist", users(dict(U0, priority=2 ** 40)),
     ["priority", str(2 ** 40), "out of range"]),
    ("duplicate-priorities", "login_ip_whitelist",
     users(dict(U0, priority=130), {"username": "user001", "priority": 130}), ["priority 130", "user000"]),
    ("priority-of-foreign-rule", "login_ip_whitelist", users(dict(U0, priority=FOREIGN_PRIORITY)),
     ["priority %d" % FOREIGN_PRIORITY, "collides", "does not own"]),
    ("unknown-user", "login_ip_whitelist", users(U0, {"username": "nobody"}), ["users", "'nobody'"]),
    ("username-with-code", "login_ip_whitelist", users({"username": "x'); import os; os.system('id') #"}),
     ["users", "import os"]),
    # -- ranges, placeholder, URLs, names ---------------------------------------------------------
    ("priority-range-reversed", "login_ip_whitelist", {"priority_start": 900, "priority_end": 100},
     ["priority_start 900", "priority_end 100"]),
    ("priority-range-out-of-range", "login_ip_whitelist", {"priority_end": 2 ** 40},
     ["priority_end", str(2 ** 40)]),
    ("placeholder-not-ip", "login_ip_whitelist", {"placeholder": "not-an-ip"}, ["placeholder", "'not-an-ip'"]),
    ("placeholder-cidr", "login_ip_whitelist", {"placeholder": "10.0.0.0/8"}, ["placeholder", "10.0.0.0/8"]),
    # a placeholder a client can connect from would let that address in through every placeholder rule
    ("placeholder-a-client-address", "login_ip_whitelist", {"placeholder": "192.0.2.1"},
     ["placeholder", "'192.0.2.1'", "connect from"]),
    ("placeholder-loopback", "login_ip_whitelist", {"placeholder": "127.0.0.1"}, ["placeholder", "'127.0.0.1'"]),
    ("placeholder-mapped-loopback", "login_ip_whitelist", {"placeholder": "::ffff:127.0.0.1"},
     ["placeholder", "'::ffff:127.0.0.1'", "connect from"]),
    ("expire-placeholder-a-client-address", "login_ip_whitelist_expire", {"placeholder": "198.51.100.7"},
     ["placeholder", "'198.51.100.7'", "connect from"]),
    ("webhook-url-underscore", "login_ip_whitelist", {"webhook_url": "http://pan_golin:3003"},
     ["webhook_url", "pan_golin"]),
    ("webhook-url-not-http", "login_ip_whitelist", {"webhook_url": "ftp://pangolin.example.com"},
     ["webhook_url", "ftp://pangolin.example.com"]),
    ("transport-url-with-space", "authentik_notification_transport",
     {"webhook_url": "https://pangolin.example.com/a b"}, ["webhook_url", "a b"]),
    ("name-prefix-newline", "login_ip_whitelist", {"name_prefix": "x\ny"}, ["name_prefix", "x\\ny"]),
    ("name-prefix-empty", "login_ip_whitelist", {"name_prefix": "  "}, ["name_prefix", "'  '"]),
    ("group-name-empty", "authentik_group", {"name": ""}, ["name", "''"]),
    ("unknown-headers-mapping", "login_ip_whitelist", {"headers_mapping": "no such mapping"},
     ["headers_mapping", "'no such mapping'"]),
    ("unknown-body-mapping", "authentik_notification_transport", {"body_mapping": "no such body"},
     ["body_mapping", "'no such body'"]),
    ("mapping-expression-syntax", "authentik_webhook_mapping",
     {"template": DROP, "webhook_api_key": DROP, "expression": "return {"}, ["expression"]),
    ("mapping-body-without-priority", "authentik_webhook_mapping",
     {"template": "pangolin_rule_body", "webhook_api_key": DROP}, ["priority", "pangolin_rule_body"]),
    ("rule-value-for-match", "pangolin_rule", {"value": "1.2.3.4"}, ["value", "'1.2.3.4'"]),
    ("rule-on-tcp-resource", "pangolin_rule", {"resource_id": "TCP"}, ["resource", "tcp"]),
    ("resource-id-negative", "pangolin_resource", {"resource_id": -1}, ["resource_id", "-1"]),
    ("user-unknown-group", "authentik_user", {"groups": ["no-such-group"]}, ["groups", "'no-such-group'"]),
    ("rule-unknown-login-user", "authentik_notification_rule", {"login_of_user": "ghost"},
     ["login_of_user", "'ghost'"]),
    ("rule-unknown-destination-group", "authentik_notification_rule",
     {"destination_event_user": False, "destination_group": "no-such-group"},
     ["destination_group", "'no-such-group'"]),
    # -- Pangolin objects that do not exist -------------------------------------------------------
    ("unknown-resource-id", "login_ip_whitelist", {"resource_id": 999}, ["999"]),
    ("unknown-resource-name", "login_ip_whitelist",
     {"resource_id": DROP, "resource": "nope.example.com", "org_id": "homelab"}, ["'nope.example.com'"]),
    ("unknown-org", "pangolin_resource", {"resource_id": DROP, "resource": "Jellyfin", "org_id": "no-such-org"},
     ["'no-such-org'"]),
    ("unknown-idp", "authentik_org_policy", {"idp_name": "no-such-idp"}, ["idp_name", "'no-such-idp'"]),
    # -- connection: URLs, keys, tokens -----------------------------------------------------------
    ("pangolin-url-not-url", "pangolin_resource", {"pangolin_url": "pangolin.example.com"},
     ["pangolin_url", "'pangolin.example.com'"]),
    ("authentik-url-with-query", "authentik_group", {"authentik_url": "http://127.0.0.1:9/?x=1"},
     ["authentik_url", "?x=1"]),
    ("pangolin-url-unreachable", "login_ip_whitelist", {"pangolin_url": "http://127.0.0.1:9"},
     ["pangolin_url", "http://127.0.0.1:9"]),
    ("authentik-url-unreachable", "authentik_group", {"authentik_url": "http://127.0.0.1:9"},
     ["authentik_url", "http://127.0.0.1:9"]),
    ("pangolin-url-is-authentik", "login_ip_whitelist", {"pangolin_url": "AUTHENTIK"}, ["pangolin_url"]),
    ("authentik-url-is-pangolin", "login_ip_whitelist", {"authentik_url": "PANGOLIN"}, ["authentik_url"]),
    ("pangolin-key-without-dot", "pangolin_resource", {"pangolin_api_key": "nottherightsecret"},
     ["pangolin_api_key", "<key id>.<secret>"]),
    ("pangolin-key-wrong", "login_ip_whitelist", {"pangolin_api_key": "wrongkey0000001.nottherightsecret"},
     ["pangolin_api_key", "401"]),
    ("authentik-token-wrong", "login_ip_whitelist", {"authentik_token": "wrong-authentik-token-0000"},
     ["authentik_token", "403"]),
    ("webhook-key-without-dot", "authentik_webhook_mapping", {"webhook_api_key": "nottherightsecret"},
     ["webhook_api_key"]),
    ("timeout-zero", "pangolin_resource", {"timeout": 0}, ["timeout", "0"]),
    # -- the managed webhook key, IPv6, the doctor and expiry ------------------------------------
    ("ipv6-prefix-too-long", "login_ip_whitelist", {"ipv6_prefix": 129}, ["ipv6_prefix", "129"]),
    ("ipv6-prefix-negative", "login_ip_whitelist", {"ipv6_prefix": -64}, ["ipv6_prefix", "-64"]),
    ("managed-and-given-webhook-key", "login_ip_whitelist", {"manage_webhook_key": True,
                                                             "webhook_api_key": "rulekey00000009.abc"},
     ["manage_webhook_key", "webhook_api_key"]),
    ("rotate-without-managed-key", "login_ip_whitelist", {"rotate_webhook_key": True},
     ["rotate_webhook_key", "manage_webhook_key"]),
    ("webhook-key-name-empty", "login_ip_whitelist", {"manage_webhook_key": True, "webhook_key_name": ""},
     ["webhook_key_name", "''"]),
    ("doctor-recent-logins-zero", "login_ip_whitelist_info", {"recent_logins": 0}, ["recent_logins", "0"]),
    ("doctor-ipv6-prefix", "login_ip_whitelist_info", {"ipv6_prefix": 200}, ["ipv6_prefix", "200"]),
    ("doctor-user-not-a-dict", "login_ip_whitelist_info", users("user000"), ["users", "'user000'"]),
    ("doctor-user-state-invalid", "login_ip_whitelist_info", users(dict(U0, state="gone")), ["state", "gone"]),
    ("expire-days-negative", "login_ip_whitelist_expire", {"expire_days": -3}, ["expire_days", "-3"]),
    ("expire-unknown-user", "login_ip_whitelist_expire", {"expire_users": ["ghost"]}, ["expire_users", "'ghost'"]),
    ("expire-placeholder-not-ip", "login_ip_whitelist_expire", {"placeholder": "none"}, ["placeholder", "'none'"]),
    ("retries-negative", "authentik_group", {"retries": -1}, ["retries", "-1"]),
    # -- the deployment's name, addresses per user, users per rule, expiry ------------------------
    ("instance-bad-characters", "login_ip_whitelist", {"instance": "jelly/fin"}, ["instance", "'jelly/fin'"]),
    ("instance-space", "login_ip_whitelist_info", {"instance": "jelly fin"}, ["instance", "'jelly fin'"]),
    ("instance-leading-dash", "login_ip_whitelist_expire", {"instance": "-jellyfin"}, ["instance", "'-jellyfin'"]),
    ("instance-too-long", "login_ip_whitelist", {"instance": LONG_INSTANCE}, ["instance", repr(LONG_INSTANCE)]),
    ("max-addresses-zero", "login_ip_whitelist", {"max_addresses": 0}, ["max_addresses", "got 0"]),
    ("max-addresses-21", "login_ip_whitelist", {"max_addresses": 21}, ["max_addresses", "got 21"]),
    ("max-addresses-not-int", "login_ip_whitelist", {"max_addresses": "x"}, ["max_addresses", "'x'"]),
    ("doctor-max-addresses-zero", "login_ip_whitelist_info", {"max_addresses": 0}, ["max_addresses", "got 0"]),
    ("users-per-rule-zero", "login_ip_whitelist", {"users_per_rule": 0}, ["users_per_rule", "got 0"]),
    ("whitelist-expire-days-negative", "login_ip_whitelist", {"expire_days": -1}, ["expire_days", "got -1"]),
    # -- the login e-mail ---------------------------------------------------------------------------
    ("login-email-both-recipients", "login_ip_whitelist", {"login_email": {"group": "jellyfin", "to_user": True}},
     ["login_email", "exactly one recipient"]),
    ("login-email-no-recipient", "login_ip_whitelist", {"login_email": {"subject_prefix": "[jellyfin]"}},
     ["login_email", "exactly one recipient"]),
    ("login-email-unknown-key", "login_ip_whitelist", {"login_email": {"to_user": True, "grop": "jellyfin"}},
     ["login_email", "grop"]),
    # Ansible's own type check names the option and the type it got.
    ("login-email-not-a-dict", "login_ip_whitelist", {"login_email": ["jellyfin"]},
     ["login_email", "list", "dict"]),
    # -- the key authentik sends is never the playbook's own --------------------------------------
    ("webhook-key-is-the-playbooks-key", "login_ip_whitelist", {"webhook_api_key": "PANGOLIN_KEY"},
     ["webhook_api_key", "pangolin_api_key", "own Pangolin key"]),
    # -- TLS per server -----------------------------------------------------------------------------
    ("pangolin-validate-certs-not-bool", "login_ip_whitelist", {"pangolin_validate_certs": "maybe"},
     ["pangolin_validate_certs", "'maybe'"]),
    ("authentik-ca-path-missing", "login_ip_whitelist", {"authentik_ca_path": "/nonexistent/authentik-ca.pem"},
     ["authentik_ca_path", "/nonexistent/authentik-ca.pem"]),
    # -- timeout and retries per server: the server's own option is named, not the shared one -------
    ("pangolin-timeout-zero", "login_ip_whitelist", {"pangolin_timeout": 0}, ["pangolin_timeout", "0"]),
    ("authentik-timeout-not-int", "authentik_group", {"authentik_timeout": "soon"},
     ["authentik_timeout", "'soon'"]),
    ("authentik-retries-negative", "login_ip_whitelist", {"authentik_retries": -1}, ["authentik_retries", "-1"]),
    ("pangolin-retries-negative", "pangolin_rule", {"pangolin_retries": -2}, ["pangolin_retries", "-2"]),
]

REAL_RUN_ONLY = {"unknown-headers-mapping", "unknown-body-mapping", "rule-on-tcp-resource", "user-unknown-group"}


def build_args(world, module, overrides):
    args = BASE[module](world)
    for key, value in overrides.items():
        if value is DROP:
            args.pop(key, None)
        elif value == "AUTHENTIK":
            args[key] = world.authentik.base_url
        elif value == "PANGOLIN":
            args[key] = world.pangolin.base_url
        elif value == "TCP":
            args[key] = world.tcp_resource
        elif value == "PANGOLIN_KEY":
            args[key] = world.pangolin_key
        else:
            args[key] = value
    return args


def assert_refused(world, result, fragments):
    """Refused, no secret, no traceback, no write; returns the fragments the message misses."""
    text = json.dumps(result)
    assert result.get("failed"), result
    msg = result.get("msg") or ""
    for secret in world.secrets:
        assert secret not in text, secret
    assert "Traceback" not in text and not msg.startswith("unexpected error"), text[:3000]
    assert world.pangolin.writes() == [] and world.authentik.writes() == [], (
        [(e.method, e.path) for e in world.pangolin.writes() + world.authentik.writes()])
    return [(fragment, msg) for fragment in fragments if fragment not in msg]


NEW_OPTIONS = ("instance", "max_addresses", "users_per_rule", "expire_days", "login_email", "webhook_api_key",
               "pangolin_validate_certs", "authentik_ca_path", "pangolin_timeout", "pangolin_retries",
               "authentik_timeout", "authentik_retries")


def test_table_covers_enough_kinds():
    assert len(CASES) >= 67 + 19  # the kinds the table had, and those of the new options
    assert len(set(case[0] for case in CASES)) == len(CASES)
    covered = set(key for case in CASES for key in case[2])
    assert set(NEW_OPTIONS) <= covered, set(NEW_OPTIONS) - covered


def case_params():
    return [pytest.param(*case[1:], id=case[0]) for case in CASES]


@pytest.mark.parametrize("module,overrides,fragments", case_params())
def test_bad_input_is_refused_before_any_write(request, world, module, overrides, fragments):
    world.pangolin.reset_log()
    world.authentik.reset_log()
    result = run_module(module, build_args(world, module, overrides))
    missing = assert_refused(world, result, fragments)
    if request.node.callspec.id not in REAL_RUN_ONLY:
        # Check mode refuses the same input the same way (REAL_RUN_ONLY: check mode cannot tell, an
        # earlier task may create the object; rules are only created for real).
        result = run_module(module, build_args(world, module, overrides), check=True)
        missing += assert_refused(world, result, fragments)
    assert missing == [], missing


def test_usernames_with_quotes_work(world):
    """A username with a quote is valid in authentik: it must simply work, login included."""
    args = build_args(world, "login_ip_whitelist", users({"username": "a'b", "priority": 300}))
    world.pangolin.reset_log()
    result = run_module("login_ip_whitelist", args)
    assert not result.get("failed"), result.get("msg")
    assert [u["priority"] for u in result["users"]] == [300]
    world.login("a'b", "198.51.100.77")  # waits until authentik's worker delivered
    rule = world.rule_of("a'b")
    assert rule["value"] == "198.51.100.77" and rule["priority"] == 300
    # Clean up for the other rows, which expect no object of this user to get in the way.
    args["users"] = [{"username": "a'b", "state": "absent"}]
    assert not run_module("login_ip_whitelist", args).get("failed")
    assert not [r for r in world.pangolin.rules(world.resource_id) if r["priority"] == 300]


def test_an_unknown_login_email_group_is_refused_before_any_write():
    """On its own pair of simulators: a write it made would disturb the shared world."""
    with PlaybookEnv(users=2) as env:
        env.secrets = [env.pangolin_key, env.webhook_key, AUTHENTIK_TOKEN, env.pangolin_key.split(".", 1)[1],
                       env.webhook_key.split(".", 1)[1]]
        args = dict(pangolin_conn(env), **dict(authentik_conn(env), resource_id=env.resource_id,
                                               webhook_api_key=env.webhook_key, users=[U0],
                                               login_email={"group": "no-such-group"}))
        for check in (True, False):
            result = run_module("login_ip_whitelist", args, check=check)
            assert assert_refused(env, result, ["login_email.group", "'no-such-group'"]) == []


# -- role level: the playbook refuses before any write ----------------------------------------

ROLE_CASES = [
    pytest.param(dict(jellyfin_whitelist_resource=None, jellyfin_whitelist_org_id=None),
                 "Check that the Jellyfin resource is named", ["jellyfin_whitelist_resource_id"], id="no-resource"),
    pytest.param(dict(jellyfin_whitelist_users=[{"username": "user000", "priority": "abc"}]),
                 "Validating arguments", ["priority", "abc"], id="user-priority-not-int"),
    pytest.param(dict(jellyfin_whitelist_users=[{"username": "user000", "state": "gone"}]),
                 "Validating arguments", ["state", "gone"], id="user-state-invalid"),
    # The role's own argument check catches it first, naming the role variable.
    pytest.param(dict(jellyfin_whitelist_users=["user000"]), "Validating arguments",
                 ["jellyfin_whitelist_users", "unable to convert to dict"], id="user-not-a-dict"),
]


@pytest.mark.parametrize("overrides,task,fragments", ROLE_CASES)
def test_role_refuses_bad_inventory_before_any_write(overrides, task, fragments):
    with PlaybookEnv(users=2) as env:
        inventory = env.inventory(**overrides)
        rc, parsed, out, err = env.run(inventory=inventory)
        assert rc != 0
        failed = [r for r in env.task_results(parsed, task) if r and r.get("failed")]
        assert failed, (task, out[-3000:])
        msg = failed[-1]["msg"] if isinstance(failed[-1]["msg"], str) else json.dumps(failed[-1]["msg"])
        for fragment in fragments:
            assert fragment in msg, (fragment, msg)
        assert "Traceback" not in out + err
        for secret in (env.pangolin_key.split(".", 1)[1], env.webhook_key.split(".", 1)[1], AUTHENTIK_TOKEN):
            assert secret not in out + err
        assert env.writes() == []


@pytest.mark.parametrize("overrides,fragments", [
    (dict(jellyfin_whitelist_placeholder="192.0.2.1"), ["placeholder '192.0.2.1'", "connect from"]),
    (dict(jellyfin_whitelist_webhook_url="http://pan_golin:3003"), ["webhook_url", "pan_golin"]),
    (dict(jellyfin_whitelist_priority_start=900, jellyfin_whitelist_priority_end=100),
     ["priority_start 900", "priority_end 100"]),
], ids=["placeholder", "webhook-url", "priority-range"])
def test_role_refuses_a_bad_whitelist_setting_before_the_users_step_writes(overrides, fragments):
    """The users step runs first and would create the new user: the whitelist's settings are checked before it,
    with the module's own checks, in a dry run as in a run."""
    with PlaybookEnv(users=1) as env:
        newcomer = {"username": "newcomer", "name": "New Comer"}
        inventory = env.inventory(users=[{"username": "user000"}, {"username": "newcomer"}],
                                  jellyfin_whitelist_authentik_users=[newcomer], **overrides)
        for check in (True, False):
            rc, parsed, out, err = env.run(inventory=inventory, check=check)
            assert rc != 0
            task, failed = env.failure(parsed)
            assert task.endswith("Check the whitelist's settings before anything is written"), (task, out[-2000:])
            for fragment in fragments:
                assert fragment in failed["msg"], (fragment, failed["msg"])
            assert "\n" not in failed["msg"].strip() and "Traceback" not in out + err
            assert env.writes() == [] and env.authentik.user_by_username("newcomer") is None
        # the same inventory without the bad setting: the users step does create the user
        good = env.inventory(users=[{"username": "user000"}, {"username": "newcomer"}],
                             jellyfin_whitelist_authentik_users=[newcomer])
        rc, parsed, out, _err = env.run(inventory=good)
        assert rc == 0, out[-3000:]
        assert env.authentik.user_by_username("newcomer") is not None


def test_role_refuses_duplicate_priorities_without_writing():
    """The role checks the whole user list before its first write, even on a fresh setup."""
    with PlaybookEnv(users=2) as env:
        inventory = env.inventory(users=[{"username": "user000", "priority": 200},
                                         {"username": "user001", "priority": 200}])
        rc, parsed, out, err = env.run(inventory=inventory)
        assert rc != 0
        task, failed = env.failure(parsed)
        assert "rule chain" in task
        assert "priority 200" in failed["msg"] and "user000" in failed["msg"], failed["msg"]
        assert "Traceback" not in out + err
        assert env.writes() == []


def test_role_refuses_a_missing_webhook_key_option_before_any_write():
    """Neither jellyfin_whitelist_webhook_api_key nor manage_webhook_key: refused before the first write."""
    with PlaybookEnv(users=2) as env:
        inventory = env.inventory(jellyfin_whitelist_webhook_api_key=None)
        rc, parsed, out, err = env.run(inventory=inventory)
        assert rc != 0
        task, failed = env.failure(parsed)
        assert task.endswith("Refuse to hand the playbook's own key to authentik"), task
        for fragment in ("jellyfin_whitelist_webhook_api_key", "jellyfin_whitelist_manage_webhook_key: true"):
            assert fragment in failed["msg"], (fragment, failed["msg"])
        assert "Traceback" not in out + err
        for secret in (env.pangolin_key.split(".", 1)[1], env.webhook_key.split(".", 1)[1], AUTHENTIK_TOKEN):
            assert secret not in out + err
        assert env.writes() == []


def test_role_only_warns_about_an_unknown_variable():
    """A misspelt jellyfin_whitelist_* variable is named in a warning; the run goes on and succeeds."""
    with PlaybookEnv(users=2) as env:
        inventory = env.inventory(jellyfin_whitelist_max_adresses=3)
        rc, parsed, out, err = env.run(inventory=inventory)
        assert rc == 0, out[-3000:]
        checked = env.task_results(parsed, "Warn about variables the role does not know")
        warnings = " ".join(str(w) for w in (checked[0] or {}).get("warnings") or [])
        assert "jellyfin_whitelist_max_adresses is not a variable of this role" in warnings, checked
        assert not env.failure(parsed)[0]
        assert sorted(env.whitelist_users(parsed)) == env.usernames
        assert [env.slot_name(u) for u in env.usernames] == sorted(
            t["name"] for t in env.authentik.transports.values())  # one address each: the typo changed nothing
