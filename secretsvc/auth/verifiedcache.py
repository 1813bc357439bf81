"""A small cache of credentials that verified, so a busy caller costs one full check per TTL, not per call.

Entries are keyed by a domain-separated SHA-256 of the whole presented credential (never the credential
itself), bounded in count (least recently used dropped) and in age. Only credentials that verified are added,
and only the exact string that verified hashes to its key, so unauthenticated callers cannot fill the cache or
evict real entries with junk; failures are never cached. An entry lives `ttl_seconds` from its verification
(not from its last use), or less when the credential itself expires sooner. Thread-safe.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from secretsvc.auth.principal import Principal


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal
    expires_at: float


class VerifiedCache:
    def __init__(self, *, key_domain: bytes, ttl_seconds: float, max_entries: int,
                 clock: Callable[[], float]) -> None:
        if ttl_seconds < 0:
            raise ValueError("ttl_seconds must be 0 or more (0 disables the cache)")
        if max_entries < 0:
            raise ValueError("max_entries must be 0 or more (0 disables the cache)")
        self._key_domain = key_domain
        self._ttl = ttl_seconds
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def key_for(self, credential: str) -> bytes:
        return hashlib.sha256(self._key_domain + credential.encode()).digest()

    def get(self, key: bytes) -> Principal | None:
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if now >= entry.expires_at:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry.principal

    def put(self, key: bytes, principal: Principal, *, valid_for: float | None = None) -> None:
        """Remember a verification for the cache's TTL, or for `valid_for` seconds if that is shorter (a
        credential that expires sooner)."""
        if self._ttl == 0 or self._max == 0:
            return
        ttl = self._ttl if valid_for is None else min(self._ttl, valid_for)
        if ttl <= 0:
            return
        expires_at = self._clock() + ttl
        with self._lock:
            self._entries[key] = _Entry(principal, expires_at)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def forget(self, principal_id: str) -> int:
        """Drop every verification that gave this principal (a revoked credential); returns how many."""
        with self._lock:
            stale = [k for k, e in self._entries.items() if e.principal.principal_id == principal_id]
            for key in stale:
                del self._entries[key]
        return len(stale)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(entries={len(self)}, max_entries={self._max}, ttl_seconds={self._ttl})"
