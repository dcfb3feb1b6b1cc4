"""What the playbooks print, read as an operator reads it.

Each test runs ``ansible-playbook`` with the default stdout callback and reads the
report task's lines (``Show each user's rules``, ``Show who was expired``) and the
``--diff`` output from the text an operator sees, not from the module's result:

* no combination of inputs makes a run fail on its own report, in check mode or not, and check
  mode writes nothing;
* in check mode every line is a prediction ("would create", "would keep as it is") and the
  run says nothing was written; outside check mode the same lines say what was done, and a
  user already removed says so ("already absent", never "unchanged");
* at 25 users ``--check --diff`` stays small per user (a body mapping shows its settings and a
  one-line digest of its code, not the 78-line expression), still shows every value that
  changes, and shows the whole expression at -v or when its code itself changes.
"""

import json
import re
from datetime import timedelta

import pytest

from tests.playbook_env import PlaybookEnv

ROLE_TASK = "TASK [homelab.pangolin_authentik.jellyfin_whitelist : %s]"
REPORT_TASK = {"site.yml": "Show each user's rules", "expire.yml": "Show who was expired"}
WHITELIST_TASK = "Keep applyRules, the headers mapping and each user's login → webhook → Pangolin rule chain"
CHECK_NOTE = "check mode: nothing was written"

# Words that say something was done. In check mode each must follow a "would" in its clause.
CLAIMS = re.compile(r"\b(created|updated|removed|reset|ended|expired|revoked|kept|unchanged|deleted|pruned)\b")


# -- running and reading ----------------------------------------------------------------------------
def run(env, playbook="site.yml", inventory=None, check=False, diff=False, verbosity=0):
    """Run a playbook as an operator would; the raw stdout, after checking the run succeeded."""
    rc, _parsed, out, err = env.run(playbook=playbook, inventory=inventory or env.inventory(), check=check,
                                    diff=diff, verbosity=verbosity, stdout_callback="default")
    assert rc == 0, (out[-4000:], err[-2000:])
    return out


def task_output(out, task):
    """What the default callback printed for the role's task ``task``: from its header to the next header."""
    header = ROLE_TASK % task
    assert header in out, "the task %r never ran:\n%s" % (task, out[-4000:])
    start = out.index(header) + len(header)
    following = re.search(r"^(TASK|PLAY RECAP) \[?", out[start:], re.M)
    return out[start:start + following.start() if following else len(out)]


def report(out, playbook="site.yml"):
    """The lines the report task printed (its ``msg``): the run's line first, then one line per user."""
    text = task_output(out, REPORT_TASK[playbook])
    found = re.search(r"^ok: \[localhost\] => ", text, re.M)
    assert found, "the report task did not print its lines:\n%s" % text[-3000:]
    printed, _end = json.JSONDecoder().raw_decode(text[found.end():])
    lines = printed["msg"]
    assert isinstance(lines, list) and lines and all(isinstance(line, str) for line in lines), printed
    return lines


SHARED_LINE = "shared objects: "


def per_user(lines):
    """{username: line} of a report's user lines (not the shared objects' line); each user once."""
    user_lines = [line for line in lines[1:] if not line.startswith(SHARED_LINE)]
    users = [line.split(": ", 1)[0] for line in user_lines]
    assert len(users) == len(set(users)), lines
    return dict(zip(users, user_lines))


def shared_line(lines):
    """The line about what changed of the objects all users share, or None."""
    found = [line for line in lines if line.startswith(SHARED_LINE)]
    assert len(found) <= 1, lines
    return found[0] if found else None


def predicts(line):
    """Whether every claim in the line that something was done is a "would": a prediction, or no claim at all.

    Expiry's reason (after " - ") says why, in its own tense ("a session ended"); it is not a claim of the run."""
    for clause in re.split(r"[,;(]", line.split(" - ")[0]):
        claim = CLAIMS.search(clause)
        if claim and "would" not in clause[:claim.start()]:
            return False
    return True


