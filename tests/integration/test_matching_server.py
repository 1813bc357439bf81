"""MatchValues against the real server process: stored versions found by value (current, older, deleted;
never destroyed), only for secrets the caller holds `match` on, bounds enforced, no candidate in the audit
log or the server's log, and versions stored before fingerprints were kept backfilled at start."""

from __future__ import annotations

import json
import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from secretsvc.service import limits
from secretsvc.v1 import matching_pb2, matching_pb2_grpc, secrets_pb2
from tests.integration.serverproc import ServerProcess, Stubs

POLICIES = """\
version: 1
policies:
  - name: scanner
    rules:
      - paths: ["payments/**"]
        capabilities: [match]
        effect: allow
      - paths: ["ops/**"]
        capabilities: [read, list]
        effect: allow
bindings:
  - identity: {kind: token, pattern: "scanner"}
    policies: [scanner]
"""


def word(rng: random.Random, n: int) -> bytes:
    return "".join(rng.choice("abcdefghijkmnpqrstuvwxyz23456789") for _ in range(n)).encode()


def put(stubs: Stubs, namespace: str, path: str, value: bytes) -> int:
    ref = secrets_pb2.SecretRef(namespace=namespace, path=path)
    return int(stubs.secrets.PutSecret(secrets_pb2.PutSecretRequest(ref=ref, value=value), metadata=stubs.md).version)


def versions_call(stubs: Stubs, method: str, namespace: str, path: str, versions: list[int]) -> None:
    request = secrets_pb2.VersionsRequest(ref=secrets_pb2.SecretRef(namespace=namespace, path=path), versions=versions)
    getattr(stubs.secrets, method)(request, metadata=stubs.md)


def match(
    server: ServerProcess, candidates: list[bytes], metadata: tuple[tuple[str, str], ...]
) -> matching_pb2.MatchValuesResponse:
    with server.channel() as channel:
        stub = matching_pb2_grpc.MatchingStub(channel)  # type: ignore[no-untyped-call]
        answer: matching_pb2.MatchValuesResponse = stub.MatchValues(
            matching_pb2.MatchValuesRequest(candidates=candidates), metadata=metadata
        )
        return answer


def token(server: ServerProcess, name: str) -> tuple[tuple[str, str], ...]:
    created = server.cli("token", "create", name)
    assert created.returncode == 0, created.stderr
    return (("authorization", f"Bearer {created.stdout.decode().strip()}"),)


@pytest.fixture
def server(make_server: Callable[..., ServerProcess], tmp_path: Path) -> ServerProcess:
    (tmp_path / "policies.yaml").write_text(POLICIES)
    return make_server(extra_args=("--policy-path", str(tmp_path / "policies.yaml"))).start()


def test_match_values_end_to_end(server: ServerProcess) -> None:
    rng = random.Random(41)
    stubs = Stubs(server)
    short, token_value = word(rng, 8), word(rng, 60)
    old1, old2, deleted, destroyed, current = (word(rng, 14) for _ in range(5))
    ops_value, decoy = word(rng, 12), word(rng, 12)
    put(stubs, "payments", "db/password", short)
    put(stubs, "payments", "api/token", token_value)
    for v in (old1, old2, deleted, destroyed, current):
        put(stubs, "payments", "rotating", v)
    versions_call(stubs, "DeleteVersions", "payments", "rotating", [3])
    versions_call(stubs, "DestroyVersions", "payments", "rotating", [4])
    put(stubs, "ops", "root/password", ops_value)
    candidates = [decoy, short, token_value, old1, deleted, destroyed, current, ops_value]

    as_admin = match(server, candidates, stubs.md)
    got = {(m.candidate, m.ref.namespace, m.ref.path, m.version, m.current, m.state) for m in as_admin.matches}
    active, gone = secrets_pb2.VERSION_STATE_ACTIVE, secrets_pb2.VERSION_STATE_DELETED
    assert got == {
        (1, "payments", "db/password", 1, True, active),
        (2, "payments", "api/token", 1, True, active),
        (3, "payments", "rotating", 1, False, active),
        (4, "payments", "rotating", 3, False, gone),
        (6, "payments", "rotating", 5, True, active),
        (7, "ops", "root/password", 1, True, active),
    }
    assert as_admin.complete

    # The scanner holds match on payments/** only (and read, not match, on ops/**): ops is simply absent.
    scanner = token(server, "scanner")
    as_scanner = match(server, candidates, scanner)
    assert {m.candidate for m in as_scanner.matches} == {1, 2, 3, 4, 6}
    nobody = token(server, "nobody")
    assert list(match(server, candidates, nobody).matches) == []

    too_many = [word(rng, 6) for _ in range(limits.MAX_MATCH_CANDIDATES + 1)]
    for bad in (
        too_many,
        [b"x" * (limits.MAX_MATCH_CANDIDATE_BYTES + 1)],
        [b""],
        [b"y" * limits.MAX_MATCH_CANDIDATE_BYTES] * (limits.MAX_MATCH_TOTAL_BYTES // 1024 + 1),
    ):
        with pytest.raises(grpc.RpcError) as info:
            match(server, bad, scanner)
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "MAX_MATCH" in (info.value.details() or "")
    # Far past the bounds: refused by the body bound before it is parsed, as for every method.
    with pytest.raises(grpc.RpcError) as info:
        match(server, [b"z" * limits.MAX_MATCH_CANDIDATE_BYTES] * 600, scanner)
    assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    stubs.close()
    assert server.stop() == 0

    records = [json.loads(line) for line in (server.data_dir / "audit" / "audit.log").read_text().splitlines()]
    calls = [r for r in records if r.get("method") == "/secretsvc.v1.Matching/MatchValues"]
    assert {r["capability"] for r in calls} == {"match"}
    by_principal = {(r["principal"], r["resource"], r["code"]) for r in calls}
    assert ("token:scanner", "payments/rotating", "OK") in by_principal
    assert ("token:scanner", "ops/root/password", "OK") not in by_principal
    assert ("token:nobody", None, "OK") in by_principal
    assert ("token:scanner", None, "INVALID_ARGUMENT") in by_principal
    texts = [(server.data_dir / "audit" / "audit.log").read_text(), server.log()]
    for text in texts:
        for candidate in candidates:
            assert candidate.decode() not in text


def test_versions_stored_before_fingerprints_are_backfilled_at_start(server: ServerProcess) -> None:
    rng = random.Random(42)
    stubs = Stubs(server)
    values = [word(rng, 16) for _ in range(40)]
    for i, value in enumerate(values):
        put(stubs, "payments", f"legacy/{i % 7}", value)
    stubs.close()
    assert server.stop() == 0
    # What a database written before this release looks like: versions, no fingerprints.
    with sqlite3.connect(server.data_dir / "secretsvc.db") as conn:
        conn.execute("DELETE FROM secret_fingerprints")
    server.start()
    deadline = time.monotonic() + 20
    answer = match(server, values, server.metadata())
    while not answer.complete and time.monotonic() < deadline:
        time.sleep(0.1)
        answer = match(server, values, server.metadata())
    assert answer.complete
    assert sorted(m.candidate for m in answer.matches) == list(range(40))
    assert "fingerprint backfill pass ended" in server.log()
