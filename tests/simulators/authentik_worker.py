"""authentik's worker, as the authentik simulator runs it: the message queue, task rows, the actors.

One of the parts ``tests/simulators/authentik.py`` puts together. Section numbers refer to
the project's authentik API reference.

Every event runs the notification pipeline: rules -> bound policies (mode any) ->
recipients -> transports, with real Python expressions (evaluated by the worker when it
runs the task, against the state of that moment) and webhook POSTs with retries (§4, §10,
§11).

The worker (§10.7, §16-17) is a queue of messages, oldest first, like the Postgres
broker: saving an event enqueues ``event_trigger_dispatch``, which enqueues one
``event_trigger_handler`` per notification rule whatever the event, which enqueues one
``notification_transport`` per recipient and transport. The dispatch reads the rules
that exist when it runs (``NotificationRule.objects.all()`` in ``event_trigger_dispatch``),
so a new rule's own ``model_created`` event reaches that rule too: creating 25 rules
queues 325 handlers here, where §17 counted 300 on a real server. The source is
followed; the simulator's handler counts may be that much higher than a real server's.
``worker=`` picks who runs it:

* ``"sync"`` (default): the request that saved the event drains the queue before it
  answers, so a test sees the delivery at once;
* ``"background"``: ``worker_threads`` threads run it while the API keeps answering,
  as the real worker does; ``task_costs`` gives each actor the seconds of work a task
  costs (the real worker spends tens of ms per task), so a backlog builds up and
  logins wait behind it; ``task_cost_per_queued`` adds that many seconds to a task's
  cost for every message queued when it starts (the real worker slows down under a
  backlog: §16-17's drains took time growing with the square of the backlog); tests
  wait with ``wait_idle()`` or on a condition;
* ``"manual"``: nothing runs until a test calls ``step()`` / ``run_until_idle()``.

A failed task is retried with exponential backoff (``retry_backoff`` * 2**n) up to
``max_retries`` (Dramatiq's 5, 20 before 2025.8.4, Celery's 3 before 2025.8; before
2025.8 only a transport's delivery error is retried). ``pause_worker(actors)`` leaves
the messages of those actors queued (a stalled worker); ``enqueued`` counts the
messages sent per actor, which is what the load tests measure.

Task rows (>= 2025.8, Dramatiq; the API serves them as ``/tasks/tasks/``): the pipeline
records the rows the real worker writes (§10.7, §16): saving an event enqueues
``event_trigger_dispatch`` (no rel_obj), which enqueues one ``event_trigger_handler`` per
rule (rel_obj = the rule), which enqueues one ``notification_transport`` per recipient and
transport (rel_obj = the transport, ``authentik_events``/``notificationtransport``). Actor
names are ``authentik.events.tasks.<function>`` (django_dramatiq_postgres'
``FullyQualifiedActorName`` middleware: module + function), queue ``default``; these
exact names were derived from source, not observed on a running server. Task states
and logs follow ``TaskLogMiddleware`` and the Postgres broker:

* queued ("Task has been queued") -> consumed ("Task is being processed") -> done
  ("Task finished processing without errors");
* a failed attempt logs an ``error`` entry whose ``event`` is ``str(exception)``: for a
  non-2xx answer that is ``NotificationTransportError(response.text)``, the *response
  body* (the requests ``"404 Client Error: ..."`` text is the chained cause in
  ``attributes.exception``), for a connection error the requests exception text. With
  retries left the earlier logs move to ``previous_logs``, "Task will be retried" is
  logged, ``retries`` goes up and the row is queued again (with an ``eta``); when the
  retries are used up the row is ``rejected`` with ``retries`` = the retry count;
* a webhook mapping exception: the ``property_mapping_exception`` event as before and an
  ``error`` log on the transport row whose ``event`` is ``""``
  (``str(PropertyMappingExpressionException)``; the mapping's exception is the chained
  cause). Dramatiq retries it like any exception, one event per attempt, and rejects
  the row when the retries are spent;
* deleting a rule or transport deletes its task rows (GenericRelation cascade), so a
  queued handler of a deleted rule never runs;
* not modelled: ``system_task_exception`` events (both exceptions above subclass
  ``SentryIgnoredException``, which the middleware skips, so the real worker records none
  for them either), email ``send_mail`` tasks. Worker status rows: ``worker_processes`` rows that check
  in, none after ``worker_down()``. At most ``task_limit`` rows
  are kept (finished ones are purged oldest first, like the broker's expiry).
"""

