"""A real gRPC server in the test process, listening through `secretsvc.rpc.tls`, with a tiny test servicer.

`/test.Who/Am` answers with the identity `secretsvc.auth.certs` finds in the call's auth context, so tests
see what a verified client certificate turns into after a real handshake.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from secretsvc.auth.certs import principal_from_auth_context
from secretsvc.config import ServerConfig, load_config
from secretsvc.rpc import tls
from tests.tlskit import FRESH_CONNECTION

WHO_AM = "/test.Who/Am"


def server_config(tmp_path: Path, **flags: Any) -> ServerConfig:
    return load_config({"data_dir": tmp_path / "data", "listen": "127.0.0.1:0", **flags}, {}, None)


@contextmanager
def serving(config: ServerConfig) -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=[("grpc.so_reuseport", 0)])
    status = health.HealthServicer()
    status.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(status, server)

    def who_am(request: bytes, context: grpc.ServicerContext) -> bytes:
        principal = principal_from_auth_context(context.auth_context(), config.client_identity)  # type: ignore[arg-type]
        return (principal.display if principal else "nobody").encode()

    handler = grpc.unary_unary_rpc_method_handler(who_am)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Who", {"Am": handler}),))
    port = tls.bind(server, config)
    assert port, "could not bind"
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(0).wait()


def who_am_i(target: str, creds: grpc.ChannelCredentials) -> str:
    with grpc.secure_channel(target, creds, options=FRESH_CONNECTION) as channel:
        answer: bytes = channel.unary_unary(WHO_AM)(b"", timeout=5)
        return answer.decode()
