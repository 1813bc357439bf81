"""Faults around the real server process: tampering, corruption, locking, crashes, shutdown, leaks."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from secretsvc.v1 import secrets_pb2, secrets_pb2_grpc
from tests.integration.serverproc import ServerProcess, Stubs, cli_command
from tests.integration.test_service_api import get, put, ref


def test_tampered_database_row_is_data_loss(server: ServerProcess) -> None:
    value = random.Random(10).randbytes(48)
    stubs = Stubs(server)
    put(stubs, "victim", value)
    put(stubs, "other", b"other-value")
    stubs.close()
    server.stop()

    db = sqlite3.connect(server.data_dir / "secretsvc.db")
    envelope = bytearray(db.execute("SELECT envelope FROM secret_versions WHERE path='victim'").fetchone()[0])
    envelope[len(envelope) // 2] ^= 0x40
    db.execute("UPDATE secret_versions SET envelope=? WHERE path='victim'", (bytes(envelope),))
    # And a row moved onto another record: a valid envelope, but bound to a different path.
    moved = db.execute("SELECT envelope FROM secret_versions WHERE path='other'").fetchone()[0]
    db.execute("INSERT INTO secrets SELECT namespace, 'copy', current_version, max_versions, custom_metadata,"
               " created_at, updated_at FROM secrets WHERE path='other'")
    db.execute("INSERT INTO secret_versions SELECT namespace, 'copy', version, state, envelope, created_at,"
               " deleted_at, destroyed_at FROM secret_versions WHERE path='other'")
    db.commit()
    db.close()
    assert moved

    server.start()
    stubs = Stubs(server)
    for path in ("victim", "copy"):
        with pytest.raises(grpc.RpcError) as info:
            get(stubs, path)
        assert info.value.code() == grpc.StatusCode.DATA_LOSS
        assert "failed to authenticate" in info.value.details()
    assert get(stubs, "other").value == b"other-value"
    stubs.close()


def test_missing_or_wrong_token_over_cli(server: ServerProcess) -> None:
    env = server.cli_env()
    del env["SECRETSVC_TOKEN"]
    result = server.cli("get", "app/x", env=env)
    assert result.returncode == 2
    assert b"SECRETSVC_TOKEN" in result.stderr
    env["SECRETSVC_TOKEN"] = "svc_deadbeefdeadbeef_" + "B" * 43
    result = server.cli("get", "app/x", env=env)
    assert result.returncode == 1
    assert b"unauthenticated" in result.stderr


def test_corrupted_keyring_refuses_to_start(make_server: Callable[..., ServerProcess]) -> None:
    server = make_server().start()
    server.stop()
    keyring = server.data_dir / "keyring.json"
    original = keyring.read_bytes()
    data = json.loads(original)
    data["versions"][0]["key"] = data["versions"][0]["key"][::-1]  # same shape, wrong key: check value fails
    for damaged in (original[: len(original) // 2], b"{}", json.dumps(data).encode()):
        assert damaged != original
        keyring.write_bytes(damaged)
        result = subprocess.run(cli_command("serve", "--data-dir", str(server.data_dir), "--listen",
                                            server.addr, "--metrics-listen", ""),
                                capture_output=True, timeout=30, check=False)
        assert result.returncode != 0
        assert b"keyring" in result.stderr.lower()
        assert b"Traceback" not in result.stderr


def test_second_server_on_same_data_dir_is_refused(server: ServerProcess) -> None:
    result = subprocess.run(cli_command("serve", "--data-dir", str(server.data_dir), "--listen", "127.0.0.1:0",
                                        "--metrics-listen", ""), capture_output=True, timeout=30, check=False)
    assert result.returncode == 1
    assert b"in use" in result.stderr
    assert str(server.proc.pid).encode() in result.stderr  # type: ignore[union-attr]


def test_kill_9_during_writes_loses_no_acknowledged_write(server: ServerProcess) -> None:
    acked: dict[str, bytes] = {}
    stop = threading.Event()
    lock = threading.Lock()

    def writer(worker: int) -> None:
        rng = random.Random(100 + worker)
        with server.channel() as channel:
            stub = secrets_pb2_grpc.SecretsStub(channel)
            i = 0
            while not stop.is_set():
                path, value = f"w{worker}/{i}", rng.randbytes(256)
                try:
                    stub.PutSecret(secrets_pb2.PutSecretRequest(ref=ref(path), value=value),
                                   metadata=server.metadata(), timeout=5)
                except grpc.RpcError:
                    return
                with lock:
                    acked[path] = value
                i += 1

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(acked) < 150 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
    server.proc.wait()  # type: ignore[union-attr]
    stop.set()
    for t in threads:
        t.join(timeout=10)
    assert len(acked) >= 150

    server.start()
    stubs = Stubs(server)
    for path, value in acked.items():
        assert get(stubs, path).value == value
    # Nothing half-written: every stored secret reads back completely.
    for worker in range(4):
        page = stubs.secrets.ListSecrets(secrets_pb2.ListSecretsRequest(namespace="app", prefix=f"w{worker}/",
                                                                        page_size=1000), metadata=stubs.md)
        for path in page.paths:
            assert len(get(stubs, path).value) == 256
    stubs.close()


def test_sigterm_drains_and_exits_cleanly(server: ServerProcess) -> None:
    stubs = Stubs(server)
    put(stubs, "before-shutdown", b"kept")
    stubs.close()
    assert server.stop(signal.SIGTERM) == 0
    assert "shutting down" in server.log()
    server.start()
    stubs = Stubs(server)
    assert get(stubs, "before-shutdown").value == b"kept"
    stubs.close()


def test_values_and_tokens_never_reach_the_logs(server: ServerProcess) -> None:
    rng = random.Random(20)
    values = [rng.randbytes(16).hex().encode() for _ in range(5)]
    stubs = Stubs(server)
    for i, value in enumerate(values):
        put(stubs, f"quiet/{i}", value)
        get(stubs, f"quiet/{i}")
    with pytest.raises(grpc.RpcError):
        put(stubs, "quiet/0", values[0], cas=0)
    stubs.close()
    server.stop()
    log = server.log()
    assert "PutSecret" in log  # the log is there and structured
    for line in log.splitlines():
        if line.startswith("{"):
            json.loads(line)
    for value in values:
        assert value.decode() not in log
    assert server.token not in log


def test_first_start_prints_token_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    argv = cli_command("serve", "--data-dir", str(data), "--listen", "127.0.0.1:0", "--metrics-listen", "")
    for run in range(2):
        proc = subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
        time.sleep(0.2)
        assert proc.stderr is not None
        lines: list[bytes] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            lines.append(line)
            if b"listening on" in line or not line:
                break
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        proc.stderr.close()
        text = b"".join(lines)
        assert (b"svc_" in text) == (run == 0), text
    for name in ("keyring.json", "secretsvc.db"):
        assert oct((data / name).stat().st_mode & 0o777) == "0o600", name


def test_bad_configuration_is_reported_at_start(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[server]\nlisten = "0.0.0.0:8290"\n')
    result = subprocess.run(cli_command("serve", "--config", str(config), "--data-dir", str(tmp_path / "d")),
                            capture_output=True, timeout=30, check=False)
    assert result.returncode == 2
    assert b"not loopback" in result.stderr
    config.write_text("[server]\nlisen = 1\n")
    result = subprocess.run(cli_command("serve", "--config", str(config)), capture_output=True, timeout=30,
                            check=False)
    assert result.returncode == 2
    assert b"unknown setting" in result.stderr and b"lisen" in result.stderr


def test_metrics_endpoint_counts_requests(server: ServerProcess) -> None:
    import urllib.request

    stubs = Stubs(server)
    put(stubs, "m", b"v")
    with pytest.raises(grpc.RpcError):
        get(stubs, "missing")
    stubs.close()
    body = urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=5).read().decode()
    assert 'secretsvc_rpc_requests_total{code="OK",method="PutSecret"} 1.0' in body
    assert 'secretsvc_rpc_requests_total{code="NOT_FOUND",method="GetSecret"} 1.0' in body
    assert "secretsvc_rpc_duration_seconds_bucket" in body


def test_sealed_keyring_needs_its_passphrase(make_server: Callable[..., ServerProcess]) -> None:
    passphrase = random.Random(40).randbytes(12).hex()
    server = make_server(env={"SECRETSVC_KEYRING_PASSPHRASE": passphrase}).start()
    stubs = Stubs(server)
    put(stubs, "sealed", b"value")
    stubs.close()
    server.stop()
    assert passphrase not in (server.data_dir / "keyring.json").read_text()
    argv = cli_command("serve", "--data-dir", str(server.data_dir), "--listen", "127.0.0.1:0", "--metrics-listen", "")
    for env_passphrase in (None, "wrong-" + passphrase):
        env = {k: v for k, v in os.environ.items() if k != "SECRETSVC_KEYRING_PASSPHRASE"}
        if env_passphrase is not None:
            env["SECRETSVC_KEYRING_PASSPHRASE"] = env_passphrase
        result = subprocess.run(argv, capture_output=True, timeout=30, check=False, env=env)
        assert result.returncode == 1
        assert b"keyring" in result.stderr.lower()
        assert passphrase.encode() not in result.stderr
    server.start()
    stubs = Stubs(server)
    assert get(stubs, "sealed").value == b"value"
    stubs.close()


def test_sigterm_lets_in_flight_calls_finish(server: ServerProcess) -> None:
    """Calls already running when SIGTERM arrives complete successfully; later ones are refused cleanly."""
    stubs = Stubs(server)
    values = {f"inflight/{i}": random.Random(50 + i).randbytes(64) for i in range(40)}
    futures = [
        stubs.secrets.PutSecret.future(secrets_pb2.PutSecretRequest(ref=ref(path), value=value), metadata=stubs.md)
        for path, value in values.items()
    ]
    server.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
    acknowledged = {}
    for (path, value), future in zip(values.items(), futures, strict=True):
        try:
            future.result(timeout=30)
            acknowledged[path] = value
        except grpc.RpcError as exc:
            assert exc.code() in {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}, exc
    stubs.close()
    assert server.proc.wait(timeout=30) == 0  # type: ignore[union-attr]
    server.start()
    stubs = Stubs(server)
    for path, value in acknowledged.items():
        assert get(stubs, path).value == value
    stubs.close()
