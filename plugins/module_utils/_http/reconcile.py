# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one reconcile path every module follows: find → compare → write → diff.

An ``ObjectKind`` says how to find, create, update and delete one kind of
API object and which fields it compares. ``Reconciler.ensure`` does the rest
the same way for all of them: check mode (nothing written, same ``changed``),
diff views, secret redaction, and the rule that a create whose answer was
lost is never re-sent before looking whether it happened.
"""

from __future__ import annotations

import copy
import time

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.client import ApiError
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.secrets import REDACTED

# A delete authentik refuses as busy (an empty 405 while its worker holds tasks for the object) of an
# object that is still there is tried again, backing off up to DELETE_BACKOFF_MAX seconds between tries,
# for DELETE_BUDGET seconds in all: authentik was seen to give way within a few tries.
DELETE_BACKOFF_MAX = 8.0
DELETE_BUDGET = 120.0


class ObjectKind(object):
    """How to manage one kind of object. Subclasses override the hooks.

    ``desired`` dicts hold only the fields the caller manages, and a field set
    to None is managed too: it is compared, and written as none (a recipient
    group taken away is cleared, not kept). A module leaves out the options it
    was not given (``given``). ``views`` are plain dicts with an ``id`` key and
    the comparable fields, used for results and diffs.
    """

    label = "object"
    id_field = "id"
    secret_fields = ()  # fields always shown redacted (their value embeds a secret)
    unordered_fields = ()  # list fields compared as sets

    def describe(self, desired):
        return self.label

    def diff_views(self, before, after, verbose=False):
        """The two sides of a diff as a person reads them (both already redacted); as they are by default."""
        return before, after

    def is_secret(self, field, view):
        """Whether ``field`` of ``view`` must never be shown."""
        return field in self.secret_fields

    def find(self, desired):
        raise NotImplementedError

    def refind(self, desired):
        """Look again, bypassing any cache (after a write whose outcome is unknown)."""
        return self.find(desired)

    def exists(self, current, desired):
        """Whether the object ``current`` is still there (after a failed delete)."""
        return self.refind(desired) is not None

    def create(self, desired):
        raise NotImplementedError

    def update(self, current, desired, changes):
        raise NotImplementedError

    def delete(self, current):
        raise NotImplementedError

    # -- comparison ------------------------------------------------------
    def comparable(self, desired):
        """The fields of ``desired`` that take part in the comparison: all of them."""
        return dict(desired)

    def same(self, field, current_value, desired_value):
        if field in self.unordered_fields:
            return sorted(map(str, current_value or [])) == sorted(map(str, desired_value or []))
        return current_value == desired_value

    def changes(self, current, desired):
        """Fields whose desired value differs from the current one."""
        return dict((k, v) for k, v in self.comparable(desired).items()
                    if not self.same(k, current.get(k), v))

    def predict(self, current, desired):
        """What the object will look like after the write (check mode)."""
        after = copy.deepcopy(current) if current else {self.id_field: None}
        after.update(self.comparable(desired))
        return after

    def verify(self, written, desired):
        """Fail when the server did not take what was sent.

        authentik silently drops unknown fields (a wrong field name for the
        server's version); a re-read that disagrees must not pass as success.
        """
        left = self.changes(written, desired)
        if left:
            raise ApiError("%s: the server accepted the write but did not store %s; is the server version "
                           "supported?" % (self.describe(desired), ", ".join(sorted(left))))


def given(**fields):
    """A desired object from a module's options: the options that were not given are not managed."""
    return dict((k, v) for k, v in fields.items() if v is not None)


class Outcome(object):
    def __init__(self, kind, desired, before, after, operation):
        self.kind = kind
        self.desired = desired
        self.before = before
        self.after = after
        self.operation = operation  # "create", "update", "delete" or None

    @property
    def changed(self):
        return self.operation is not None

    def diff(self, redact, verbose=False):
        before = redact(self.kind, self.before, self.after) if self.before else None
        after = redact(self.kind, self.after, self.before) if self.after else None
        before, after = self.kind.diff_views(before, after, verbose)
        return {
            "before_header": self.kind.describe(self.desired),
            "after_header": self.kind.describe(self.desired),
            "before": _line_by_line(before) if before else {},
            "after": _line_by_line(after) if after else {},
        }


def _line_by_line(view):
    """Multi-line values as lists of lines, so a diff shows the one line that changed."""
    return dict((k, v.splitlines() if isinstance(v, str) and "\n" in v else v) for k, v in view.items())


class Reconciler(object):
    """Runs ``ObjectKind`` hooks in check mode or for real, and keeps the diffs."""

    def __init__(self, check_mode=False, secrets=None, create_attempts=2, warn=None, verbose=False):
        self.check_mode = check_mode
        self.verbose = verbose  # diffs show whole expressions
        self.secrets = secrets
        self.create_attempts = create_attempts
        self.warn = warn or (lambda msg: None)
        self.outcomes = []

    def ensure(self, kind, desired, state="present", current=None, lookup=True):
        """Bring one object to ``state``; return its Outcome.

        ``current`` may be passed when the caller already read it (bulk
        modules read each list once); ``lookup=False`` trusts that.
        """
        if lookup and current is None:
            current = kind.find(desired)
        if state == "absent":
            outcome = self._absent(kind, desired, current)
        elif current is None:
            outcome = self._create(kind, desired)
        else:
            outcome = self._update(kind, desired, current)
        self.outcomes.append(outcome)
        return outcome

    def _absent(self, kind, desired, current):
        if current is None:
            return Outcome(kind, desired, None, None, None)
        if not self.check_mode:
            self._delete(kind, desired, current)
        return Outcome(kind, desired, current, None, "delete")

    def _delete(self, kind, desired, current):
        """Delete, and be sure it is gone.

        A delete whose answer was lost may still have happened, and authentik under
        load answers 405 and leaves the object: look again, and while the object is
        there and the server refused it as busy, delete again with backoff.
        """
        wait, deadline = 0.5, time.monotonic() + DELETE_BUDGET
        while True:
            try:
                kind.delete(current)
                return
            except ApiError as exc:
                if not kind.exists(current, desired):
                    return
                if not exc.busy:
                    raise
                if time.monotonic() + wait > deadline:
                    raise ApiError(self._scrub(
                        "%s; refused as busy for %.0f s and still there: check authentik's worker (System > Tasks: "
                        "a backlog it does not drain?) and that nothing in front of authentik turns DELETE away, "
                        "then rerun" % (exc, DELETE_BUDGET)), exc.status, exc.body)
                self.warn(self._scrub("%s: the delete was refused (%s) and it is still there; deleting again in "
                                      "%.1fs" % (kind.describe(desired), "HTTP %s" % exc.status, wait)))
                time.sleep(wait)
                wait = min(wait * 2, DELETE_BACKOFF_MAX)

    def _scrub(self, text):
        return self.secrets.scrub(text) if self.secrets is not None else text

    def _create(self, kind, desired):
        if self.check_mode:
            return Outcome(kind, desired, None, kind.predict(None, desired), "create")
        attempt = 0
        while True:
            attempt += 1
            try:
                created = kind.create(desired)
                break
            except ApiError as exc:
                if not exc.uncertain and not _is_conflict(exc):
                    raise
                # The create may have happened (lost answer, 5xx, or another
                # run won a race for the name): look before creating again.
                found = kind.refind(desired)
                if found is not None:
                    return self._update(kind, desired, found, operation_if_same="create")
                if attempt >= self.create_attempts:
                    raise
        kind.verify(created, desired)
        return Outcome(kind, desired, None, created, "create")

    def _update(self, kind, desired, current, operation_if_same=None):
        changes = kind.changes(current, desired)
        if not changes:
            return Outcome(kind, desired, None if operation_if_same else current, current, operation_if_same)
        if self.check_mode:
            return Outcome(kind, desired, current, kind.predict(current, desired), "update")
        written = kind.update(current, desired, changes)
        kind.verify(written, desired)
        return Outcome(kind, desired, current, written, operation_if_same or "update")

    # -- output --------------------------------------------------------
    def redact(self, kind, view, other=None):
        """A copy of ``view`` safe to print: secret fields masked, secrets scrubbed.

        A secret field that differs from ``other`` is marked so a diff still
        shows that the (hidden) value changes.
        """
        if view is None:
            return None
        safe = copy.deepcopy(view)
        for field in list(safe):
            if safe[field] is not None and (kind.is_secret(field, view) or kind.is_secret(field, other)):
                differs = other is not None and other.get(field) != view.get(field)
                safe[field] = REDACTED + (" (differs)" if differs else "")
        if self.secrets is not None:
            safe = self.secrets.scrub_obj(safe)
        return safe

    def diffs(self):
        return [o.diff(self.redact, self.verbose) for o in self.outcomes if o.changed]

    @property
    def changed(self):
        return any(o.changed for o in self.outcomes)


def _is_conflict(exc):
    """authentik's 400 for a name that already exists (a concurrent create)."""
    body = exc.body
    if exc.status != 400 or not isinstance(body, dict):
        return False
    text = " ".join(str(v) for v in body.values())
    return "already exists" in text or "must make a unique set" in text
