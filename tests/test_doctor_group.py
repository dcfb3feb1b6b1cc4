"""The doctor with ``users_from_group``: the group's active members are the listed users.

A member who joined the group after the last run has no rules yet: the doctor
names the user once, with the advice to run site.yml, instead of every missing
link. Where the group and the inventory disagree (an entry for a user who is not
an active member, a member the inventory marks absent), neither is let in, and
the doctor lists them. The role's report shows the same lines.
"""

from contextlib import contextmanager

from tests.playbook_env import PlaybookEnv
from tests.test_doctor import checks, converge, doctor, of_check, pk_of, user_report
from tests.test_module_docs import documented, undocumented

GROUP = "jellyfin"
SITE = "run ansible-playbook playbooks/site.yml, which makes the user's rules"


@contextmanager
def grouped(members, users=4, **authentik):
    """``users`` users, of whom ``members`` are in the authentik group ``jellyfin``."""
    with PlaybookEnv(users=users, **authentik) as env:
        env.group_pk = env.authentik.add_group(GROUP, users=[pk_of(env, u) for u in members])
        yield env


def join(env, username):
    """An operator adds the user to the group in authentik (no run of site.yml after it)."""
    env.authentik.groups[env.group_pk]["users"].append(pk_of(env, username))


def group_of(members, without_rules=(), not_members=(), absent_members=()):
    return dict(name=GROUP, members=list(members), without_rules=list(without_rules),
                not_members=list(not_members), absent_members=list(absent_members))


def test_a_member_without_rules_yet_is_named_with_the_advice_to_run_site_yml():
    with grouped(["user000", "user001"]) as env:
        converge(env, users=[], users_from_group=GROUP)
        env.login("user000", "203.0.113.10")
        result = doctor(env)
        assert result["healthy"] is True and result["problems"] == [] and result["notes"] == [], result
        assert result["group"] == group_of(["user000", "user001"])
        assert [u["username"] for u in result["users"]] == ["user000", "user001"]
        assert user_report(result, "user000")["whitelisted"] == "203.0.113.10"

        join(env, "user002")
        env.login("user002", "198.51.100.22")  # not let in: the user has no rule
        result = doctor(env)
        assert result["group"] == group_of(["user000", "user001", "user002"], without_rules=["user002"])
        assert result["healthy"] is False and result["problems"] == [] and result["msg"] == "1 problem found"
        new = user_report(result, "user002")
        # one problem that says what to do, not one per missing link of a chain that was never made
        assert [(p["check"], p["fix"]) for p in new["problems"]] == [("new_member", SITE)], new["problems"]
        message = new["problems"][0]["message"]
        assert "'user002'" in message and "'%s'" % GROUP in message and "no rules yet" in message, message
        assert new["healthy"] is False and new["addresses"] == [] and new["rule_id"] is None
        assert new["last_login_ip"] == "198.51.100.22" and new["last_login"]
        for member in ("user000", "user001"):
            assert user_report(result, member)["healthy"], user_report(result, member)["problems"]

        converge(env, users=[], users_from_group=GROUP)
        result = doctor(env)
        assert result["healthy"] is True, result
        assert result["group"] == group_of(["user000", "user001", "user002"])
        assert not of_check(user_report(result, "user002")["problems"], "new_member")
        assert user_report(result, "user002")["whitelisted"] == "198.51.100.22"
        # every key of the group's report is documented
        returns, _doc = documented("login_ip_whitelist_info")
        assert undocumented(result, returns) == []
        assert set(result["group"]) == set(returns["group"]["contains"])


