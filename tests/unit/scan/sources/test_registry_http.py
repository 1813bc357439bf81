"""The registry client's HTTP layer against small local servers: retries, error mapping, body bounds, TLS,
token reuse and expiry. Sleeping and the clock are injected, so waits are checked without being waited."""

from __future__ import annotations

import email.utils
import http.server
import random
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from secretsvc import errors
from secretsvc.scan.limits import ScanLimits
from secretsvc.scan.sources.registry import RegistryClient, parse_registry_ref
from secretsvc.scan.sources.registry_auth import RegistryAuth
from secretsvc.scan.sources.registry_http import (
    MAX_ERROR_BODY_BYTES,
    BodyReader,
    RegistryHttp,
    RegistryTLSError,
    RegistryUnavailable,
    RetryPolicy,
    parse_retry_after,
)
from tests.tlskit import make_pki, write_issued
from tests.unit.scan.sources.test_registry_client import FakeRegistry, two_platforms


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes = b""


class Scripted(http.server.ThreadingHTTPServer):
    """Answers each request with the next scripted reply, then 200 "ok"; counts connections."""

    daemon_threads = True

    def __init__(self, replies: list[Reply]) -> None:
        super().__init__(("127.0.0.1", 0), _ScriptedHandler)
        self.replies = replies
        self.paths: list[str] = []
        self.connections = 0

    def process_request(self, request: Any, client_address: Any) -> None:
        self.connections += 1
        super().process_request(request, client_address)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _ScriptedHandler(http.server.BaseHTTPRequestHandler):
    server: Scripted
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        reply = self.server.replies.pop(0) if self.server.replies else Reply(200, {}, b"ok")
        self.send_response(reply.status)
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)


@contextmanager
def serving(server: http.server.HTTPServer) -> Iterator[Any]:
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def client(host: str, t: FakeTime, policy: RetryPolicy | None = None, **kw: Any) -> RegistryHttp:
    return RegistryHttp(
        host,
        "team/app",
        tls=False,
        verify=True,
        auth=None,
        policy=policy or RetryPolicy(),
        rng=random.Random(3),
        clock=t.clock,
        sleep=t.sleep,
        **kw,
    )


def fetch(http: RegistryHttp, path: str = "/v2/team/app/manifests/v1") -> bytes:
    with BodyReader(http.get(path), "test") as body:
        return body.read()


def test_throttling_waits_as_told_then_succeeds() -> None:
    t = FakeTime()
    replies = [Reply(429, {"Retry-After": "3"}), Reply(503, {"Retry-After": "0"}), Reply(502, {})]
    with serving(Scripted(replies)) as srv, client(srv.host, t) as http:
        assert fetch(http) == b"ok"
    assert t.slept[:2] == [3.0, 0.0]
    assert 0.5 <= t.slept[2] <= 1.0  # third retry, no Retry-After: backoff 4 * base, half of it random
    assert len(srv.paths) == 4
    assert srv.connections == 1


def test_retry_after_is_capped_and_the_deadline_holds() -> None:
    t = FakeTime()
    policy = RetryPolicy(max_retry_after_s=5, deadline_s=12)
    with (
        serving(Scripted([Reply(429, {"Retry-After": "3600"})] * 10)) as srv,
        client(srv.host, t, policy) as http,
        pytest.raises(RegistryUnavailable, match=r"HTTP 429.*3 tries.*try again later"),
    ):
        fetch(http)
    assert t.slept == [5.0, 5.0]  # a third wait would pass the 12 s deadline: give up instead


def test_backoff_grows_with_jitter_until_attempts_run_out() -> None:
    t = FakeTime()
    with (
        serving(Scripted([Reply(503, {})] * 10)) as srv,
        client(srv.host, t) as http,
        pytest.raises(RegistryUnavailable, match="unavailable or throttling"),
    ):
        fetch(http)
    assert len(srv.paths) == RetryPolicy().attempts
    for i, waited in enumerate(t.slept):
        full = min(RetryPolicy().max_delay_s, RetryPolicy().base_delay_s * 2**i)
        assert full / 2 <= waited <= full


@pytest.mark.parametrize(
    ("status", "error", "text"),
    [
        (401, errors.Unauthenticated, "repository team/app: not authorised"),
        (403, errors.PermissionDenied, "repository team/app: access denied"),
        (404, errors.NotFound, "team/app: not found"),
        (500, RegistryUnavailable, "HTTP 500"),
        (400, errors.InvalidArgument, "HTTP 400"),
    ],
)
def test_other_answers_map_to_errors_without_retrying(status: int, error: type[Exception], text: str) -> None:
    t = FakeTime()
    with (
        serving(Scripted([Reply(status, {})])) as srv,
        client(srv.host, t) as http,
        pytest.raises(error, match=text) as info,
    ):
        fetch(http)
    assert srv.host in str(info.value)
    assert len(srv.paths) == 1 and t.slept == []


