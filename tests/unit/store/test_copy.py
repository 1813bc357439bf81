"""`store copy`: SQLite to PostgreSQL (and back), every kind of row, ciphertext byte for byte; resumable;
refusing a destination holding other data; and the command line around it."""

from __future__ import annotations

import dataclasses
import random
import subprocess
import sys
from pathlib import Path

import pytest

from secretsvc.errors import StorageError
from secretsvc.store import copy as store_copy
from secretsvc.store.base import Fingerprint, SecretStore, TokenRecord
from secretsvc.store.postgres import PostgresStore
from secretsvc.store.sqlite import SqliteStore
from tests.pgkit import PgServer

T0 = 1_700_000_000.123456


def fill(store: SecretStore, rng: random.Random, secrets: int = 12) -> None:
    """A store with every kind of row: versions active, deleted and destroyed, metadata, fingerprints, transit
    keys with a raised minimum, tokens, policy documents, key-encryption key versions."""
    store.add_fingerprint_key(1, rng.randbytes(90), now=T0)
    for i in range(secrets):
        path = f"svc-{i:03d}/db/pass\u00e9" if i % 3 else f"svc-{i:03d}/API key"
        for v in range(1, 4):
            store.insert_version(
                "team",
                path,
                v,
                rng.randbytes(rng.randrange(40, 400)),
                expected_version=v - 1,
                now=T0 + i + v / 7,
                max_versions=10,
                custom_metadata={"owner": f"o{i}", "n": "\u2603"},
                fingerprint=Fingerprint(1, rng.randbytes(32)),
            )
        store.set_versions_deleted("team", path, [1], deleted=True, now=T0 + 50.5)
        if i % 2:
            store.destroy_versions("team", path, [2], now=T0 + 60.25)
    store.create_transit_key("orders", rng.randbytes(70), now=T0)
    store.add_transit_key_version("orders", 2, rng.randbytes(70), now=T0 + 1)
    store.set_transit_min_decryption_version("orders", 2)
    store.put_token(
        TokenRecord(
            token_id=f"tid-{rng.randrange(10**9)}",
            name="ci",
            token_hash=rng.randbytes(32),
            created_at=T0,
            policies=("admin", "read"),
            expires_at=T0 + 3600,
        )
    )
    store.put_policy_document("team", "yaml", b"policies: []\n", expected_revision=None, now=T0)
    store.put_policy_document("team", "yaml", b"policies: [] # 2\n", expected_revision=1, now=T0 + 2)
    store.record_kek_version("local:abc", 1, now=T0)
    store.record_kek_version("local:abc", 2, now=T0 + 3)


def snapshot(store: SecretStore) -> dict[str, object]:
    """Everything the store contract lets a caller see."""
    paths: list[str] = []
    token = ""
    while True:
        page = store.list_paths("team", "", page_size=7, page_token=token)
        paths.extend(page.paths)
        token = page.next_page_token
        if not token:
            break
    metas = [store.read_meta("team", p) for p in paths]
    versions = [store.read_version("team", m.path, v.version) for m in metas if m for v in m.versions]
    digests = [h.digest for h in store.find_fingerprints([])]
    return {
        "paths": paths,
        "metas": metas,
        "versions": [dataclasses.astuple(v) for v in versions],
        "transit": [store.read_transit_key(n) for n in store.list_transit_keys()],
        "tokens": store.list_tokens(),
        "policies": store.list_policy_documents(),
        "generation": store.policy_generation(),
        "keks": store.kek_versions(),
        "fingerprint_keys": store.fingerprint_keys(),
        "digests": digests,
        "envelopes": [dataclasses.astuple(r) for r in store.scan_envelopes(after=None, limit=10_000)],
    }


@pytest.fixture
def source(tmp_path: Path) -> SqliteStore:
    store = SqliteStore(tmp_path / "source.db")
    fill(store, random.Random(5))
    return store


def test_sqlite_to_postgresql_copies_everything_exactly(
    source: SqliteStore, pg_server: PgServer, pg_database: str
) -> None:
    with PostgresStore(pg_server.url(pg_database), password=pg_server.password) as dest:
        seen: list[str] = []
        reports = store_copy.copy_store(source, dest, lambda r: seen.append(r.table))
        assert {r.table: r.copied for r in reports}["secret_versions"] == 36
        assert all(r.already_there == 0 and r.copied == r.source_rows for r in reports)
        assert seen[0] == "secrets" and "secret_fingerprints" in seen
        assert snapshot(dest) == snapshot(source)
        # Byte order survived: the accented paths sort after the plain ones in both.
        assert dest.list_paths("team", "svc-001/", page_size=10, page_token="").paths == ["svc-001/db/pass\u00e9"]
        # Run again: nothing to copy, everything verified.
        again = store_copy.copy_store(source, dest)
        assert sum(r.copied for r in again) == 0 and sum(r.already_there for r in again) == sum(
            r.source_rows for r in reports
        )
    source.close()


