"""`secretsvc scan IMAGE --match-stored` against a real server process: a real docker-archive image holding
stored secrets (short password, long token, older, deleted and destroyed versions) and decoys; the findings
name exactly the right secret versions, only those the caller may match, and nothing holds a value."""

from __future__ import annotations

import json
import random
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from secretsvc.v1 import secrets_pb2
from tests import scanimages as si
from tests.integration.serverproc import ServerProcess, Stubs, cli_command, free_port

POLICIES = """\
version: 1
policies:
  - name: scanner
    rules:
      - paths: ["payments/**"]
        capabilities: [match]
        effect: allow
bindings:
  - identity: {kind: token, pattern: "scanner"}
    policies: [scanner]
"""
ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def word(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(n))


def put(stubs: Stubs, namespace: str, path: str, value: str) -> None:
    ref = secrets_pb2.SecretRef(namespace=namespace, path=path)
    stubs.secrets.PutSecret(secrets_pb2.PutSecretRequest(ref=ref, value=value.encode()), metadata=stubs.md)


def versions(stubs: Stubs, method: str, namespace: str, path: str, numbers: list[int]) -> None:
    ref = secrets_pb2.SecretRef(namespace=namespace, path=path)
    getattr(stubs.secrets, method)(secrets_pb2.VersionsRequest(ref=ref, versions=numbers), metadata=stubs.md)


def scan(image: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command("scan", f"docker-archive:{image}", "--match-stored", "--format", "json", "--no-progress", *extra),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.fixture
def server(make_server: Callable[..., ServerProcess], tmp_path: Path) -> ServerProcess:
    (tmp_path / "policies.yaml").write_text(POLICIES)
    return make_server(extra_args=("--policy-path", str(tmp_path / "policies.yaml"))).start()


def test_scan_finds_exactly_the_stored_versions(server: ServerProcess, tmp_path: Path) -> None:
    rng = random.Random(2026)
    password, token = word(rng, 8), word(rng, 64)
    old, between, deleted, destroyed, current = (word(rng, 16) for _ in range(5))
    ops_value = word(rng, 12)
    decoys = [word(rng, 12) for _ in range(3)]
    stubs = Stubs(server)
    put(stubs, "payments", "db/password", password)
    put(stubs, "payments", "api/token", token)
    for value in (old, between, deleted, destroyed, current):
        put(stubs, "payments", "rotating", value)
    versions(stubs, "DeleteVersions", "payments", "rotating", [3])
    versions(stubs, "DestroyVersions", "payments", "rotating", [4])
    put(stubs, "ops", "root", ops_value)
    stubs.close()

    image = si.build_image(
        [
            [
                si.file("app/.env", f"DB_HOST=db\nDB_PASSWORD={password}\nFEATURE_FLAG={decoys[0]}\n"),
                si.file("app/config.json", json.dumps({"rotating": old, "other": decoys[1]})),
                si.file("etc/removed.ini", f"[svc]\nsecret = {deleted}\n"),
            ],
            [
                si.file("run/secrets/api_token", token + "\n"),
                si.whiteout("etc/removed.ini"),
                si.file("srv/start.sh", f"exec app --password {destroyed} --ops-key {ops_value} --x {decoys[2]}\n"),
                si.file("srv/app.xml", f"<cfg><key>{current}</key></cfg>\n"),
            ],
        ],
        env=["PATH=/usr/bin", f"DATABASE_URL=postgres://app:{password}@db:5432/app"],
    )
    archive = si.write_docker_archive(tmp_path / "app.tar", image)
    created = server.cli("token", "create", "scanner")
    assert created.returncode == 0, created.stderr
    scanner_env = {**server.cli_env(), "SECRETSVC_TOKEN": created.stdout.decode().strip()}

    result = scan(archive, scanner_env)
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    stored = sorted(
        (f["path"], f["severity"], f["description"].split(":", 1)[1].split(".")[0].strip())
        for f in report["findings"]
        if f["rule_id"] == "stored-secret"
    )
    assert stored == [
        ("app/.env", "critical", "payments/db/password v1, current"),
        ("app/config.json", "high", "payments/rotating v1, older version"),
        ("config.Env[1]", "critical", "payments/db/password v1, current"),
        ("etc/removed.ini", "high", "payments/rotating v3, older version, deleted"),
        ("run/secrets/api_token", "critical", "payments/api/token v1, current"),
        ("srv/app.xml", "critical", "payments/rotating v5, current"),
    ]
    removed = next(f for f in report["findings"] if f["path"] == "etc/removed.ini")
    assert removed["location"] == "deleted_file"
    assert all("Rotate it" in f["description"] for f in report["findings"] if f["rule_id"] == "stored-secret")
    for value in (password, token, old, deleted, destroyed, current, ops_value):
        assert value not in result.stdout and value not in result.stderr

    # The admin holds match on everything: the ops secret is found too; the destroyed version still is not.
    as_admin = json.loads(scan(archive, server.cli_env()).stdout)
    paths = {
        (f["path"], f["description"].split(":", 1)[1].split(".")[0].strip())
        for f in as_admin["findings"]
        if f["rule_id"] == "stored-secret"
    }
    assert ("srv/start.sh", "ops/root v1, current") in paths
    assert not any("rotating v4" in d for _, d in paths)

    assert server.stop() == 0
    audit = (server.data_dir / "audit" / "audit.log").read_text()
    records = [json.loads(line) for line in audit.splitlines()]
    matching = [r for r in records if r.get("method") == "/secretsvc.v1.Matching/MatchValues"]
    assert {r["resource"] for r in matching if r["principal"] == "token:scanner"} >= {
        "payments/db/password",
        "payments/rotating",
        "payments/api/token",
    }
    assert "ops/root" not in {r["resource"] for r in matching if r["principal"] == "token:scanner"}
    for text in (audit, server.log()):
        for value in (password, token, old, deleted, destroyed, current, ops_value, *decoys):
            assert value not in text


def test_an_unreachable_service_is_exit_2(tmp_path: Path) -> None:
    archive = si.write_docker_archive(tmp_path / "a.tar", si.build_image([[si.file("a.env", "A=abcdefgh\n")]]))
    env = {"PATH": "/usr/bin:/bin", "SECRETSVC_TOKEN": "x" * 20}
    result = scan(archive, env, "--addr", f"127.0.0.1:{free_port()}", "--timeout", "3")
    assert result.returncode == 2
    assert "--match-stored" in result.stderr and "cannot reach the server" in result.stderr


def test_a_refused_token_is_exit_2_before_the_scan(server: ServerProcess, tmp_path: Path) -> None:
    archive = si.write_docker_archive(tmp_path / "a.tar", si.build_image([[si.file("a.env", "A=abcdefgh\n")]]))
    result = scan(archive, {**server.cli_env(), "SECRETSVC_TOKEN": "svc_0000000000000000_forged"})
    assert result.returncode == 2
    assert "unauthenticated" in result.stderr
    assert result.stdout == ""