import time
import uuid
from contextlib import contextmanager
from datetime import timedelta

import requests

from tests.simulators.authentik_expressions import MappingFailed, Notification, error_string
from tests.simulators.authentik_store import ExprUser, norm_uuid, now

TASK_STATES = ("queued", "consumed", "preprocess", "running", "postprocess", "rejected", "done")
TASK_STATUSES = TASK_STATES + ("info", "warning", "error")
TASK_LOGGER = "authentik.tasks.middleware.TaskLogMiddleware"  # class_to_path(TaskLogMiddleware)
ACTORS = ("event_trigger_dispatch", "event_trigger_handler", "notification_transport")
TASK_DESCRIPTIONS = {  # the actors' ``description`` option (authentik/events/tasks.py)
    "event_trigger_dispatch": "Dispatch new event notifications.",
    "event_trigger_handler": "Check if policies attached to NotificationRule match event and dispatch "
                             "notification tasks.",
    "notification_transport": "Send notification.",
}


class TransportError(Exception):
    """What a failed ``notification_transport`` raises; ``task_log`` is (logged message, exception chain)."""

    def __init__(self, message, chain):
        super().__init__(message)
        self.task_log = (message, chain)


class AuthentikWorker:
    """The worker: the broker's queue, who runs it, the actors, the task rows and the transport's POSTs.

    A mixin of ``AuthentikSimulator``; the actors read the store's records and evaluate rules
    and mappings with the expressions' policy engine (``_rule_passes``, ``_eval_mapping``).
    """

    @property
    def max_retries(self):
        if self._max_retries is not None:
            return self._max_retries
        if self.vt < (2025, 8):
            return 3  # Celery default (§10.7)
        return 20 if self.vt < (2025, 8, 4) else 5  # Dramatiq task_max_retries

    def reset_counts(self):
        with self.lock:
            self.enqueued = dict.fromkeys(ACTORS, 0)
            self.busy_delete_refusals = self.busy_deletes_gone = 0

    # -- the queue, like the Postgres broker ------------------------------------------
    def _enqueue(self, actor, args, rel=None, delay=None):
        """Send a message; before 2025.8 (Celery) there is no task row, only the message."""
        with self.lock:
            self.enqueued[actor] += 1
            message = {"actor": actor, "args": args, "task": self._new_task(actor, rel), "attempt": 0,
                       "eta": time.monotonic() + delay if delay else None,
                       "rel": str(rel[2]) if rel else None}
            self._messages.append(message)
            self._work.notify()
            return message

    def _runnable(self, message, at=None):
        if message["actor"] in self._paused:
            return False
        return message["eta"] is None or message["eta"] <= (at if at is not None else time.monotonic())

    def _take(self):
        """The oldest runnable message, taken off the queue; None when nothing is due. Lock held."""
        at = time.monotonic()
        for index, message in enumerate(self._messages):
            if self._runnable(message, at):
                del self._messages[index]
                task = message["task"]
                if task is not None and task["message_id"] not in self.tasks:
                    continue  # its row went with a deleted object: the message never runs
                self._running += 1
                return message
        return None

    def _execute(self, message):
        """Run one message (called WITHOUT the lock); retries with backoff like Dramatiq's Retries."""
        cost = self.task_costs.get(message["actor"]) or 0
        if cost and self.task_cost_per_queued:
            with self.lock:
                cost += self.task_cost_per_queued * len(self._messages)
        if cost:
            time.sleep(cost)
        task = message["task"]
        try:
            with self.lock:
                self._task_start(task)
            getattr(self, "_actor_" + message["actor"])(message, *message["args"])
        except Exception as exc:  # noqa: BLE001 - the worker keeps running, like the real one
            with self.lock:
                message["attempt"] += 1
                message_text, chain = getattr(exc, "task_log", (error_string(exc), [(type(exc).__name__,
                                                                                     str(exc), False)]))
                retry = message["attempt"] <= self.max_retries and self._retried(message["actor"], exc)
                delay = self.retry_backoff * 2 ** (message["attempt"] - 1) if retry else None
                self._task_fail(task, message_text, chain, delay)
                if retry:
                    message["eta"] = time.monotonic() + delay
                    self._messages.append(message)
                    self._work.notify()
        else:
            with self.lock:
                self._task_finish(task)
        finally:
            with self.lock:
                self._running -= 1
                self._work.notify_all()

    def _retried(self, actor, exc):
        """Dramatiq (2025.8+) retries any exception; Celery retried only a transport's delivery error
        (``autoretry_for=(NotificationTransportError,)``), never a mapping exception (§10.7)."""
        if self.vt >= (2025, 8):
            return True
        return (actor == "notification_transport" and isinstance(exc, TransportError) and
                not isinstance(exc.__cause__, MappingFailed))

    def _worker_loop(self):
        while True:
            with self.lock:
                message = self._take()
                while message is None:
                    self._work.wait(self._next_due())
                    message = self._take()
            self._execute(message)

    def _next_due(self):
        """Seconds until the next delayed message is due (lock held), for the worker's wait."""
        etas = [m["eta"] for m in self._messages if m["eta"] is not None and m["actor"] not in self._paused]
        return max(0.001, min(etas) - time.monotonic()) if etas else 0.5

    def _drain(self):
        """The synchronous worker: run everything before returning. Call WITHOUT holding the lock:
        a webhook target may be another simulator (or this one) in the same process."""
        if self.worker_mode != "sync":
            return
        for _ in range(self.drain_budget):
            with self.lock:
                message = self._take()
                if message is None:
                    due = [m["eta"] for m in self._messages if m["actor"] not in self._paused and m["eta"]]
                    if not due:
                        return
            if message is None:  # only retries waiting out their backoff
                time.sleep(max(0.0, min(due) - time.monotonic()))
                continue
            self._execute(message)

    def step(self, count=1):
        """Run the next ``count`` due messages in the calling thread (manual worker); how many ran."""
        ran = 0
        while ran < count:
            with self.lock:
                message = self._take()
            if message is None:
                break
            self._execute(message)
            ran += 1
        return ran

    def run_until_idle(self, timeout=10.0):
        """Step until nothing is left (waiting out retry backoffs); True when idle."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.step(100):
                continue
            if self.idle:
                return True
            time.sleep(0.005)
        return self.idle

    @property
    def idle(self):
        """No message the worker would run, now or after a backoff, and none running."""
        with self.lock:
            return self._running == 0 and not any(m["actor"] not in self._paused for m in self._messages)

    def wait_idle(self, timeout=10.0):
        """Wait until the worker has nothing left to do (messages of paused actors excepted)."""
        if self.worker_mode == "manual":
            return self.run_until_idle(timeout)
        deadline = time.monotonic() + timeout
        with self.lock:
            while not self.idle:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._work.wait(min(left, 0.05))
        return True

    def pause_worker(self, actors=None):
        """Leave messages of ``actors`` (default: all) queued until ``resume_worker()``: a backlog (§16)."""
        with self.lock:
            self._paused = set(actors or ACTORS)

    def resume_worker(self):
        """Let the worker run the held messages. Call WITHOUT holding the lock (the sync worker drains here)."""
        with self.lock:
            self._paused = set()
            self._work.notify_all()
        self._drain()

    def worker_down(self):
        """A stopped worker container: nothing runs, and no worker checks in (``/tasks/workers/`` is empty)."""
        self.pause_worker()
        with self.lock:
            self._worker_down = True

    def worker_up(self):
        """The worker container started again. Call WITHOUT holding the lock."""
        with self.lock:
            self._worker_down = False
        self.resume_worker()

    def workers(self):
        """``WorkerView``: one row per worker process that checked in within 45 s."""
        with self.lock:
            if self._worker_down:
                return []
            version = self.worker_version or self.version
            return [{"worker_id": "%d@authentik-worker" % (index + 1), "version": version,
                     "version_matching": version == self.version} for index in range(self.worker_processes)]

    def age_queue(self, seconds):
        """Time passing for the queue, on a simulated clock: every queued task row was queued ``seconds``
        earlier (its ``mtime``), as a worker that fell behind leaves it."""
        with self.lock:
            for task in self.tasks.values():
                if task["state"] == "queued":
                    task["mtime"] -= timedelta(seconds=seconds)

    @property
    def worker_paused(self):
        return bool(self._paused)

    def reorder_queue(self, actor, repeat=0):
        """Deliveries late, out of order and repeated, as retries and at-least-once delivery make them:
        the queued messages of ``actor`` in reverse order, then the ``repeat`` oldest of them once more."""
        with self.lock:
            held = [m for m in self._messages if m["actor"] == actor]
            others = [m for m in self._messages if m["actor"] != actor]
            again = [dict(m, attempt=0) for m in held[:repeat]]
            self._messages[:] = others + held[::-1] + again

    def queued_messages(self, actor=None):
        with self.lock:
            return sum(1 for m in self._messages if actor is None or m["actor"] == actor)

    def _busy(self, pk):
        """Whether the worker still holds messages for the object (queued or running)."""
        pk = str(pk)
        return any(m["rel"] == pk for m in self._messages) or any(
            t["rel_obj_id"] == pk and t["state"] in ("consumed", "running") for t in self.tasks.values())

    @contextmanager
    def _unlocked(self):
        """Temporarily drop the request lock taken by the base dispatcher."""
        try:
            self.lock.release()
            held = True
        except RuntimeError:
            held = False
        try:
            yield
        finally:
            if held:
                self.lock.acquire()

    # -- the actors (authentik/events/tasks.py) ----------------------------------------
    def _actor_event_trigger_dispatch(self, message, event_uuid):
        """One ``event_trigger_handler`` per rule, by name, whatever the event."""
        with self.lock:
            for rule in sorted(self.rules.values(), key=lambda r: r["name"]):
                self._enqueue("event_trigger_handler", (event_uuid, rule["name"]),
                              ("authentik_events", "notificationrule", rule["pk"]))

    def _actor_event_trigger_handler(self, message, event_uuid, rule_name):
        """Loop guard, the rule's policies (mode any), then one transport message per recipient."""
        task = message["task"]
        with self.lock:
            event = self._event(event_uuid)
            rule = next((r for r in self.rules.values() if r["name"] == rule_name), None)
            if event is None or rule is None:
                return  # deleted or renamed since: the handler returns quietly
            guard = event.context.get("policy_uuid")
            if guard:  # loop guard: events about a policy bound to any rule are ignored (§10.8)
                try:
                    guard = norm_uuid(guard)
                except ValueError:
                    guard = None
                if guard and any(b["policy"] == guard and b["target"] in self.rules for b in self.bindings.values()):
                    return
            if not self._rule_passes(rule, event, self._expr_user(event.user.get("pk"))):
                return
            recipients = self._recipients(rule, event)
            count = 0
            for tr_pk in rule["transports"]:
                transport = self.transports.get(tr_pk)
                if not transport:
                    continue
                for user in recipients:
                    count += 1
                    self._enqueue("notification_transport", (transport["pk"], event_uuid, user.pk, rule["pk"]),
                                  ("authentik_events", "notificationtransport", transport["pk"]))
                    if transport["send_once"]:
                        break
            self._task_log(task, "info", "Created %d notification tasks" % count,
                           logger=task["actor_name"] if task else None)

    def _actor_notification_transport(self, message, transport_pk, event_uuid, user_pk, rule_pk):
        """Look everything up again, evaluate the mappings now, then POST (§10)."""
        with self.lock:
            event = self._event(event_uuid)
            rec = self.users.get(user_pk)
            rule = self.rules.get(rule_pk)
            transport = self.transports.get(transport_pk)
            if event is None or rec is None or rule is None or transport is None:
                return
            notification = Notification(event, ExprUser(self, rec), rule["severity"], event.summary)
            try:
                job = self._send_prepare(transport, rule, notification)
            except MappingFailed as exc:  # PropertyMappingExpressionException: str() is empty
                raise TransportError("", [("PropertyMappingExpressionException", "", False),
                                          (type(exc.__cause__).__name__, str(exc.__cause__), True)]) from exc
        if job is None:
            return  # local / email: done inside the task
        record, resp = self._post_once(job)
        with self.lock:
            record["attempt"] = message["attempt"] + 1
            self.deliveries.append(record)
        if resp is None or not resp.ok:
            message, chain = self._send_error(job, resp)
            raise TransportError(message, chain)

    def _recipients(self, rule, event):
        users = []
        if self.vt >= (2025, 8) and rule["destination_event_user"] and event.user.get("pk"):
            if event.user["pk"] in self.users:
                users.append(ExprUser(self, self.users[event.user["pk"]]))
        group = self.groups.get(rule["destination_group"]) if rule["destination_group"] else None
        if group:
            users.extend(ExprUser(self, self.users[pk]) for pk in group["users"] if pk in self.users)
        return users

    # -- worker task rows (>= 2025.8) ---------------------------------------
    def _new_task(self, actor, rel=None):
        """A task row as the Postgres broker writes it on enqueue; None before the Dramatiq era."""
        if self.vt < (2025, 8):
            return None
        stamp = now()
        self._task_seq += 1
        app, model, obj = rel or (None, None, None)
        task = {"message_id": str(uuid.uuid4()), "queue_name": "default", "actor": actor,
                "actor_name": "authentik.events.tasks." + actor, "state": "queued", "mtime": stamp, "retries": 0,
                "eta": None, "rel_obj_app_label": app, "rel_obj_model": model,
                "rel_obj_id": str(obj) if obj is not None else None, "logs": [], "previous_logs": [],
                "seq": self._task_seq}
        self._task_log(task, "info", "Task has been queued", {"delay": None})
        self.tasks[task["message_id"]] = task
        if len(self.tasks) > self.task_limit:
            self._purge_tasks()
        return task

    def _purge_tasks(self):
        """Drop the oldest finished rows down to 80 % of ``task_limit`` (queued ones stay)."""
        excess = len(self.tasks) - self.task_limit * 4 // 5
        finished = [m for m, t in self.tasks.items() if t["state"] in ("done", "rejected")][:max(excess, 0)]
        for message_id in finished:
            del self.tasks[message_id]

    def _drop_tasks_of(self, pk):
        self.tasks = {m: t for m, t in self.tasks.items() if t["rel_obj_id"] != str(pk)}

    @staticmethod
    def _task_log(task, level, message, attributes=None, logger=TASK_LOGGER):
        if task is not None:
            task["logs"].append({"event": message, "log_level": level, "logger": logger, "timestamp": now(),
                                 "attributes": attributes or {}})

    def _task_start(self, task):
        if task is not None:
            task.update(state="consumed", mtime=now())
            self._task_log(task, "info", "Task is being processed")

    def _task_finish(self, task):
        if task is not None:
            self._task_log(task, "info", "Task finished processing without errors")
            task.update(state="done", eta=None, mtime=now())

    def _task_fail(self, task, message, chain, retry_in=None):
        """An exception in the actor: error log, then a retry (queued again) or rejected.
        ``chain``: (type name, str, is_cause) from the raised exception down its causes."""
        if task is None:
            return
        exception = [{"exc_type": name, "exc_value": text, "exc_notes": [], "syntax_error": None,
                      "is_cause": cause, "is_group": False, "exceptions": [], "frames": []}
                     for name, text, cause in chain]
        self._task_log(task, "error", message, {"exception": exception})
        stamp = now()
        if retry_in is None:
            task.update(state="rejected", eta=None, mtime=stamp)
            return
        task["previous_logs"].extend(task["logs"])  # re-enqueue marks the earlier logs previous
        task["logs"] = []
        self._task_log(task, "info", "Task will be retried", {"delay": int(retry_in * 1000)})
        task.update(state="queued", retries=task["retries"] + 1, eta=stamp + timedelta(seconds=retry_in),
                    mtime=stamp)

    # -- the transports (NotificationTransport.send) -------------------------------------
    def _prepare(self, transport, rule, notification):
        """``transport.send()`` up to the HTTP request (§10): a job to post, or None."""
        try:
            return self._send_prepare(transport, rule, notification)
        except MappingFailed:
            return None

    def _send_prepare(self, transport, rule, notification):
        """Like ``_prepare``, but a mapping exception raises ``MappingFailed``."""
        mode = transport["mode"]
        if mode == "local":  # body mapping evaluated, result discarded
            if transport["webhook_mapping_body"]:
                self._eval_mapping(transport["webhook_mapping_body"], notification)
            self.notifications.append({"user": notification.user.pk, "event": notification.event,
                                       "severity": notification.severity, "body": notification.body,
                                       "rule": rule["name"]})
            return None
        if mode == "email":
            if notification.user.email:
                self.outbox.append({"to": notification.user.email, "template": transport["email_template"],
                                    "subject": transport["email_subject_prefix"] + notification.body[:75],
                                    "body": notification.body, "event": notification.event.action,
                                    "rule": rule["name"], "transport": transport["name"]})
            return None
        headers = {}
        if mode == "webhook_slack":  # mappings ignored (§10.10)
            body = self._slack_body(notification)
        else:
            body = self._default_body(notification)
            if transport["webhook_mapping_body"]:
                body = self._eval_mapping(transport["webhook_mapping_body"], notification)
            if transport["webhook_mapping_headers"] and self.vt >= (2025, 4):
                headers = self._eval_mapping(transport["webhook_mapping_headers"], notification) or {}
        return {"url": transport["webhook_url"], "body": body, "headers": headers, "rule": rule["name"],
                "transport": transport["name"], "mode": mode, "recipient": notification.user.username,
                "event": notification.event.action, "version": self.version}

    @staticmethod
    def _default_body(notification):
        body = {"body": notification.body, "severity": notification.severity,
                "user_email": notification.user.email, "user_username": notification.user.username}
        if notification.event and notification.event.user:
            body["event_user_email"] = notification.event.user.get("email", None)
            body["event_user_username"] = notification.event.user.get("username", None)
        return body

    def _slack_body(self, notification):
        fields = [{"title": "Severity", "value": notification.severity, "short": True}]
        if notification.event and notification.event.user:
            fields.append({"title": "Event user", "value": str(notification.event.user.get("username")),
                           "short": True})
        return {"username": "authentik", "icon_url": "https://goauthentik.io/img/icon.png",
                "attachments": [{"author_name": "authentik", "author_link": "https://goauthentik.io",
                                 "title": notification.body, "color": "#fd4b2d", "fields": fields,
                                 "footer": "authentik %s" % self.version}]}

    def _post_once(self, job):
        """One POST like ``get_http_session().post(url, json=..., headers=...)`` (§10.4)."""
        record = {k: job[k] for k in ("url", "body", "rule", "transport", "mode", "recipient", "event")}
        session = requests.Session()
        session.headers["User-Agent"] = "authentik@%s" % job["version"]
        record["headers"] = {**session.headers, **(job["headers"] or {})}
        try:
            resp = session.post(job["url"], json=job["body"], headers=job["headers"] or None,
                                timeout=self.webhook_timeout, verify=self.webhook_verify)
            record.update(headers=dict(resp.request.headers), status=resp.status_code, response=resp.text[:4096],
                          exception=None)
            if not resp.ok:  # raise_for_status -> NotificationTransportError
                record["exception"] = "%s Error for url: %s" % (resp.status_code, job["url"])
            return record, resp
        except (requests.RequestException, ValueError, TypeError, AttributeError) as exc:
            record.update(status=None, response=None, exception=str(exc))
            job["error"] = exc  # for the task row's error log
            return record, None
        finally:
            session.close()

    @staticmethod
    def _send_error(job, resp):
        """What ``send_webhook`` raises: ``NotificationTransportError(response.text)`` for a non-2xx
        answer, ``NotificationTransportError(str(exc))`` for a requests error (the requests exception
        chained as the cause), any other exception as it is. Returns (str, chain)."""
        if resp is not None:
            try:
                resp.raise_for_status()
                cause = ("HTTPError", "%s Error for url: %s" % (resp.status_code, job["url"]))
            except requests.HTTPError as exc:
                cause = ("HTTPError", str(exc))
            return resp.text, [("NotificationTransportError", resp.text, False), cause + (True,)]
        exc = job.pop("error", None)
        text = str(exc)
        if isinstance(exc, requests.RequestException):
            return text, [("NotificationTransportError", text, False), (type(exc).__name__, text, True)]
        return text, [(type(exc).__name__, text, False)]
