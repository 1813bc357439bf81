"""Fixtures for the store contract suite: every test runs against every backend in `BACKENDS`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from secretsvc.store.base import SecretStore
from tests.pgkit import pg_database, pg_server  # noqa: F401 (fixtures)
from tests.unit.store.backends import BACKENDS, make_factory


@pytest.fixture(params=BACKENDS)
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], SecretStore]:
    backend: str = request.param
    return make_factory(backend, tmp_path)


@pytest.fixture
def store(store_factory: Callable[[], SecretStore]) -> Iterator[SecretStore]:
    opened = store_factory()
    yield opened
    opened.close()
