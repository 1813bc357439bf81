"""The agent's gRPC client: unary and server-streaming calls over one HTTP/2 connection, with `h2` doing
HTTP/2 and the standard library's `ssl` doing TLS.

Why not grpcio: the agent starts in every pod, and grpcio alone costs it about 20 MiB of its 32 MiB budget
and 40 ms of start-up (bench/agent_bench.py); grpclib, the pure-Python alternative, needs asyncio, whose
import costs another 60 ms. The agent needs two calls and no server side, so it speaks the protocol itself
(grpc/grpc doc/PROTOCOL-HTTP2.md): request headers, length-prefixed messages, status in the trailers.

One `Connection` serves calls from one thread, several at once: a GetSecrets round runs while a watch stream
is open, and messages for the stream that is not being read wait in its buffer. Everything received is
bounded (frame and message size, buffered bytes, header list size). A connection that fails fails every call on it
with UNAVAILABLE; the caller opens a new one.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import unquote

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes

from secretsvc.service.limits import MAX_MESSAGE_BYTES

if TYPE_CHECKING:
    from google.protobuf.message import Message

STATUS_NAMES = ("OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
                "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
                "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED")
# A larger window than HTTP/2's 64 KiB default: a 20-secret response arrives without waiting for updates.
RECEIVE_WINDOW_BYTES = 4 * 1024 * 1024
MAX_HEADER_LIST_BYTES = 64 * 1024
MAX_BUFFERED_BYTES = 2 * (MAX_MESSAGE_BYTES + 5)
MAX_DETAILS_CHARS = 500
# How long an open stream may receive nothing before the connection is pinged; the server sends keepalive
# pings every minute, so silence this long means a peer or a network path that is gone.
IDLE_PING_SECONDS = 200.0
PING_ANSWER_SECONDS = 20.0
_HTTP_STATUS_CODES = {b"400": "INTERNAL", b"401": "UNAUTHENTICATED", b"403": "PERMISSION_DENIED",
                      b"404": "UNIMPLEMENTED", b"429": "UNAVAILABLE", b"502": "UNAVAILABLE",
                      b"503": "UNAVAILABLE", b"504": "UNAVAILABLE"}
_FRAME_HEADER_BYTES = 9
_SETTINGS_FRAME = 0x4
_RESET_CODES = {ErrorCodes.REFUSED_STREAM: "UNAVAILABLE", ErrorCodes.CANCEL: "CANCELLED",
                ErrorCodes.ENHANCE_YOUR_CALM: "RESOURCE_EXHAUSTED", ErrorCodes.INADEQUATE_SECURITY:
                "PERMISSION_DENIED"}


class RpcError(Exception):
    """A call that ended without a response: `code` is the gRPC status name, `details` the server's message
    or what went wrong on the way."""

    def __init__(self, code: str, details: str) -> None:
        super().__init__(f"{code.lower()}: {details}")
        self.code = code
        self.details = details[:MAX_DETAILS_CHARS]


M = TypeVar("M", bound="Message")


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int
    tls: ssl.SSLContext | None  # None: plaintext (HTTP/2 with prior knowledge)
    server_name: str  # checked in the server's certificate and sent as :authority

    @property
    def authority(self) -> str:
        return f"{self.server_name}:{self.port}"


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """Verify the server against `ca_file`, or the system's roots when None; offer only HTTP/2."""
    context = ssl.create_default_context(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["h2"])
    return context


