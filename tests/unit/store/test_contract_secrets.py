"""Contract tests for secrets in any `SecretStore`: check-and-set, pruning, the version state machine,
listing. Backend-agnostic: a store comes from the `store` / `store_factory` fixtures only."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from secretsvc.errors import InvalidArgument, LimitExceeded, NotFound, VersionConflict
from secretsvc.store.base import SecretStore, VersionState

NS = "team-a"
T0 = 1_700_000_000.0


def envelope(rng: random.Random, size: int = 80) -> bytes:
    return rng.randbytes(size)


def write_versions(store: SecretStore, path: str, count: int, *, rng: random.Random,
                   max_versions: int = 100, ns: str = NS) -> list[bytes]:
    written = []
    for v in range(1, count + 1):
        env = envelope(rng)
        store.insert_version(ns, path, v, env, expected_version=v - 1, now=T0 + v, max_versions=max_versions)
        written.append(env)
    return written


# --- insert_version / read ----------------------------------------------------------------------------------
def test_first_version_creates_the_secret(store: SecretStore) -> None:
    rng = random.Random(1)
    env = envelope(rng)
    removed = store.insert_version(NS, "db/password", 1, env, expected_version=0, now=T0, max_versions=5,
                                   custom_metadata={"owner": "payments"})
    assert removed == []
    meta = store.read_meta(NS, "db/password")
    assert meta is not None
    assert (meta.namespace, meta.path, meta.current_version) == (NS, "db/password", 1)
    assert meta.created_at == meta.updated_at == T0
    assert dict(meta.custom_metadata) == {"owner": "payments"}
    assert [(v.version, v.state, v.created_at, v.deleted_at, v.destroyed_at) for v in meta.versions] == [
        (1, VersionState.ACTIVE, T0, None, None)
    ]
    got = store.read_version(NS, "db/password", None)
    assert (got.version, got.state, got.envelope, got.created_at) == (1, VersionState.ACTIVE, env, T0)
    assert store.read_version(NS, "db/password", 1) == got


def test_new_secret_starts_with_default_max_versions_and_empty_metadata(store: SecretStore) -> None:
    store.insert_version(NS, "p", 1, b"\x01", expected_version=0, now=T0, max_versions=3)
    meta = store.read_meta(NS, "p")
    assert meta is not None
    assert meta.max_versions == 0
    assert dict(meta.custom_metadata) == {}


def test_later_versions_keep_creation_time_and_replace_metadata_only_when_given(store: SecretStore) -> None:
    rng = random.Random(2)
    store.insert_version(NS, "p", 1, envelope(rng), expected_version=0, now=T0, max_versions=5,
                         custom_metadata={"a": "1"})
    store.insert_version(NS, "p", 2, envelope(rng), expected_version=1, now=T0 + 5, max_versions=5)
    meta = store.read_meta(NS, "p")
    assert meta is not None
    assert (meta.current_version, meta.created_at, meta.updated_at) == (2, T0, T0 + 5)
    assert dict(meta.custom_metadata) == {"a": "1"}
    store.insert_version(NS, "p", 3, envelope(rng), expected_version=2, now=T0 + 6, max_versions=5,
                         custom_metadata={"b": "2"})
    meta = store.read_meta(NS, "p")
    assert meta is not None
    assert dict(meta.custom_metadata) == {"b": "2"}


def test_cas_conflict_names_versions_and_changes_nothing(store: SecretStore) -> None:
    rng = random.Random(3)
    written = write_versions(store, "p", 2, rng=rng)
    stale = envelope(rng)
    with pytest.raises(VersionConflict) as info:
        store.insert_version(NS, "p", 2, stale, expected_version=1, now=T0 + 9, max_versions=5)
    message = str(info.value)
    assert "expected version 1" in message
    assert "current version is 2" in message
    assert stale.hex() not in message
    assert store.read_version(NS, "p", None).envelope == written[1]
    meta = store.read_meta(NS, "p")
    assert meta is not None
    assert meta.current_version == 2
    assert meta.updated_at == T0 + 2


def test_cas_create_when_secret_exists_conflicts(store: SecretStore) -> None:
    write_versions(store, "p", 1, rng=random.Random(4))
    with pytest.raises(VersionConflict, match="expected version 0, current version is 1"):
        store.insert_version(NS, "p", 1, b"\x02", expected_version=0, now=T0, max_versions=5)


def test_cas_update_of_missing_secret_conflicts(store: SecretStore) -> None:
    with pytest.raises(VersionConflict, match="expected version 3, current version is 0"):
        store.insert_version(NS, "missing", 4, b"\x02", expected_version=3, now=T0, max_versions=5)
    assert store.read_meta(NS, "missing") is None


@pytest.mark.parametrize(
    ("version", "expected", "max_versions"),
    [(2, 0, 5), (1, 1, 5), (0, -1, 5), (1, 0, 0), (1, 0, -3)],
)
def test_insert_version_rejects_bad_arguments(
    store: SecretStore, version: int, expected: int, max_versions: int
) -> None:
    with pytest.raises(InvalidArgument):
        store.insert_version(NS, "p", version, b"\x01", expected_version=expected, now=T0,
                             max_versions=max_versions)
    assert store.read_meta(NS, "p") is None


def test_insert_version_rejects_an_empty_envelope(store: SecretStore) -> None:
    with pytest.raises(InvalidArgument):
        store.insert_version(NS, "p", 1, b"", expected_version=0, now=T0, max_versions=5)


def test_namespaces_are_separate(store: SecretStore) -> None:
    rng = random.Random(5)
    a = write_versions(store, "p", 1, rng=rng, ns="ns-a")
    b = write_versions(store, "p", 2, rng=rng, ns="ns-b")
    assert store.read_version("ns-a", "p", None).envelope == a[0]
    assert store.read_version("ns-b", "p", None).envelope == b[1]
    assert store.read_meta("ns-c", "p") is None


def test_read_version_not_found_and_invalid(store: SecretStore) -> None:
    write_versions(store, "p", 2, rng=random.Random(6))
    with pytest.raises(NotFound):
        store.read_version(NS, "nope", None)
    with pytest.raises(NotFound):
        store.read_version(NS, "nope", 1)
    with pytest.raises(NotFound):
        store.read_version(NS, "p", 3)
    with pytest.raises(InvalidArgument):
        store.read_version(NS, "p", 0)
    with pytest.raises(InvalidArgument):
        store.read_version(NS, "p", 2**63)


def test_versions_stop_at_the_largest_signed_64_bit_integer(store: SecretStore) -> None:
    rng = random.Random(61)
    with pytest.raises(LimitExceeded):
        store.insert_version(NS, "p", 2**63, envelope(rng), expected_version=2**63 - 1, now=T0, max_versions=5)
    assert store.read_meta(NS, "p") is None


def test_stored_version_repr_hides_the_envelope(store: SecretStore) -> None:
    env = random.Random(7).randbytes(40)
    store.insert_version(NS, "p", 1, env, expected_version=0, now=T0, max_versions=5)
    text = repr(store.read_version(NS, "p", 1))
    assert env.hex() not in text
    assert repr(env) not in text
    assert "40 bytes" in text


# --- pruning ------------------------------------------------------------------------------------------------
def test_prune_removes_oldest_first_and_reports_them(store: SecretStore) -> None:
    rng = random.Random(8)
    written = write_versions(store, "p", 3, rng=rng, max_versions=3)
    removed = store.insert_version(NS, "p", 4, envelope(rng), expected_version=3, now=T0 + 4, max_versions=3)
    assert removed == [1]
    meta = store.read_meta(NS, "p")
    assert meta is not None
    assert [v.version for v in meta.versions] == [2, 3, 4]
    with pytest.raises(NotFound):
        store.read_version(NS, "p", 1)
    assert store.read_version(NS, "p", 2).envelope == written[1]
    # A smaller limit on the next write drops several at once, still oldest first.
    removed = store.insert_version(NS, "p", 5, envelope(rng), expected_version=4, now=T0 + 5, max_versions=1)
    assert removed == [2, 3, 4]
    meta = store.read_meta(NS, "p")
    assert meta is not None
    assert [v.version for v in meta.versions] == [5]
    assert meta.current_version == 5


def test_prune_counts_destroyed_versions_as_kept(store: SecretStore) -> None:
    rng = random.Random(9)
    write_versions(store, "p", 2, rng=rng, max_versions=2)
    store.destroy_versions(NS, "p", [2], now=T0 + 10)
    removed = store.insert_version(NS, "p", 3, envelope(rng), expected_version=2, now=T0 + 11, max_versions=2)
    assert removed == [1]
    meta = store.read_meta(NS, "p")
    assert meta is not None
    assert [(v.version, v.state) for v in meta.versions] == [
        (2, VersionState.DESTROYED), (3, VersionState.ACTIVE)]


def test_update_meta_lowering_max_versions_prunes(store: SecretStore) -> None:
    write_versions(store, "p", 4, rng=random.Random(10))
    meta = store.update_meta(NS, "p", now=T0 + 50, max_versions=2)
    assert meta.max_versions == 2
    assert [v.version for v in meta.versions] == [3, 4]
    assert meta.updated_at == T0 + 50
    assert meta.current_version == 4
    # 0 hands the limit back to the service default and prunes nothing here.
    meta = store.update_meta(NS, "p", now=T0 + 51, max_versions=0)
    assert meta.max_versions == 0
    assert [v.version for v in meta.versions] == [3, 4]


def test_update_meta_replaces_metadata_and_leaves_unset_fields(store: SecretStore) -> None:
    store.insert_version(NS, "p", 1, b"\x01", expected_version=0, now=T0, max_versions=5,
                         custom_metadata={"a": "1"})
    store.update_meta(NS, "p", now=T0 + 1, max_versions=7)
    meta = store.update_meta(NS, "p", now=T0 + 2, custom_metadata={"b": "ü"})
    assert meta.max_versions == 7
    assert dict(meta.custom_metadata) == {"b": "ü"}
    assert store.read_meta(NS, "p") == meta


def test_update_meta_errors(store: SecretStore) -> None:
    with pytest.raises(NotFound):
        store.update_meta(NS, "missing", now=T0, max_versions=3)
    store.insert_version(NS, "p", 1, b"\x01", expected_version=0, now=T0, max_versions=5)
    with pytest.raises(InvalidArgument):
        store.update_meta(NS, "p", now=T0, max_versions=-1)


# --- soft delete / undelete / destroy -----------------------------------------------------------------------
def test_soft_delete_and_undelete(store: SecretStore) -> None:
    written = write_versions(store, "p", 3, rng=random.Random(11))
    assert store.set_versions_deleted(NS, "p", [1, 3, 3, 9], deleted=True, now=T0 + 20) == [1, 3]
    # Already deleted: no change reported.
    assert store.set_versions_deleted(NS, "p", [1], deleted=True, now=T0 + 21) == []
    deleted = store.read_version(NS, "p", 1)
    assert deleted.state is VersionState.DELETED
    assert deleted.envelope == written[0]  # kept, so undelete can restore it
    meta = store.read_meta(NS, "p")
    assert meta is not None
    states = {v.version: (v.state, v.deleted_at) for v in meta.versions}
    assert states == {1: (VersionState.DELETED, T0 + 20), 2: (VersionState.ACTIVE, None),
                      3: (VersionState.DELETED, T0 + 20)}
    assert meta.updated_at == T0 + 20
    assert store.set_versions_deleted(NS, "p", [3, 2], deleted=False, now=T0 + 22) == [3]
    restored = store.read_version(NS, "p", 3)
    assert (restored.state, restored.envelope) == (VersionState.ACTIVE, written[2])
    meta = store.read_meta(NS, "p")
    assert meta is not None
    assert meta.versions[2].deleted_at is None


def test_destroy_erases_envelope_and_is_final(store: SecretStore) -> None:
    write_versions(store, "p", 3, rng=random.Random(12))
    store.set_versions_deleted(NS, "p", [2], deleted=True, now=T0 + 5)
    assert store.destroy_versions(NS, "p", [1, 2, 7], now=T0 + 30) == [1, 2]
    assert store.destroy_versions(NS, "p", [1], now=T0 + 31) == []
    for v in (1, 2):
        gone = store.read_version(NS, "p", v)
        assert (gone.state, gone.envelope) == (VersionState.DESTROYED, None)
    # Destroyed versions are left alone by delete and undelete.
    assert store.set_versions_deleted(NS, "p", [1, 2], deleted=False, now=T0 + 32) == []
    assert store.set_versions_deleted(NS, "p", [1, 2], deleted=True, now=T0 + 32) == []
    meta = store.read_meta(NS, "p")
    assert meta is not None
    assert [(v.version, v.state, v.destroyed_at) for v in meta.versions] == [
        (1, VersionState.DESTROYED, T0 + 30), (2, VersionState.DESTROYED, T0 + 30),
        (3, VersionState.ACTIVE, None)]
    assert meta.current_version == 3


def test_destroyed_envelope_is_not_handed_out_anywhere(store: SecretStore) -> None:
    written = write_versions(store, "p", 2, rng=random.Random(13))
    store.destroy_versions(NS, "p", [1], now=T0 + 9)
    refs = [r for r in store.scan_envelopes(after=None, limit=100) if r.kind == "secret"]
    assert [(r.path, r.version) for r in refs] == [("p", 2)]
    assert all(r.envelope != written[0] for r in refs)


def test_version_state_changes_need_an_existing_secret(store: SecretStore) -> None:
    with pytest.raises(NotFound):
        store.set_versions_deleted(NS, "missing", [1], deleted=True, now=T0)
    with pytest.raises(NotFound):
        store.destroy_versions(NS, "missing", [1], now=T0)


@pytest.mark.parametrize("versions", [[0], [-1], [1, 0], [2**63], [1, 2**64 - 1]])
def test_version_lists_reject_bad_numbers(store: SecretStore, versions: list[int]) -> None:
    write_versions(store, "p", 1, rng=random.Random(14))
    with pytest.raises(InvalidArgument):
        store.set_versions_deleted(NS, "p", versions, deleted=True, now=T0)
    with pytest.raises(InvalidArgument):
        store.destroy_versions(NS, "p", versions, now=T0)
    assert store.read_version(NS, "p", 1).state is VersionState.ACTIVE


def test_version_lists_are_bounded(store: SecretStore) -> None:
    write_versions(store, "p", 1, rng=random.Random(15))
    with pytest.raises(LimitExceeded):
        store.destroy_versions(NS, "p", list(range(1, 100_002)), now=T0)
    assert store.read_version(NS, "p", 1).state is VersionState.ACTIVE


def test_delete_secret_removes_everything_and_allows_recreation(store: SecretStore) -> None:
    rng = random.Random(16)
    write_versions(store, "p", 3, rng=rng)
    write_versions(store, "q", 1, rng=rng)
    assert store.delete_secret(NS, "p") is True
    assert store.delete_secret(NS, "p") is False
    assert store.read_meta(NS, "p") is None
    with pytest.raises(NotFound):
        store.read_version(NS, "p", 1)
    assert [r.path for r in store.scan_envelopes(after=None, limit=100)] == ["q"]
    env = envelope(rng)
    store.insert_version(NS, "p", 1, env, expected_version=0, now=T0 + 100, max_versions=5)
    assert store.read_version(NS, "p", None).envelope == env


# --- listing ------------------------------------------------------------------------------------------------
def list_all(store: SecretStore, prefix: str, page_size: int, ns: str = NS) -> tuple[list[str], int]:
    paths: list[str] = []
    token = ""
    pages = 0
    while True:
        page = store.list_paths(ns, prefix, page_size=page_size, page_token=token)
        pages += 1
        assert len(page.paths) <= page_size
        paths.extend(page.paths)
        token = page.next_page_token
        if not token:
            return paths, pages


def test_list_paginates_many_paths_in_byte_order(store: SecretStore) -> None:
    rng = random.Random(17)
    names = [f"app/{rng.randrange(10**6):06d}/{i}" for i in range(157)] + ["app/é", "app/z", "app/Z", "other"]
    for name in names:
        store.insert_version(NS, name, 1, b"\x01", expected_version=0, now=T0, max_versions=1)
    store.insert_version("elsewhere", "app/x", 1, b"\x01", expected_version=0, now=T0, max_versions=1)
    expected = sorted((n for n in names if n.startswith("app/")), key=lambda s: s.encode())
    paths, pages = list_all(store, "app/", 10)
    assert paths == expected
    assert pages == 16
    everything, _ = list_all(store, "", 1000)
    assert everything == sorted(names, key=lambda s: s.encode())


def test_list_exact_page_multiple_has_no_empty_trailing_page(store: SecretStore) -> None:
    for i in range(6):
        store.insert_version(NS, f"k{i}", 1, b"\x01", expected_version=0, now=T0, max_versions=1)
    first = store.list_paths(NS, "", page_size=3, page_token="")
    second = store.list_paths(NS, "", page_size=3, page_token=first.next_page_token)
    assert list(second.paths) == ["k3", "k4", "k5"]
    assert second.next_page_token == ""


def test_list_prefix_treats_wildcards_literally(store: SecretStore) -> None:
    names = ["a%b/1", "a%b/2", "axb/1", "a_c/1", "abc/1", "a%", "a\\%b", "a"]
    for name in names:
        store.insert_version(NS, name, 1, b"\x01", expected_version=0, now=T0, max_versions=1)
    assert list_all(store, "a%b", 1)[0] == ["a%b/1", "a%b/2"]
    assert list_all(store, "a_", 2)[0] == ["a_c/1"]
    assert list_all(store, "a%", 5)[0] == ["a%", "a%b/1", "a%b/2"]
    assert list_all(store, "zz", 5)[0] == []


def test_list_prefix_ending_in_the_highest_code_point(store: SecretStore) -> None:
    top = chr(0x10FFFF)
    names = ["a" + top, "a" + top + "x", "b", "a"]
    for name in names:
        store.insert_version(NS, name, 1, b"\x01", expected_version=0, now=T0, max_versions=1)
    assert list_all(store, "a" + top, 1)[0] == ["a" + top, "a" + top + "x"]
    assert list_all(store, chr(0xD7FF), 1)[0] == []


@pytest.mark.parametrize(
    "token",
    ["garbage", "p1.", "p1.!!!", "p2.YQ", "p1.YQ=", "p1.YR", "p1.gA", "p1." + "A" * 5000, " p1.YQ"],
)
def test_list_rejects_malformed_page_tokens(store: SecretStore, token: str) -> None:
    store.insert_version(NS, "a", 1, b"\x01", expected_version=0, now=T0, max_versions=1)
    with pytest.raises(InvalidArgument) as info:
        store.list_paths(NS, "", page_size=5, page_token=token)
    assert token.strip() not in str(info.value)  # the message does not echo caller input


def test_list_rejects_a_token_from_another_prefix(store: SecretStore) -> None:
    for name in ("a/1", "a/2", "b/1", "b/2"):
        store.insert_version(NS, name, 1, b"\x01", expected_version=0, now=T0, max_versions=1)
    token = store.list_paths(NS, "a/", page_size=1, page_token="").next_page_token
    assert token
    with pytest.raises(InvalidArgument):
        store.list_paths(NS, "b/", page_size=1, page_token=token)


@pytest.mark.parametrize("page_size", [0, -1, 1_000_001])
def test_list_rejects_bad_page_sizes(store: SecretStore, page_size: int) -> None:
    with pytest.raises(InvalidArgument):
        store.list_paths(NS, "", page_size=page_size, page_token="")


def test_list_survives_deletes_between_pages(store_factory: Callable[[], SecretStore]) -> None:
    store = store_factory()
    try:
        for i in range(6):
            store.insert_version(NS, f"k{i}", 1, b"\x01", expected_version=0, now=T0, max_versions=1)
        first = store.list_paths(NS, "", page_size=2, page_token="")
        assert list(first.paths) == ["k0", "k1"]
        store.delete_secret(NS, "k1")
        store.delete_secret(NS, "k2")
        rest = store.list_paths(NS, "", page_size=10, page_token=first.next_page_token)
        assert list(rest.paths) == ["k3", "k4", "k5"]
    finally:
        store.close()


def test_text_that_is_not_utf8_is_invalid_everywhere(store: SecretStore) -> None:
    bad = "a\udc80"
    with pytest.raises(InvalidArgument):
        store.insert_version(NS, bad, 1, b"\x01", expected_version=0, now=T0, max_versions=1)
    with pytest.raises(InvalidArgument):
        store.insert_version(NS, "p", 1, b"\x01", expected_version=0, now=T0, max_versions=1,
                             custom_metadata={"k": bad})
    with pytest.raises(InvalidArgument):
        store.read_meta(bad, "p")
    with pytest.raises(InvalidArgument):
        store.list_paths(NS, bad, page_size=5, page_token="")
    assert store.read_meta(NS, "p") is None


def test_nul_characters_are_invalid_in_written_text(store: SecretStore) -> None:
    # PostgreSQL text cannot hold NUL; refusing it on every backend keeps a SQLite database copyable.
    with pytest.raises(InvalidArgument, match="NUL"):
        store.insert_version(NS, "a\x00b", 1, b"\x01", expected_version=0, now=T0, max_versions=1)
    with pytest.raises(InvalidArgument, match="NUL"):
        store.insert_version(NS, "p", 1, b"\x01", expected_version=0, now=T0, max_versions=1,
                             custom_metadata={"k": "v\x00"})
    assert store.read_meta(NS, "p") is None