def assert_check_mode_report(lines):
    assert CHECK_NOTE in lines[0], lines
    wrong = [line for line in lines if not predicts(line)]
    assert not wrong, "check mode speaks of what it did: %s" % wrong


def assert_real_report(lines):
    assert "check mode" not in lines[0], lines
    wrong = [line for line in lines if "would" in line]
    assert not wrong, "a real run speaks of what it would do: %s" % wrong


def checked_then_real(env, inventory=None, playbook="site.yml"):
    """Run in check mode (nothing may be written), then for real; the two reports."""
    env.pangolin.reset_log()
    env.authentik.reset_log()
    checked = report(run(env, playbook, inventory, check=True), playbook)
    assert env.writes() == [], "check mode wrote"
    assert_check_mode_report(checked)
    done = report(run(env, playbook, inventory), playbook)
    assert_real_report(done)
    return per_user(checked), per_user(done), checked[0], done[0]


def age_logins(env, username, days):
    for event in env.authentik.events_of("login"):
        if event.user.get("username") == username:
            event.created -= timedelta(days=days)


@pytest.fixture
def env():
    with PlaybookEnv(users=3) as environment:
        yield environment


@pytest.fixture
def converged(env):
    """Three users whitelisted; user001 logged in (so it has an address to lose)."""
    report(run(env))
    env.login("user001", "203.0.113.21")
    assert env.addresses_of("user001") == ["203.0.113.21"]
    return env


# -- 1. a run never fails on its own report ---------------------------------------------------------
def listed(env, state="present"):
    return [{"username": u, "state": state} for u in env.usernames]


SCENARIOS = {
    # name: (playbook, inventory variables of the run)
    "empty list": ("site.yml", lambda env: dict(users=[])),
    "empty list, prune": ("site.yml", lambda env: dict(users=[], jellyfin_whitelist_prune=True)),
    "every user absent": ("site.yml", lambda env: dict(users=listed(env, "absent"))),
    "users dropped, prune": ("site.yml", lambda env: dict(users=listed(env)[:1], jellyfin_whitelist_prune=True)),
    "users dropped": ("site.yml", lambda env: dict(users=listed(env)[:1])),
    "teardown": ("site.yml", lambda env: dict(jellyfin_whitelist_state="absent")),
    "teardown, empty list": ("site.yml", lambda env: dict(users=[], jellyfin_whitelist_state="absent")),
    "expire": ("expire.yml", lambda env: dict()),
    "expire named users": ("expire.yml", lambda env: dict(jellyfin_whitelist_expire_users=["user001"])),
    "expire, empty list": ("expire.yml", lambda env: dict(users=[])),
}


# Before any run of site.yml, too: the newcomer's first run may be any of these.
FRESH = ["empty list", "empty list, prune", "every user absent", "teardown", "expire"]


@pytest.mark.parametrize("scenario, before", [(s, "converged") for s in sorted(SCENARIOS)] + [
    (s, "fresh") for s in FRESH])
def test_the_run_reports_every_user_and_never_fails_on_its_report(env, scenario, before):
    """Check mode first (it must write nothing), then the run, then the run again on what the first left."""
    playbook, variables = SCENARIOS[scenario]
    if before == "converged":
        report(run(env))
        env.login("user001", "203.0.113.21")
    inventory = env.inventory(**variables(env))
    data = PlaybookEnv.inventory_data(inventory)
    teardown = data.get("jellyfin_whitelist_state") == "absent"
    absent = [u["username"] for u in data["jellyfin_whitelist_users"] if teardown or u.get("state") == "absent"]
    assert absent == (env.usernames if scenario in ("every user absent", "teardown") else []), absent
    for step, check in enumerate([True, False, False]):
        env.pangolin.reset_log()
        env.authentik.reset_log()
        lines = report(run(env, playbook, inventory, check=check), playbook)
        users = per_user(lines)
        assert set(users) <= set(env.usernames), lines
        if check:
            assert env.writes() == [], "check mode wrote"
            assert_check_mode_report(lines)
        else:
            assert_real_report(lines)
        if playbook == "expire.yml":
            continue
        match = re.match(r"^(\d+) users: ", lines[0])
        assert match and int(match.group(1)) == len(users), lines
        assert set(u["username"] for u in data["jellyfin_whitelist_users"]) <= set(users), lines
        if step == 2 or before == "fresh":
            # Nothing of theirs is left: each says so, never "unchanged".
            assert all(users[u] == "%s: already absent." % u for u in absent), lines
        if step == 2:
            assert shared_line(lines) is None, lines  # the rerun changed nothing shared either


