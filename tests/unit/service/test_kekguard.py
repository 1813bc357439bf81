"""The start-up check that the keyring holds every key version that wraps stored data."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.errors import KeyringError
from secretsvc.kek.local import LocalKeyring
from secretsvc.service import kekguard
from secretsvc.service.rootkey import RootKeyService
from secretsvc.service.secrets import SecretService
from secretsvc.service.transit import TransitService
from secretsvc.store.sqlite import SqliteStore
from tests.unit.service.support import ADMIN, ManualClock


def test_an_empty_database_needs_nothing(store: SqliteStore, keyring: LocalKeyring) -> None:
    assert kekguard.recorded_kek_versions(store, now=0.0) == []
    kekguard.refuse_missing_keyring([], "/data/keyring.json", "/data/secretsvc.db")
    kekguard.check_keyring_opens([], keyring, "/data/keyring.json", "/data/secretsvc.db")


def test_a_database_without_a_record_is_backfilled_from_envelope_headers(
    store: SqliteStore, keyring: LocalKeyring, secrets_svc: SecretService, transit: TransitService,
) -> None:
    secrets_svc.put(ADMIN, "ns", "a", SecretBytes(random.Random(1).randbytes(16)))
    transit.create_key(ADMIN, "orders")
    keyring.rotate()  # not through RootKeyService: nothing recorded, as in a database from before the record
    secrets_svc.put(ADMIN, "ns", "b", SecretBytes(b"v"))
    assert store.kek_versions() == []
    expected = [(keyring.key_id, 1), (keyring.key_id, 2)]
    assert kekguard.recorded_kek_versions(store, now=5.0) == expected
    assert store.kek_versions() == expected  # recorded, so the next start reads the table only


def test_rotation_through_the_service_is_recorded(store: SqliteStore, keyring: LocalKeyring,
                                                   rootkey: RootKeyService) -> None:
    rootkey.rotate(ADMIN)
    assert store.kek_versions() == [(keyring.key_id, 2)]


def test_a_missing_keyring_is_refused_with_what_it_held() -> None:
    recorded = [("local:aa", 1), ("local:aa", 2)]
    with pytest.raises(KeyringError) as info:
        kekguard.refuse_missing_keyring(recorded, "/data/keyring.json", "/data/secretsvc.db")
    message = str(info.value)
    assert "keyring file /data/keyring.json is missing" in message
    assert "local:aa versions 1, 2" in message
    assert "Restore the keyring file" in message


def test_a_keyring_missing_a_version_or_the_key_is_refused(tmp_path: Path, keyring: LocalKeyring) -> None:
    with pytest.raises(KeyringError, match=rf"{keyring.key_id} version 2, which the keyring file"):
        kekguard.check_keyring_opens([(keyring.key_id, 1), (keyring.key_id, 2)], keyring, "k.json", "s.db")
    other = LocalKeyring.open_or_create(tmp_path / "other.json", None, ManualClock())
    with pytest.raises(KeyringError, match=rf"it holds {other.key_id} version 1\)"):
        kekguard.check_keyring_opens([(keyring.key_id, 1)], other, "k.json", "s.db")
    keyring.rotate()
    kekguard.check_keyring_opens([(keyring.key_id, 1), (keyring.key_id, 2)], keyring, "k.json", "s.db")
