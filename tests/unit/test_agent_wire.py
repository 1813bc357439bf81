"""The agent's gRPC client (injector/agent/wire.py) at its protocol boundary: against a real grpcio server,
plaintext and TLS, and against scripted HTTP/2 and raw TCP peers that answer wrongly, partly or not at all.
Each failure must be a `wire.RpcError` with the code a gRPC client would give, and none may hang."""

from __future__ import annotations

import hashlib
import queue
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import h2.connection
import h2.events
import pytest
from google.protobuf import wrappers_pb2
from h2.errors import ErrorCodes

from injector.agent import wire
from secretsvc.crypto import pki
from secretsvc.service.limits import MAX_MESSAGE_BYTES
from tests import fakecreds
from tests.unit import h2peer

BytesValue = wrappers_pb2.BytesValue
StringValue = wrappers_pb2.StringValue
Int64Value = wrappers_pb2.Int64Value
DoubleValue = wrappers_pb2.DoubleValue

SERVICE = "test.Wire"
ECHO = f"/{SERVICE}/Echo"
FAIL = f"/{SERVICE}/Fail"
SLEEP = f"/{SERVICE}/Sleep"
BIG = f"/{SERVICE}/Big"
COUNT = f"/{SERVICE}/Count"
COUNT_THEN_FAIL = f"/{SERVICE}/CountThenFail"
WATCH = f"/{SERVICE}/Watch"
SERVER_NAME = "secrets.test"
MIB = 1024 * 1024
# Far above what any test here should take: a call that needs it has hung.
PATIENCE_SECONDS = 5.0
CODES = [code for code in grpc.StatusCode if code is not grpc.StatusCode.OK]
# A client that hangs fails its test here instead of holding the run until the suite's own timeout.
pytestmark = pytest.mark.timeout(20)


def details_for(name: str) -> str:
    """A status message that only arrives intact when percent-decoded once, as UTF-8."""
    return f"{name}: «ünïcödé» 100% sûr, 50%2F50\nline two ✓ \t end"


