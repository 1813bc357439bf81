"""A real `secretsvc serve` on remote key-encryption keys: Transit (a real OpenBao) and PKCS#11 (SoftHSM2).

Put and get through Transit; OpenBao stopped -> reads that need Transit answer UNAVAILABLE with a retry hint
(never DATA_LOSS), reads the data-key cache holds still answer, readiness goes NOT_SERVING; OpenBao back ->
everything works and readiness is SERVING again. And `root-key rewrap` moving every stored data key online
from the local keyring to Transit, then from Transit to the HSM, each old backend dropped afterwards.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2

from secretsvc.v1 import secrets_pb2
from tests.baokit import OpenBao, start_openbao
from tests.hsmkit import SoftHsm, make_softhsm
from tests.integration.serverproc import ServerProcess, Stubs

pytestmark = pytest.mark.slow


@pytest.fixture
def openbao(tmp_path: Path) -> Iterator[OpenBao]:
    bao = start_openbao(tmp_path / "bao", persistent=True)
    try:
        yield bao
    finally:
        bao.stop()


def _transit_args(bao: OpenBao, key: str) -> tuple[str, ...]:
    return ("--kek", "vault-transit", "--vault-addr", bao.addr, "--vault-key", key, "--vault-timeout-seconds", "2")


def _get(stubs: Stubs, path: str) -> bytes:
    request = secrets_pb2.GetSecretRequest(ref=secrets_pb2.SecretRef(namespace="app", path=path))
    value: bytes = stubs.secrets.GetSecret(request, metadata=stubs.md, timeout=15).value
    return value


def test_transit_outage_is_unavailable_then_recovers(openbao: OpenBao, tmp_path: Path) -> None:
    openbao.create_key("secretsvc-root")
    server = ServerProcess(
        tmp_path / "data",
        extra_args=(*_transit_args(openbao, "secretsvc-root"), "--kek-health-seconds", "0.3"),
        env={"VAULT_TOKEN": openbao.root_token},
    )
    server.start()
    try:
        assert server.cli("put", "app/cached", stdin=b"one").returncode == 0
        assert server.cli("put", "app/cold", stdin=b"two").returncode == 0
        assert server.cli("get", "app/cached").stdout == b"one"
        # The keyring file is not used: nothing is wrapped locally.
        assert not (tmp_path / "data" / "keyring.json").exists()
        info = json.loads(server.cli("root-key", "info", "--format", "json").stdout)
        assert info["keyId"] == "vault-transit:transit/secretsvc-root"
        # Wraps fill the data-key cache; a restarted server starts with it empty, and reads only "cached".
        server.stop()
        server.start()
        stubs = Stubs(server)
        assert _get(stubs, "cached") == b"one"

        openbao.stop()
        with pytest.raises(grpc.RpcError) as info_err:
            _get(stubs, "cold")
        assert info_err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "retry in" in (info_err.value.details() or "")
        trailers = dict(info_err.value.trailing_metadata() or ())  # type: ignore[attr-defined]
        assert int(trailers["grpc-retry-pushback-ms"]) >= 1000
        assert _get(stubs, "cached") == b"one"  # served by the data-key cache
        with pytest.raises(grpc.RpcError) as put_err:
            stubs.secrets.PutSecret(
                secrets_pb2.PutSecretRequest(ref=secrets_pb2.SecretRef(namespace="app", path="new"), value=b"x"),
                metadata=stubs.md,
                timeout=15,
            )
        assert put_err.value.code() == grpc.StatusCode.UNAVAILABLE
        server.wait_health(health_pb2.HealthCheckResponse.NOT_SERVING)

        openbao.start()
        server.wait_health(health_pb2.HealthCheckResponse.SERVING)
        assert _get(stubs, "cold") == b"two"
        assert server.cli("put", "app/new", stdin=b"three").returncode == 0
        assert server.cli("get", "app/new").stdout == b"three"
        metrics = _metrics(server)
        assert "secretsvc_kek_cache_hits_total" in metrics and "secretsvc_kek_cache_misses_total" in metrics
        stubs.close()
    finally:
        server.stop()
    assert "Traceback" not in server.log()


def _metrics(server: ServerProcess) -> str:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=5) as resp:
        return str(resp.read().decode())


def test_root_key_rewrap_moves_local_to_transit_to_hsm_online(openbao: OpenBao, tmp_path: Path) -> None:
    openbao.create_key("moved-root")
    hsm: SoftHsm = make_softhsm(tmp_path / "hsm", "secretsvc-root", random.Random(77))
    data = tmp_path / "data"
    bao_env = {"VAULT_TOKEN": openbao.root_token}
    hsm_args = hsm.serve_args("root")

    # 1. The embedded default: the local keyring.
    server = ServerProcess(data)
    server.start()
    values = {f"s{i}": f"value-{i}".encode() for i in range(5)}
    try:
        for path, value in values.items():
            assert server.cli("put", f"app/{path}", stdin=value).returncode == 0
        assert server.cli("keys", "create", "orders").returncode == 0
    finally:
        server.stop()

    def run(args: tuple[str, ...], env: dict[str, str]) -> ServerProcess:
        proc = ServerProcess(data, extra_args=args, env=env)
        proc.start()
        return proc

    # 2. Transit wraps from now on; the keyring still unwraps until rewrap has moved everything.
    server = run((*_transit_args(openbao, "moved-root"), "--kek-previous", "local"), bao_env)
    try:
        assert server.cli("get", "app/s0").stdout == values["s0"]
        done = json.loads(server.cli("root-key", "rewrap", "--format", "json").stdout)
        assert done["done"] is True and int(done["rewrapped"]) >= 6  # secrets, transit key, fingerprint key
        again = json.loads(server.cli("root-key", "rewrap", "--format", "json").stdout)
        assert int(again["rewrapped"]) == 0
    finally:
        server.stop()

    # 3. Transit alone: the keyring is no longer needed (its record is no reason to refuse: nothing uses it).
    (data / "keyring.json").rename(tmp_path / "old-keyring.json")
    server = run(_transit_args(openbao, "moved-root"), bao_env)
    try:
        for path, value in values.items():
            assert server.cli("get", f"app/{path}").stdout == value
        ciphertext = server.cli("keys", "encrypt", "orders", stdin=b"card").stdout
        assert server.cli("keys", "decrypt", "orders", stdin=ciphertext).stdout == b"card"
    finally:
        server.stop()

    # 4. On to the HSM, Transit still unwrapping during the move.
    env = {**bao_env, **hsm.env()}
    server = run(
        (
            *hsm_args,
            "--kek",
            "pkcs11",
            "--kek-previous",
            "vault-transit",
            "--vault-addr",
            openbao.addr,
            "--vault-key",
            "moved-root",
        ),
        env,
    )
    try:
        done = json.loads(server.cli("root-key", "rewrap", "--format", "json").stdout)
        assert done["done"] is True and int(done["rewrapped"]) >= 6
    finally:
        server.stop()

    # 5. The HSM alone, with OpenBao gone entirely.
    openbao.stop()
    server = run((*hsm_args, "--kek", "pkcs11"), hsm.env())
    try:
        for path, value in values.items():
            assert server.cli("get", f"app/{path}").stdout == value
        info = json.loads(server.cli("root-key", "info", "--format", "json").stdout)
        assert info["keyId"] == "pkcs11:secretsvc-root/root"
    finally:
        server.stop()


def test_a_server_refuses_to_start_without_the_backend_that_wrapped_its_data(openbao: OpenBao, tmp_path: Path) -> None:
    openbao.create_key("first")
    data = tmp_path / "data"
    server = ServerProcess(data, extra_args=_transit_args(openbao, "first"), env={"VAULT_TOKEN": openbao.root_token})
    server.start()
    try:
        assert server.cli("put", "app/x", stdin=b"v").returncode == 0
    finally:
        server.stop()
    # Switched to the local keyring without moving the data first: refused, naming what is missing.
    refused = ServerProcess(data)
    refused.start(wait=False)
    assert refused.proc is not None
    assert refused.proc.wait(timeout=30) == 1
    assert "vault-transit:transit/first" in refused.log()


def test_root_key_rewrap_moves_one_transit_key_to_another_online(tmp_path: Path) -> None:
    bao = start_openbao(tmp_path / "bao")
    try:
        bao.create_key("key-a")
        bao.create_key("key-b")
        data = tmp_path / "data"

        def run(args: tuple[str, ...], token: str) -> ServerProcess:
            proc = ServerProcess(data, extra_args=args, env={"VAULT_TOKEN": token})
            proc.start()
            return proc

        # 1. Everything under key A.
        server = run(_transit_args(bao, "key-a"), bao.root_token)
        values = {f"s{i}": f"value-{i}".encode() for i in range(5)}
        try:
            for path, value in values.items():
                assert server.cli("put", f"app/{path}", stdin=value).returncode == 0
            assert server.cli("keys", "create", "orders").returncode == 0
            ciphertext = server.cli("keys", "encrypt", "orders", stdin=b"card").stdout
        finally:
            server.stop()

        # 2. Key B wraps; key A, named as the previous key of the same backend, unwraps until rewrap is done.
        server = run(
            (*_transit_args(bao, "key-b"), "--kek-previous", "vault-transit", "--kek-previous-vault-key", "key-a"),
            bao.root_token,
        )
        try:
            assert server.cli("get", "app/s0").stdout == values["s0"]
            done = json.loads(server.cli("root-key", "rewrap", "--format", "json").stdout)
            assert done["done"] is True and int(done["rewrapped"]) >= 7  # secrets, transit key, fingerprint key
            again = json.loads(server.cli("root-key", "rewrap", "--format", "json").stdout)
            assert int(again["rewrapped"]) == 0
            info = json.loads(server.cli("root-key", "info", "--format", "json").stdout)
            assert info["keyId"] == "vault-transit:transit/key-b"
        finally:
            server.stop()

        # 3. Key B alone, with a token that may not touch key A at all: nothing stored needs it any more.
        bao.put_policy(
            "only-b",
            "\n".join(
                f'path "transit/{p}/key-b" {{ capabilities = ["{cap}"] }}'
                for p, cap in (("keys", "read"), ("encrypt", "update"), ("decrypt", "update"))
            ),
        )
        server = run(_transit_args(bao, "key-b"), bao.create_token(["only-b"]))
        try:
            for path, value in values.items():
                assert server.cli("get", f"app/{path}").stdout == value
            assert server.cli("keys", "decrypt", "orders", stdin=ciphertext).stdout == b"card"
        finally:
            server.stop()
    finally:
        bao.stop()
