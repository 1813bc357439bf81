"""`TransitService`: encryption as a service on named keys, over a real store and keyring."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from secretsvc.crypto.envelope import parse_header
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.errors import (
    AlreadyExists,
    DecryptionFailed,
    FailedPrecondition,
    InvalidArgument,
    LimitExceeded,
    NotFound,
)
from secretsvc.kek.local import LocalKeyring
from secretsvc.service import limits
from secretsvc.service.access import AdminPolicyOnly
from secretsvc.service.transit import (
    KEY_CACHE_TTL_SECONDS,
    KEY_REFRESH_MIN_SECONDS,
    TransitService,
    transit_key_id,
)
from secretsvc.store.base import SecretStore
from secretsvc.store.sqlite import SqliteStore
from tests.unit.service.support import ADMIN, ManualClock


def _plain(seed: int, size: int = 64) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.fixture
def keyed(transit: TransitService) -> TransitService:
    transit.create_key(ADMIN, "orders")
    return transit


# --- keys ---------------------------------------------------------------------------------------------------


def test_create_key_starts_at_version_one(transit: TransitService, clock: ManualClock) -> None:
    record = transit.create_key(ADMIN, "orders")
    assert record.name == "orders"
    assert record.latest_version == 1
    assert record.min_decryption_version == 1
    assert record.created_at == clock.now
    assert transit.key_info(ADMIN, "orders").latest_version == 1
    assert transit.list_keys(ADMIN) == ["orders"]


def test_create_key_twice_already_exists(keyed: TransitService) -> None:
    with pytest.raises(AlreadyExists):
        keyed.create_key(ADMIN, "orders")


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a b", "a\x00", "k" * (limits.MAX_KEY_NAME_BYTES + 1)])
def test_bad_key_names_are_invalid(transit: TransitService, name: str) -> None:
    with pytest.raises(InvalidArgument):
        transit.create_key(ADMIN, name)
    with pytest.raises(InvalidArgument):
        transit.encrypt(ADMIN, name, b"x")
    with pytest.raises(InvalidArgument):
        transit.decrypt(ADMIN, name, b"x")
    assert transit.list_keys(ADMIN) == []


def test_unknown_key_is_not_found(transit: TransitService) -> None:
    with pytest.raises(NotFound):
        transit.encrypt(ADMIN, "missing", b"x")
    with pytest.raises(NotFound):
        transit.key_info(ADMIN, "missing")
    with pytest.raises(NotFound):
        transit.rotate_key(ADMIN, "missing")


def test_stored_key_material_is_sealed_under_the_root_key(
    keyed: TransitService, store: SqliteStore, keyring: LocalKeyring
) -> None:
    record = store.read_transit_key("orders")
    assert record is not None
    header = parse_header(record.versions[0].wrapped_material)
    assert (header.key_id, header.key_version) == (keyring.key_id, 1)


# --- encrypt / decrypt ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("aad", [b"", b"tenant=42", bytes(limits.MAX_ASSOCIATED_DATA_BYTES)])
def test_round_trip(keyed: TransitService, aad: bytes) -> None:
    plaintext = _plain(1)
    sealed = keyed.encrypt(ADMIN, "orders", plaintext, aad)
    assert sealed.key_version == 1
    assert plaintext not in sealed.ciphertext
    header = parse_header(sealed.ciphertext)
    assert (header.key_id, header.key_version) == (transit_key_id("orders"), 1)
    opened = keyed.decrypt(ADMIN, "orders", sealed.ciphertext, aad)
    assert isinstance(opened, SecretBytes)
    assert opened.reveal() == plaintext


def test_round_trip_of_secret_bytes_and_empty_plaintext(keyed: TransitService) -> None:
    for plaintext in (SecretBytes(_plain(2)), SecretBytes(b""), b""):
        sealed = keyed.encrypt(ADMIN, "orders", plaintext)
        raw = plaintext.reveal() if isinstance(plaintext, SecretBytes) else plaintext
        assert keyed.decrypt(ADMIN, "orders", sealed.ciphertext).reveal() == raw


def test_each_encryption_is_fresh(keyed: TransitService) -> None:
    plaintext = _plain(3)
    assert keyed.encrypt(ADMIN, "orders", plaintext).ciphertext != keyed.encrypt(ADMIN, "orders", plaintext).ciphertext


@pytest.mark.parametrize(("sealed_with", "opened_with"), [(b"", b"x"), (b"x", b""), (b"tenant=1", b"tenant=2")])
def test_wrong_associated_data_fails(keyed: TransitService, sealed_with: bytes, opened_with: bytes) -> None:
    sealed = keyed.encrypt(ADMIN, "orders", _plain(4), sealed_with)
    with pytest.raises(DecryptionFailed) as info:
        keyed.decrypt(ADMIN, "orders", sealed.ciphertext, opened_with)
    assert str(info.value) == "decryption failed"


def test_ciphertext_of_one_key_fails_under_another(keyed: TransitService) -> None:
    keyed.create_key(ADMIN, "billing")
    sealed = keyed.encrypt(ADMIN, "orders", _plain(5))
    with pytest.raises(DecryptionFailed):
        keyed.decrypt(ADMIN, "billing", sealed.ciphertext)
    with pytest.raises(DecryptionFailed):
        keyed.rewrap(ADMIN, "billing", sealed.ciphertext)


def test_ciphertext_of_a_same_named_key_elsewhere_fails(
    keyed: TransitService, tmp_path_factory: pytest.TempPathFactory, keyring: LocalKeyring, clock: ManualClock
) -> None:
    other_dir = tmp_path_factory.mktemp("other")
    other_store = SqliteStore(other_dir / "db")
    try:
        other = TransitService(other_store, keyring, clock, AdminPolicyOnly())
        other.create_key(ADMIN, "orders")
        sealed = other.encrypt(ADMIN, "orders", _plain(6))
        with pytest.raises(DecryptionFailed):
            keyed.decrypt(ADMIN, "orders", sealed.ciphertext)
    finally:
        other_store.close()


def _malformed_headers(keyed: TransitService) -> list[bytes]:
    good = keyed.encrypt(ADMIN, "orders", _plain(7)).ciphertext
    rng = random.Random(8)
    forged_version = bytearray(good)
    id_len = forged_version[1]
    forged_version[2 + id_len : 2 + id_len + 4] = (99).to_bytes(4, "big")  # an unknown key version
    in_wrapped_key = bytearray(good)
    in_wrapped_key[2 + id_len + 6 + 3] ^= 0x10
    return [
        b"",
        b"\x01",
        good[:10],
        good[:40],
        rng.randbytes(16),
        rng.randbytes(200),
        b"\x01" + rng.randbytes(199),
        bytes(forged_version),
        bytes(in_wrapped_key),
        b"\x02" + good[1:],  # unknown format version
    ]


def _damaged_payloads(keyed: TransitService) -> list[bytes]:
    good = keyed.encrypt(ADMIN, "orders", _plain(7)).ciphertext
    flipped = bytearray(good)
    flipped[-20] ^= 0x10
    return [good[:-1], good + b"\x00", bytes(flipped)]


def test_malformed_ciphertexts_fail_uniformly(keyed: TransitService) -> None:
    for bad in _malformed_headers(keyed) + _damaged_payloads(keyed):
        with pytest.raises(DecryptionFailed) as info:
            keyed.decrypt(ADMIN, "orders", bad)
        assert str(info.value) == "decryption failed"


def test_rewrap_refuses_malformed_headers(keyed: TransitService) -> None:
    keyed.rotate_key(ADMIN, "orders")
    for bad in _malformed_headers(keyed):
        with pytest.raises(DecryptionFailed):
            keyed.rewrap(ADMIN, "orders", bad)


@pytest.mark.parametrize("rotate", [False, True])
def test_rewrap_refuses_damaged_payloads(keyed: TransitService, rotate: bool) -> None:
    damaged = _damaged_payloads(keyed)
    if rotate:
        keyed.rotate_key(ADMIN, "orders")
    for bad in damaged:
        with pytest.raises(DecryptionFailed):
            keyed.rewrap(ADMIN, "orders", bad)


@pytest.mark.parametrize(
    ("plain_len", "aad_len", "limit"),
    [
        (limits.MAX_TRANSIT_PLAINTEXT_BYTES + 1, 0, "MAX_TRANSIT_PLAINTEXT_BYTES"),
        (0, limits.MAX_ASSOCIATED_DATA_BYTES + 1, "MAX_ASSOCIATED_DATA_BYTES"),
    ],
)
def test_size_limits_are_named(keyed: TransitService, plain_len: int, aad_len: int, limit: str) -> None:
    with pytest.raises(LimitExceeded, match=limit):
        keyed.encrypt(ADMIN, "orders", bytes(plain_len), bytes(aad_len))


def test_associated_data_limit_applies_to_decrypt_and_rewrap(keyed: TransitService) -> None:
    sealed = keyed.encrypt(ADMIN, "orders", b"x")
    too_long = bytes(limits.MAX_ASSOCIATED_DATA_BYTES + 1)
    with pytest.raises(LimitExceeded, match="MAX_ASSOCIATED_DATA_BYTES"):
        keyed.decrypt(ADMIN, "orders", sealed.ciphertext, too_long)
    with pytest.raises(LimitExceeded, match="MAX_ASSOCIATED_DATA_BYTES"):
        keyed.rewrap(ADMIN, "orders", sealed.ciphertext, too_long)


def test_plaintext_at_the_limit_round_trips(keyed: TransitService) -> None:
    plaintext = bytes(limits.MAX_TRANSIT_PLAINTEXT_BYTES)
    sealed = keyed.encrypt(ADMIN, "orders", plaintext)
    assert keyed.decrypt(ADMIN, "orders", sealed.ciphertext).reveal() == plaintext


# --- rotation ------------------------------------------------------------------------------------------------


def test_rotation_moves_new_ciphertexts_to_the_new_version(keyed: TransitService, clock: ManualClock) -> None:
    old_plain = _plain(9)
    old = keyed.encrypt(ADMIN, "orders", old_plain, b"aad")
    clock.advance(1)
    record = keyed.rotate_key(ADMIN, "orders")
    assert record.latest_version == 2
    assert [v.version for v in record.versions] == [1, 2]
    new = keyed.encrypt(ADMIN, "orders", _plain(10), b"aad")
    assert new.key_version == 2
    assert parse_header(new.ciphertext).key_version == 2
    assert keyed.decrypt(ADMIN, "orders", old.ciphertext, b"aad").reveal() == old_plain
    assert keyed.decrypt(ADMIN, "orders", new.ciphertext, b"aad").reveal() == _plain(10)


def test_min_decryption_version_retires_old_ciphertexts(keyed: TransitService) -> None:
    v1 = keyed.encrypt(ADMIN, "orders", _plain(11))
    keyed.rotate_key(ADMIN, "orders")
    v2 = keyed.encrypt(ADMIN, "orders", _plain(12))
    record = keyed.set_min_decryption_version(ADMIN, "orders", 2)
    assert record.min_decryption_version == 2
    with pytest.raises(FailedPrecondition, match="min_decryption_version") as info:
        keyed.decrypt(ADMIN, "orders", v1.ciphertext)
    assert not isinstance(info.value, DecryptionFailed)
    with pytest.raises(FailedPrecondition):
        keyed.rewrap(ADMIN, "orders", v1.ciphertext)
    assert keyed.decrypt(ADMIN, "orders", v2.ciphertext).reveal() == _plain(12)
    # Lowering it again re-admits the old version.
    keyed.set_min_decryption_version(ADMIN, "orders", 1)
    assert keyed.decrypt(ADMIN, "orders", v1.ciphertext).reveal() == _plain(11)


@pytest.mark.parametrize("bad", [0, -1, 3])
def test_min_decryption_version_bounds(keyed: TransitService, bad: int) -> None:
    keyed.rotate_key(ADMIN, "orders")
    with pytest.raises(InvalidArgument, match="between 1 and the latest version"):
        keyed.set_min_decryption_version(ADMIN, "orders", bad)
    assert keyed.key_info(ADMIN, "orders").min_decryption_version == 1


def test_min_decryption_version_of_unknown_key_is_not_found(transit: TransitService) -> None:
    with pytest.raises(NotFound):
        transit.set_min_decryption_version(ADMIN, "missing", 1)


def test_rewrap_moves_to_the_newest_version(keyed: TransitService) -> None:
    plaintext = _plain(13)
    old = keyed.encrypt(ADMIN, "orders", plaintext, b"ctx")
    keyed.rotate_key(ADMIN, "orders")
    keyed.rotate_key(ADMIN, "orders")
    moved = keyed.rewrap(ADMIN, "orders", old.ciphertext, b"ctx")
    assert moved.key_version == 3
    assert parse_header(moved.ciphertext).key_version == 3
    assert moved.ciphertext != old.ciphertext
    assert keyed.decrypt(ADMIN, "orders", moved.ciphertext, b"ctx").reveal() == plaintext
    # Once moved, the oldest versions can be retired without losing the data.
    keyed.set_min_decryption_version(ADMIN, "orders", 3)
    assert keyed.decrypt(ADMIN, "orders", moved.ciphertext, b"ctx").reveal() == plaintext


def test_rewrap_needs_the_right_associated_data(keyed: TransitService) -> None:
    old = keyed.encrypt(ADMIN, "orders", _plain(14), b"ctx")
    keyed.rotate_key(ADMIN, "orders")
    with pytest.raises(DecryptionFailed):
        keyed.rewrap(ADMIN, "orders", old.ciphertext, b"other")


def test_rewrap_at_the_newest_version_is_unchanged(keyed: TransitService) -> None:
    sealed = keyed.encrypt(ADMIN, "orders", _plain(15))
    again = keyed.rewrap(ADMIN, "orders", sealed.ciphertext)
    assert again.ciphertext == sealed.ciphertext
    assert again.key_version == 1


def test_rotation_survives_a_restart(
    keyed: TransitService, store: SqliteStore, keyring: LocalKeyring, clock: ManualClock
) -> None:
    old = keyed.encrypt(ADMIN, "orders", _plain(16))
    keyed.rotate_key(ADMIN, "orders")
    restarted = TransitService(store, keyring, clock, AdminPolicyOnly())
    assert restarted.encrypt(ADMIN, "orders", b"x").key_version == 2
    assert restarted.decrypt(ADMIN, "orders", old.ciphertext).reveal() == _plain(16)


# --- data keys -----------------------------------------------------------------------------------------------


def test_generate_data_key_with_plaintext(keyed: TransitService) -> None:
    data_key = keyed.generate_data_key(ADMIN, "orders", b"ctx", include_plaintext=True)
    assert data_key.plaintext is not None
    assert len(data_key.plaintext) == 32
    assert data_key.key_version == 1
    assert keyed.decrypt(ADMIN, "orders", data_key.ciphertext, b"ctx") == data_key.plaintext
    assert data_key.plaintext.reveal() not in data_key.ciphertext
    assert data_key.plaintext.reveal().hex() not in repr(data_key)


def test_generate_data_key_without_plaintext(keyed: TransitService) -> None:
    data_key = keyed.generate_data_key(ADMIN, "orders", include_plaintext=False)
    assert data_key.plaintext is None
    assert len(keyed.decrypt(ADMIN, "orders", data_key.ciphertext)) == 32


def test_data_keys_are_distinct(keyed: TransitService) -> None:
    keys = [keyed.generate_data_key(ADMIN, "orders", include_plaintext=True).plaintext for _ in range(5)]
    raw = {k.reveal() for k in keys if k is not None}
    assert len(raw) == 5


def test_generate_data_key_after_rotation_uses_the_new_version(keyed: TransitService) -> None:
    keyed.rotate_key(ADMIN, "orders")
    assert keyed.generate_data_key(ADMIN, "orders", include_plaintext=False).key_version == 2


# --- batches -------------------------------------------------------------------------------------------------


def test_encrypt_batch_reports_a_bad_item_and_seals_the_rest(keyed: TransitService) -> None:
    items = [
        (_plain(20), b"a"),
        (b"x", bytes(limits.MAX_ASSOCIATED_DATA_BYTES + 1)),
        (_plain(21), b""),
    ]
    outcomes = keyed.encrypt_batch(ADMIN, "orders", items)
    assert len(outcomes) == 3
    assert outcomes[1].value is None
    assert isinstance(outcomes[1].error, LimitExceeded)
    for i in (0, 2):
        ok = outcomes[i]
        assert ok.error is None
        assert ok.key_version == 1
        assert isinstance(ok.value, bytes)
        assert keyed.decrypt(ADMIN, "orders", ok.value, items[i][1]).reveal() == items[i][0]


def test_decrypt_batch_reports_a_bad_item_and_opens_the_rest(keyed: TransitService) -> None:
    good = [keyed.encrypt(ADMIN, "orders", _plain(30 + i), b"ctx").ciphertext for i in range(3)]
    keyed.rotate_key(ADMIN, "orders")
    newer = keyed.encrypt(ADMIN, "orders", _plain(40), b"ctx").ciphertext
    items = [(good[0], b"ctx"), (b"\x01broken", b"ctx"), (good[1], b"wrong"), (good[2], b"ctx"), (newer, b"ctx")]
    outcomes = keyed.decrypt_batch(ADMIN, "orders", items)
    assert [o.error is None for o in outcomes] == [True, False, False, True, True]
    assert isinstance(outcomes[1].error, DecryptionFailed)
    assert isinstance(outcomes[2].error, DecryptionFailed)
    assert outcomes[1].value is None
    assert outcomes[2].value is None
    opened = [o.value for o in outcomes]
    assert opened[0] == SecretBytes(_plain(30))
    assert opened[3] == SecretBytes(_plain(32))
    assert opened[4] == SecretBytes(_plain(40))


def test_decrypt_batch_reports_retired_versions_per_item(keyed: TransitService) -> None:
    old = keyed.encrypt(ADMIN, "orders", b"old").ciphertext
    keyed.rotate_key(ADMIN, "orders")
    new = keyed.encrypt(ADMIN, "orders", b"new").ciphertext
    keyed.set_min_decryption_version(ADMIN, "orders", 2)
    outcomes = keyed.decrypt_batch(ADMIN, "orders", [(old, b""), (new, b"")])
    assert isinstance(outcomes[0].error, FailedPrecondition)
    assert outcomes[1].value == SecretBytes(b"new")


def test_empty_batch_is_invalid(keyed: TransitService) -> None:
    with pytest.raises(InvalidArgument, match="at least one"):
        keyed.encrypt_batch(ADMIN, "orders", [])
    with pytest.raises(InvalidArgument, match="at least one"):
        keyed.decrypt_batch(ADMIN, "orders", [])


def test_batch_item_count_limit(keyed: TransitService) -> None:
    at_limit = [(b"x", b"")] * limits.MAX_BATCH_ITEMS
    assert all(o.error is None for o in keyed.encrypt_batch(ADMIN, "orders", at_limit))
    too_many = [*at_limit, (b"x", b"")]
    with pytest.raises(LimitExceeded, match="MAX_BATCH_ITEMS"):
        keyed.encrypt_batch(ADMIN, "orders", too_many)
    with pytest.raises(LimitExceeded, match="MAX_BATCH_ITEMS"):
        keyed.decrypt_batch(ADMIN, "orders", too_many)


def test_batch_total_size_limit(keyed: TransitService) -> None:
    chunk = limits.MAX_BATCH_TOTAL_BYTES // 4
    exactly = [(bytes(chunk), b"")] * 4
    assert all(o.error is None for o in keyed.encrypt_batch(ADMIN, "orders", exactly))
    over = [(bytes(chunk), b"")] * 4 + [(b"", b"x")]  # associated data counts too
    with pytest.raises(LimitExceeded, match="MAX_BATCH_TOTAL_BYTES"):
        keyed.encrypt_batch(ADMIN, "orders", over)
    with pytest.raises(LimitExceeded, match="MAX_BATCH_TOTAL_BYTES"):
        keyed.decrypt_batch(ADMIN, "orders", over)


def test_batch_on_unknown_key_fails_whole(transit: TransitService) -> None:
    with pytest.raises(NotFound):
        transit.encrypt_batch(ADMIN, "missing", [(b"x", b"")])


# --- replicas and the key cache --------------------------------------------------------------------------------


def test_another_replica_sees_a_rotation_when_it_meets_a_newer_ciphertext(
    keyed: TransitService, store: SqliteStore, keyring: LocalKeyring, clock: ManualClock,
    open_replica: Callable[[], SecretStore],
) -> None:
    replica_store = open_replica()
    try:
        replica = TransitService(replica_store, keyring, clock, AdminPolicyOnly())
        old = replica.encrypt(ADMIN, "orders", b"before")  # warms the replica's cache at version 1
        clock.advance(KEY_REFRESH_MIN_SECONDS)  # the rotation comes a moment after the replica loaded the key
        keyed.rotate_key(ADMIN, "orders")
        newer = keyed.encrypt(ADMIN, "orders", b"after")
        assert newer.key_version == 2
        # Within the cache TTL the replica still knows only version 1, yet opens the newer ciphertext.
        assert replica.decrypt(ADMIN, "orders", newer.ciphertext).reveal() == b"after"
        assert replica.decrypt(ADMIN, "orders", old.ciphertext).reveal() == b"before"
        assert replica.encrypt(ADMIN, "orders", b"x").key_version == 2
    finally:
        replica_store.close()


def test_a_replica_encrypts_with_the_new_version_after_the_ttl(
    keyed: TransitService, store: SqliteStore, keyring: LocalKeyring, clock: ManualClock,
    open_replica: Callable[[], SecretStore],
) -> None:
    replica_store = open_replica()
    try:
        replica = TransitService(replica_store, keyring, clock, AdminPolicyOnly())
        assert replica.encrypt(ADMIN, "orders", b"x").key_version == 1
        keyed.rotate_key(ADMIN, "orders")
        # A cached key may lag a rotation elsewhere, but only for the TTL.
        assert replica.encrypt(ADMIN, "orders", b"x").key_version == 1
        clock.advance(KEY_CACHE_TTL_SECONDS)
        assert replica.encrypt(ADMIN, "orders", b"x").key_version == 2
    finally:
        replica_store.close()


def test_a_replica_sees_a_raised_min_decryption_version_after_the_ttl(
    keyed: TransitService, store: SqliteStore, keyring: LocalKeyring, clock: ManualClock,
    open_replica: Callable[[], SecretStore],
) -> None:
    replica_store = open_replica()
    try:
        replica = TransitService(replica_store, keyring, clock, AdminPolicyOnly())
        old = replica.encrypt(ADMIN, "orders", b"x").ciphertext
        keyed.rotate_key(ADMIN, "orders")
        keyed.set_min_decryption_version(ADMIN, "orders", 2)
        clock.advance(KEY_CACHE_TTL_SECONDS)
        with pytest.raises(FailedPrecondition):
            replica.decrypt(ADMIN, "orders", old)
    finally:
        replica_store.close()


def test_concurrent_rotations_on_two_replicas_both_land(
    keyed: TransitService, store: SqliteStore, keyring: LocalKeyring, clock: ManualClock,
    open_replica: Callable[[], SecretStore],
) -> None:
    replica_store = open_replica()
    try:
        replica = TransitService(replica_store, keyring, clock, AdminPolicyOnly())
        assert keyed.rotate_key(ADMIN, "orders").latest_version == 2
        assert replica.rotate_key(ADMIN, "orders").latest_version == 3
        assert keyed.encrypt(ADMIN, "orders", b"x").key_version == 3
    finally:
        replica_store.close()

