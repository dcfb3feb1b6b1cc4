"""How long logins wait for authentik's worker, from the head of its queue as ``/tasks/tasks/`` lists it
(``state=queued``, oldest ``mtime`` first): a retry waiting out its backoff is not waiting for the worker."""

from datetime import datetime, timedelta, timezone

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._checks.doctor import queue_wait

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def row(queued_ago, eta_in=None):
    eta = None if eta_in is None else (NOW + timedelta(seconds=eta_in)).isoformat().replace("+00:00", "Z")
    return {"mtime": (NOW - timedelta(seconds=queued_ago)).isoformat().replace("+00:00", "Z"), "eta": eta}


def test_an_empty_queue_makes_nobody_wait():
    assert queue_wait([], NOW) == 0.0


def test_the_oldest_due_task_is_what_a_login_waits_behind():
    assert queue_wait([row(42), row(3)], NOW) == 42.0


def test_a_retry_still_in_its_backoff_is_skipped():
    assert queue_wait([row(600, eta_in=30), row(7)], NOW) == 7.0
    assert queue_wait([row(600, eta_in=30)], NOW) == 0.0


def test_a_retry_that_is_due_waits_from_its_eta():
    assert queue_wait([row(600, eta_in=-12)], NOW) == 12.0


def test_a_row_without_a_readable_time_is_skipped():
    assert queue_wait([{"mtime": None, "eta": None}, row(5)], NOW) == 5.0
