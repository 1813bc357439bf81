"""The webhook's HTTPS server: POST /mutate (AdmissionReview v1), GET /healthz.

Stdlib `http.server` on threads, one per connection, at most `max_connections` at once (more are closed at
once rather than queued behind slow ones). Every connection has a deadline: `idle_timeout` for the TLS
handshake and between requests on a kept-alive connection, `request_timeout` from the first header line of a
request to the end of its response; a watchdog shuts down any connection past its deadline, so a client that
sends one byte a second cannot hold a thread. Each connection is wrapped with the TLS context current when it
was accepted (certs.py reloads it). `stop()` stops accepting, closes idle connections and lets requests in
flight finish within a grace period.

A response leaves in one write (headers and body buffered together, flushed once) on a socket without
Nagle's algorithm. Written as two small segments, the body would wait for the client to acknowledge the
headers, and a client delays that acknowledgement up to 40 ms (Linux): every review would take 40 ms longer
than its work.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from injector.webhook.certs import ReloadingContext
from injector.webhook.review import MAX_REVIEW_BYTES, Reviewed, ReviewError

log = logging.getLogger("injector.webhook")

MUTATE_PATH = "/mutate"
HEALTH_PATH = "/healthz"
DEFAULT_REQUEST_TIMEOUT_SECONDS = 10.0
DEFAULT_IDLE_TIMEOUT_SECONDS = 30.0
DEFAULT_MAX_CONNECTIONS = 64
WATCHDOG_INTERVAL_SECONDS = 0.1
# A response is buffered whole up to this size and sent in one write; a larger one goes out as it is written.
WRITE_BUFFER_BYTES = 64 * 1024

ReviewFunction = Callable[[bytes], Reviewed]


class _Watchdog:
    """Deadlines of open connections; a connection past its deadline is shut down (its blocked read returns)."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._open: dict[int, tuple[float, bool, socket.socket]] = {}  # id -> (deadline, idle, a dup of the socket)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhook-watchdog", daemon=True)
        self._thread.start()

    def add(self, sock: socket.socket, seconds: float) -> int:
        handle = socket.socket(fileno=sock.dup().detach())
        key = id(handle)
        with self._lock:
            self._open[key] = (self._monotonic() + seconds, True, handle)
        return key

    def set(self, key: int, seconds: float, *, idle: bool) -> None:
        with self._lock:
            if key in self._open:
                self._open[key] = (self._monotonic() + seconds, idle, self._open[key][2])

    def remove(self, key: int) -> None:
        with self._lock:
            entry = self._open.pop(key, None)
        if entry is not None:
            entry[2].close()

    def close_idle(self) -> None:
        with self._lock:
            for key, (_, idle, handle) in list(self._open.items()):
                if idle:
                    self._open[key] = (0.0, True, handle)

    def _run(self) -> None:
        while not self._stopped.wait(WATCHDOG_INTERVAL_SECONDS):
            now = self._monotonic()
            with self._lock:
                late = [handle for deadline, _, handle in self._open.values() if deadline <= now]
            for handle in late:
                with contextlib.suppress(OSError):
                    handle.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        self._stopped.set()


class WebhookServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], tls: ReloadingContext, review: ReviewFunction, *,
                 request_timeout: float = DEFAULT_REQUEST_TIMEOUT_SECONDS,
                 idle_timeout: float = DEFAULT_IDLE_TIMEOUT_SECONDS,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.tls = tls
        self.review = review
        self.request_timeout = request_timeout
        self.idle_timeout = idle_timeout
        self.stopping = False
        self.watchdog = _Watchdog()
        self._slots = threading.BoundedSemaphore(max_connections)
        self._active = 0
        self._idle_cond = threading.Condition()
        super().__init__(address, _Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        if self.stopping or not self._slots.acquire(blocking=False):
            log.warning("connection refused: too many open connections", extra={"peer": client_address[0]})
            self.shutdown_request(request)
            return
        with self._idle_cond:
            self._active += 1
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()
            with self._idle_cond:
                self._active -= 1
                self._idle_cond.notify_all()

    def finish_request(self, request: Any, client_address: Any) -> None:
        key = self.watchdog.add(request, self.idle_timeout)
        try:
            request.settimeout(self.request_timeout)
            conn = self.tls.context().wrap_socket(request, server_side=True, do_handshake_on_connect=False)
            try:
                conn.do_handshake()
            except (ssl.SSLError, OSError) as exc:
                log.info("TLS handshake failed", extra={"peer": client_address[0], "reason": str(exc)[:200]})
                conn.close()
                return
            try:
                handler = _Handler.__new__(_Handler)
                handler.watchdog_key = key
                handler.__init__(conn, client_address, self)  # type: ignore[misc]
            finally:
                with contextlib.suppress(OSError):
                    conn.close()
        finally:
            self.watchdog.remove(key)

    def stop(self, grace: float) -> bool:
        """Stop accepting, close idle connections, wait up to `grace` seconds for requests in flight."""
        self.stopping = True
        self.shutdown()
        self.watchdog.close_idle()
        deadline = time.monotonic() + grace
        with self._idle_cond:
            while self._active and time.monotonic() < deadline:
                self.watchdog.close_idle()
                self._idle_cond.wait(0.1)
            finished = self._active == 0
        self.server_close()
        self.watchdog.stop()
        return finished


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "secretsvc-injector"
    wbufsize = WRITE_BUFFER_BYTES  # headers and body in one write: _send flushes, and http.server after errors
    disable_nagle_algorithm = True
    server: WebhookServer
    watchdog_key: int

    def parse_request(self) -> bool:
        # The request line has arrived: from here to the end of the response, the request deadline holds.
        self.server.watchdog.set(self.watchdog_key, self.server.request_timeout, idle=False)
        return super().parse_request()

    def handle_one_request(self) -> None:
        super().handle_one_request()
        self.server.watchdog.set(self.watchdog_key, self.server.idle_timeout, idle=True)
        if self.server.stopping:
            self.close_connection = True

    def handle_expect_100(self) -> bool:
        super().handle_expect_100()
        self.wfile.flush()  # the client waits for "100 Continue" before it sends the body
        return True

    def version_string(self) -> str:
        return self.server_version  # no Python version in the Server header

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http: " + format % args)

    def _send(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8",
              *, close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()  # the answer leaves now, in one write, before anything is logged

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] == HEALTH_PATH:
            if self.server.stopping:
                self._send(503, b"stopping\n")
            else:
                self._send(200, b"ok\n")
            return
        self._send(404, b"not found: the webhook serves POST /mutate and GET /healthz\n")

    def do_POST(self) -> None:
        started = time.monotonic()
        if self.headers.get("Transfer-Encoding"):
            self._send(411, b"send the AdmissionReview with a Content-Length, not chunked\n", close=True)
            return
        length_text = self.headers.get("Content-Length", "")
        if not length_text.isdigit():
            self._send(411, b"a Content-Length is required\n", close=True)
            return
        length = int(length_text)
        if length > MAX_REVIEW_BYTES:
            self._send(413, f"the body is larger than MAX_REVIEW_BYTES={MAX_REVIEW_BYTES}\n".encode(), close=True)
            return
        # Read the body (bounded above) before any other refusal, so the connection stays usable.
        body = self.rfile.read(length)
        if len(body) != length:
            self.close_connection = True
            return
        if self.path.split("?", 1)[0] != MUTATE_PATH:
            self._send(404, b"not found: the webhook serves POST /mutate and GET /healthz\n")
            return
        content_type = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if content_type != "application/json":
            self._send(415, b"the body must be application/json (an AdmissionReview v1)\n")
            return
        try:
            reviewed = self.server.review(body)
        except ReviewError as exc:
            log.warning("bad admission review", extra={"peer": self.client_address[0], "reason": str(exc)})
            self._send(400, f"{exc}\n".encode())
            return
        except Exception:
            log.exception("admission review failed", extra={"peer": self.client_address[0]})
            self._send(500, b"internal error; see the webhook's log\n")
            return
        self._send(200, reviewed.body, "application/json")
        if not log.isEnabledFor(logging.INFO):
            return
        d, r = reviewed.decision, reviewed.request
        log.info("admission review", extra={
            "uid": r.uid, "namespace": r.namespace, "pod": _pod_name(r.obj), "outcome": d.outcome,
            "allowed": d.allowed, "warnings": len(d.warnings), "patch_ops": len(d.patch or ()),
            "ms": round((time.monotonic() - started) * 1000, 1)})


def _pod_name(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return ""
    name = meta.get("name") or (f"{meta.get('generateName')}*" if meta.get("generateName") else "")
    return json.dumps(name)[1:-1][:253] if isinstance(name, str) else ""