def payload(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


class Service:
    """A gRPC service on protobuf wrapper messages whose methods echo, fail, sleep or stream on demand, and
    which records what the calls brought and how they ended."""

    def __init__(self) -> None:
        self.metadata: list[dict[str, str | bytes]] = []
        self.time_remaining: list[float | None] = []
        self.feed: queue.Queue[bytes | None] = queue.Queue()  # Watch's messages; None ends the call with OK
        self.watch_cancelled = threading.Event()  # a Watch call ended before its handler finished it
        self.on_echo: Callable[[], None] = lambda: None

    def handler(self) -> grpc.GenericRpcHandler[Any, Any]:
        def unary(method: Callable[[Any, grpc.ServicerContext], Any], request: Any, response: Any) -> Any:
            return grpc.unary_unary_rpc_method_handler(method, request.FromString, response.SerializeToString)

        def streaming(method: Callable[[Any, grpc.ServicerContext], Any], request: Any, response: Any) -> Any:
            return grpc.unary_stream_rpc_method_handler(method, request.FromString, response.SerializeToString)

        return grpc.method_handlers_generic_handler(SERVICE, {
            "Echo": unary(self.echo, BytesValue, BytesValue),
            "Fail": unary(self.fail, StringValue, StringValue),
            "Sleep": unary(self.sleep, DoubleValue, BytesValue),
            "Big": unary(self.big, Int64Value, BytesValue),
            "Count": streaming(self.count, Int64Value, StringValue),
            "CountThenFail": streaming(self.count_then_fail, Int64Value, StringValue),
            "Watch": streaming(self.watch, StringValue, BytesValue),
        })

    def echo(self, request: wrappers_pb2.BytesValue, context: grpc.ServicerContext) -> wrappers_pb2.BytesValue:
        self.metadata.append(dict(context.invocation_metadata()))
        self.time_remaining.append(context.time_remaining())
        self.on_echo()
        return BytesValue(value=request.value)

    def fail(self, request: wrappers_pb2.StringValue, context: grpc.ServicerContext) -> wrappers_pb2.StringValue:
        context.abort(grpc.StatusCode[request.value], details_for(request.value))

    def sleep(self, request: wrappers_pb2.DoubleValue, context: grpc.ServicerContext) -> wrappers_pb2.BytesValue:
        until = time.monotonic() + request.value
        while time.monotonic() < until and context.is_active():
            time.sleep(0.01)
        return BytesValue(value=b"slept")

    def big(self, request: wrappers_pb2.Int64Value, context: grpc.ServicerContext) -> wrappers_pb2.BytesValue:
        return BytesValue(value=payload(request.value, request.value))

    def count(self, request: wrappers_pb2.Int64Value,
              context: grpc.ServicerContext) -> Iterator[wrappers_pb2.StringValue]:
        for i in range(request.value):
            yield StringValue(value=f"message {i}")

    def count_then_fail(self, request: wrappers_pb2.Int64Value,
                        context: grpc.ServicerContext) -> Iterator[wrappers_pb2.StringValue]:
        yield from self.count(request, context)
        context.abort(grpc.StatusCode.PERMISSION_DENIED, details_for("PERMISSION_DENIED"))

    def watch(self, request: wrappers_pb2.StringValue,
              context: grpc.ServicerContext) -> Iterator[wrappers_pb2.BytesValue]:
        finished = threading.Event()
        # Runs when the call ends, however it ends: before the handler finished, it was cancelled.
        context.add_callback(lambda: None if finished.is_set() else self.watch_cancelled.set())
        while context.is_active():
            try:
                item = self.feed.get(timeout=0.02)
            except queue.Empty:
                continue
            if item is None:
                finished.set()
                return
            yield BytesValue(value=item)


@contextmanager
def grpc_server(service: Service, *, options: Sequence[tuple[str, Any]] = (),
                credentials: grpc.ServerCredentials | None = None) -> Iterator[tuple[grpc.Server, int]]:
    executor = futures.ThreadPoolExecutor(max_workers=8)
    server = grpc.server(executor, handlers=[service.handler()], options=[
        ("grpc.so_reuseport", 0), ("grpc.max_receive_message_length", 16 * MIB), *options])
    address = "127.0.0.1:0"
    port = (server.add_insecure_port(address) if credentials is None
            else server.add_secure_port(address, credentials))
    server.start()
    try:
        yield server, port
    finally:
        server.stop(0).wait(PATIENCE_SECONDS)
        executor.shutdown(wait=True)


def plain(port: int) -> wire.Endpoint:
    return wire.Endpoint("127.0.0.1", port, None, "127.0.0.1")


@contextmanager
def connected(endpoint: wire.Endpoint, *, within: float = PATIENCE_SECONDS) -> Iterator[wire.Connection]:
    connection = wire.Connection(endpoint, deadline=time.monotonic() + within)
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture
def service() -> Service:
    return Service()


@pytest.fixture
def server(service: Service) -> Iterator[wire.Connection]:
    """A connection to a real gRPC server running `service` on plaintext HTTP/2."""
    with grpc_server(service) as (_, port), connected(plain(port)) as connection:
        yield connection


def echo(connection: wire.Connection, value: bytes, *, metadata: Sequence[tuple[str, str]] = (),
         timeout: float = PATIENCE_SECONDS) -> bytes:
    return connection.unary(ECHO, BytesValue(value=value), BytesValue, metadata=metadata, timeout=timeout).value


# -- a real gRPC server -------------------------------------------------------------------------------------


def test_a_unary_call_returns_the_servers_response(server: wire.Connection) -> None:
    assert echo(server, b"hello") == b"hello"
    assert echo(server, b"") == b""  # an empty message is a message: five bytes of framing, no body
    assert server.usable


def test_every_error_status_arrives_with_its_code_and_exact_details(server: wire.Connection) -> None:
    for code in CODES:
        with pytest.raises(wire.RpcError) as caught:
            server.unary(FAIL, StringValue(value=code.name), StringValue, metadata=(), timeout=PATIENCE_SECONDS)
        assert (caught.value.code, caught.value.details) == (code.name, details_for(code.name))
    # An error status ends one call, not the connection.
    assert server.usable
    assert echo(server, b"still here") == b"still here"


def test_metadata_and_the_deadline_reach_the_server(server: wire.Connection, service: Service) -> None:
    token = fakecreds.fake_kube_token(random.Random(7))
    echo(server, b"x", metadata=[("authorization", f"Bearer {token}"), ("x-request-id", "r-42")], timeout=3)
    (seen,) = service.metadata
    assert seen["authorization"] == f"Bearer {token}"
    assert seen["x-request-id"] == "r-42"
    assert str(seen["user-agent"]).startswith("secretsvc-injector-agent")
    (remaining,) = service.time_remaining
    assert remaining is not None
    assert 2 < remaining <= 3


def test_a_call_past_its_timeout_is_deadline_exceeded_and_the_connection_serves_the_next(
        server: wire.Connection) -> None:
    started = time.monotonic()
    with pytest.raises(wire.RpcError) as caught:
        server.unary(SLEEP, DoubleValue(value=PATIENCE_SECONDS), BytesValue, metadata=(), timeout=0.5)
    elapsed = time.monotonic() - started
    assert caught.value.code == "DEADLINE_EXCEEDED"
    assert 0.45 <= elapsed < 1.5
    assert server.usable
    assert echo(server, b"after") == b"after"


def test_messages_larger_than_every_window_arrive_whole_both_ways(server: wire.Connection) -> None:
    # The server's initial window is 64 KiB: the request waits for its window updates.
    request = payload(1, MIB + 3)
    assert echo(server, request) == request
    # Larger than the 4 MiB window the client opens: it must give the server more room as it reads.
    size = 6 * MIB + 1
    response = server.unary(BIG, Int64Value(value=size), BytesValue, metadata=(), timeout=PATIENCE_SECONDS)
    assert hashlib.sha256(response.value).digest() == hashlib.sha256(payload(size, size)).digest()
    assert echo(server, b"small") == b"small"


def test_a_server_stream_delivers_every_message_then_ends(server: wire.Connection) -> None:
    messages = server.server_stream(COUNT, Int64Value(value=5), StringValue, metadata=())
    assert [m.value for m in messages] == [f"message {i}" for i in range(5)]
    assert list(server.server_stream(COUNT, Int64Value(value=0), StringValue, metadata=())) == []


def test_a_server_stream_delivers_its_messages_before_its_error(server: wire.Connection) -> None:
    received: list[str] = []
    with pytest.raises(wire.RpcError) as caught:
        for message in server.server_stream(COUNT_THEN_FAIL, Int64Value(value=3), StringValue, metadata=()):
            received.append(message.value)
    assert received == ["message 0", "message 1", "message 2"]
    assert (caught.value.code, caught.value.details) == ("PERMISSION_DENIED", details_for("PERMISSION_DENIED"))
    assert server.usable


def test_closing_a_stream_early_cancels_the_call_on_the_server(server: wire.Connection, service: Service) -> None:
    messages = server.server_stream(WATCH, StringValue(), BytesValue, metadata=())
    service.feed.put(b"first")
    assert next(messages).value == b"first"
    assert not service.watch_cancelled.is_set()
    messages.close()  # type: ignore[attr-defined]  # a generator's close, as `for ... break` would
    assert service.watch_cancelled.wait(PATIENCE_SECONDS)
    assert echo(server, b"next") == b"next"


def test_a_unary_call_while_a_stream_is_open_gets_its_answer_and_the_stream_keeps_its_messages(
        server: wire.Connection, service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    stream_messages = [payload(10 + i, 100_000 + i) for i in range(4)]
    sent = threading.Event()
    data_on: list[int | None] = []  # the stream of each DATA frame, in the order they arrived
    dispatch = wire.Connection._dispatch

    def recording(self: wire.Connection, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.DataReceived):
            data_on.append(event.stream_id)
        dispatch(self, event)

    monkeypatch.setattr(wire.Connection, "_dispatch", recording)

    def feed_the_stream_first() -> None:
        # The stream's messages go out while the unary call is waiting for its answer, so the client reads
        # them on the unary call's turn and must keep them for the stream.
        for message in stream_messages[1:]:
            service.feed.put(message)
        while not service.feed.empty():
            time.sleep(0.005)
        time.sleep(0.2)
        sent.set()

    messages = server.server_stream(WATCH, StringValue(), BytesValue, metadata=())
    service.feed.put(stream_messages[0])
    assert next(messages).value == stream_messages[0]
    service.on_echo = feed_the_stream_first
    unary_request = payload(3, 300_000)
    before = len(data_on)
    assert echo(server, unary_request) == unary_request
    assert sent.is_set()
    # Both calls' frames arrived while the unary call was reading: streams 1 (the watch) and 3 (the call).
    assert set(data_on[before:]) == {1, 3}
    service.feed.put(None)
    assert [m.value for m in messages] == stream_messages[1:]
    assert server.usable


def test_a_server_stopped_mid_stream_is_unavailable_and_the_connection_unusable(service: Service) -> None:
    with grpc_server(service) as (grpc_srv, port), connected(plain(port)) as connection:
        messages = connection.server_stream(WATCH, StringValue(), BytesValue, metadata=())
        service.feed.put(b"one")
        assert next(messages).value == b"one"
        grpc_srv.stop(0).wait(PATIENCE_SECONDS)
        started = time.monotonic()
        with pytest.raises(wire.RpcError) as caught:
            next(messages)
        assert caught.value.code == "UNAVAILABLE"
        assert time.monotonic() - started < PATIENCE_SECONDS
        assert not connection.usable
        with pytest.raises(wire.RpcError) as again:
            echo(connection, b"x")
        assert again.value.code == "UNAVAILABLE"


def test_server_keepalive_pings_on_a_quiet_stream_are_answered(service: Service,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    pings: list[float] = []
    dispatch = wire.Connection._dispatch

    def counting(self: wire.Connection, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.PingReceived):
            pings.append(time.monotonic())
        dispatch(self, event)

    monkeypatch.setattr(wire.Connection, "_dispatch", counting)
    # A ping each second, and the connection closed if one goes unanswered for half a second.
    options = [("grpc.keepalive_time_ms", 1000), ("grpc.keepalive_timeout_ms", 500),
               ("grpc.keepalive_permit_without_calls", 1), ("grpc.http2.max_pings_without_data", 0)]
    with grpc_server(service, options=options) as (_, port), connected(plain(port)) as connection:
        messages = connection.server_stream(WATCH, StringValue(), BytesValue, metadata=())
        service.feed.put(b"start")
        assert next(messages).value == b"start"
        started = time.monotonic()
        threading.Timer(3.5, service.feed.put, (b"after a quiet while",)).start()
        assert next(messages).value == b"after a quiet while"
        # gRPC sends its next ping only once the last one was answered: several pings mean answers.
        assert len([t for t in pings if t >= started]) >= 2
        service.feed.put(None)
        assert list(messages) == []
        assert connection.usable


# -- TLS ----------------------------------------------------------------------------------------------------


def write_ca(path: Path, ca: pki.Issued) -> str:
    path.write_bytes(ca.cert_pem)
    return str(path)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str, str]]:
    """A gRPC server whose certificate names SERVER_NAME only: (port, its CA file, another CA's file)."""
    directory = tmp_path_factory.mktemp("wire-tls")
    now = pki.utc_now()
    ca = pki.new_ca("wire test CA", now=now)
    leaf = pki.issue(ca, common_name=SERVER_NAME, usage="server", now=now, dns_names=(SERVER_NAME,))
    credentials = grpc.ssl_server_credentials([(leaf.key_pem.reveal(), leaf.cert_pem)])
    with grpc_server(Service(), credentials=credentials) as (_, port):
        yield (port, write_ca(directory / "ca.pem", ca),
               write_ca(directory / "other-ca.pem", pki.new_ca("another CA", now=now)))


def test_tls_verified_against_the_ca_under_the_certificates_name(tls_server: tuple[int, str, str]) -> None:
    port, ca_file, _ = tls_server
    with connected(wire.Endpoint("127.0.0.1", port, wire.tls_context(ca_file), SERVER_NAME)) as connection:
        assert echo(connection, b"over tls") == b"over tls"
        messages = connection.server_stream(COUNT, Int64Value(value=2), StringValue, metadata=())
        assert [m.value for m in messages] == ["message 0", "message 1"]


def test_tls_with_another_ca_is_unavailable_and_says_why(tls_server: tuple[int, str, str]) -> None:
    port, _, other_ca = tls_server
    with pytest.raises(wire.RpcError) as caught:
        wire.Connection(wire.Endpoint("127.0.0.1", port, wire.tls_context(other_ca), SERVER_NAME),
                        deadline=time.monotonic() + PATIENCE_SECONDS)
    assert caught.value.code == "UNAVAILABLE"
    assert caught.value.details.startswith("the server's certificate was not accepted: ")
    assert "issuer certificate" in caught.value.details


def test_tls_to_a_name_not_in_the_certificate_is_unavailable(tls_server: tuple[int, str, str]) -> None:
    port, ca_file, _ = tls_server
    for name in ("127.0.0.1", "other.test"):
        with pytest.raises(wire.RpcError) as caught:
            wire.Connection(wire.Endpoint("127.0.0.1", port, wire.tls_context(ca_file), name),
                            deadline=time.monotonic() + PATIENCE_SECONDS)
        assert caught.value.code == "UNAVAILABLE"
        assert caught.value.details.startswith("the server's certificate was not accepted: ")
        assert name in caught.value.details


def test_plaintext_to_a_tls_server_fails_quickly(tls_server: tuple[int, str, str]) -> None:
    port, _, _ = tls_server
    started = time.monotonic()
    with pytest.raises(wire.RpcError) as caught, connected(plain(port)) as connection:
        echo(connection, b"x", timeout=PATIENCE_SECONDS)
    assert caught.value.code == "UNAVAILABLE"
    assert time.monotonic() - started < 2


def test_tls_to_a_plaintext_server_fails_quickly(service: Service, tls_server: tuple[int, str, str]) -> None:
    _, ca_file, _ = tls_server
    with grpc_server(service) as (_, port):
        started = time.monotonic()
        with pytest.raises(wire.RpcError) as caught:
            wire.Connection(wire.Endpoint("127.0.0.1", port, wire.tls_context(ca_file), SERVER_NAME),
                            deadline=time.monotonic() + PATIENCE_SECONDS)
        assert caught.value.code == "UNAVAILABLE"
        assert caught.value.details.startswith(f"connecting to 127.0.0.1:{port}: ")
        assert time.monotonic() - started < 2


# -- peers that are not a gRPC server, or not a good one ----------------------------------------------------


def unary_against(respond: h2peer.Respond, *, timeout: float = PATIENCE_SECONDS) -> tuple[wire.RpcError, float]:
    """The error of an Echo call to an HTTP/2 peer answering with `respond`, and how long it took."""
    with h2peer.Peer(h2peer.H2Answer(respond)) as peer, connected(plain(peer.port)) as connection:
        started = time.monotonic()
        with pytest.raises(wire.RpcError) as caught:
            echo(connection, b"x", timeout=timeout)
        return caught.value, time.monotonic() - started


def test_the_request_is_a_well_formed_grpc_request() -> None:
    peer_side = h2peer.H2Answer(h2peer.answer(data=[h2peer.frame(BytesValue(value=b"ok").SerializeToString())]))
    with h2peer.Peer(peer_side) as peer, connected(plain(peer.port)) as connection:
        assert echo(connection, b"x", metadata=[("x-request-id", "r-1")], timeout=3) == b"ok"
    (request,) = peer_side.requests
    timeout = request.headers.pop(b"grpc-timeout")
    assert timeout.endswith(b"m") and 2900 < int(timeout[:-1]) <= 3000
    assert request.headers == {
        b":method": b"POST", b":scheme": b"http", b":path": ECHO.encode(),
        b":authority": f"127.0.0.1:{peer.port}".encode(), b"te": b"trailers", b"content-type": b"application/grpc",
        b"user-agent": b"secretsvc-injector-agent", b"x-request-id": b"r-1"}
    assert bytes(request.body) == h2peer.frame(BytesValue(value=b"x").SerializeToString())


def test_connection_refused_is_unavailable_and_names_the_address() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
    with pytest.raises(wire.RpcError) as caught:
        wire.Connection(plain(port), deadline=time.monotonic() + PATIENCE_SECONDS)
    assert caught.value.code == "UNAVAILABLE"
    assert caught.value.details == f"cannot connect to 127.0.0.1:{port}: Connection refused"


def test_an_http1_server_is_a_clear_error_not_a_hang() -> None:
    def http1(sock: socket.socket, stop: threading.Event) -> None:
        h2peer.read_some(sock, stop)  # the HTTP/2 preface reads as a request line with method PRI
        # It keeps the connection open, as a keep-alive server would: the answer itself must be recognised.
        sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\n"
                     b"Bad Request")
        h2peer.drain(sock, stop)

    with h2peer.Peer(http1) as peer, connected(plain(peer.port)) as connection:
        started = time.monotonic()
        with pytest.raises(wire.RpcError) as caught:
            echo(connection, b"x")
        assert (caught.value.code, caught.value.details) == (
            "UNAVAILABLE", "the service answered in HTTP/1, not HTTP/2: is the address its gRPC port?")
        assert time.monotonic() - started < 2
        assert not connection.usable


