"""Validators a rule file names with `validator = "NAME"`: checks on the secret's bytes that prove it has a
credential's structure, not just its alphabet. Each is total (never raises) and bounded (see `checks`)."""

from __future__ import annotations

import hashlib
import json

from secretsvc.scan.rules import checks
from secretsvc.scan.rules.registry import validator

MAX_LUHN_DIGITS = 32


@validator("crc32-base62")
def crc32_base62(secret: bytes) -> bool:
    """GitHub and npm tokens: after the prefix's last `_`, 30 random base62 characters and 6 of CRC32."""
    return checks.crc32_tail_valid(secret.rpartition(b"_")[2], 0)


@validator("pypi-macaroon")
def pypi_macaroon(secret: bytes) -> bool:
    return checks.pypi_macaroon_valid(secret)


@validator("jwt")
def jwt(secret: bytes) -> bool:
    return checks.jwt_valid(secret)


@validator("azure-account-key")
def azure_account_key(secret: bytes) -> bool:
    """A storage account key: base64 of exactly 64 bytes."""
    return checks.azure_account_key_valid(secret)


@validator("kube-client-key")
def kube_client_key(secret: bytes) -> bool:
    return checks.kube_client_key_valid(secret)


@validator("base64-json")
def base64_json(secret: bytes) -> bool:
    """Base64 (standard or URL-safe, padding optional) of a JSON object: service-account keys, configs."""
    raw = checks.b64decode_loose(secret) or checks.b64decode_loose(secret, urlsafe=True)
    if raw is None:
        return False
    try:
        return isinstance(json.loads(raw), dict)
    except (ValueError, UnicodeDecodeError):
        return False


@validator("luhn")
def luhn(secret: bytes) -> bool:
    """The Luhn mod-10 check over the secret's digits (card-like numbers, some vendor ids)."""
    digits = [b - 0x30 for b in secret if 0x30 <= b <= 0x39]
    if not 2 <= len(digits) <= MAX_LUHN_DIGITS:
        return False
    total = 0
    for i, digit in enumerate(reversed(digits)):
        doubled = digit * 2 if i % 2 else digit
        total += doubled - 9 if doubled > 9 else doubled
    return total % 10 == 0


BASE58 = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_VALUE = {c: i for i, c in enumerate(BASE58)}
MAX_BASE58_CHARS = 128


def base58_decode(text: bytes) -> bytes | None:
    """Bitcoin's base58 alphabet, leading '1's as zero bytes; None if a character is outside it."""
    if len(text) > MAX_BASE58_CHARS:
        return None
    value = 0
    for c in text:
        digit = _BASE58_VALUE.get(c)
        if digit is None:
            return None
        value = value * 58 + digit
    zeros = len(text) - len(text.lstrip(b"1"))
    return b"\x00" * zeros + value.to_bytes((value.bit_length() + 7) // 8, "big")


@validator("base58check")
def base58check(secret: bytes) -> bool:
    """Base58 with a 4-byte double-SHA-256 checksum (Bitcoin WIF keys and addresses)."""
    raw = base58_decode(secret)
    if raw is None or len(raw) < 5:
        return False
    body, check = raw[:-4], raw[-4:]
    return hashlib.sha256(hashlib.sha256(body).digest()).digest()[:4] == check


@validator("bitcoin-wif")
def bitcoin_wif(secret: bytes) -> bool:
    """A wallet-import-format private key: version 0x80 (mainnet) or 0xef (testnet), 32 key bytes, an optional
    0x01 compression flag, and a valid base58check checksum."""
    raw = base58_decode(secret)
    if raw is None or not base58check(secret):
        return False
    body = raw[:-4]
    return body[:1] in (b"\x80", b"\xef") and (len(body) == 33 or (len(body) == 34 and body[-1] == 1))


@validator("base64-jwt")
def base64_jwt(secret: bytes) -> bool:
    """A JWT that was base64-encoded once more (Kubernetes Secret data, some CI variables)."""
    raw = checks.b64decode_loose(secret)
    return raw is not None and checks.jwt_valid(raw.strip())
