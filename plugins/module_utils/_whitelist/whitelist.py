# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where every whitelist module starts: checked inputs, both servers, one read, one ownership.

``open_whitelist`` checks every option (``options.py``), then connects and
names the resources; ``Whitelist.read`` reads both servers once (``snapshot.py``)
and decides what the deployment owns (``ownership.py``, ``legacy.py``). The
whitelist module plans (``planner.py``) and runs (``runner.py``) on it; the
doctor and expiry read the same.

Per user, per address kept (``max_addresses``) and per resource: a Pangolin
ACCEPT rule, at the same priority on every resource, and a webhook transport
to it; per user and address one body mapping, computing the rule from
authentik's state. Users share notification rules, up to ``users_per_rule`` on
each, so every authentik event costs the worker one task per group instead of
one per user.
"""

from __future__ import annotations

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.client import (
    HEADERS_MAPPING_SINCE,
    SESSIONS_IN_DATABASE_SINCE,
    AuthentikClient,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.naming import (
    Deployment,
    default_instance,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist import legacy
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.body import BodySettings
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.ownership import Ownership
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._pangolin.client import PangolinClient
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.inputs import InputError
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.secrets import sends_key
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.options import (
    UserEntry,
    present,
    whitelist_inputs,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.snapshot import Snapshot
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.webhook_key import WebhookKey


def open_whitelist(module):
    """Every option checked, then both clients and the resources' ids; nothing is written here."""
    inputs = whitelist_inputs(module.params)
    pangolin = PangolinClient.from_module(module)
    authentik = AuthentikClient.from_module(module)
    resource_ids = tuple(ref.id if ref.id is not None else pangolin.resolve_resource(inputs.org_id, ref.name)
                         for ref in inputs.resources)
    if len(set(resource_ids)) != len(resource_ids):
        raise InputError("resources: the same resource is listed twice (ids %s)"
                         % ", ".join(str(r) for r in resource_ids))
    instance = inputs.settings.instance
    if instance is None:
        if len(resource_ids) > 1:
            raise InputError("instance is required with several resources: it names every object of the whitelist "
                             "and must not change when the list does. To keep the objects a one-resource whitelist "
                             "of resource %d made, set it to %r" % (resource_ids[0], default_instance(resource_ids[0])))
        instance = default_instance(resource_ids[0])
    deployment = Deployment(inputs.settings.name_prefix, instance, resource_ids)
    return Whitelist(pangolin, authentik, inputs, deployment)


