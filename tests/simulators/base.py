"""Shared HTTP plumbing for the simulators: threading server, request log, faults, TLS.

A simulator subclasses ``SimulatorBase`` and implements ``handle(request)``
returning a ``Response``. Everything else (serving, logging what was asked,
injecting faults, HTTPS, the time a request takes) lives here so both simulators
behave the same way at the transport level.

``read_latency`` / ``write_latency`` (seconds, default 0: answer at once) make each
read (GET/HEAD/OPTIONS) or write request take that long on the server, as a real one
does (authentik ~0.03 s per read, ~0.09 s per write; Pangolin ~0.022 s per request,
argon2 on every key check). The wait happens in the request's own thread BEFORE
``handle()`` and OUTSIDE the simulator's lock, so concurrent requests and authentik's
background worker go on meanwhile; the state changes (and the events a write enqueues)
land at the end of the wait, as a real write commits at the end of its request.
Injected 429/5xx faults and ``timeout``/``reset`` answer without it.
"""

import json
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str  # path without the query string
    query: dict  # name -> list of values
    headers: dict  # lower-cased names
    raw_body: bytes
    client_ip: str

    def json(self):
        """Decoded JSON body; raises ValueError when it is not JSON."""
        if not self.raw_body:
            return None
        return json.loads(self.raw_body.decode("utf-8"))

    def q(self, name, default=None):
        values = self.query.get(name)
        return values[-1] if values else default


@dataclass
class Response:
    status: int
    body: object = None  # dict/list/str serialised as JSON, or bytes sent raw
    content_type: str = "application/json"
    headers: dict = field(default_factory=dict)

    def encode(self):
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode("utf-8")


@dataclass
class Fault:
    """One switchable fault.

    kind: "500", "502", "503", "504", "429", "timeout", "reset", "lost_answer".
    ``lost_answer`` lets the simulator perform the request, then drops the
    connection so the client never sees the answer.
    """

    kind: str
    method: str = None
    path_regex: str = None
    count: int = 1  # how many matching requests it hits; -1 = forever
    skip: int = 0  # let this many matching requests through first
    retry_after: int = 1  # seconds, for 429
    delay: float = 3.0  # seconds, for timeout

    def matches(self, req):
        if self.method and self.method.upper() != req.method:
            return False
        if self.path_regex and not re.search(self.path_regex, req.path):
            return False
        return True


@dataclass
class LogEntry:
    method: str
    path: str
    query: dict
    body: object
    status: int
    fault: str = None
    authorization: bool = False  # whether an Authorization header came along

    @property
    def is_write(self):
        return self.method not in ("GET", "HEAD", "OPTIONS")


