"""The data-key cache: its bounds (entries, age, uses), keys zeroed on eviction, keyed by the wrapped blob and
associated data so tampered envelopes are never served from it, and its counters as metrics."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from secretsvc import errors
from secretsvc.crypto import envelope
from secretsvc.crypto.keyset import Keyset
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.kek.base import KeyVersionInfo, WrappedKey
from secretsvc.kek.cache import CacheLimits, CachingKek, DataKeyCache
from secretsvc.kek.cachemetrics import DataKeyCacheCollector


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingKek:
    """A real keyset that counts the unwraps it is asked for, standing in for a remote KEK's round trips."""

    def __init__(self) -> None:
        self.keyset = Keyset.generate("test:counting")
        self.unwraps = 0

    @property
    def key_id(self) -> str:
        return self.keyset.key_id

    def primary_version(self) -> int:
        return self.keyset.primary_version()

    def versions(self) -> list[KeyVersionInfo]:
        return self.keyset.versions()

    def wrap(self, data_key: SecretBytes, aad: bytes) -> WrappedKey:
        return self.keyset.wrap(data_key, aad)

    def unwrap(self, wrapped: WrappedKey, aad: bytes) -> SecretBytes:
        self.unwraps += 1
        return self.keyset.unwrap(wrapped, aad)

    def rotate(self) -> int:
        return self.keyset.rotate()


def _key(i: int) -> tuple[str, int, bytes, bytes]:
    return ("k", 1, bytes([i]) * 60, b"aad")


def _secret(i: int) -> SecretBytes:
    return SecretBytes(bytes([i + 1]) * 32)


def test_least_recently_used_entries_go_first() -> None:
    cache = DataKeyCache(CacheLimits(max_entries=2))
    cache.put(_key(1), _secret(1))
    cache.put(_key(2), _secret(2))
    assert cache.get(_key(1)) == _secret(1)  # 1 is now the most recent
    cache.put(_key(3), _secret(3))
    assert len(cache) == 2
    assert cache.get(_key(2)) is None
    assert cache.get(_key(1)) == _secret(1) and cache.get(_key(3)) == _secret(3)
    assert (cache.hits, cache.misses, cache.evictions) == (3, 1, 1)


def test_entries_expire_by_age_and_by_uses() -> None:
    clock = Clock()
    cache = DataKeyCache(CacheLimits(max_entries=10, max_age_seconds=30, max_uses=3), clock)
    cache.put(_key(1), _secret(1))
    clock.now += 29.9
    assert cache.get(_key(1)) is not None
    clock.now += 0.1
    assert cache.get(_key(1)) is None and len(cache) == 0
    cache.put(_key(2), _secret(2))
    assert all(cache.get(_key(2)) is not None for _ in range(3))
    assert cache.get(_key(2)) is None  # the third use was its last


def test_evicted_and_cleared_keys_are_overwritten_with_zeros() -> None:
    cache = DataKeyCache(CacheLimits(max_entries=1, max_uses=2))
    cache.put(_key(1), _secret(1))
    held = cache._entries[_key(1)].key  # the cache's own buffer, as it sits in memory
    assert bytes(held) == _secret(1).reveal()
    cache.put(_key(2), _secret(2))  # evicts 1 for size
    assert bytes(held) == bytes(32)
    held = cache._entries[_key(2)].key
    cache.get(_key(2))
    cache.get(_key(2))  # evicted for uses
    assert bytes(held) == bytes(32)
    cache.put(_key(3), _secret(3))
    held = cache._entries[_key(3)].key
    cache.clear()
    assert bytes(held) == bytes(32) and len(cache) == 0


def test_a_hit_hands_out_a_copy_that_eviction_does_not_touch() -> None:
    cache = DataKeyCache(CacheLimits(max_entries=1))
    cache.put(_key(1), _secret(1))
    copy = cache.get(_key(1))
    cache.clear()
    assert copy == _secret(1)


def test_zero_entries_turns_the_cache_off() -> None:
    cache = DataKeyCache(CacheLimits(max_entries=0))
    cache.put(_key(1), _secret(1))
    assert cache.get(_key(1)) is None and len(cache) == 0


@pytest.mark.parametrize(
    "kwargs", [{"max_entries": -1}, {"max_age_seconds": 0}, {"max_uses": 0}, {"max_entries": 10**9}]
)
def test_limits_are_checked(kwargs: dict[str, float]) -> None:
    with pytest.raises(errors.ConfigError):
        CacheLimits(**kwargs)  # type: ignore[arg-type]