def test_a_run_that_changes_only_shared_objects_says_what_in_its_tense(env):
    """Dropping users who never held an address changes no user's rules, but their group's notification rule:
    the report must not read as if nothing happened."""
    report(run(env))
    keep = listed(env)[:1]
    inventory = env.inventory(users=keep)
    checked = report(run(env, inventory=inventory, check=True))
    done = report(run(env, inventory=inventory))
    assert shared_line(checked) and shared_line(done), (checked, done)
    assert "would " in shared_line(checked) and "would " not in shared_line(done)
    assert "notification rule" in shared_line(done), done
    assert shared_line(report(run(env, inventory=inventory))) is None


# -- 2. check mode predicts; the run reports what it did ---------------------------------------------
def test_create_keep_and_update_are_predicted_then_reported(env):
    checked, done, checked_msg, done_msg = checked_then_real(env)
    for index, username in enumerate(env.usernames):
        assert checked[username] == "%s: would create, priority %d." % (username, 100 + index)
        assert done[username] == "%s: created, priority %d." % (username, 100 + index)
    assert checked_msg.startswith("3 users: 3 would be created (") and done_msg == "3 users: 3 created"

    env.login("user001", "203.0.113.21")
    checked, done, checked_msg, done_msg = checked_then_real(env)
    assert checked["user001"] == "user001: would keep as it is, priority 101."
    assert done["user001"] == "user001: unchanged, priority 101."
    assert checked_msg.startswith("3 users: 3 would stay unchanged (") and done_msg == "3 users: 3 unchanged"

    users = listed(env)
    users[2]["priority"] = 150
    checked, done, checked_msg, done_msg = checked_then_real(env, env.inventory(users=users))
    assert checked["user002"] == "user002: would update, priority 150."
    assert done["user002"] == "user002: updated, priority 150."
    assert checked["user000"] == "user000: would keep as it is, priority 100."
    assert done_msg == "3 users: 2 unchanged, 1 updated"
    assert checked_msg == "3 users: 2 would stay unchanged, 1 would be updated (%s; this is what a run would do)" % (
        CHECK_NOTE)


def test_a_reset_and_an_unlisted_user_are_predicted_then_reported(converged):
    env = converged
    env.login("user002", "203.0.113.22")
    env.authentik.user_by_username("user002")["is_active"] = False  # no event reaches the rule
    checked, done, _checked_msg, _done_msg = checked_then_real(env)
    assert checked["user002"] == "user002: would reset (deactivated in authentik), priority 102."
    assert done["user002"] == "user002: reset (deactivated in authentik: lets nobody in), priority 102."
    assert env.addresses_of("user002") == ["0.0.0.0"]

    # Dropped from the list without prune: user001 had an address and loses it; user000 had none.
    checked, done, checked_msg, done_msg = checked_then_real(env, env.inventory(users=listed(env)[2:]))
    assert checked["user001"] == ("user001: no longer listed: would end access and keep the objects "
                                  "(prune removes them).")
    assert done["user001"] == "user001: no longer listed: access ended, objects kept (prune removes them)."
    for line in (checked["user000"], done["user000"]):
        assert line == "user000: no longer listed, without access (prune removes the objects)."
    assert "1 no longer listed (access would end)" in checked_msg
    assert "1 no longer listed (access ended)" in done_msg and "kept_out" not in done_msg
    assert env.addresses_of("user001") == ["0.0.0.0"]


