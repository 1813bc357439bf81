"""The on-disk cache of compiled trigger databases: hits, misses, and every way a cache file can be bad."""

from __future__ import annotations

import logging
import os
import random
import string
from pathlib import Path

import pytest

from secretsvc.errors import InvalidArgument
from secretsvc.scan.rules import RuleSet, cache
from secretsvc.scan.rules.cache import DatabaseCache
from secretsvc.scan.rules.engine import HyperscanEngine, build_engine

TRIGGERS = [("acme_[a-z]{4}", False, False), ("(?:zeta|eta)", True, False), ("^tok=", False, True)]
LOGGER = "secretsvc.scan.rules.cache"


def sample(seed: int) -> bytes:
    rng = random.Random(seed)
    words = ["acme_" + "".join(rng.choice(string.ascii_lowercase) for _ in range(4)), "ZETA", "eta", "tok="]
    return "\n".join(rng.choice(words) + " " + rng.choice(words) for _ in range(200)).encode()


def hits(engine: object, data: bytes) -> list[tuple[int, int]]:
    assert isinstance(engine, HyperscanEngine)
    return sorted(engine.hits(data).hits)


def only_file(directory: Path) -> Path:
    (path,) = [p for p in directory.iterdir() if p.name.endswith(cache.SUFFIX)]
    return path


@pytest.fixture
def store(tmp_path: Path) -> DatabaseCache:
    return DatabaseCache(tmp_path / "cache")


def test_a_second_build_loads_the_database_and_finds_the_same(
    store: DatabaseCache, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, LOGGER)
    data = sample(1)
    compiled = build_engine(TRIGGERS, cache=store)
    path = only_file(store.directory)
    assert "wrote" in caplog.text and "loaded" not in caplog.text
    assert (path.stat().st_mode & 0o777, store.directory.stat().st_mode & 0o777) == (0o600, 0o700)
    caplog.clear()
    loaded = build_engine(TRIGGERS, cache=store)
    assert f"loaded {path.name}" in caplog.text
    assert hits(loaded, data) == hits(compiled, data) == hits(build_engine(TRIGGERS, cache=None), data)
    assert len(hits(loaded, data)) >= 200


def test_the_key_covers_every_trigger_its_flags_its_position_and_the_version(store: DatabaseCache) -> None:
    base = [(b"acme", 0), (b"zeta", 1)]
    keys = {
        store.key("1", base),
        store.key("2", base),
        store.key("1", [(b"acme", 0), (b"zeta", 0)]),
        store.key("1", list(reversed(base))),
        store.key("1", [(b"acme", 0), (b"zet", 1)]),
        store.key("1", base[:1]),
    }
    assert len(keys) == 6
    assert store.key("1", base) == store.key("1", list(base))


def test_rule_changes_write_another_file(store: DatabaseCache) -> None:
    build_engine(TRIGGERS, cache=store)
    build_engine(TRIGGERS[:2], cache=store)
    assert len(list(store.directory.iterdir())) == 2


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: raw[: len(raw) // 2],  # truncated
        lambda raw: raw[:-1] + bytes([raw[-1] ^ 1]),  # one bit flipped in the database
        lambda raw: b"garbage" + raw[7:],  # not our magic
        lambda raw: b"",
    ],
)
def test_a_damaged_file_is_ignored_and_rebuilt(
    store: DatabaseCache, caplog: pytest.LogCaptureFixture, damage: object
) -> None:
    assert callable(damage)
    build_engine(TRIGGERS, cache=store)
    path = only_file(store.directory)
    good = path.read_bytes()
    path.write_bytes(damage(good))
    caplog.set_level(logging.DEBUG, LOGGER)
    engine = build_engine(TRIGGERS, cache=store)
    assert "ignoring" in caplog.text
    assert hits(engine, sample(2)) == hits(build_engine(TRIGGERS, cache=None), sample(2))
    assert path.read_bytes() == good  # written again