@pytest.mark.parametrize(("status", "code"), [(b"503", "UNAVAILABLE"), (b"404", "UNIMPLEMENTED"),
                                              (b"401", "UNAUTHENTICATED"), (b"418", "UNKNOWN")])
def test_an_http_error_status_maps_to_the_grpc_code(status: bytes, code: str) -> None:
    error, _ = unary_against(h2peer.answer([(b":status", status), (b"content-type", b"text/plain")],
                                           data=[b"no"], trailers=None))
    assert error.code == code
    assert error.details.startswith(f"HTTP status {status.decode()} instead of a gRPC answer")


def test_an_answer_that_is_not_grpc_is_unknown() -> None:
    error, _ = unary_against(h2peer.answer([(b":status", b"200"), (b"content-type", b"text/html")],
                                           data=[b"<html></html>"], trailers=None))
    assert (error.code, error.details) == ("UNKNOWN", "the answer is not gRPC (content-type 'text/html')")


def test_a_compressed_message_is_internal() -> None:
    error, _ = unary_against(h2peer.answer(
        [*h2peer.GRPC_HEADERS, (b"grpc-encoding", b"gzip")], data=[h2peer.frame(b"\x1f\x8b", compressed=True)]))
    assert (error.code, error.details) == ("INTERNAL", "a compressed message, which was not asked for")