class SimulatorBase:
    """Serve ``handle()`` over HTTP(S) on loopback in a background thread."""

    name = "simulator"

    def __init__(self, read_latency=0.0, write_latency=0.0):
        self.lock = threading.RLock()
        self.log = []
        self.faults = []
        self._server = None
        self._thread = None
        self.base_url = None
        # seconds a read / a write takes before it is handled (outside the lock); 0 = at once
        self.read_latency = read_latency
        self.write_latency = write_latency

    # -- lifecycle -----------------------------------------------------
    def start(self, host="127.0.0.1", port=0, certfile=None, keyfile=None):
        sim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def _serve(self):
                sim._dispatch(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        scheme = "http"
        if certfile:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(certfile, keyfile)
            self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
            scheme = "https"
        self.base_url = "%s://%s:%d" % (scheme, host, self._server.server_address[1])
        # short poll interval: stop() returns in ~50 ms instead of ~0.5 s
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self.base_url

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        if not self._server:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- faults and log ------------------------------------------------
    def inject(self, kind, method=None, path_regex=None, count=1, skip=0, retry_after=1, delay=3.0):
        fault = Fault(kind, method, path_regex, count, skip, retry_after, delay)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self):
        with self.lock:
            self.faults = []

    def _take_fault(self, req):
        with self.lock:
            for fault in self.faults:
                if fault.count == 0 or not fault.matches(req):
                    continue
                if fault.skip > 0:
                    fault.skip -= 1
                    continue
                if fault.count > 0:
                    fault.count -= 1
                return fault
        return None

    def writes(self):
        """Log entries of every request that could have changed state."""
        with self.lock:
            return [e for e in self.log if e.is_write and e.fault in (None, "lost_answer")]

    def accepted_writes(self):
        """The writes the server accepted (a 2xx answer): what changed state. A write the server refused (a
        permission probe answered 403, 400 or 404) changed nothing."""
        return [e for e in self.writes() if e.status is not None and 200 <= e.status < 300]

    def requests_by_method(self):
        counts = {}
        with self.lock:
            for entry in self.log:
                counts[entry.method] = counts.get(entry.method, 0) + 1
        return counts

    def reset_log(self):
        with self.lock:
            self.log = []

    # -- dispatch ------------------------------------------------------
    def handle(self, request):  # pragma: no cover - overridden
        raise NotImplementedError

    def latency(self, request):
        """Seconds ``request`` takes on the server before it is handled (slept outside the lock)."""
        return self.read_latency if request.method in ("GET", "HEAD", "OPTIONS") else self.write_latency

    def fault_response(self, status, fault):
        """The answer to an injected HTTP fault (429 or a 5xx).

        Each simulator answers the way its server does (its error envelope, its
        throttling message, its error page); a 429 always carries Retry-After.
        """
        return Response(status, {"detail": "injected fault %s" % status})

    def _dispatch(self, http):
        parts = urlsplit(http.path)
        length = int(http.headers.get("Content-Length") or 0)
        raw = http.rfile.read(length) if length else b""
        req = Request(
            method=http.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in http.headers.items()},
            raw_body=raw,
            client_ip=http.client_address[0],
        )
        try:
            body = req.json()
        except ValueError:
            body = raw.decode("utf-8", "replace")
        fault = self._take_fault(req)
        entry = LogEntry(req.method, req.path, req.query, body, 0, fault.kind if fault else None,
                         "authorization" in req.headers)
        with self.lock:
            self.log.append(entry)

        if fault and fault.kind in ("500", "502", "503", "504", "429"):
            status = int(fault.kind)
            resp = self.fault_response(status, fault)
            if status == 429:
                resp.headers.setdefault("Retry-After", str(fault.retry_after))
            entry.status = resp.status
            self._send(http, resp)
            return
        if fault and fault.kind == "timeout":
            time.sleep(fault.delay)
            entry.status = 0
            self._drop(http)
            return
        if fault and fault.kind == "reset":
            entry.status = 0
            self._drop(http, reset=True)
            return

        delay = self.latency(req)
        if delay > 0:
            time.sleep(delay)  # NOT under self.lock: other requests and the worker go on meanwhile
        with self.lock:
            try:
                resp = self.handle(req)
            except Exception as exc:  # a simulator bug must be loud in tests
                resp = Response(599, {"simulator_error": repr(exc)})
        entry.status = resp.status
        if fault and fault.kind == "lost_answer":
            self._drop(http, reset=True)
            return
        self._send(http, resp)

    @staticmethod
    def _send(http, resp):
        # Headers and body leave in two writes; without TCP_NODELAY each
        # keep-alive answer stalls on Nagle plus delayed ACK.
        try:
            http.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        payload = resp.encode() if http.command != "HEAD" else b""
        http.send_response(resp.status)
        if resp.body is not None:
            http.send_header("Content-Type", resp.content_type)
        for key, value in resp.headers.items():
            http.send_header(key, value)
        http.send_header("Content-Length", str(len(payload)))
        http.end_headers()
        if payload:
            http.wfile.write(payload)

    @staticmethod
    def _drop(http, reset=False):
        http.close_connection = True
        try:
            if reset:
                http.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            http.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