def test_a_removed_user_is_reported_already_absent_never_unchanged(converged):
    env = converged
    users = listed(env)
    users[1]["state"] = "absent"
    inventory = env.inventory(users=users)
    checked, done, checked_msg, done_msg = checked_then_real(env, inventory)
    assert checked["user001"] == "user001: would remove." and done["user001"] == "user001: removed."
    assert "1 would be removed" in checked_msg and "1 removed" in done_msg

    checked, done, checked_msg, done_msg = checked_then_real(env, inventory)
    assert checked["user001"] == done["user001"] == "user001: already absent."
    assert "1 already absent" in checked_msg and "1 already absent" in done_msg

    # Pruned: removed once, then no longer the whitelist's to report.
    inventory = env.inventory(users=users[:2], jellyfin_whitelist_prune=True)
    checked, done, _checked_msg, _done_msg = checked_then_real(env, inventory)
    assert checked["user002"] == "user002: would remove." and done["user002"] == "user002: removed."
    checked, done, _checked_msg, _done_msg = checked_then_real(env, inventory)
    assert "user002" not in checked and "user002" not in done
    assert checked["user001"] == done["user001"] == "user001: already absent."


def test_expiry_predicts_then_reports(env):
    report(run(env))
    env.login("user002", "203.0.113.32")
    env.login("user001", "203.0.113.31")
    age_logins(env, "user001", 40)  # nothing delivered since: the rule still holds the stale address
    checked, done, checked_msg, done_msg = checked_then_real(env, playbook="expire.yml")
    assert checked["user001"] == "user001: would expire - last login older than 30 days"
    assert done["user001"] == "user001: expired - last login older than 30 days"
    assert checked["user002"] == "user002: would keep as it is - logged in within 30 days"
    assert done["user002"] == "user002: kept - logged in within 30 days"
    assert checked["user000"] == "user000: would keep as it is - nothing whitelisted"
    assert checked_msg == "would expire user001 (%s)" % CHECK_NOTE and done_msg == "expired user001"
    assert env.addresses_of("user001") == ["0.0.0.0"]

    _checked, _done, checked_msg, done_msg = checked_then_real(env, playbook="expire.yml")
    assert checked_msg == "nobody would be expired (%s)" % CHECK_NOTE and done_msg == "nobody to expire"

    inventory = env.inventory(jellyfin_whitelist_expire_users=["user002"])
    checked, done, _checked_msg, _done_msg = checked_then_real(env, inventory, playbook="expire.yml")
    assert re.fullmatch(r"user002: would be revoked: the rules let nobody in, \d+ authentik session\(s\) would end",
                        checked["user002"]), checked
    assert re.fullmatch(r"user002: revoked: the rules let nobody in, \d+ authentik session\(s\) ended",
                        done["user002"]), done
    assert env.addresses_of("user002") == ["0.0.0.0"]

    # After a teardown the whitelist owns no rule: nothing to keep, nothing to expire.
    report(run(env, inventory=env.inventory(jellyfin_whitelist_state="absent")))
    checked, done, _checked_msg, _done_msg = checked_then_real(env, playbook="expire.yml")
    for lines in (checked, done):
        assert sorted(lines) == env.usernames, lines
        assert all(" nothing to expire - " in line for line in lines.values()), lines


def test_expiry_that_puts_back_a_missed_login_does_not_call_it_an_expiry(converged):
    env = converged
    rule = env.rule_of("user001")
    with env.pangolin.lock:  # the login's delivery was lost: the rule never got the address
        for table in (env.pangolin.policy_rules, env.pangolin.legacy_rules):
            if rule["ruleId"] in table:
                table[rule["ruleId"]]["value"] = "0.0.0.0"
    checked = per_user(report(run(env, "expire.yml", check=True), "expire.yml"))
    assert "older than" not in checked["user001"] and "would expire" not in checked["user001"], checked
    assert "would restore - puts back the address of a login the rules missed" in checked["user001"], checked
    done = per_user(report(run(env, "expire.yml"), "expire.yml"))
    assert "restored - puts back the address of a login the rules missed" in done["user001"], done
    assert env.rule_of("user001")["value"] != "0.0.0.0"


