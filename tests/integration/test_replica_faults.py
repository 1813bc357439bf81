"""Faults under load, with real processes: a replica killed with SIGKILL loses no acknowledged write (every
version a client saw acknowledged is read back, with its value, through another replica); a PostgreSQL restart
(`pg_ctl restart -m fast`) under writes and reads makes calls fail with UNAVAILABLE and nothing else, the
replicas recover by themselves once the database is back (no restart), their change listeners too, and nothing
acknowledged is lost."""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from secretsvc.v1 import secrets_pb2
from tests.integration.replicakit import start_replicas, stop_all
from tests.integration.serverproc import ServerProcess, Stubs
from tests.pgfixtures import running_postgres
from tests.pgkit import PgServer

WRITERS_PER_REPLICA = 2
LOAD_BEFORE_FAULT_S = 1.0
RECOVERY_S = 30.0
SUCCESSES_AFTER_RECOVERY = 5
KEEP_VERSIONS = 1000  # no acknowledged version is pruned during the test


@dataclass
class Writer:
    """Puts new versions of one secret through one replica, recording what was acknowledged and every status
    code it saw."""

    stubs: Stubs
    path: str
    rng: random.Random
    acked: dict[int, bytes] = field(default_factory=dict)
    codes: list[grpc.StatusCode] = field(default_factory=list)
    ok_since_mark: int = 0

    def run(self, stop: threading.Event) -> None:
        ref = secrets_pb2.SecretRef(namespace="load", path=self.path)
        while not stop.is_set():
            value = self.rng.randbytes(40)
            request = secrets_pb2.PutSecretRequest(ref=ref, value=value, max_versions=KEEP_VERSIONS)
            try:
                response = self.stubs.secrets.PutSecret(request, metadata=self.stubs.md, timeout=60)
            except grpc.RpcError as exc:
                self.codes.append(exc.code())
                time.sleep(0.02)
                continue
            self.codes.append(grpc.StatusCode.OK)
            self.acked[response.version] = value
            self.ok_since_mark += 1


@dataclass
class Reader:
    """Reads one secret through one replica over and over, recording every status code."""

    stubs: Stubs
    path: str
    codes: list[grpc.StatusCode] = field(default_factory=list)
    ok_since_mark: int = 0

    def run(self, stop: threading.Event) -> None:
        request = secrets_pb2.GetSecretRequest(ref=secrets_pb2.SecretRef(namespace="load", path=self.path))
        while not stop.is_set():
            try:
                self.stubs.secrets.GetSecret(request, metadata=self.stubs.md, timeout=60)
            except grpc.RpcError as exc:
                self.codes.append(exc.code())
                time.sleep(0.02)
                continue
            self.codes.append(grpc.StatusCode.OK)
            self.ok_since_mark += 1


def _start_load(writers: list[Writer | Reader]) -> tuple[threading.Event, list[threading.Thread]]:
    stop = threading.Event()
    threads = [threading.Thread(target=w.run, args=(stop,), daemon=True) for w in writers]
    for t in threads:
        t.start()
    return stop, threads


def _stop_load(stop: threading.Event, threads: list[threading.Thread]) -> None:
    stop.set()
    for t in threads:
        t.join(timeout=90)
        assert not t.is_alive()


def _assert_all_acknowledged_readable(writers: list[Writer], reader: Stubs) -> int:
    checked = 0
    for w in writers:
        ref = secrets_pb2.SecretRef(namespace="load", path=w.path)
        for version, value in sorted(w.acked.items()):
            got = reader.secrets.GetSecret(secrets_pb2.GetSecretRequest(ref=ref, version=version), metadata=reader.md)
            assert got.value == value, (w.path, version)
            checked += 1
    return checked


@pytest.fixture
def own_pg() -> Iterator[PgServer]:
    """A PostgreSQL server of this test's own, which it may restart (the session's is shared)."""
    with running_postgres() as server:
        yield server