def test_inventory_entries_and_members_that_disagree_are_listed():
    with grouped(["user000", "user001", "user002"]) as env:
        converge(env, users=[], users_from_group=GROUP)
        env.login("user001", "203.0.113.11")
        env.authentik.user_by_username("user002")["is_active"] = False  # a member, but no longer an active one
        inventory = [{"username": "user003"},  # not a member
                     {"username": "user001", "state": "absent"},  # a member the inventory marks absent
                     {"username": "user002", "priority": 150},  # an inactive member
                     {"username": "ghost", "state": "absent"}]  # absent and not a member: they agree
        result = doctor(env, users=inventory)
        assert result["group"] == group_of(["user000", "user001"], not_members=["user003", "user002"],
                                           absent_members=["user001"])
        assert [u["username"] for u in result["users"]] == ["user000"]
        not_member = of_check(result["notes"], "not_member")
        assert [n["message"].split("'")[1] for n in not_member] == ["user003", "user002"], not_member
        for note in not_member:
            assert "not an active member of group '%s'" % GROUP in note["message"]
            assert "does not let the user in" in note["message"] and "jellyfin_whitelist_users" in note["fix"]
        absent = of_check(result["notes"], "absent_member")
        assert len(absent) == 1 and "'user001'" in absent[0]["message"], absent
        assert "marks the user absent" in absent[0]["message"] and "state: absent" in absent[0]["fix"]
        assert not any("ghost" in n["message"] for n in result["notes"] + result["problems"])
        # user001 still holds its address until site.yml runs: let in though marked absent
        unlisted = of_check(result["problems"], "unlisted")
        assert len(unlisted) == 1 and "user001" in unlisted[0]["message"], result["problems"]
        assert "marked absent" in unlisted[0]["message"] and "203.0.113.11" in unlisted[0]["message"]
        # user002 is no longer listed; its rule lets nobody in
        leftover = [n for n in of_check(result["notes"], "leftover") if "'user002'" in n["message"]]
        assert leftover and "not an active member of group '%s'" % GROUP in leftover[0]["message"], result["notes"]
        assert result["healthy"] is False

        converge(env, users=inventory, users_from_group=GROUP)
        assert env.addresses_of("user001") == []  # absent: its objects are gone
        assert not [r for r in env.pangolin.rules(env.resource_id) if r["value"] == "203.0.113.11"]
        result = doctor(env)
        # nobody is let in who should not be: what stays is only worth knowing
        assert result["healthy"] is True and result["problems"] == [], result["problems"]
        assert result["group"]["not_members"] == ["user003", "user002"]
        assert result["group"]["absent_members"] == ["user001"]
        assert {"not_member", "absent_member"} <= set(checks(result["notes"]))


def test_the_role_report_shows_the_group_and_this_whitelists_rules():
    with grouped(["user000", "user001"], default_rules=True) as env:
        inventory = env.inventory(users=[{"username": "user003"}, {"username": "user001", "state": "absent"}],
                                  jellyfin_whitelist_users_from_group=GROUP)
        rc, parsed, out, err = env.run(inventory=inventory)
        assert rc == 0, out[-3000:]
        join(env, "user002")
        assert env.authentik.wait_idle(60), "authentik's worker did not drain"
        env.pangolin.reset_log()
        env.authentik.reset_log()
        rc, parsed, out, err = env.run(inventory=inventory, playbook="doctor.yml")
        assert rc != 0, out[-3000:]
        report = env.task_results(parsed, "Report")[0]["msg"]
        head = "users from group '%s': " % GROUP
        for line in ("authentik's worker: 0 queued tasks; 1 notification rule of this whitelist (3 others in "
                     "authentik: each event costs 4 handler tasks).",
                     head + "3 active members.",
                     head + "members without rules yet, so not let in: user002. Fix: run ansible-playbook -i %s %s." % (
                         inventory, env.playbook_path("site.yml")),
                     head + "listed in jellyfin_whitelist_users but not active members, so not let in: user003.",
                     head + "members jellyfin_whitelist_users marks absent, so not let in: user001."):
            assert line in report, (line, report)
        assert len([line for line in report if line.startswith("authentik's worker")]) == 1, report  # told once
        assert any(line.startswith("user002: BROKEN") for line in report), report
        site = "ansible-playbook -i %s %s" % (inventory, env.playbook_path("site.yml"))
        assert any(line.startswith("user002: PROBLEM") and "run %s, which makes the user's rules" % site in line
                   for line in report), report
        assert any(line.startswith("note: ") and "'user003'" in line for line in report), report
        assert any(line.startswith("user000: OK") for line in report), report
        task, failed = env.failure(parsed)
        assert task.endswith("Fail when something is broken") and "user002" in failed["msg"], failed
        assert env.pangolin.accepted_writes() + env.authentik.accepted_writes() == []
