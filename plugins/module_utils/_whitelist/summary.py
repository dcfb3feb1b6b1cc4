# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a whitelist run says about each user: one entry per user, and one line in the user's terms.

In check mode every line is a prediction ("would create"): nothing was written.
"""

from __future__ import annotations

# status: (what the run did, what check mode predicts)
WORDS = {
    "created": ("created", "would create"),
    "updated": ("updated", "would update"),
    "reset": ("reset (deactivated in authentik: lets nobody in)", "would reset (deactivated in authentik)"),
    "removed": ("removed", "would remove"),
    "disabled": ("no longer listed: access ended, objects kept (prune removes them)",
                 "no longer listed: would end access and keep the objects (prune removes them)"),
    "unchanged": ("unchanged", "would keep as it is"),
    "absent": ("already absent", "already absent"),
    "kept_out": ("no longer listed, without access (prune removes the objects)",
                 "no longer listed, without access (prune removes the objects)"),
}

# status: how the run's message counts it (what the run did, what check mode predicts)
COUNTS = {
    "created": ("created", "would be created"),
    "updated": ("updated", "would be updated"),
    "reset": ("reset", "would be reset"),
    "removed": ("removed", "would be removed"),
    "disabled": ("no longer listed (access ended)", "no longer listed (access would end)"),
    "unchanged": ("unchanged", "would stay unchanged"),
    "absent": ("already absent", "already absent"),
    "kept_out": ("no longer listed (without access)", "no longer listed (without access)"),
}


def user_status(user, changed):
    if user.state == "absent":
        return "removed" if changed else "absent"
    if user.state == "disabled":
        return "disabled" if changed else "kept_out"
    if not changed:
        return "unchanged"
    if user.deactivated:
        return "reset"
    return "updated" if user.existed else "created"


def user_results(plan, outcomes, learned, check_mode):
    """One result entry per user, in the plan's order."""
    results = []
    for user in plan.users:
        changed = [o for o in outcomes.get(user.username, []) if o.changed]
        status = user_status(user, bool(changed))
        primary = [rule for slot in user.slots for rule in slot.rules[:1]]
        rules = [dict(resource_id=rule.resource_id, priority=slot.priority,
                      rule_id=learned.rule_ids.get(rule.transport_name)) for slot in user.slots for rule in slot.rules]
        results.append(dict(
            username=user.username, state="present" if user.state == "present" else "absent", status=status,
            priority=user.priorities[0] if user.slots else None, priorities=user.priorities,
            rule_id=learned.rule_ids.get(primary[0].transport_name) if primary else None,
            rule_ids=[learned.rule_ids.get(rule.transport_name) for rule in primary], rules=rules,
            group=user.group, pruned=user.pruned, changed=bool(changed),
            changes=list(dict.fromkeys("%s %s" % (o.operation, o.kind.describe(o.desired)) for o in changed)),
            summary=user_line(user, status, check_mode)))
    return results


def user_line(user, status, check_mode):
    text = "%s: %s" % (user.username, WORDS[status][1 if check_mode else 0])
    if user.slots:
        resources = sorted(set(rule.resource_id for slot in user.slots for rule in slot.rules))
        text += ", priority %s" % ", ".join(str(p) for p in user.priorities)
        if len(resources) > 1:
            text += " on resources %s" % ", ".join(str(r) for r in resources)
    return text + "."


def run_message(results, check_mode):
    counts = {}
    for entry in results:
        counts[entry["status"]] = counts.get(entry["status"], 0) + 1
    text = "%d users: %s" % (len(results), ", ".join("%d %s" % (n, COUNTS[s][1 if check_mode else 0])
                                                     for s, n in sorted(counts.items())) or "none")
    return text + (" (check mode: nothing was written; this is what a run would do)" if check_mode else "")


__all__ = ["user_results", "run_message", "user_status"]
