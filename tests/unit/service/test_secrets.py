"""`SecretService`: versions, check-and-set, pruning, lifecycle, listing and metadata, over real parts."""

from __future__ import annotations

import random
import threading

import pytest

from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.errors import (
    FailedPrecondition,
    InvalidArgument,
    LimitExceeded,
    NotFound,
    VersionConflict,
    VersionUnavailable,
)
from secretsvc.kek.local import LocalKeyring
from secretsvc.service import limits
from secretsvc.service.access import AdminPolicyOnly
from secretsvc.service.secrets import SecretService
from secretsvc.store.base import VersionState
from secretsvc.store.sqlite import SqliteStore
from tests.unit.service.support import ADMIN, ManualClock, value

NS = "team-a"


def test_put_then_get_returns_the_value_and_its_version(secrets_svc: SecretService, clock: ManualClock) -> None:
    secret = value(random.Random(1))
    result = secrets_svc.put(ADMIN, NS, "db/password", secret)
    assert result.version == 1
    assert result.created_at == clock.now
    assert list(result.pruned_versions) == []
    got = secrets_svc.get(ADMIN, NS, "db/password")
    assert got.value == secret
    assert (got.version, got.created_at) == (1, clock.now)


def test_empty_value_round_trips(secrets_svc: SecretService) -> None:
    secrets_svc.put(ADMIN, NS, "empty", SecretBytes(b""))
    assert secrets_svc.get(ADMIN, NS, "empty").value.reveal() == b""


def test_versions_increment_and_each_stays_readable(secrets_svc: SecretService, clock: ManualClock) -> None:
    rng = random.Random(2)
    values = [value(rng) for _ in range(4)]
    for i, v in enumerate(values, start=1):
        clock.advance(1)
        assert secrets_svc.put(ADMIN, NS, "app/key", v).version == i
    assert secrets_svc.get(ADMIN, NS, "app/key").version == 4
    for i, v in enumerate(values, start=1):
        got = secrets_svc.get(ADMIN, NS, "app/key", i)
        assert got.value == v
        assert got.version == i


def test_same_path_in_other_namespace_is_another_secret(secrets_svc: SecretService) -> None:
    rng = random.Random(3)
    a, b = value(rng), value(rng)
    secrets_svc.put(ADMIN, "ns-a", "shared", a)
    secrets_svc.put(ADMIN, "ns-b", "shared", b)
    assert secrets_svc.get(ADMIN, "ns-a", "shared").value == a
    assert secrets_svc.get(ADMIN, "ns-b", "shared").value == b
    assert secrets_svc.get(ADMIN, "ns-b", "shared").version == 1


# --- check-and-set ------------------------------------------------------------------------------------------


def test_cas_zero_creates_a_new_secret(secrets_svc: SecretService) -> None:
    assert secrets_svc.put(ADMIN, NS, "new", value(random.Random(4)), cas=0).version == 1


def test_cas_zero_on_an_existing_secret_conflicts(secrets_svc: SecretService) -> None:
    secrets_svc.put(ADMIN, NS, "taken", value(random.Random(5)))
    with pytest.raises(VersionConflict) as info:
        secrets_svc.put(ADMIN, NS, "taken", value(random.Random(6)), cas=0)
    assert "expected version 0" in str(info.value)
    assert "current is 1" in str(info.value)


def test_cas_matching_the_current_version_writes(secrets_svc: SecretService) -> None:
    rng = random.Random(7)
    secrets_svc.put(ADMIN, NS, "p", value(rng))
    secrets_svc.put(ADMIN, NS, "p", value(rng))
    assert secrets_svc.put(ADMIN, NS, "p", value(rng), cas=2).version == 3


def test_wrong_cas_names_both_versions_and_not_the_value(secrets_svc: SecretService) -> None:
    rng = random.Random(8)
    secrets_svc.put(ADMIN, NS, "p", value(rng))
    secrets_svc.put(ADMIN, NS, "p", value(rng))
    rejected = value(rng)
    with pytest.raises(VersionConflict) as info:
        secrets_svc.put(ADMIN, NS, "p", rejected, cas=1)
    message = str(info.value)
    assert "expected version 1" in message
    assert "current is 2" in message
    assert rejected.reveal().hex() not in message
    assert repr(rejected.reveal()) not in message
    # Nothing was written.
    assert secrets_svc.metadata(ADMIN, NS, "p").current_version == 2