def test_a_message_declared_longer_than_the_limit_fails_at_once_without_waiting_for_it() -> None:
    # The length prefix and a little of the body, and no more: waiting for the rest would end in the deadline.
    error, elapsed = unary_against(h2peer.answer(
        data=[h2peer.frame(b"\0" * 1000, length=MAX_MESSAGE_BYTES + 1)], trailers=None))
    assert error.code == "RESOURCE_EXHAUSTED"
    assert error.details == f"a {MAX_MESSAGE_BYTES + 1}-byte message, more than MAX_MESSAGE_BYTES={MAX_MESSAGE_BYTES}"
    assert elapsed < 2


@pytest.mark.parametrize("ending", ["end of data", "trailers without grpc-status"])
def test_a_call_that_ends_without_a_grpc_status_is_internal(ending: str) -> None:
    message = h2peer.frame(BytesValue(value=b"x").SerializeToString())
    trailers = None if ending == "end of data" else [(b"x-other", b"1")]
    error, _ = unary_against(h2peer.answer(data=[message], trailers=trailers))
    assert (error.code, error.details) == ("INTERNAL", "the call ended without a gRPC status")


def test_a_call_that_ends_inside_a_message_is_internal() -> None:
    error, _ = unary_against(h2peer.answer(data=[h2peer.frame(b"abc", length=10)]))
    assert (error.code, error.details) == ("INTERNAL", "the call ended inside a message")


