"""The key-encryption-key interface every provider implements.

A provider wraps and unwraps data keys; it never sees the payloads those keys protect. Providers may be local
(the keyring in this package), or remote (Vault/OpenBao Transit, an HSM over PKCS#11), so the interface passes
only the data key and its associated data, and reports which key id and version did the wrapping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from secretsvc.crypto.secretbytes import SecretBytes


@dataclass(frozen=True, slots=True)
class KeyVersionInfo:
    version: int
    created_at: float  # unix seconds


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A data key wrapped by one version of a key-encryption key. Safe to store and to log the ids of."""

    key_id: str
    key_version: int
    blob: bytes

    def __repr__(self) -> str:
        return f"WrappedKey(key_id={self.key_id!r}, key_version={self.key_version}, blob=<{len(self.blob)} bytes>)"


class KeyEncryptionKey(Protocol):
    """Wraps data keys under its newest version; unwraps under whichever version wrapped them."""

    @property
    def key_id(self) -> str:
        """Stable identifier written into every envelope header (at most 255 ASCII bytes)."""
        ...

    def primary_version(self) -> int:
        """The version `wrap` uses now."""
        ...

    def versions(self) -> list[KeyVersionInfo]:
        """Every version this provider can still unwrap with, oldest first."""
        ...

    def wrap(self, data_key: SecretBytes, aad: bytes) -> WrappedKey:
        """Wrap `data_key` under the primary version, binding `aad`."""
        ...

    def unwrap(self, wrapped: WrappedKey, aad: bytes) -> SecretBytes:
        """Recover a data key. Any failure (wrong id, unknown version, tampering, other aad) raises
        `secretsvc.errors.DecryptionFailed`."""
        ...

    def rotate(self) -> int:
        """Add a new version, make it primary, and return its number. Older versions still unwrap."""
        ...
