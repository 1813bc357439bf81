"""Real parts for the service-layer tests: a SQLite store and a local keyring in tmp_path, a manual clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from secretsvc.kek.local import LocalKeyring
from secretsvc.service.access import AdminPolicyOnly
from secretsvc.service.rootkey import RootKeyService
from secretsvc.service.secrets import SecretService
from secretsvc.service.transit import TransitService
from secretsvc.store.sqlite import SqliteStore
from tests.unit.service.support import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "secretsvc.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(db_path)
    yield opened
    opened.close()


@pytest.fixture
def keyring(tmp_path: Path, clock: ManualClock) -> LocalKeyring:
    return LocalKeyring.open_or_create(tmp_path / "keyring.json", None, clock)


@pytest.fixture
def secrets_svc(store: SqliteStore, keyring: LocalKeyring, clock: ManualClock) -> SecretService:
    return SecretService(store, keyring, clock, AdminPolicyOnly())


@pytest.fixture
def transit(store: SqliteStore, keyring: LocalKeyring, clock: ManualClock) -> TransitService:
    return TransitService(store, keyring, clock, AdminPolicyOnly())


@pytest.fixture
def rootkey(store: SqliteStore, keyring: LocalKeyring) -> RootKeyService:
    return RootKeyService(store, keyring, AdminPolicyOnly())
