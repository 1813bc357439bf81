"""`secretsvc scan --match-stored`: the lookup the scan library calls, over the same client settings as every
command that talks to the service (--addr, --token-file, TLS flags and their SECRETSVC_* variables).

The service is asked once before the scan starts, so an unreachable or refusing service ends the command at
once (exit 2) instead of after reading a large image; a call that fails later ends it the same way.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import grpc

from secretsvc.cli.connection import UsageError, connect, rpc_error_line
from secretsvc.client.matching import match_values
from secretsvc.errors import SecretsvcError
from secretsvc.scan.stored import LookupAnswer, StoredLookup, StoredVersion
from secretsvc.v1 import matching_pb2, matching_pb2_grpc


class StoredLookupFailed(SecretsvcError):
    """The secret service could not be asked (unreachable, refused the credentials, refused a batch)."""


def _failure(exc: grpc.RpcError) -> StoredLookupFailed:
    line = rpc_error_line(exc).removeprefix("secretsvc: ")
    return StoredLookupFailed(f"--match-stored: the secret service: {line}")


@contextmanager
def stored_lookup(args: argparse.Namespace) -> Iterator[StoredLookup]:
    """A lookup for `ScanOptions.match_stored`, open for the duration of the block."""
    try:
        with connect(args) as client:
            channel = client.channel
            try:
                # An empty batch: checks that the service answers and accepts the caller, and costs nothing.
                matching_pb2_grpc.MatchingStub(channel).MatchValues(matching_pb2.MatchValuesRequest())
            except grpc.RpcError as exc:
                raise _failure(exc) from None

            def lookup(values: Sequence[bytes]) -> LookupAnswer:
                try:
                    answer = match_values(channel, values)
                except grpc.RpcError as exc:
                    raise _failure(exc) from None
                return LookupAnswer(
                    matches=[
                        (m.candidate, StoredVersion(m.namespace, m.path, m.version, m.current, m.deleted))
                        for m in answer.matches
                    ],
                    complete=answer.complete,
                )

            yield lookup
    except UsageError as exc:
        raise StoredLookupFailed(f"--match-stored: {exc}") from None