def test_cas_on_a_missing_secret_conflicts(secrets_svc: SecretService) -> None:
    with pytest.raises(VersionConflict, match="current is 0"):
        secrets_svc.put(ADMIN, NS, "absent", value(random.Random(9)), cas=3)
    with pytest.raises(NotFound):
        secrets_svc.metadata(ADMIN, NS, "absent")


def test_negative_cas_is_invalid(secrets_svc: SecretService) -> None:
    with pytest.raises(InvalidArgument, match="cas"):
        secrets_svc.put(ADMIN, NS, "p", value(random.Random(10)), cas=-1)


def test_concurrent_puts_without_cas_all_land_with_distinct_versions(secrets_svc: SecretService) -> None:
    threads, per_thread = 4, 5
    results: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        start.wait()
        for _ in range(per_thread):
            try:
                version = secrets_svc.put(ADMIN, NS, "hot", value(rng), max_versions=limits.MAX_MAX_VERSIONS).version
            except BaseException as exc:
                with lock:
                    errors.append(exc)
                return
            with lock:
                results.append(version)

    workers = [threading.Thread(target=writer, args=(100 + i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    total = threads * per_thread
    assert sorted(results) == list(range(1, total + 1))
    assert secrets_svc.metadata(ADMIN, NS, "hot").current_version == total


def test_concurrent_cas_writers_exactly_one_wins(secrets_svc: SecretService) -> None:
    secrets_svc.put(ADMIN, NS, "race", value(random.Random(11)))
    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def writer(seed: int) -> None:
        start.wait()
        try:
            secrets_svc.put(ADMIN, NS, "race", value(random.Random(seed)), cas=1)
            result = "won"
        except VersionConflict:
            result = "conflict"
        with lock:
            outcomes.append(result)

    workers = [threading.Thread(target=writer, args=(200 + i,)) for i in range(6)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert sorted(outcomes) == ["conflict"] * 5 + ["won"]
    assert secrets_svc.metadata(ADMIN, NS, "race").current_version == 2


# --- pruning ------------------------------------------------------------------------------------------------


def test_max_versions_on_put_prunes_the_oldest(secrets_svc: SecretService) -> None:
    rng = random.Random(12)
    values = [value(rng) for _ in range(5)]
    pruned: list[int] = []
    for v in values:
        pruned.extend(secrets_svc.put(ADMIN, NS, "p", v, max_versions=3).pruned_versions)
    assert pruned == [1, 2]
    meta = secrets_svc.metadata(ADMIN, NS, "p")
    assert [v.version for v in meta.versions] == [3, 4, 5]
    for gone in (1, 2):
        with pytest.raises(NotFound):
            secrets_svc.get(ADMIN, NS, "p", gone)
    assert secrets_svc.get(ADMIN, NS, "p", 3).value == values[2]


def test_max_versions_given_on_put_is_remembered(secrets_svc: SecretService) -> None:
    rng = random.Random(39)
    secrets_svc.put(ADMIN, NS, "p", value(rng), max_versions=2)
    assert secrets_svc.metadata(ADMIN, NS, "p").max_versions == 2
    for _ in range(3):
        secrets_svc.put(ADMIN, NS, "p", value(rng))
    assert [v.version for v in secrets_svc.metadata(ADMIN, NS, "p").versions] == [3, 4]


def test_service_default_max_versions_applies(
    store: SqliteStore, keyring: LocalKeyring, clock: ManualClock
) -> None:
    svc = SecretService(store, keyring, clock, AdminPolicyOnly(), default_max_versions=2)
    rng = random.Random(13)
    results = [svc.put(ADMIN, NS, "p", value(rng)) for _ in range(4)]
    assert [list(r.pruned_versions) for r in results] == [[], [], [1], [2]]
    meta = svc.metadata(ADMIN, NS, "p")
    assert [v.version for v in meta.versions] == [3, 4]
    assert meta.max_versions == 2


def test_stored_max_versions_setting_is_used_by_later_puts(secrets_svc: SecretService) -> None:
    rng = random.Random(14)
    secrets_svc.put(ADMIN, NS, "p", value(rng))
    secrets_svc.update_metadata(ADMIN, NS, "p", max_versions=2)
    for _ in range(3):
        secrets_svc.put(ADMIN, NS, "p", value(rng))
    meta = secrets_svc.metadata(ADMIN, NS, "p")
    assert meta.max_versions == 2
    assert [v.version for v in meta.versions] == [3, 4]


def test_lowering_max_versions_prunes_at_once(secrets_svc: SecretService) -> None:
    rng = random.Random(15)
    for _ in range(5):
        secrets_svc.put(ADMIN, NS, "p", value(rng))
    meta = secrets_svc.update_metadata(ADMIN, NS, "p", max_versions=1)
    assert [v.version for v in meta.versions] == [5]
    assert meta.current_version == 5


@pytest.mark.parametrize("bad", [-1, limits.MAX_MAX_VERSIONS + 1])
def test_max_versions_out_of_range_is_refused(secrets_svc: SecretService, bad: int) -> None:
    with pytest.raises(LimitExceeded, match="MAX_MAX_VERSIONS"):
        secrets_svc.put(ADMIN, NS, "p", value(random.Random(16)), max_versions=bad)
    secrets_svc.put(ADMIN, NS, "p", value(random.Random(17)))
    with pytest.raises(LimitExceeded, match="MAX_MAX_VERSIONS"):
        secrets_svc.update_metadata(ADMIN, NS, "p", max_versions=bad)
    assert secrets_svc.metadata(ADMIN, NS, "p").current_version == 1


# --- delete, undelete, destroy -----------------------------------------------------------------------------


def test_deleted_version_is_unavailable_until_undeleted(secrets_svc: SecretService) -> None:
    rng = random.Random(18)
    first, second = value(rng), value(rng)
    secrets_svc.put(ADMIN, NS, "p", first)
    secrets_svc.put(ADMIN, NS, "p", second)
    assert secrets_svc.delete_versions(ADMIN, NS, "p", [1]) == [1]
    with pytest.raises(VersionUnavailable, match="deleted") as info:
        secrets_svc.get(ADMIN, NS, "p", 1)
    assert first.reveal().hex() not in str(info.value)
    assert secrets_svc.get(ADMIN, NS, "p").value == second  # the current version is untouched
    assert secrets_svc.undelete_versions(ADMIN, NS, "p", [1]) == [1]
    assert secrets_svc.get(ADMIN, NS, "p", 1).value == first


def test_delete_without_versions_deletes_the_current_one(secrets_svc: SecretService) -> None:
    rng = random.Random(19)
    secrets_svc.put(ADMIN, NS, "p", value(rng))
    secrets_svc.put(ADMIN, NS, "p", value(rng))
    assert secrets_svc.delete_versions(ADMIN, NS, "p", []) == [2]
    with pytest.raises(VersionUnavailable):
        secrets_svc.get(ADMIN, NS, "p")
    states = {v.version: v.state for v in secrets_svc.metadata(ADMIN, NS, "p").versions}
    assert states == {1: VersionState.ACTIVE, 2: VersionState.DELETED}


def test_delete_twice_changes_nothing_the_second_time(secrets_svc: SecretService) -> None:
    secrets_svc.put(ADMIN, NS, "p", value(random.Random(20)))
    assert secrets_svc.delete_versions(ADMIN, NS, "p", [1]) == [1]
    assert secrets_svc.delete_versions(ADMIN, NS, "p", [1]) == []
    assert secrets_svc.undelete_versions(ADMIN, NS, "p", [1]) == [1]
    assert secrets_svc.undelete_versions(ADMIN, NS, "p", [1]) == []


def test_destroyed_version_is_unavailable_for_good(secrets_svc: SecretService) -> None:
    rng = random.Random(21)
    secrets_svc.put(ADMIN, NS, "p", value(rng))
    secrets_svc.put(ADMIN, NS, "p", value(rng))
    assert secrets_svc.destroy_versions(ADMIN, NS, "p", [1]) == [1]
    with pytest.raises(VersionUnavailable, match="destroyed"):
        secrets_svc.get(ADMIN, NS, "p", 1)
    assert secrets_svc.undelete_versions(ADMIN, NS, "p", [1]) == []
    with pytest.raises(VersionUnavailable, match="destroyed"):
        secrets_svc.get(ADMIN, NS, "p", 1)
    assert secrets_svc.destroy_versions(ADMIN, NS, "p", [1]) == []


def test_destroying_a_deleted_version_makes_it_unrecoverable(secrets_svc: SecretService) -> None:
    secrets_svc.put(ADMIN, NS, "p", value(random.Random(22)))
    secrets_svc.delete_versions(ADMIN, NS, "p", [1])
    assert secrets_svc.destroy_versions(ADMIN, NS, "p", [1]) == [1]
    assert secrets_svc.undelete_versions(ADMIN, NS, "p", [1]) == []
    with pytest.raises(VersionUnavailable, match="destroyed"):
        secrets_svc.get(ADMIN, NS, "p", 1)


def test_version_unavailable_is_a_failed_precondition(secrets_svc: SecretService) -> None:
    secrets_svc.put(ADMIN, NS, "p", value(random.Random(23)))
    secrets_svc.delete_versions(ADMIN, NS, "p", [1])
    with pytest.raises(FailedPrecondition):
        secrets_svc.get(ADMIN, NS, "p", 1)


def test_lifecycle_calls_check_version_numbers(secrets_svc: SecretService) -> None:
    secrets_svc.put(ADMIN, NS, "p", value(random.Random(24)))
    for call in (secrets_svc.delete_versions, secrets_svc.undelete_versions, secrets_svc.destroy_versions):
        for bad in (0, limits.MAX_VERSION_NUMBER + 1, 2**64 - 1):
            with pytest.raises(InvalidArgument, match="MAX_VERSION_NUMBER"):
                call(ADMIN, NS, "p", [bad])
        with pytest.raises(LimitExceeded, match="MAX_VERSIONS_PER_REQUEST"):
            call(ADMIN, NS, "p", list(range(1, limits.MAX_VERSIONS_PER_REQUEST + 2)))
    assert secrets_svc.get(ADMIN, NS, "p").version == 1


def test_lifecycle_calls_on_unknown_secret_raise_not_found(secrets_svc: SecretService) -> None:
    for call in (secrets_svc.delete_versions, secrets_svc.undelete_versions, secrets_svc.destroy_versions):
        with pytest.raises(NotFound):
            call(ADMIN, NS, "missing", [])
        with pytest.raises(NotFound):
            call(ADMIN, NS, "missing", [1])


def test_unknown_secret_and_unknown_version_raise_not_found(secrets_svc: SecretService) -> None:
    with pytest.raises(NotFound):
        secrets_svc.get(ADMIN, NS, "missing")
    with pytest.raises(NotFound):
        secrets_svc.get(ADMIN, NS, "missing", 1)
    secrets_svc.put(ADMIN, NS, "p", value(random.Random(25)))
    with pytest.raises(NotFound):
        secrets_svc.get(ADMIN, NS, "p", 2)
    with pytest.raises(NotFound):
        secrets_svc.get(ADMIN, "other-ns", "p")


@pytest.mark.parametrize("bad", [0, -1, limits.MAX_VERSION_NUMBER + 1, 2**64 - 1])
def test_get_version_out_of_range_is_invalid(secrets_svc: SecretService, bad: int) -> None:
    with pytest.raises(InvalidArgument, match="MAX_VERSION_NUMBER"):
        secrets_svc.get(ADMIN, NS, "p", bad)


def test_delete_secret_removes_every_version(secrets_svc: SecretService) -> None:
    rng = random.Random(26)
    secrets_svc.put(ADMIN, NS, "p", value(rng))
    secrets_svc.put(ADMIN, NS, "p", value(rng))
    assert secrets_svc.delete_secret(ADMIN, NS, "p") is True
    with pytest.raises(NotFound):
        secrets_svc.get(ADMIN, NS, "p", 1)
    with pytest.raises(NotFound):
        secrets_svc.metadata(ADMIN, NS, "p")
    assert secrets_svc.list_paths(ADMIN, NS).paths == []
    assert secrets_svc.delete_secret(ADMIN, NS, "p") is False
    # The path starts over at version 1.
    assert secrets_svc.put(ADMIN, NS, "p", value(rng), cas=0).version == 1


# --- list ---------------------------------------------------------------------------------------------------


def test_list_filters_by_prefix(secrets_svc: SecretService) -> None:
    rng = random.Random(27)
    for path in ("app/db", "app/api/key", "apple", "b/app", "app"):
        secrets_svc.put(ADMIN, NS, path, value(rng, 8))
    secrets_svc.put(ADMIN, "other", "app/x", value(rng, 8))
    assert list(secrets_svc.list_paths(ADMIN, NS).paths) == ["app", "app/api/key", "app/db", "apple", "b/app"]
    assert list(secrets_svc.list_paths(ADMIN, NS, "app/").paths) == ["app/api/key", "app/db"]
    assert list(secrets_svc.list_paths(ADMIN, NS, "app").paths) == ["app", "app/api/key", "app/db", "apple"]
    assert list(secrets_svc.list_paths(ADMIN, NS, "app/a").paths) == ["app/api/key"]
    assert list(secrets_svc.list_paths(ADMIN, NS, "zzz").paths) == []
    assert list(secrets_svc.list_paths(ADMIN, "nobody").paths) == []


def test_list_pages_through_many_paths(secrets_svc: SecretService) -> None:
    rng = random.Random(28)
    expected = sorted(f"svc/{i:03d}" for i in range(57))
    for path in rng.sample(expected, len(expected)):
        secrets_svc.put(ADMIN, NS, path, value(rng, 4))
    secrets_svc.put(ADMIN, NS, "zzz/outside", value(rng, 4))
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = secrets_svc.list_paths(ADMIN, NS, "svc/", page_size=10, page_token=token)
        assert len(page.paths) <= 10
        seen.extend(page.paths)
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert seen == expected
    assert pages == 6


def test_list_default_page_size_applies(secrets_svc: SecretService) -> None:
    rng = random.Random(29)
    for i in range(limits.DEFAULT_PAGE_SIZE + 1):
        secrets_svc.put(ADMIN, NS, f"k{i:04d}", value(rng, 1))
    page = secrets_svc.list_paths(ADMIN, NS)
    assert len(page.paths) == limits.DEFAULT_PAGE_SIZE
    assert page.next_page_token
    rest = secrets_svc.list_paths(ADMIN, NS, page_token=page.next_page_token)
    assert list(rest.paths) == [f"k{limits.DEFAULT_PAGE_SIZE:04d}"]
    assert rest.next_page_token == ""


@pytest.mark.parametrize("bad", [-1, limits.MAX_PAGE_SIZE + 1])
def test_list_page_size_bounds(secrets_svc: SecretService, bad: int) -> None:
    with pytest.raises(LimitExceeded, match="MAX_PAGE_SIZE"):
        secrets_svc.list_paths(ADMIN, NS, page_size=bad)


@pytest.mark.parametrize("token", ["garbage", "p1.!!", "p1." + "A" * 5000])
def test_list_malformed_page_token_is_invalid(secrets_svc: SecretService, token: str) -> None:
    with pytest.raises(InvalidArgument, match="page token"):
        secrets_svc.list_paths(ADMIN, NS, page_token=token)


def test_list_page_token_from_another_prefix_is_refused(secrets_svc: SecretService) -> None:
    rng = random.Random(30)
    for i in range(3):
        secrets_svc.put(ADMIN, NS, f"a/{i}", value(rng, 1))
    token = secrets_svc.list_paths(ADMIN, NS, "a/", page_size=1).next_page_token
    assert token
    with pytest.raises(InvalidArgument, match="page token"):
        secrets_svc.list_paths(ADMIN, NS, "b/", page_size=1, page_token=token)


@pytest.mark.parametrize("prefix", ["a//", "/a", "../", "a/../", "a b", "a\\b"])
def test_list_refuses_malformed_prefixes(secrets_svc: SecretService, prefix: str) -> None:
    with pytest.raises(InvalidArgument):
        secrets_svc.list_paths(ADMIN, NS, prefix)


# --- metadata -----------------------------------------------------------------------------------------------


def test_metadata_reports_versions_and_times(secrets_svc: SecretService, clock: ManualClock) -> None:
    rng = random.Random(31)
    created = clock.now
    secrets_svc.put(ADMIN, NS, "p", value(rng), custom_metadata={"owner": "payments", "rotation": "90d"})
    clock.advance(10)
    secrets_svc.put(ADMIN, NS, "p", value(rng))
    clock.advance(5)
    secrets_svc.delete_versions(ADMIN, NS, "p", [1])
    meta = secrets_svc.metadata(ADMIN, NS, "p")
    # A secret without its own setting reports the service default it is held to.
    assert (meta.namespace, meta.path, meta.current_version) == (NS, "p", 2)
    assert meta.max_versions == limits.DEFAULT_MAX_VERSIONS
    assert meta.created_at == created
    assert meta.updated_at == clock.now
    assert dict(meta.custom_metadata) == {"owner": "payments", "rotation": "90d"}
    v1, v2 = meta.versions
    assert (v1.version, v1.state, v1.created_at, v1.deleted_at) == (1, VersionState.DELETED, created, clock.now)
    assert (v2.version, v2.state, v2.created_at, v2.deleted_at) == (2, VersionState.ACTIVE, created + 10, None)


def test_put_without_custom_metadata_keeps_it(secrets_svc: SecretService) -> None:
    rng = random.Random(32)
    secrets_svc.put(ADMIN, NS, "p", value(rng), custom_metadata={"a": "1"})
    secrets_svc.put(ADMIN, NS, "p", value(rng))
    assert dict(secrets_svc.metadata(ADMIN, NS, "p").custom_metadata) == {"a": "1"}
    secrets_svc.put(ADMIN, NS, "p", value(rng), custom_metadata={"b": "2"})
    assert dict(secrets_svc.metadata(ADMIN, NS, "p").custom_metadata) == {"b": "2"}


def test_update_metadata_replaces_custom_metadata(secrets_svc: SecretService, clock: ManualClock) -> None:
    secrets_svc.put(ADMIN, NS, "p", value(random.Random(33)), custom_metadata={"a": "1"})
    clock.advance(3)
    meta = secrets_svc.update_metadata(ADMIN, NS, "p", custom_metadata={"b": "2"})
    assert dict(meta.custom_metadata) == {"b": "2"}
    assert meta.updated_at == clock.now
    assert meta.max_versions == limits.DEFAULT_MAX_VERSIONS
    cleared = secrets_svc.update_metadata(ADMIN, NS, "p", custom_metadata={})
    assert dict(cleared.custom_metadata) == {}


def test_update_metadata_without_changes_leaves_settings(secrets_svc: SecretService) -> None:
    secrets_svc.put(ADMIN, NS, "p", value(random.Random(34)), custom_metadata={"a": "1"})
    secrets_svc.update_metadata(ADMIN, NS, "p", max_versions=4)
    meta = secrets_svc.update_metadata(ADMIN, NS, "p")
    assert meta.max_versions == 4
    assert dict(meta.custom_metadata) == {"a": "1"}


def test_update_metadata_of_unknown_secret_is_not_found(secrets_svc: SecretService) -> None:
    with pytest.raises(NotFound):
        secrets_svc.update_metadata(ADMIN, NS, "missing", max_versions=3)
    with pytest.raises(NotFound):
        secrets_svc.metadata(ADMIN, NS, "missing")


# --- value and metadata limits ------------------------------------------------------------------------------


def test_value_at_the_limit_is_accepted(secrets_svc: SecretService) -> None:
    big = SecretBytes(random.Random(35).randbytes(limits.MAX_SECRET_VALUE_BYTES))
    secrets_svc.put(ADMIN, NS, "big", big)
    assert secrets_svc.get(ADMIN, NS, "big").value == big


def test_oversized_value_names_the_limit_and_writes_nothing(secrets_svc: SecretService) -> None:
    too_big = SecretBytes(bytes(limits.MAX_SECRET_VALUE_BYTES + 1))
    with pytest.raises(LimitExceeded, match=f"MAX_SECRET_VALUE_BYTES={limits.MAX_SECRET_VALUE_BYTES}"):
        secrets_svc.put(ADMIN, NS, "big", too_big)
    with pytest.raises(NotFound):
        secrets_svc.metadata(ADMIN, NS, "big")


def _entries(n: int) -> dict[str, str]:
    return {f"k{i}": "v" for i in range(n)}


@pytest.mark.parametrize(
    ("metadata", "error", "limit_name"),
    [
        (_entries(limits.MAX_CUSTOM_METADATA_ENTRIES + 1), LimitExceeded, "MAX_CUSTOM_METADATA_ENTRIES"),
        ({"": "v"}, LimitExceeded, "MAX_CUSTOM_METADATA_KEY_BYTES"),
        ({"k" * (limits.MAX_CUSTOM_METADATA_KEY_BYTES + 1): "v"}, LimitExceeded, "MAX_CUSTOM_METADATA_KEY_BYTES"),
        # Multi-byte characters count in bytes, not characters.
        ({"é" * (limits.MAX_CUSTOM_METADATA_KEY_BYTES // 2 + 1): "v"}, LimitExceeded,
         "MAX_CUSTOM_METADATA_KEY_BYTES"),
        ({"k": "v" * (limits.MAX_CUSTOM_METADATA_VALUE_BYTES + 1)}, LimitExceeded,
         "MAX_CUSTOM_METADATA_VALUE_BYTES"),
        ({"k\n": "v"}, InvalidArgument, "control characters"),
        ({"k": "line\nforged"}, InvalidArgument, "control characters"),
        ({"k": "nul\x00"}, InvalidArgument, "control characters"),
        ({"k": "esc\x1b[31m"}, InvalidArgument, "control characters"),
    ],
)
def test_custom_metadata_limits(
    secrets_svc: SecretService, metadata: dict[str, str], error: type[InvalidArgument], limit_name: str
) -> None:
    with pytest.raises(error, match=limit_name.replace("[", r"\[")):
        secrets_svc.put(ADMIN, NS, "p", value(random.Random(36)), custom_metadata=metadata)
    with pytest.raises(NotFound):
        secrets_svc.metadata(ADMIN, NS, "p")
    secrets_svc.put(ADMIN, NS, "p", value(random.Random(37)), custom_metadata={"kept": "yes"})
    with pytest.raises(error, match=limit_name):
        secrets_svc.update_metadata(ADMIN, NS, "p", custom_metadata=metadata)
    assert dict(secrets_svc.metadata(ADMIN, NS, "p").custom_metadata) == {"kept": "yes"}


def test_custom_metadata_at_the_limits_is_accepted(secrets_svc: SecretService) -> None:
    metadata = {
        f"{i:03d}" + "k" * (limits.MAX_CUSTOM_METADATA_KEY_BYTES - 3): "v" * limits.MAX_CUSTOM_METADATA_VALUE_BYTES
        for i in range(limits.MAX_CUSTOM_METADATA_ENTRIES)
    }
    secrets_svc.put(ADMIN, NS, "p", value(random.Random(38)), custom_metadata=metadata)
    assert dict(secrets_svc.metadata(ADMIN, NS, "p").custom_metadata) == metadata
