# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The body mapping of one of a user's rules: its settings, rendered into the expression and read back.

``BodySettings`` is the one definition of what a body mapping records. The
planner renders it, the ownership proof reads the rule's shape it records
(action, priority), the doctor compares it with what the inventory says, and
expiry re-renders it with a revocation. Nothing else names its fields.

The expression runs ``holdings.SOURCE`` on authentik's state whenever authentik
sends it (a login or logout of the user, another user's login, a membership
change, a late or repeated delivery); ``event_body_expression`` is the other
body this collection renders, a hand-built chain's, which takes the address of
the event that made authentik send it. Both come from ``render_body``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import datetime

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.render import (
    RENDERED_MARK,
    rendered_settings,
    settings_block,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.inputs import InputError, is_int
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._pangolin.values import ACTIONS
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.holdings import (
    LOGIN_SCAN,
    PLACEHOLDER,
    SOURCE,
    opt_in_error,
)


def _instant(iso):
    """A recorded ISO time (a revocation, a closing) as a datetime, to compare."""
    return datetime.fromisoformat(iso[:-1] + "+00:00" if iso.endswith("Z") else iso)


def render_body(settings, code):
    """A rule body: the settings block, the shared source, then ``code`` (lines) that returns the rule."""
    return "\n".join([RENDERED_MARK] + settings_block(settings) + SOURCE.strip().splitlines() + list(code))


@dataclass(frozen=True)
class BodySettings(object):
    """What one body mapping records; rendered in this order, so an unchanged setting renders unchanged text."""

    user_pk: int
    slot: int
    slots: int
    priority: int
    action: str = "ACCEPT"
    placeholder: str = PLACEHOLDER
    ipv6_prefix: int = 0
    sessions: bool = False
    expire_days: int = 0
    not_before: str = None  # an ISO time: a revocation; nothing before it counts until the next login
    # Only while a rule changes shape: what it may still hold, so a run that stops half-way still proves it ours.
    previous_priority: int = None
    previous_action: str = None
    group: str = None  # users_from_group: only a direct member of this authentik group is let in
    private_networks: tuple = ()  # private networks whose addresses may become a rule (opted in)
    revoked_sessions: tuple = ()  # uuids of the sessions live at the revocation: they never count again
    # (match, value, ISO time) of addresses closed for letting nothing through: only a later login reopens one
    closed: tuple = ()

    # Rendered even when None (0.3 rendered them so); the fields after them only when set.
    ALWAYS = ("user_pk", "slot", "slots", "priority", "action", "placeholder", "ipv6_prefix", "sessions",
              "expire_days", "not_before")
    # What a run keeps of a recorded body mapping: what expiry wrote into it.
    KEPT = ("not_before", "revoked_sessions", "closed")
    # What decides the addresses a rule holds (the rest is its place and shape).
    VALUES = ("user_pk", "slots", "placeholder", "ipv6_prefix", "sessions", "expire_days", "group",
              "private_networks")

    def __post_init__(self):
        for name in ("private_networks", "revoked_sessions"):  # read back as lists
            object.__setattr__(self, name, tuple(getattr(self, name) or ()))
        object.__setattr__(self, "closed", tuple(tuple(entry) for entry in self.closed or ()))
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
        for name in ("action", "previous_action"):
            if getattr(self, name) is not None and getattr(self, name) not in ACTIONS:
                raise ValueError("body setting %s must be one of %s, got %r"
                                 % (name, ", ".join(ACTIONS), getattr(self, name)))
        for name in ("placeholder", "not_before", "group"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise ValueError("body setting %s must be a string, got %r" % (name, getattr(self, name)))
        if not isinstance(self.sessions, bool):
            raise ValueError("body setting sessions must be true or false, got %r" % (self.sessions,))
        for network in self.private_networks:
            if opt_in_error(network):
                raise ValueError("body setting private_networks: %r %s" % (network, opt_in_error(network)))
        if not all(isinstance(uuid, str) for uuid in self.revoked_sessions):
            raise ValueError("body setting revoked_sessions must list session uuids")
        if not all(len(entry) == 3 and entry[0] in ("IP", "CIDR") and all(isinstance(v, str) for v in entry)
                   for entry in self.closed):
            raise ValueError("body setting closed must list [match, value, ISO time] of closed addresses")

    @classmethod
    def of(cls, settings, user_pk, slot, priority, recorded=None):
        """What the whitelist's ``settings`` (an options.Settings) give rule ``slot`` of a user; what the user's
        body mapping ``recorded`` (a revocation, closed addresses) stays."""
        kept = recorded.kept() if recorded is not None else {}
        return cls(user_pk=user_pk, slot=slot, slots=settings.max_addresses, priority=priority,
                   action=settings.action, placeholder=settings.placeholder, ipv6_prefix=settings.ipv6_prefix,
                   sessions=settings.follow_sessions, expire_days=settings.expire_days,
                   group=settings.users_from_group, private_networks=settings.private_networks, **kept)

    def under(self, settings):
        """These settings as ``settings`` would render them; the user, rule, priority, revocation and closed
        addresses stay."""
        return replace(BodySettings.of(settings, self.user_pk, self.slot, self.priority, self),
                       previous_priority=self.previous_priority, previous_action=self.previous_action)

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
        return any(getattr(self, name) != getattr(recorded, name) for name in self.VALUES)

    def shapes(self):
        """(action, priority) pairs a rule recorded by these settings may have: its own, and while it changes
        shape, the one it comes from."""
        actions = set([self.action, self.previous_action or self.action])
        priorities = set([self.priority, self.priority if self.previous_priority is None else self.previous_priority])
        return set((a, p) for a in actions for p in priorities)

    def with_changes(self, **changes):
        return replace(self, **changes)

    def kept(self):
        """{setting: value} of what a run keeps of this body mapping (``KEPT``)."""
        return dict((name, getattr(self, name)) for name in self.KEPT)

    @classmethod
    def kept_of_all(cls, bodies):
        """What a run keeps, merged over all of a user's body mappings: the newest revocation, every session
        any of them ended, every closed address at its latest closing. A slot made after a revocation or a closing
        (max_addresses raised, a mapping recreated) must not forget it. {} for no body mapping."""
        bodies = [body for body in bodies if body is not None]
        if not bodies:
            return {}
        revocations = [body.not_before for body in bodies if body.not_before]
        sessions, closed = [], {}
        for body in bodies:
            sessions.extend(uuid for uuid in body.revoked_sessions if uuid not in sessions)
            for match, value, when in body.closed:
                seen = closed.get((match, value))
                if seen is None or _instant(when) > _instant(seen):
                    closed[(match, value)] = when
        return dict(not_before=max(revocations, key=_instant) if revocations else None,
                    revoked_sessions=tuple(sessions), closed=tuple((m, v, w) for (m, v), w in closed.items()))

    # -- rendering ---------------------------------------------------------
    def settings(self):
        """The settings block's entries, in order (as the expression's ``SETTINGS``)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in self.ALWAYS or (value is not None and value != ()):
                out[f.name] = [list(v) if isinstance(v, tuple) else v for v in value] if isinstance(
                    value, tuple) else value
        return out

    def expression(self):
        """The body mapping: a full rule update computed from authentik's state when it is sent."""
        return render_body(self.settings(), BODY_CODE.splitlines())


BODY_CODE = "\n".join([
    "from authentik.core.models import Group, User",
    "from authentik.events.models import Event",
    "from django.utils.timezone import now",
    "pk = SETTINGS['user_pk']",
    "active = User.objects.filter(pk=pk, is_active=True).exists()",
    "member = SETTINGS.get('group') is None or Group.objects.filter(name=SETTINGS['group'], users__pk=pk).exists()",
    "logins, sessions = [], []",
    "if active and member and (not SETTINGS['sessions'] or SETTINGS['not_before']):",
    "    found = Event.objects.filter(action='login', user__pk=pk).order_by('-created')[:%d]" % LOGIN_SCAN,
    "    logins = [(event.created, event.client_ip) for event in found]",
    "if active and member and SETTINGS['sessions']:",
    "    from authentik.core.models import AuthenticatedSession",
    "    live = AuthenticatedSession.objects.filter(user__pk=pk, session__expires__gt=now())",
    "    sessions = [(found.session.last_used, found.session.last_ip, found.uuid) for found in live]",
    "entries = user_entries(SETTINGS, now(), active, member, logins, sessions)",
    "match, value = entries[SETTINGS['slot'] - 1]",
    "return {",
    "    'action': SETTINGS['action'],",
    "    'match': match,",
    "    'value': value,",
    "    'priority': SETTINGS['priority'],",
    "    'enabled': True,",
    "}",
])

EVENT_BODY_CODE = [
    "event = request.context['notification'].event",
    "entry = rule_entry(getattr(event, 'client_ip', None), SETTINGS['ipv6_prefix'], "
    "SETTINGS.get('private_networks') or [])",
    "match, value = entry or ('IP', SETTINGS['placeholder'])",
    "return {",
    "    'action': SETTINGS['action'],",
    "    'match': match,",
    "    'value': value,",
    "    'priority': SETTINGS['priority'],",
    "    'enabled': SETTINGS['enabled'],",
    "}",
]


def event_body_expression(priority, action="ACCEPT", placeholder=PLACEHOLDER, enabled=True, ipv6_prefix=0,
                          private_networks=()):
    """The body mapping of a hand-built chain: a full rule update whose value is the address of the event that
    made authentik send it, written as ``holdings.rule_entry`` writes it; an address that may not become a rule
    (``holdings.refusal``) sends the placeholder."""
    if not is_int(priority):
        raise InputError("priority must be an integer, got %r" % (priority,))
    if not is_int(ipv6_prefix) or not 0 <= ipv6_prefix <= 128:
        raise InputError("ipv6_prefix must be an integer from 0 (off) to 128, got %r" % (ipv6_prefix,))
    settings = dict(priority=priority, action=action, placeholder=placeholder, enabled=bool(enabled),
                    ipv6_prefix=ipv6_prefix)
    if private_networks:
        settings["private_networks"] = list(private_networks)
    return render_body(settings, EVENT_BODY_CODE)


__all__ = ["BodySettings", "render_body", "event_body_expression"]