def test_a_huge_error_body_is_not_read_whole() -> None:
    t = FakeTime()
    big = Reply(404, {}, b"x" * (MAX_ERROR_BODY_BYTES * 4))
    with serving(Scripted([big])) as srv, client(srv.host, t) as http, pytest.raises(errors.NotFound):
        fetch(http)


def test_an_oversized_manifest_is_refused() -> None:
    limits = ScanLimits(max_manifest_bytes=1000)
    with serving(Scripted([Reply(200, {}, b"{" + b" " * 5000 + b"}")])) as srv:
        c = RegistryClient(parse_registry_ref(f"{srv.host}/team/app:v1"), creds=None, insecure=False, limits=limits)
        with pytest.raises(errors.LimitExceeded, match="manifest is larger"):
            c.manifest("v1")
        c.close()


def test_parse_retry_after() -> None:
    assert parse_retry_after("7") == 7.0
    when = email.utils.format_datetime(email.utils.localtime().replace(microsecond=0), usegmt=False)
    assert parse_retry_after(when) is not None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=lambda: 1445412470.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    for bad in (None, "", "soon", "-1", "1.5", "9" * 100):
        assert parse_retry_after(bad) is None


def test_retry_policy_refuses_nonsense() -> None:
    with pytest.raises(errors.InvalidArgument):
        RetryPolicy(attempts=0)
    with pytest.raises(errors.InvalidArgument):
        RetryPolicy(deadline_s=0)


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[Scripted]:
    dev = make_pki(tmp_path / "pki")
    cert, key = tmp_path / "srv.pem", tmp_path / "srv-key.pem"
    write_issued(dev.issue("server", name="registry", ips=("127.0.0.1",)), cert, key)
    srv = Scripted([])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    with serving(srv):
        yield srv


def test_an_untrusted_certificate_is_a_tls_error_that_points_to_the_flag(tls_server: Scripted) -> None:
    ref = parse_registry_ref(f"{tls_server.host}/team/app:v1")
    c = RegistryClient(ref, creds=None, insecure=False, limits=ScanLimits(), tls=True)
    with pytest.raises(RegistryTLSError, match=r"TLS handshake with registry .* failed.*--insecure-registry"):
        c.manifest("v1")
    c.close()
    insecure = RegistryClient(ref, creds=None, insecure=True, limits=ScanLimits(), tls=True)
    assert insecure.manifest("v1") == b"ok"  # over TLS, unverified
    assert insecure.http.base.startswith("https://")
    insecure.close()


def test_insecure_falls_back_to_plain_http_when_the_registry_has_no_tls() -> None:
    with serving(Scripted([Reply(200, {}, b"{}")])) as srv:
        ref = parse_registry_ref(f"{srv.host}/team/app:v1")
        c = RegistryClient(ref, creds=None, insecure=True, limits=ScanLimits(), tls=True)
        assert c.manifest("v1") == b"{}"
        assert c.http.base.startswith("http://")
        c.close()


def test_a_bearer_token_is_reused_until_it_expires() -> None:
    blobs, tags, _ = two_platforms()
    srv = FakeRegistry("bearer", blobs, tags, password="pw-" + str(random.Random(8).getrandbits(32)))
    t = FakeTime()
    with serving(srv):
        auth = RegistryAuth(srv.host, "team/app", creds=("user", srv.password), plain_ok=True, clock=t.clock)
        http = RegistryHttp(srv.host, "team/app", tls=False, verify=True, auth=auth, clock=t.clock, sleep=t.sleep)
        with http:
            for _ in range(3):
                fetch(http, "/v2/team/app/manifests/v1")
            assert auth.token_fetches == 1
            t.now += 3600  # past the token's life (no expires_in: 60 s)
            fetch(http, "/v2/team/app/manifests/v1")
            assert auth.token_fetches == 2
    assert "pw-" not in repr(auth)


def test_a_redirect_with_a_huge_body_is_refused() -> None:
    t = FakeTime()
    big = Reply(307, {"Location": "/elsewhere"}, b"x" * (MAX_ERROR_BODY_BYTES + 1))
    with (
        serving(Scripted([big])) as srv,
        client(srv.host, t) as http,
        pytest.raises(errors.LimitExceeded, match="larger than the limit"),
    ):
        fetch(http)
    assert srv.paths == ["/v2/team/app/manifests/v1"]  # not followed
