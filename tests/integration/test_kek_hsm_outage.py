"""A real `secretsvc serve` on a SoftHSM2 token whose storage goes away while it runs, and comes back.

The outage is made by moving the token's directory away: the module, still loaded in the server, then fails
every call on that token (stale handles, CKR_GENERAL_ERROR, then no such token). Calls that need the key must
answer UNAVAILABLE with a retry hint, never INTERNAL and never DATA_LOSS (the ciphertexts are intact), and
readiness must say NOT_SERVING. Moved back, the server recovers by itself: readiness re-initialises the
module, reports SERVING, and reads and writes work again. The data-key cache is off so that every read goes
to the token.
"""

from __future__ import annotations

import random
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2

from secretsvc.v1 import secrets_pb2
from tests.hsmkit import make_softhsm
from tests.integration.serverproc import ServerProcess, Stubs

pytestmark = pytest.mark.slow


def _ref(path: str) -> secrets_pb2.SecretRef:
    return secrets_pb2.SecretRef(namespace="app", path=path)


def _unavailable(call: grpc.RpcError) -> None:
    assert call.code() == grpc.StatusCode.UNAVAILABLE, (call.code(), call.details())
    assert "retry in" in (call.details() or "")
    metadata: tuple[tuple[str, str], ...] = call.trailing_metadata()  # type: ignore[attr-defined,assignment]
    assert int(dict(metadata)["grpc-retry-pushback-ms"]) >= 1000


def test_an_hsm_outage_is_unavailable_and_the_server_recovers(tmp_path: Path) -> None:
    hsm = make_softhsm(tmp_path / "hsm", "outage", random.Random(4242))
    server = ServerProcess(
        tmp_path / "data",
        extra_args=(
            "--kek",
            "pkcs11",
            *hsm.serve_args("root"),
            "--kek-cache-entries",
            "0",
            "--kek-health-seconds",
            "0.3",
        ),
        env=hsm.env(),
    )
    server.start()
    [token_dir] = list((tmp_path / "hsm" / "tokens").iterdir())
    away = tmp_path / "hsm" / "away"
    try:
        stubs = Stubs(server)
        for i in range(3):
            stubs.secrets.PutSecret(
                secrets_pb2.PutSecretRequest(ref=_ref(f"s{i}"), value=b"v%d" % i), metadata=stubs.md, timeout=15
            )

        token_dir.rename(away)
        # Several reads and writes in a row: the first meets the pooled session's stale handles, later ones
        # fresh sessions on a token the module can no longer find.
        for i in range(3):
            with pytest.raises(grpc.RpcError) as read:
                stubs.secrets.GetSecret(secrets_pb2.GetSecretRequest(ref=_ref(f"s{i}")), metadata=stubs.md, timeout=15)
            _unavailable(read.value)
            with pytest.raises(grpc.RpcError) as write:
                stubs.secrets.PutSecret(
                    secrets_pb2.PutSecretRequest(ref=_ref(f"new{i}"), value=b"x"), metadata=stubs.md, timeout=15
                )
            _unavailable(write.value)
        server.wait_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        with pytest.raises(grpc.RpcError) as again:
            stubs.secrets.GetSecret(secrets_pb2.GetSecretRequest(ref=_ref("s0")), metadata=stubs.md, timeout=15)
        _unavailable(again.value)

        away.rename(token_dir)
        server.wait_health(health_pb2.HealthCheckResponse.SERVING)
        for i in range(3):
            got = stubs.secrets.GetSecret(
                secrets_pb2.GetSecretRequest(ref=_ref(f"s{i}")), metadata=stubs.md, timeout=15
            )
            assert got.value == b"v%d" % i
        stubs.secrets.PutSecret(
            secrets_pb2.PutSecretRequest(ref=_ref("after"), value=b"back"), metadata=stubs.md, timeout=15
        )
        got = stubs.secrets.GetSecret(secrets_pb2.GetSecretRequest(ref=_ref("after")), metadata=stubs.md, timeout=15)
        assert got.value == b"back"
        stubs.close()
    finally:
        if away.exists():
            away.rename(token_dir)
        server.stop()
    log = server.log()
    assert "Traceback" not in log and "DATA_LOSS" not in log and "INTERNAL" not in log
    assert "re-initialised" in log
