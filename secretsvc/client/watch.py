"""A watch on secrets that survives the connection: `SecretWatch` reconnects with backoff and, since every new
stream starts with the full current state (`synced`), a client that lost its stream catches up on whatever
changed meanwhile by comparing that state with what it already has.

    watch = SecretWatch(channel, [("payments", "db/password")])
    for batch in watch:            # blocks; runs until watch.close() (from any thread) or a permanent error
        if batch.synced: ...       # every watched secret: compare with what was written
        else: ...                  # only those that changed
    watch.close()

Permanent refusals (PERMISSION_DENIED, INVALID_ARGUMENT, UNIMPLEMENTED, and FAILED_PRECONDITION: watching is
turned off) end the iteration with the `grpc.RpcError`. Anything else (the server restarting, a network break,
the server ending a long watch, a full server) is retried with exponential backoff and full jitter, so a fleet
of watchers that lost one server does not return to the next all at once.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from secretsvc.v1 import secrets_pb2, secrets_pb2_grpc

PERMANENT_CODES = frozenset({grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INVALID_ARGUMENT,
                             grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.FAILED_PRECONDITION})
INITIAL_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class SecretState:
    namespace: str
    path: str
    exists: bool
    current_version: int  # 0 when it does not exist
    readable: bool  # the current version is active (not deleted or destroyed)


@dataclass(frozen=True, slots=True)
class WatchBatch:
    synced: bool  # a (re)connection's first batch: every watched secret
    changes: tuple[SecretState, ...]


def _state(change: secrets_pb2.SecretChange) -> SecretState:
    return SecretState(change.ref.namespace, change.ref.path, change.exists, change.current_version,
                       change.exists and change.state == secrets_pb2.VERSION_STATE_ACTIVE)


class SecretWatch:
    def __init__(self, channel: grpc.Channel, refs: Sequence[tuple[str, str]], *,
                 on_retry: Callable[[grpc.RpcError | None, float], None] = lambda error, delay: None,
                 uniform: Callable[[], float] = random.random) -> None:
        self._stub = secrets_pb2_grpc.SecretsStub(channel)
        self._request = secrets_pb2.WatchSecretsRequest(
            refs=[secrets_pb2.SecretRef(namespace=ns, path=path) for ns, path in refs])
        self._on_retry = on_retry  # told of each reconnection and the wait before it (for logs)
        self._uniform = uniform
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._call: Any = None

    def close(self) -> None:
        """End the watch from any thread: the iteration stops at once."""
        self._closed.set()
        with self._lock:
            if self._call is not None:
                self._call.cancel()

    def __iter__(self) -> Iterator[WatchBatch]:
        failures = 0
        while not self._closed.is_set():
            with self._lock:
                call = self._call = self._stub.WatchSecrets(self._request)
            served = False
            error: grpc.RpcError | None = None
            try:
                for response in call:
                    served, failures = True, 0
                    yield WatchBatch(response.synced, tuple(_state(c) for c in response.changes))
            except grpc.RpcError as exc:
                if self._closed.is_set():
                    return
                if exc.code() in PERMANENT_CODES:
                    raise
                error = exc
            if served and error is None:
                delay = 0.0  # the server ended a watch that ran its full time: reconnect at once
            else:
                failures += 1
                delay = self._uniform() * min(MAX_BACKOFF_SECONDS,
                                              INITIAL_BACKOFF_SECONDS * 2 ** min(failures - 1, 16))
            self._on_retry(error, delay)
            if self._closed.wait(delay):
                return
