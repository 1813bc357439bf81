"""A real HTTP/1.1 proxy in front of a real registry, for tests and the pull benchmark.

It forwards each request to the registry over one upstream connection per client connection, counts the TCP
connections clients open, and can misbehave on purpose: answer 429 (with `Retry-After`) the first N times,
answer 503 forever, or redirect blob reads to a second server (another host name) that records the
`Authorization` headers it receives.
"""

from __future__ import annotations

import http.client
import http.server
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

COPY_BLOCK = 256 * 1024


@dataclass
class Faults:
    throttle: int = 0  # answer 429 to this many requests before forwarding any
    retry_after: str | None = "1"  # the Retry-After of those 429s (None: no header)
    unavailable: bool = False  # answer 503 to every request
    redirect_blobs_to: str | None = None  # "http://host:port": blob GETs answer 307 to that server
    throttled_at: list[float] = field(default_factory=list)  # when each 429 was sent (monotonic)


class ProxyServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str, bind: str = "127.0.0.1", prefix: str = "") -> None:
        super().__init__((bind, 0), _Handler)
        self.upstream = upstream  # "host:port" of the registry
        self.prefix = prefix  # a path prefix stripped before forwarding (the blob host's /store)
        self.faults = Faults()
        self.connections = 0
        self.requests: list[tuple[str, str, str | None]] = []  # method, path, Authorization scheme or None
        self.authorization_seen: list[str] = []  # whole Authorization values received (blob host only)
        self._lock = threading.Lock()

    @property
    def host(self) -> str:
        return f"{self.server_address[0]}:{self.server_address[1]}"

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self.connections += 1
        super().process_request(request, client_address)

    def reset_counts(self) -> None:
        with self._lock:
            self.connections = 0
            self.requests.clear()
            self.authorization_seen.clear()


class _Handler(http.server.BaseHTTPRequestHandler):
    server: ProxyServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: keep-alive would stall on them

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self._upstream: http.client.HTTPConnection | None = None

    def finish(self) -> None:
        if self._upstream is not None:
            self._upstream.close()
        super().finish()

    def _reply(self, code: int, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self) -> None:
        self._handle()

    def do_GET(self) -> None:
        self._handle()

    def _handle(self) -> None:
        srv, faults = self.server, self.server.faults
        auth = self.headers.get("Authorization")
        with srv._lock:
            srv.requests.append((self.command, self.path, auth.split(" ", 1)[0] if auth else None))
            if auth and srv.prefix:
                srv.authorization_seen.append(auth)
            throttle = faults.throttle > 0
            if throttle:
                faults.throttle -= 1
                faults.throttled_at.append(time.monotonic())
        if faults.unavailable:
            self._reply(503)
            return
        if throttle:
            self._reply(429, {"Retry-After": faults.retry_after} if faults.retry_after is not None else None)
            return
        path = self.path
        if srv.prefix:
            if not path.startswith(srv.prefix):
                self._reply(404)
                return
            path = path[len(srv.prefix) :]
        elif faults.redirect_blobs_to and "/blobs/sha256:" in path and self.command == "GET":
            self._reply(307, {"Location": f"{faults.redirect_blobs_to}/store{path}"})
            return
        self._forward(path)

    def _forward(self, path: str) -> None:
        if self._upstream is None:
            self._upstream = http.client.HTTPConnection(self.server.upstream, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        if self.server.prefix:
            headers.pop("Authorization", None)  # the blob host is trusted storage: it needs no registry auth
        self._upstream.request(self.command, path, headers=headers)
        resp = self._upstream.getresponse()
        self.send_response(resp.status)
        length = resp.getheader("Content-Length")
        body = b"" if length is not None or self.command == "HEAD" else resp.read()
        for k, v in resp.getheaders():
            if k.lower() not in ("connection", "transfer-encoding", "content-length", "keep-alive"):
                self.send_header(k, v)
        self.send_header("Content-Length", length if length is not None else str(len(body)))
        self.end_headers()
        if self.command == "HEAD":
            resp.read()
            return
        if body:
            self.wfile.write(body)
            return
        while chunk := resp.read(COPY_BLOCK):
            self.wfile.write(chunk)


@contextmanager
def serving(server: ProxyServer) -> Iterator[ProxyServer]:
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
