"""The audit log as the real server process writes it: one record per call, allowed or refused, a chain that
verifies after a clean stop, no secret values or tokens, and fail-closed refusals when the log cannot be
written (a real tmpfs that fills up, mounted in a mount namespace of the server's own)."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from secretsvc.v1 import secrets_pb2, secrets_pb2_grpc
from tests.integration.serverproc import ServerProcess, Stubs, cli_command
from tests.integration.test_service_api import get, put


def _records(audit_file: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in audit_file.read_text().splitlines() if line]


def _verify(data_dir: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        cli_command("audit", "verify", str(data_dir / "audit"), "--public-key", str(data_dir / "audit-signing.pub"),
                    "--require-closed"),
        capture_output=True, timeout=60, check=False,
    )
    return subprocess.CompletedProcess(result.args, result.returncode, result.stdout.decode(), result.stderr.decode())


def test_every_call_is_recorded_and_the_log_verifies(server: ServerProcess) -> None:
    value = random.Random(90).randbytes(24).hex().encode()
    stubs = Stubs(server)
    put(stubs, "db/password", value)
    assert get(stubs, "db/password").value == value
    nobody = server.cli("token", "create", "nobody").stdout.decode().strip()
    denied = server.cli("get", "app/db/password", env={**server.cli_env(), "SECRETSVC_TOKEN": nobody})
    assert denied.returncode == 1
    put(stubs, "db/password", value)
    denied = server.cli("put", "app/db/password", stdin=b"v",
                        env={**server.cli_env(), "SECRETSVC_TOKEN": nobody})
    assert denied.returncode == 1
    with pytest.raises(grpc.RpcError):
        stubs.secrets.GetSecret(secrets_pb2.GetSecretRequest(ref=secrets_pb2.SecretRef(namespace="app", path="x")),
                                metadata=(("authorization", "Bearer svc_0000000000000000_forged"),))
    stubs.close()
    assert server.stop() == 0

    verified = _verify(server.data_dir)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    records = _records(server.data_dir / "audit" / "audit.log")
    events = [r for r in records if r["type"] == "event"]
    seen = {(r["method"], r["code"], r["principal"], r["resource"], r["capability"]) for r in events}
    assert ("/secretsvc.v1.Secrets/PutSecret", "OK", "token:admin", "app/db/password", "create") in seen
    assert ("/secretsvc.v1.Secrets/PutSecret", "OK", "token:admin", "app/db/password", "update") in seen
    assert ("/secretsvc.v1.Secrets/PutSecret", "PERMISSION_DENIED", "token:nobody", "app/db/password", "update") in seen
    assert ("/secretsvc.v1.Secrets/GetSecret", "OK", "token:admin", "app/db/password", "read") in seen
    assert ("/secretsvc.v1.Secrets/GetSecret", "PERMISSION_DENIED", "token:nobody", "app/db/password", "read") in seen
    assert ("/secretsvc.v1.Secrets/GetSecret", "UNAUTHENTICATED", None, None, "read") in seen
    assert ("/secretsvc.v1.Tokens/CreateToken", "OK", "token:admin", "tokens", "admin") in seen
    assert records[-1]["type"] == "checkpoint" and records[-1]["reason"] == "shutdown"
    text = (server.data_dir / "audit" / "audit.log").read_text()
    for secret in (value.decode(), nobody, server.token, "forged"):
        assert secret not in text


def test_paths_can_be_recorded_as_hmacs(make_server: Callable[..., ServerProcess]) -> None:
    server = make_server(extra_args=("--audit-hmac-paths", "yes")).start()
    stubs = Stubs(server)
    put(stubs, "db/password", b"v")
    stubs.close()
    server.stop()
    records = [r for r in _records(server.data_dir / "audit" / "audit.log")
               if str(r.get("method", "")).endswith("PutSecret")]
    assert records and all(str(r["resource"]).startswith("hmac-sha256:") for r in records)
    looked_up = subprocess.run(cli_command("audit", "hash", "--key-file", str(server.data_dir / "audit-hmac.key")),
                               input=b"app/db/password", capture_output=True, timeout=60, check=True)
    assert looked_up.stdout.decode().strip() == records[0]["resource"]


def test_the_audit_log_can_be_turned_off_and_the_server_says_so(make_server: Callable[..., ServerProcess]) -> None:
    server = make_server(extra_args=("--audit-enabled", "no")).start()
    stubs = Stubs(server)
    put(stubs, "db/password", b"v")
    assert get(stubs, "db/password").value == b"v"
    stubs.close()
    assert server.stop() == 0
    assert not (server.data_dir / "audit").exists()
    assert "the audit log is off" in server.log()


def test_a_tampered_log_is_caught(server: ServerProcess) -> None:
    stubs = Stubs(server)
    for i in range(5):
        put(stubs, f"p{i}", b"v")
    stubs.close()
    server.stop()
    log = server.data_dir / "audit" / "audit.log"
    lines = log.read_text().splitlines(keepends=True)
    victim = next(i for i, line in enumerate(lines) if '"app/p2"' in line)
    del lines[victim]  # an operator removes the record of one write
    log.write_text("".join(lines))
    result = _verify(server.data_dir)
    assert result.returncode == 1
    assert "seq" in result.stdout or "record" in result.stdout


@pytest.mark.skipif(shutil.which("unshare") is None or os.geteuid() != 0,
                    reason="needs root and unshare(1) to mount a tmpfs in a private mount namespace")
def test_a_call_that_cannot_be_audited_is_refused(make_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    mount = tmp_path / "audit-fs"
    mount.mkdir()
    script = f'mount -t tmpfs -o size=32k,mode=0700 tmpfs {mount} && exec "$@"'
    server = make_server(wrapper=("unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"),
                         extra_args=("--audit-file", str(mount / "audit.log"), "--audit-rotate-bytes", "0")).start()
    channel = server.channel()
    stub = secrets_pb2_grpc.SecretsStub(channel)
    stub.PutSecret(secrets_pb2.PutSecretRequest(ref=secrets_pb2.SecretRef(namespace="app", path="kept"),
                                                value=b"value"), metadata=server.metadata(), timeout=10)
    request = secrets_pb2.GetSecretRequest(ref=secrets_pb2.SecretRef(namespace="app", path="kept"))
    codes = []
    try:
        for _ in range(400):
            try:
                assert stub.GetSecret(request, metadata=server.metadata(), timeout=10).value == b"value"
            except grpc.RpcError as exc:
                codes.append(exc.code())
                if exc.code() == grpc.StatusCode.UNAVAILABLE:
                    details = exc.details() or ""
                    assert details.startswith("audit log is full (request id "), details
                    assert str(mount) not in details
                    break
        assert codes == [grpc.StatusCode.UNAVAILABLE]  # every read before it was answered and recorded
        # Nothing runs unaudited while the file system stays full: reads and failed calls alike are refused.
        missing = secrets_pb2.GetSecretRequest(ref=secrets_pb2.SecretRef(namespace="app", path="missing"))
        for again in (request, missing):
            with pytest.raises(grpc.RpcError) as info:
                stub.GetSecret(again, metadata=server.metadata(), timeout=10)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        channel.close()