def test_a_message_that_does_not_parse_as_the_type_is_internal() -> None:
    # Field 1, length-delimited, 5 bytes long, and only 2 bytes follow.
    error, _ = unary_against(h2peer.answer(data=[h2peer.frame(b"\x0a\x05ab")]))
    assert (error.code, error.details) == ("INTERNAL", "a response message that does not parse")


def test_two_messages_to_a_unary_call_are_internal() -> None:
    message = h2peer.frame(BytesValue(value=b"x").SerializeToString())
    error, _ = unary_against(h2peer.answer(data=[message, message]))
    assert (error.code, error.details) == ("INTERNAL", "2 response messages to a unary call")


@pytest.mark.parametrize(("reset", "code"), [(ErrorCodes.REFUSED_STREAM, "UNAVAILABLE"),
                                             (ErrorCodes.CANCEL, "CANCELLED"),
                                             (ErrorCodes.INTERNAL_ERROR, "INTERNAL")])
def test_a_reset_stream_maps_to_the_grpc_code(reset: ErrorCodes, code: str) -> None:
    def respond(conn: h2.connection.H2Connection, request: h2peer.Request) -> None:
        conn.reset_stream(request.stream_id, reset)

    error, _ = unary_against(respond)
    assert (error.code, error.details) == (code, f"the service reset the call ({reset.name})")


