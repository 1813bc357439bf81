"""`Keyset`: a versioned set of AES-256 keys held in memory, usable as a key-encryption key.

The newest version wraps; any version still present unwraps. The local keyring persists one, and each named
transit key of the service is one. Persistence is the owner's job: `material()` hands out a version's bytes.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import NoReturn

from secretsvc import errors
from secretsvc.crypto import aead
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.kek.base import KeyVersionInfo, WrappedKey

MAX_KEY_ID_BYTES = 255
MAX_KEY_VERSION = 2**32 - 1

KeyVersion = tuple[int, float, SecretBytes]
"""(version, created_at in unix seconds, 32-byte key)."""


def _check_key_id(key_id: str) -> None:
    if not isinstance(key_id, str) or not 1 <= len(key_id) <= MAX_KEY_ID_BYTES:
        raise errors.InvalidArgument(f"key id must be 1..{MAX_KEY_ID_BYTES} printable ASCII characters")
    if not key_id.isascii() or not key_id.isprintable() or " " in key_id:
        raise errors.InvalidArgument("key id must be printable ASCII without spaces")


def _check_version(version: int, created_at: float, key: SecretBytes) -> None:
    if type(version) is not int or not 1 <= version <= MAX_KEY_VERSION:
        raise errors.InvalidArgument(f"key version must be an integer in [1, {MAX_KEY_VERSION}]")
    if type(created_at) not in (int, float) or not math.isfinite(created_at) or created_at < 0:
        raise errors.InvalidArgument(
            f"key version {version}: created_at must be a finite non-negative number"
        )
    if not isinstance(key, SecretBytes) or len(key) != aead.KEY_BYTES:
        raise errors.InvalidArgument(
            f"key version {version}: key must be {aead.KEY_BYTES} bytes of SecretBytes"
        )


class Keyset:
    """Implements `secretsvc.kek.base.KeyEncryptionKey` over raw AES-256-GCM keys."""

    __slots__ = ("_clock", "_key_id", "_keys", "_lock", "_primary", "_random")

    def __init__(
        self,
        key_id: str,
        versions: Iterable[KeyVersion],
        *,
        random: aead.RandomBytes = os.urandom,
        clock: Callable[[], float] = time.time,
    ) -> None:
        _check_key_id(key_id)
        keys: dict[int, tuple[float, SecretBytes]] = {}
        last = 0
        for version, created_at, key in versions:
            _check_version(version, created_at, key)
            if version <= last:
                raise errors.InvalidArgument("key versions must be unique and increasing")
            keys[version] = (float(created_at), key)
            last = version
        if not keys:
            raise errors.InvalidArgument("a keyset needs at least one key version")
        self._key_id = key_id
        self._keys = keys
        self._primary = last
        self._random = random
        self._clock = clock
        self._lock = threading.Lock()

    @classmethod
    def generate(
        cls, key_id: str, *, random: aead.RandomBytes = os.urandom, clock: Callable[[], float] = time.time
    ) -> Keyset:
        """A new keyset holding one random version (1)."""
        return cls(key_id, [(1, clock(), aead.random_key(random))], random=random, clock=clock)

    def __repr__(self) -> str:
        return f"Keyset(key_id={self._key_id!r}, versions={sorted(self._keys)}, primary={self._primary})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("Keyset cannot be pickled")

    @property
    def key_id(self) -> str:
        return self._key_id

    def primary_version(self) -> int:
        return self._primary

    def versions(self) -> list[KeyVersionInfo]:
        return [KeyVersionInfo(v, created) for v, (created, _) in sorted(self._keys.items())]

    def material(self, version: int) -> SecretBytes:
        """The raw key of `version`, for persisting it."""
        try:
            return self._keys[version][1]
        except KeyError:
            raise errors.NotFound(f"key {self._key_id!r} has no version {version}") from None

    def wrap(self, data_key: SecretBytes, aad: bytes) -> WrappedKey:
        version = self._primary
        key = self._keys[version][1]
        return WrappedKey(self._key_id, version, aead.seal(key, data_key.reveal(), aad, random=self._random))

    def unwrap(self, wrapped: WrappedKey, aad: bytes) -> SecretBytes:
        entry = self._keys.get(wrapped.key_version)
        if wrapped.key_id != self._key_id or entry is None:
            raise errors.DecryptionFailed()
        return SecretBytes(aead.open(entry[1], wrapped.blob, aad))

    def add_version(self, version: int, created_at: float, key: SecretBytes) -> None:
        """Add `version` (newer than every present one) and make it primary.

        Owners that persist keys write the new version first and add it here only once it is durable, so
        nothing is ever wrapped under a key that could be lost."""
        _check_version(version, created_at, key)
        with self._lock:
            if version <= self._primary:
                raise errors.InvalidArgument(f"key version {version} is not newer than {self._primary}")
            # Insert before publishing the new primary so a concurrent wrap never sees a missing key.
            self._keys[version] = (float(created_at), key)
            self._primary = version

    def next_version(self) -> int:
        """The number `rotate` would give the next version."""
        if self._primary >= MAX_KEY_VERSION:
            raise errors.FailedPrecondition(f"key {self._key_id!r} has reached version {MAX_KEY_VERSION}")
        return self._primary + 1

    def rotate(self) -> int:
        with self._lock:
            version = self.next_version()
            self._keys[version] = (self._clock(), aead.random_key(self._random))
            self._primary = version
        return version
