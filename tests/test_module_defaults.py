"""Both action groups' ``module_defaults`` in one play, each server with its own connection settings.

The ``login_ip_whitelist*`` modules belong to both groups (``group/homelab.pangolin_authentik.pangolin`` and
``group/homelab.pangolin_authentik.authentik``). Ansible merges the defaults of every group a module belongs to
into one set of arguments, the group listed later overwriting the earlier one key by key, and hands that set to
the module. So a key both groups set reaches a whitelist module once, with one group's value, and an unprefixed
connection option (``validate_certs``, ``ca_path``, ``timeout``, ``retries``) applies to both servers of the
module: a play that gives each group its own ``ca_path`` verifies one server against the other's CA. The
per-server options (``pangolin_ca_path``, ``authentik_timeout``, ...) do not collide: each group sets only its
server's, every module of a group has them, and each wins over the shared one for its server. That is the
supported form, and what the play here does.

Both simulators serve HTTPS, each with a certificate of its own CA, so a CA given to the wrong server fails.
"""

import pytest
import yaml

from tests.pki import make_pki
from tests.playbook_env import AUTHENTIK_TOKEN, PlaybookEnv

PANGOLIN_GROUP = "group/homelab.pangolin_authentik.pangolin"
AUTHENTIK_GROUP = "group/homelab.pangolin_authentik.authentik"
TASKS = ("Pangolin only", "authentik only", "Both servers")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    pangolin_pki = make_pki(tmp_path_factory.mktemp("pangolin-pki"))
    authentik_pki = make_pki(tmp_path_factory.mktemp("authentik-pki"))
    with PlaybookEnv(users=1, pangolin_pki=pangolin_pki, authentik_pki=authentik_pki) as environment:
        environment.pki = dict(pangolin=pangolin_pki, authentik=authentik_pki)
        yield environment


def connections(env, **overrides):
    """Each group's defaults: its server's URL, credentials and TLS, timeout and retries, all prefixed."""
    pangolin = dict(pangolin_url=env.pangolin.base_url, pangolin_api_key=env.pangolin_key,
                    pangolin_ca_path=env.pki["pangolin"]["ca"], pangolin_timeout=1, pangolin_retries=2)
    authentik = dict(authentik_url=env.authentik.base_url, authentik_token=AUTHENTIK_TOKEN,
                     authentik_ca_path=env.pki["authentik"]["ca"], authentik_timeout=2, authentik_retries=4)
    groups = {PANGOLIN_GROUP: pangolin, AUTHENTIK_GROUP: authentik}
    for group, changes in overrides.items():
        groups[group] = dict(groups[group], **changes)
    return groups


def run_play(env, module_defaults, name):
    play = [{
        "name": "Both groups' module defaults in one play",
        "hosts": "localhost",
        "gather_facts": False,
        "module_defaults": module_defaults,
        "tasks": [
            {"name": TASKS[0], "homelab.pangolin_authentik.pangolin_resource_info": {
                "org_id": "homelab", "name": "Jellyfin"}},
            {"name": TASKS[1], "homelab.pangolin_authentik.authentik_user_info": {"usernames": env.usernames}},
            {"name": TASKS[2], "homelab.pangolin_authentik.login_ip_whitelist_info": {
                "resource_id": env.resource_id, "users": [{"username": u} for u in env.usernames]}},
        ],
    }]
    playbook = env.workdir / ("%s.yml" % name)
    playbook.write_text(yaml.safe_dump(play, sort_keys=False))
    rc, parsed, out, err = env.run(playbook=str(playbook))
    assert parsed, (out[-3000:], err[-3000:])
    results = dict((task, (env.task_results(parsed, task) or [None])[0]) for task in TASKS)
    return rc, results, out + err


def test_each_group_gives_its_server_its_own_settings_in_one_play(env):
    env.pangolin.reset_log()
    env.authentik.reset_log()
    # One request of the whitelist module to each server gets no answer in time: the warnings of the retry
    # show which timeout and which number of retries that server's client had.
    env.pangolin.inject("timeout", method="GET", path_regex=r"^/v1/resource/\d+/rules$", skip=1, delay=2.5)
    env.authentik.inject("timeout", method="GET", path_regex=r"/admin/version/$", delay=3.5)
    rc, results, output = run_play(env, connections(env), "prefixed")
    assert rc == 0, output[-4000:]
    for task in TASKS:
        assert results[task] and not results[task].get("failed"), (task, results[task])
    assert [r["name"] for r in results[TASKS[0]]["resources"]] == ["Jellyfin"]
    assert [u["username"] for u in results[TASKS[1]]["users"]] == env.usernames
    assert [u["username"] for u in results[TASKS[2]]["users"]] == env.usernames

    # What each module was given: only its own server's options, whatever group they came from.
    args = dict((task, results[task]["invocation"]["module_args"]) for task in TASKS)
    assert args[TASKS[0]]["pangolin_timeout"] == 1 and args[TASKS[0]]["pangolin_retries"] == 2
    assert args[TASKS[1]]["authentik_timeout"] == 2 and args[TASKS[1]]["authentik_retries"] == 4
    both = args[TASKS[2]]
    assert (both["pangolin_ca_path"], both["authentik_ca_path"]) == (env.pki["pangolin"]["ca"],
                                                                      env.pki["authentik"]["ca"])
    assert (both["pangolin_timeout"], both["pangolin_retries"]) == (1, 2)
    assert (both["authentik_timeout"], both["authentik_retries"]) == (2, 4)
    assert (both["validate_certs"], both["ca_path"], both["timeout"], both["retries"]) == (True, None, 30, 3)

    # And what each server's client did with them.
    assert "Pangolin API: " in output and "failed (no answer within 1s (timeout)); retry 1 of 2" in output, output
    assert "authentik API: " in output and "failed (no answer within 2s (timeout)); retry 1 of 4" in output, output
    assert [e.fault for e in env.pangolin.log].count("timeout") == 1
    assert [e.fault for e in env.authentik.log].count("timeout") == 1


