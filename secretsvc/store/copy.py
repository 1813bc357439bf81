"""Copy one store's contents into another, row for row: `secretsvc store copy --from A --to B`.

For a deployment that started on the embedded SQLite default and grows onto PostgreSQL (or back). Ciphertext
moves as it is: envelopes, wrapped keys and token hashes are bytes to this module, never opened, so no
key-encryption key is needed and none is called. Both stores are opened (and so migrated) to the same schema
version; every table is copied in primary-key order in batches, each batch one write transaction on the
destination, then read back from the destination and compared with the source, byte for byte.

Resumable: a row already in the destination and identical is skipped, so a copy that stopped half-way is
finished by running it again. A destination row that differs from the source's, or that the source does not
have, means the destination holds other data: the copy refuses before writing anything (a first pass checks
every destination row against the source).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from secretsvc.errors import FailedPrecondition, StorageError
from secretsvc.store._dbapi import Conn
from secretsvc.store._sqlstore import SqlStore


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    key: tuple[str, ...]
    columns: tuple[str, ...]  # the others
    batch: int = 500  # rows per transaction; tables holding envelopes take fewer

    @property
    def all_columns(self) -> tuple[str, ...]:
        return self.key + self.columns


# Parents before children, so foreign keys hold after every batch.
TABLES: tuple[Table, ...] = (
    Table(
        "secrets",
        ("namespace", "path"),
        ("current_version", "max_versions", "custom_metadata", "created_at", "updated_at"),
    ),
    Table(
        "secret_versions",
        ("namespace", "path", "version"),
        ("state", "envelope", "created_at", "deleted_at", "destroyed_at"),
        batch=100,
    ),
    Table("transit_keys", ("name",), ("created_at", "min_decryption_version")),
    Table("transit_key_versions", ("name", "version"), ("wrapped_material", "created_at"), batch=100),
    Table("tokens", ("token_id",), ("name", "token_hash", "created_at", "policies", "expires_at")),
    Table("kek_versions", ("key_id", "version"), ("first_used_at",)),
    Table("policy_documents", ("name",), ("format", "content", "revision", "updated_at"), batch=50),
    Table("fingerprint_keys", ("version",), ("sealed_key", "created_at")),
    Table("secret_fingerprints", ("namespace", "path", "version"), ("key_version", "fingerprint")),
)

Row = tuple[Any, ...]


class DestinationDiffers(FailedPrecondition):
    """The destination holds data the source does not: copying would mix two stores."""


@dataclass
class TableReport:
    table: str
    source_rows: int = 0
    copied: int = 0
    already_there: int = 0


def _normal(row: Sequence[Any]) -> Row:
    # sqlite3 and psycopg agree on every type here except how a blob may come back.
    return tuple(bytes(v) if isinstance(v, bytes | bytearray | memoryview) else v for v in row)


def _marks(n: int) -> str:
    return ", ".join("?" * n)


def _select(table: Table) -> str:
    return f"SELECT {', '.join(table.all_columns)} FROM {table.name}"  # noqa: S608 - names from TABLES only


def _order(table: Table) -> str:
    return f" ORDER BY {', '.join(table.key)}"


def _page(conn: Conn, table: Table, after: Row | None, limit: int) -> list[Row]:
    sql = _select(table)
    params: list[Any] = []
    if after is not None:
        sql += f" WHERE ({', '.join(table.key)}) > ({_marks(len(table.key))})"
        params.extend(after)
    sql += _order(table) + " LIMIT ?"
    return [_normal(r) for r in conn.execute(sql, (*params, limit))]


def _range(conn: Conn, table: Table, first: Row, last: Row) -> list[Row]:
    keys, marks = ", ".join(table.key), _marks(len(table.key))
    sql = _select(table) + f" WHERE ({keys}) >= ({marks}) AND ({keys}) <= ({marks})" + _order(table)
    return [_normal(r) for r in conn.execute(sql, (*first, *last))]


def _count(conn: Conn, table: Table) -> int:
    row = conn.execute(f"SELECT COUNT(*) FROM {table.name}").fetchone()  # noqa: S608 - names from TABLES only
    return int(row[0])


def _key(table: Table, row: Row) -> Row:
    return row[: len(table.key)]


def _describe_key(table: Table, key: Row) -> str:
    # Keys are names and numbers, never secret material.
    return f"{table.name} ({', '.join(f'{k}={v!r}' for k, v in zip(table.key, key, strict=True))})"


def _pages(store: SqlStore, table: Table, op: str) -> Iterator[list[Row]]:
    after: Row | None = None
    while True:
        with store._transaction(op) as conn:
            rows = _page(conn, table, after, table.batch)
        if rows:
            yield rows
        if len(rows) < table.batch:
            return
        after = _key(table, rows[-1])


def check_destination(source: SqlStore, dest: SqlStore) -> int:
    """Every row the destination holds must be in the source, identical. Returns how many it holds.
    Raises DestinationDiffers naming the first table and key that differ."""
    held = 0
    for table in TABLES:
        for rows in _pages(dest, table, "copy: check destination"):
            held += len(rows)
            with source._transaction("copy: check destination") as conn:
                theirs = {_key(table, r): r for r in _range(conn, table, _key(table, rows[0]), _key(table, rows[-1]))}
            for row in rows:
                if theirs.get(_key(table, row)) != row:
                    what = "differs from the source's" if _key(table, row) in theirs else "is not in the source"
                    raise DestinationDiffers(
                        f"the destination holds other data: {_describe_key(table, _key(table, row))} {what}; "
                        "copy only into an empty store or one an earlier copy from the same source filled"
                    )
    return held


def copy_store(
    source: SqlStore, dest: SqlStore, progress: Callable[[TableReport], None] = lambda r: None
) -> list[TableReport]:
    """Copy every table of `source` into `dest` (resuming where an earlier copy stopped), reading each batch back
    from `dest` to verify it. Raises DestinationDiffers, or StorageError if a read-back differs."""
    check_destination(source, dest)
    reports: list[TableReport] = []
    for table in TABLES:
        report = TableReport(table.name)
        with source._transaction("copy: count") as conn:
            report.source_rows = _count(conn, table)
        progress(report)
        for rows in _pages(source, table, "copy: read source"):
            first, last = _key(table, rows[0]), _key(table, rows[-1])

            copied = dest._write(f"copy {table.name}", functools.partial(_insert_missing, table=table, rows=rows))
            with dest._transaction("copy: verify") as conn:
                back = _range(conn, table, first, last)
            if back != rows:
                raise StorageError(
                    f"copy: reading {table.name} back from the destination gave other rows than the "
                    f"source's between {_describe_key(table, first)} and {_describe_key(table, last)}"
                )
            report.copied += copied
            report.already_there += len(rows) - copied
            progress(report)
        reports.append(report)
    _copy_generation(source, dest)
    return reports


def _insert_missing(conn: Conn, *, table: Table, rows: list[Row]) -> int:
    """Insert the rows of one batch the destination lacks (one transaction); returns how many."""
    present = {_key(table, r): r for r in _range(conn, table, _key(table, rows[0]), _key(table, rows[-1]))}
    missing = [r for r in rows if _key(table, r) not in present]
    for row in rows:
        held = present.get(_key(table, row))
        if held is not None and held != row:
            raise DestinationDiffers(
                f"the destination holds other data: {_describe_key(table, _key(table, row))} differs from the "
                "source's (it changed during the copy?)"
            )
    if missing:
        conn.executemany(
            f"INSERT INTO {table.name} ({', '.join(table.all_columns)})"  # noqa: S608 - names from TABLES only
            f" VALUES ({_marks(len(table.all_columns))})",
            missing,
        )
    return len(missing)


def _copy_generation(source: SqlStore, dest: SqlStore) -> None:
    """The policy generation is a change counter, not data: the destination takes the source's, so servers that
    come to poll it find a number no lower than the one they may have seen."""
    generation = source.policy_generation()

    def write(conn: Conn) -> None:
        conn.execute("UPDATE policy_generation SET generation = ? WHERE generation < ?", (generation, generation))

    dest._write("copy policy_generation", write)
