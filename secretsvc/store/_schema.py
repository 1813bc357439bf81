"""What every backend's schema check says when it refuses a database, so the messages read the same."""

from __future__ import annotations

from secretsvc.errors import StorageError


def newer_than_code(location: str, found: int, latest: int) -> StorageError:
    return StorageError(
        f"database {location} has schema version {found}, newer than this secretsvc supports "
        f"({latest}); upgrade secretsvc"
    )


def not_ours(location: str) -> StorageError:
    return StorageError(f"database {location} is not a secretsvc database (it has other tables)")


def damaged_version(location: str) -> StorageError:
    return StorageError(f"database {location} has a damaged schema_version table")