class _Stream:
    __slots__ = ("buffer", "buffered", "ended", "error", "messages", "status", "status_details")

    def __init__(self) -> None:
        self.buffer = bytearray()  # a message not yet whole
        self.messages: deque[bytes] = deque()
        self.buffered = 0
        self.status: str | None = None
        self.status_details = ""
        self.ended = False
        self.error: RpcError | None = None

    @property
    def done(self) -> bool:
        return self.ended or self.error is not None

    def fail(self, error: RpcError) -> None:
        if self.error is None and not self.ended:
            self.error = error

    def take_data(self, data: bytes) -> None:
        self.buffer += data
        self.buffered += len(data)
        if self.buffered > MAX_BUFFERED_BYTES:
            self.fail(RpcError("RESOURCE_EXHAUSTED", f"more than {MAX_BUFFERED_BYTES} bytes waiting to be read"))
            return
        while len(self.buffer) >= 5:
            compressed, length = self.buffer[0], int.from_bytes(self.buffer[1:5], "big")
            if compressed:
                # No grpc-accept-encoding is sent, so a compressed message is a server that ignored it.
                self.fail(RpcError("INTERNAL", "a compressed message, which was not asked for"))
                return
            if length > MAX_MESSAGE_BYTES:
                self.fail(RpcError("RESOURCE_EXHAUSTED", f"a {length}-byte message, more than "
                                   f"MAX_MESSAGE_BYTES={MAX_MESSAGE_BYTES}"))
                return
            if len(self.buffer) < 5 + length:
                return
            self.messages.append(bytes(self.buffer[5:5 + length]))
            del self.buffer[:5 + length]

    def take_message(self) -> bytes:
        message = self.messages.popleft()
        self.buffered -= len(message) + 5
        return message

    def take_headers(self, headers: Sequence[tuple[bytes, bytes]], *, trailers: bool) -> None:
        fields = dict(headers)
        if not trailers:
            status = fields.get(b":status", b"")
            if status != b"200":
                code = _HTTP_STATUS_CODES.get(status, "UNKNOWN")
                self.fail(RpcError(code, f"HTTP status {status.decode('ascii', 'replace')[:3]} instead of a gRPC "
                                   "answer: is the address the secrets service's?"))
                return
            content_type = fields.get(b"content-type", b"")
            if not content_type.startswith(b"application/grpc"):
                self.fail(RpcError("UNKNOWN", "the answer is not gRPC (content-type "
                                   f"{content_type.decode('ascii', 'replace')[:60]!r})"))
                return
        raw_status = fields.get(b"grpc-status")
        if raw_status is None:
            if trailers:
                self.fail(RpcError("INTERNAL", "the call ended without a gRPC status"))
            return
        number = int(raw_status) if raw_status.isdigit() and len(raw_status) <= 2 else -1
        self.status = STATUS_NAMES[number] if 0 <= number < len(STATUS_NAMES) else "UNKNOWN"
        self.status_details = unquote(fields.get(b"grpc-message", b"").decode("ascii", "replace"))

    def finish(self) -> None:
        self.ended = True
        if self.error is None and self.status is None:
            self.error = RpcError("INTERNAL", "the call ended without a gRPC status")

    def raise_for_status(self) -> None:
        if self.error is not None:
            raise self.error
        if self.status != "OK":
            raise RpcError(self.status or "UNKNOWN", self.status_details)
        if self.buffer:
            raise RpcError("INTERNAL", "the call ended inside a message")


def _timeout_header(seconds: float) -> bytes:
    # gRPC allows at most eight digits: milliseconds cover 27 hours.
    return f"{max(1, int(seconds * 1000))}m".encode()


