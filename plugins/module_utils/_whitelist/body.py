# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The body mapping of one of a user's rules: its settings, rendered into the expression and read back.

``BodySettings`` is the one definition of what a body mapping records. The
planner renders it, the ownership proof reads the priority it records, the
doctor compares it with what the inventory says, and expiry re-renders it with
a revocation time. Nothing else names its fields.

The expression computes the rule from authentik's state whenever authentik
sends it (a login or logout of the user, another user's login, a late or
repeated delivery): the newest distinct addresses of the user's real logins
within ``expire_days`` (0: no limit), or of the user's live sessions; nothing
for an inactive or deleted user; nothing from before ``not_before`` (set by a
revocation) until the user logs in again.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.addresses import SOURCE as ADDRESS_SOURCE
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.render import (
    RENDERED_MARK,
    is_int,
    rendered_settings,
    settings_block,
)

# How many of a user's newest logins a body mapping looks at for distinct addresses.
LOGIN_SCAN = 200


@dataclass(frozen=True)
class BodySettings(object):
    """What one body mapping records; rendered in this order, so an unchanged setting renders unchanged text."""

    user_pk: int
    slot: int
    slots: int
    priority: int
    action: str = "ACCEPT"
    placeholder: str = "0.0.0.0"
    ipv6_prefix: int = 0
    sessions: bool = False
    expire_days: int = 0
    not_before: str = None  # an ISO time: a revocation; nothing before it counts until the next login
    # Only while a rule moves: the priority it may still hold, so a run that stops half-way still proves it ours.
    previous_priority: int = None

    # Rendered even when None (0.3 rendered them so); the fields after them only when set.
    ALWAYS = ("user_pk", "slot", "slots", "priority", "action", "placeholder", "ipv6_prefix", "sessions",
              "expire_days", "not_before")

    def __post_init__(self):
        for name, low, high in (("user_pk", None, None), ("slot", 1, 100), ("slots", 1, 100),
                                ("priority", None, None), ("ipv6_prefix", 0, 128), ("expire_days", 0, 36500)):
            value = getattr(self, name)
            if not is_int(value) or (low is not None and not low <= value <= high):
                raise ValueError("body setting %s must be an integer%s, got %r"
                                 % (name, " from %d to %d" % (low, high) if low is not None else "", value))
        if self.slot > self.slots:
            raise ValueError("body setting slot %d is beyond slots %d" % (self.slot, self.slots))
        if self.previous_priority is not None and not is_int(self.previous_priority):
            raise ValueError("body setting previous_priority must be an integer, got %r" % (self.previous_priority,))
        for name in ("action", "placeholder"):
            if not isinstance(getattr(self, name), str):
                raise ValueError("body setting %s must be a string, got %r" % (name, getattr(self, name)))
        if self.not_before is not None and not isinstance(self.not_before, str):
            raise ValueError("body setting not_before must be an ISO time, got %r" % (self.not_before,))
        if not isinstance(self.sessions, bool):
            raise ValueError("body setting sessions must be true or false, got %r" % (self.sessions,))

    @classmethod
    def of(cls, settings, user_pk, slot, priority, not_before=None):
        """What the whitelist's ``settings`` (a settings.Settings) give rule ``slot`` of a user."""
        return cls(user_pk=user_pk, slot=slot, slots=settings.max_addresses, priority=priority,
                   action=settings.action, placeholder=settings.placeholder, ipv6_prefix=settings.ipv6_prefix,
                   sessions=settings.follow_sessions, expire_days=settings.expire_days, not_before=not_before)

    def under(self, settings):
        """These settings as ``settings`` would render them; the user, rule, priority and revocation stay."""
        return replace(BodySettings.of(settings, self.user_pk, self.slot, self.priority, self.not_before),
                       previous_priority=self.previous_priority)

    # -- reading back ------------------------------------------------------
    @classmethod
    def parse(cls, expression):
        """The settings a body mapping was rendered with, or None for any other expression."""
        values = rendered_settings(expression)
        names = [f.name for f in fields(cls)]
        if not all(name in values for name in cls.ALWAYS) or set(values) - set(names):
            return None
        try:
            return cls(**values)
        except (TypeError, ValueError):
            return None

    def differences(self, other):
        """{setting: (mine, other's)} for every setting in which ``other`` differs."""
        return dict((f.name, (getattr(self, f.name), getattr(other, f.name))) for f in fields(self)
                    if getattr(self, f.name) != getattr(other, f.name))

    def holds_other_values(self, recorded):
        """Whether a rule rendered from ``recorded`` may hold other addresses than one rendered from these
        settings: then the run writes the rule itself instead of waiting for the next login (its priority,
        action and a revocation's time are written by other means)."""
        return any(getattr(self, name) != getattr(recorded, name)
                   for name in ("user_pk", "slots", "ipv6_prefix", "sessions", "expire_days", "placeholder"))

    def with_changes(self, **changes):
        return replace(self, **changes)

    # -- rendering ---------------------------------------------------------
    def settings(self):
        """The settings block's entries, in order."""
        return dict((f.name, getattr(self, f.name)) for f in fields(self)
                    if f.name in self.ALWAYS or getattr(self, f.name) is not None)

    def expression(self):
        """The body mapping: a full rule update computed from authentik's state when it is sent."""
        lines = [RENDERED_MARK] + settings_block(self.settings())
        lines += ADDRESS_SOURCE.strip().splitlines()
        lines += BODY_CODE.splitlines()
        return "\n".join(lines)


BODY_CODE = "\n".join([
    "from datetime import datetime, timedelta",
    "from authentik.core.models import User",
    "from authentik.events.models import Event",
    "from django.utils.timezone import now",
    "since = now() - timedelta(days=SETTINGS['expire_days']) if SETTINGS['expire_days'] else None",
    "revoked = datetime.fromisoformat(SETTINGS['not_before']) if SETTINGS['not_before'] else None",
    "if revoked is not None and (since is None or revoked > since):",
    "    since = revoked",
    "candidates = []",
    "if User.objects.filter(pk=SETTINGS['user_pk'], is_active=True).exists():",
    "    logins = Event.objects.filter(action='login', user__pk=SETTINGS['user_pk'])",
    "    if SETTINGS['sessions']:",
    "        from authentik.core.models import AuthenticatedSession",
    "        since = None",
    "        if revoked is None or logins.filter(created__gte=revoked).exists():",
    "            live = AuthenticatedSession.objects.filter(user__pk=SETTINGS['user_pk'], session__expires__gt=now())",
    "            candidates = [(found.session.last_used, found.session.last_ip) for found in live]",
    "    else:",
    "        if since is not None:",
    "            logins = logins.filter(created__gte=since)",
    "        candidates = [(found.created, found.client_ip) for found in logins.order_by('-created')[:%d]]"
    % LOGIN_SCAN,
    "entries = whitelist_entries(candidates, SETTINGS['slots'], SETTINGS['ipv6_prefix'], "
    "SETTINGS['placeholder'], since)",
    "match, value = entries[SETTINGS['slot'] - 1]",
    "return {",
    "    'action': SETTINGS['action'],",
    "    'match': match,",
    "    'value': value,",
    "    'priority': SETTINGS['priority'],",
    "    'enabled': True,",
    "}",
])


__all__ = ["BodySettings", "LOGIN_SCAN"]
