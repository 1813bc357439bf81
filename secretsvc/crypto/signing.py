"""Ed25519 signatures: key generation, PEM serialization, signing and verification.

The audit log signs its checkpoints with these (docs/audit.md). Ed25519 because a signature is deterministic
(no nonce to get wrong), small (64 bytes) and fast to make and check, and because a verifier needs nothing
but the 32-byte public key. The private key lives in a `SigningKey`, whose repr is redacted and which refuses
pickling; it leaves the object only as PKCS#8 PEM inside `SecretBytes`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import NoReturn

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.errors import InvalidArgument

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
# A PEM Ed25519 key is about 120 bytes; anything near this bound is not one.
MAX_KEY_PEM_BYTES = 4096
KEY_ID_PREFIX = "ed25519:"
# 128 bits of the public key's SHA-256: enough to tell keys apart, short enough to read aloud.
KEY_ID_HEX_CHARS = 32


@dataclass(frozen=True, slots=True)
class VerifyKey:
    """An Ed25519 public key (the raw 32 bytes)."""

    raw: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.raw, bytes) or len(self.raw) != PUBLIC_KEY_BYTES:
            raise InvalidArgument(f"an Ed25519 public key is {PUBLIC_KEY_BYTES} bytes")

    @property
    def key_id(self) -> str:
        """`ed25519:` and the first 128 bits of SHA-256 of the raw key, in hex."""
        return KEY_ID_PREFIX + hashlib.sha256(self.raw).hexdigest()[:KEY_ID_HEX_CHARS]

    def verify(self, signature: bytes, message: bytes) -> bool:
        """Whether `signature` is this key's signature of `message`. Never raises on a bad signature."""
        if len(signature) != SIGNATURE_BYTES:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def to_pem(self) -> bytes:
        """SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`), as `openssl pkey -pubout` writes it."""
        return Ed25519PublicKey.from_public_bytes(self.raw).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @classmethod
    def from_pem(cls, pem: bytes) -> VerifyKey:
        """Load a PEM public key; anything but an Ed25519 public key raises `InvalidArgument`."""
        if len(pem) > MAX_KEY_PEM_BYTES:
            raise InvalidArgument(f"public key PEM is larger than MAX_KEY_PEM_BYTES={MAX_KEY_PEM_BYTES}")
        try:
            key = serialization.load_pem_public_key(pem)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise InvalidArgument("not a PEM public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise InvalidArgument("the public key is not an Ed25519 key")
        return cls(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


class SigningKey:
    """An Ed25519 private key. Its repr shows only the key id; it cannot be pickled."""

    __slots__ = ("_key", "_public")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        # Use generate() or from_pem(); this only wraps the object.
        self._key = key
        self._public = VerifyKey(
            key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        )

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, pem: SecretBytes) -> SigningKey:
        """Load an unencrypted PKCS#8 PEM private key; anything but Ed25519 raises `InvalidArgument`."""
        if len(pem) > MAX_KEY_PEM_BYTES:
            raise InvalidArgument(f"private key PEM is larger than MAX_KEY_PEM_BYTES={MAX_KEY_PEM_BYTES}")
        try:
            key = serialization.load_pem_private_key(pem.reveal(), password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            # The library's message can quote the input; ours never does.
            raise InvalidArgument("not an unencrypted PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise InvalidArgument("the private key is not an Ed25519 key")
        return cls(key)

    def to_pem(self) -> SecretBytes:
        """Unencrypted PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`). Whoever writes it to disk makes it 0600."""
        return SecretBytes(
            self._key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )

    @property
    def public_key(self) -> VerifyKey:
        return self._public

    @property
    def key_id(self) -> str:
        return self._public.key_id

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def __repr__(self) -> str:
        return f"SigningKey({self.key_id}, <private key redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("SigningKey cannot be pickled")
