"""Static bearer tokens: minted here, stored only as hashes, checked in constant time.

A token reads `svc_<token id>_<secret>`. The id is public and indexes the stored record; the secret part
carries 256 bits from the OS RNG, so a plain SHA-256 (domain-separated) is a sound verifier: there is no
password to brute-force. Every failure says the same thing, so probing learns nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from secretsvc.auth.principal import Principal, PrincipalId
from secretsvc.errors import Unauthenticated
from secretsvc.store.base import SecretStore, TokenRecord

TOKEN_PREFIX = "svc"  # noqa: S105 - a public prefix, not a credential
MAX_TOKEN_BYTES = 256
_HASH_DOMAIN = b"secretsvc.token.v1\x00"
_INVALID = "missing or invalid bearer token"


@dataclass(frozen=True, slots=True)
class MintedToken:
    record: TokenRecord
    token: str  # shown once, never stored

    def __repr__(self) -> str:
        return f"MintedToken(token_id={self.record.token_id!r}, token=<redacted>)"


def _hash(secret_part: str) -> bytes:
    return hashlib.sha256(_HASH_DOMAIN + secret_part.encode()).digest()


def mint_token(name: str, *, now: float, policies: tuple[str, ...] = ()) -> MintedToken:
    token_id = secrets.token_hex(8)
    secret_part = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    record = TokenRecord(token_id=token_id, name=name, token_hash=_hash(secret_part), created_at=now,
                         policies=policies)
    return MintedToken(record=record, token=f"{TOKEN_PREFIX}_{token_id}_{secret_part}")


class TokenAuthenticator:
    """Turns a bearer token into a Principal, or raises Unauthenticated."""

    def __init__(self, store: SecretStore) -> None:
        self._store = store

    def authenticate(self, token: str) -> Principal:
        if not token or len(token) > MAX_TOKEN_BYTES or not token.isascii():
            raise Unauthenticated(_INVALID)
        prefix, _, rest = token.partition("_")
        token_id, _, secret_part = rest.partition("_")
        if prefix != TOKEN_PREFIX or not token_id or not secret_part:
            raise Unauthenticated(_INVALID)
        record = self._store.find_token(token_id)
        # Hash even when the id is unknown, so timing does not tell known ids from unknown ones.
        presented = _hash(secret_part)
        expected = record.token_hash if record is not None else b"\x00" * len(presented)
        if not hmac.compare_digest(presented, expected) or record is None:
            raise Unauthenticated(_INVALID)
        return Principal(principal_id=PrincipalId(f"token:{record.token_id}"), name=record.name, kind="token",
                         policies=tuple(record.policies))
