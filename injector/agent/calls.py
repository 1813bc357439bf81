"""The agent's two calls to the service, over `wire`: every secret of a round in one `GetSecrets`, and a
`WatchSecrets` stream that survives the connection.

`SecretsService.follow` reconnects by itself like `secretsvc.client.watch.SecretWatch` (grpcio's version for
library users): every new stream starts with the full current state (`synced`), so a watcher that lost its
stream catches up by comparing that state with what it wrote. Permanent refusals end it; anything else is
retried with exponential backoff and full jitter, so a fleet of pods that lost one server does not return to
the next all at once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from injector.agent import wire
from injector.plan import SecretRef, ServiceSpec
from secretsvc.client.tokens import FileToken, TokenSource
from secretsvc.errors import ConfigError
from secretsvc.netaddr import is_loopback, parse_host_port
from secretsvc.v1 import secrets_pb2

GET_SECRETS = "/secretsvc.v1.Secrets/GetSecrets"
WATCH_SECRETS = "/secretsvc.v1.Secrets/WatchSecrets"
CONNECT_TIMEOUT_SECONDS = 10.0
PERMANENT_WATCH_CODES = frozenset({"PERMISSION_DENIED", "INVALID_ARGUMENT", "UNIMPLEMENTED", "FAILED_PRECONDITION"})
INITIAL_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class SecretState:
    namespace: str
    path: str
    current_version: int  # 0 when it does not exist


@dataclass(frozen=True, slots=True)
class WatchBatch:
    synced: bool  # a (re)connection's first batch: every watched secret
    changes: tuple[SecretState, ...]


def endpoint(spec: ServiceSpec) -> wire.Endpoint:
    """TLS when the plan gives a CA file or the address is not loopback (then with the system's roots), as
    the CLI decides; ConfigError for an address that does not parse or a CA file that cannot be read."""
    host, port = parse_host_port(spec.addr, setting="service address")
    if spec.ca_file is None and is_loopback(host):
        return wire.Endpoint(host, port, None, spec.server_name or host)
    try:
        context = wire.tls_context(spec.ca_file)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"CA file {spec.ca_file}: {getattr(exc, 'strerror', None) or exc}") from None
    return wire.Endpoint(host, port, context, spec.server_name or host)


class SecretsService:
    """One connection to the service, opened on first use and again after it fails."""

    def __init__(self, spec: ServiceSpec, *, uniform: Callable[[], float] | None = None) -> None:
        self._endpoint = endpoint(spec)
        self._token: TokenSource | None = FileToken(Path(spec.token_file)) if spec.token_file else None
        self._connection: wire.Connection | None = None
        # Jitter needs no secrecy, but must differ between pods started from one image at one instant.
        self._uniform = uniform or (lambda: int.from_bytes(os.urandom(4), "big") / 2**32)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def get_secrets(self, refs: Sequence[SecretRef], *, timeout: float) -> secrets_pb2.GetSecretsResponse:
        """Every ref's value or error, in order; wire.RpcError when the call itself fails."""
        request = secrets_pb2.GetSecretsRequest(items=[
            secrets_pb2.SecretVersionRef(ref=secrets_pb2.SecretRef(namespace=r.namespace, path=r.path),
                                         version=r.version or 0) for r in refs])
        connection = self._open(time.monotonic() + min(timeout, CONNECT_TIMEOUT_SECONDS))
        return connection.unary(GET_SECRETS, request, secrets_pb2.GetSecretsResponse, metadata=self._metadata(),
                                timeout=timeout)

    def follow(self, refs: Sequence[tuple[str, str]], *,
               on_retry: Callable[[wire.RpcError, float], None] = lambda error, delay: None) -> Iterator[WatchBatch]:
        """Batches of changes, forever; wire.RpcError only for a permanent refusal (PERMANENT_WATCH_CODES)."""
        request = secrets_pb2.WatchSecretsRequest(
            refs=[secrets_pb2.SecretRef(namespace=ns, path=path) for ns, path in refs])
        failures = 0
        while True:
            served = False
            try:
                connection = self._open(time.monotonic() + CONNECT_TIMEOUT_SECONDS)
                for response in connection.server_stream(WATCH_SECRETS, request, secrets_pb2.WatchSecretsResponse,
                                                         metadata=self._metadata()):
                    served, failures = True, 0
                    yield WatchBatch(response.synced, tuple(
                        SecretState(c.ref.namespace, c.ref.path, c.current_version) for c in response.changes))
                # The server ended a watch that ran its full lifetime: reconnect at once.
                continue
            except wire.RpcError as exc:
                if exc.code in PERMANENT_WATCH_CODES:
                    raise
                error = exc
            failures = 0 if served else failures + 1
            delay = self._uniform() * min(MAX_BACKOFF_SECONDS, INITIAL_BACKOFF_SECONDS * 2 ** min(failures, 16))
            on_retry(error, delay)
            time.sleep(delay)

    def _open(self, deadline: float) -> wire.Connection:
        if self._connection is None or not self._connection.usable:
            if self._connection is not None:
                self._connection.close()
            self._connection = None
            self._connection = wire.Connection(self._endpoint, deadline=deadline)
        return self._connection

    def _metadata(self) -> list[tuple[str, str]]:
        return [] if self._token is None else [("authorization", f"Bearer {self._token.token()}")]
