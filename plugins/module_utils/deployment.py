# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What identifies one whitelist deployment, and the names of everything it makes.

A deployment is one resource's whitelist, named ``<name_prefix><instance>``
(the instance defaults to ``resource-<id>``). Every object it makes carries that
head and a ``/``, so two deployments in one authentik and one Pangolin org
never read each other's objects as their own:

* ``<head>/<username>/<n>``: body mapping and transport of the user's n-th rule
  (the username sits before the last ``/<n>``, so any username reads back);
* ``<head>/logins/<k>``: the k-th notification rule and its policy, for a group of users;
* ``<head>/headers``: the headers mapping carrying the webhook key;
* ``<head>/webhook``: the Pangolin key the collection makes for authentik;
* ``<head>/login-email``: the optional login e-mail's rule, policy and transport.

Versions 0.1 and 0.2 named a user's chain ``<name_prefix><username>``; those
names are recognised here (``legacy_username``) so a first run adopts them.
"""

from __future__ import annotations

import re

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.reconcile import InputError

INSTANCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
LEGACY_HEADERS = "jellyfin-whitelist pangolin headers"
LEGACY_KEY = "jellyfin-whitelist webhook"


def check_instance(instance, option="instance"):
    if not isinstance(instance, str) or not INSTANCE.match(instance):
        raise InputError("%s %r must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit "
                         "(it becomes part of every object name)" % (option, instance))
    return instance


class Deployment(object):
    """The naming scheme of one deployment, and its inverse."""

    def __init__(self, prefix, instance, resource_id):
        self.prefix = prefix
        self.instance = check_instance(instance)
        self.resource_id = resource_id
        self.head = prefix + instance
        head = re.escape(self.head)
        self._slot = re.compile(r"^%s/(.+)/([1-9][0-9]{0,2})$" % head, re.S)
        self._group = re.compile(r"^%s/logins/([1-9][0-9]{0,3})$" % head)

    # -- names -----------------------------------------------------------
    def slot_name(self, username, slot):
        return "%s/%s/%d" % (self.head, username, slot)

    def group_name(self, index):
        return "%s/logins/%d" % (self.head, index)

    @property
    def headers_name(self):
        return self.head + "/headers"

    @property
    def key_name(self):
        return self.head + "/webhook"

    @property
    def email_name(self):
        return self.head + "/login-email"

    # -- reading names back ------------------------------------------------
    def parse_slot(self, name):
        """(username, slot) of one of this deployment's per-rule objects, or None."""
        match = self._slot.match(name or "")
        return (match.group(1), int(match.group(2))) if match else None

    def parse_group(self, name):
        """The index of one of this deployment's group rules or policies, or None."""
        match = self._group.match(name or "")
        return int(match.group(1)) if match else None

    def legacy_username(self, name):
        """The username of a 0.1/0.2 object ``<prefix><username>``, or None.

        Any name of the form ``<prefix><word>/...`` is some deployment's object of
        today's scheme, never a legacy one, whoever it belongs to.
        """
        if not isinstance(name, str) or not name.startswith(self.prefix) or name == LEGACY_HEADERS:
            return None
        rest = name[len(self.prefix):]
        if not rest or re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}/", rest):
            return None
        return rest


def default_instance(resource_id):
    return "resource-%d" % resource_id


__all__ = ["Deployment", "check_instance", "default_instance", "LEGACY_HEADERS", "LEGACY_KEY"]
