"""How client commands reach the server: flags to client settings, one channel, and errors as one clear line.

The channel itself (TLS, token, deadline, retries) comes from the client library, `secretsvc/client/`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc

from secretsvc.client import ClientSettings, open_channel, token_source
from secretsvc.client.channel import DEFAULT_TIMEOUT_SECONDS
from secretsvc.client.tokens import TokenSource
from secretsvc.config import DEFAULT_LISTEN
from secretsvc.errors import ConfigError


class UsageError(Exception):
    """A problem with how the command was invoked (exit status 2)."""


def add_client_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection")
    group.add_argument("--addr", metavar="HOST:PORT",
                       help=f"server address (default: $SECRETSVC_ADDR or {DEFAULT_LISTEN})")
    group.add_argument("--token-file", metavar="PATH", type=Path,
                       help="file holding the bearer token, read again when it changes (default: $SECRETSVC_TOKEN)")
    group.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS, metavar="SECONDS",
                       help="deadline for each call, retries included (default: 30)")
    tls = parser.add_argument_group(
        "TLS", "plaintext to a loopback address unless one of these is given; TLS with the system's CAs to any "
               "other address")
    tls.add_argument("--ca-file", type=Path, metavar="PEM",
                     help="CA bundle that signed the server's certificate ($SECRETSVC_CA_FILE)")
    tls.add_argument("--cert", type=Path, metavar="PEM",
                     help="client certificate for mutual TLS ($SECRETSVC_CLIENT_CERT); needs --key")
    tls.add_argument("--key", type=Path, metavar="PEM", help="its private key ($SECRETSVC_CLIENT_KEY)")
    tls.add_argument("--insecure-plaintext", action="store_const", const=True, default=None,
                     help="INSECURE: plaintext to a non-loopback address, only where a service mesh adds TLS "
                          "($SECRETSVC_INSECURE_PLAINTEXT)")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")


class Client:
    """A channel that adds the token, deadline and retries to every call."""

    # Calls made on the channel directly (streams) pass this; the channel adds the token itself.
    _metadata: tuple[tuple[str, str], ...] = ()

    def __init__(self, channel: grpc.Channel) -> None:
        self.channel = channel

    def call(self, method: Callable[..., Any], request: Any) -> Any:
        return method(request)


def settings_from_args(args: argparse.Namespace) -> ClientSettings:
    return ClientSettings.from_environment(
        os.environ, addr=args.addr, ca_file=args.ca_file, cert_file=args.cert, key_file=args.key,
        insecure_plaintext=args.insecure_plaintext, timeout=args.timeout)


@contextmanager
def connect(args: argparse.Namespace) -> Iterator[Client]:
    try:
        settings = settings_from_args(args)
        token: TokenSource | None
        try:
            token = token_source(args.token_file, os.environ)
        except ConfigError:
            if settings.cert_file is None:
                raise
            token = None  # the client certificate identifies the caller (mutual TLS)
        channel = open_channel(settings, token)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    try:
        yield Client(channel)
    finally:
        channel.close()


def _hint(code: grpc.StatusCode, detail: str) -> str:
    lowered = detail.lower()
    if code != grpc.StatusCode.UNAVAILABLE:
        return detail
    if any(word in lowered for word in ("ssl", "handshake", "certificate", "socket closed", "tls")):
        return (f"cannot reach the server ({detail}); if it uses TLS, check --ca-file, and --cert/--key when it "
                "requires client certificates")
    if "failed to connect" in lowered:
        return f"cannot reach the server ({detail}); is `secretsvc serve` running at that address?"
    return detail


def rpc_error_line(exc: grpc.RpcError) -> str:
    """A failed call as one line for stderr: the status, and what to check when the server was not reached."""
    code = exc.code()
    return f"secretsvc: {code.name.lower()}: {_hint(code, exc.details() or '')}"


def run_command(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a client command; print failures as one line on stderr and map them to an exit status."""
    try:
        return func(args)
    except UsageError as exc:
        print(f"secretsvc: {exc}", file=sys.stderr)
        return 2
    except grpc.RpcError as exc:
        print(rpc_error_line(exc), file=sys.stderr)
        return 1
