"""Three `secretsvc serve` replicas on one PostgreSQL database (real processes): check-and-set has exactly
one winner per version however the writers spread over replicas; a watch on one replica sees a write made on
another within a second; a token revoked on one is refused on another within a second; a policy document put
on one takes effect on another within a second (the replicas' own policy polling is off, the token cache
keeps a verification 30 s and a watch re-reads by itself only every 60 s, so only the notifications can make
these deadlines); a listener connection that is killed while a write happens reconnects and catches up."""

from __future__ import annotations

import functools
import random
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from secretsvc.v1 import secrets_pb2
from tests.integration.replicakit import start_replicas, stop_all
from tests.integration.serverproc import ServerProcess, Stubs
from tests.pgkit import PgServer

DEADLINE_S = 1.0
CAS_ROUNDS = 12
CAS_THREADS_PER_REPLICA = 3
LATENCY_SAMPLES = 20
READ_ALL = """\
version: 1
policies:
  - name: team-reader
    rules:
      - paths: ["team/**"]
        capabilities: [read]
        effect: allow
"""


@pytest.fixture(scope="module")
def replicas(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    database = pg_server.new_database("replicas")
    started = start_replicas(pg_server, database, tmp_path_factory.mktemp("replicas"), 3)
    try:
        yield started
    finally:
        stop_all(started)
        pg_server.drop_database(database)


@pytest.fixture
def stubs(replicas: list[ServerProcess]) -> Iterator[list[Stubs]]:
    made = [Stubs(r) for r in replicas]
    yield made
    for s in made:
        s.close()


def _ref(namespace: str, path: str) -> secrets_pb2.SecretRef:
    return secrets_pb2.SecretRef(namespace=namespace, path=path)


def _code(call: Callable[[], object]) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def _until(predicate: Callable[[], bool], timeout: float) -> float | None:
    """Seconds until `predicate` held (polled every 20 ms), or None if it never did within `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.02)
    return None


def test_check_and_set_has_one_winner_per_version_across_replicas(stubs: list[Stubs]) -> None:
    rng = random.Random(501)
    ref = _ref("cas", "counter")
    stubs[0].secrets.PutSecret(
        secrets_pb2.PutSecretRequest(ref=ref, value=b"v1", max_versions=100), metadata=stubs[0].md
    )
    writers = [(s, t) for s in stubs for t in range(CAS_THREADS_PER_REPLICA)]
    values = {(i, k): rng.randbytes(24) for i in range(len(writers)) for k in range(1, CAS_ROUNDS + 1)}
    outcomes: dict[tuple[int, int], grpc.StatusCode] = {}
    barrier = threading.Barrier(len(writers))

    def write(i: int, s: Stubs) -> None:
        for expected in range(1, CAS_ROUNDS + 1):
            barrier.wait(timeout=60)
            request = secrets_pb2.PutSecretRequest(ref=ref, value=values[(i, expected)], cas=expected, max_versions=100)
            outcomes[(i, expected)] = _code(functools.partial(s.secrets.PutSecret, request, metadata=s.md, timeout=30))

    threads = [threading.Thread(target=write, args=(i, s)) for i, (s, _) in enumerate(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for expected in range(1, CAS_ROUNDS + 1):
        codes = [outcomes[(i, expected)] for i in range(len(writers))]
        assert codes.count(grpc.StatusCode.OK) == 1, (expected, codes)
        assert set(codes) == {grpc.StatusCode.OK, grpc.StatusCode.FAILED_PRECONDITION}, (expected, codes)
        winner = next(i for i in range(len(writers)) if outcomes[(i, expected)] == grpc.StatusCode.OK)
        # The winner's value is version expected+1, read back through a replica it did not write to.
        reader = stubs[(winner // CAS_THREADS_PER_REPLICA + 1) % len(stubs)]
        got = reader.secrets.GetSecret(secrets_pb2.GetSecretRequest(ref=ref, version=expected + 1), metadata=reader.md)
        assert got.value == values[(winner, expected)]
    # The winners spread over the replicas: every replica won at least once (not one replica doing all work).
    winners = {i // CAS_THREADS_PER_REPLICA for (i, _), code in outcomes.items() if code == grpc.StatusCode.OK}
    assert len(winners) >= 2


def test_a_watch_on_one_replica_sees_writes_made_on_another_within_a_second(stubs: list[Stubs]) -> None:
    ref = _ref("watch", "db/password")
    stream = stubs[0].secrets.WatchSecrets(secrets_pb2.WatchSecretsRequest(refs=[ref]), metadata=stubs[0].md)
    assert next(stream).synced
    latencies = []
    rng = random.Random(502)
    for n in range(1, LATENCY_SAMPLES + 1):
        writer = stubs[1 + n % 2]
        started = time.monotonic()
        writer.secrets.PutSecret(secrets_pb2.PutSecretRequest(ref=ref, value=rng.randbytes(32)), metadata=writer.md)
        change = next(stream)
        latencies.append(time.monotonic() - started)
        assert [(c.ref.path, c.current_version) for c in change.changes] == [("db/password", n)]
    stream.cancel()
    print(
        f"\nwatch across replicas, put acknowledged + change seen: median {statistics.median(latencies) * 1000:.1f} ms,"
        f" max {max(latencies) * 1000:.1f} ms over {len(latencies)}"
    )
    assert max(latencies) < DEADLINE_S


def test_a_token_revoked_on_one_replica_is_refused_on_another_within_a_second(
    replicas: list[ServerProcess], stubs: list[Stubs]
) -> None:
    created = replicas[0].cli("token", "create", "ci-revoked", "--policy", "admin")
    assert created.returncode == 0, created.stderr
    token = created.stdout.decode().strip()
    md = (("authorization", f"Bearer {token}"),)
    ref = _ref("tokens", "probe")
    stubs[0].secrets.PutSecret(secrets_pb2.PutSecretRequest(ref=ref, value=b"x"), metadata=stubs[0].md)

    def get_on_b() -> grpc.StatusCode:
        return _code(lambda: stubs[1].secrets.GetSecret(secrets_pb2.GetSecretRequest(ref=ref), metadata=md))

    assert get_on_b() == grpc.StatusCode.OK  # now cached as verified on replica 1 (for 30 s)
    revoked = replicas[0].cli("token", "revoke", "ci-revoked")
    assert revoked.returncode == 0, revoked.stderr
    took = _until(lambda: get_on_b() == grpc.StatusCode.UNAUTHENTICATED, DEADLINE_S)
    assert took is not None, "the revoked token still works on another replica after a second"
    print(f"\nrevocation refused on another replica after {took * 1000:.0f} ms")


def test_a_policy_put_on_one_replica_takes_effect_on_another_within_a_second(
    replicas: list[ServerProcess], stubs: list[Stubs], tmp_path: Path
) -> None:
    created = replicas[0].cli("token", "create", "team-member", "--policy", "team-reader")
    assert created.returncode == 0, created.stderr
    md = (("authorization", f"Bearer {created.stdout.decode().strip()}"),)
    ref = _ref("team", "api-key")
    stubs[0].secrets.PutSecret(secrets_pb2.PutSecretRequest(ref=ref, value=b"x"), metadata=stubs[0].md)

    def get_on_c() -> grpc.StatusCode:
        return _code(lambda: stubs[2].secrets.GetSecret(secrets_pb2.GetSecretRequest(ref=ref), metadata=md))

    assert get_on_c() == grpc.StatusCode.PERMISSION_DENIED
    document = tmp_path / "team-reader.yaml"
    document.write_text(READ_ALL)
    put = replicas[0].cli("policy", "put", "team-reader", str(document))
    assert put.returncode == 0, put.stderr
    took = _until(lambda: get_on_c() == grpc.StatusCode.OK, DEADLINE_S)
    assert took is not None, "a policy put on one replica did not take effect on another within a second"
    print(f"\npolicy in force on another replica after {took * 1000:.0f} ms")


def test_a_killed_listener_reconnects_and_catches_up_on_what_it_missed(
    pg_server: PgServer, replicas: list[ServerProcess], stubs: list[Stubs]
) -> None:
    ref = _ref("catchup", "key")
    stream = stubs[1].secrets.WatchSecrets(secrets_pb2.WatchSecretsRequest(refs=[ref]), metadata=stubs[1].md)
    assert next(stream).synced
    database = replicas[0].extra_args[1].rsplit("/", 1)[1]
    with pg_server.admin_connect() as admin:
        # No new connection to the database while the write happens: the killed listeners cannot be back in
        # time to hear its notification, so only the catch-up after they reconnect can report it.
        admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        try:
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'secretsvc-listen' AND datname = %s",
                (database,),
            ).fetchall()
            assert killed == [(True,)] * len(replicas)
            put = stubs[0].secrets.PutSecret(
                secrets_pb2.PutSecretRequest(ref=ref, value=b"while-away"), metadata=stubs[0].md, timeout=10
            )
            assert put.version == 1
            time.sleep(0.5)
        finally:
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        reopened = time.monotonic()
    change = next(stream)
    assert [(c.ref.path, c.current_version) for c in change.changes] == [("key", 1)]
    # Well before the watch's own 60 s re-read: the listener's backoff is at most a few seconds here.
    assert time.monotonic() - reopened < 10
    stream.cancel()
    assert _until(lambda: "change listener reconnected" in replicas[1].log(), 5) is not None