def test_a_silent_peer_on_a_stream_is_unavailable_after_the_idle_ping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wire, "IDLE_PING_SECONDS", 0.2)
    monkeypatch.setattr(wire, "PING_ANSWER_SECONDS", 0.3)
    # Requests below and above the 64 KiB a peer that never sends SETTINGS lets the client send.
    for size in (10, 100_000):
        with h2peer.Peer(h2peer.drain) as peer, connected(plain(peer.port)) as connection:
            started = time.monotonic()
            with pytest.raises(wire.RpcError) as caught:
                list(connection.server_stream(WATCH, StringValue(value="x" * size), BytesValue, metadata=()))
            elapsed = time.monotonic() - started
            assert (caught.value.code, caught.value.details) == (
                "UNAVAILABLE", "no word from the service in 0.2 s and no answer to a ping")
            assert 0.45 <= elapsed < 2
            assert not connection.usable


def test_a_quiet_stream_whose_server_answers_the_idle_pings_carries_on(service: Service,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wire, "IDLE_PING_SECONDS", 0.2)
    monkeypatch.setattr(wire, "PING_ANSWER_SECONDS", 0.5)
    acks: list[float] = []
    dispatch = wire.Connection._dispatch

    def counting(self: wire.Connection, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.PingAckReceived):
            acks.append(time.monotonic())
        dispatch(self, event)

    monkeypatch.setattr(wire.Connection, "_dispatch", counting)
    # gRPC servers refuse frequent pings from clients unless told to allow them.
    options = [("grpc.http2.min_ping_interval_without_data_ms", 10), ("grpc.http2.max_ping_strikes", 0)]
    with grpc_server(service, options=options) as (_, port), connected(plain(port)) as connection:
        messages = connection.server_stream(WATCH, StringValue(), BytesValue, metadata=())
        threading.Timer(1.2, service.feed.put, (b"late",)).start()
        assert next(messages).value == b"late"
        assert len(acks) >= 3
        service.feed.put(None)
        assert list(messages) == []


