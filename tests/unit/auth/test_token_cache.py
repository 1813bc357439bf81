"""The cache of verified tokens: hits skip the store, revocation lands within the TTL, failures are never
cached, the bound holds, and nothing in it is the token itself."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from secretsvc.auth.tokens import (
    TOKEN_CACHE_MAX_ENTRIES,
    TOKEN_CACHE_TTL_SECONDS,
    MintedToken,
    TokenAuthenticator,
    VerifiedTokenCache,
    mint_token,
)
from secretsvc.errors import Unauthenticated
from secretsvc.store.base import TokenRecord
from secretsvc.store.sqlite import SqliteStore


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "secretsvc.db")
    yield opened
    opened.close()


def _minted(store: SqliteStore, name: str) -> MintedToken:
    token = mint_token(name, now=1.0, policies=("p",))
    store.put_token(token.record)
    return token


def _revoke(store: SqliteStore, minted: MintedToken) -> None:
    """Reissue the token id with another secret: the old token no longer matches the store."""
    other = mint_token(minted.record.name, now=2.0)
    store.put_token(TokenRecord(token_id=minted.record.token_id, name=minted.record.name,
                                token_hash=other.record.token_hash, created_at=2.0))


def test_defaults_are_bounded_and_short() -> None:
    assert TOKEN_CACHE_MAX_ENTRIES == 4096
    assert 0 < TOKEN_CACHE_TTL_SECONDS <= 60


def test_revocation_takes_effect_after_the_ttl(store: SqliteStore) -> None:
    clock = ManualClock()
    auth = TokenAuthenticator(store, cache=VerifiedTokenCache(ttl_seconds=30, clock=clock))
    minted = _minted(store, "app")
    first = auth.authenticate(minted.token)
    _revoke(store, minted)
    clock.now += 29.9
    assert auth.authenticate(minted.token) == first  # served from the cache, the store is not asked
    clock.now += 0.1
    with pytest.raises(Unauthenticated, match=r"^missing or invalid bearer token$"):
        auth.authenticate(minted.token)


def test_ttl_counts_from_verification_not_from_last_use(store: SqliteStore) -> None:
    clock = ManualClock()
    auth = TokenAuthenticator(store, cache=VerifiedTokenCache(ttl_seconds=10, clock=clock))
    minted = _minted(store, "app")
    auth.authenticate(minted.token)
    _revoke(store, minted)
    for _ in range(9):
        clock.now += 1
        auth.authenticate(minted.token)  # frequent use must not keep a revoked token alive
    clock.now += 1
    with pytest.raises(Unauthenticated):
        auth.authenticate(minted.token)


def test_forget_verified_revokes_at_once(store: SqliteStore) -> None:
    auth = TokenAuthenticator(store, cache=VerifiedTokenCache(clock=ManualClock()))
    minted = _minted(store, "app")
    auth.authenticate(minted.token)
    _revoke(store, minted)
    auth.forget_verified()
    with pytest.raises(Unauthenticated):
        auth.authenticate(minted.token)


def test_failures_are_not_cached(store: SqliteStore) -> None:
    cache = VerifiedTokenCache(clock=ManualClock())
    auth = TokenAuthenticator(store, cache=cache)
    minted = _minted(store, "app")
    token_id = minted.record.token_id
    wrong = minted.token[:-1] + ("A" if minted.token[-1] != "A" else "B")
    for bad in (wrong, f"svc_{token_id}_", "svc__x", "", "x" * 300, "svc_" + "\u00e9"):
        with pytest.raises(Unauthenticated, match=r"^missing or invalid bearer token$"):
            auth.authenticate(bad)
    assert len(cache) == 0
    # A token that fails first and is then issued must work at once: no negative entry stands in the way.
    late = mint_token("late", now=1.0)
    with pytest.raises(Unauthenticated):
        auth.authenticate(late.token)
    store.put_token(late.record)
    assert auth.authenticate(late.token).name == "late"
    assert len(cache) == 1


def test_the_bound_evicts_the_least_recently_used(store: SqliteStore) -> None:
    cache = VerifiedTokenCache(max_entries=3, clock=ManualClock())
    auth = TokenAuthenticator(store, cache=cache)
    tokens = [_minted(store, f"t{i}") for i in range(4)]
    for t in tokens[:3]:
        auth.authenticate(t.token)
    auth.authenticate(tokens[0].token)  # t0 is now the most recently used; t1 the least
    auth.authenticate(tokens[3].token)
    assert len(cache) == 3
    for t in tokens:
        _revoke(store, t)
    with pytest.raises(Unauthenticated):
        auth.authenticate(tokens[1].token)  # evicted: asked the store again, which no longer knows it
    for kept in (tokens[0], tokens[2], tokens[3]):
        assert auth.authenticate(kept.token).name == kept.record.name


def test_zero_ttl_or_size_disables_caching(store: SqliteStore) -> None:
    for i, cache in enumerate((VerifiedTokenCache(ttl_seconds=0), VerifiedTokenCache(max_entries=0))):
        auth = TokenAuthenticator(store, cache=cache)
        minted = _minted(store, f"app-{i}")  # token names are unique
        auth.authenticate(minted.token)
        assert len(cache) == 0
        _revoke(store, minted)
        with pytest.raises(Unauthenticated):
            auth.authenticate(minted.token)


@pytest.mark.parametrize("kwargs", [{"ttl_seconds": -1.0}, {"max_entries": -1}])
def test_negative_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be 0 or more"):
        VerifiedTokenCache(**kwargs)  # type: ignore[arg-type]


def test_the_cache_never_holds_or_shows_the_token(store: SqliteStore) -> None:
    cache = VerifiedTokenCache(clock=ManualClock())
    auth = TokenAuthenticator(store, cache=cache)
    minted = _minted(store, "app")
    auth.authenticate(minted.token)
    _, _, secret_part = minted.token.split("_", 2)
    key = cache.key_for(minted.token)
    assert len(key) == 32
    assert secret_part.encode() not in key and minted.token.encode() not in key
    assert key != minted.record.token_hash  # not the stored verifier either
    assert secret_part not in repr(cache) and secret_part not in repr(auth)
    assert cache.get(key) is not None


def test_threads_share_one_cache(store: SqliteStore) -> None:
    auth = TokenAuthenticator(store)
    tokens = [_minted(store, f"t{i}") for i in range(8)]
    errors: list[BaseException] = []
    seen: list[str] = []

    def run(i: int) -> None:
        try:
            for _ in range(200):
                seen.append(auth.authenticate(tokens[i % 8].token).name)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert len(seen) == 16 * 200
    assert set(seen) == {f"t{i}" for i in range(8)}
