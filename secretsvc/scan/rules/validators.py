"""Validators a rule file names with `validator = "NAME"`: checks on the secret's bytes that prove it has a
credential's structure, not just its alphabet. Each is total (never raises) and bounded (see `checks`)."""

from __future__ import annotations

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