def test_a_tls_peer_that_never_answers_the_handshake_fails_by_the_deadline(
        tls_server: tuple[int, str, str]) -> None:
    _, ca_file, _ = tls_server
    with h2peer.Peer(h2peer.drain) as peer:
        started = time.monotonic()
        with pytest.raises(wire.RpcError) as caught:
            wire.Connection(wire.Endpoint("127.0.0.1", peer.port, wire.tls_context(ca_file), SERVER_NAME),
                            deadline=time.monotonic() + 0.3)
        assert caught.value.code == "UNAVAILABLE"
        assert 0.25 <= time.monotonic() - started < 1.5


def test_garbage_instead_of_http2_is_an_internal_protocol_error_at_once() -> None:
    def garbage(sock: socket.socket, stop: threading.Event) -> None:
        h2peer.read_some(sock, stop)
        # Its first bytes declare a 16 MiB frame of type 0xff: not the SETTINGS every HTTP/2 server starts with.
        sock.sendall(b"\xff\xff\xff\xff" + random.Random(5).randbytes(200))
        h2peer.drain(sock, stop)

    with h2peer.Peer(garbage) as peer, connected(plain(peer.port)) as connection:
        started = time.monotonic()
        with pytest.raises(wire.RpcError) as caught:
            echo(connection, b"x")
        assert (caught.value.code, caught.value.details) == (
            "INTERNAL", "HTTP/2 protocol error from the service: its first frame is not SETTINGS")
        assert time.monotonic() - started < 2
        assert not connection.usable


