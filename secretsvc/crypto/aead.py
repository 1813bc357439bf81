"""The raw primitives secretsvc builds on: AES-256-GCM, HMAC-SHA256 and scrypt.

Everything else in the project reaches cryptography through this module (and the envelope format on top of
it), so the choice of algorithms, nonce sizes and limits lives in one place. Randomness is a parameter
(`RandomBytes`) so known-answer tests can fix nonces and keys without global state.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from secretsvc import errors
from secretsvc.crypto.secretbytes import SecretBytes

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
OVERHEAD_BYTES = NONCE_BYTES + TAG_BYTES

# Bounds for scrypt parameters read from a keyring file: large enough for any sane setting, small enough
# that a hostile file cannot make start-up allocate gigabytes or spin for hours.
MIN_SCRYPT_N = 2
MAX_SCRYPT_N = 2**20
MAX_SCRYPT_R = 32
MAX_SCRYPT_P = 16
MAX_SCRYPT_MEMORY_BYTES = 1 << 30
MIN_SALT_BYTES = 16
MAX_SALT_BYTES = 64


class RandomBytes(Protocol):
    """A source of random bytes; `os.urandom` in production, a fixed stream in known-answer tests."""

    def __call__(self, n: int, /) -> bytes: ...


def random_key(random: RandomBytes = os.urandom) -> SecretBytes:
    """A fresh 256-bit AES key."""
    key = random(KEY_BYTES)
    if len(key) != KEY_BYTES:
        raise ValueError("random source returned the wrong number of bytes")
    return SecretBytes(key)


def _cipher(key: SecretBytes) -> AESGCM:
    raw = key.reveal()
    if len(raw) != KEY_BYTES:
        raise ValueError(f"AES-256-GCM needs a {KEY_BYTES}-byte key")
    return AESGCM(raw)


def seal(
    key: SecretBytes, plaintext: bytes, aad: bytes, *, random: RandomBytes = os.urandom, prefix: bytes = b""
) -> bytes:
    """Encrypt and authenticate: returns prefix || nonce || ciphertext || tag.

    `prefix` is not authenticated here; it lets a caller put its own header in front without a second copy
    of a large ciphertext."""
    nonce = random(NONCE_BYTES)
    if len(nonce) != NONCE_BYTES:
        raise ValueError("random source returned the wrong number of bytes")
    return b"".join((prefix, nonce, _cipher(key).encrypt(nonce, plaintext, aad)))


def open(key: SecretBytes, sealed: bytes | memoryview, aad: bytes) -> bytes:
    """Authenticate and decrypt `nonce || ciphertext || tag`. Any failure, including input too short to hold
    a nonce and tag, raises `DecryptionFailed`."""
    if len(sealed) < OVERHEAD_BYTES:
        raise errors.DecryptionFailed()
    view = memoryview(sealed)
    try:
        return _cipher(key).decrypt(view[:NONCE_BYTES], view[NONCE_BYTES:], aad)
    except InvalidTag:
        raise errors.DecryptionFailed() from None


def hmac_sha256(key: SecretBytes | bytes, data: bytes) -> bytes:
    """HMAC-SHA256 of `data` (32 bytes)."""
    raw = key.reveal() if isinstance(key, SecretBytes) else key
    return hmac.digest(raw, data, "sha256")


@dataclass(frozen=True, slots=True)
class ScryptParams:
    """scrypt cost parameters. Stored next to whatever they protect so they can be raised later."""

    n: int = 2**15
    r: int = 8
    p: int = 1

    def __post_init__(self) -> None:
        for name in ("n", "r", "p"):
            value = getattr(self, name)
            if type(value) is not int:
                raise errors.InvalidArgument(f"scrypt parameter {name} must be an integer")
        if not MIN_SCRYPT_N <= self.n <= MAX_SCRYPT_N or self.n & (self.n - 1):
            raise errors.InvalidArgument(
                f"scrypt n must be a power of two in [{MIN_SCRYPT_N}, {MAX_SCRYPT_N}] (MAX_SCRYPT_N)"
            )
        if not 1 <= self.r <= MAX_SCRYPT_R:
            raise errors.InvalidArgument(f"scrypt r must be in [1, {MAX_SCRYPT_R}] (MAX_SCRYPT_R)")
        if not 1 <= self.p <= MAX_SCRYPT_P:
            raise errors.InvalidArgument(f"scrypt p must be in [1, {MAX_SCRYPT_P}] (MAX_SCRYPT_P)")
        if self.memory_bytes() > MAX_SCRYPT_MEMORY_BYTES:
            raise errors.InvalidArgument(
                f"scrypt n*r needs more than {MAX_SCRYPT_MEMORY_BYTES} bytes (MAX_SCRYPT_MEMORY_BYTES)"
            )

    def memory_bytes(self) -> int:
        return 128 * self.n * self.r


def scrypt(
    passphrase: SecretBytes, salt: bytes, params: ScryptParams, length: int = KEY_BYTES
) -> SecretBytes:
    """Derive a key from a passphrase."""
    if not MIN_SALT_BYTES <= len(salt) <= MAX_SALT_BYTES:
        raise errors.InvalidArgument(f"scrypt salt must be {MIN_SALT_BYTES}..{MAX_SALT_BYTES} bytes")
    kdf = Scrypt(salt=salt, length=length, n=params.n, r=params.r, p=params.p)
    return SecretBytes(kdf.derive(passphrase.reveal()))