class Whitelist(object):
    """One deployment's whitelist: what the inventory says, and once read, what the servers hold and which of it
    is the deployment's own. The planner, the doctor and expiry all work on it."""

    def __init__(self, pangolin, authentik, inputs, deployment):
        self.pangolin = pangolin
        self.authentik = authentik
        self.inputs = inputs
        self.settings = inputs.settings
        self.deployment = deployment
        self.key = None
        self.users = inputs.users  # who is listed: the inventory's entries, or the group's members
        self.not_members = ()  # entries of the inventory for users the group does not hold (not listed)
        self.snapshot = self.ownership = None

    @classmethod
    def of(cls, snapshot, deployment, inputs, users=None, plausible=None):
        """A whitelist on a snapshot already made (from plain data, in tests): ownership resolved on it."""
        whitelist = cls(None, None, inputs, deployment)
        whitelist.users = inputs.users if users is None else users
        whitelist.snapshot = snapshot
        whitelist.resolve(plausible)
        return whitelist

    @property
    def present(self):
        return present(self.users)

    @property
    def headers_name(self):
        return self.settings.headers_mapping or self.deployment.headers_name

    def read(self, secrets=None, key_secrets=(), with_key=True):
        """Read both servers, decide what is ours; ``secrets`` learns the credentials of the headers mapping."""
        settings = self.settings
        if settings.follow_sessions and not self.authentik.at_least(SESSIONS_IN_DATABASE_SINCE):
            raise InputError("follow_sessions needs authentik 2025.4 or newer, where sessions live in the database "
                             "with their address and expiry (this server runs %s)" % self.authentik.version_text)
        if not self.authentik.at_least(HEADERS_MAPPING_SINCE):
            raise InputError("authentik %s cannot send headers with a webhook (needs 2025.4 or newer), and Pangolin "
                             "needs its API key in the Authorization header" % self.authentik.version_text)
        members = self.group_members()
        self.users, self.not_members = self.listed_users(members)
        groups = {settings.destination_group: "destination_group"}
        if settings.login_email and settings.login_email.group:
            groups[settings.login_email.group] = "login_email.group"
        self.snapshot = Snapshot(self.pangolin, self.authentik, self.deployment.resource_ids,
                                 [u.username for u in self.present], sessions=settings.follow_sessions,
                                 groups=groups, planned=self.inputs.planned).read()
        if members is not None:
            self.snapshot.members = set(members)
            self.snapshot.group_pks[settings.users_from_group] = self.group_pk
        self.check_one_org()
        self.resolve(self.plausible)
        self.snapshot.read_accounts(self.ownership.usernames())
        self.ownership.attach_bindings()
        headers = self.snapshot.mappings.get(self.headers_name)
        if secrets is not None and headers is not None:
            secrets.add_credentials(headers["expression"])
        if settings.manage_webhook_key and with_key:
            self.key = WebhookKey(self.pangolin, self.snapshot.org_id,
                                  settings.webhook_key_name or self.deployment.key_name,
                                  rotate=settings.rotate_webhook_key, secrets=key_secrets)
            self.key.read((headers or {}).get("expression"))
        return self

    def resolve(self, plausible=None):
        """Which objects of the snapshot are the deployment's own (``ownership.py``), an older version's chains
        adopted as its slots (``legacy.py``)."""
        self.ownership = Ownership(self.snapshot, self.deployment, self.settings, plausible=plausible)
        legacy.adopt(self.snapshot, self.deployment, self.settings, self.ownership)
        return self

    def group_members(self):
        """With ``users_from_group``: the usernames of the group's active direct members, as they are once this
        run's users step is done (in check mode it has only predicted its changes); else None. A teardown lists
        nobody and needs no group."""
        group = self.settings.users_from_group
        if group is None or self.settings.state == "absent":
            return None
        planned = self.inputs.planned
        if planned.group == "deleted":
            raise InputError("users_from_group %r: this run deletes that group (jellyfin_whitelist_authentik_groups "
                             "marks it absent), so the whitelist would have no users; tear the whitelist down "
                             "(jellyfin_whitelist_state: absent) in the same run, or keep the group" % group)
        found = self.authentik.find_by("/core/groups/", "group", "name", group, {"include_users": "true"})
        if found is None and planned.group != "created":
            raise InputError("users_from_group %r: authentik has no group with that name" % group)
        self.group_pk = found["pk"] if found else "(group %r, not created yet)" % group
        members = set(user.get("username") for user in (found or {}).get("users_obj") or []
                      if user.get("is_active") and user.get("username"))
        return sorted((members | set(planned.members)) - set(planned.removed))

    def listed_users(self, members):
        """(listed users, inventory entries of users the group does not hold). With ``users_from_group`` every
        active direct member of the group is listed, with the settings of the inventory entry of the same name."""
        if members is None:
            return self.inputs.users, ()
        group = self.settings.users_from_group
        entries = dict((u.username, u) for u in self.inputs.users)
        listed = tuple(entries.get(name) or UserEntry(name, where="member %r of group %r" % (name, group))
                       for name in members)
        return listed, tuple(u for u in self.inputs.users if u.username not in members)

    def recorded_of(self, username):
        """What the user's body mappings record that a run keeps (a revocation, the sessions it ended, closed
        addresses), merged over all of them, as a BodySettings; None when the user has none."""
        bodies = [s.body for s in self.ownership.slots_of(username) if s.body is not None]
        return bodies[0].with_changes(**BodySettings.kept_of_all(bodies)) if bodies else None

    def judged_by(self, username, slots=None):
        """The body settings a user's rules are judged by now: the inventory's, with the revocation the user's
        body mappings record (``slots`` rules: the inventory's max_addresses unless given)."""
        account = self.snapshot.accounts.get(username)
        body = BodySettings.of(self.settings, account["pk"] if account else 0, 1, 0, self.recorded_of(username))
        return body.with_changes(slots=slots or self.settings.max_addresses)

    def check_one_org(self):
        orgs = sorted(set(str(state.view.get("org_id")) for state in self.snapshot.resources.values()))
        if len(orgs) > 1:
            raise InputError("resources: the listed resources belong to several Pangolin orgs (%s); one whitelist "
                             "covers the resources of one org (the webhook's key is an org key)" % ", ".join(orgs))

    def plausible(self, username, rule):
        """Whether a rule at a body mapping's recorded priority may be the user's own: it holds the placeholder, or
        an address authentik's state gives the user (a login or session within reach)."""
        if rule["value"] == self.settings.placeholder:
            return True
        self.snapshot.read_accounts([username])
        return self.snapshot.source_of(username, (rule["match"], rule["value"]), self.settings.follow_sessions,
                                       self.settings.ipv6_prefix) is not None

    def check_headers(self, plan):
        """Without a key to write, the headers mapping must exist already, and must not send the playbook's key."""
        if not plan.shared.keep_headers or self.settings.webhook_api_key or self.settings.manage_webhook_key:
            return
        headers = plan.shared.headers
        if headers is None:
            raise InputError("headers_mapping: authentik has no webhook mapping named %r, and neither "
                             "webhook_api_key nor manage_webhook_key was given to make it" % plan.shared.headers_name)
        if sends_key(headers.get("expression"), self.pangolin.token):
            raise InputError("headers_mapping %r sends this playbook's own Pangolin key (pangolin_api_key) to "
                             "authentik; give authentik a key of its own (webhook_api_key or manage_webhook_key)"
                             % headers["name"])


__all__ = ["open_whitelist", "Whitelist"]
