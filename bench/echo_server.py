"""A trivial gRPC echo server: the transport ceiling the service benchmark compares against.

It is built the way `secretsvc.rpc.server.start` builds the real server (a `ThreadPoolExecutor` with the
same worker count, the same message size options) but serves one unary method, `/bench.Echo/Echo`, whose
handler returns its request bytes. Identity serializers (none at all) mean no protobuf work on either side.

Run: python bench/echo_server.py --listen 127.0.0.1:PORT [--workers 16]
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from concurrent import futures
from types import FrameType

import grpc

from secretsvc.service import limits

ECHO_METHOD = "/bench.Echo/Echo"
_SERVICE = "bench.Echo"
MAX_WORKERS = 256  # the same bound secretsvc's config puts on --workers


def _echo(request: bytes, context: grpc.ServicerContext) -> bytes:
    return request


def build_server(workers: int) -> grpc.Server:
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rpc"),
        options=[
            ("grpc.max_receive_message_length", limits.MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", limits.MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ],
    )
    handler = grpc.method_handlers_generic_handler(
        _SERVICE, {"Echo": grpc.unary_unary_rpc_method_handler(_echo)}
    )
    server.add_generic_rpc_handlers((handler,))
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="gRPC echo server (benchmark ceiling)")
    parser.add_argument("--listen", required=True, metavar="HOST:PORT")
    parser.add_argument("--workers", type=int, default=16, metavar="N")
    args = parser.parse_args(argv)
    if not 1 <= args.workers <= MAX_WORKERS:
        parser.error(f"--workers must be 1..{MAX_WORKERS}")
    server = build_server(args.workers)
    try:
        port = server.add_insecure_port(args.listen)
    except RuntimeError:
        port = 0
    if port == 0:
        print(f"echo_server: cannot listen on {args.listen}", file=sys.stderr)
        return 1
    server.start()
    print(f"echo_server: listening on port {port}", file=sys.stderr, flush=True)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stop.wait()
    server.stop(1).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
