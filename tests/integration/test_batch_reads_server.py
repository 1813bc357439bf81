"""GetSecrets and Access.CheckAccess on the real server process: per-item results with exact codes, one audit
record per secret read, and access reviews decided by the policies in force."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from secretsvc.v1 import access_pb2, access_pb2_grpc, secrets_pb2
from tests.integration.serverproc import ServerProcess, Stubs
from tests.integration.test_service_api import put

POLICIES = """\
version: 1
policies:
  - name: reader
    rules:
      - paths: ["app/web/**"]
        capabilities: [read]
        effect: allow
  - name: reviewer
    rules:
      - system: ["access-review"]
        capabilities: [admin]
        effect: allow
bindings:
  - identity: {kind: token, pattern: "web"}
    policies: [reader]
  - identity: {kind: serviceaccount, pattern: "app/web"}
    policies: [reader]
  - identity: {kind: token, pattern: "webhook"}
    policies: [reviewer]
"""


def _item(path: str, version: int = 0) -> secrets_pb2.SecretVersionRef:
    return secrets_pb2.SecretVersionRef(ref=secrets_pb2.SecretRef(namespace="app", path=path), version=version)


@pytest.fixture
def server(make_server: Callable[..., ServerProcess], tmp_path: Path) -> ServerProcess:
    (tmp_path / "policies.yaml").write_text(POLICIES)
    return make_server(extra_args=("--policy-path", str(tmp_path / "policies.yaml"))).start()


def _token(server: ServerProcess, name: str) -> tuple[tuple[str, str], ...]:
    created = server.cli("token", "create", name)
    assert created.returncode == 0, created.stderr
    return (("authorization", f"Bearer {created.stdout.decode().strip()}"),)


def test_get_secrets_answers_each_item_with_its_own_code_and_audits_each(server: ServerProcess) -> None:
    stubs = Stubs(server)
    rng = random.Random(31)
    values = {p: rng.randbytes(20).hex().encode() for p in ("web/a", "web/b", "db/password")}
    for path, value in values.items():
        put(stubs, path, value)
    web = _token(server, "web")
    response = stubs.secrets.GetSecrets(secrets_pb2.GetSecretsRequest(items=[
        _item("web/a"), _item("web/b", 1), _item("db/password"), _item("web/missing"), _item("web/b", 7)]),
        metadata=web)
    results = list(response.results)
    assert [r.secret.value for r in results[:2]] == [values["web/a"], values["web/b"]]
    codes = [grpc.StatusCode.OK if r.HasField("secret") else r.error.code for r in results]
    assert codes[:2] == [grpc.StatusCode.OK, grpc.StatusCode.OK]
    assert codes[2:] == [grpc.StatusCode.PERMISSION_DENIED.value[0], grpc.StatusCode.NOT_FOUND.value[0],
                         grpc.StatusCode.NOT_FOUND.value[0]]
    assert "may not read secret app/db/password" in results[2].error.message

    with pytest.raises(grpc.RpcError) as refused:
        stubs.secrets.GetSecrets(secrets_pb2.GetSecretsRequest(items=[_item("web/a")] * 257), metadata=web)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as unauthenticated:
        stubs.secrets.GetSecrets(secrets_pb2.GetSecretsRequest(items=[_item("web/a")]))
    assert unauthenticated.value.code() == grpc.StatusCode.UNAUTHENTICATED
    stubs.close()
    assert server.stop() == 0

    records = [json.loads(line) for line in (server.data_dir / "audit" / "audit.log").read_text().splitlines()]
    batch = [(r["resource"], r["code"]) for r in records
             if r.get("method") == "/secretsvc.v1.Secrets/GetSecrets" and r.get("principal") == "token:web"]
    assert batch[:5] == [("app/web/a", "OK"), ("app/web/b", "OK"), ("app/db/password", "PERMISSION_DENIED"),
                         ("app/web/missing", "NOT_FOUND"), ("app/web/b", "NOT_FOUND")]
    log = server.log() + (server.data_dir / "audit" / "audit.log").read_text()
    assert not any(v.decode() in log for v in values.values())


def test_check_access_reviews_a_service_account_against_the_policies_in_force(server: ServerProcess) -> None:
    stubs = Stubs(server)
    put(stubs, "web/a", b"v")
    put(stubs, "db/password", b"v")
    access = access_pb2_grpc.AccessStub(stubs.channel)
    request = access_pb2.CheckAccessRequest(identity="sa:app/web", secrets=[
        _item("web/a"), _item("web/a", 2), _item("db/password"), _item("web/missing")])
    answer = access.CheckAccess(request, metadata=_token(server, "webhook"))
    assert [(r.allowed, r.exists) for r in answer.results] == [(True, True), (True, False), (False, True),
                                                                 (True, False)]
    assert answer.results[2].reason.endswith("no policy grants it (deny by default)")
    assert answer.results[3].reason == "app/web/missing does not exist"
    with pytest.raises(grpc.RpcError) as refused:
        access.CheckAccess(request, metadata=_token(server, "web"))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as bad:
        access.CheckAccess(access_pb2.CheckAccessRequest(identity="who", secrets=[_item("web/a")]),
                           metadata=_token(server, "webhook2"))
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    stubs.close()