def test_reads_after_the_first_do_not_reach_the_kek() -> None:
    inner = CountingKek()
    kek = CachingKek(inner, DataKeyCache(CacheLimits()))
    ctx = envelope.EnvelopeContext.for_secret("ns", "p", 1)
    sealed = envelope.seal(kek, b"value", ctx)  # the wrap fills the cache
    for _ in range(5):
        assert envelope.open_envelope(kek, sealed, ctx).reveal() == b"value"
    assert inner.unwraps == 0
    assert (kek.cache.hits, kek.cache.misses) == (5, 0)
    other = envelope.seal(inner, b"other", ctx)  # wrapped elsewhere: the first read misses, the next hits
    envelope.open_envelope(kek, other, ctx)
    envelope.open_envelope(kek, other, ctx)
    assert inner.unwraps == 1


def test_tampered_envelopes_are_never_served_from_the_cache() -> None:
    inner = CountingKek()
    kek = CachingKek(inner, DataKeyCache(CacheLimits()))
    ctx = envelope.EnvelopeContext.for_secret("ns", "p", 1)
    sealed = envelope.seal(kek, b"value", ctx)
    header = envelope.parse_header(sealed)
    start = header.payload_offset - len(header.wrapped_key)
    wrapped_flipped = bytearray(sealed)
    wrapped_flipped[start + 5] ^= 1
    payload_flipped = bytearray(sealed)
    payload_flipped[-1] ^= 1
    with pytest.raises(errors.DecryptionFailed):
        envelope.open_envelope(kek, bytes(wrapped_flipped), ctx)  # a miss: the KEK refuses it
    assert inner.unwraps == 1
    with pytest.raises(errors.DecryptionFailed):
        envelope.open_envelope(kek, bytes(payload_flipped), ctx)  # a hit, and the payload still fails
    # The same envelope copied to another record binds other associated data: a miss, refused by the KEK.
    with pytest.raises(errors.DecryptionFailed):
        envelope.open_envelope(kek, sealed, envelope.EnvelopeContext.for_secret("ns", "p", 2))
    with pytest.raises(errors.DecryptionFailed):
        envelope.open_envelope(kek, sealed, envelope.EnvelopeContext.for_secret("ns", "other", 1))
    assert inner.unwraps == 3
    assert len(kek.cache) == 1  # nothing that failed was cached


def test_hits_and_misses_are_exposed_as_metrics() -> None:
    cache = DataKeyCache(CacheLimits())
    cache.put(_key(1), _secret(1))
    cache.get(_key(1))
    cache.get(_key(2))
    registry = CollectorRegistry()
    registry.register(DataKeyCacheCollector(cache))
    text = generate_latest(registry).decode()
    assert "secretsvc_kek_cache_hits_total 1.0" in text
    assert "secretsvc_kek_cache_misses_total 1.0" in text
    assert "secretsvc_kek_cache_entries 1.0" in text


def test_the_wrapper_passes_versions_and_rotation_through() -> None:
    inner = CountingKek()
    kek = CachingKek(inner, DataKeyCache(CacheLimits()))
    assert kek.key_id == inner.key_id and kek.inner is inner
    assert kek.rotate() == 2 and kek.primary_version() == 2
    assert [v.version for v in kek.versions()] == [1, 2]
    assert repr(kek).endswith("entries=0)")


def test_readers_never_see_a_wrong_key_while_entries_are_evicted_and_cleared() -> None:
    cache = DataKeyCache(CacheLimits(max_entries=4, max_uses=3))
    problems: list[object] = []
    stop = threading.Event()

    def churn() -> None:
        i = 0
        while not stop.is_set():
            cache.put(_key(i % 8), _secret(i % 8))
            if i % 5 == 0:
                cache.clear()
            i += 1

    def read() -> None:
        while not stop.is_set():
            for i in range(8):
                got = cache.get(_key(i))
                if got is not None and got != _secret(i):
                    problems.append(got.reveal())

    def guarded(body: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                body()
            except BaseException as exc:
                problems.append(exc)

        return run

    threads = [threading.Thread(target=guarded(churn)), *(threading.Thread(target=guarded(read)) for _ in range(3))]
    for t in threads:
        t.start()
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join()
    assert cache.hits > 0 and cache.evictions > 0
    assert problems == []
