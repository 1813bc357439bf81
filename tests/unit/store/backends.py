"""Store backends for the contract suite, as picklable factories (spawned worker processes rebuild them).

A factory opens a new store handle on one shared database each time it is called, so a test can open
several handles, in this process or in others, on the same data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from secretsvc.store.base import SecretStore
from secretsvc.store.postgres import PostgresStore
from secretsvc.store.sqlite import SqliteStore


@dataclass(frozen=True, slots=True)
class SqliteFactory:
    path: Path

    def __call__(self) -> SecretStore:
        return SqliteStore(self.path)


@dataclass(frozen=True, slots=True)
class PostgresFactory:
    url: str
    password: str = field(repr=False)
    pool_size: int = 4

    def __call__(self) -> SecretStore:
        return PostgresStore(self.url, password=self.password, pool_size=self.pool_size)


BACKENDS = ("sqlite", "postgresql")