def test_an_interrupted_copy_finishes_when_run_again(
    source: SqliteStore, pg_server: PgServer, pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = tuple(dataclasses.replace(t, batch=4) for t in store_copy.TABLES)
    monkeypatch.setattr(store_copy, "TABLES", small)
    real_insert = store_copy._insert_missing
    calls = 0

    def failing_insert(conn, *, table, rows):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 5:
            raise StorageError("copy: the connection dropped")
        return real_insert(conn, table=table, rows=rows)

    with PostgresStore(pg_server.url(pg_database), password=pg_server.password) as dest:
        monkeypatch.setattr(store_copy, "_insert_missing", failing_insert)
        with pytest.raises(StorageError, match="dropped"):
            store_copy.copy_store(source, dest)
        monkeypatch.setattr(store_copy, "_insert_missing", real_insert)
        reports = store_copy.copy_store(source, dest)
        by_table = {r.table: r for r in reports}
        # Three batches of secrets and one of versions committed before the fifth failed; they are kept.
        assert (by_table["secrets"].already_there, by_table["secrets"].copied) == (12, 0)
        assert (by_table["secret_versions"].already_there, by_table["secret_versions"].copied) == (4, 32)
        assert snapshot(dest) == snapshot(source)
    source.close()


def test_a_destination_holding_other_data_is_refused_before_any_write(
    source: SqliteStore, pg_server: PgServer, pg_database: str
) -> None:
    with PostgresStore(pg_server.url(pg_database), password=pg_server.password) as dest:
        dest.insert_version("team", "svc-000/API key", 1, b"\x01" * 40, expected_version=0, now=T0, max_versions=5)
        before = snapshot(dest)
        with pytest.raises(store_copy.DestinationDiffers, match=r"secrets \(namespace='team', path='svc-000/API key'"):
            store_copy.copy_store(source, dest)
        assert snapshot(dest) == before
        dest.delete_secret("team", "svc-000/API key")
        dest.put_token(TokenRecord(token_id="tid-other", name="other", token_hash=b"\x02" * 32, created_at=T0))
        with pytest.raises(store_copy.DestinationDiffers, match="is not in the source"):
            store_copy.copy_store(source, dest)
    source.close()


def test_postgresql_back_to_sqlite(source: SqliteStore, pg_server: PgServer, pg_database: str, tmp_path: Path) -> None:
    with PostgresStore(pg_server.url(pg_database), password=pg_server.password) as middle:
        store_copy.copy_store(source, middle)
        with SqliteStore(tmp_path / "back.db") as back:
            store_copy.copy_store(middle, back)
            assert snapshot(back) == snapshot(source)
    source.close()


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "secretsvc.cli", "store", "copy", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def test_the_command_copies_resumes_and_reports(
    source: SqliteStore, pg_server: PgServer, pg_database: str, tmp_path: Path
) -> None:
    source.close()
    url = pg_server.url(pg_database)
    args = (
        "--from",
        f"sqlite:{tmp_path / 'source.db'}",
        "--to",
        url,
        "--to-password-file",
        str(pg_server.password_file()),
    )
    first = _cli(*args)
    assert first.returncode == 0, first.stderr
    assert "secret_versions: 36/36 rows (36 copied, 0 already there)" in first.stderr
    assert "verified in postgresql://" in first.stderr
    assert pg_server.password not in first.stderr + first.stdout
    second = _cli(*args)
    assert second.returncode == 0, second.stderr
    assert "secret_versions: 36/36 rows (0 copied, 36 already there)" in second.stderr


def test_the_command_refuses_bad_arguments(pg_server: PgServer, pg_database: str, tmp_path: Path) -> None:
    missing = _cli("--from", f"sqlite:{tmp_path / 'nope.db'}", "--to", pg_server.url(pg_database))
    assert missing.returncode == 2 and "is not a file" in missing.stderr
    assert not (tmp_path / "nope.db").exists()
    secret = random.Random(9).randbytes(8).hex()
    in_url = _cli("--from", f"sqlite:{tmp_path / 'x.db'}", "--to", f"postgresql://u:{secret}@127.0.0.1/db")
    assert in_url.returncode == 2 and "must not hold a password" in in_url.stderr and secret not in in_url.stderr
