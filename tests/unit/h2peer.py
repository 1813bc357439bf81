"""Scripted peers for the agent's gRPC client tests: a TCP listener in a thread whose every connection is
handled by a test's function, with helpers for HTTP/2 peers that answer a request the way a broken, foreign
or hostile server would, and for raw peers that never speak HTTP/2 at all."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType

import h2.config
import h2.connection
import h2.events

# How often a peer's blocking read wakes to see whether the test is over.
POLL_SECONDS = 0.05
GRPC_HEADERS = ((b":status", b"200"), (b"content-type", b"application/grpc"))

Handle = Callable[[socket.socket, threading.Event], None]


def frame(message: bytes, *, compressed: bool = False, length: int | None = None) -> bytes:
    """A gRPC length-prefixed message; `length` declares another length than the message's own."""
    declared = len(message) if length is None else length
    return bytes([1 if compressed else 0]) + declared.to_bytes(4, "big") + message


def read_some(sock: socket.socket, stop: threading.Event) -> bytes:
    """What arrives next; b"" at EOF or when the test is over."""
    sock.settimeout(POLL_SECONDS)
    while not stop.is_set():
        try:
            return sock.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            return b""
    return b""


def drain(sock: socket.socket, stop: threading.Event) -> None:
    """Read and drop everything until the client hangs up: a peer that closed with unread data would reset
    the connection, and the client could see the reset instead of what the test sent."""
    while read_some(sock, stop):
        pass


class Peer:
    """Accepts connections on 127.0.0.1 one at a time and runs `handle(sock, stop)` for each."""

    def __init__(self, handle: Handle) -> None:
        self._handle = handle
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(POLL_SECONDS)
        self.port: int = self._listener.getsockname()[1]
        self.connections = 0
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"h2peer-{self.port}", daemon=True)

    def __enter__(self) -> Peer:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()
        assert not self._thread.is_alive(), "the peer's thread did not stop"
        if self.errors and kind is None:
            raise AssertionError(f"the peer failed: {self.errors[0]!r}") from self.errors[0]

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            try:
                self._handle(sock, self._stop)
            except Exception as exc:  # reported by __exit__, in the test's thread
                self.errors.append(exc)
            finally:
                sock.close()


@dataclass
class Request:
    """What an HTTP/2 peer received on one stream."""

    stream_id: int
    headers: dict[bytes, bytes]
    body: bytearray = field(default_factory=bytearray)


Respond = Callable[[h2.connection.H2Connection, Request], None]


class H2Answer:
    """An HTTP/2 server side that calls `respond(connection, request)` once a request is whole, then keeps
    reading (and acknowledging) until the client hangs up. `requests` holds every request seen."""

    def __init__(self, respond: Respond) -> None:
        self._respond = respond
        self.requests: list[Request] = []

    def __call__(self, sock: socket.socket, stop: threading.Event) -> None:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding=None))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        open_requests: dict[int, Request] = {}
        while data := read_some(sock, stop):
            if conn.state_machine.state is h2.connection.ConnectionState.CLOSED:
                # After our GOAWAY h2 refuses any frame, even the client's SETTINGS ack still in flight;
                # what the client sends now is read and dropped until it hangs up, as a real server does.
                continue
            for event in conn.receive_data(data):
                self._on_event(conn, event, open_requests)
            if out := conn.data_to_send():
                try:
                    sock.sendall(out)
                except OSError:
                    return

    def _on_event(self, conn: h2.connection.H2Connection, event: h2.events.Event,
                  open_requests: dict[int, Request]) -> None:
        if isinstance(event, h2.events.RequestReceived) and event.stream_id is not None:
            request = Request(event.stream_id, dict(event.headers or ()))
            open_requests[event.stream_id] = request
            self.requests.append(request)
        elif isinstance(event, h2.events.DataReceived) and event.stream_id is not None:
            open_requests[event.stream_id].body += event.data or b""
            conn.acknowledge_received_data(event.flow_controlled_length or 0, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded) and event.stream_id in open_requests:
            self._respond(conn, open_requests[event.stream_id])


def answer(headers: Sequence[tuple[bytes, bytes]] | None = GRPC_HEADERS, *, data: Sequence[bytes] = (),
           trailers: Sequence[tuple[bytes, bytes]] | None = ((b"grpc-status", b"0"),)) -> Respond:
    """A response made of these parts, in order (each data part one frame, at most 16 KiB); the last part sent
    ends the stream."""

    def respond(conn: h2.connection.H2Connection, request: Request) -> None:
        parts: list[Sequence[tuple[bytes, bytes]] | bytes] = []
        if headers is not None:
            parts.append(headers)
        parts += data
        if trailers is not None:
            parts.append(trailers)
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            if isinstance(part, bytes):
                conn.send_data(request.stream_id, part, end_stream=last)
            else:
                conn.send_headers(request.stream_id, part, end_stream=last)

    return respond
