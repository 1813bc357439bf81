"""The one exception tree of secretsvc.

Every error the service layer raises derives from `SecretsvcError`. The tree knows nothing of gRPC: the
mapping to status codes lives in `secretsvc.rpc.status`, the only place that makes it. Messages are written
for the operator and never carry secret material (values, keys, tokens); they may carry paths, key names,
version numbers and sizes.

    SecretsvcError
    ├── InvalidArgument        the request is malformed (bad path, oversized value, bad version number)
    │   └── LimitExceeded      a named limit was exceeded
    ├── NotFound               no such secret, version or key
    ├── AlreadyExists          a create found something in the way
    ├── FailedPrecondition     the request is well formed but the state forbids it
    │   ├── VersionConflict    check-and-set saw a different current version
    │   └── VersionUnavailable the version exists but was deleted or destroyed
    ├── Unauthenticated        no or unknown credentials
    ├── ResourceExhausted      a bound on server capacity was reached (open streams, request size)
    ├── PermissionDenied       a known caller may not do this
    ├── DecryptionFailed       ciphertext did not authenticate (uniform, no detail: no oracle)
    ├── KeyringError           the key-encryption keyring cannot be loaded or used
    │   └── KekUnavailable     a remote key-encryption key (Transit, HSM) cannot be reached now; retry later
    ├── StorageError           the store failed (I/O, corruption, lock); callers see only its public_reason
    │   ├── DataDirLocked      another server holds the data directory
    │   ├── CorruptRecord      a stored ciphertext failed to authenticate (tampered or damaged at rest)
    │   └── AuditUnavailable   the audit log cannot be written (fail closed: the request is refused)
    └── ConfigError            configuration is invalid (raised at start-up)
"""

from __future__ import annotations


class SecretsvcError(Exception):
    """Root of every error secretsvc raises on purpose."""


class InvalidArgument(SecretsvcError):
    """The request is malformed."""


class LimitExceeded(InvalidArgument):
    """A named limit was exceeded; the message names the limit and its value."""


class NotFound(SecretsvcError):
    """No such secret, version or key."""


class AlreadyExists(SecretsvcError):
    """Something with that name already exists."""


class FailedPrecondition(SecretsvcError):
    """The request is well formed but the current state does not allow it."""


class VersionConflict(FailedPrecondition):
    """Check-and-set found a different current version."""


class VersionUnavailable(FailedPrecondition):
    """The version exists but is soft-deleted or destroyed."""


class Unauthenticated(SecretsvcError):
    """No credentials, or credentials that match no identity."""


class ResourceExhausted(SecretsvcError):
    """A bound on what one caller, or all callers together, may hold was reached; retry later or send less."""


class PermissionDenied(SecretsvcError):
    """The caller is known but may not perform this operation."""

    def __init__(self, message: str, *, capability: str | None = None) -> None:
        super().__init__(message)
        # The capability that was refused, when the operation's own name does not say (a put that would
        # have created or updated): the audit record names it.
        self.capability = capability


class DecryptionFailed(SecretsvcError):
    """A ciphertext failed to authenticate.

    Deliberately carries no detail: which check failed (header, wrapped key, payload, context) is not
    revealed, so the error cannot serve as an oracle.
    """

    def __init__(self) -> None:
        super().__init__("decryption failed")


class KeyringError(SecretsvcError):
    """The keyring file is missing, corrupt, or sealed with a different passphrase."""


class KekUnavailable(KeyringError):
    """A remote key-encryption key did not answer in time, refused the connection, or is sealed.

    Transient by nature: nothing is wrong with the ciphertext, so this is never `DecryptionFailed` (and never
    reported as data loss). `retry_after_seconds` is the hint callers are given.
    """

    def __init__(self, message: str, *, retry_after_seconds: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class StorageError(SecretsvcError):
    """The storage backend failed.

    The message is for the operator's log and may name files. Callers are told only `public_reason`, which
    says what kind of failure it was (busy, full, damaged) and nothing about where the data lives.
    """

    def __init__(self, message: str, *, public_reason: str = "storage failed") -> None:
        super().__init__(message)
        self.public_reason = public_reason


class DataDirLocked(StorageError):
    """Another process holds the data directory."""


class CorruptRecord(StorageError):
    """A stored record failed its integrity check: tampered with, or damaged at rest.

    Messages name the record (namespace, path, version), which the caller already knows, so the whole
    message is public unless a `public_reason` is given.
    """

    def __init__(self, message: str, *, public_reason: str | None = None) -> None:
        super().__init__(message, public_reason=message if public_reason is None else public_reason)


class AuditUnavailable(StorageError):
    """The audit log could not be opened or written (I/O error, full disk, damaged tail, closed).

    A durable write that failed, like the store's, so callers see UNAVAILABLE and only the public reason;
    the message, for the operator, names the file.
    """

    def __init__(self, message: str, *, public_reason: str = "audit log unavailable") -> None:
        super().__init__(message, public_reason=public_reason)


class ConfigError(SecretsvcError):
    """The configuration is invalid."""
