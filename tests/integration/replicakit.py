"""Several `secretsvc serve` replicas on one PostgreSQL database, as real processes: the first makes the
keyring and the admin token, the others start with a copy of the keyring in data directories of their own and
use the same token (tokens live in the database)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.integration.serverproc import ServerProcess, Stubs
from tests.pgkit import PgServer

# Policy documents are reloaded only when a notification says so: the default 5 s poll would hide whether
# notifications work.
NO_POLL = {"SECRETSVC_POLICY_RELOAD_SECONDS": "0"}


def start_replicas(pg: PgServer, database: str, workdir: Path, count: int) -> list[ServerProcess]:
    args = ("--store", pg.url(database), "--store-password-file", str(pg.password_file()))
    first = ServerProcess(data_dir=workdir / "replica0", extra_args=args, env=dict(NO_POLL)).start()
    others = []
    for i in range(1, count):
        data_dir = workdir / f"replica{i}"
        data_dir.mkdir(mode=0o700)
        shutil.copy2(first.data_dir / "keyring.json", data_dir / "keyring.json")
        other = ServerProcess(data_dir=data_dir, extra_args=args, env=dict(NO_POLL))
        other.token_file.write_text(first.token + "\n")
        others.append(other.start(wait=False))
    for other in others:
        other.wait_ready()
    return [first, *others]


def stop_all(replicas: list[ServerProcess]) -> None:
    for replica in replicas:
        if replica.proc is not None and replica.proc.poll() is None:
            replica.stop()


def stubs_for(replicas: list[ServerProcess]) -> list[Stubs]:
    return [Stubs(r) for r in replicas]
