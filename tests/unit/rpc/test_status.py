"""The one mapping from secretsvc errors to gRPC status codes."""

from __future__ import annotations

import inspect

import grpc
import pytest

from secretsvc import errors
from secretsvc.rpc.status import code_number, public_message, retry_trailers, status_for

INTENDED: dict[type[errors.SecretsvcError], grpc.StatusCode] = {
    errors.SecretsvcError: grpc.StatusCode.INTERNAL,
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.LimitExceeded: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.VersionConflict: grpc.StatusCode.FAILED_PRECONDITION,
    errors.VersionUnavailable: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    # A caller's ciphertext that does not open is the caller's problem.
    errors.DecryptionFailed: grpc.StatusCode.INVALID_ARGUMENT,
    errors.KeyringError: grpc.StatusCode.INTERNAL,
    # A remote KEK out of reach is transient; the data is intact.
    errors.KekUnavailable: grpc.StatusCode.UNAVAILABLE,
    errors.StorageError: grpc.StatusCode.UNAVAILABLE,
    errors.DataDirLocked: grpc.StatusCode.UNAVAILABLE,
    # Our own stored ciphertext that does not open is data loss, not the caller's fault.
    errors.CorruptRecord: grpc.StatusCode.DATA_LOSS,
    # A call that cannot be audited is refused (fail closed); retrying later may succeed.
    errors.AuditUnavailable: grpc.StatusCode.UNAVAILABLE,
    errors.ConfigError: grpc.StatusCode.INTERNAL,
}


def _instance(cls: type[errors.SecretsvcError]) -> errors.SecretsvcError:
    if cls is errors.DecryptionFailed:
        return errors.DecryptionFailed()
    return cls("message")


@pytest.mark.parametrize("cls", list(INTENDED), ids=lambda c: c.__name__)
def test_each_error_maps_to_its_intended_code(cls: type[errors.SecretsvcError]) -> None:
    assert status_for(_instance(cls)) is INTENDED[cls]


def test_the_table_covers_every_error_class() -> None:
    declared = {
        obj for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, errors.SecretsvcError)
    }
    # A new error class must get a deliberate code here, not fall through to INTERNAL unnoticed.
    assert declared == set(INTENDED)


def test_an_unknown_subclass_maps_to_internal() -> None:
    class Surprise(errors.SecretsvcError):
        pass

    assert status_for(Surprise("x")) is grpc.StatusCode.INTERNAL


def test_a_subclass_inherits_its_parents_code() -> None:
    class NarrowNotFound(errors.NotFound):
        pass

    class NarrowCorrupt(errors.CorruptRecord):
        pass

    assert status_for(NarrowNotFound("x")) is grpc.StatusCode.NOT_FOUND
    assert status_for(NarrowCorrupt("x")) is grpc.StatusCode.DATA_LOSS


def test_no_error_maps_to_ok() -> None:
    assert all(status_for(_instance(cls)) is not grpc.StatusCode.OK for cls in INTENDED)


@pytest.mark.parametrize(
    ("code", "number"),
    [
        (grpc.StatusCode.OK, 0),
        (grpc.StatusCode.INVALID_ARGUMENT, 3),
        (grpc.StatusCode.NOT_FOUND, 5),
        (grpc.StatusCode.ALREADY_EXISTS, 6),
        (grpc.StatusCode.PERMISSION_DENIED, 7),
        (grpc.StatusCode.FAILED_PRECONDITION, 9),
        (grpc.StatusCode.INTERNAL, 13),
        (grpc.StatusCode.UNAVAILABLE, 14),
        (grpc.StatusCode.DATA_LOSS, 15),
        (grpc.StatusCode.UNAUTHENTICATED, 16),
    ],
)
def test_code_number_is_the_google_rpc_code(code: grpc.StatusCode, number: int) -> None:
    assert code_number(code) == number


def test_storage_errors_tell_callers_the_reason_not_the_file() -> None:
    error = errors.StorageError("insert_version: disk full writing /var/lib/secretsvc/secretsvc.db (SQLITE_FULL)",
                                public_reason="storage is full")
    assert public_message(error, "rid-1") == "storage is full (request id rid-1)"
    assert public_message(errors.StorageError("database /x/y.db failed"), "r") == "storage failed (request id r)"


def test_audit_failures_tell_callers_the_reason_not_the_file() -> None:
    error = errors.AuditUnavailable("cannot write audit log /var/lib/secretsvc/audit/audit.log: No space left")
    assert public_message(error, "r") == "audit log unavailable (request id r)"


def test_corrupt_records_name_only_the_record() -> None:
    error = errors.CorruptRecord("stored ciphertext of ns/p version 1 failed to authenticate")
    assert public_message(error, "r") == "stored ciphertext of ns/p version 1 failed to authenticate (request id r)"


@pytest.mark.parametrize("cls", [errors.KeyringError, errors.ConfigError])
def test_keyring_and_config_errors_are_internal_without_detail(cls: type[errors.SecretsvcError]) -> None:
    assert public_message(cls("keyring /var/lib/secretsvc/keyring.json is unreadable"), "r") == (
        "internal error (request id r)"
    )


def test_caller_errors_are_told_as_they_are() -> None:
    assert public_message(errors.NotFound("secret ns/p does not exist"), "r") == "secret ns/p does not exist"


def test_kek_unavailable_tells_when_to_retry_and_nothing_of_the_address() -> None:
    error = errors.KekUnavailable("Vault Transit at http://10.0.0.7:8200 got no answer", retry_after_seconds=5.0)
    assert public_message(error, "r") == "key-encryption key unavailable, retry in 5s (request id r)"
    assert retry_trailers(error) == (("grpc-retry-pushback-ms", "5000"),)
    assert retry_trailers(errors.StorageError("x")) == ()