def test_an_unprefixed_option_set_per_group_reaches_a_whitelist_module_once_for_both_servers(env):
    """Each group's own ``ca_path``: right for the modules of one group, wrong for one server of the whitelist
    module, which gets the value of the group listed last (authentik's) for Pangolin too."""
    groups = connections(env)
    groups[PANGOLIN_GROUP]["ca_path"] = groups[PANGOLIN_GROUP].pop("pangolin_ca_path")
    groups[AUTHENTIK_GROUP]["ca_path"] = groups[AUTHENTIK_GROUP].pop("authentik_ca_path")
    rc, results, output = run_play(env, groups, "unprefixed")
    assert rc != 0
    assert not results[TASKS[0]].get("failed") and not results[TASKS[1]].get("failed"), output[-4000:]
    failed = results[TASKS[2]]
    assert failed.get("failed") and failed["invocation"]["module_args"]["ca_path"] == env.pki["authentik"]["ca"]
    assert "TLS verification of %s failed" % env.pangolin.base_url in failed["msg"], failed["msg"]


def test_a_servers_settings_come_from_its_environment_variables(env, tmp_path):
    """``PANGOLIN_CA_PATH``, ``AUTHENTIK_RETRIES``, ...: what the group defaults leave out."""
    groups = connections(env)
    for group in groups.values():
        for key in [k for k in group if not k.endswith(("_url", "_api_key", "_token"))]:
            del group[key]
    env.authentik.reset_log()
    env.authentik.inject("503", method="GET", path_regex=r"/core/users/$", count=1)
    variables = dict(PANGOLIN_CA_PATH=env.pki["pangolin"]["ca"], AUTHENTIK_CA_PATH=env.pki["authentik"]["ca"],
                     PANGOLIN_TIMEOUT="9", AUTHENTIK_RETRIES="5")
    playbook = tmp_path / "environment.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "Connection settings from the environment", "hosts": "localhost", "gather_facts": False,
        "module_defaults": groups,
        "tasks": [{"name": TASKS[1], "homelab.pangolin_authentik.authentik_user_info": {"usernames": env.usernames}},
                  {"name": TASKS[2], "homelab.pangolin_authentik.login_ip_whitelist_info": {
                      "resource_id": env.resource_id, "users": [{"username": u} for u in env.usernames]}}],
    }], sort_keys=False))
    rc, parsed, out, err = env.run(playbook=str(playbook), env=variables)
    assert rc == 0, (out[-3000:], err[-3000:])
    args = env.task_results(parsed, TASKS[2])[0]["invocation"]["module_args"]
    assert (args["pangolin_ca_path"], args["authentik_ca_path"]) == (env.pki["pangolin"]["ca"],
                                                                      env.pki["authentik"]["ca"])
    assert (args["pangolin_timeout"], args["authentik_retries"]) == (9, 5)
    assert "failed (HTTP 503); retry 1 of 5" in out + err, (out + err)[-3000:]


def test_the_role_gives_each_server_its_own_tls_settings(env):
    """``jellyfin_whitelist_ca_path`` for both servers, ``jellyfin_whitelist_authentik_ca_path`` over it for
    authentik: the role hands each server's modules that server's prefixed options, never the shared ones."""
    inventory = env.inventory(jellyfin_whitelist_ca_path=env.pki["pangolin"]["ca"],
                              jellyfin_whitelist_authentik_ca_path=env.pki["authentik"]["ca"])
    rc, parsed, out, err = env.run(inventory=inventory)
    assert rc == 0, (out[-3000:], err[-3000:])
    [whitelist] = env.task_results(parsed, "login → webhook → Pangolin rule chain")
    args = whitelist["invocation"]["module_args"]
    assert (args["pangolin_ca_path"], args["authentik_ca_path"]) == (env.pki["pangolin"]["ca"],
                                                                      env.pki["authentik"]["ca"])
    assert args["ca_path"] is None and args["validate_certs"] is True
    assert [u["username"] for u in whitelist["users"]] == env.usernames
