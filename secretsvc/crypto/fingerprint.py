"""Keyed fingerprints of stored secret values: what `MatchValues` compares instead of the values themselves.

A fingerprint is HMAC-SHA256 under a service-wide fingerprint key, over a label and the value, so that it
cannot be recomputed (and a value guessed offline) without that key, and cannot collide with another HMAC
use of a key. The key itself is kept sealed under the root key-encryption key, like a data key
(`EnvelopeContext.for_fingerprint_key`); it is made once, on first use, and carries a version so it can be
rotated later (stored fingerprints then name the key version they were made under).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from secretsvc import errors
from secretsvc.crypto import aead
from secretsvc.crypto.envelope import EnvelopeContext, open_envelope, seal
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.kek.base import KeyEncryptionKey

FINGERPRINT_LABEL = b"secretsvc.value-fingerprint.v1\x00"
FINGERPRINT_BYTES = 32


@dataclass(frozen=True, slots=True)
class FingerprintKey:
    """One version of the fingerprint key, unsealed. Its repr shows the version only."""

    version: int
    key: SecretBytes

    def fingerprint(self, value: bytes) -> bytes:
        return aead.hmac_sha256(self.key, FINGERPRINT_LABEL + bytes(value))


def new_sealed_key(kek: KeyEncryptionKey, version: int, random: aead.RandomBytes = os.urandom) -> bytes:
    """A fresh fingerprint key of `version`, sealed under the KEK: what the store keeps."""
    return seal(kek, aead.random_key(random), EnvelopeContext.for_fingerprint_key(version))


def open_key(kek: KeyEncryptionKey, version: int, sealed: bytes) -> FingerprintKey:
    """The stored key of `version`; DecryptionFailed when it does not authenticate."""
    key = open_envelope(kek, sealed, EnvelopeContext.for_fingerprint_key(version))
    if len(key) != aead.KEY_BYTES:
        raise errors.CorruptRecord(f"stored fingerprint key version {version} has the wrong length")
    return FingerprintKey(version, key)
