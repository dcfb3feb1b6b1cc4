# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What identifies one whitelist deployment, and the names of everything it makes.

A deployment is one whitelist, named ``<name_prefix><instance>`` (the instance
defaults to ``resource-<id>`` of its one resource). Every object it makes
carries that head and a ``/``, so two deployments in one authentik and one
Pangolin org never read each other's objects as their own:

* ``<head>/<username>/<n>``: the body mapping of the user's n-th rule, and the
  transport to that rule on the whitelist's first resource (the username sits
  before the last ``/<n>``, so any username reads back);
* ``<head>/<username>/<n>/resource-<id>``: the transport to the user's n-th rule on
  any further resource;
* ``<head>/logins/<k>``: the k-th notification rule and its policy, for a group of users;
* ``<head>/headers``: the headers mapping carrying the webhook key;
* ``<head>/webhook``: the Pangolin key the collection makes for authentik;
* ``<head>/login-email``: the optional login e-mail's rule, policy and transport.

A name is never proof that an object is this deployment's: another deployment
(two Pangolin servers sharing one authentik, say) may carry the same one.
``ownership.py`` decides that.
"""

from __future__ import annotations

import re


class Deployment(object):
    """The naming scheme of one deployment, and its inverse."""

    def __init__(self, prefix, instance, resource_ids):
        self.prefix = prefix
        self.instance = instance
        self.resource_ids = tuple(resource_ids)
        self.head = prefix + instance
        head = re.escape(self.head)
        self._slot = re.compile(r"^%s/(.+)/([1-9][0-9]{0,2})$" % head, re.S)
        self._transport = re.compile(r"^%s/(.+)/([1-9][0-9]{0,2})/resource-([1-9][0-9]{0,9})$" % head, re.S)
        self._group = re.compile(r"^%s/logins/([1-9][0-9]{0,3})$" % head)

    @property
    def primary(self):
        """The first resource: its transports keep the plain ``<head>/<username>/<n>`` name."""
        return self.resource_ids[0] if self.resource_ids else None

    # -- names -----------------------------------------------------------
    def slot_name(self, username, slot):
        return "%s/%s/%d" % (self.head, username, slot)

    def transport_name(self, username, slot, resource_id):
        if resource_id == self.primary:
            return self.slot_name(username, slot)
        return "%s/resource-%d" % (self.slot_name(username, slot), resource_id)

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
        """(username, slot) of a name of the plain form ``<head>/<username>/<n>``, or None."""
        match = self._slot.match(name or "")
        return (match.group(1), int(match.group(2))) if match else None

    def parse_transport(self, name):
        """(username, slot, resource id or None) of one of this deployment's transport names, or None.

        None as the resource: the plain form, whose resource is the one its URL names.
        """
        match = self._transport.match(name or "")
        if match:
            return match.group(1), int(match.group(2)), int(match.group(3))
        slot = self.parse_slot(name)
        return (slot[0], slot[1], None) if slot else None

    def parse_group(self, name):
        """The index of one of this deployment's group rules or policies, or None."""
        match = self._group.match(name or "")
        return int(match.group(1)) if match else None


def default_instance(resource_id):
    return "resource-%d" % resource_id


__all__ = ["Deployment", "default_instance"]
