"""A real gRPC server in the test process whose methods fail, sleep or echo on demand (raw bytes, no protos)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from typing import Any

import grpc


class Behaviour:
    """What each method does; counts every call that reached the server."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.fail_first = 0  # UNAVAILABLE for this many calls of each method
        self.delay = 0.0
        self.seen_tokens: list[str] = []
        self.seen_deadlines: list[float | None] = []
        self._lock = threading.Lock()

    def unary(self, name: str) -> Any:
        def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
            with self._lock:
                self.calls[name] += 1
                count = self.calls[name]
            metadata = dict(context.invocation_metadata())
            self.seen_tokens.append(str(metadata.get("authorization", "")))
            self.seen_deadlines.append(context.time_remaining())
            if count <= self.fail_first:
                context.abort(grpc.StatusCode.UNAVAILABLE, "storage is busy")
            time.sleep(self.delay)
            return request

        return grpc.unary_unary_rpc_method_handler(handle)

    def stream(self, name: str) -> Any:
        def handle(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
            self.calls[name] += 1
            metadata = dict(context.invocation_metadata())
            self.seen_tokens.append(str(metadata.get("authorization", "")))
            self.seen_deadlines.append(context.time_remaining())
            yield b"one"
            yield b"two"

        return grpc.unary_stream_rpc_method_handler(handle)


@contextmanager
def fake_server(behaviour: Behaviour, credentials: grpc.ServerCredentials | None = None) -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((
        grpc.method_handlers_generic_handler("secretsvc.v1.Secrets", {
            "GetSecret": behaviour.unary("GetSecret"), "PutSecret": behaviour.unary("PutSecret")}),
        grpc.method_handlers_generic_handler("secretsvc.v1.Admin", {
            "RewrapStored": behaviour.stream("RewrapStored")}),
    ))
    port = (server.add_secure_port("127.0.0.1:0", credentials) if credentials is not None
            else server.add_insecure_port("127.0.0.1:0"))
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(0).wait()
