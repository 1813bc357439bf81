"""A bounded cache of unwrapped data keys, so a remote key-encryption key (Transit, an HSM) is not asked again
for every read of the same secret version.

`CachingKek` wraps any `KeyEncryptionKey`. Its cache is keyed by exactly what the unwrap authenticated: key
id, KEK version, the wrapped blob and the associated data (which binds the record's namespace, path and
version). A hit is therefore an unwrap the KEK already accepted for the same bytes; an envelope whose header
or wrapped key was altered misses and goes to the KEK, which refuses it, and one whose payload was altered
still fails when the payload is opened. Nothing is keyed by path alone.

Entries are bounded in number (least recently used goes first), in age and in uses; each key is held in a
`bytearray` that is overwritten with zeros when its entry is evicted or the cache cleared. A hit hands the
caller a `SecretBytes` copy that lives as long as that call: Python cannot zero an immutable copy, so what
the cache bounds is how long the key sits in memory on its behalf.

A version retired at the KEK (Transit's min_decryption_version, a key removed from the token) keeps
unwrapping from the cache until the entry's age runs out; `clear()` (or a short max age) ends that sooner.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from secretsvc import errors
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.kek.base import KeyEncryptionKey, KeyVersionInfo, WrappedKey
from secretsvc.kek.batch import UnwrapResult, unwrap_batch, wrap_batch

DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_MAX_AGE_SECONDS = 300.0
DEFAULT_MAX_USES = 10_000
MAX_MAX_ENTRIES = 1_000_000
MAX_MAX_AGE_SECONDS = 86_400.0

_CacheKey = tuple[str, int, bytes, bytes]


@dataclass(frozen=True, slots=True)
class CacheLimits:
    max_entries: int = DEFAULT_MAX_ENTRIES  # 0 turns the cache off
    max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS
    max_uses: int = DEFAULT_MAX_USES  # hits an entry may serve before it is dropped

    def __post_init__(self) -> None:
        if type(self.max_entries) is not int or not 0 <= self.max_entries <= MAX_MAX_ENTRIES:
            raise errors.ConfigError(f"data key cache entries must be 0..{MAX_MAX_ENTRIES}")
        if not 0 < self.max_age_seconds <= MAX_MAX_AGE_SECONDS:
            raise errors.ConfigError(f"data key cache max age must be in (0, {MAX_MAX_AGE_SECONDS:g}] seconds")
        if type(self.max_uses) is not int or self.max_uses < 1:
            raise errors.ConfigError("data key cache max uses must be at least 1")


class _Entry:
    __slots__ = ("created", "key", "uses")

    def __init__(self, key: bytearray, created: float) -> None:
        self.key = key
        self.created = created
        self.uses = 0

    def wipe(self) -> None:
        self.key[:] = bytes(len(self.key))


class DataKeyCache:
    """Thread-safe LRU of data keys with age and use limits; counts hits, misses and evictions."""

    def __init__(self, limits: CacheLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self._limits = limits
        self._clock = clock
        self._entries: OrderedDict[_CacheKey, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    @property
    def limits(self) -> CacheLimits:
        return self._limits

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def get(self, key: _CacheKey) -> SecretBytes | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and self._clock() - entry.created >= self._limits.max_age_seconds:
                self._evict(key)
                entry = None
            if entry is None:
                self.misses += 1
                return None
            self.hits += 1
            entry.uses += 1
            copy = SecretBytes(bytes(entry.key))
            if entry.uses >= self._limits.max_uses:
                self._evict(key)
            else:
                self._entries.move_to_end(key)
            return copy

    def put(self, key: _CacheKey, data_key: SecretBytes) -> None:
        if self._limits.max_entries == 0:
            return
        with self._lock:
            if key in self._entries:
                self._evict(key)
            self._entries[key] = _Entry(bytearray(data_key.reveal()), self._clock())
            while len(self._entries) > self._limits.max_entries:
                self._evict(next(iter(self._entries)))

    def clear(self) -> None:
        with self._lock:
            for key in list(self._entries):
                self._evict(key)

    def _evict(self, key: _CacheKey) -> None:
        entry = self._entries.pop(key)
        entry.wipe()
        self.evictions += 1


class CachingKek:
    """A `KeyEncryptionKey` that answers repeated unwraps from a `DataKeyCache` and asks `inner` otherwise.

    Wraps are cached too: the data key of a value just written is the one its next read needs.
    """

    __slots__ = ("_cache", "_inner")

    def __init__(self, inner: KeyEncryptionKey, cache: DataKeyCache) -> None:
        self._inner = inner
        self._cache = cache

    @property
    def inner(self) -> KeyEncryptionKey:
        return self._inner

    @property
    def cache(self) -> DataKeyCache:
        return self._cache

    @property
    def key_id(self) -> str:
        return self._inner.key_id

    def primary_version(self) -> int:
        return self._inner.primary_version()

    def versions(self) -> list[KeyVersionInfo]:
        return self._inner.versions()

    def wrap(self, data_key: SecretBytes, aad: bytes) -> WrappedKey:
        wrapped = self._inner.wrap(data_key, aad)
        self._cache.put((wrapped.key_id, wrapped.key_version, wrapped.blob, aad), data_key)
        return wrapped

    def unwrap(self, wrapped: WrappedKey, aad: bytes) -> SecretBytes:
        key = (wrapped.key_id, wrapped.key_version, wrapped.blob, aad)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        data_key = self._inner.unwrap(wrapped, aad)
        self._cache.put(key, data_key)
        return data_key

    def rotate(self) -> int:
        return self._inner.rotate()

    def unwrap_many(self, items: Sequence[tuple[WrappedKey, bytes]]) -> list[UnwrapResult]:
        """Hits from the cache; the misses in one batch to the KEK (docs/kek.md, "Batches")."""
        results: list[UnwrapResult | None] = [None] * len(items)
        missed: list[int] = []
        for i, (wrapped, aad) in enumerate(items):
            results[i] = self._cache.get((wrapped.key_id, wrapped.key_version, wrapped.blob, aad))
            if results[i] is None:
                missed.append(i)
        if missed:
            for i, key in zip(missed, unwrap_batch(self._inner, [items[i] for i in missed]), strict=True):
                if isinstance(key, SecretBytes):
                    wrapped, aad = items[i]
                    self._cache.put((wrapped.key_id, wrapped.key_version, wrapped.blob, aad), key)
                results[i] = key
        return [r if r is not None else errors.DecryptionFailed() for r in results]

    def wrap_many(self, items: Sequence[tuple[SecretBytes, bytes]]) -> list[WrappedKey]:
        out = wrap_batch(self._inner, items)
        for (key, aad), wrapped in zip(items, out, strict=True):
            self._cache.put((wrapped.key_id, wrapped.key_version, wrapped.blob, aad), key)
        return out

    def __repr__(self) -> str:
        return f"CachingKek({self._inner!r}, entries={len(self._cache)})"