# -- 3. diffs at 25 users --------------------------------------------------------------------------
USERS = 25
# Measured: a converge from empty prints 46 lines per user with the diff headers and separating blank
# lines: the body mapping 21 (name, pk, a one-line code digest and its 10 settings), the rule 12 (its
# 6 fields), the transport 13 (its 7 fields). The body mapping's whole expression is 78 lines by itself,
# so a bound of 55 per user (room for a few more fields) fails as soon as the expression is printed.
LINES_PER_USER = 55
MAPPING_BLOCK = 30  # a body mapping's block: its settings, the digest and a few fields, never 78 lines of code
SHARED_LINES = 250  # applyRules, headers mapping, 3 group policies, rules and bindings: 182 measured
CODE_LINE = re.compile(r'^[+-] {4}"code": "\d+ lines of this collection\'s code, '
                       r'sha256 [0-9a-f]{12} \(-v shows them\)",?$')


def diff_blocks(out):
    """[(object, printed lines)] of each diff the whitelist task printed, in order."""
    text = task_output(out, WHITELIST_TASK)
    end = re.search(r"^(changed|ok): \[localhost\]", text, re.M)
    assert end, text[-3000:]
    blocks = []
    for chunk in re.split(r"\n(?=--- before: )", text[:end.start()])[1:]:
        lines = chunk.rstrip("\n").split("\n")
        blocks.append((lines[0][len("--- before: "):], lines))
    return blocks


def changed_lines(lines):
    return [line for line in lines if line[:1] in "+-" and not line.startswith(("+++ ", "--- "))]


def owner(name, priorities):
    """The user a diff belongs to (by the object's name, or its rule's priority), or None when shared."""
    found = re.search(r"/(user\d{3})/\d+'", name)
    if found:
        return found.group(1)
    found = re.match(r"rule priority (\d+) on resource", name)
    return priorities.get(int(found.group(1))) if found else None


def priorities_of(lines):
    """{priority: username} from a site report's user lines."""
    return dict((int(p), u) for u, p in (re.match(r"^(\S+): .*priority (\d+)\.$", line).groups()
                                         for line in lines[1:] if "priority" in line))


@pytest.fixture
def env25():
    with PlaybookEnv(users=USERS) as environment:
        yield environment


def test_check_diff_from_empty_is_small_per_user_and_whole_at_v(env25):
    env = env25
    out = run(env, check=True, diff=True)
    lines = report(out)
    assert_check_mode_report(lines)
    priorities = priorities_of(lines)
    assert len(priorities) == USERS
    blocks = diff_blocks(out)
    assert blocks and all(changed_lines(printed) for _name, printed in blocks), "a diff that shows no change"
    per_user_lines = dict((u, 0) for u in env.usernames)
    shared = 0
    for name, printed in blocks:
        user = owner(name, priorities)
        if user is None:
            shared += len(printed) + 1
            continue
        per_user_lines[user] += len(printed) + 1  # the blank line after each diff
        if name.startswith("webhook mapping"):
            assert len(printed) <= MAPPING_BLOCK, "\n".join(printed)
            assert len([line for line in printed if CODE_LINE.match(line)]) == 1, "\n".join(printed)
            assert not any("def whitelist_entries" in line or "SETTINGS[" in line for line in printed)
            assert '+        "priority": %d,' % (100 + env.usernames.index(user)) in printed
        if name.startswith("rule priority"):
            # Every value of the new rule is shown: the user's priority, the placeholder, the action.
            assert '+    "priority": %s,' % name.split()[2] in printed and '+    "value": "0.0.0.0"' in printed
            assert '+    "action": "ACCEPT",' in printed
    too_long = dict((u, n) for u, n in per_user_lines.items() if n > LINES_PER_USER)
    assert not too_long, "lines per user over %d: %s" % (LINES_PER_USER, too_long)
    assert all(n > 0 for n in per_user_lines.values()), per_user_lines  # every user's objects are shown
    assert shared <= SHARED_LINES, shared

    # At -v each body mapping's diff is its whole expression, line by line: compare with what a run writes.
    verbose = diff_blocks(run(env, check=True, diff=True, verbosity=1))
    report(run(env))
    for username in ("user000", "user013", "user024"):
        name = env.slot_name(username)
        [mapping] = [m for m in env.authentik.mappings.values() if m["name"] == name]
        [printed] = [p for n, p in verbose if n == "webhook mapping %r" % name]
        expression = mapping["expression"].split("\n")
        assert len(expression) >= 70
        for line in expression:
            assert "+        %s" % json.dumps(line) in "\n".join(printed), (line, "\n".join(printed))
        assert not any(CODE_LINE.match(line) for line in printed)


