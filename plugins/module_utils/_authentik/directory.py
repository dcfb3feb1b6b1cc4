# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""authentik's users and groups, as ``ObjectKind``s."""

from __future__ import annotations

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.client import ApiError
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.objects import NamedKind
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.reconcile import ObjectKind


class GroupKind(NamedKind):
    label = "authentik group"
    result_key = "group"
    path = "/core/groups/"
    what = "group"
    fields = {"attributes": "attributes"}

    def find(self, desired):
        raw = self.client.find_by(self.path, self.what, "name", desired["name"], {"include_users": "false"})
        return self.view(raw) if raw else None


class UserKind(ObjectKind):
    """A user, found by username. Group membership is changed one group at a time.

    ``groups`` in a desired user lists group names; ``groups_mode`` says
    whether they are added (``add``), removed (``remove``) or are the whole
    membership (``exact``). PUT would wipe memberships, so users are only
    ever PATCHed and memberships go through add_user/remove_user.
    """

    label = "authentik user"
    result_key = "user"
    id_field = "pk"
    path = "/core/users/"
    fields = ("name", "email", "is_active", "path")

    def __init__(self, client, groups_mode="add"):
        self.client = client
        self.groups_mode = groups_mode
        self._group_names = {}

    def describe(self, desired):
        return "user %r" % desired.get("username")

    @staticmethod
    def summaries(client, usernames):
        """pk, username, name and is_active of these users, with as few requests as possible."""
        found = client.users_by_username(usernames) if usernames else {}
        return [dict(pk=raw.get("pk"), username=raw.get("username"), name=raw.get("name"),
                     is_active=bool(raw.get("is_active"))) for raw in found.values()]

    def group_names(self, pks):
        missing = [pk for pk in pks if pk not in self._group_names]
        if missing:
            for row in self.client.list("/core/groups/", "groups", {"include_users": "false"}):
                self._group_names[row["pk"]] = row["name"]
        return sorted(self._group_names.get(pk, pk) for pk in pks)

    def view(self, raw):
        view = dict((k, raw.get(k)) for k in self.fields)
        view.update(pk=raw.get("pk"), username=raw.get("username"), groups=self.group_names(raw.get("groups") or []))
        return view

    def find(self, desired):
        raw = self.client.find_by(self.path, "user", "username", desired["username"])
        return self.view(raw) if raw else None

    def wanted_groups(self, current_groups, listed):
        current_groups = set(current_groups or [])
        if listed is None:
            return sorted(current_groups)
        if self.groups_mode == "add":
            return sorted(current_groups | set(listed))
        if self.groups_mode == "remove":
            return sorted(current_groups - set(listed))
        return sorted(set(listed))

    def comparable(self, desired):
        return dict((k, v) for k, v in desired.items() if v is not None and k not in ("password",))

    def changes(self, current, desired):
        wanted = dict(self.comparable(desired))
        wanted["groups"] = self.wanted_groups(current.get("groups"), desired.get("groups"))
        return dict((k, v) for k, v in wanted.items() if current.get(k) != v)

    def predict(self, current, desired):
        after = dict(current or {"pk": None, "groups": []})
        after.update(self.comparable(desired))
        after["groups"] = self.wanted_groups((current or {}).get("groups"), desired.get("groups"))
        return after

    def verify(self, written, desired):
        pass  # each write below is checked by reading the user back

    def create(self, desired):
        body = dict((k, desired[k]) for k in self.fields if desired.get(k) is not None)
        body.update(username=desired["username"], name=desired.get("name") or "")
        raw = self.client.create(self.path, self.describe(desired), body)
        current = self.view(raw)
        return self._write_groups(current, desired)

    def update(self, current, desired, changes):
        fields = dict((k, v) for k, v in changes.items() if k in self.fields)
        if fields:
            self.client.patch("%s%s/" % (self.path, current["pk"]), self.describe(desired), fields)
        return self._write_groups(current, desired)

    def _write_groups(self, current, desired):
        wanted = self.wanted_groups(current.get("groups"), desired.get("groups"))
        have = set(current.get("groups") or [])
        for name in sorted(set(wanted) - have):
            self._membership(name, current["pk"], "add_user")
        for name in sorted(have - set(wanted)):
            self._membership(name, current["pk"], "remove_user")
        return self.find(desired)

    def _membership(self, group_name, user_pk, action):
        group = self.client.find_group(group_name)
        if group is None:
            raise ApiError("groups: authentik has no group %r" % group_name)
        self.client.post_action("/core/groups/%s/%s/" % (group["pk"], action),
                                "%s user %s %s group %r" % (action.split("_")[0], user_pk,
                                                            "to" if action == "add_user" else "from", group_name),
                                {"pk": user_pk})

    def delete(self, current):
        self.client.delete("%s%s/" % (self.path, current["pk"]), self.describe(current))

    def set_password(self, pk, password, username):
        try:
            self.client.post_action("%s%s/set_password/" % (self.path, pk), "set the password of user %r" % username,
                                    {"password": password})
        except ApiError as exc:
            if exc.status == 400:
                raise ApiError("password: authentik refused the password of user %r (its password policy?)"
                               % username)
            raise


class SessionKind(ObjectKind):
    """A user's authenticated session (authentik 2025.4+), which the whitelist only ever ends.

    Ending a session logs that device out of authentik; authentik writes no event for it.
    """

    label = "authentik session"
    id_field = "uuid"
    path = "/core/authenticated_sessions/"

    def __init__(self, client, username, user_pk):
        self.client = client
        self.username = username
        self.user_pk = user_pk

    def describe(self, desired):
        return "session %s of user %r" % (desired.get("uuid"), self.username)

    def of_user(self):
        """The user's sessions, as views (the filter is checked: a server that ignored it lists everyone's)."""
        rows = self.client.list(self.path, "sessions of %r" % self.username, {"user__username": self.username})
        return [dict(uuid=row.get("uuid"), last_ip=row.get("last_ip"), last_used=row.get("last_used"))
                for row in rows if row.get("uuid") and row.get("user") == self.user_pk]

    def find(self, desired):
        return next((s for s in self.of_user() if s["uuid"] == desired["uuid"]), None)

    def delete(self, current):
        self.client.delete("%s%s/" % (self.path, current["uuid"]), self.describe(current))
