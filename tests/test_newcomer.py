"""The household as a newcomer sets it up from the README: the example inventory on an empty simulator pair.

The example inventory makes the authentik group ``jellyfin`` and its three people and lets them into two apps.
Every step is run twice on the same state, first with ``--check --diff``, then for real, and the dry run must
have predicted the run: every task's change, every user's status and what the users step did. Then a member is
removed in authentik, the doctor blames only who is concerned, expiry runs, and the teardown takes everything
the inventory made away, users and group included.
"""

import shutil
import sys

import pytest
import requests
import yaml

from tests.playbook_env import AUTHENTIK_TOKEN, REPO, PlaybookEnv

EXAMPLE = REPO / "inventory" / "example"
APPS = {"Jellyfin": "jellyfin", "Jellyseerr": "jellyseerr"}
PEOPLE = ["alice", "bob", "carol"]


def household_inventory(env):
    """The example inventory as a newcomer copies it, with the URLs and the vault's values filled in."""
    inventory = env.workdir / "mine"
    shutil.copytree(EXAMPLE, inventory)
    data = yaml.safe_load((inventory / "group_vars" / "all" / "main.yml").read_text())
    data.update(jellyfin_whitelist_authentik_url=env.authentik.base_url,
                jellyfin_whitelist_pangolin_url=env.pangolin.base_url)
    (inventory / "group_vars" / "all" / "main.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    (inventory / "group_vars" / "all" / "vault.yml").write_text(yaml.safe_dump(dict(
        vault_authentik_token=AUTHENTIK_TOKEN, vault_pangolin_api_key=env.pangolin_key)))
    hosts = yaml.safe_load((inventory / "hosts.yml").read_text())
    hosts["all"]["hosts"]["localhost"]["ansible_python_interpreter"] = sys.executable
    (inventory / "hosts.yml").write_text(yaml.safe_dump(hosts))
    return inventory


def edit(inventory, **changes):
    path = inventory / "group_vars" / "all" / "main.yml"
    data = yaml.safe_load(path.read_text())
    data.update(changes)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def outcome(env, parsed):
    """What a run did, in terms that check mode predicts: each task's changes, each user's status, the users
    step's per-user operations and groups joined, and the summary lines without "would"."""
    tasks = []
    for play in (parsed or {}).get("plays", []):
        for task in play.get("tasks", []):
            result = task["hosts"].get("localhost") or {}
            items = result.get("results")
            if items is not None:
                changed = [bool(r.get("changed")) for r in items if not r.get("skipped")]
            else:
                changed = None if result.get("skipped") else bool(result.get("changed"))
            tasks.append((task["task"]["name"], changed, bool(result.get("failed"))))
    done = [r for r in env.task_results(parsed, "login → webhook → Pangolin rule chain") if r and "users" in r]
    users = dict((e["username"], e["status"]) for e in done[-1]["users"]) if done else {}
    step = [(r.get("username"), r.get("operation"), tuple(r.get("groups_added") or ()))
            for found in env.task_results(parsed, "Ensure the authentik users") if found
            for r in found.get("results") or []]
    return dict(tasks=tasks, users=users, users_step=step, recap_changed=env.stats(parsed).get("changed"))


def dry_then_run(env, inventory, *args):
    """The dry run's prediction and the run's outcome, on the same state; both must agree."""
    env.pangolin.reset_log()
    env.authentik.reset_log()
    rc_check, checked, out, err = env.run(*args, inventory=inventory, check=True, diff=True)
    writes = env.writes()
    rc_run, ran, out_run, err_run = env.run(*args, inventory=inventory)
    predicted, done = outcome(env, checked), outcome(env, ran)
    assert writes == [], "the dry run wrote: %s" % writes[:5]
    assert rc_check == rc_run, (rc_check, rc_run, out[-2000:], out_run[-2000:])
    assert predicted == done, "the dry run predicted\n%s\nthe run did\n%s" % (predicted, done)
    return rc_run, ran, out_run


def api(env):
    session = requests.Session()
    session.headers["Authorization"] = "Bearer " + AUTHENTIK_TOKEN
    return session


@pytest.fixture
def env():
    with PlaybookEnv(users=0) as environment:
        for name, sub in list(APPS.items())[1:]:
            environment.pangolin.add_resource("homelab", name, subdomain=sub, full_domain="%s.example.com" % sub)
        yield environment