class Connection:
    def __init__(self, endpoint: Endpoint, *, deadline: float, user_agent: str = "secretsvc-injector-agent") -> None:
        """Connect (TCP, TLS, the HTTP/2 preface) before `deadline` (time.monotonic), or RpcError UNAVAILABLE."""
        self._endpoint = endpoint
        self._user_agent = user_agent.encode()
        self._streams: dict[int, _Stream] = {}
        self._broken: RpcError | None = None
        self._going_away = False
        self._ping_answered = False
        self._inbound = bytearray()  # received bytes that are not yet a whole frame
        self._first_frame = True  # the service's SETTINGS, which it must send before anything else
        try:
            raw = socket.create_connection((endpoint.host, endpoint.port), timeout=_left(deadline))
        except OSError as exc:
            raise RpcError("UNAVAILABLE",
                           f"cannot connect to {endpoint.host}:{endpoint.port}: {_reason(exc)}") from None
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock: socket.socket = raw
            if endpoint.tls is not None:
                raw.settimeout(_left(deadline))
                self._sock = endpoint.tls.wrap_socket(raw, server_hostname=endpoint.server_name)
                protocol = self._sock.selected_alpn_protocol()
                if protocol not in (None, "h2"):
                    raise RpcError("UNAVAILABLE", f"the server chose {protocol!r} over TLS, not HTTP/2")
            self._h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
            self._h2.local_settings = h2.settings.Settings(client=True, initial_values={
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: RECEIVE_WINDOW_BYTES,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST_BYTES,
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
            })
            self._h2.initiate_connection()
            self._h2.increment_flow_control_window(RECEIVE_WINDOW_BYTES - 65535)
            self._flush()
        except ssl.SSLCertVerificationError as exc:
            raw.close()
            raise RpcError("UNAVAILABLE", f"the server's certificate was not accepted: {exc.verify_message}") from None
        except OSError as exc:
            raw.close()
            raise RpcError("UNAVAILABLE", f"connecting to {endpoint.host}:{endpoint.port}: {_reason(exc)}") from None
        except RpcError:
            raw.close()
            raise

    @property
    def usable(self) -> bool:
        """False once the connection failed or the server said it is going away: open a new one."""
        return self._broken is None and not self._going_away

    def close(self) -> None:
        if self._broken is None:
            try:
                self._h2.close_connection()
                self._flush()
            except (OSError, RpcError, h2.exceptions.ProtocolError):
                pass
        self._break(RpcError("CANCELLED", "the connection was closed"))

    def unary(self, path: str, request: Message, response_type: type[M], *,
              metadata: Sequence[tuple[str, str]], timeout: float) -> M:
        deadline = time.monotonic() + timeout
        stream_id, stream = self._start(path, request.SerializeToString(), metadata, deadline)
        try:
            while not stream.done:
                if not self._receive(deadline):
                    raise RpcError("DEADLINE_EXCEEDED", f"no answer within {timeout:g} s")
            stream.raise_for_status()
            if len(stream.messages) != 1:
                raise RpcError("INTERNAL", f"{len(stream.messages)} response messages to a unary call")
            return _parse(response_type, stream.take_message())
        finally:
            self._forget(stream_id, stream)

    def server_stream(self, path: str, request: Message, response_type: type[M], *,
                      metadata: Sequence[tuple[str, str]]) -> Iterator[M]:
        """Each message as it arrives until the server ends the call (then RpcError unless its status is OK).
        Closing the iterator cancels the call."""
        stream_id, stream = self._start(path, request.SerializeToString(), metadata, None)
        try:
            while True:
                while stream.messages:
                    yield _parse(response_type, stream.take_message())
                if stream.done:
                    stream.raise_for_status()
                    return
                if not self._receive(time.monotonic() + IDLE_PING_SECONDS):
                    self._check_alive()
        finally:
            self._forget(stream_id, stream)

    # -- internals ---------------------------------------------------------------------------------------------

    def _start(self, path: str, payload: bytes, metadata: Sequence[tuple[str, str]],
               deadline: float | None) -> tuple[int, _Stream]:
        if self._broken is not None:
            raise self._broken
        if self._going_away:
            raise RpcError("UNAVAILABLE", "the service is closing this connection")
        headers = [(b":method", b"POST"), (b":scheme", b"http" if self._endpoint.tls is None else b"https"),
                   (b":path", path.encode()), (b":authority", self._endpoint.authority.encode()),
                   (b"te", b"trailers"), (b"content-type", b"application/grpc"),
                   (b"user-agent", self._user_agent)]
        if deadline is not None:
            headers.append((b"grpc-timeout", _timeout_header(deadline - time.monotonic())))
        headers.extend((k.encode(), v.encode()) for k, v in metadata)
        stream_id = self._h2.get_next_available_stream_id()
        stream = self._streams[stream_id] = _Stream()
        body = len(payload).to_bytes(5, "big") + payload  # flag byte 0 (not compressed), then the length
        try:
            self._h2.send_headers(stream_id, headers)
            while body:
                window = min(self._h2.local_flow_control_window(stream_id), self._h2.max_outbound_frame_size)
                if window <= 0:
                    # A stream has no deadline: a service that neither opens the window nor answers a ping is gone.
                    if not self._receive(deadline if deadline is not None else time.monotonic() + IDLE_PING_SECONDS):
                        if deadline is None:
                            self._check_alive()
                            continue
                        raise RpcError("DEADLINE_EXCEEDED", "the service did not take the request in time")
                    if stream.done:
                        break
                    continue
                chunk, body = body[:window], body[window:]
                self._h2.send_data(stream_id, chunk, end_stream=not body)
                self._flush()
        except BaseException:
            self._forget(stream_id, stream)
            raise
        return stream_id, stream

    def _forget(self, stream_id: int, stream: _Stream) -> None:
        self._streams.pop(stream_id, None)
        if not stream.done and self._broken is None:
            try:
                self._h2.reset_stream(stream_id, ErrorCodes.CANCEL)
                self._flush()
            except (RpcError, h2.exceptions.ProtocolError):
                pass

    def _check_alive(self) -> None:
        self._ping_answered = False
        self._h2.ping(b"\0" * 8)
        self._flush()
        deadline = time.monotonic() + PING_ANSWER_SECONDS
        while not self._ping_answered and self._broken is None:
            if not self._receive(deadline):
                self._break(RpcError("UNAVAILABLE", f"no word from the service in {IDLE_PING_SECONDS:g} s and no "
                                     "answer to a ping"))
        if self._broken is not None:
            raise self._broken

    def _flush(self) -> None:
        data = self._h2.data_to_send()
        if not data:
            return
        try:
            self._sock.sendall(data)
        except OSError as exc:
            error = RpcError("UNAVAILABLE", f"connection lost: {_reason(exc)}")
            self._break(error)
            raise error from None

    def _receive(self, deadline: float | None) -> bool:
        """Read what has arrived and hand it to the streams; False if nothing came before `deadline`."""
        if self._broken is not None:
            raise self._broken
        timeout = None if deadline is None else deadline - time.monotonic()
        if timeout is not None and timeout <= 0:
            return False
        self._sock.settimeout(timeout)
        try:
            data = self._sock.recv(65536)
        except TimeoutError:
            return False
        except OSError as exc:
            self._break(RpcError("UNAVAILABLE", f"connection lost: {_reason(exc)}"))
            return True
        if not data:
            self._break(RpcError("UNAVAILABLE", "the service closed the connection"))
            return True
        # h2 is handed one whole frame at a time: it would buffer whatever length a frame header declares (up
        # to 16 MiB) before checking it, and it refuses every frame after a GOAWAY (python-hyper/h2#1199) while
        # dropping the events of the frames before the one it refused, the GOAWAY's among them.
        self._inbound += data
        while not self._going_away and len(self._inbound) >= _FRAME_HEADER_BYTES:
            length = int.from_bytes(self._inbound[:3], "big")
            if self._first_frame and self._inbound.startswith(b"HTTP/"):
                self._break(RpcError("UNAVAILABLE", "the service answered in HTTP/1, not HTTP/2: is the address "
                                     "its gRPC port?"))
                return True
            problem = None
            if self._first_frame and self._inbound[3] != _SETTINGS_FRAME:
                problem = "its first frame is not SETTINGS"  # RFC 9113 3.4
            elif length > self._h2.max_inbound_frame_size:
                problem = f"a {length}-byte frame, more than the {self._h2.max_inbound_frame_size} allowed"
            if problem is not None:
                self._break(RpcError("INTERNAL", f"HTTP/2 protocol error from the service: {problem}"))
                return True
            if len(self._inbound) < _FRAME_HEADER_BYTES + length:
                break
            frame = bytes(self._inbound[:_FRAME_HEADER_BYTES + length])
            del self._inbound[:_FRAME_HEADER_BYTES + length]
            self._first_frame = False
            try:
                events = self._h2.receive_data(frame)
            except h2.exceptions.ProtocolError as exc:
                self._break(RpcError("INTERNAL", f"HTTP/2 protocol error from the service: {type(exc).__name__}"))
                return True
            for event in events:
                self._dispatch(event)
        if self._going_away:
            self._inbound.clear()  # nothing after a GOAWAY can be used (above)
        self._flush()
        return True

    def _dispatch(self, event: h2.events.Event) -> None:
        stream = self._streams.get(getattr(event, "stream_id", 0) or 0)
        if isinstance(event, h2.events.DataReceived):
            self._h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if stream is not None and not stream.done:
                stream.take_data(event.data)
        elif isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived):
            if stream is not None and not stream.done:
                stream.take_headers(event.headers, trailers=isinstance(event, h2.events.TrailersReceived))
        elif isinstance(event, h2.events.StreamEnded):
            if stream is not None:
                stream.finish()
        elif isinstance(event, h2.events.StreamReset):
            if stream is not None:
                code = _RESET_CODES.get(event.error_code, "INTERNAL")  # type: ignore[call-overload]
                stream.fail(RpcError(code, f"the service reset the call ({_error_name(event.error_code)})"))
        elif isinstance(event, h2.events.PingAckReceived):
            self._ping_answered = True
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._going_away = True
            # h2 refuses every frame after a GOAWAY (python-hyper/h2#1199), so no call on this connection can
            # finish, not even one the service meant to: fail them all now, for the caller to retry on a new one.
            error = RpcError("UNAVAILABLE", f"the service closed the connection ({_error_name(event.error_code)})")
            for other in self._streams.values():
                other.fail(error)

    def _break(self, error: RpcError) -> None:
        if self._broken is None:
            self._broken = error
            self._sock.close()
        for stream in self._streams.values():
            stream.fail(error)


def _parse(response_type: type[M], data: bytes) -> M:
    try:
        return response_type.FromString(data)
    except Exception:  # protobuf's DecodeError; its message says nothing a caller can act on
        raise RpcError("INTERNAL", "a response message that does not parse") from None


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise RpcError("DEADLINE_EXCEEDED", "the deadline passed before the connection was made")
    return left


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _error_name(code: object) -> str:
    return getattr(code, "name", str(code))
