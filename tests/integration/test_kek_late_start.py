"""A real `secretsvc serve` started before its Vault: pods start before Vault is up.

The server starts with Transit pointing at an OpenBao that is not running yet, reports NOT_SERVING on gRPC
health, answers calls that need the key with UNAVAILABLE and a retry hint, and logs one line saying what it
waits for. OpenBao started without the key: still NOT_SERVING (the start-up check refuses a missing key). Key
created: SERVING by itself, and a put and get succeed. Configuration errors still stop it at start.
"""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2

from secretsvc.v1 import secrets_pb2
from tests.baokit import start_openbao, unstarted_openbao
from tests.integration.serverproc import ServerProcess, Stubs

pytestmark = pytest.mark.slow

NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVING = health_pb2.HealthCheckResponse.SERVING


def _put(stubs: Stubs, path: str, value: bytes) -> None:
    stubs.secrets.PutSecret(
        secrets_pb2.PutSecretRequest(ref=secrets_pb2.SecretRef(namespace="app", path=path), value=value),
        metadata=stubs.md,
        timeout=15,
    )


def test_serve_waits_for_a_vault_that_is_not_up_yet(tmp_path: Path) -> None:
    started = time.monotonic()
    bao = unstarted_openbao(tmp_path / "bao")
    server = ServerProcess(
        tmp_path / "data",
        extra_args=(
            "--kek",
            "vault-transit",
            "--vault-addr",
            bao.addr,
            "--vault-key",
            "late-root",
            "--vault-timeout-seconds",
            "1",
            "--kek-health-seconds",
            "0.2",
        ),
        env={"VAULT_TOKEN": bao.root_token},
    )
    server.start(wait=False)
    try:
        server.wait_health(NOT_SERVING)
        stubs = Stubs(server)
        with pytest.raises(grpc.RpcError) as err:
            _put(stubs, "first", b"one")
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "retry in" in (err.value.details() or "")
        metadata: tuple[tuple[str, str], ...] = err.value.trailing_metadata()  # type: ignore[attr-defined,assignment]
        trailers = {str(k): str(v) for k, v in metadata or ()}
        assert int(trailers["grpc-retry-pushback-ms"]) >= 1000
        assert server.log().count("not reachable at start") == 1

        bao.start()  # no transit mount, no key yet: reachable, but the start-up check refuses it
        try:
            bao.enable_transit()
            time.sleep(0.6)  # three probes
            assert server.health() == NOT_SERVING
            assert "refused by the start-up check" in server.log()
            bao.create_key("late-root")
            server.wait_health(SERVING, seconds=10)
            _put(stubs, "first", b"one")
            got = stubs.secrets.GetSecret(
                secrets_pb2.GetSecretRequest(ref=secrets_pb2.SecretRef(namespace="app", path="first")),
                metadata=stubs.md,
                timeout=15,
            )
            assert got.value == b"one"
            stubs.close()
        finally:
            bao.stop()
    finally:
        server.stop()
    assert "Traceback" not in server.log()
    assert time.monotonic() - started < 10.0


def test_a_key_vault_says_does_not_exist_still_stops_the_server_at_start(tmp_path: Path) -> None:
    bao = start_openbao(tmp_path / "bao")
    try:
        server = ServerProcess(
            tmp_path / "data",
            extra_args=("--kek", "vault-transit", "--vault-addr", bao.addr, "--vault-key", "no-such-key"),
            env={"VAULT_TOKEN": bao.root_token},
        )
        server.start(wait=False)
        assert server.proc is not None
        assert server.proc.wait(timeout=30) == 1
        assert "no-such-key" in server.log() and "not found" in server.log()
        # A token Vault refuses is a configuration error too, not a Vault that is not up yet.
        refused = ServerProcess(
            tmp_path / "data2",
            extra_args=("--kek", "vault-transit", "--vault-addr", bao.addr, "--vault-key", "no-such-key"),
            env={"VAULT_TOKEN": "not-a-token"},
        )
        refused.start(wait=False)
        assert refused.proc is not None
        assert refused.proc.wait(timeout=30) == 1
        assert "not reachable at start" not in refused.log()
    finally:
        bao.stop()