def test_a_replica_killed_under_write_load_loses_no_acknowledged_write(pg_server: PgServer, tmp_path: Path) -> None:
    database = pg_server.new_database("kill9")
    replicas: list[ServerProcess] = start_replicas(pg_server, database, tmp_path, 2)
    try:
        victim, survivor = Stubs(replicas[0]), Stubs(replicas[1])
        writers = [Writer(victim, f"w{i}", random.Random(600 + i)) for i in range(2 * WRITERS_PER_REPLICA)]
        stop, threads = _start_load(writers)
        time.sleep(LOAD_BEFORE_FAULT_S)
        assert replicas[0].proc is not None
        replicas[0].proc.send_signal(signal.SIGKILL)
        replicas[0].proc.wait(timeout=10)
        time.sleep(0.3)  # the writers see their calls fail
        _stop_load(stop, threads)
        acknowledged = sum(len(w.acked) for w in writers)
        assert acknowledged >= 10, "too little load before the kill to mean anything"
        assert _assert_all_acknowledged_readable(writers, survivor) == acknowledged
        # Each secret's current version is at least the last acknowledged one (a write in flight at the kill
        # may have committed without its answer arriving: that is allowed, losing an answered one is not).
        for w in writers:
            meta = survivor.secrets.GetSecretMetadata(
                secrets_pb2.GetSecretMetadataRequest(ref=secrets_pb2.SecretRef(namespace="load", path=w.path)),
                metadata=survivor.md,
            )
            assert meta.current_version >= max(w.acked)
        victim.close()
        survivor.close()
    finally:
        stop_all(replicas)
        pg_server.drop_database(database)


def test_a_postgresql_restart_under_load_gives_unavailable_only_and_the_replicas_recover(
    own_pg: PgServer, tmp_path: Path
) -> None:
    database = own_pg.new_database("restart")
    replicas = start_replicas(own_pg, database, tmp_path, 2)
    try:
        stubs = [Stubs(r) for r in replicas]
        writers = [
            Writer(stubs[r], f"r{r}w{i}", random.Random(700 + 10 * r + i))
            for r in range(len(stubs))
            for i in range(WRITERS_PER_REPLICA)
        ]
        for s in stubs:
            s.secrets.PutSecret(
                secrets_pb2.PutSecretRequest(ref=secrets_pb2.SecretRef(namespace="load", path="read-me"), value=b"r"),
                metadata=s.md,
            )
        readers = [Reader(s, "read-me") for s in stubs]
        clients: list[Writer | Reader] = [*writers, *readers]
        stop, threads = _start_load(clients)
        time.sleep(LOAD_BEFORE_FAULT_S)
        restarted_at = time.monotonic()
        own_pg.restart_fast()
        back_at = time.monotonic()
        for c in clients:
            c.ok_since_mark = 0
        # Recovery by themselves: every writer and reader succeeds again, with no replica restarted.
        deadline = back_at + RECOVERY_S
        while time.monotonic() < deadline and any(c.ok_since_mark < SUCCESSES_AFTER_RECOVERY for c in clients):
            time.sleep(0.05)
        recovered_in = time.monotonic() - back_at
        _stop_load(stop, threads)
        assert all(c.ok_since_mark >= SUCCESSES_AFTER_RECOVERY for c in clients), (
            f"not every client recovered within {RECOVERY_S}s"
        )
        assert all(r.proc is not None and r.proc.poll() is None for r in replicas)
        seen = {code for c in clients for code in c.codes}
        assert seen <= {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}, seen
        assert grpc.StatusCode.UNAVAILABLE in seen, "the restart did not reach any call: the test proved nothing"
        failures = sum(code != grpc.StatusCode.OK for c in clients for code in c.codes)
        print(
            f"\nPostgreSQL restart took {back_at - restarted_at:.2f}s; {failures} calls failed (UNAVAILABLE); "
            f"every writer and reader served again {recovered_in:.2f}s after it was back"
        )
        acknowledged = sum(len(w.acked) for w in writers)
        # Read back through the replica that did not take each write.
        for reader in stubs:
            mine = [w for w in writers if w.stubs is not reader]
            assert _assert_all_acknowledged_readable(mine, reader) == sum(len(w.acked) for w in mine)
        assert acknowledged > 0
        # The change listeners are back too: a watch on one replica sees a write on the other within a second.
        ref = secrets_pb2.SecretRef(namespace="after", path="restart")
        stream = stubs[1].secrets.WatchSecrets(secrets_pb2.WatchSecretsRequest(refs=[ref]), metadata=stubs[1].md)
        assert next(stream).synced
        started = time.monotonic()
        stubs[0].secrets.PutSecret(secrets_pb2.PutSecretRequest(ref=ref, value=b"v"), metadata=stubs[0].md)
        assert [c.current_version for c in next(stream).changes] == [1]
        assert time.monotonic() - started < 1.0
        stream.cancel()
        for s in stubs:
            s.close()
    finally:
        stop_all(replicas)
