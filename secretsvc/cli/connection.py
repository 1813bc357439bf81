"""How client commands reach the server: address, token, channel, and errors turned into one clear line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc

from secretsvc.boundedio import read_bounded
from secretsvc.config import DEFAULT_LISTEN
from secretsvc.errors import InvalidArgument
from secretsvc.service import limits

MAX_TOKEN_FILE_BYTES = 4096


class UsageError(Exception):
    """A problem with how the command was invoked (exit status 2)."""


def add_client_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection")
    group.add_argument("--addr", metavar="HOST:PORT",
                       help=f"server address (default: $SECRETSVC_ADDR or {DEFAULT_LISTEN})")
    group.add_argument("--token-file", metavar="PATH", type=Path,
                       help="file holding the bearer token (default: $SECRETSVC_TOKEN)")
    group.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                       help="deadline for each call (default: 30)")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")


def _token(args: argparse.Namespace) -> str:
    token_file: Path | None = args.token_file
    if token_file is not None:
        try:
            raw = read_bounded(token_file, MAX_TOKEN_FILE_BYTES, what="token file",
                               limit_name="MAX_TOKEN_FILE_BYTES", error=InvalidArgument)
        except InvalidArgument as exc:
            raise UsageError(str(exc)) from None
        token = raw.decode("utf-8", "replace").strip()
    else:
        token = os.environ.get("SECRETSVC_TOKEN", "").strip()
    if not token:
        raise UsageError("no token: set SECRETSVC_TOKEN or pass --token-file PATH")
    return token


class Client:
    """A channel plus the call options every command needs."""

    def __init__(self, channel: grpc.Channel, token: str, timeout: float) -> None:
        self.channel = channel
        self._metadata = (("authorization", f"Bearer {token}"),)
        self._timeout = timeout

    def call(self, method: Callable[..., Any], request: Any) -> Any:
        return method(request, metadata=self._metadata, timeout=self._timeout)


@contextmanager
def connect(args: argparse.Namespace) -> Iterator[Client]:
    addr = args.addr or os.environ.get("SECRETSVC_ADDR") or DEFAULT_LISTEN
    token = _token(args)
    channel = grpc.insecure_channel(addr, options=[
        ("grpc.max_receive_message_length", limits.MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", limits.MAX_MESSAGE_BYTES),
    ])
    try:
        yield Client(channel, token, args.timeout)
    finally:
        channel.close()


def run_command(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a client command; print failures as one line on stderr and map them to an exit status."""
    try:
        return func(args)
    except UsageError as exc:
        print(f"secretsvc: {exc}", file=sys.stderr)
        return 2
    except grpc.RpcError as exc:
        code = exc.code()
        detail = exc.details() or ""
        if code == grpc.StatusCode.UNAVAILABLE and "failed to connect" in detail.lower():
            detail = f"cannot reach the server ({detail}); is `secretsvc serve` running at that address?"
        print(f"secretsvc: {code.name.lower()}: {detail}", file=sys.stderr)
        return 1
