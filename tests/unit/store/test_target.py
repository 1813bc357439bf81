"""The store setting: URL forms, where the PostgreSQL password may come from, and where it may not."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from secretsvc.config import load_config
from secretsvc.errors import ConfigError
from secretsvc.store.postgres import PostgresStore
from secretsvc.store.target import PASSWORD_ENV, load, open_store, parse_store
from tests.pgkit import PgServer

URL = "postgresql://svc@db.internal:5432/secrets"


def _password(seed: int) -> str:
    return random.Random(seed).randbytes(12).hex()


def test_empty_and_sqlite_forms() -> None:
    assert parse_store("", "flag --store").kind == "sqlite"
    assert parse_store("sqlite", "flag --store").location == ""
    assert parse_store("sqlite:/var/lib/x.db", "flag --store").location == "/var/lib/x.db"
    with pytest.raises(ConfigError, match="sqlite: needs a file path"):
        parse_store("sqlite:", "flag --store")
    with pytest.raises(ConfigError, match="flag --store: store must be empty"):
        parse_store("mysql://x@y/z", "flag --store")


def test_a_password_in_the_url_is_refused_and_told_where_to_go() -> None:
    secret = _password(1)
    with pytest.raises(ConfigError) as caught:
        parse_store(f"postgresql://svc:{secret}@db.internal/secrets", "flag --store")
    message = str(caught.value)
    assert "--store-password-file" in message and PASSWORD_ENV in message and "PGPASSFILE" in message
    assert secret not in message


def test_a_url_without_a_database_is_refused() -> None:
    with pytest.raises(ConfigError, match="must name a database"):
        parse_store("postgresql://svc@db.internal", "file x.toml: store")


def test_the_password_file_beats_the_environment(tmp_path: Path) -> None:
    from_file, from_env = _password(2), _password(3)
    pw = tmp_path / "pw"
    pw.write_text(from_file + "\n")
    assert load(URL, "flag --store", pw, {PASSWORD_ENV: from_env}).password == from_file
    assert load(URL, "flag --store", None, {PASSWORD_ENV: from_env}).password == from_env
    assert load(URL, "flag --store", None, {}).password is None  # libpq's PGPASSFILE / ~/.pgpass then apply


def test_password_file_problems_are_named(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        load(URL, "flag --store", empty, {})
    with pytest.raises(ConfigError, match="store password file"):
        load(URL, "flag --store", tmp_path / "missing", {})
    with pytest.raises(ConfigError, match="the store is SQLite"):
        load("", "default store", empty, {})


def test_the_password_never_shows_in_the_config_repr(tmp_path: Path) -> None:
    secret = _password(4)
    config = load_config({"store": URL}, {PASSWORD_ENV: secret}, None)
    assert config.store_config is not None and config.store_config.password == secret
    assert secret not in repr(config)


def test_serve_refuses_a_password_flag_without_echoing_it(tmp_path: Path) -> None:
    secret = _password(5)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "secretsvc.cli",
            "serve",
            "--data-dir",
            str(tmp_path / "d"),
            "--store",
            URL,
            "--store-password",
            secret,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--store-password is refused" in result.stderr and "--store-password-file" in result.stderr
    assert secret not in result.stderr + result.stdout


def test_a_client_key_password_in_the_url_is_refused_too() -> None:
    secret = _password(6)
    with pytest.raises(ConfigError, match="must not hold a password") as caught:
        parse_store(f"postgresql://svc@db.internal/secrets?sslpassword={secret}", "flag --store")
    assert secret not in str(caught.value)


def test_the_pool_size_travels_from_the_settings_to_the_store(tmp_path: Path) -> None:
    config = load_config({"data_dir": tmp_path, "store": URL, "store_pool_size": "4"}, {}, None)
    assert config.store_config is not None and config.store_config.pool_size == 4
    assert load(URL, "flag --store", None, {}).pool_size == 16  # the default: one per default worker thread
    for bad in ("0", "257", "many"):
        with pytest.raises(ConfigError, match="store_pool_size"):
            load_config({"data_dir": tmp_path, "store": URL, "store_pool_size": bad}, {}, None)


def test_a_postgresql_store_opens_at_most_its_pool_size(pg_server: PgServer, pg_store_url: str,
                                                         tmp_path: Path) -> None:
    store = open_store(parse_store(pg_store_url, "test", password=pg_server.password, pool_size=3),
                       tmp_path / "unused.db")
    try:
        assert isinstance(store, PostgresStore)
        assert store._pool.max_size == 3
    finally:
        store.close()