@pytest.mark.parametrize(("frame", "details"), [
    # A SETTINGS frame five bytes long, which no list of six-byte settings can be.
    (b"\x00\x00\x05\x04\x00\x00\x00\x00\x00" + b"\x01" * 5, "FrameDataMissingError"),
    # A DATA frame declaring 1 MiB, where the client allows 16 KiB: refused at its header, not after 1 MiB.
    (b"\x10\x00\x00\x00\x00\x00\x00\x00\x01" + b"\x00" * 100, "a 1048576-byte frame, more than the 16384 allowed"),
])
def test_a_malformed_frame_after_a_good_start_is_an_internal_protocol_error(frame: bytes, details: str) -> None:
    def respond(conn: h2.connection.H2Connection, request: h2peer.Request) -> None:
        conn.send_headers(request.stream_id, h2peer.GRPC_HEADERS)
        conn._data_to_send += frame  # below h2's checks, as a broken server's bytes would be

    error, elapsed = unary_against(respond)
    assert (error.code, error.details) == ("INTERNAL", f"HTTP/2 protocol error from the service: {details}")
    assert elapsed < 2


def test_a_goaway_fails_the_open_calls_at_once_as_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wire, "IDLE_PING_SECONDS", 1.0)  # a stream left waiting would be found out soon
    def respond(conn: h2.connection.H2Connection, request: h2peer.Request) -> None:
        conn.send_headers(request.stream_id, h2peer.GRPC_HEADERS)
        conn.send_data(request.stream_id, h2peer.frame(BytesValue(value=b"one").SerializeToString()))
        # The service is leaving; h2 would refuse whatever came after this, so the call cannot go on.
        conn.close_connection(last_stream_id=request.stream_id)

    with h2peer.Peer(h2peer.H2Answer(respond)) as peer, connected(plain(peer.port)) as connection:
        messages = connection.server_stream(WATCH, StringValue(), BytesValue, metadata=())
        assert next(messages).value == b"one"
        started = time.monotonic()
        with pytest.raises(wire.RpcError) as caught:
            next(messages)
        assert (caught.value.code, caught.value.details) == (
            "UNAVAILABLE", "the service closed the connection (NO_ERROR)")
        assert time.monotonic() - started < 2
        assert not connection.usable
        with pytest.raises(wire.RpcError) as again:
            echo(connection, b"x")
        assert (again.value.code, again.value.details) == ("UNAVAILABLE", "the service is closing this connection")


def test_a_server_shutting_down_gracefully_fails_the_call_in_flight_as_unavailable(service: Service) -> None:
    # grpc's graceful stop sends GOAWAY, then a PING, then a second GOAWAY, then lets calls finish; h2 cannot
    # receive after a GOAWAY, so the call ends retryable (UNAVAILABLE), never as a protocol error.
    with grpc_server(service) as (grpc_srv, port), connected(plain(port)) as connection:
        assert echo(connection, b"warm") == b"warm"
        stopping = threading.Timer(0.2, grpc_srv.stop, (PATIENCE_SECONDS,))
        stopping.start()
        started = time.monotonic()
        with pytest.raises(wire.RpcError) as caught:
            connection.unary(SLEEP, DoubleValue(value=1.0), BytesValue, metadata=(), timeout=PATIENCE_SECONDS)
        assert caught.value.code == "UNAVAILABLE"
        assert caught.value.details.startswith("the service closed the connection")
        assert time.monotonic() - started < 1
        assert not connection.usable
        stopping.join()