def test_a_well_framed_file_that_hyperscan_refuses_is_rebuilt(
    store: DatabaseCache, caplog: pytest.LogCaptureFixture
) -> None:
    build_engine(TRIGGERS, cache=store)
    path = only_file(store.directory)
    store.store(path.name, b"\x00" * 512)  # checksum right, database nonsense (another version, say)
    caplog.set_level(logging.DEBUG, LOGGER)
    engine = build_engine(TRIGGERS, cache=store)
    assert "ignoring" in caplog.text and "Error" in caplog.text
    assert hits(engine, sample(3)) == hits(build_engine(TRIGGERS, cache=None), sample(3))


def test_files_others_could_have_written_are_not_loaded(store: DatabaseCache, caplog: pytest.LogCaptureFixture) -> None:
    build_engine(TRIGGERS, cache=store)
    path = only_file(store.directory)
    caplog.set_level(logging.DEBUG, LOGGER)
    os.chmod(path, 0o620)
    build_engine(TRIGGERS, cache=store)
    assert "writable by others" in caplog.text
    # A symlink in its place is not followed either.
    target = store.directory.parent / "elsewhere"
    target.write_bytes(b"x")
    path.unlink()
    path.symlink_to(target)
    caplog.clear()
    assert build_engine(TRIGGERS, cache=store).max_hits > 0
    assert "ignoring" in caplog.text


def test_an_unwritable_directory_means_no_cache(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    caplog.set_level(logging.DEBUG, LOGGER)
    engine = build_engine(TRIGGERS, cache=DatabaseCache(blocker / "secretsvc"))
    assert "cannot write" in caplog.text
    assert hits(engine, sample(4)) == hits(build_engine(TRIGGERS, cache=None), sample(4))


def test_old_files_are_pruned(store: DatabaseCache) -> None:
    for n in range(cache.MAX_CACHE_FILES + 3):
        build_engine([(f"acme{n}x", False, False)], cache=store)
    assert len(list(store.directory.iterdir())) == cache.MAX_CACHE_FILES


def test_the_directory_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert DatabaseCache.from_environment({}) == DatabaseCache(tmp_path / "home" / ".cache" / "secretsvc")
    xdg = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    assert DatabaseCache.from_environment(xdg) == DatabaseCache(tmp_path / "xdg" / "secretsvc")
    relative = {"XDG_CACHE_HOME": "relative/dir"}  # the XDG spec says to ignore it
    assert DatabaseCache.from_environment(relative) == DatabaseCache(tmp_path / "home" / ".cache" / "secretsvc")
    chosen = {**xdg, cache.CACHE_ENV: str(tmp_path / "mine")}
    assert DatabaseCache.from_environment(chosen) == DatabaseCache(tmp_path / "mine")
    for off in ("0", "off"):
        assert DatabaseCache.from_environment({**xdg, cache.CACHE_ENV: off}) is None


def test_rule_sets_use_the_cache_they_are_given(tmp_path: Path) -> None:
    store = DatabaseCache(tmp_path / "rules-cache")
    first = RuleSet.default(cache=store)
    path = only_file(tmp_path / "rules-cache")
    again = RuleSet.default(cache=store)
    assert only_file(tmp_path / "rules-cache") == path
    assert first.rules == again.rules
    first.without(["jwt"])  # a derived set keeps its parent's cache
    assert len(list((tmp_path / "rules-cache").iterdir())) == 2
    RuleSet.default()  # no cache given: nothing written
    assert len(list((tmp_path / "rules-cache").iterdir())) == 2


def test_a_trigger_hyperscan_refuses_is_named_in_the_error(store: DatabaseCache) -> None:
    with pytest.raises(InvalidArgument, match=r"rule trigger '\(\?<!x\)acme' is not supported by Hyperscan"):
        build_engine([*TRIGGERS, ("(?<!x)acme", False, False)], cache=store)
    assert not store.directory.exists()
