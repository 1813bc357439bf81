"""The server interceptor chain, in a real gRPC server on loopback: identity, request ids, error mapping, metrics."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2

from secretsvc import errors
from secretsvc.auth.identify import CallerIdentifier
from secretsvc.auth.tokens import TOKEN_PREFIX, MintedToken, TokenAuthenticator, mint_token
from secretsvc.rpc.interceptors import current_principal, current_request_id, server_interceptors
from secretsvc.rpc.metrics import RpcMetrics
from secretsvc.rpc.requestlimits import SMALL_REQUEST_BYTES
from secretsvc.rpc.streamslots import StreamSlots
from secretsvc.store.sqlite import SqliteStore

_ERRORS: dict[bytes, Callable[[], Exception]] = {
    b"not-found": lambda: errors.NotFound("no secret at ns/path"),
    b"conflict": lambda: errors.VersionConflict("expected version 1, current is 2"),
    b"decrypt": errors.DecryptionFailed,
    b"corrupt": lambda: errors.CorruptRecord("stored ciphertext of ns/p version 1 failed to authenticate"),
    b"limit": lambda: errors.LimitExceeded("secret value is larger than MAX_SECRET_VALUE_BYTES=1048576"),
    b"crash": lambda: RuntimeError("internal detail that must not reach the client"),
}


def _raise(request: bytes, context: grpc.ServicerContext) -> bytes:
    raise _ERRORS[request]()


def _whoami(request: bytes, context: grpc.ServicerContext) -> bytes:
    principal = current_principal()
    return f"{principal.display}|{current_request_id()}".encode()


def _stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
    yield b"one"
    yield current_principal().name.encode()
    if request in _ERRORS:
        raise _ERRORS[request]()


def _health(request: bytes, context: grpc.ServicerContext) -> bytes:
    return b"serving"


_BIDI_STARTED: list[str] = []


def _parsed(request: health_pb2.HealthCheckRequest, context: grpc.ServicerContext) -> bytes:
    return f"parsed:{request.service}".encode()


def _bidi(requests: Iterator[health_pb2.HealthCheckRequest], context: grpc.ServicerContext) -> Iterator[bytes]:
    _BIDI_STARTED.append(current_principal().name)
    for request in requests:
        yield request.service.encode()


def _handlers() -> list[grpc.GenericRpcHandler[Any, Any]]:
    test = grpc.method_handlers_generic_handler(
        "test.Probe",
        {
            "Raise": grpc.unary_unary_rpc_method_handler(_raise),
            "Whoami": grpc.unary_unary_rpc_method_handler(_whoami),
            "Stream": grpc.unary_stream_rpc_method_handler(_stream),
            "Parsed": grpc.unary_unary_rpc_method_handler(
                _parsed, request_deserializer=health_pb2.HealthCheckRequest.FromString),
            "Bidi": grpc.stream_stream_rpc_method_handler(
                _bidi, request_deserializer=health_pb2.HealthCheckRequest.FromString),
        },
    )
    health = grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(_health)}
    )
    return [test, health]


class Harness:
    def __init__(self, channel: grpc.Channel, token: MintedToken, metrics: RpcMetrics) -> None:
        self.channel = channel
        self.token = token
        self.metrics = metrics

    def unary(self, method: str, request: bytes, metadata: tuple[tuple[str, str], ...] | None = None) -> Any:
        call = self.channel.unary_unary(f"/test.Probe/{method}", None, None)
        return call.with_call(request, metadata=self.auth() if metadata is None else metadata, timeout=10)

    def auth(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token.token}"),)

    def count(self, method: str, code: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "secretsvc_rpc_requests_total", {"method": method, "code": code}
        )
        return value or 0.0


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    store = SqliteStore(tmp_path / "secretsvc.db")
    token = mint_token("tester", now=0.0, policies=("p1",))
    store.put_token(token.record)
    metrics = RpcMetrics.create()
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4),
        handlers=_handlers(),
        interceptors=server_interceptors(CallerIdentifier(TokenAuthenticator(store)), metrics,
                                         streams=StreamSlots(max_total=2, max_per_peer=2, max_public=1)),
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Harness(channel, token, metrics)
    finally:
        channel.close()
        server.stop(None).wait()
        store.close()


def _trailer(call: Any, key: str) -> str:
    for k, v in call.trailing_metadata() or ():
        if k == key:
            return str(v)
    return ""


def test_an_authenticated_call_sees_its_principal_and_request_id(harness: Harness) -> None:
    response, call = harness.unary("Whoami", b"", (*harness.auth(), ("x-request-id", "req-123")))
    assert response == b"token:tester|req-123"
    assert _trailer(call, "x-request-id") == "req-123"
    assert harness.count("Whoami", "OK") == 1


def test_a_request_id_is_made_up_when_none_is_sent(harness: Harness) -> None:
    response, call = harness.unary("Whoami", b"")
    rid = response.decode().split("|")[1]
    assert len(rid) == 16
    assert _trailer(call, "x-request-id") == rid


def test_an_over_long_request_id_is_replaced(harness: Harness) -> None:
    response, _ = harness.unary("Whoami", b"", (*harness.auth(), ("x-request-id", "x" * 200)))
    rid = response.decode().split("|")[1]
    assert rid.startswith("invalid-")
    assert "x" * 200 not in rid


@pytest.mark.parametrize(
    "metadata",
    [
        (),
        (("authorization", "Basic abc"),),
        (("authorization", "Bearer"),),
        (("authorization", f"Bearer {TOKEN_PREFIX}_{'0' * 16}_nope"),),
    ],
    ids=["none", "basic", "empty-bearer", "unknown-token"],
)
def test_calls_without_valid_credentials_are_unauthenticated(
    harness: Harness, metadata: tuple[tuple[str, str], ...]
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        harness.unary("Whoami", b"", metadata)
    err: Any = info.value
    assert err.code() is grpc.StatusCode.UNAUTHENTICATED
    assert err.details() == "missing or invalid bearer token"
    assert _trailer(err, "x-request-id")
    assert harness.count("Whoami", "UNAUTHENTICATED") == 1


def test_the_bearer_scheme_is_case_insensitive(harness: Harness) -> None:
    response, _ = harness.unary("Whoami", b"", (("authorization", f"bearer {harness.token.token}"),))
    assert response.startswith(b"token:tester|")


@pytest.mark.parametrize(
    ("request_bytes", "code", "details"),
    [
        (b"not-found", grpc.StatusCode.NOT_FOUND, "no secret at ns/path"),
        (b"conflict", grpc.StatusCode.FAILED_PRECONDITION, "expected version 1, current is 2"),
        (b"decrypt", grpc.StatusCode.INVALID_ARGUMENT, "decryption failed"),
        (b"corrupt", grpc.StatusCode.DATA_LOSS, "stored ciphertext of ns/p version 1 failed to authenticate"),
        (b"limit", grpc.StatusCode.INVALID_ARGUMENT, "secret value is larger than MAX_SECRET_VALUE_BYTES=1048576"),
    ],
)
def test_service_errors_become_their_status(
    harness: Harness, request_bytes: bytes, code: grpc.StatusCode, details: str
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        harness.unary("Raise", request_bytes)
    err: Any = info.value
    assert err.code() is code
    # Storage errors (DATA_LOSS here) also name the request id, so the operator can find the log line.
    assert err.details().split(" (request id ")[0] == details
    assert harness.count("Raise", code.name) == 1


def test_an_unexpected_exception_is_internal_without_detail(harness: Harness) -> None:
    with pytest.raises(grpc.RpcError) as info:
        harness.unary("Raise", b"crash", (*harness.auth(), ("x-request-id", "req-9")))
    err: Any = info.value
    assert err.code() is grpc.StatusCode.INTERNAL
    assert err.details() == "internal error (request id req-9)"
    assert "must not reach" not in err.details()
    assert harness.count("Raise", "INTERNAL") == 1


def test_streams_are_authenticated_and_mapped(harness: Harness) -> None:
    call = harness.channel.unary_stream("/test.Probe/Stream", None, None)
    assert list(call(b"", metadata=harness.auth(), timeout=10)) == [b"one", b"tester"]
    with pytest.raises(grpc.RpcError) as info:
        list(call(b"", timeout=10))
    assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
    received: list[bytes] = []
    with pytest.raises(grpc.RpcError) as info:
        for item in call(b"not-found", metadata=harness.auth(), timeout=10):
            received.append(item)
    assert received == [b"one", b"tester"]
    assert info.value.code() is grpc.StatusCode.NOT_FOUND


def test_health_checks_need_no_credentials(harness: Harness) -> None:
    check = harness.channel.unary_unary("/grpc.health.v1.Health/Check", None, None)
    assert check(b"", timeout=10) == b"serving"


def test_no_principal_outside_a_call() -> None:
    with pytest.raises(errors.Unauthenticated):
        current_principal()


def _rpc_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "secretsvc.rpc"]


def test_successful_calls_log_their_fields_at_info(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="secretsvc.rpc")
    harness.unary("Whoami", b"", (*harness.auth(), ("x-request-id", "req-log")))
    (record,) = _rpc_records(caplog)
    fields: Any = record
    assert (record.getMessage(), fields.method, fields.code, fields.request_id) == ("rpc", "Whoami", "OK", "req-log")
    assert fields.principal == "token:tester"
    assert fields.duration_ms >= 0
    assert harness.token.token not in repr(record.__dict__)


def test_successful_calls_log_nothing_above_info(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="secretsvc.rpc")
    harness.unary("Whoami", b"")
    with pytest.raises(grpc.RpcError):
        harness.unary("Raise", b"crash")
    records = _rpc_records(caplog)
    assert [(r.levelname, r.getMessage()) for r in records] == [("ERROR", "rpc crashed")]
    crashed: Any = records[0]
    assert (crashed.method, crashed.code) == ("Raise", "INTERNAL")


def test_a_body_that_does_not_parse_is_invalid_argument(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="secretsvc.rpc")
    good = health_pb2.HealthCheckRequest(service="svc").SerializeToString()
    assert harness.unary("Parsed", good)[0] == b"parsed:svc"
    with pytest.raises(grpc.RpcError) as info:
        harness.unary("Parsed", b"\xff\xff\xff\xff\x0f")
    err: Any = info.value
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == "request body is not a valid Parsed request message"
    assert harness.count("Parsed", "INVALID_ARGUMENT") == 1
    failed = [r for r in _rpc_records(caplog) if r.getMessage().startswith("rpc failed")]
    assert len(failed) == 1 and failed[0].exc_info is None


def test_a_body_over_the_method_bound_is_refused_before_parsing(harness: Harness) -> None:
    body = health_pb2.HealthCheckRequest(service="x" * SMALL_REQUEST_BYTES).SerializeToString()
    with pytest.raises(grpc.RpcError) as info:
        harness.unary("Parsed", body)
    err: Any = info.value
    assert err.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"maximum of {SMALL_REQUEST_BYTES}" in err.details()


def _bidi_call(harness: Harness, items: list[str], metadata: Any, release: Any = None) -> Any:
    def requests() -> Iterator[health_pb2.HealthCheckRequest]:
        for item in items:
            yield health_pb2.HealthCheckRequest(service=item)
        if release is not None:
            release.wait(10)

    call = harness.channel.stream_stream("/test.Probe/Bidi", health_pb2.HealthCheckRequest.SerializeToString, None)
    return call(requests(), metadata=metadata, timeout=10)


def test_request_streams_are_parsed_per_message_and_authenticated(harness: Harness) -> None:
    _BIDI_STARTED.clear()
    assert list(_bidi_call(harness, ["a", "b"], harness.auth())) == [b"a", b"b"]
    with pytest.raises(grpc.RpcError) as info:
        list(_bidi_call(harness, ["a"], ()))
    assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert _BIDI_STARTED == ["tester"]  # the refused call never reached the handler
    assert harness.count("Bidi", "UNAUTHENTICATED") == 1


def test_open_streams_are_bounded_and_give_their_slots_back(harness: Harness) -> None:
    import threading

    release = threading.Event()
    held = [_bidi_call(harness, ["x"], harness.auth(), release) for _ in range(2)]
    for call in held:
        assert next(call) == b"x"  # both are open and being served
    with pytest.raises(grpc.RpcError) as info:
        list(_bidi_call(harness, ["y"], harness.auth()))
    assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    release.set()
    for call in held:
        assert list(call) == []
    assert list(_bidi_call(harness, ["z"], harness.auth())) == [b"z"]


def test_a_cancelled_stream_is_counted_not_crashed(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    import threading
    import time

    caplog.set_level(logging.INFO, logger="secretsvc.rpc")
    release = threading.Event()
    call = _bidi_call(harness, ["x"], harness.auth(), release)
    assert next(call) == b"x"
    call.cancel()
    deadline = time.monotonic() + 5
    while harness.count("Bidi", "CANCELLED") + harness.count("Bidi", "OK") == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    release.set()
    # Counted once. Cancelled, unless the server had seen the end of the stream just before the cancel.
    assert (harness.count("Bidi", "CANCELLED"), harness.count("Bidi", "OK")) in {(1.0, 0.0), (0.0, 1.0)}
    assert not [r for r in _rpc_records(caplog) if r.levelno >= logging.ERROR]
    # Its slot is free again: both slots can be held at once.
    again = threading.Event()
    held = [_bidi_call(harness, ["z"], harness.auth(), again) for _ in range(2)]
    try:
        assert [next(c) for c in held] == [b"z", b"z"]
    finally:
        again.set()