def test_check_diff_of_one_priority_change_at_25_users_shows_it_and_only_it(env25):
    env = env25
    report(run(env))
    env.login("user007", "203.0.113.7")
    users = listed(env)
    users[7]["priority"] = 150
    inventory = env.inventory(users=users)
    out = run(env, inventory=inventory, check=True, diff=True)
    lines = report(out)
    assert per_user(lines)["user007"] == "user007: would update, priority 150."
    blocks = diff_blocks(out)
    owners = set(owner(name, {107: "user007", 150: "user007"}) for name, _printed in blocks)
    assert owners == {"user007"}, [name for name, _printed in blocks]
    total = sum(len(printed) + 1 for _name, printed in blocks)
    assert total <= 60, "\n".join(line for _name, printed in blocks for line in printed)  # 38 measured

    [rule] = [printed for name, printed in blocks if name.startswith("rule priority")]
    assert changed_lines(rule) == ['-    "priority": 107,', '+    "priority": 150,'], rule
    assert '     "value": "203.0.113.7"' in rule  # the address goes with it, unchanged
    mapping = [line for name, printed in blocks if name.startswith("webhook mapping") for line in printed]
    assert '-        "priority": 107,' in mapping and '+        "priority": 150,' in mapping, mapping
    assert not any("def whitelist_entries" in line or "SETTINGS[" in line for line in mapping)

    # At -v the expression's own lines are diffed: the priority line in the code's words.
    verbose = diff_blocks(run(env, inventory=inventory, check=True, diff=True, verbosity=1))
    mapping = [line for name, printed in verbose if name.startswith("webhook mapping") for line in printed]
    assert '-        "    \'priority\': 107,",' in mapping and '+        "    \'priority\': 150,",' in mapping, mapping
    assert not any(CODE_LINE.match(line) for line in mapping)


EDITS = {
    # what changes in the stored expression: (old text, new text)
    "a setting written by hand": ("    'priority': 101,", "    'priority':  101,"),
    "settings reordered": ("    'slot': 1,\n    'slots': 1,", "    'slots': 1,\n    'slot': 1,"),
    "a line of code": ("from authentik.events.models import Event\n",
                       "from authentik.events.models import Event  # x\n"),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_no_change_to_an_expression_is_hidden_by_the_compact_diff(env, edit):
    report(run(env))
    name = env.slot_name("user001")
    [mapping] = [m for m in env.authentik.mappings.values() if m["name"] == name]
    old, new = EDITS[edit]
    assert old in mapping["expression"]
    mapping["expression"] = mapping["expression"].replace(old, new)
    out = run(env, check=True, diff=True)
    assert per_user(report(out))["user001"] == "user001: would update, priority 101."
    blocks = diff_blocks(out)
    assert [name for name, _printed in blocks] == ["webhook mapping %r" % name]
    shown = changed_lines(blocks[0][1])
    # The expression itself is diffed: the stored lines that change are shown going, and others coming.
    stored = [json.dumps(line) for line in new.split("\n") if line]
    assert any(line in removed for line in stored for removed in shown if removed[0] == "-"), shown
    assert any(line[0] == "+" for line in shown), shown
    assert not any(CODE_LINE.match(line) for line in blocks[0][1])