def test_the_readme_household_from_an_empty_pair_to_its_teardown(env):
    inventory = household_inventory(env)
    # dry run, run: the users step makes the group and the people, the whitelist lets them in
    rc, ran, out = dry_then_run(env, inventory)
    assert rc == 0, out[-3000:]
    assert env.whitelist_users(ran) and set(env.whitelist_users(ran)) == set(PEOPLE)
    assert all(u["status"] == "created" for u in env.whitelist_users(ran).values())
    lines = env.task_results(ran, "Say what the users step changed")[0]["msg"]
    assert "user carol: created, joined 'jellyfin'" in lines and "group jellyfin: created" in lines, lines
    # rerun: nothing
    rc, ran, out, _err = env.run(inventory=inventory)
    assert rc == 0 and env.stats(ran)["changed"] == 0, out[-3000:]
    for person in PEOPLE:
        env.authentik.login(person, "203.0.113.%d" % (10 + PEOPLE.index(person)))
    assert env.authentik.wait_idle(60)
    for resource_id in (1, 2):
        assert env.pangolin.apply_rules_for(resource_id, "203.0.113.12") == "ACCEPT"

    # carol leaves the household, in authentik's UI: out at once, and the next runs agree with their dry runs
    group = next(pk for pk, g in env.authentik.groups.items() if g["name"] == "jellyfin")
    carol = env.authentik.user_by_username("carol")["pk"]
    answer = api(env).post(env.authentik.base_url + "/api/v3/core/groups/%s/remove_user/" % group, json={"pk": carol})
    assert answer.status_code == 204
    assert env.authentik.wait_idle(60)
    assert all(env.pangolin.apply_rules_for(r, "203.0.113.12") != "ACCEPT" for r in (1, 2))
    rc, ran, out = dry_then_run(env, inventory)
    assert rc == 0, out[-3000:]
    assert env.whitelist_users(ran)["carol"]["status"] == "removed"  # the example prunes: her objects go
    assert carol not in env.authentik.groups[group]["users"]  # the users step did not put her back
    rc, ran, out, _err = env.run(inventory=inventory)
    assert rc == 0 and env.stats(ran)["changed"] == 0, out[-3000:]

    # the doctor: everyone listed is fine, and nothing is wrong with carol any more
    rc, ran, out, _err = env.run(inventory=inventory, playbook="doctor.yml")
    assert rc == 0, out[-3000:]
    report = env.task_results(ran, "Examine")[0]
    assert report["healthy"] and report["broken_users"] == [] and report["verdict"].startswith("healthy"), report
    # expiry: its dry run predicts it
    rc_check, checked, out, _ = env.run(inventory=inventory, playbook="expire.yml", check=True, diff=True)
    rc_run, ran, out_run, _ = env.run(inventory=inventory, playbook="expire.yml")
    assert rc_check == rc_run == 0, (out[-2000:], out_run[-2000:])
    assert [(u["username"], u["expired"]) for u in env.task_results(checked, "Stop whitelisting")[0]["users"]] == [
        (u["username"], u["expired"]) for u in env.task_results(ran, "Stop whitelisting")[0]["users"]]

    # the teardown of everything the inventory made: the whitelist, the people and the group
    data = yaml.safe_load((inventory / "group_vars" / "all" / "main.yml").read_text())
    edit(inventory, jellyfin_whitelist_authentik_users=[dict(u, state="absent") for u in
                                                        data["jellyfin_whitelist_authentik_users"]],
         jellyfin_whitelist_authentik_groups=[{"name": "jellyfin", "state": "absent"}])
    rc, ran, out = dry_then_run(env, inventory, "-e", "jellyfin_whitelist_state=absent")
    assert rc == 0, out[-3000:]
    assert [g["name"] for g in env.authentik.groups.values()] == ["authentik Admins"]
    assert [u for u in PEOPLE if env.authentik.user_by_username(u)] == []
    own = [m["name"] for m in env.authentik.mappings.values()] + [t["name"] for t in env.authentik.transports.values()]
    assert own == [] and [r for r in env.pangolin.rules(1) + env.pangolin.rules(2)] == []
    assert [k for k in env.pangolin.api_keys.values() if "household" in (k.get("name") or "")] == []
    rc, ran, out, _err = env.run("-e", "jellyfin_whitelist_state=absent", inventory=inventory)
    assert rc == 0 and env.stats(ran)["changed"] == 0, out[-3000:]


@pytest.mark.parametrize("tags", [None, "users", "whitelist", "users,whitelist", "users,org_policy,whitelist"])
def test_a_dry_run_predicts_the_run_whatever_the_tags(env, tags):
    """From the empty pair: the dry run with the tags the README shows says what the run with them does; a
    whitelist step run alone, before the people exist, fails the same way in both."""
    inventory = household_inventory(env)
    args = ("--tags", tags) if tags else ()
    rc, ran, out = dry_then_run(env, inventory, *args)
    if tags == "whitelist":
        task, failed = env.failure(ran)
        assert rc != 0 and "jellyfin" in failed["msg"] and "no group" in failed["msg"], failed
    else:
        assert rc == 0, out[-3000:]
    # and once everything exists, a removal in authentik is predicted the same way, with every tag set
    if tags in (None, "users,whitelist"):
        carol = env.authentik.user_by_username("carol")["pk"]
        group = next(pk for pk, g in env.authentik.groups.items() if g["name"] == "jellyfin")
        assert api(env).post(env.authentik.base_url + "/api/v3/core/groups/%s/remove_user/" % group,
                             json={"pk": carol}).status_code == 204
        assert env.authentik.wait_idle(60)
        rc, ran, out = dry_then_run(env, inventory, *args)
        assert rc == 0 and env.whitelist_users(ran)["carol"]["status"] == "removed", out[-3000:]


def test_without_a_group_the_dry_run_predicts_the_people_the_run_creates_and_deletes(env):
    """The users listed by name, not taken from a group: the dry run from the empty pair assumes the people the
    users step creates, and later the deletion of one still listed fails the dry run as it fails the run."""
    inventory = household_inventory(env)
    edit(inventory, jellyfin_whitelist_users_from_group=None,
         jellyfin_whitelist_users=[{"username": name} for name in PEOPLE])
    rc, ran, _out = dry_then_run(env, inventory)
    assert rc == 0 and sorted(env.whitelist_users(ran)) == sorted(PEOPLE), env.whitelist_users(ran)
    data = yaml.safe_load((inventory / "group_vars" / "all" / "main.yml").read_text())
    edit(inventory, jellyfin_whitelist_authentik_users=[dict(u, state="absent") if u["username"] == "carol" else u
                                                        for u in data["jellyfin_whitelist_authentik_users"]])
    rc, ran, _out = dry_then_run(env, inventory)
    task, failed = env.failure(ran)
    assert rc != 0 and "authentik has no user 'carol'" in failed["msg"], failed
