# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The least-privilege Pangolin key authentik sends with each webhook.

The collection makes an org-scoped key whose only action is
``updateResourceRule`` and keeps it in authentik's headers mapping. Pangolin
shows a key's secret once, at creation, so the mapping is the only place the
secret lives: a rerun reads the key id from the mapping and asks Pangolin
whether that key still exists with exactly that action, never for the secret.

Rotation makes the new key, switches the mapping, and only then deletes the
old key, so a login at any moment finds a working key. Keys carrying the
configured name that the mapping does not use (a rotation's old key, or one
a run made but could not record) are deleted; no other key is ever touched.
"""

from __future__ import annotations

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.reconcile import ObjectKind
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.render import (
    RENDERED_MARK,
    py_literal,
    rendered_values,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.secrets import split_key

WEBHOOK_KEY_ACTIONS = ["updateResourceRule"]


def headers_mapping_expression(api_key):
    """The headers mapping: authentik sends Pangolin's bearer key with each webhook."""
    return "\n".join([
        RENDERED_MARK,
        "return {",
        "    \"Authorization\": %s," % py_literal("Bearer " + api_key),
        "    \"Content-Type\": \"application/json\",",
        "}",
    ])


def bearer_in(expression):
    """The ``<id>.<secret>`` a headers mapping this collection rendered sends, or None."""
    header = rendered_values(expression).get("Authorization")
    if isinstance(header, str) and header.startswith("Bearer ") and split_key(header[len("Bearer "):]):
        return header[len("Bearer "):]
    return None


def key_id_of(bearer):
    """The key id of a ``<id>.<secret>`` key, or None."""
    parts = split_key(bearer)
    return parts[0] if parts else None


class ApiKeyKind(ObjectKind):
    """An org API key, compared on its actions (Pangolin cannot rename a key)."""

    label = "Pangolin API key"
    id_field = "api_key_id"
    result_key = "api_key"

    def __init__(self, client, org_id, secrets=()):
        self.client = client
        self.org_id = org_id
        self.secrets = list(secrets)  # every Secrets registry that must learn a new key
        self.bearers = {}  # key id -> "<id>.<secret>", for keys made by this run

    def describe(self, desired):
        key_id = desired.get("api_key_id")
        return "API key %r%s of org %r" % (desired.get("name"), " (%s)" % key_id if key_id else "", self.org_id)

    @staticmethod
    def view(row, actions):
        return dict(api_key_id=row.get("apiKeyId"), name=row.get("name"), actions=sorted(actions))

    def comparable(self, desired):
        return dict(actions=sorted(desired["actions"]))

    def find(self, desired):
        return None  # the caller reads the key the mapping names

    def refind(self, desired):
        # A lost create cannot be adopted (its secret is gone): None makes a new
        # key, and the lost one is deleted as unused. After a failed delete, look.
        key_id = desired.get("api_key_id")
        if key_id is None:
            return None
        rows = [k for k in self.client.list_api_keys(self.org_id) if k.get("apiKeyId") == key_id]
        return self.view(rows[0], []) if rows else None

    def create(self, desired):
        created = self.client.create_api_key(self.org_id, desired["name"])
        bearer = "%s.%s" % (created["apiKeyId"], created["apiKey"])
        for registry in self.secrets:
            registry.add_key(bearer)
        self.bearers[created["apiKeyId"]] = bearer
        # A new key has no action: it can do nothing until this succeeds.
        self.client.set_api_key_actions(self.org_id, created["apiKeyId"], desired["actions"])
        return self.view(created, desired["actions"])

    def update(self, current, desired, changes):
        self.client.set_api_key_actions(self.org_id, current["api_key_id"], desired["actions"])
        return dict(current, actions=sorted(desired["actions"]))

    def delete(self, current):
        self.client.delete_api_key(self.org_id, current["api_key_id"])


class WebhookKey(object):
    """Keeps the key named ``name`` that the headers mapping carries."""

    NOT_CREATED = "(new webhook key, not created yet)"

    def __init__(self, pangolin, org_id, name, rotate=False, secrets=()):
        self.pangolin = pangolin
        self.org_id = org_id
        self.name = name
        self.rotate = rotate
        self.kind = ApiKeyKind(pangolin, org_id, secrets)
        self.keys, self.current, self.keep_id = [], None, None

    def read(self, mapping_expression):
        """What the mapping sends today, and whether Pangolin still has that key (two reads)."""
        self.keys = self.pangolin.list_api_keys(self.org_id)
        self.bearer = bearer_in(mapping_expression)
        for registry in self.kind.secrets:
            registry.add_key(self.bearer)
        key_id = key_id_of(self.bearer)
        # Only a key of ours is kept (and has its actions corrected): a key the
        # operator made for something else is never changed, just no longer sent.
        row = next((k for k in self.keys if k.get("apiKeyId") == key_id and k.get("name") == self.name), None)
        self.current = None
        if row is not None:
            self.current = self.kind.view(row, self.pangolin.api_key_actions(self.org_id, key_id))

    def ensure(self, reconciler):
        """The bearer the mapping must send: the kept key, or a new one."""
        desired = dict(name=self.name, actions=WEBHOOK_KEY_ACTIONS)
        if self.current is not None and not self.rotate:
            reconciler.ensure(self.kind, desired, current=self.current, lookup=False)  # resets extra actions
            self.keep_id = self.current["api_key_id"]
            return self.bearer
        outcome = reconciler.ensure(self.kind, desired, current=None, lookup=False)
        self.keep_id = outcome.after.get("api_key_id")
        return self.kind.bearers.get(self.keep_id, self.NOT_CREATED)

    def retiring(self):
        """Whether ``retire`` has keys to delete (the mapping no longer sends them)."""
        return any(row.get("name") == self.name and row.get("apiKeyId") != self.keep_id for row in self.keys)

    def retire_other(self, reconciler, key_id, name):
        """A key of another name this whitelist's objects sent (an older version's), once nothing sends it."""
        for row in self.keys:
            if row.get("apiKeyId") == key_id and row.get("name") == name:
                unused = dict(api_key_id=key_id, name=name)
                reconciler.ensure(self.kind, unused, "absent", current=dict(unused), lookup=False)

    def retire(self, reconciler, keep=True):
        """After the mapping switched: delete the keys of ours it no longer uses; with ``keep`` false (nothing
        needs a key any more) every key of ours.

        Only keys listed before this run's writes: a key another run is making
        right now is not ours to judge, and one whose creation answer was lost
        here is found (and deleted) by the next run.
        """
        for row in self.keys:
            if row.get("name") == self.name and not (keep and row.get("apiKeyId") == self.keep_id):
                unused = dict(api_key_id=row.get("apiKeyId"), name=self.name)
                reconciler.ensure(self.kind, unused, "absent", current=dict(unused), lookup=False)
