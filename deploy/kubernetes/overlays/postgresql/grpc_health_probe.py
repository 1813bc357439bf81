"""Readiness probe: exit 0 when the server's gRPC health service answers SERVING over its TLS listener.

The kubelet's own gRPC probe speaks plaintext only, so the container runs this with the image's Python:

    python /etc/secretsvc/probe/grpc_health_probe.py ADDRESS SERVER_NAME CA_FILE

SERVER_NAME is a name in the server's certificate (the probe connects to ADDRESS, usually loopback, and checks
the certificate against CA_FILE as clients do). The health service needs no token. Exit 1: not serving (the
server is starting, stopping, or its key-encryption key or store is unreachable); 2: no answer.
"""

from __future__ import annotations

import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

TIMEOUT_S = 3.0
MAX_CA_BYTES = 1024 * 1024


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: grpc_health_probe.py ADDRESS SERVER_NAME CA_FILE", file=sys.stderr)
        return 2
    address, server_name, ca_file = argv
    with Path(ca_file).open("rb") as f:
        ca = f.read(MAX_CA_BYTES)
    options = [("grpc.ssl_target_name_override", server_name)]
    with grpc.secure_channel(address, grpc.ssl_channel_credentials(ca), options=options) as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT_S)
        except grpc.RpcError as exc:
            print(f"health check of {address} failed: {exc.code().name}", file=sys.stderr)
            return 2
    if answer.status != health_pb2.HealthCheckResponse.SERVING:
        print(f"{address} is {health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
