"""Static bearer tokens: minted here, stored only as hashes, checked in constant time.

A token reads `svc_<token id>_<secret>`. The id is public and indexes the stored record; the secret part
carries 256 bits from the OS RNG, so a plain SHA-256 (domain-separated) is a sound verifier: there is no
password to brute-force. Every failure says the same thing, so probing learns nothing.

Every RPC presents a token, so `TokenAuthenticator` keeps a small cache of tokens it has verified (see
`VerifiedTokenCache`): a busy client costs one store lookup per TTL instead of one per call.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from secretsvc.auth.principal import Principal, PrincipalId
from secretsvc.auth.verifiedcache import VerifiedCache
from secretsvc.errors import Unauthenticated
from secretsvc.store.base import SecretStore, TokenRecord

TOKEN_PREFIX = "svc"  # noqa: S105 - a public prefix, not a credential
MAX_TOKEN_BYTES = 256
_HASH_DOMAIN = b"secretsvc.token.v1\x00"
_CACHE_KEY_DOMAIN = b"secretsvc.token-cache.v1\x00"
_INVALID = "missing or invalid bearer token"

# A revoked or reissued token keeps working from the cache for at most this long.
TOKEN_CACHE_TTL_SECONDS = 30.0
# Distinct verified tokens remembered at once; the least recently used is dropped beyond it.
TOKEN_CACHE_MAX_ENTRIES = 4096


@dataclass(frozen=True, slots=True)
class MintedToken:
    record: TokenRecord
    token: str  # shown once, never stored

    def __repr__(self) -> str:
        return f"MintedToken(token_id={self.record.token_id!r}, token=<redacted>)"


def _hash(secret_part: str) -> bytes:
    return hashlib.sha256(_HASH_DOMAIN + secret_part.encode()).digest()


def mint_token(name: str, *, now: float, policies: tuple[str, ...] = (),
               expires_at: float | None = None) -> MintedToken:
    token_id = secrets.token_hex(8)
    secret_part = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    record = TokenRecord(token_id=token_id, name=name, token_hash=_hash(secret_part), created_at=now,
                         policies=policies, expires_at=expires_at)
    return MintedToken(record=record, token=f"{TOKEN_PREFIX}_{token_id}_{secret_part}")


class VerifiedTokenCache(VerifiedCache):
    """Static tokens that verified against the store (see `VerifiedCache`). An entry lives `ttl_seconds`, so a
    token revoked or reissued in the store by another process stops working here within that time;
    `forget()` makes it immediate for revocations made in this process."""

    def __init__(self, *, ttl_seconds: float = TOKEN_CACHE_TTL_SECONDS,
                 max_entries: int = TOKEN_CACHE_MAX_ENTRIES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(key_domain=_CACHE_KEY_DOMAIN, ttl_seconds=ttl_seconds, max_entries=max_entries,
                         clock=clock)


class TokenAuthenticator:
    """Turns a bearer token into a Principal, or raises Unauthenticated.

    Verified tokens are cached for `TOKEN_CACHE_TTL_SECONDS` (pass `cache=` to change that), so revoking or
    reissuing a token in the store takes effect within that time, not at once; `forget_verified()` drops
    every cached verification immediately.
    """

    def __init__(self, store: SecretStore, *, cache: VerifiedTokenCache | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._cache = cache if cache is not None else VerifiedTokenCache()
        self._clock = clock  # wall time, for token expiry

    def authenticate(self, token: str) -> Principal:
        if not token or len(token) > MAX_TOKEN_BYTES or not token.isascii():
            raise Unauthenticated(_INVALID)
        key = self._cache.key_for(token)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        principal, expires_at = self._verify(token)
        self._cache.put(key, principal, valid_for=None if expires_at is None else expires_at - self._clock())
        return principal

    def forget_verified(self) -> None:
        """Drop every cached verification."""
        self._cache.clear()

    def forget_token(self, token_id: str) -> None:
        """Drop the cached verifications of one token, right after it is revoked in this process, so the
        revocation takes effect on the next call rather than after the cache's TTL."""
        self._cache.forget(principal_id_of(token_id))

    def _verify(self, token: str) -> tuple[Principal, float | None]:
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
        if record.expires_at is not None and self._clock() >= record.expires_at:
            raise Unauthenticated(_INVALID)
        principal = Principal(principal_id=principal_id_of(record.token_id), name=record.name, kind="token",
                              policies=tuple(record.policies))
        return principal, record.expires_at


def principal_id_of(token_id: str) -> PrincipalId:
    return PrincipalId(f"token:{token_id}")
