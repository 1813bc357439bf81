"""The one place that maps secretsvc errors to gRPC status codes."""

from __future__ import annotations

import grpc

from secretsvc import errors

# Ordered most specific first: the first class an error is an instance of decides its code.
_CODES: tuple[tuple[type[errors.SecretsvcError], grpc.StatusCode], ...] = (
    (errors.LimitExceeded, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.VersionConflict, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.VersionUnavailable, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (errors.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    # A caller-supplied ciphertext that does not open is the caller's problem, not the server's.
    (errors.DecryptionFailed, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.CorruptRecord, grpc.StatusCode.DATA_LOSS),
    # Fail closed: a call that cannot be audited is refused as a transient server failure.
    (errors.AuditUnavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.StorageError, grpc.StatusCode.UNAVAILABLE),
    # Before KeyringError: a remote KEK that cannot be reached is transient, the data is intact.
    (errors.KekUnavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.KeyringError, grpc.StatusCode.INTERNAL),
    (errors.ConfigError, grpc.StatusCode.INTERNAL),
)


def status_for(error: errors.SecretsvcError) -> grpc.StatusCode:
    for cls, code in _CODES:
        if isinstance(error, cls):
            return code
    return grpc.StatusCode.INTERNAL


def public_message(error: errors.SecretsvcError, request_id: str) -> str:
    """What the caller is told. Storage, keyring and configuration errors name files and directories that are
    the operator's business: the log has the full message, the caller a short reason and the request id to
    find it by."""
    if isinstance(error, errors.StorageError):
        return f"{error.public_reason} (request id {request_id})"
    if isinstance(error, errors.KekUnavailable):
        retry = max(1, round(error.retry_after_seconds))
        return f"key-encryption key unavailable, retry in {retry}s (request id {request_id})"
    if isinstance(error, errors.KeyringError | errors.ConfigError):
        return f"internal error (request id {request_id})"
    return str(error)


def code_number(code: grpc.StatusCode) -> int:
    """The google.rpc.Code number of a status, for per-item errors in batch responses."""
    number: int = code.value[0]
    return number


def retry_trailers(error: errors.SecretsvcError) -> tuple[tuple[str, str], ...]:
    """Trailing metadata telling the client when to retry: gRPC's `grpc-retry-pushback-ms`, which clients with
    a retry policy honour, for errors that carry a hint (an unreachable key-encryption key)."""
    if isinstance(error, errors.KekUnavailable):
        return (("grpc-retry-pushback-ms", str(max(1, round(error.retry_after_seconds * 1000)))),)
    return ()
